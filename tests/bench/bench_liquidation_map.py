"""Benchmark of the liquidation map kernel: one year of 1-minute bars, default parameters.

Run it as ``python tests/bench/bench_liquidation_map.py`` (not collected by pytest).  The year
(525,600 bars) is the real July 2025 BTC/USDT 1m month repeated; each repetition is shifted by a
price offset so that it starts at the previous one's last close (the series stays continuous,
and the grid has to re-centre as the price drifts).  Printed, measured in the same run:

- kernel bars/s over the whole year (best of a few repeats);
- reference (pure-Python twin) bars/s on a slice of the same data;
- their ratio.

Targets of the issue: >= 5 million bars/s and >= 100x the reference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.liquidation.heatmap import LINES, LiquidationMap, MapParams

DATA = Path(__file__).parent / "data" / "binance_BTC_USDT-1m-2025-07.parquet"
YEAR_BARS = 525_600


def year_of_bars(bars: int = YEAR_BARS) -> dict[str, np.ndarray]:
    """The July month repeated up to ``bars`` bars, each copy offset to continue the last."""
    month = pd.read_parquet(DATA)
    columns = {name: month[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low")}
    columns["close"] = month["close"].to_numpy(dtype=np.float64)
    volume = month["volume"].to_numpy(dtype=np.float64)
    pieces: dict[str, list[np.ndarray]] = {name: [] for name in (*columns, "volume")}
    offset = 0.0
    total = 0
    while total < bars:
        for name, values in columns.items():
            pieces[name].append(values + offset)
        pieces["volume"].append(volume)
        offset += columns["close"][-1] - columns["open"][0]
        total += volume.shape[0]
    return {
        name: np.ascontiguousarray(np.concatenate(parts)[:bars]) for name, parts in pieces.items()
    }


def _time_run(
    chosen: LiquidationMap, data: dict[str, np.ndarray], stop: int
) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run over the first ``stop`` bars."""
    arrays = [data[name][:stop] for name in ("open", "high", "low", "close", "volume")]
    out = {name: np.full(stop, np.nan) for name in LINES}  # touched, like line buffers
    started, started_cpu = time.perf_counter(), time.process_time()
    chosen.run_arrays(*arrays, out=out)
    return time.perf_counter() - started, time.process_time() - started_cpu


def main() -> None:
    """Measure and print kernel and reference speed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=YEAR_BARS, help="bars in the kernel run")
    parser.add_argument("--reference-bars", type=int, default=20_000, help="reference slice")
    parser.add_argument("--repeats", type=int, default=15, help="kernel repeats (best is kept)")
    options = parser.parse_args()

    data = year_of_bars(options.bars)
    params = MapParams()
    kernel_map = LiquidationMap(params, timeframe="1m")
    reference_map = LiquidationMap(params, timeframe="1m", backend="reference")

    _time_run(kernel_map, data, min(options.bars, 10_000))  # warm-up: import, tiers, caches
    runs = [_time_run(kernel_map, data, options.bars) for _ in range(options.repeats)]
    kernel_seconds = min(wall for wall, _ in runs)
    kernel_cpu = min(cpu for _, cpu in runs)
    kernel_rate = options.bars / kernel_seconds

    slice_bars = min(options.reference_bars, options.bars)
    reference_seconds, _ = _time_run(reference_map, data, slice_bars)
    reference_rate = slice_bars / reference_seconds
    kernel_slice_seconds = min(_time_run(kernel_map, data, slice_bars)[0] for _ in range(5))

    print(f"bars: {options.bars:,} (1m, July 2025 BTC repeated), default MapParams")
    print(
        f"kernel:    {kernel_seconds:8.3f} s  {kernel_rate / 1e6:8.2f} M bars/s   (target >= 5; "
        f"best of {options.repeats}; CPU time {options.bars / kernel_cpu / 1e6:.2f} M bars/s)"
    )
    print(
        f"reference: {reference_seconds:8.3f} s  {reference_rate / 1e3:8.2f} k bars/s   "
        f"(slice of {slice_bars:,} bars; year scaled: {options.bars / reference_rate:,.0f} s)"
    )
    print(
        f"kernel vs reference: {kernel_rate / reference_rate:,.0f}x over the year "
        f"(same slice: {reference_seconds / kernel_slice_seconds:,.0f}x)   (target >= 100x)"
    )
    print("the machine is shared: run it two or three times and read the best")


if __name__ == "__main__":
    main()
