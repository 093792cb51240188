"""Benchmark: the array path against backtesting.py and vectorbt, and a 1,000-run array sweep.

Part 1 (default) — one year of 1-minute candles (525,600 bars: ``year_of_candles`` of
``bench_engine.py``, the real July 2025 Binance BTC/USDT month repeated with a price offset),
one SMA(10)/SMA(30) crossover, LONG/FLAT (long while the fast average is above the slow one,
flat below; orders only on crossings), run by each tool in the way its users write it:

- backtesting.py: ``Strategy`` with ``self.I`` SMAs and ``backtesting.lib.crossover``, fills at
  the next bar's open (its default, like ours), commission 0.05 %, margin 1/3 (3x) with
  ``buy(size=1/3)`` (about one equity of notional).  backtesting.py trades whole units, so it
  runs as its ``FractionalBacktest`` (whole satoshis), which keeps trading while fees shrink
  the account (the sizes differ a little from the others; the bars traded do not).
- vectorbt: ``vbt.MA`` averages, ``ma_crossed_above``/``ma_crossed_below`` signals shifted one
  bar, ``Portfolio.from_signals`` filled at the open (the next-open fill), fees 0.05 %, all cash.
  Timed warm (the best of ``--repeat`` calls after a first call compiled numba) and cold, each in
  a fresh process: once with an empty numba cache (everything compiled, a first run on a
  machine) and once with vectorbt's on-disk numba cache already filled (a user's next launch).
- ours: ``strategies.sma_cross.SmaCross.decide(bars, params)`` feeding
  ``backtest.arrays.simulate(market, decisions, account)`` (the compiled kernel) with the
  perpetual features on: Binance fees (taker 0.05 %, maker 0.02 %), funding charged from the
  SYNTHETIC 8-hourly series of ``bench_engine.with_synthetic_funding``, leverage 3 with
  Binance's leverage tiers, isolated margin, liquidation checked on every bar.  Timed from the
  arrays of the run (market columns, the strategy's ``Bars``, the account) to the finished
  ``Simulation``: the decisions plus the simulation.  Shown beside it for context: the
  simulation alone, and a whole ``run_arrays`` (frame checks and the ``Results`` tables too).
  ``--simulator python`` runs the pure-Python twin instead of the kernel (a check, slow).
- optionally (``--event``, slow) the event engine on the same frame, with the same settings:
  its fills and final value are compared with the array path's (they must be identical).

Every tool must trade on the same bars with the same sides: the fills are compared and the
first difference printed.  Each timing is process CPU time and wall time, the best of
``--repeat`` rounds; the load average is printed next to every measurement.  Ratios are judged
on CPU time.  Targets: ours at least 30x faster than backtesting.py, within 2x of warm vectorbt
(or faster), at least 2 million bars/s.

Part 2 (``--sweep``) — a 1,000-combination grid (10 x 10 x 10 over ``min_swept_share``,
``take_profit`` and ``stop_loss``) of ClusterFade's array form over the stored 5m BTC/USDT
history in ``data/history`` (binanceusdm; 2025-01-07 .. 2025-12-01, 94,464 bars after the map's
warm-up: the store holds 335 days, not a full year), run by the real CLI (``python -m backtest
sweep ... --engine array --workers 2``) in a subprocess, timed wall-clock from launch to exit
(worker start-up, loading and the map's lines included).  Target: under 60 s on 2 cores for a
year of 5m bars (105,120), judged on the time scaled by 105,120 / bars traded.  The CPU seconds
of all the sweep's processes are printed too: divided by the workers, they are the wall time
the sweep needs on otherwise idle cores, whatever the load while it was measured.

A competitor that is not installed is skipped with a printed line (``pip install -e .[bench]``
installs both).  Timings are printed, never asserted.

Usage::

    python tests/bench/bench_array.py [--bars N] [--repeat R] [--only ours,backtesting,vectorbt]
        [--no-cold] [--event] [--simulator auto|python] [--sweep] [--sweep-workers 2]
    python tests/bench/bench_array.py --only "" --sweep      # the sweep alone
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FAST, SLOW = 10, 30
CASH = 100_000.0
LEVERAGE = 3.0
TAKER_FEE, MAKER_FEE = 0.0005, 0.0002
SYMBOL, EXCHANGE = "BTC/USDT:USDT", "binanceusdm"
TARGET_VS_BACKTESTING = 30.0
TARGET_VS_VECTORBT = 2.0
TARGET_BARS_PER_SECOND = 2_000_000.0
TARGET_SWEEP_SECONDS = 60.0
SWEEP_GRID = {
    "min_swept_share": [round(0.01 * k, 3) for k in range(1, 11)],
    "take_profit": [round(0.005 * k, 4) for k in range(1, 11)],
    "stop_loss": [round(0.005 * k, 4) for k in range(1, 11)],
}
# the stored history starts 2024-12-31: from 2025-01-07 the map's automatic warm-up (6 days
# 2 hours at the default half-life) is all there
SWEEP_SINCE, SWEEP_UNTIL = "2025-01-07", "2025-12-01"
YEAR_OF_5M_BARS = 105_120

Fill = tuple[int, int]  # (bar index of the fill, +1 buy / -1 sell)

# backtesting.py draws a tqdm progress bar; a user timing it turns it off the same way.
os.environ.setdefault("TQDM_DISABLE", "1")


def bench_engine() -> types.ModuleType:
    """``tests/bench/bench_engine.py`` (the year of candles and the synthetic funding)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module("bench_engine")


def load_text() -> str:
    """The 1/5/15-minute load averages of the machine, for the line of a measurement."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}/{fifteen:.2f}"


def installed(module: str) -> bool:
    """Whether ``module`` imports (a competitor may be missing, or broken: say why)."""
    if importlib.util.find_spec(module) is None:
        return False
    try:
        importlib.import_module(module)
    except Exception as error:  # e.g. numba built for another NumPy
        print(f"{module}: installed but does not import ({type(error).__name__}: {error})")
        return False
    return True


@dataclass
class Outcome:
    """One tool's timings (best of the rounds counts), fills and final value."""

    label: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    final_value: float = math.nan
    notes: list[str] = field(default_factory=list)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)

    @property
    def best_wall(self) -> float:
        return min(self.wall)


def timed(outcome: Outcome, function: Callable[[], Any], bars: int, round_number: int) -> Any:
    """Run ``function`` once with bench_engine's Timing, record and print the times."""
    timing = bench_engine().Timing(function)
    outcome.wall.append(timing.wall)
    outcome.cpu.append(timing.cpu)
    print(
        f"  round {round_number} {outcome.label:<50} wall {timing.wall:8.3f} s  "
        f"cpu {timing.cpu:8.3f} s  {bars / max(timing.cpu, 1e-12) / 1e6:7.2f} M bars/s  "
        f"({load_text()})",
        flush=True,
    )
    return timing.value


# -- backtesting.py ----------------------------------------------------------------------------
def _rolling_mean(values: Any, period: int) -> np.ndarray:
    return pd.Series(np.asarray(values, dtype=float)).rolling(period).mean().to_numpy()


def backtesting_strategy() -> type:
    """The crossover as a backtesting.py user writes it (long on the up-cross, flat on down)."""
    from backtesting import Strategy
    from backtesting.lib import crossover

    class SmaCrossBacktesting(Strategy):
        def init(self) -> None:
            self.fast = self.I(_rolling_mean, self.data.Close, FAST)
            self.slow = self.I(_rolling_mean, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                if not self.position:
                    self.buy(size=1.0 / LEVERAGE)
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    return SmaCrossBacktesting


def backtesting_frame(candles: pd.DataFrame) -> pd.DataFrame:
    """The candles as backtesting.py wants them (capitalised columns, naive index)."""
    return candles.rename(columns=str.capitalize).tz_convert(None)


def run_backtesting(data: pd.DataFrame, strategy: type) -> Any:
    """One backtesting.py run on :func:`backtesting_frame` data (Backtest, run, statistics)."""
    from backtesting.lib import FractionalBacktest

    backtest = FractionalBacktest(
        data, strategy, cash=CASH, commission=TAKER_FEE, margin=1.0 / LEVERAGE
    )
    return backtest.run()


def backtesting_fills(stats: Any) -> list[Fill]:
    """Entry and exit bars of backtesting.py's trades (an open last trade: its entry only)."""
    fills: list[Fill] = []
    for trade in stats._trades.itertuples():
        side = 1 if trade.Size > 0 else -1
        fills.append((int(trade.EntryBar), side))
        if not pd.isna(trade.ExitBar):
            fills.append((int(trade.ExitBar), -side))
    for trade in stats._strategy.trades:  # still open at the end: not in the statistics
        fills.append((int(trade.entry_bar), 1 if trade.size > 0 else -1))
    return sorted(fills)


def bench_backtesting(candles: pd.DataFrame, repeat: int) -> Outcome | None:
    if not installed("backtesting"):
        print("backtesting.py: not available, skipped (pip install -e .[bench])")
        return None
    import warnings

    outcome = Outcome("backtesting.py (next-open fills, 3x margin)")
    strategy = backtesting_strategy()
    data = backtesting_frame(candles)  # prepared before timing, as our arrays are
    stats = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for round_number in range(1, repeat + 1):
            stats = timed(
                outcome,
                lambda: run_backtesting(data, strategy),
                len(candles),
                round_number,
            )
    outcome.fills = backtesting_fills(stats)
    outcome.final_value = float(stats["Equity Final [$]"])
    if stats._strategy.trades:
        outcome.notes.append(f"{len(stats._strategy.trades)} trade(s) still open at the end")
    return outcome


# -- vectorbt ----------------------------------------------------------------------------------
def vectorbt_run(candles: pd.DataFrame) -> Any:
    """The crossover on vectorbt: MAs, crossings, next-open fills through from_signals."""
    import vectorbt as vbt

    if candles.index.tz is not None:  # a UTC index costs vectorbt seconds (object arrays)
        candles = candles.tz_convert(None)
    close = candles["close"]
    fast = vbt.MA.run(close, FAST, short_name="fast")
    slow = vbt.MA.run(close, SLOW, short_name="slow")
    entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
    exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
    return vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=candles["open"],
        fees=TAKER_FEE,
        init_cash=CASH,
        direction="longonly",
        freq="1min",
    )


def vectorbt_fills(portfolio: Any) -> list[Fill]:
    records = portfolio.orders.values
    sides = np.where(records["side"] == 0, 1, -1)
    return [(int(bar), int(side)) for bar, side in zip(records["idx"], sides, strict=True)]


def vectorbt_child(bars: int) -> None:
    """Inside a fresh process: time the import and the first call; print one JSON line."""
    candles = bench_engine().year_of_candles(bars)
    wall, cpu = time.perf_counter(), time.process_time()
    import vectorbt  # noqa: F401

    imported_wall, imported_cpu = time.perf_counter(), time.process_time()
    portfolio = vectorbt_run(candles)
    final_value = float(portfolio.final_value())
    done_wall, done_cpu = time.perf_counter(), time.process_time()
    print(
        json.dumps(
            {
                "import_wall": imported_wall - wall,
                "import_cpu": imported_cpu - cpu,
                "first_wall": done_wall - imported_wall,
                "first_cpu": done_cpu - imported_cpu,
                "fills": len(portfolio.orders.values),
                "final_value": final_value,
            }
        )
    )


def vectorbt_cold(bars: int, empty_cache: bool) -> dict[str, float] | None:
    """Time vectorbt's first call in a fresh process (with an empty or the usual numba cache)."""
    environment = dict(os.environ)
    scratch = tempfile.mkdtemp(prefix="bench-numba-") if empty_cache else None
    if scratch:
        environment["NUMBA_CACHE_DIR"] = scratch
    try:
        completed = subprocess.run(
            [sys.executable, __file__, "--vectorbt-child", "--bars", str(bars)],
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        error = completed.stderr.strip().splitlines()
        print(f"  vectorbt cold run failed: {error[-1] if error else completed.returncode}")
        return None
    return json.loads(lines[-1])


def bench_vectorbt(candles: pd.DataFrame, repeat: int, cold: bool) -> Outcome | None:
    if not installed("vectorbt"):
        print("vectorbt: not available, skipped (pip install -e .[bench]; needs numba)")
        return None
    outcome = Outcome("vectorbt warm (MA + signals + from_signals)")
    bars = len(candles)
    if cold:
        for empty_cache, label in ((True, "empty numba cache"), (False, "numba cache filled")):
            result = vectorbt_cold(bars, empty_cache)
            if result is None:
                continue
            note = (
                f"cold, fresh process, {label}: import {result['import_wall']:.2f} s wall, "
                f"first call {result['first_wall']:.2f} s wall / {result['first_cpu']:.2f} s "
                f"cpu ({load_text()})"
            )
            print(f"  vectorbt {note}")
            outcome.notes.append(note)
    candles = candles.tz_convert(None)  # prepared before timing, as our arrays are
    started = time.perf_counter()
    vectorbt_run(candles).final_value()
    print(
        f"  vectorbt first call in this process (compiles or loads numba code): "
        f"{time.perf_counter() - started:.2f} s wall ({load_text()})"
    )
    portfolio = None
    for round_number in range(1, repeat + 1):
        portfolio = timed(outcome, lambda: vectorbt_run(candles), bars, round_number)
    assert portfolio is not None
    outcome.fills = vectorbt_fills(portfolio)
    outcome.final_value = float(portfolio.final_value())
    return outcome


# -- ours --------------------------------------------------------------------------------------
def our_config() -> Any:
    from backtest.engine import RunConfig

    return RunConfig(
        symbol=SYMBOL,
        exchange=EXCHANGE,
        timeframe="1m",
        strategy="SmaCross",
        params={"fast": FAST, "slow": SLOW, "exposure": 1.0, "allow_short": False},
        cash=CASH,
        leverage=LEVERAGE,
        margin_mode="isolated",
        maker_fee=MAKER_FEE,
        taker_fee=TAKER_FEE,
        funding=True,
        warmup="0",
    )


def bench_ours(frame: pd.DataFrame, repeat: int, engine: str) -> dict[str, Outcome] | None:
    """Ours: decide + simulate (the target), simulate alone, and a whole ``run_arrays``."""
    try:
        from backtest.arrays import account_for, market_arrays, simulate
        from backtest.arrays.bars import make_bars
        from backtest.arrays.run import run_arrays
        from backtest.engine.runner import load_run_tiers
        from backtest.strategy import array_params, call_decide
        from strategies.sma_cross import SmaCross

        if not hasattr(SmaCross, "decide"):
            raise ImportError("SmaCross has no decide() yet")
    except ImportError as error:
        print(f"our array path: not available ({error}), skipped")
        return None
    config = our_config()
    tiers = load_run_tiers(config, frame.index[0])
    account = account_for(config, tiers)
    market = market_arrays(frame)
    bars = make_bars(frame)  # no map lines: SmaCross does not use the map
    params = array_params(SmaCross, config.params)
    count = len(frame)
    outcomes = {
        "ours": Outcome("ours: SmaCross.decide + simulate"),
        "kernel": Outcome("ours: simulate alone (the kernel)"),
        "run_arrays": Outcome("ours: run_arrays (+ checks, Results tables)"),
    }

    def decide_and_simulate() -> Any:
        return simulate(market, call_decide(SmaCross, bars, params), account, engine=engine)

    decide_and_simulate()  # the first call imports and loads the kernel
    simulation = None
    for round_number in range(1, repeat + 1):
        simulation = timed(outcomes["ours"], decide_and_simulate, count, round_number)
    decisions = call_decide(SmaCross, bars, params)
    for round_number in range(1, repeat + 1):
        timed(
            outcomes["kernel"],
            lambda: simulate(market, decisions, account, engine=engine),
            count,
            round_number,
        )
    for round_number in range(1, repeat + 1):
        timed(
            outcomes["run_arrays"],
            lambda: run_arrays(
                config, data=frame, strategy_class=SmaCross, tiers=tiers, simulator=engine
            ),
            count,
            round_number,
        )
    assert simulation is not None
    ours = outcomes["ours"]
    sides = np.sign(np.asarray(simulation.fill_size, dtype=float)).astype(int)
    ours.fills = [
        (int(bar), int(side)) for bar, side in zip(simulation.fill_bar, sides, strict=True)
    ]
    ours.final_value = float(simulation.final_value)
    funding_paid = -float(np.sum(simulation.funding_payment))
    ours.notes.append(
        f"{len(simulation.funding_bar)} funding settlements (funding PnL {funding_paid:+.2f} "
        f"USDT), fees {float(np.sum(simulation.fill_fee)):.2f} USDT, "
        f"{len(simulation.liq_bar)} liquidations, {len(simulation.reject_bar)} rejections; "
        f"leverage {account.leverage:g}, {account.margin_mode} margin, {len(account.tier_cap)} "
        f"leverage tiers of {account.label}"
    )
    return outcomes


def bench_event(frame: pd.DataFrame) -> Outcome:
    """The event engine on the same frame and settings (slow; for context and equality)."""
    from backtest.engine import run
    from strategies.sma_cross import SmaCross

    outcome = Outcome("event engine (backtrader + perpetual broker)")
    config = our_config()
    results = timed(
        outcome, lambda: run(config, data=frame, strategy_class=SmaCross), len(frame), 1
    )
    orders = results.orders
    positions = frame.index.get_indexer(pd.DatetimeIndex(orders["time"]))
    sides = np.where(orders["side"].to_numpy() == "buy", 1, -1)
    outcome.fills = [(int(bar), int(side)) for bar, side in zip(positions, sides, strict=True)]
    outcome.final_value = float(results.equity["value"].iloc[-1])
    return outcome


# -- comparing ---------------------------------------------------------------------------------
def compare(reference: Outcome, other: Outcome) -> str:
    """One line: same fill bars and sides as ``reference``, or the first difference."""
    left, right = reference.fills, other.fills
    for number, (a, b) in enumerate(zip(left, right, strict=False)):
        if a != b:
            return (
                f"DIFFER from fill {number}: {reference.label.split(' ')[0]} {a} vs "
                f"{other.label.split(' ')[0]} {b} (bar, side)"
            )
    if len(left) != len(right):
        agreeing = min(len(left), len(right))
        return f"DIFFER: {len(left)} fills vs {len(right)} (the first {agreeing} agree)"
    return f"same {len(left)} fills (bar and side of every entry and exit)"


def speed_text(ratio: float) -> str:
    """``other time / our time`` as words: "4.20x faster" or "1.30x slower"."""
    return f"{ratio:.2f}x faster" if ratio >= 1.0 else f"{1.0 / ratio:.2f}x slower"


def ratio_line(label: str, ours: Outcome, other: Outcome, target: float, *, faster: bool) -> str:
    """``other / ours`` on CPU (and wall) time, judged against ``target`` on CPU time."""
    cpu = other.best_cpu / ours.best_cpu
    wall = other.best_wall / ours.best_wall
    if faster:
        verdict = "ok" if cpu >= target else f"MISSED by {target / cpu:.2f}x"
        goal = f"target >= {target:g}x faster"
    else:
        verdict = "ok" if cpu >= 1.0 / target else f"MISSED by {1.0 / (target * cpu):.2f}x"
        goal = f"target: at most {target:g}x slower"
    return (
        f"{label}: ours is {speed_text(cpu)} on CPU time, {speed_text(wall)} on wall "
        f"({goal}: {verdict})"
    )


# -- part 2: the sweep -------------------------------------------------------------------------
def sweep_command(out: Path, workers: int, data_dir: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "backtest",
        "sweep",
        "--strategy",
        "ClusterFade",
        "--exchange",
        EXCHANGE,
        "--symbol",
        SYMBOL,
        "--timeframe",
        "5m",
        "--since",
        SWEEP_SINCE,
        "--until",
        SWEEP_UNTIL,
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
        "--engine",
        "array",
        "--out",
        str(out),
    ]
    for name, values in SWEEP_GRID.items():
        command += ["-g", f"{name}={','.join(str(value) for value in values)}"]
    return command


def bench_sweep(workers: int, data_dir: Path) -> float | None:
    """Run the 1,000-combination sweep through the CLI; print and return its wall time."""
    combinations = math.prod(len(values) for values in SWEEP_GRID.values())
    history = data_dir / EXCHANGE / "BTC_USDT_USDT-5m.parquet"
    if not history.exists():
        print(f"sweep: {history} is missing, skipped")
        return None
    stored = pd.read_parquet(history, columns=["timestamp_ms"])
    times = pd.to_datetime(stored["timestamp_ms"], unit="ms", utc=True)
    traded = int(((times >= SWEEP_SINCE) & (times < SWEEP_UNTIL)).sum())
    print(
        f"sweep: ClusterFade array form, {combinations:,} combinations "
        f"({' x '.join(f'{len(v)} {k}' for k, v in SWEEP_GRID.items())}), {traded:,} 5m bars "
        f"{SWEEP_SINCE} .. {SWEEP_UNTIL} of {data_dir}, {workers} workers ({load_text()})"
    )
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
        out = Path(folder) / "sweep"
        command = sweep_command(out, workers, data_dir)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        progress = ("sweep:", "\x1b")  # the progress bar's redraws on stderr
        errors = [line for line in completed.stderr.splitlines() if not line.startswith(progress)]
        for line in [*errors[-8:], *completed.stdout.strip().splitlines()[:8]]:
            if not line.strip():
                continue
            print(f"    | {line}")
        if completed.returncode != 0:
            print(f"sweep: FAILED with exit status {completed.returncode} after {seconds:.1f} s")
            return None
        table = pd.read_csv(out / "results.csv")
        status = table["status"].value_counts().to_dict() if "status" in table else {}
        print(f"sweep: results.csv has {len(table):,} runs {status}")
    year = seconds * YEAR_OF_5M_BARS / traded  # all of it scaled, start-up included
    missed = f"MISSED by {year / TARGET_SWEEP_SECONDS:.2f}x"
    verdict = "ok" if year < TARGET_SWEEP_SECONDS else missed
    print(
        f"sweep: {seconds:.1f} s wall for {combinations:,} runs of {traded:,} bars = "
        f"{combinations / seconds:.1f} runs/s, {combinations * traded / seconds / 1e6:.2f} M "
        f"bars/s; scaled to a year ({YEAR_OF_5M_BARS:,} bars) {year:.1f} s "
        f"(target < {TARGET_SWEEP_SECONDS:g} s: {verdict}; {load_text()})"
    )
    print(
        f"sweep: {cpu:.1f} s of CPU in the sweep's processes (workers included): at least "
        f"{cpu / workers:.1f} s on {workers} free cores whatever the load, "
        f"{cpu / workers * YEAR_OF_5M_BARS / traded:.1f} s scaled to a year"
    )
    return seconds


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, help="number of 1m bars (default a year, 525,600)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the best time is kept)")
    parser.add_argument(
        "--only",
        default="ours,backtesting,vectorbt",
        help="tools of part 1 to run, comma-separated (ours, backtesting, vectorbt); '' for none",
    )
    parser.add_argument("--no-cold", action="store_true", help="skip vectorbt's cold runs")
    parser.add_argument("--event", action="store_true", help="also the event engine (slow)")
    parser.add_argument("--sweep", action="store_true", help="also part 2, the 1,000-run sweep")
    parser.add_argument("--sweep-workers", type=int, default=2, help="workers of the sweep")
    parser.add_argument(
        "--data-dir", default=str(ROOT / "data" / "history"), help="store of the sweep's 5m bars"
    )
    parser.add_argument(
        "--simulator",
        choices=("auto", "python"),
        default="auto",
        help="our simulator: the compiled kernel (auto) or its pure-Python twin (slow; checks)",
    )
    parser.add_argument("--vectorbt-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    engine_bench = bench_engine()
    bars = args.bars or engine_bench.BARS_PER_YEAR
    if bars < SLOW + 2:
        parser.error(f"--bars must be at least {SLOW + 2}")
    if args.vectorbt_child:
        vectorbt_child(bars)
        return 0
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {load_text()}")
    outcomes: dict[str, Outcome] = {}
    if chosen or args.event:
        candles = engine_bench.year_of_candles(bars)
        frame = engine_bench.with_synthetic_funding(candles)
        print(
            f"part 1: {bars:,} bars of 1m candles, SMA({FAST}/{SLOW}) crossover, long/flat, "
            f"best of {args.repeat}"
        )
        if "ours" in chosen:
            outcomes.update(bench_ours(frame, args.repeat, args.simulator) or {})
        if "backtesting" in chosen:
            outcome = bench_backtesting(candles, args.repeat)
            if outcome is not None:
                outcomes["backtesting"] = outcome
        if "vectorbt" in chosen:
            outcome = bench_vectorbt(candles, args.repeat, cold=not args.no_cold)
            if outcome is not None:
                outcomes["vectorbt"] = outcome
        if args.event:
            outcomes["event"] = bench_event(frame)
        report(outcomes, bars)
    if args.sweep:
        bench_sweep(args.sweep_workers, Path(args.data_dir))
    return 0


def report(outcomes: dict[str, Outcome], bars: int) -> None:
    """Fills compared with the first tool's, notes, bars/s and the ratios."""
    tools = [name for name in ("ours", "backtesting", "vectorbt", "event") if name in outcomes]
    if not tools:
        return
    print("results:")
    for name in [*tools, *(name for name in ("kernel", "run_arrays") if name in outcomes)]:
        outcome = outcomes[name]
        print(
            f"  {outcome.label:<50} best cpu {outcome.best_cpu:8.3f} s  wall "
            f"{outcome.best_wall:8.3f} s  {bars / outcome.best_cpu / 1e6:7.2f} M bars/s"
            + (f"  final value {outcome.final_value:,.2f}" if outcome.fills else "")
        )
        for note in outcome.notes:
            print(f"      {note}")
    reference = outcomes[tools[0]]
    for name in tools[1:]:
        print(f"  fills {tools[0]} vs {name}: {compare(reference, outcomes[name])}")
    if "ours" in outcomes and "event" in outcomes:
        ours, event = outcomes["ours"], outcomes["event"]
        relative = abs(ours.final_value - event.final_value) / abs(event.final_value)
        print(f"  final value ours vs event engine: relative difference {relative:.2e}")
    if "ours" not in outcomes:
        return
    ours = outcomes["ours"]
    rate = bars / ours.best_cpu
    verdict = (
        "ok"
        if rate >= TARGET_BARS_PER_SECOND
        else f"MISSED by {TARGET_BARS_PER_SECOND / rate:.2f}x"
    )
    print(
        f"ours: {rate / 1e6:.2f} M bars/s on CPU, {bars / ours.best_wall / 1e6:.2f} M on wall "
        f"(target >= {TARGET_BARS_PER_SECOND / 1e6:g} M: {verdict})"
    )
    if "backtesting" in outcomes:
        print(
            ratio_line(
                "vs backtesting.py",
                ours,
                outcomes["backtesting"],
                TARGET_VS_BACKTESTING,
                faster=True,
            )
        )
    if "vectorbt" in outcomes:
        print(
            ratio_line(
                "vs warm vectorbt", ours, outcomes["vectorbt"], TARGET_VS_VECTORBT, faster=False
            )
        )
        if "kernel" in outcomes:
            print(
                ratio_line(
                    "  (simulate alone vs warm vectorbt)",
                    outcomes["kernel"],
                    outcomes["vectorbt"],
                    TARGET_VS_VECTORBT,
                    faster=False,
                )
            )
    if "event" in outcomes:
        event = outcomes["event"]
        print(f"vs the event engine: ours is {event.best_cpu / ours.best_cpu:.1f}x faster on CPU")
    print(f"({load_text()})")


if __name__ == "__main__":
    sys.exit(main())
