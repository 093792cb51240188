"""The built-ins' array forms equal their event forms: same orders, fills, liquidations, funding.

Each case runs ``backtest.engine.run`` (backtrader, bar by bar) and
:func:`backtest.arrays.run.run_arrays` (``decide`` once, then the array simulator) on the same
market and compares every table the analyzers fill (orders, trades, open trades,
liquidations, funding, rejected, near misses, the per-bar equity) and the final value to 1e-9
relative, and the map lines bit for bit.  Markets: the bundled sample (default settings) and
a year of 1-minute bars built like ``tests/bench/bench_engine.py`` with a synthetic 8-hourly
funding series and no mark-price columns.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.arrays.run import run_arrays
from backtest.engine import RunConfig, run
from backtest.plugins import resolve_strategy

BENCH_MONTH = (
    Path(__file__).resolve().parent.parent
    / "bench"
    / "data"
    / "binance_BTC_USDT-1m-2025-07.parquet"
)
BARS_PER_YEAR = 525_600
#: Tables both engines fill, compared to 1e-9 relative.
TABLES = (
    "orders",
    "trades",
    "open_trades",
    "liquidations",
    "funding",
    "rejected",
    "near_misses",
    "equity",
)


@pytest.fixture(autouse=True)
def _quiet_warmup():
    """The sample has no bars before its first one: the shortened warm-up warning is expected."""
    logger = logging.getLogger("backtest.warmup")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def assert_same_results(event, arrays) -> None:
    """Every table of the two runs equal to 1e-9 relative; the map lines bit for bit."""
    for table in TABLES:
        pd.testing.assert_frame_equal(
            getattr(event, table),
            getattr(arrays, table),
            check_exact=False,
            rtol=1e-9,
            atol=1e-9,
            obj=table,
        )
    final_event = float(event.equity["value"].iloc[-1])
    final_arrays = float(arrays.equity["value"].iloc[-1])
    assert math.isclose(final_event, final_arrays, rel_tol=1e-9, abs_tol=1e-9)
    if event.clusters.empty:
        assert arrays.clusters.empty
    else:
        assert list(arrays.clusters.columns) == list(event.clusters.columns)
        assert arrays.clusters.index.equals(event.clusters.index)
        for name in event.clusters.columns:
            assert np.array_equal(
                event.clusters[name].to_numpy(), arrays.clusters[name].to_numpy(), equal_nan=True
            ), name
    assert arrays.meta["engine"] == "array"
    assert "engine" not in event.meta or event.meta["engine"] == "event"


def both(config: RunConfig, data: pd.DataFrame | None = None):
    return run(config, data=data), run_arrays(config, data=data)


# -- the bundled sample, default settings ---------------------------------------------------
@pytest.mark.parametrize("name", ["ClusterFade", "SmaCross", "BuyAndHold", "CascadeBreakout"])
def test_every_builtin_with_both_forms_agrees_on_the_sample(name):
    event, arrays = both(RunConfig(strategy=name))
    assert len(event.orders) > 0
    assert_same_results(event, arrays)


def test_the_builtins_with_an_array_form():
    from backtest.strategy import strategy_form

    forms = {
        name: strategy_form(resolve_strategy(name))
        for name in ("ClusterFade", "SmaCross", "BuyAndHold", "CascadeBreakout", "ClusterHedge")
    }
    assert forms == {
        "ClusterFade": "both",
        "SmaCross": "both",
        "BuyAndHold": "both",
        "CascadeBreakout": "both",
        "ClusterHedge": "event",
    }


def test_sma_cross_liquidated_at_high_leverage_on_the_sample():
    config = RunConfig(
        strategy="SmaCross",
        params={"allow_short": True, "exposure": 60.0},
        leverage=75.0,
        cash=1_000.0,
    )
    event, arrays = both(config)
    assert len(event.liquidations) >= 3
    assert event.trades["liquidated"].any()
    assert_same_results(event, arrays)


def test_sma_cross_refused_for_margin_agrees_with_the_brokers_reasons():
    config = RunConfig(strategy="SmaCross", params={"allow_short": True, "exposure": 5.0})
    event, arrays = both(config)
    assert len(event.rejected) > 0 and event.orders.empty
    assert arrays.rejected["reason"].tolist() == event.rejected["reason"].tolist()
    assert_same_results(event, arrays)


def test_cluster_fade_with_slippage_cross_margin_and_leverage():
    config = RunConfig(
        strategy="ClusterFade",
        params={"exposure": 4.0, "hold_bars": 20, "fade_shorts": False},
        leverage=10.0,
        margin_mode="cross",
        slippage=0.2,
        slippage_model="volatility",
    )
    event, arrays = both(config)
    assert len(event.orders) > 20
    assert set(event.orders["reason"]) >= {"strategy", "time"}
    assert_same_results(event, arrays)


def test_cascade_breakout_with_looser_arming_and_leverage():
    config = RunConfig(
        strategy="CascadeBreakout",
        params={"min_risk": 1.0, "proximity": 0.02, "hold_bars": 12},
        leverage=10.0,
        slippage=0.0005,
    )
    event, arrays = both(config)
    assert len(event.orders) > 200
    assert_same_results(event, arrays)


def test_cascade_breakout_targets_use_the_runs_standard_shock():
    """A run's cascade shock sets the exit target of both forms (it was fixed at 2 % once)."""
    params = {"min_risk": 1.0, "proximity": 0.02, "hold_bars": 12}
    default = both(RunConfig(strategy="CascadeBreakout", params=params))
    wider = both(
        RunConfig(
            strategy="CascadeBreakout",
            params=params,
            map_params={"cascade": {"standard_shock_pct": 4.0}},
        )
    )
    assert_same_results(*wider)
    assert not default[0].trades["exit_time"].equals(wider[0].trades["exit_time"])

    from strategies.cascade_breakout import CascadeBreakout

    seen: list[float] = []

    class Recording(CascadeBreakout):
        def next(self):
            seen.append(self._shock_fraction())
            super().next()

    config = RunConfig(
        strategy="CascadeBreakout", map_params={"cascade": {"standard_shock_pct": 4.0}}
    )
    run(config, strategy_class=Recording)
    assert set(seen) == {0.04}


def test_sma_cross_on_exact_ties_and_tiny_differences():
    """Prices on a 0.1 grid with plateaus: equal averages and crossings by one ulp agree."""
    rng = np.random.default_rng(7)
    steps = rng.choice([-0.1, 0.0, 0.0, 0.1], size=3_000)
    closes = np.round(100.0 + np.cumsum(steps), 1)
    closes[500:700] = 100.3  # a plateau: both averages equal exactly for a while
    opens = np.concatenate([[closes[0]], closes[:-1]])
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes) + 0.05,
            "low": np.minimum(opens, closes) - 0.05,
            "close": closes,
            "volume": 1.0,
        },
        index=pd.date_range("2025-10-01", periods=len(closes), freq="5min", tz="UTC"),
    )
    frame.attrs = {"symbol": "BTC/USDT:USDT", "timeframe": "5m"}
    for fast, slow in ((3, 7), (10, 30), (30, 10)):
        config = RunConfig(
            strategy="SmaCross", params={"fast": fast, "slow": slow, "allow_short": True}
        )
        event, arrays = both(config, data=frame)
        assert len(event.orders) > 10
        assert_same_results(event, arrays)


def test_crossover_equals_backtraders_indicator():
    """The signal itself, against backtrader's SMA and CrossOver over the same closes."""
    import backtrader as bt

    from strategies.sma_cross import crossover

    rng = np.random.default_rng(3)
    closes = np.round(50.0 + np.cumsum(rng.choice([-0.3, -0.1, 0.0, 0.1, 0.3], 2_000)), 1)
    closes[100:160] = closes[100]
    frame = pd.DataFrame(
        {"open": closes, "high": closes, "low": closes, "close": closes, "volume": 1.0},
        index=pd.date_range("2025-01-01", periods=len(closes), freq="1min"),
    )
    seen: list[float] = []

    class Probe(bt.Strategy):
        params = (("fast", 5), ("slow", 12))

        def __init__(self):
            self.cross = bt.indicators.CrossOver(
                bt.indicators.SMA(self.data.close, period=self.p.fast),
                bt.indicators.SMA(self.data.close, period=self.p.slow),
            )

        def next(self):
            seen.append(self.cross[0])

    for fast, slow in ((5, 12), (12, 5), (2, 3)):
        seen.clear()
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=frame))
        cerebro.addstrategy(Probe, fast=fast, slow=slow)
        cerebro.run(runonce=True, preload=True)
        signal = crossover(closes, fast, slow)
        start = max(fast, slow)
        assert np.all(signal[:start] == 0)
        assert signal[start:].tolist() == [int(value) for value in seen]
        assert np.count_nonzero(signal) > 5


# -- a year of 1-minute bars ----------------------------------------------------------------
@pytest.fixture(scope="module")
def year_of_minutes() -> pd.DataFrame:
    """525,600 1m candles (the bench month repeated), 8-hourly synthetic funding, no marks."""
    month = pd.read_parquet(BENCH_MONTH)
    step = float(month["close"].iloc[-1] - month["open"].iloc[0])
    copies = math.ceil(BARS_PER_YEAR / len(month))
    columns = {
        name: np.concatenate([month[name].to_numpy() + k * step for k in range(copies)])[
            :BARS_PER_YEAR
        ]
        for name in ("open", "high", "low", "close")
    }
    columns["volume"] = np.tile(month["volume"].to_numpy(), copies)[:BARS_PER_YEAR]
    start = pd.Timestamp(int(month["timestamp_ms"].iloc[0]), unit="ms", tz="UTC")
    index = pd.date_range(start, periods=BARS_PER_YEAR, freq="1min", name="time")
    frame = pd.DataFrame(columns, index=index)
    settles = (index.minute == 0) & (index.hour % 8 == 0)
    days = (index - index[0]).total_seconds().to_numpy() / 86_400.0
    rate = 0.0001 + 0.0001 * np.sin(2.0 * np.pi * days / 30.0)
    frame["funding_rate"] = np.where(settles, rate, np.nan)
    frame.attrs = {
        "exchange": "binanceusdm",
        "symbol": "BTC/USDT:USDT",
        "timeframe": "1m",
        "funding_times": (index[settles].asi8 // 1_000_000).astype(np.int64),
    }
    return frame


@pytest.mark.slow
def test_sma_cross_liquidated_on_a_year_of_minutes(year_of_minutes):
    config = RunConfig(
        strategy="SmaCross",
        timeframe="1m",
        params={"allow_short": True, "exposure": 3.0, "fast": 120, "slow": 480},
        leverage=100.0,
        cash=1_000.0,
    )
    event, arrays = both(config, data=year_of_minutes)
    assert len(event.equity) == BARS_PER_YEAR
    assert len(event.liquidations) > 100 and len(event.funding) > 0
    assert_same_results(event, arrays)


@pytest.mark.slow
def test_cluster_fade_on_a_year_of_minutes(year_of_minutes):
    config = RunConfig(strategy="ClusterFade", timeframe="1m")
    event, arrays = both(config, data=year_of_minutes)
    assert len(event.orders) > 1_000 and len(event.funding) > 0
    assert_same_results(event, arrays)


@pytest.mark.slow
def test_cascade_breakout_on_a_year_of_minutes(year_of_minutes):
    config = RunConfig(
        strategy="CascadeBreakout",
        timeframe="1m",
        params={"min_risk": 1.0, "proximity": 0.02},
        slippage=0.0002,
    )
    event, arrays = both(config, data=year_of_minutes)
    assert len(event.orders) > 100 and len(event.funding) > 0
    assert_same_results(event, arrays)
