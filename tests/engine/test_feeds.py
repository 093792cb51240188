"""PerpData: bulk preload identical to PandasData's, extra perpetual lines, date numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from backtest.engine import PerpCerebro, PerpData
from backtest.engine.feeds import date_numbers, date_numbers_to_index
from backtest.errors import DataError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "binanceusdm"
CANDLE_LINES = ("datetime", "open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    raw = pd.read_parquet(SAMPLE / "BTC_USDT_USDT-5m.parquet")
    index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp_ms"], unit="ms", utc=True), name="time")
    return raw.drop(columns="timestamp_ms").set_index(index)


@pytest.fixture(scope="module")
def perp_frame(candles) -> pd.DataFrame:
    """Real 5m candles with the real funding settlements placed on their bars."""
    funding = pd.read_parquet(SAMPLE / "BTC_USDT_USDT-funding.parquet")
    times = pd.to_datetime(funding["timestamp_ms"], unit="ms", utc=True)
    frame = candles.copy()
    frame["funding_rate"] = np.nan
    positions = frame.index.searchsorted(times)
    keep = positions < len(frame)
    frame.iloc[positions[keep], frame.columns.get_loc("funding_rate")] = funding[
        "funding_rate"
    ].to_numpy()[keep]
    frame["mark_close"] = frame["close"] + 1.5
    return frame


class _Recorder(bt.Strategy):
    def __init__(self):
        self.rows = []

    def next(self):
        data = self.data
        self.rows.append(
            (
                data.datetime[0],
                data.open[0],
                data.close[0],
                data.funding_rate[0],
                data.mark_close[0],
            )
        )


def _loaded_lines(feed_class, frame, names, **cerebro_kwargs):
    cerebro = bt.Cerebro(stdstats=False, **cerebro_kwargs)
    feed = feed_class(dataname=frame)
    cerebro.adddata(feed)
    cerebro.addstrategy(bt.Strategy)
    cerebro.run()
    return {name: np.array(getattr(feed.lines, name).array) for name in names}


def test_bulk_preload_matches_pandasdata_bit_for_bit(candles, perp_frame):
    stock = _loaded_lines(bt.feeds.PandasData, candles, CANDLE_LINES)
    ours = _loaded_lines(PerpData, perp_frame, CANDLE_LINES)
    for name in CANDLE_LINES:
        assert np.array_equal(ours[name], stock[name]), name
    assert len(ours["close"]) == len(candles) == 5760


def test_extra_lines_carry_the_perpetual_columns_and_missing_ones_are_nan(perp_frame):
    names = ("funding_rate", "mark_open", "mark_close", "open_interest", "openinterest")
    lines = _loaded_lines(PerpData, perp_frame, names)
    np.testing.assert_array_equal(lines["funding_rate"], perp_frame["funding_rate"].to_numpy())
    np.testing.assert_array_equal(lines["mark_close"], perp_frame["mark_close"].to_numpy())
    # 20 days of 8-hourly settlements land on 60 bars
    assert np.count_nonzero(~np.isnan(lines["funding_rate"])) == 60
    for name in ("mark_open", "open_interest", "openinterest"):
        assert np.isnan(lines[name]).all(), name


def test_bulk_preload_never_goes_through_the_per_bar_loader(perp_frame):
    calls = []

    class Counting(PerpData):
        def _load(self):
            calls.append(1)
            return super()._load()

    lines = _loaded_lines(Counting, perp_frame, ("close",))
    assert len(lines["close"]) == len(perp_frame)
    assert calls == []


def test_preload_and_bar_by_bar_delivery_give_the_same_bars(perp_frame):
    frame = perp_frame.iloc[:400]
    results = []
    for preload, runonce in ((True, True), (True, False), (False, False)):
        cerebro = bt.Cerebro(stdstats=False, preload=preload, runonce=runonce)
        feed = PerpData(dataname=frame)
        cerebro.adddata(feed)
        cerebro.addstrategy(_Recorder)
        results.append(cerebro.run()[0].rows)
        assert feed._staging is None  # staged copies are gone after the run
    assert len(results[0]) == 400
    for other in results[1:]:
        assert np.array_equal(np.array(results[0]), np.array(other), equal_nan=True)


def test_a_shorter_feed_is_not_replayed_in_next_mode(perp_frame):
    # Two feeds of different lengths without preload: the shorter one must stop, not restart.
    cerebro = bt.Cerebro(stdstats=False, preload=False, runonce=False)
    short = PerpData(dataname=perp_frame.iloc[:50])
    cerebro.adddata(PerpData(dataname=perp_frame.iloc[:120]))
    cerebro.adddata(short)
    cerebro.addstrategy(bt.Strategy)
    cerebro.run()
    assert len(short.lines.close.array) == 50


def test_fromdate_and_todate_filter_like_pandasdata(candles, perp_frame):
    bounds = {"fromdate": dt.datetime(2025, 10, 5, 3, 0), "todate": dt.datetime(2025, 10, 6)}

    def load(feed_class, frame):
        cerebro = bt.Cerebro(stdstats=False)
        feed = feed_class(dataname=frame, **bounds)
        cerebro.adddata(feed)
        cerebro.addstrategy(bt.Strategy)
        cerebro.run()
        return np.array(feed.lines.datetime.array), np.array(feed.lines.close.array)

    stock = load(bt.feeds.PandasData, candles)
    ours = load(PerpData, perp_frame)
    assert np.array_equal(ours[0], stock[0]) and np.array_equal(ours[1], stock[1])
    assert len(ours[0]) == 21 * 12 + 1  # 03:00 .. 00:00 next day inclusive, 5m bars


def test_date_numbers_equal_backtraders_date2num():
    rng = np.random.default_rng(7)
    nanoseconds = rng.integers(-(10**18), 4 * 10**18, 5_000) // 1_000 * 1_000
    times = pd.DatetimeIndex(nanoseconds.astype("datetime64[ns]"), tz="UTC")
    expected = np.array([bt.date2num(moment.to_pydatetime()) for moment in times])
    assert np.array_equal(date_numbers(times), expected)
    # aware times in another zone are converted to UTC first, as date2num does
    paris = times[:50].tz_convert("Europe/Paris")
    assert np.array_equal(date_numbers(paris), expected[:50])


def test_date_numbers_round_trip_to_utc_times():
    times = pd.date_range("2025-07-01", periods=2_000, freq="1min", tz="UTC", name="time")
    assert date_numbers_to_index(date_numbers(times)).equals(times)


def test_perpdata_refuses_anything_but_a_frame():
    with pytest.raises(DataError, match="DataFrame"):
        PerpData(dataname=[1, 2, 3])


def test_runs_default_to_no_standard_observers():
    cerebro = PerpCerebro()
    assert cerebro.p.stdstats is False
    assert cerebro.p.preload is True and cerebro.p.runonce is True
