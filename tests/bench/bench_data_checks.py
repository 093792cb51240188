"""Benchmark: what the value checks of stored data cost when a year of 1-minute bars is loaded.

Workload: one year of 1-minute candles (525,600 bars), the real July 2025 Binance BTC/USDT
month in ``tests/bench/data`` repeated back to back (as ``bench_engine.py`` builds it), plus an
8-hourly funding series, written into a temporary store by the store's own writer.

Timed side by side in one process, best of ``--repeat`` rounds (CPU and wall time):

(a) ``load_market`` with the checks switched off (the loader as it was before them);
(b) ``load_market`` as shipped (schema and value checks of every file);
(c) (b) followed by the engine's own frame check (``check_frame`` with the timeframe), which
    a run adds on top.

Prints the times and the ratios (b)/(a) and (c)/(a); the target is (c)/(a) <= 2.  Timings are
printed, never asserted.

Usage::

    python tests/bench/bench_data_checks.py [--repeat R]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from bench_engine import year_of_candles

from backtest.engine.runner import check_frame
from backtest.market import store

SYMBOL = "BTC/USDT:USDT"
TARGET = 2.0


def build_store(root: Path) -> None:
    """Write a year of candles and 8-hourly funding into ``root``."""
    candles = year_of_candles()
    frame = candles.reset_index(drop=True)
    frame.insert(0, "timestamp_ms", candles.index.as_unit("ms").asi8)
    store.write_series(
        store.series_path(root, "binanceusdm", SYMBOL, "ohlcv", "1m"),
        frame,
        series="ohlcv",
        exchange="binanceusdm",
        symbol=SYMBOL,
        timeframe="1m",
    )
    settlements = frame["timestamp_ms"].to_numpy()[:: 8 * 60]
    funding = pd.DataFrame(
        {"timestamp_ms": settlements, "funding_rate": np.full(settlements.size, 0.0001)}
    )
    store.write_series(
        store.series_path(root, "binanceusdm", SYMBOL, "funding"),
        funding,
        series="funding",
        exchange="binanceusdm",
        symbol=SYMBOL,
    )


def timed(work) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        build_store(root)
        checked = store.check_series_values

        def unchecked_load():
            store.check_series_values = lambda *args, **kwargs: None
            try:
                store.load_market(SYMBOL, "1m", data_dir=root)
            finally:
                store.check_series_values = checked

        def checked_load():
            return store.load_market(SYMBOL, "1m", data_dir=root)

        def checked_run_load():
            check_frame(store.load_market(SYMBOL, "1m", data_dir=root), timeframe="1m")

        variants = {"a": unchecked_load, "b": checked_load, "c": checked_run_load}
        best = {name: (float("inf"), float("inf")) for name in variants}
        checked_load()  # warm the file cache and imports
        for _ in range(options.repeat):
            for name, work in variants.items():  # interleaved, so load drifts hit all alike
                cpu, wall = timed(work)
                best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    bars = len(year_of_candles())
    print(f"{bars:,} 1-minute bars, best of {options.repeat} rounds (CPU s / wall s):")
    labels = {
        "a": "load_market, checks off",
        "b": "load_market, checks on",
        "c": "load_market + check_frame",
    }
    for name, label in labels.items():
        print(f"  ({name}) {label:<28} {best[name][0]:.3f} / {best[name][1]:.3f}")
    for name in ("b", "c"):
        ratio = best[name][0] / best["a"][0]
        print(
            f"  ({name})/(a) CPU: {ratio:.2f}" + (f" (target <= {TARGET:g})" if name == "c" else "")
        )


if __name__ == "__main__":
    main()
