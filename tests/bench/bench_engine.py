"""Benchmark: the perpetual-futures engine against stock backtrader, side by side in one process.

Workload: one year of 1-minute candles (525,600 bars by default), made of the real July 2025
Binance BTC/USDT month in ``tests/bench/data`` repeated back to back, each copy shifted so that
it opens where the previous one closed.  The strategy is an SMA(10)/SMA(30) crossover that
holds a fixed 0.01 BTC long above and short below (sizes do not depend on equity, so every
variant trades on exactly the same bars).

Variants, each timed from building the feed to the end of the run:

(a) stock backtrader as a new user writes it: ``bt.feeds.PandasData``, default ``Cerebro()``
    (``runonce=True``, standard observers), stock broker, no commission;
(b) this engine: perpetual broker at 5x leverage with Binance fees, funding charged from a
    SYNTHETIC 8-hourly funding series (the bench month has no funding file: a rate of
    0.01 % ± 0.01 % varying over a 30-day cycle, settled at 00:00, 08:00, 16:00 UTC), and the
    ``LiquidationClusters`` indicator attached (default map parameters);
(c) this engine with leverage 1, no funding, no fees and no indicator.

All variants start with 100,000 USDT so that (b)'s fees never starve it of margin and it
trades on the same bars as the others.

The script checks that (a) and (c) make the same trades (bar, size and price of every fill,
and the final value) and prints the times and the ratios (b)/(a) and (b)/(c).  Targets:
(b)/(a) <= 0.70 and (b)/(c) <= 1.25.  Each run is timed in process CPU time and wall time;
the ratios are judged on CPU time, which other jobs on a shared machine disturb far less
than wall time (both are printed).  With ``--repeat`` the best round of each variant counts.
Timings are printed, never asserted.

Usage::

    python tests/bench/bench_engine.py [--bars N] [--repeat R] [--only a,b,c] [--profile b]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

BENCH_MONTH = Path(__file__).parent / "data" / "binance_BTC_USDT-1m-2025-07.parquet"
BARS_PER_YEAR = 525_600
ORDER_SIZE = 0.01
CASH = 100_000.0
FAST, SLOW = 10, 30
TARGET_VS_STOCK = 0.70
TARGET_VS_PLAIN = 1.25

Fill = tuple[int, float, float]  # (bar index, signed size, price)


# -- workload -----------------------------------------------------------------------------------
def year_of_candles(bars: int = BARS_PER_YEAR) -> pd.DataFrame:
    """Return ``bars`` 1-minute candles: the bench month repeated with a price offset.

    Each copy is shifted by the previous copy's last close minus the month's first open, so
    the series has no jump at the seams; timestamps continue minute by minute.
    """
    month = pd.read_parquet(BENCH_MONTH)
    prices = ["open", "high", "low", "close"]
    step = float(month["close"].iloc[-1] - month["open"].iloc[0])
    copies = math.ceil(bars / len(month))
    columns = {}
    for name in prices:
        values = month[name].to_numpy()
        columns[name] = np.concatenate([values + k * step for k in range(copies)])[:bars]
    columns["volume"] = np.tile(month["volume"].to_numpy(), copies)[:bars]
    start = pd.Timestamp(int(month["timestamp_ms"].iloc[0]), unit="ms", tz="UTC")
    index = pd.date_range(start, periods=bars, freq="1min", name="time")
    return pd.DataFrame(columns, index=index)


def with_synthetic_funding(candles: pd.DataFrame) -> pd.DataFrame:
    """Add the columns the engine's loader produces, with a synthetic 8-hourly funding series.

    ``funding_rate`` holds the settlement rate on the bar that opens at the settlement time
    (00:00, 08:00, 16:00 UTC) and NaN elsewhere; mark-price columns are NaN (not loaded).
    """
    frame = candles.copy()
    index = frame.index
    settles = (index.minute == 0) & (index.hour % 8 == 0)
    days = (index - index[0]).total_seconds().to_numpy() / 86_400.0
    rate = 0.0001 + 0.0001 * np.sin(2.0 * np.pi * days / 30.0)
    frame["funding_rate"] = np.where(settles, rate, np.nan)
    for name in ("mark_open", "mark_high", "mark_low", "mark_close"):
        frame[name] = np.nan
    frame.attrs = {
        "exchange": "binanceusdm",
        "symbol": "BTC/USDT:USDT",
        "timeframe": "1m",
        "funding_times": (index[settles].asi8 // 1_000_000).astype(np.int64),
    }
    return frame


# -- the strategy, written twice: stock backtrader and a plugin of this engine ----------------
class CrossoverLogic:
    """SMA crossover holding +-ORDER_SIZE; records every fill as (bar, signed size, price)."""

    def setup_crossover(self) -> None:
        fast = bt.indicators.SMA(self.data.close, period=FAST)
        slow = bt.indicators.SMA(self.data.close, period=SLOW)
        self.crossover = bt.indicators.CrossOver(fast, slow)
        self.fills: list[Fill] = []

    def next(self) -> None:
        if self.crossover[0] > 0:
            self.order_target_size(target=ORDER_SIZE)
        elif self.crossover[0] < 0:
            self.order_target_size(target=-ORDER_SIZE)

    def notify_order(self, order: bt.Order) -> None:
        if order.status == order.Completed:
            size = order.executed.size
            self.fills.append((len(self.data) - 1, round(size, 12), order.executed.price))


class StockCrossover(CrossoverLogic, bt.Strategy):
    """The crossover on stock backtrader."""

    def __init__(self) -> None:
        self.setup_crossover()


def engine_strategy(with_clusters: bool) -> type:
    """The crossover as a plugin of this engine, with or without the clusters indicator."""
    import backtest

    class EngineCrossover(CrossoverLogic, backtest.Strategy):
        uses_clusters = with_clusters

        def __init__(self) -> None:
            self.setup_crossover()

    EngineCrossover.__name__ = "EngineCrossover" + ("Clusters" if with_clusters else "")
    return EngineCrossover


# -- the three variants --------------------------------------------------------------------------
class Captured:
    """The strategy instance a run used (to read its fills) and the engine's results."""

    strategy: Any = None
    results: Any = None


def run_stock(candles: pd.DataFrame, captured: Captured) -> float:
    """(a) stock backtrader, as a new user would write it."""
    cerebro = bt.Cerebro()
    cerebro.broker.setcash(CASH)
    cerebro.adddata(bt.feeds.PandasData(dataname=candles.tz_convert(None)))
    cerebro.addstrategy(StockCrossover)
    captured.strategy = cerebro.run()[0]
    return cerebro.broker.getvalue()


def run_engine(frame: pd.DataFrame, captured: Captured, *, full: bool) -> float:
    """(b) when ``full``, else (c): this engine through its runner."""
    from backtest.engine import RunConfig, run

    strategy_class = engine_strategy(with_clusters=full)
    holder: dict[str, Any] = {}

    class Capturing(strategy_class):  # type: ignore[misc, valid-type]
        def stop(self) -> None:
            holder["strategy"] = self

    Capturing.uses_clusters = full
    config = RunConfig(
        symbol="BTC/USDT:USDT",
        timeframe="1m",
        strategy="bench",
        cash=CASH,
        leverage=5.0 if full else 1.0,
        maker_fee=0.0002 if full else 0.0,
        taker_fee=0.0005 if full else 0.0,
        funding=full,
    )
    results = run(config, data=frame, strategy_class=Capturing)
    captured.strategy = holder.get("strategy")
    captured.results = results
    equity = results.equity
    return float(equity["value"].iloc[-1]) if len(equity) else math.nan


# -- measuring ---------------------------------------------------------------------------------
class Timing:
    """Wall-clock and process CPU seconds of one call."""

    def __init__(self, function: Callable[[], Any]) -> None:
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        self.value = function()
        self.wall = time.perf_counter() - wall
        self.cpu = time.process_time() - cpu


def profile(function: Callable[[], Any], rows: int = 30) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(rows)
    print(stream.getvalue())


def compare_fills(stock: list[Fill], engine: list[Fill]) -> str | None:
    """Return None when both runs filled the same orders, else what differs first."""
    if len(stock) != len(engine):
        return f"(a) made {len(stock)} fills, (c) made {len(engine)}"
    for number, (left, right) in enumerate(zip(stock, engine, strict=True)):
        same = left[0] == right[0] and math.isclose(left[1], right[1], abs_tol=1e-12)
        if not (same and math.isclose(left[2], right[2], rel_tol=1e-12)):
            return f"fill {number} differs: (a) {left} vs (c) {right}"
    return None


def describe_full_run(results: Any, fills: list[Fill], stock_fills: list[Fill] | None) -> str:
    """What (b) really modelled: funding, fees, liquidations, the map's lines."""
    funding = results.funding
    paid = float(funding["payment"].sum()) if len(funding) else 0.0
    clusters = results.clusters
    computed = int(np.isfinite(clusters["long_cluster_price"]).sum()) if len(clusters) else 0
    fees = float(results.orders["fee"].sum()) if len(results.orders) else 0.0
    same_bars = ""
    if stock_fills is not None:
        agree = [fill[0] for fill in fills] == [fill[0] for fill in stock_fills]
        same_bars = f" ({'the same bars as' if agree else 'NOT the same bars as'} (a))"
    return (
        f"(b) made {len(fills)} fills{same_bars}; {len(funding)} funding settlements "
        f"({paid:+.2f} USDT paid), fees {fees:.2f} USDT, {len(results.liquidations)} "
        f"liquidations, map lines on {computed:,}/{len(clusters):,} bars"
    )


def ratio_line(
    label: str, numerator: list[Timing], denominator: list[Timing], target: float
) -> str:
    cpu = min(t.cpu for t in numerator) / min(t.cpu for t in denominator)
    wall = min(t.wall for t in numerator) / min(t.wall for t in denominator)
    verdict = "ok" if cpu <= target else "MISSED"
    return (
        f"{label} = {cpu:.3f} on CPU time, {wall:.3f} on wall time  (target <= {target}: {verdict})"
    )


LABELS = {
    "a": "stock backtrader (PandasData, runonce, observers)",
    "b": "engine: 5x, fees, funding, LiquidationClusters",
    "c": "engine: 1x, no funding, no fees, no indicator",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=BARS_PER_YEAR, help="number of 1m bars")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (the best time is kept)")
    parser.add_argument("--only", default="a,b,c", help="variants to run, e.g. a,c")
    parser.add_argument("--profile", choices=("a", "b", "c"), help="cProfile one variant")
    args = parser.parse_args(argv)
    if args.bars < SLOW + 2:
        parser.error(f"--bars must be at least {SLOW + 2}")

    candles = year_of_candles(args.bars)
    frame = with_synthetic_funding(candles)
    variants: dict[str, Callable[[Captured], float]] = {
        "a": lambda captured: run_stock(candles, captured),
        "b": lambda captured: run_engine(frame, captured, full=True),
        "c": lambda captured: run_engine(frame, captured, full=False),
    }
    if args.profile:
        profile(lambda: variants[args.profile](Captured()))
        return 0

    chosen = [name for name in args.only.split(",") if name in variants]
    timings: dict[str, list[Timing]] = {name: [] for name in chosen}
    captures: dict[str, Captured] = {}
    values: dict[str, float] = {}
    print(f"{args.bars:,} bars of 1m candles, SMA({FAST}/{SLOW}) crossover, cash {CASH:,.0f}")
    for round_number in range(args.repeat):
        for name in chosen:
            captured = Captured()
            timing = Timing(lambda name=name, captured=captured: variants[name](captured))
            timings[name].append(timing)
            captures.setdefault(name, captured)
            values[name] = timing.value
            print(
                f"  round {round_number + 1} ({name}) {LABELS[name]:<50} wall {timing.wall:7.2f} s"
                f"  cpu {timing.cpu:7.2f} s  {timing.cpu / args.bars * 1e6:6.1f} us/bar",
                flush=True,
            )

    fills = {name: captured.strategy.fills for name, captured in captures.items()}
    status = 0
    if "b" in captures:
        print(describe_full_run(captures["b"].results, fills["b"], fills.get("a")))
    if "a" in fills and "c" in fills:
        difference = compare_fills(fills["a"], fills["c"])
        if difference is None and not math.isclose(values["a"], values["c"], rel_tol=1e-9):
            difference = f"final values differ: (a) {values['a']:.6f} vs (c) {values['c']:.6f}"
        if difference is None:
            print(f"(a) and (c) made the same {len(fills['a'])} fills")
            print(f"final value (a) {values['a']:.6f}  (c) {values['c']:.6f}")
        else:
            print(f"MISMATCH: {difference}")
            status = 1
    if "b" in timings and "a" in timings:
        print(ratio_line("(b)/(a)", timings["b"], timings["a"], TARGET_VS_STOCK))
    if "b" in timings and "c" in timings:
        print(ratio_line("(b)/(c)", timings["b"], timings["c"], TARGET_VS_PLAIN))
    return status


if __name__ == "__main__":
    sys.exit(main())
