"""Benchmark: the compiled simulator kernel against its pure-Python twin, side by side.

Workload: one year of 1-minute candles (525,600 bars by default: ``year_of_candles`` of
``bench_engine.py``, the real July 2025 Binance BTC/USDT month repeated with a price offset)
with the SYNTHETIC 8-hourly funding series of ``bench_engine.with_synthetic_funding``.
Decisions: an SMA(10)/SMA(30) crossover, LONG/FLAT (long 1x equity while the fast average is
above the slow one, flat below), orders only on the crossings (NaN elsewhere).  Account:
Binance, isolated margin at 5x with the bundled BTC leverage tiers, taker fee 0.05 %,
clearance fee 1.25 %, funding on, 1 bp fixed slippage:
funding settlements, the gap and range liquidation checks run on every bar with a position.

Both simulators get the same raw arguments (prepared before timing) and are timed on the
simulation only (``backtest.arrays._simulate.simulate`` vs
``backtest.arrays.reference.simulate_reference``), in CPU and wall time; with ``--repeat`` the
best round counts (the twin runs once unless ``--twin-repeat`` says otherwise).  The script
checks that both return the same fills and final value and prints bars/s of each and the
ratio.  Timings are printed, never asserted.

Usage::

    python tests/bench/bench_simulate.py [--bars N] [--repeat R] [--twin-repeat R]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from backtest.arrays.account import Account, tier_arrays
from backtest.arrays.decisions import Decisions
from backtest.arrays.market import market_arrays
from backtest.arrays.simulate import load_simulator, raw_arguments
from backtest.arrays.simulation import Simulation
from backtest.liquidation.tiers import load_tiers

HERE = Path(__file__).parent


def bench_engine() -> types.ModuleType:
    """``tests/bench/bench_engine.py`` (the year of candles and the synthetic funding)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module("bench_engine")


def crossover_decisions(close: np.ndarray) -> Decisions:
    """SmaCross's targets (1.0 on crossings above, 0.0 below, NaN elsewhere) for ``close``."""
    from strategies.sma_cross import crossover

    signal = crossover(np.ascontiguousarray(close, dtype=np.float64), 10, 30)
    target = np.full(close.shape[0], np.nan)
    target[signal > 0] = 1.0
    target[signal < 0] = 0.0
    return Decisions.from_target(target)


def account() -> Account:
    tiers = load_tiers("BTC/USDT:USDT", at="2025-07-01")
    floor, cap, rate, cum, max_leverage = tier_arrays(tiers)
    return Account(
        cash=100_000.0,
        leverage=5.0,
        taker_fee=0.0005,
        maker_fee=0.0002,
        liquidation_fee=0.0125,
        mult=1.0,
        venue="binance",
        margin_mode="isolated",
        funding=True,
        slippage=0.0001,
        slippage_model="fixed",
        tier_floor=floor,
        tier_cap=cap,
        tier_rate=rate,
        tier_cum=cum,
        tier_max_leverage=max_leverage,
        label=tiers.label,
    ).check()


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best CPU and wall seconds of ``repeat`` calls, and the last result."""
    best_cpu = best_wall = float("inf")
    result = None
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = function()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall, result


def main() -> None:
    engine = bench_engine()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=engine.BARS_PER_YEAR)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the kernel")
    parser.add_argument("--twin-repeat", type=int, default=1, help="rounds of the twin")
    args = parser.parse_args()

    frame = engine.with_synthetic_funding(engine.year_of_candles(args.bars))
    market = market_arrays(frame)
    decisions = crossover_decisions(market.close)
    arguments = raw_arguments(market, decisions, account())
    kernel = load_simulator()
    from backtest.arrays.reference import simulate_reference

    kernel(*arguments)  # warm-up (first touch of the arrays)
    kernel_cpu, kernel_wall, compiled = timed(lambda: kernel(*arguments), args.repeat)
    twin_cpu, twin_wall, twin = timed(lambda: simulate_reference(*arguments), args.twin_repeat)

    compiled, twin = Simulation(*compiled), Simulation(*twin)
    same = (
        np.array_equal(compiled.fill_bar, twin.fill_bar)
        and np.allclose(compiled.fill_size, twin.fill_size, rtol=1e-12, atol=0.0)
        and np.allclose(compiled.fill_price, twin.fill_price, rtol=1e-12, atol=0.0)
        and abs(compiled.final_value - twin.final_value) <= 1e-12 * abs(twin.final_value)
    )
    bars = len(market)
    print(
        f"{bars:,} 1m bars, {compiled.fill_bar.size:,} fills, {compiled.funding_bar.size:,} "
        f"funding settlements, {compiled.liq_bar.size:,} liquidations; "
        f"final value {compiled.final_value:,.2f}; kernel and twin agree: {same}"
    )
    for name, cpu, wall in (
        ("kernel (backtest.arrays._simulate)", kernel_cpu, kernel_wall),
        ("twin (backtest.arrays.reference)", twin_cpu, twin_wall),
    ):
        print(
            f"{name:36s} cpu {cpu:8.4f} s  wall {wall:8.4f} s  "
            f"{bars / cpu / 1e6:9.2f} M bars/s (CPU)"
        )
    print(f"kernel / twin speed ratio: {twin_cpu / kernel_cpu:,.0f}x (CPU time)")


if __name__ == "__main__":
    main()
