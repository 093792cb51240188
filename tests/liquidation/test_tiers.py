import datetime as dt
import itertools
import json
import shutil
from pathlib import Path

import pytest

from backtest.errors import ConfigError, DataError
from backtest.liquidation.tiers import (
    DEFAULT_TIERS_DIR,
    SNAPSHOT_PATTERN,
    LeverageTiers,
    Tier,
    _read_snapshot,
    list_snapshots,
    load_tiers,
)

SNAPSHOTS = sorted(
    path for path in DEFAULT_TIERS_DIR.iterdir() if SNAPSHOT_PATTERN.match(path.name)
)
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")


def raw_rows(path: Path, symbol: str) -> list[dict]:
    return _read_snapshot(str(path.resolve()))[symbol]


def name_parts(path: Path) -> tuple[str, str]:
    match = SNAPSHOT_PATTERN.match(path.name)
    assert match is not None
    return match["exchange"], match["date"]


def table(rows: list[tuple[float, float, float, float, float]]) -> tuple[Tier, ...]:
    return tuple(Tier(*row) for row in rows)


GOOD = [
    (0.0, 50_000.0, 0.004, 125.0, 0.0),
    (50_000.0, 600_000.0, 0.005, 100.0, 50.0),
    (600_000.0, 3_000_000.0, 0.0065, 75.0, 950.0),
]


@pytest.mark.parametrize("path", SNAPSHOTS, ids=lambda path: path.name)
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_snapshot_loads_in_ccxt_fields(path, symbol):
    exchange, date = name_parts(path)
    tiers = load_tiers(symbol, exchange, at=date)
    assert tiers.effective_date == dt.date.fromisoformat(date)
    assert Path(tiers.source) == path.resolve()
    rows = raw_rows(path, symbol)
    assert len(tiers.tiers) == len(rows)
    for tier, row in zip(tiers.tiers, rows, strict=True):
        assert tier.min_notional == float(row["minNotional"])
        assert tier.max_notional == float(row["maxNotional"])
        assert tier.maintenance_margin_rate == float(row["maintenanceMarginRate"])
        assert tier.max_leverage == float(row["maxLeverage"])
        assert tier.cum == float(row["info"]["cum"])


def test_snapshot_names_are_dated_and_ordered():
    snapshots = list_snapshots("binanceusdm")
    assert [snapshot.path.name for snapshot in snapshots] == [path.name for path in SNAPSHOTS]
    dates = [snapshot.effective_date for snapshot in snapshots]
    assert dates == sorted(dates) and len(set(dates)) == len(dates) >= 2


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (None, "2026-09-30"),
        ("2019-09-01", "2024-10-24"),  # before every snapshot: the earliest one
        ("2024-10-24", "2024-10-24"),
        ("2024-10-31", "2024-10-31"),
        ("2025-10-06", "2024-10-31"),
        ("2025-10-10", "2025-10-07"),
        (dt.date(2026, 9, 29), "2025-10-07"),
        (dt.date(2026, 9, 30), "2026-09-30"),
        (dt.datetime(2027, 1, 1, 12, 0), "2026-09-30"),
        ("2026-09-30T23:00:00-05:00", "2026-09-30"),  # aware: converted to UTC first (Oct 1st)
        ("2026-09-29T23:00:00-05:00", "2026-09-30"),  # 2026-09-30 04:00 UTC
    ],
)
def test_snapshot_in_force_at_date(at, expected):
    assert load_tiers(at=at).effective_date == dt.date.fromisoformat(expected)


def test_bad_date_is_a_config_error():
    with pytest.raises(ConfigError, match="not a date"):
        load_tiers(at="yesterday")


def test_unknown_symbol_suggests_the_close_one():
    with pytest.raises(ConfigError, match=r"did you mean 'BTC/USDT:USDT'\?"):
        load_tiers("BTC/USDT")


def test_unknown_exchange_lists_the_available_ones():
    with pytest.raises(ConfigError, match=r"did you mean 'binanceusdm'\?.*available: binanceusdm"):
        load_tiers(exchange="binance")


def test_corrupt_snapshot_is_a_data_error(tmp_path):
    (tmp_path / "binanceusdm-2025-01-01.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="cannot read tier snapshot"):
        load_tiers(directory=tmp_path)


def test_snapshot_with_wrong_cum_is_rejected(tmp_path):
    source = SNAPSHOTS[0]
    content = json.loads(source.read_text(encoding="utf-8"))
    content["BTC/USDT:USDT"][3]["info"]["cum"] = "11451.0"  # off by one dollar
    (tmp_path / source.name).write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bracket 4 cum 11451 disagrees .* 11450"):
        load_tiers(directory=tmp_path)
    assert load_tiers("ETH/USDT:USDT", directory=tmp_path).tiers[3].cum == 11450.0


def test_directory_from_environment(tmp_path, monkeypatch):
    shutil.copy(SNAPSHOTS[0], tmp_path / "binanceusdm-2030-01-01.json")
    monkeypatch.setenv("BACKTEST_TIERS_DIR", str(tmp_path))
    assert load_tiers().effective_date == dt.date(2030, 1, 1)


def test_cum_is_recomputed_when_info_lacks_it():
    rows = [
        {"minNotional": low, "maxNotional": high, "maintenanceMarginRate": rate, "maxLeverage": lev}
        for low, high, rate, lev, _ in GOOD
    ]
    tiers = LeverageTiers.from_ccxt("X/USDT:USDT", rows, exchange="bybit")
    assert [tier.cum for tier in tiers.tiers] == pytest.approx([row[4] for row in GOOD])


def test_to_ccxt_round_trips():
    tiers = LeverageTiers("X/USDT:USDT", "binanceusdm", None, table(GOOD))
    again = LeverageTiers.from_ccxt("X/USDT:USDT", tiers.to_ccxt())
    assert again.tiers == tiers.tiers


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no brackets"),
        ([(10.0, 50_000.0, 0.004, 125.0, 0.0)], "must start at 0"),
        (
            [GOOD[0], (60_000.0, 600_000.0, 0.005, 100.0, 110.0)],
            r"gap between bracket 1 \(up to 50000\) and bracket 2 \(from 60000\)",
        ),
        (
            [GOOD[0], (40_000.0, 600_000.0, 0.005, 100.0, 40.0)],
            r"bracket 2 \(from 40000\) overlaps bracket 1 \(up to 50000\)",
        ),
        ([GOOD[0], (50_000.0, 600_000.0, 0.005, 100.0, 49.0)], r"bracket 2 cum 49 disagrees"),
        ([(0.0, 50_000.0, 0.004, 125.0, 1.0)], r"bracket 1 cum 1 disagrees"),
        ([GOOD[0], (50_000.0, 600_000.0, 0.003, 100.0, -50.0)], "rates must not decrease"),
        ([GOOD[0], (50_000.0, 600_000.0, 0.005, 150.0, 50.0)], "must not increase"),
        ([(0.0, 0.0, 0.004, 125.0, 0.0)], "empty or reversed"),
        ([(0.0, 50_000.0, 1.2, 125.0, 0.0)], r"outside the allowed range \[0, 1\)"),
        ([(0.0, 50_000.0, 0.004, 0.0, 0.0)], "maxLeverage 0 must be > 0"),
    ],
)
def test_inconsistent_tables_are_rejected(rows, message):
    with pytest.raises(ValueError, match=message) as caught:
        LeverageTiers("X/USDT:USDT", "binanceusdm", None, table(rows))
    assert isinstance(caught.value, ConfigError)
    assert "\n" not in str(caught.value)


def test_missing_field_names_the_bracket():
    with pytest.raises(ConfigError, match="bracket 1 lacks a numeric 'maxLeverage'"):
        LeverageTiers.from_ccxt(
            "X", [{"minNotional": 0, "maxNotional": 1, "maintenanceMarginRate": 0.01}]
        )


def test_bracket_lookup_boundaries():
    tiers = LeverageTiers("X/USDT:USDT", "binanceusdm", None, table(GOOD))
    assert tiers.tier_for_notional(0.0) == tiers.tiers[0]
    assert tiers.tier_for_notional(49_999.99) == tiers.tiers[0]
    assert tiers.tier_for_notional(50_000.0) == tiers.tiers[1]  # floor inclusive
    assert tiers.tier_for_notional(3_000_000.0) == tiers.tiers[2]
    # A position as large as a cap may still use that bracket's leverage.
    assert tiers.max_leverage_for_notional(50_000.0) == 125.0
    assert tiers.max_leverage_for_notional(50_000.01) == 100.0
    assert tiers.max_leverage_for_notional(3_000_000.0) == 75.0
    assert tiers.max_leverage == 125.0
    assert tiers.max_notional_for_leverage(100.0) == 600_000.0
    assert tiers.max_notional_for_leverage(80.0) == 600_000.0
    assert tiers.max_notional_for_leverage(126.0) == 0.0


@pytest.mark.parametrize("notional", [-1.0, float("nan"), 3_000_000.01])
def test_bracket_lookup_rejects_out_of_range_notional(notional):
    tiers = LeverageTiers("X/USDT:USDT", "binanceusdm", None, table(GOOD))
    with pytest.raises(ConfigError, match=r"notional"):
        tiers.tier_for_notional(notional)
    with pytest.raises(ConfigError, match=r"notional"):
        tiers.max_leverage_for_notional(notional)


def test_maintenance_margin_is_continuous_at_every_floor():
    for path in SNAPSHOTS:
        exchange, date = name_parts(path)
        for symbol in SYMBOLS:
            tiers = load_tiers(symbol, exchange, at=date).tiers
            for below, above in itertools.pairwise(tiers):
                floor = above.min_notional
                assert below.maintenance_margin(floor) == pytest.approx(
                    above.maintenance_margin(floor), rel=1e-12
                )
