"""Every import layout reads the right values (checked by hand against the raw CSV rows)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.errors import ConfigError, DataError
from backtest.market import store
from backtest.market.series import (
    import_series,
    load_liquidations,
    load_long_short,
    load_open_interest,
)

GT = Path(__file__).parent / "fixtures" / "groundtruth"
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
HOUR = 3_600_000


def at(frame: pd.DataFrame, text: str) -> pd.Series:
    return frame.loc[pd.Timestamp(text, tz="UTC")]


def stored(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


# --------------------------------------------------------------------------------------------
# CoinGlass
# --------------------------------------------------------------------------------------------
def test_coinglass_4h_liquidations_match_the_published_crash_bar(tmp_path):
    # README fact: 2025-10-10 20:00 (4h) CoinGlass Binance BTC long 235.6 M / short 107.5 M USD,
    # ETH long 210.1 M / short 288.3 M USD; the CSV rows read 235601013.09389 etc.
    btc = import_series(
        GT / "binance_BTC_liquidations_4h_merged.csv", kind="liquidations", symbol=BTC,
        data_dir=tmp_path,
    )  # fmt: skip
    eth = import_series(
        GT / "binance_ETH_liquidations_4h_merged.csv", kind="liquidations", symbol=ETH,
        data_dir=tmp_path,
    )  # fmt: skip
    assert (btc.layout, btc.timeframe, btc.rows_stored) == ("coinglass", "4h", 24)
    assert btc.path == tmp_path / "binanceusdm" / "BTC_USDT_USDT-4h-liquidations.parquet"
    bar = at(load_liquidations(BTC, "4h", data_dir=tmp_path), "2025-10-10 20:00")
    assert bar["long"] == 235601013.09389 and bar["short"] == 107461506.04199
    bar = at(load_liquidations(ETH, "4h", data_dir=tmp_path), "2025-10-10 20:00")
    assert bar["long"] == 210080820.79996622 and bar["short"] == 288311175.76853216
    assert eth.first_ms == 1759968000000  # 2025-10-09 00:00 UTC, the first row's time_ms
    meta = store.read_series(btc.path, "liquidations").attrs
    assert meta["unit"] == "USD" and meta["known_at"] == "bar_close"
    assert meta["layout"] == "coinglass" and "CoinGlass" in meta["scope"]


def test_coinglass_daily_liquidations(tmp_path):
    result = import_series(
        GT / "binance_BTC_liquidations_1d.csv", kind="liquidations", symbol=BTC, data_dir=tmp_path
    )
    assert (result.timeframe, result.rows_stored) == ("1d", 9)
    frame = load_liquidations(BTC, "1d", data_dir=tmp_path)
    assert at(frame, "2025-04-25")["short"] == 21320655.85742
    assert at(frame, "2025-05-03")["long"] == 7189484.59757


def test_coinglass_api_parquet_agrees_with_the_csv(tmp_path):
    parquet = import_series(
        GT / "api_futures_liquidation_aggregated_coin_history_BTC.parquet",
        kind="liquidations", symbol=BTC, data_dir=tmp_path / "a",
    )  # fmt: skip
    assert (parquet.layout, parquet.timeframe) == ("coinglass", "4h")
    csv = import_series(
        GT / "binance_BTC_liquidations_4h_merged.csv", kind="liquidations", symbol=BTC,
        data_dir=tmp_path / "b",
    )  # fmt: skip
    a = load_liquidations(BTC, "4h", data_dir=tmp_path / "a")
    b = load_liquidations(BTC, "4h", data_dir=tmp_path / "b")
    common = a.index.intersection(b.index)
    assert len(common) == csv.rows_stored
    np.testing.assert_allclose(a.loc[common].to_numpy(), b.loc[common].to_numpy(), rtol=1e-12)


def test_coinglass_all_exchange_open_interest_stores_the_bar_close(tmp_path):
    result = import_series(
        GT / "allexch_BTC_open_interest_usd_4h_merged.csv", kind="open-interest", symbol=BTC,
        data_dir=tmp_path,
    )  # fmt: skip
    assert result.path.name == "BTC_USDT_USDT-4h-oi.parquet"
    frame = load_open_interest(BTC, data_dir=tmp_path)
    row = at(frame, "2025-10-10 20:00")
    assert row["open_interest_value"] == 70505795930.0  # the close column, not the open
    assert math.isnan(row["open_interest"])  # USD only: base units not invented
    assert frame.attrs["known_at"] == "bar_close" and frame.attrs["timeframe"] == "4h"
    assert "all exchanges" in frame.attrs["scope"] and frame.attrs["unit"] == "USD"


def test_coinglass_per_exchange_open_interest_picks_the_venue(tmp_path):
    path = GT / "perexchange_BTC_open_interest_usd_merged.csv"
    import_series(path, kind="open-interest", symbol=BTC, data_dir=tmp_path)
    binance = load_open_interest(BTC, "4h", data_dir=tmp_path)
    assert at(binance, "2025-10-09 00:00")["open_interest_value"] == 15657042134.0
    assert "BINANCE" in binance.attrs["scope"]
    import_series(path, kind="open-interest", symbol=BTC, exchange="bybit", data_dir=tmp_path)
    bybit = load_open_interest(BTC, exchange="bybit", data_dir=tmp_path)
    assert at(bybit, "2025-10-09 04:00")["open_interest_value"] == 10251326090.0
    import_series(
        path, kind="open-interest", symbol=BTC, exchange="okx", venue="BITMEX", data_dir=tmp_path
    )
    bitmex = load_open_interest(BTC, exchange="okx", data_dir=tmp_path)
    assert at(bitmex, "2025-10-09 00:00")["open_interest_value"] == 362357816.0
    with pytest.raises(ConfigError, match=r"--venue with one of .*BINANCE"):
        import_series(path, kind="open-interest", symbol=BTC, venue="NOPE", data_dir=tmp_path)
    with pytest.raises(DataError, match="import it as open-interest"):
        import_series(path, kind="liquidations", symbol=BTC, data_dir=tmp_path)


def test_coinglass_long_short_ratios_become_long_shares(tmp_path):
    import_series(
        GT / "binance_BTCUSDT_longshort_ratios_4h_merged.csv", kind="long-short", symbol=BTC,
        data_dir=tmp_path,
    )  # fmt: skip
    frame = load_long_short(BTC, "4h", data_dir=tmp_path)
    row = at(frame, "2025-10-11 00:00")  # 67.04,32.96,2.03,59.91,40.09,1.49,54.25,45.75,1.19
    assert row["top_position_long_share"] == pytest.approx(0.6704)
    assert row["top_account_long_share"] == pytest.approx(0.5991)
    assert row["long_share"] == pytest.approx(0.5425)


# --------------------------------------------------------------------------------------------
# CoinGlass rows per symbol (coinglass-le1ma1)
# --------------------------------------------------------------------------------------------
def test_coinglass_symbol_rows(tmp_path):
    result = import_series(
        GT / "BTC_liq_oi_daily.csv", kind="liquidations", symbol=BTC, data_dir=tmp_path
    )
    assert (result.layout, result.timeframe, result.rows_stored) == ("coinglass-symbols", "1d", 10)
    frame = load_liquidations(BTC, "1d", data_dir=tmp_path)
    assert at(frame, "2025-08-01")["long"] == 173786802.1902
    import_series(GT / "BTC_liq_oi_daily.csv", kind="open-interest", symbol=BTC, data_dir=tmp_path)
    interest = load_open_interest(BTC, data_dir=tmp_path)
    assert at(interest, "2025-08-10")["open_interest_value"] == 79613768364.0
    mixed = import_series(
        GT / "raw_liquidation_agg_1d.csv", kind="liquidations", symbol=ETH, data_dir=tmp_path
    )
    assert mixed.rows_stored == 7  # only the ETH rows of a BTC+ETH file
    with pytest.raises(DataError, match="no rows for SOL"):
        import_series(
            GT / "raw_liquidation_agg_1d.csv", kind="liquidations", symbol="SOL/USDT:USDT",
            data_dir=tmp_path,
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Coinalyze
# --------------------------------------------------------------------------------------------
def daily_candles(root: Path, closes: dict[str, float]) -> None:
    """Constructed 1d candles (only the close matters: it values base-coin amounts)."""
    times = [int(pd.Timestamp(day, tz="UTC").value // 1_000_000) for day in closes]
    values = np.array(list(closes.values()))
    frame = pd.DataFrame(
        {
            "timestamp_ms": np.array(times, dtype=np.int64),
            "open": values,
            "high": values * 1.01,
            "low": values * 0.99,
            "close": values,
            "volume": np.ones(len(values)),
        }
    )
    path = store.series_path(root, "binanceusdm", BTC, "ohlcv", "1d")
    store.write_series(
        path, frame, series="ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1d"
    )


def test_coinalyze_daily_needs_a_price_and_says_so(tmp_path):
    path = GT / "binance_BTCUSDT_daily_coinalyze.csv"
    with pytest.raises(DataError) as caught:
        import_series(path, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "no price column" in message
    assert "python -m backtest download --exchange binanceusdm --symbol BTC/USDT:USDT" in message
    assert "--timeframe 1d --since 2023-11-26" in message
    assert stored(tmp_path) == []


def test_coinalyze_daily_is_valued_at_stored_closes(tmp_path):
    days = pd.date_range("2023-11-26", "2023-12-05", freq="D").strftime("%Y-%m-%d")
    closes = {day: 37_000.0 + 100 * number for number, day in enumerate(days)}
    daily_candles(tmp_path, closes)
    result = import_series(
        GT / "binance_BTCUSDT_daily_coinalyze.csv", kind="liquidations", symbol=BTC,
        data_dir=tmp_path,
    )  # fmt: skip
    assert result.rows_stored == 7  # three trailing blank rows left out
    assert any("blank row(s) at the start/end" in note for note in result.notes)
    assert any("converted at the close" in note for note in result.notes)
    frame = load_liquidations(BTC, "1d", data_dir=tmp_path)
    # 2023-11-28,85.94600000000001,198.70199999999969 at close 37 200
    assert at(frame, "2023-11-28")["long"] == pytest.approx(85.94600000000001 * 37_200.0)
    assert at(frame, "2023-11-28")["short"] == pytest.approx(198.70199999999969 * 37_200.0)
    import_series(
        GT / "binance_BTCUSDT_daily_coinalyze.csv", kind="long-short", symbol=BTC,
        data_dir=tmp_path,
    )  # fmt: skip
    shares = load_long_short(BTC, data_dir=tmp_path)
    assert at(shares, "2023-11-28")["long_share"] == pytest.approx(1.2046 / 2.2046)


def test_coinalyze_daily_open_interest_without_candles_keeps_base_units(tmp_path):
    result = import_series(
        GT / "binance_BTCUSDT_daily_coinalyze.csv", kind="open-interest", symbol=BTC,
        data_dir=tmp_path,
    )  # fmt: skip
    assert result.rows_stored == 10  # the open interest is filled to the end
    assert any("stored in BTC only" in note for note in result.notes)
    frame = load_open_interest(BTC, data_dir=tmp_path)
    assert at(frame, "2023-12-05")["open_interest"] == 83966.033
    assert np.isnan(frame["open_interest_value"]).all()


def test_coinalyze_hourly_local_labels_shift_to_utc(tmp_path):
    path = GT / "binance_BTCUSDT_1h_coinalyze.csv"
    result = import_series(path, kind="liquidations", symbol=BTC, data_dir=tmp_path / "a")
    assert result.layout == "coinalyze-ohlcv" and result.timeframe == "1h"
    assert any("repeated row(s) with equal values dropped" in note for note in result.notes)
    frame = load_liquidations(BTC, "1h", data_dir=tmp_path / "a")
    # label 2024-06-20 03:00 (UTC 2024-06-19 21:00): 0.013 BTC long, 0.974 short, close 64973.0
    first = frame.iloc[0]
    assert frame.index[0] == pd.Timestamp("2024-06-19 21:00", tz="UTC")
    assert first["long"] == pytest.approx(0.013 * 64973.0)
    assert first["short"] == pytest.approx(0.9740000000000001 * 64973.0)
    import_series(
        path, kind="liquidations", symbol=BTC, data_dir=tmp_path / "b", utc_offset_hours=0
    )
    as_labelled = load_liquidations(BTC, "1h", data_dir=tmp_path / "b")
    assert as_labelled.index[0] - frame.index[0] == pd.Timedelta(hours=6)
    import_series(path, kind="open-interest", symbol=BTC, data_dir=tmp_path / "a")
    interest = load_open_interest(BTC, data_dir=tmp_path / "a")
    assert interest.iloc[0]["open_interest"] == 75286.992
    assert interest.iloc[0]["open_interest_value"] == pytest.approx(75286.992 * 64973.0)


# --------------------------------------------------------------------------------------------
# plain files and the layout switch
# --------------------------------------------------------------------------------------------
def test_plain_layouts(tmp_path):
    liquidations = tmp_path / "liq.csv"
    liquidations.write_text(
        "time,long,short\n2025-10-10T20:00:00Z,5,1\n2025-10-10 16:00,3.5,0\n"
        "2025-10-11 00:00:00+00:00,0,2\n"
    )
    result = import_series(liquidations, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    assert (result.layout, result.timeframe, result.rows_stored) == ("plain", "4h", 3)
    frame = load_liquidations(BTC, "4h", data_dir=tmp_path)
    assert frame["long"].tolist() == [3.5, 5.0, 0.0]  # unsorted rows sorted by time
    assert str(frame.index[0]) == "2025-10-10 16:00:00+00:00"

    interest = tmp_path / "oi.csv"
    interest.write_text("timestamp,open_interest\n1760112000000,1e9\n1760126400000,2e9\n")
    import_series(interest, kind="open-interest", symbol=BTC, data_dir=tmp_path)
    levels = load_open_interest(BTC, "4h", data_dir=tmp_path)
    assert levels["open_interest_value"].tolist() == [1e9, 2e9]
    assert levels.attrs["known_at"] == "bar_close"

    ratio = tmp_path / "ratio.csv"
    ratio.write_text("time,long_short_ratio\n2025-10-10 16:00,3\n2025-10-10 20:00,1\n")
    import_series(ratio, kind="long-short", symbol=BTC, measure="top_position", data_dir=tmp_path)
    shares = load_long_short(BTC, data_dir=tmp_path)
    assert shares["top_position_long_share"].tolist() == [0.75, 0.5]
    assert shares["long_share"].isna().all()


def test_layout_override(tmp_path):
    path = GT / "binance_BTC_liquidations_4h_merged.csv"
    result = import_series(path, kind="liquidations", symbol=BTC, layout="plain", data_dir=tmp_path)
    assert result.layout == "plain"  # time_ms, long_usd, short_usd read as plain
    bar = at(load_liquidations(BTC, "4h", data_dir=tmp_path), "2025-10-10 20:00")
    assert bar["long"] == 235601013.09389
    with pytest.raises(DataError, match=r"coinalyze layout.*no column 'date_utc'"):
        import_series(path, kind="liquidations", symbol=BTC, layout="coinalyze", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown layout"):
        import_series(path, kind="liquidations", symbol=BTC, layout="excel", data_dir=tmp_path)


def test_binance_metrics_archive(tmp_path):
    path = GT / "BTCUSDT_metrics.csv"
    with pytest.raises(DataError, match=r"2022-06-05 00:00 UTC has a blank value.*--skip-blank"):
        import_series(path, kind="open-interest", symbol=BTC, data_dir=tmp_path)
    result = import_series(
        path, kind="open-interest", symbol=BTC, skip_blank=True, data_dir=tmp_path
    )
    assert (result.layout, result.timeframe, result.rows_stored) == ("binance-metrics", "1d", 5)
    interest = load_open_interest(BTC, "1d", data_dir=tmp_path)
    row = at(interest, "2022-06-01")  # 87997.425, 2798125904.153476
    assert row["open_interest"] == 87997.425 and row["open_interest_value"] == 2798125904.153476
    assert interest.attrs["known_at"] == "bar_close"  # a date alone: known at the day's end
    import_series(path, kind="long-short", symbol=BTC, skip_blank=True, data_dir=tmp_path)
    shares = at(load_long_short(BTC, "1d", data_dir=tmp_path), "2022-06-02")
    # count_long_short_ratio 1.9633351249036055, count_toptrader 2.075548968368501,
    # sum_toptrader 1.1952595893
    assert shares["long_share"] == pytest.approx(1.9633351249036055 / 2.9633351249036055)
    assert shares["top_account_long_share"] == pytest.approx(2.075548968368501 / 3.075548968368501)
    assert shares["top_position_long_share"] == pytest.approx(1.1952595893 / 2.1952595893)
    with pytest.raises(DataError, match="holds no liquidations"):
        import_series(path, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    samples = tmp_path / "metrics_5m.csv"
    samples.write_text(
        "create_time,symbol,sum_open_interest,sum_open_interest_value,count_long_short_ratio\n"
        "2025-10-10 00:05:00,BTCUSDT,1,100,1\n2025-10-10 00:10:00,BTCUSDT,2,200,3\n"
    )
    import_series(samples, kind="open-interest", symbol=BTC, data_dir=tmp_path / "five")
    five = load_open_interest(BTC, data_dir=tmp_path / "five")
    assert five.attrs["known_at"] == "time" and five.attrs["timeframe"] == "5m"


def test_coinalyze_wide_table_picks_the_symbol_columns(tmp_path):
    path = GT / "coinalyze_wide_liquidations.csv"
    days = pd.date_range("2022-01-02", "2022-01-06", freq="D").strftime("%Y-%m-%d")
    daily_candles(tmp_path, {day: 47_000.0 for day in days})
    result = import_series(path, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    assert (result.layout, result.timeframe, result.rows_stored) == ("coinalyze-wide", "1d", 5)
    first = load_liquidations(BTC, "1d", data_dir=tmp_path).iloc[0]
    # 2022-01-02: BTCUSDT_PERP.A_longliq 114.77800000000016, _shortliq 79.26300000000012
    assert first["long"] == pytest.approx(114.77800000000016 * 47_000.0)
    assert first["short"] == pytest.approx(79.26300000000012 * 47_000.0)
    with pytest.raises(ConfigError, match=r"--venue, one of A"):
        import_series(path, kind="liquidations", symbol=BTC, exchange="bybit", data_dir=tmp_path)
    with pytest.raises(DataError, match="no SOLUSDT_PERP"):
        import_series(path, kind="liquidations", symbol="SOL/USDT:USDT", data_dir=tmp_path)
    with pytest.raises(DataError, match=r"no BTCUSDT_PERP\.A_oi column"):
        import_series(path, kind="open-interest", symbol=BTC, data_dir=tmp_path)
