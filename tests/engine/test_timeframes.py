"""Slower timeframes beside the traded one (Strategy.timeframes, backtest.engine.resample)."""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import backtest
from backtest.engine import RunConfig, build_cerebro
from backtest.engine.resample import resample_frame
from backtest.errors import ConfigError, DataError, PluginError
from backtest.market.store import load_market

SINCE, UNTIL = "2025-10-08", "2025-10-10"


@pytest.fixture(scope="module")
def five_minutes() -> pd.DataFrame:
    """Bundled BTC/USDT:USDT 5m candles, two days."""
    return load_market("BTC/USDT:USDT", "5m", since=SINCE, until=UNTIL)


def test_hourly_bars_equal_a_pandas_resample_of_the_five_minute_bars(five_minutes):
    hourly = resample_frame(five_minutes, "1h", "5m")
    candles = five_minutes[["open", "high", "low", "close", "volume"]].copy()
    candles.attrs = {}
    expected = candles.resample("1h", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    assert len(hourly) == len(expected) == 48
    for column in expected.columns:
        assert np.array_equal(hourly[column].to_numpy(), expected[column].to_numpy()), column
    # Stamped at the open of each hour's last 5m bar; the hour's start kept beside it.
    assert (hourly.index == expected.index + pd.Timedelta("55min")).all()
    assert (pd.DatetimeIndex(hourly["period_start"]) == expected.index).all()


def test_an_unfinished_last_hour_is_left_out_and_bad_timeframes_are_refused(five_minutes):
    cut = five_minutes.iloc[:-3]  # the last hour lacks its last three 5m bars
    assert len(resample_frame(cut, "1h", "5m")) == 47
    with pytest.raises(ConfigError, match="whole multiple"):
        resample_frame(five_minutes, "7m", "5m")
    with pytest.raises(ConfigError, match="whole multiple"):
        resample_frame(five_minutes, "5m", "5m")
    with pytest.raises(DataError, match="do not fill one 1d bar"):
        resample_frame(five_minutes.iloc[:100], "1d", "5m")


class _Watcher(backtest.Strategy):
    """Record, on every 5m bar, which hourly bar is visible."""

    uses_clusters = False
    timeframes = ("1h",)

    def __init__(self):
        self.hourly = self.timeframe_data("1h")
        self.seen: list[tuple[pd.Timestamp, pd.Timestamp, float]] = []

    def next(self):
        self.seen.append(
            (
                pd.Timestamp(self.data.datetime.datetime(0), tz="UTC"),
                pd.Timestamp(self.hourly.datetime.datetime(0), tz="UTC"),
                self.hourly.close[0],
            )
        )


def _run(strategy_class, frame, **settings):
    config = RunConfig(since=SINCE, until=UNTIL, **settings)
    cerebro = build_cerebro(config, frame, strategy_class)
    return cerebro, cerebro.run()[0]


def test_an_hourly_bar_is_visible_only_once_it_has_closed(five_minutes):
    cerebro, strategy = _run(_Watcher, five_minutes)
    assert [data._name for data in cerebro.datas] == ["BTC/USDT:USDT", "BTC/USDT:USDT@1h"]
    hourly = resample_frame(five_minutes, "1h", "5m")
    starts = pd.DatetimeIndex(hourly["period_start"])
    closes = hourly["close"].to_numpy()
    assert strategy.seen, "next never ran"
    for bar_open, stamp, close in strategy.seen:
        bar_close = bar_open + pd.Timedelta("5min")
        # The hours that have ended by the close of the current 5m bar; the last one is shown.
        finished = np.flatnonzero(starts + pd.Timedelta("1h") <= bar_close)
        assert len(finished), f"an hourly bar was visible at {bar_open} before any hour ended"
        assert close == closes[finished[-1]], bar_open
        assert stamp <= bar_open
    # next starts on the first 5m bar that completes an hour (00:55), as in backtrader.
    assert strategy.seen[0][0] == pd.Timestamp(SINCE, tz="UTC") + pd.Timedelta("55min")
    assert len(strategy.seen) == len(five_minutes) - 11


class _TradesTheHour(_Watcher):
    def next(self):
        self.buy(data=self.hourly, size=0.01)


def test_orders_on_the_resampled_feed_are_refused(five_minutes):
    with pytest.raises(ConfigError, match="resampled feed"):
        _run(_TradesTheHour, five_minutes)


def test_a_run_with_a_slower_timeframe_completes(five_minutes):
    class Hourly(_Watcher):
        def next(self):
            if not self.position and self.hourly.close[0] > self.hourly.open[0]:
                self.buy_fraction(0.5)

    results = backtest.engine.run(
        RunConfig(since=SINCE, until=UNTIL, strategy="Hourly"),
        data=five_minutes,
        strategy_class=Hourly,
    )
    assert results.complete and len(results.orders) == 1
    assert results.market.index[0] == pd.Timestamp(SINCE, tz="UTC")


def test_timeframes_must_be_a_tuple_of_strings(five_minutes):
    class Broken(_Watcher):
        timeframes = "1h"

    with pytest.raises((ConfigError, PluginError), match="tuple of timeframes"):
        _run(Broken, five_minutes)


def test_plain_backtrader_strategies_are_unaffected(five_minutes):
    class Plain(bt.Strategy):
        def next(self):
            pass

    cerebro, _ = _run(Plain, five_minutes)
    assert len(cerebro.datas) == 1
