"""Benchmark: one portfolio run of two symbols against two single-symbol runs, side by side.

Workload: the bundled Binance BTC/USDT:USDT and ETH/USDT:USDT 5m sample (2025-10-01..20,
5,760 bars each), frames loaded once before timing.  Variants, each a full
:func:`backtest.engine.run` (feeds, maps, broker, analyzers, the report's heatmaps):

(a) ``BuyAndHold`` on BTC, then on ETH: two single-symbol runs;
(b) one portfolio run of BTC and ETH with ``ClusterRotation`` (a map per symbol, orders on
    both) — the same amount of map work as (a) plus the map lines the strategy reads;
(c) ``ClusterFade`` on BTC, then on ETH (map-driven single runs, for scale).

Prints CPU and wall seconds and the ratio (b)/(a) and (b)/(c) on CPU time; with ``--repeat``
the best round counts.  Timings are printed, never asserted.

Usage::

    python tests/bench/bench_portfolio.py [--repeat R]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

from backtest.engine import RunConfig, run
from backtest.market.store import load_market

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")


def timed(function: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best CPU and wall seconds of ``repeat`` calls."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        function()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("backtest.warmup").setLevel(logging.ERROR)
    frames = {symbol: load_market(symbol, "5m") for symbol in SYMBOLS}

    def singles(strategy: str) -> Callable[[], object]:
        def both() -> None:
            for symbol in SYMBOLS:
                run(RunConfig(symbol=symbol, strategy=strategy), data=frames[symbol])

        return both

    def portfolio() -> None:
        run(RunConfig(symbol=list(SYMBOLS), strategy="ClusterRotation"), data=dict(frames))

    results = {
        "(a) two single BuyAndHold runs": timed(singles("BuyAndHold"), args.repeat),
        "(b) one BTC+ETH ClusterRotation portfolio": timed(portfolio, args.repeat),
        "(c) two single ClusterFade runs": timed(singles("ClusterFade"), args.repeat),
    }
    for name, (cpu, wall) in results.items():
        print(f"{name:45s} cpu {cpu:7.3f} s   wall {wall:7.3f} s")
    a, b, c = (cpu for cpu, _ in results.values())
    print(f"(b)/(a) = {b / a:.2f}   (b)/(c) = {b / c:.2f}   (CPU time)")


if __name__ == "__main__":
    main()
