"""The bundled Binance snapshots cover every USDⓈ-M symbol; compact files; several folders."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil

import pytest

from backtest.errors import ConfigError, DataError
from backtest.liquidation.prices import liquidation_price
from backtest.liquidation.tiers import (
    COMPACT_FORMAT,
    DEFAULT_TIERS_DIR,
    _read_snapshot,
    expected_cums,
    find_snapshot,
    list_snapshots,
    load_tiers,
    write_snapshot,
)

WHEELS = {  # freqtrade wheel of each compact snapshot, and how many symbols it lists
    "binanceusdm-2024-10-31.json.gz": ("2024.10", 353),
    "binanceusdm-2025-10-07.json.gz": ("2025.9.1", 588),
    "binanceusdm-2026-09-30.json.gz": ("2026.9", 907),
}
OTHERS = ("SOL/USDT:USDT", "DOGE/USDT:USDT", "XRP/USDT:USDT", "BNB/USDT:USDT", "LINK/USDT:USDT")


def document(path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.parametrize("name", sorted(WHEELS))
def test_compact_snapshots_name_their_wheel_and_cover_every_symbol(name):
    version, count = WHEELS[name]
    content = document(DEFAULT_TIERS_DIR / name)
    assert content["format"] == COMPACT_FORMAT and content["exchange"] == "binanceusdm"
    assert content["source"].startswith(f"freqtrade {version} wheel (PyPI)")
    assert content["effective_date"] == name.split("-", 1)[1].removesuffix(".json.gz")
    assert len(content["tiers"]) == count


@pytest.mark.parametrize("name", sorted(WHEELS))
def test_every_table_of_every_snapshot_passes_the_checks(name):
    symbols = sorted(_read_snapshot(str((DEFAULT_TIERS_DIR / name).resolve())))
    date = name.split("-", 1)[1].removesuffix(".json.gz")
    for symbol in symbols:
        tiers = load_tiers(symbol, at=date)
        assert tiers.effective_date == dt.date.fromisoformat(date)
        cums = expected_cums(tiers.tiers)
        assert [tier.cum for tier in tiers.tiers] == pytest.approx(cums, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("symbol", OTHERS)
def test_other_binance_symbols_load_and_price(symbol):
    tiers = load_tiers(symbol, at="2025-10-10")
    assert tiers.effective_date == dt.date(2025, 10, 7)
    first = tiers.tiers[0]
    # a 5x long of 1,000 notional at 100: Binance's formula with the first bracket (cum 0)
    expected = (1_000.0 / 5 - 1_000.0) / (10.0 * first.maintenance_margin_rate - 10.0)
    assert liquidation_price("binance", "long", 100.0, 10.0, 5.0, tiers=tiers) == pytest.approx(
        expected
    )


def test_a_symbol_missing_from_the_earliest_snapshot_uses_its_own_earliest():
    # SOL is not in the BTC/ETH-only 2024-10-24 file: before every snapshot, its earliest table
    assert load_tiers("SOL/USDT:USDT", at="2023-01-01").effective_date == dt.date(2024, 10, 31)
    assert load_tiers("BTC/USDT:USDT", at="2023-01-01").effective_date == dt.date(2024, 10, 24)


def test_unknown_symbol_message_is_short_with_a_suggestion():
    with pytest.raises(ConfigError) as caught:
        load_tiers("SOL/USDT")
    message = str(caught.value)
    assert "did you mean 'SOL/USDT:USDT'?" in message and "symbols available, e.g." in message
    assert len(message) < 400 and "\n" not in message


def test_corrupted_compact_file_is_one_line(tmp_path):
    shutil.copy(DEFAULT_TIERS_DIR / "binanceusdm-2026-09-30.json.gz", tmp_path)
    target = tmp_path / "binanceusdm-2026-09-30.json.gz"
    target.write_bytes(target.read_bytes()[:200])  # truncated gzip stream
    with pytest.raises(DataError) as caught:
        load_tiers(directory=tmp_path)
    assert "cannot read tier snapshot" in str(caught.value) and "\n" not in str(caught.value)


def test_compact_file_with_a_wrong_cum_is_rejected(tmp_path):
    content = document(DEFAULT_TIERS_DIR / "binanceusdm-2026-09-30.json.gz")
    content["tiers"]["SOL/USDT:USDT"][2][4] += 1.0  # a dollar off the recomputed cum
    with gzip.open(tmp_path / "binanceusdm-2026-09-30.json.gz", "wt", encoding="utf-8") as out:
        json.dump(content, out)
    with pytest.raises(ConfigError, match=r"SOL/USDT:USDT tiers .* bracket 3 cum .* disagrees"):
        load_tiers("SOL/USDT:USDT", directory=tmp_path)
    assert load_tiers("BTC/USDT:USDT", directory=tmp_path).tiers[1].cum == 300.0


def test_compact_file_with_a_gap_is_rejected(tmp_path):
    content = document(DEFAULT_TIERS_DIR / "binanceusdm-2026-09-30.json.gz")
    content["tiers"]["XRP/USDT:USDT"][1][0] += 1.0  # floor 1 USDT above the previous cap
    with gzip.open(tmp_path / "binanceusdm-2026-09-30.json.gz", "wt", encoding="utf-8") as out:
        json.dump(content, out)
    with pytest.raises(ConfigError, match="gap between bracket 1"):
        load_tiers("XRP/USDT:USDT", directory=tmp_path)


def test_foreign_compact_format_is_named(tmp_path):
    with gzip.open(tmp_path / "binanceusdm-2026-01-01.json.gz", "wt", encoding="utf-8") as out:
        json.dump({"format": "something-else", "tiers": {}}, out)
    with pytest.raises(DataError, match="has format 'something-else'"):
        load_tiers(directory=tmp_path)


def test_first_folder_wins_on_the_same_date_and_dates_still_rule(tmp_path):
    rows = [
        {"minNotional": 0, "maxNotional": 1e6, "maintenanceMarginRate": 0.01, "maxLeverage": 50}
    ]
    store = tmp_path / "store"
    write_snapshot(
        store,
        {"BTC/USDT:USDT": rows},
        exchange="binanceusdm",
        effective_date=dt.date(2025, 10, 7),
        source="test",
    )
    folders = [store, DEFAULT_TIERS_DIR]
    same_day = load_tiers("BTC/USDT:USDT", at="2025-10-10", directory=folders)
    assert same_day.tiers[0].maintenance_margin_rate == 0.01  # the store's file
    later = load_tiers("BTC/USDT:USDT", at="2026-10-01", directory=folders)
    assert later.effective_date == dt.date(2026, 9, 30)  # the bundled table in force then
    # the store's file lacks ETH: ETH comes from the bundled snapshot of that date
    eth = find_snapshot("ETH/USDT:USDT", at="2025-10-10", directory=folders)
    assert eth.path.parent == DEFAULT_TIERS_DIR.resolve()


def test_write_snapshot_refuses_a_bad_table_and_writes_nothing(tmp_path):
    rows = [
        {"minNotional": 0, "maxNotional": 100, "maintenanceMarginRate": 0.01, "maxLeverage": 50},
        {"minNotional": 150, "maxNotional": 900, "maintenanceMarginRate": 0.02, "maxLeverage": 20},
    ]
    with pytest.raises(ConfigError, match="gap between bracket 1"):
        write_snapshot(
            tmp_path, {"X/USDT:USDT": rows}, exchange="bybit", effective_date=dt.date(2025, 1, 1),
            source="test",
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []
    assert list_snapshots("bybit", directory=tmp_path) == []
