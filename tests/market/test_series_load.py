"""Loading truth and context series: round trip, resampling by whole bars, as-of alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backtest
from backtest.errors import DataError
from backtest.market import store
from backtest.market.series import (
    align_as_of,
    import_series,
    known_times,
    load_context,
    load_liquidations,
    load_long_short,
    load_open_interest,
    sum_bars,
)

GT = Path(__file__).parent / "fixtures" / "groundtruth"
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
HOUR = 3_600_000
BTC_4H = GT / "binance_BTC_liquidations_4h_merged.csv"
OI_4H = GT / "allexch_BTC_open_interest_usd_4h_merged.csv"


def raw(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame.set_index(pd.to_datetime(frame["time_ms"], unit="ms", utc=True))


def test_round_trip_store_then_load_keeps_every_value(tmp_path):
    import_series(BTC_4H, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    loaded = load_liquidations(BTC, "4h", data_dir=tmp_path)
    source = raw(BTC_4H)
    assert loaded.index.equals(pd.DatetimeIndex(source.index, name="time"))
    assert loaded["long"].tolist() == source["long_usd"].tolist()
    assert loaded["short"].tolist() == source["short_usd"].tolist()
    assert loaded.dtypes.tolist() == [np.float64, np.float64]
    assert str(loaded.index.tz) == "UTC" and loaded.index.name == "time"


def test_coarser_timeframes_sum_whole_bars(tmp_path):
    import_series(BTC_4H, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    source = raw(BTC_4H)
    daily = load_liquidations(BTC, "1d", data_dir=tmp_path)
    assert len(daily) == 4 and daily.attrs["source_timeframe"] == "4h"
    day = source.loc["2025-10-10", "long_usd"]
    assert len(day) == 6
    assert daily.loc[pd.Timestamp("2025-10-10", tz="UTC"), "long"] == pytest.approx(day.sum())
    eight = load_liquidations(BTC, "8h", data_dir=tmp_path)
    first_two = source["short_usd"].iloc[:2].sum()
    assert eight["short"].iloc[0] == pytest.approx(first_two) and len(eight) == 12
    assert daily.attrs["partial_bars_dropped"] == 0


def test_partial_coarse_bars_are_dropped_and_counted(tmp_path):
    lines = BTC_4H.read_text().splitlines()
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join([lines[0], *lines[2:-1]]) + "\n")  # no 10-09 00:00, no 10-12 20:00
    import_series(cut, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    daily = load_liquidations(BTC, "1d", data_dir=tmp_path)
    assert [str(day.date()) for day in daily.index] == ["2025-10-10", "2025-10-11"]
    assert daily.attrs["partial_bars_dropped"] == 2


def test_a_finer_timeframe_is_refused_not_invented(tmp_path):
    import_series(BTC_4H, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError) as caught:
        load_liquidations(BTC, "1h", exchange="binanceusdm", data_dir=tmp_path)
    assert "cannot be made from them" in str(caught.value) and "4h" in str(caught.value)
    with pytest.raises(DataError, match="cannot be made"):
        load_liquidations(BTC, "6h", data_dir=tmp_path)  # not a multiple of 4h


def test_sum_bars_weeks_open_on_monday():
    day = 86_400_000
    monday = int(pd.Timestamp("2025-10-06", tz="UTC").value // 1_000_000)
    times = monday + day * np.arange(-1, 14)  # Sunday before, then two whole weeks
    starts, sums, dropped = sum_bars(times, np.ones((times.size, 1)), day, 7 * day)
    assert starts.tolist() == [monday, monday + 7 * day]
    assert sums[:, 0].tolist() == [7.0, 7.0] and dropped == 1


def test_missing_truth_names_the_import_command(tmp_path):
    with pytest.raises(DataError) as caught:
        load_liquidations("SOL/USDT:USDT", "4h", data_dir=tmp_path)
    message = str(caught.value)
    assert "python -m backtest import liquidations FILE --symbol SOL/USDT:USDT" in message
    with pytest.raises(DataError, match="import open-interest FILE"):
        load_open_interest("SOL/USDT:USDT", data_dir=tmp_path)


def test_since_until_and_empty_ranges(tmp_path):
    import_series(BTC_4H, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    part = load_liquidations(
        BTC, "4h", since="2025-10-10 20:00", until="2025-10-11", data_dir=tmp_path
    )
    assert [str(time) for time in part.index] == ["2025-10-10 20:00:00+00:00"]
    with pytest.raises(DataError, match=r"holds 2024-11-13 20:00 \.\. 2025-11-14 12:00 UTC"):
        load_liquidations(BTC, "4h", since="2026-01-01", data_dir=tmp_path / "empty")


def test_the_bundled_truth_loads_without_a_store(tmp_path):
    """Shipped CoinGlass Binance 4h truth (2024-11-13 .. 2025-11-14) and context."""
    btc = backtest.load_liquidations(BTC, "4h", data_dir=tmp_path)
    eth = backtest.load_liquidations(ETH, "4h", data_dir=tmp_path)
    crash = pd.Timestamp("2025-10-10 20:00", tz="UTC")
    assert round(btc.loc[crash, "long"] / 1e6, 1) == 235.6
    assert round(btc.loc[crash, "short"] / 1e6, 1) == 107.5
    assert round(eth.loc[crash, "long"] / 1e6, 1) == 210.1
    assert round(eth.loc[crash, "short"] / 1e6, 1) == 288.3
    assert len(btc) == 2195 and "Binance only" in btc.attrs["scope"]
    interest = backtest.load_open_interest(ETH, "4h", data_dir=tmp_path)
    assert len(interest) == 2147 and interest.attrs["known_at"] == "bar_close"
    shares = backtest.load_long_short(BTC, data_dir=tmp_path)
    assert shares["long_share"].between(0, 1).all()


# --------------------------------------------------------------------------------------------
# as-of alignment
# --------------------------------------------------------------------------------------------
def test_bar_close_levels_appear_only_from_the_next_bar_open(tmp_path):
    import_series(OI_4H, kind="open-interest", symbol=BTC, data_dir=tmp_path)
    levels = load_open_interest(BTC, "4h", data_dir=tmp_path)
    close_16 = levels.loc[pd.Timestamp("2025-10-10 16:00", tz="UTC"), "open_interest_value"]
    close_20 = levels.loc[pd.Timestamp("2025-10-10 20:00", tz="UTC"), "open_interest_value"]
    five = pd.date_range("2025-10-10 19:50", "2025-10-11 00:10", freq="5min", tz="UTC")
    aligned = align_as_of(levels, five)["open_interest_value"]
    assert aligned.loc["2025-10-10 19:55"].item() != close_16  # the 16:00 bar still open
    assert aligned.loc["2025-10-10 20:00"].item() == close_16
    assert aligned.loc["2025-10-10 23:55"].item() == close_16  # the 20:00 close not yet known
    assert aligned.loc["2025-10-11 00:00"].item() == close_20
    four = align_as_of(levels, levels.index)["open_interest_value"]
    assert (
        np.isnan(four.iloc[0])
        and four.iloc[1:].tolist() == levels.iloc[:-1]["open_interest_value"].tolist()
    )


def test_no_target_bar_sees_a_value_known_after_its_open(tmp_path):
    import_series(OI_4H, kind="open-interest", symbol=BTC, data_dir=tmp_path)
    levels = load_open_interest(BTC, "4h", data_dir=tmp_path)
    rng = np.random.default_rng(7)
    start = levels.index[0] - pd.Timedelta(hours=8)
    minutes = np.sort(rng.integers(0, 5 * 24 * 60, 400))
    targets = pd.DatetimeIndex(start + pd.to_timedelta(minutes, unit="min"))
    aligned = align_as_of(levels, targets, max_age=None)["open_interest_value"].to_numpy()
    known = known_times(levels)
    values = levels["open_interest_value"].to_numpy()
    target_ms = targets.as_unit("ms").asi8
    for time, value in zip(target_ms, aligned, strict=True):
        if np.isnan(value):
            assert not np.any(known <= time)
            continue
        row = int(np.flatnonzero(values == value)[0])
        assert known[row] <= time  # never a value from the future
        assert not np.any((known <= time) & (known > known[row]))  # and the newest one


def test_a_missing_source_bar_leaves_nan_not_a_stale_value(tmp_path):
    path = tmp_path / "oi.csv"
    path.write_text(
        "time,open_interest\n2025-10-10 00:00,1\n2025-10-10 04:00,2\n2025-10-10 12:00,4\n"
    )
    import_series(path, kind="open-interest", symbol=BTC, data_dir=tmp_path)
    levels = load_open_interest(BTC, data_dir=tmp_path)
    bars = pd.date_range("2025-10-10 04:00", periods=4, freq="4h", tz="UTC")
    aligned = align_as_of(levels, bars)["open_interest_value"]
    assert aligned.iloc[:2].tolist() == [1.0, 2.0] and np.isnan(aligned.iloc[2])
    unlimited = align_as_of(levels, bars, max_age=None)["open_interest_value"]
    assert unlimited.tolist() == [1.0, 2.0, 2.0, 4.0]


def test_point_samples_are_known_at_their_stamp(tmp_path):
    path = tmp_path / "oi.csv"
    path.write_text("time,open_interest\n2025-10-10 00:00,1\n2025-10-10 00:05,2\n")
    import_series(path, kind="open-interest", symbol=BTC, known_at="time", data_dir=tmp_path)
    levels = load_open_interest(BTC, data_dir=tmp_path)
    bars = pd.DatetimeIndex(["2025-10-10 00:00", "2025-10-10 00:05"], tz="UTC")
    assert align_as_of(levels, bars)["open_interest_value"].tolist() == [1.0, 2.0]


def candles_4h(root: Path) -> None:
    """Constructed 4h candles over the fixture window (prices do not matter here)."""
    times = 1759968000000 + 4 * HOUR * np.arange(24)
    ones = np.ones(times.size)
    frame = pd.DataFrame(
        {
            "timestamp_ms": times.astype(np.int64),
            "open": 100 * ones,
            "high": 101 * ones,
            "low": 99 * ones,
            "close": 100 * ones,
            "volume": ones,
        }
    )
    path = store.series_path(root, "binanceusdm", BTC, "ohlcv", "4h")
    store.write_series(
        path, frame, series="ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="4h"
    )


def test_load_market_joins_imported_open_interest_without_look_ahead(tmp_path):
    candles_4h(tmp_path)
    import_series(OI_4H, kind="open-interest", symbol=BTC, data_dir=tmp_path)
    market = store.load_market(BTC, "4h", data_dir=tmp_path)
    levels = load_open_interest(BTC, "4h", data_dir=tmp_path)
    joined = market["open_interest_value"]
    assert np.isnan(joined.iloc[0])
    assert joined.iloc[1:].tolist() == levels["open_interest_value"].iloc[:23].tolist()


def test_load_context_puts_every_level_on_the_candles(tmp_path):
    candles_4h(tmp_path)
    import_series(OI_4H, kind="open-interest", symbol=BTC, data_dir=tmp_path)
    import_series(
        GT / "binance_BTCUSDT_longshort_ratios_4h_merged.csv", kind="long-short", symbol=BTC,
        data_dir=tmp_path,
    )  # fmt: skip
    market = store.load_market(BTC, "4h", data_dir=tmp_path)
    context = load_context(market, data_dir=tmp_path)
    assert list(context.columns) == [
        "open_interest",
        "open_interest_value",
        "long_share",
        "top_account_long_share",
        "top_position_long_share",
    ]
    shares = load_long_short(BTC, "4h", data_dir=tmp_path)
    at_midnight = context.loc[pd.Timestamp("2025-10-11", tz="UTC")]
    assert (
        at_midnight["long_share"]
        == shares.loc[pd.Timestamp("2025-10-10 20:00", tz="UTC")]["long_share"]
    )
    assert set(context.attrs["sources"]) == {"open_interest", "long_short"}


def test_the_file_covering_the_range_is_used(tmp_path):
    """Hourly Coinalyze truth of mid-2024 in the store, the bundled 4h CoinGlass truth after it."""
    import_series(
        GT / "binance_BTCUSDT_1h_coinalyze.csv", kind="liquidations", symbol=BTC,
        data_dir=tmp_path,
    )  # fmt: skip
    hourly = load_liquidations(BTC, "1h", data_dir=tmp_path)
    early = load_liquidations(BTC, "4h", since="2024-06-20", until="2024-06-21", data_dir=tmp_path)
    assert early.attrs["source_timeframe"] == "1h" and len(early) == 6
    day = hourly.loc["2024-06-20 00:00":"2024-06-20 03:00", "long"]
    assert early["long"].iloc[0] == pytest.approx(day.sum())
    late = load_liquidations(BTC, "4h", since="2025-10-10", until="2025-10-11", data_dir=tmp_path)
    assert late.attrs["source_timeframe"] == "4h" and "sample" in late.attrs["path"]
