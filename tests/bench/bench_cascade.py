"""Benchmark of the cascade kernel against its pure-Python reference, measured side by side.

Run: ``python tests/bench/bench_cascade.py``.  Prints cascades per second of the compiled
``cascade_grid`` and ``market_state`` and their ratio to the reference (which runs on a slice
and is scaled).  Not collected by pytest; no timing is asserted anywhere.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.liquidation._native import load_kernel
from backtest.liquidation.cascade import CascadeParams
from backtest.liquidation.reference import cascade as reference

DATA = Path(__file__).resolve().parent / "data" / "binance_BTC_USDT-1m-2025-07.parquet"


def best_of(function, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls, in seconds."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def snapshots(rows: int, buckets: int, seed: int = 3) -> dict[str, np.ndarray]:
    """Map-like densities: walls decaying away from the price, 0.1 % buckets."""
    rng = np.random.default_rng(seed)
    step = math.log1p(0.001)
    half = buckets // 2
    distance = np.abs(np.arange(buckets) - half) / half
    profile = np.exp(-distance * 8.0) * 4e6
    longs = rng.exponential(1.0, (rows, buckets)) * profile
    shorts = rng.exponential(1.0, (rows, buckets)) * profile
    longs[:, half:] = 0.0  # longs liquidate below the price, shorts above
    shorts[:, : half + 1] = 0.0
    price = 100_000.0 * rng.uniform(0.99, 1.01, rows)
    return {
        "long": longs,
        "short": shorts,
        "log_price_min": np.log(price) - (half + 0.5) * step,
        "log_step": np.full(rows, step),
        "price": price,
        "volatility": rng.uniform(0.015, 0.05, rows),
        "notional": rng.uniform(5e9, 3e10, rows),
    }


def bench_grid(rows: int = 20_000, reference_rows: int = 400, buckets: int = 2001) -> None:
    kernel = load_kernel("_cascade")
    model = CascadeParams().kernel_args()
    shocks = np.array([-0.02, 0.02])
    data = snapshots(rows, buckets)

    def arguments(count: int) -> tuple:
        return (
            data["long"][:count],
            data["short"][:count],
            data["log_price_min"][:count],
            data["log_step"][:count],
            data["price"][:count],
            data["volatility"][:count],
            data["notional"][:count],
            shocks,
            model,
        )

    compiled = best_of(lambda: kernel.cascade_grid(*arguments(rows)))
    specified = best_of(lambda: reference.cascade_grid(*arguments(reference_rows)), repeats=1)
    specified_scaled = specified * rows / reference_rows
    steps = kernel.cascade_grid(*arguments(rows))[3]
    print(
        f"cascade_grid   {rows:>7} snapshots x 2 shocks, {buckets} buckets, "
        f"mean {steps.mean():.1f} steps: kernel {2 * rows / compiled:>12,.0f} cascades/s, "
        f"reference {2 * reference_rows / specified:>9,.0f} cascades/s, "
        f"ratio {specified_scaled / compiled:,.0f}x"
    )


def bench_market_state(reference_bars: int = 50_000) -> None:
    kernel = load_kernel("_cascade")
    month = pd.read_parquet(DATA)
    close = np.concatenate([month["close"].to_numpy() + 1_000.0 * k for k in range(12)])
    volume = np.tile(month["volume"].to_numpy(), 12)
    close, volume = close[:525_600], volume[:525_600]
    compiled = best_of(lambda: kernel.market_state(close, volume, 1440.0, 1440.0))
    specified = best_of(
        lambda: reference.market_state(
            close[:reference_bars], volume[:reference_bars], 1440.0, 1440.0
        ),
        repeats=1,
    )
    specified_scaled = specified * close.size / reference_bars
    print(
        f"market_state   {close.size:>7} 1m bars: kernel {close.size / compiled:>14,.0f} bars/s, "
        f"reference {reference_bars / specified:>11,.0f} bars/s, "
        f"ratio {specified_scaled / compiled:,.0f}x"
    )


if __name__ == "__main__":
    bench_grid()
    bench_market_state()
