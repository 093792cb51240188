"""The Parquet store and load_market, on the bundled real sample and on small written stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backtest.errors import ConfigError, DataError
from backtest.market import store
from backtest.market.timeframes import parse_time, timeframe_to_ms

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SAMPLE = store.SAMPLE_DIR / "binanceusdm"
MINUTE = 60_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC: synthetic stores start here (values are checked)


def sample_series(name: str, series: str) -> pd.DataFrame:
    return store.read_series(SAMPLE / name, series)


def candles(times_ms, start_price: float = 100.0) -> pd.DataFrame:
    times = np.asarray(times_ms, dtype=np.int64)
    close = start_price + np.arange(times.size, dtype=float)
    return pd.DataFrame(
        {
            "timestamp_ms": times,
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.full(times.size, 2.0),
        }
    )


def write(root: Path, series: str, frame: pd.DataFrame, timeframe: str | None = "5m", **kw):
    meta = {"exchange": "binanceusdm", "symbol": BTC} | kw
    path = store.series_path(root, meta["exchange"], meta["symbol"], series, timeframe)
    store.write_series(path, frame, series=series, timeframe=timeframe, **meta)
    return path


# ---------------------------------------------------------------------------------------------
# the bundled sample
# ---------------------------------------------------------------------------------------------
def test_sample_loads_as_engine_frame(tmp_path):
    frame = store.load_market(BTC, "5m", data_dir=tmp_path)
    assert list(frame.columns) == list(store.MARKET_COLUMNS)
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "time"
    assert str(frame.index.tz) == "UTC"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert frame.index[0] == pd.Timestamp("2025-10-01", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2025-10-20 23:55", tz="UTC")
    assert frame.attrs["exchange"] == "binanceusdm"
    assert frame.attrs["symbol"] == BTC
    assert frame.attrs["timeframe"] == "5m"
    raw = sample_series("BTC_USDT_USDT-5m.parquet", "ohlcv")
    np.testing.assert_array_equal(frame["close"].to_numpy(), raw["close"].to_numpy())
    # the crash is in the sample: BTC perp fell below 105k on 2025-10-10
    assert frame.loc["2025-10-10", "low"].min() < 105_000


def test_sample_funding_sits_on_settlement_bars(tmp_path):
    frame = store.load_market(ETH, "5m", data_dir=tmp_path)
    funding = sample_series("ETH_USDT_USDT-funding.parquet", "funding")
    inside = funding[
        (funding.timestamp_ms >= frame.index[0].value // 1_000_000)
        & (funding.timestamp_ms <= frame.index[-1].value // 1_000_000)
    ]
    assert len(inside) == 60  # 20 days x 3 settlements
    placed = frame["funding_rate"].dropna()
    np.testing.assert_array_equal(placed.index.asi8 // 1_000_000, inside.timestamp_ms.to_numpy())
    np.testing.assert_array_equal(placed.to_numpy(), inside.funding_rate.to_numpy())
    np.testing.assert_array_equal(frame.attrs["funding_times"], inside.timestamp_ms.to_numpy())


def test_mark_joined_only_for_same_timeframe(tmp_path):
    coarse = store.load_market(BTC, "1h", data_dir=tmp_path, since="2025-10-05", until="2025-10-06")
    mark = sample_series("BTC_USDT_USDT-1h-mark.parquet", "mark").set_index("timestamp_ms")
    expected = mark.loc[coarse.index.asi8 // 1_000_000]
    np.testing.assert_array_equal(coarse["mark_high"].to_numpy(), expected["high"].to_numpy())
    np.testing.assert_array_equal(coarse["mark_close"].to_numpy(), expected["close"].to_numpy())
    fine = store.load_market(BTC, "5m", data_dir=tmp_path, since="2025-10-05", until="2025-10-06")
    assert fine[["mark_open", "mark_high", "mark_low", "mark_close"]].isna().all().all()
    # 1h candles run Aug..Nov, mark only Oct 1-20: NaN outside
    august = store.load_market(BTC, "1h", data_dir=tmp_path, since="2025-08-01", until="2025-08-02")
    assert august["mark_close"].isna().all() and august["close"].notna().all()


def test_range_selection_is_half_open_and_accepts_any_date_form(tmp_path):
    forms = [
        ("2025-10-10", "2025-10-11"),
        ("2025-10-10T00:00:00Z", "2025-10-11 02:00+02:00"),
        (pd.Timestamp("2025-10-10", tz="UTC"), dt.datetime(2025, 10, 11)),
        (1760054400000, dt.date(2025, 10, 11)),
    ]
    frames = [store.load_market(BTC, "5m", since=a, until=b, data_dir=tmp_path) for a, b in forms]
    for frame in frames:
        assert len(frame) == 288
        assert frame.index[0] == pd.Timestamp("2025-10-10", tz="UTC")
        assert frame.index[-1] == pd.Timestamp("2025-10-10 23:55", tz="UTC")
        pd.testing.assert_frame_equal(frame, frames[0])
    assert len(frames[0].attrs["funding_times"]) == 3
    only_since = store.load_market(BTC, "5m", since="2025-10-20 23:50", data_dir=tmp_path)
    assert len(only_since) == 2
    only_until = store.load_market(BTC, "5m", until="2025-10-01 00:10", data_dir=tmp_path)
    assert len(only_until) == 2


# ---------------------------------------------------------------------------------------------
# clear errors
# ---------------------------------------------------------------------------------------------
def test_missing_symbol_suggests_exact_download_command(tmp_path):
    with pytest.raises(DataError) as caught:
        store.load_market("SOL/USDT:USDT", "5m", data_dir=tmp_path, since="2026-01-01")
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith(
        "python -m backtest download --exchange binanceusdm --symbol SOL/USDT:USDT "
        "--timeframe 5m --since 2026-01-01"
    )


def test_missing_timeframe_lists_stored_timeframes(tmp_path):
    with pytest.raises(DataError, match=r"stored timeframes: 1h, 5m\).*--timeframe 15m"):
        store.load_market(BTC, "15m", data_dir=tmp_path)


def test_range_outside_data_says_what_is_stored(tmp_path):
    with pytest.raises(DataError) as caught:
        store.load_market(BTC, "5m", since="2026-01-01", until="2026-02-01", data_dir=tmp_path)
    message = str(caught.value)
    assert "2025-10-01 00:00 .. 2025-10-20 23:55 UTC" in message
    assert "--since 2026-01-01 --until 2026-02-01" in message


@pytest.mark.parametrize(
    ("since", "until", "error", "pattern"),
    [
        ("2025-10-05", "2025-10-01", ConfigError, "is not before until"),
        ("10/05/2025", None, ConfigError, r"since '10/05/2025' is not a date"),
        (None, "yesterday", ConfigError, r"until 'yesterday' is not a date"),
    ],
)
def test_bad_dates(tmp_path, since, until, error, pattern):
    with pytest.raises(error, match=pattern):
        store.load_market(BTC, "5m", since=since, until=until, data_dir=tmp_path)


def test_bad_timeframe_text():
    with pytest.raises(ConfigError, match="timeframe '5 min' is not understood"):
        store.load_market(BTC, "5 min")


# ---------------------------------------------------------------------------------------------
# the user's store before the sample
# ---------------------------------------------------------------------------------------------
def test_user_store_first_then_sample_by_range(tmp_path):
    start = 1_767_225_600_000  # 2026-01-01
    write(tmp_path, "ohlcv", candles(start + 5 * MINUTE * np.arange(12)))
    write(
        tmp_path, "funding", pd.DataFrame({"timestamp_ms": [start], "funding_rate": [0.0003]}), None
    )
    mine = store.load_market(BTC, "5m", data_dir=tmp_path)
    assert len(mine) == 12 and mine["close"].iloc[0] == 100.0
    assert mine["funding_rate"].iloc[0] == 0.0003
    assert mine.attrs["sources"]["ohlcv"].startswith(str(tmp_path))
    # a range only the bundled sample holds falls back to it, with the sample's own funding
    crash = store.load_market(BTC, "5m", data_dir=tmp_path, since="2025-10-10", until="2025-10-11")
    assert len(crash) == 288 and crash["close"].iloc[0] > 100_000
    assert crash["funding_rate"].notna().sum() == 3


def test_backtest_data_environment_variable(tmp_path, monkeypatch):
    start = 1_767_225_600_000
    write(tmp_path, "ohlcv", candles(start + 5 * MINUTE * np.arange(3)))
    monkeypatch.setenv("BACKTEST_DATA", str(tmp_path))
    assert len(store.load_market(BTC, "5m")) == 3


# ---------------------------------------------------------------------------------------------
# funding placement
# ---------------------------------------------------------------------------------------------
def test_funding_on_first_bar_at_or_after_settlement(tmp_path):
    bars = T0 + 5 * MINUTE * np.array([0, 1, 2, 3, 4, 8])  # a hole between 20 and 40 minutes
    settlements = {
        T0 - 10 * MINUTE: 0.05,  # before the first bar's period: no bar
        T0 + 2 * MINUTE: 0.01,  # inside bar 0 -> first bar opening after it: 5 min
        T0 + 10 * MINUTE + 4: 0.02,  # Binance stamps a few ms late -> the 10 min bar
        T0 + 25 * MINUTE: 0.03,  # in the hole -> 40 min bar
        T0 + 30 * MINUTE: 0.04,  # also in the hole -> added on the 40 min bar
        T0 + 41 * MINUTE: 0.049,  # after the last bar's open: no bar yet
    }
    write(tmp_path, "ohlcv", candles(bars))
    funding = pd.DataFrame(
        {"timestamp_ms": list(settlements), "funding_rate": list(settlements.values())}
    )
    write(tmp_path, "funding", funding, None)
    frame = store.load_market(BTC, "5m", data_dir=tmp_path)
    minutes = (frame.index.asi8 // 1_000_000 - T0) // MINUTE
    rates = dict(zip(minutes, frame["funding_rate"], strict=True))
    assert np.isnan(rates[0]) and np.isnan(rates[15]) and np.isnan(rates[20])
    assert rates[5] == 0.01
    assert rates[10] == 0.02
    assert rates[40] == pytest.approx(0.07)
    assert list(frame.attrs["funding_times"] - T0) == [
        2 * MINUTE,
        10 * MINUTE + 4,
        25 * MINUTE,
        30 * MINUTE,
    ]
    later = store.load_market(BTC, "5m", data_dir=tmp_path, since=T0 + 10 * MINUTE)
    assert list(later.attrs["funding_times"] - T0) == [10 * MINUTE + 4, 25 * MINUTE, 30 * MINUTE]


def test_open_interest_joined_when_stored(tmp_path):
    bars = T0 + 5 * MINUTE * np.arange(4)
    write(tmp_path, "ohlcv", candles(bars))
    interest = pd.DataFrame(
        {
            "timestamp_ms": bars[[1, 3]],
            "open_interest": [10.0, 12.0],
            "open_interest_value": [1000.0, 1300.0],
        }
    )
    write(tmp_path, "open_interest", interest)
    frame = store.load_market(BTC, "5m", data_dir=tmp_path)
    assert list(frame.columns[-2:]) == ["open_interest", "open_interest_value"]
    np.testing.assert_array_equal(frame["open_interest"].to_numpy(), [np.nan, 10.0, np.nan, 12.0])


# ---------------------------------------------------------------------------------------------
# damaged and foreign files
# ---------------------------------------------------------------------------------------------
def test_corrupt_file_is_named(tmp_path):
    path = write(tmp_path, "ohlcv", candles(5 * MINUTE * np.arange(3)))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=rf"{path} is not a readable Parquet file"):
        store.load_market(BTC, "5m", data_dir=tmp_path)


def test_foreign_parquet_is_named(tmp_path):
    path = store.series_path(tmp_path, "binanceusdm", BTC, "ohlcv", "5m")
    path.parent.mkdir(parents=True)
    candles([0, 300_000]).to_parquet(path)
    with pytest.raises(DataError, match=rf"{path} was not written by this store"):
        store.load_market(BTC, "5m", data_dir=tmp_path)


def test_misplaced_file_is_named(tmp_path):
    target = store.series_path(tmp_path, "binanceusdm", BTC, "ohlcv", "5m")
    target.parent.mkdir(parents=True)
    target.write_bytes((SAMPLE / "ETH_USDT_USDT-5m.parquet").read_bytes())
    with pytest.raises(DataError, match=r"holds symbol 'ETH/USDT:USDT', not 'BTC/USDT:USDT'"):
        store.load_market(BTC, "5m", data_dir=tmp_path)


def test_wrong_column_types_and_unsorted_rows_are_refused(tmp_path):
    path = write(tmp_path, "ohlcv", candles(5 * MINUTE * np.arange(3)))
    table = pq.read_table(path)
    swapped = table.set_column(5, "volume", pa.array([1, 2, 3], type=pa.int64()))
    pq.write_table(swapped.replace_schema_metadata(table.schema.metadata), path)
    with pytest.raises(DataError, match="expected int64 timestamps and float64 values"):
        store.read_series(path, "ohlcv")
    reversed_rows = table.take([2, 1, 0]).replace_schema_metadata(table.schema.metadata)
    pq.write_table(reversed_rows, path)
    with pytest.raises(DataError, match="unsorted or repeated timestamps"):
        store.read_series(path, "ohlcv")


# ---------------------------------------------------------------------------------------------
# writing, merging, gaps, listing
# ---------------------------------------------------------------------------------------------
def test_write_sorts_dedupes_and_round_trips(tmp_path):
    frame = candles(T0 + np.array([600_000, 0, 300_000, 0]))
    frame.loc[3, "close"] = 103.5  # the later row for timestamp 0 wins
    path = write(tmp_path, "ohlcv", frame)
    back = store.read_series(path, "ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="5m")
    assert (back["timestamp_ms"] - T0).tolist() == [0, 300_000, 600_000]
    assert back["close"].tolist() == [103.5, 102.0, 100.0]
    assert back.attrs["format"] == store.FORMAT_VERSION
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = write(tmp_path, "ohlcv", candles([0, 300_000]))
    before = path.read_bytes()

    def broken(table, sink, **kwargs):
        sink.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(store.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path, "ohlcv", candles([0, 300_000, 600_000]))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_merge_prefers_new_rows():
    old = candles([0, 300_000, 600_000])
    new = candles([600_000, 900_000], start_price=500.0)
    merged = store.merge_series(old, new)
    assert merged["timestamp_ms"].tolist() == [0, 300_000, 600_000, 900_000]
    assert merged["close"].tolist() == [100.0, 101.0, 500.0, 501.0]


def test_find_gaps():
    step = 5 * MINUTE
    gaps = store.find_gaps(step * np.array([0, 1, 2, 5, 6, 9]), step)
    assert [(g.after_ms // step, g.before_ms // step, g.missing_bars) for g in gaps] == [
        (2, 5, 2),
        (6, 9, 2),
    ]
    assert store.find_gaps(step * np.arange(10), step) == []


def test_list_available_reports_user_and_sample(tmp_path):
    write(tmp_path, "ohlcv", candles(15 * MINUTE * np.arange(4)), timeframe="15m")
    (tmp_path / "binanceusdm" / "junk.parquet").write_bytes(b"not parquet")
    items = store.list_available(tmp_path)
    mine = [item for item in items if not item.bundled]
    assert [(i.symbol, i.series, i.timeframe, i.rows) for i in mine] == [(BTC, "ohlcv", "15m", 4)]
    assert mine[0].describe() == (
        "binanceusdm BTC/USDT:USDT 15m candles: 4 rows, 1970-01-01 00:00 .. 1970-01-01 00:45 UTC"
    )
    bundled = {(i.symbol, i.series, i.timeframe) for i in items if i.bundled}
    assert (ETH, "mark", "1h") in bundled and (BTC, "funding", "") in bundled
    assert (BTC, "liquidations", "4h") in bundled and (ETH, "open_interest", "4h") in bundled
    assert len(bundled) == 13  # candles, mark, funding + CoinGlass 4h truth and context


def test_file_names():
    assert store.series_filename(BTC, "ohlcv", "5m") == "BTC_USDT_USDT-5m.parquet"
    assert store.series_filename(BTC, "mark", "1h") == "BTC_USDT_USDT-1h-mark.parquet"
    assert store.series_filename(BTC, "open_interest", "1h") == "BTC_USDT_USDT-1h-oi.parquet"
    assert store.series_filename(BTC, "funding") == "BTC_USDT_USDT-funding.parquet"
    assert store.series_filename("ETH/USDT", "ohlcv", "1d") == "ETH_USDT-1d.parquet"
    assert store.symbol_file_stem("BTC/USDT:USDT-250328") == "BTC_USDT_USDT_250328"
    with pytest.raises(ConfigError, match="not a ccxt unified symbol"):
        store.symbol_file_stem("BTCUSDT")


def test_time_helpers():
    assert timeframe_to_ms("1m") == 60_000
    assert timeframe_to_ms("4h") == 14_400_000
    assert timeframe_to_ms("1w") == 604_800_000
    assert parse_time("2025-10-10T20:00") == 1760126400000
    assert parse_time("2025-10-10T22:00+02:00") == 1760126400000
    assert parse_time(None) is None and parse_time("") is None
    with pytest.raises(ConfigError, match="--since '2025-13-01' is not a date"):
        parse_time("2025-13-01", "--since")
    with pytest.raises(ConfigError):
        timeframe_to_ms("1M")
