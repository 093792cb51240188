"""The map's warm-up rule (backtest.liquidation.warmup) and the model's independence from the
market layer."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from backtest.errors import ConfigError
from backtest.liquidation.heatmap import MapParams
from backtest.liquidation.warmup import (
    format_warmup,
    memory_half_life,
    open_interest_retention,
    parse_warmup,
    resolve_warmup,
    warmup_bars,
    warmup_duration,
    warmup_half_lives,
    warmup_start,
)


def test_model_does_not_import_the_market_layer():
    # Every module of backtest.liquidation, plus a timeframe parse through the map (the lazy
    # import of bar_hours) and the warm-up rule, must leave backtest.market unloaded.
    code = (
        "import importlib, pkgutil, sys\n"
        "import backtest.liquidation as package\n"
        "for info in pkgutil.walk_packages(package.__path__, 'backtest.liquidation.'):\n"
        "    importlib.import_module(info.name)\n"
        "from backtest.liquidation.heatmap import LiquidationMap, bar_hours\n"
        "from backtest.liquidation.warmup import warmup_bars, warmup_start\n"
        "assert bar_hours('5m') == 5 / 60\n"
        "LiquidationMap(timeframe='1h').new_kernel()\n"
        "warmup_bars(None, '1h'); warmup_start('2025-10-01', None, '5m')\n"
        "print(sorted(name for name in sys.modules if name.startswith('backtest.market')))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


def test_market_timeframes_still_re_exports_the_shared_parsing():
    import backtest.market.timeframes as market_timeframes
    import backtest.timeframes as shared

    for name in ("timeframe_to_ms", "parse_time", "format_ms", "format_date_argument", "now_ms"):
        assert getattr(market_timeframes, name) is getattr(shared, name)


def test_default_rule_is_twenty_half_lives():
    assert warmup_half_lives(1e-6) == 20  # 2**-20 = 9.5e-7 <= 1e-6 < 2**-19
    assert warmup_half_lives(2**-20) == 20
    assert warmup_half_lives(1e-3) == 10
    # the default half-life is 7.3 h: 20 x 7.3 h = 146 h
    assert MapParams().half_life_hours == 7.3
    assert warmup_duration() == pd.Timedelta(hours=146)
    assert warmup_duration(MapParams(half_life_hours=12), "5m") == pd.Timedelta(days=10)
    assert warmup_bars(MapParams(), "1h") == 146
    assert warmup_bars(MapParams(), "5m") == 1_752


def test_half_life_in_bars_needs_and_uses_the_timeframe():
    params = MapParams(half_life_bars=100)
    assert memory_half_life(params, "5m") == pd.Timedelta(minutes=500)
    # 20 x 500 minutes = 10,000 minutes = 2,000 bars of 5m
    assert warmup_bars(params, "5m") == 2_000
    with pytest.raises(ConfigError, match="half_life_bars needs the bar length"):
        warmup_duration(params)


def test_cascade_ewma_counts_when_longer():
    params = MapParams.from_dict({"half_life_hours": 6, "cascade": {"halflife_hours": 24}})
    assert memory_half_life(params) == pd.Timedelta(hours=24)
    assert memory_half_life(MapParams(half_life_hours=6)) == pd.Timedelta(hours=6)


def test_cap_and_rounding_to_bars():
    assert warmup_duration({"half_life_hours": 5_000}) == pd.Timedelta(days=365)
    # 20 x 7 h = 140 h is not a whole number of 3h bars: rounded up to 141 h
    assert warmup_duration({"half_life_hours": 7}, "3h") == pd.Timedelta(hours=141)


def test_warmup_start_and_overrides():
    since = pd.Timestamp("2025-10-01", tz="UTC")
    assert warmup_start("2025-10-01", None, "5m") == since - pd.Timedelta(hours=146)
    assert warmup_start("2025-10-01", None, "5m", warmup="30d") == since - pd.Timedelta(days=30)
    assert warmup_start("2025-10-01", None, "5m", warmup="0") == since
    assert warmup_start(None, None, "5m") is None
    assert resolve_warmup("auto", {"half_life_hours": 24}) == pd.Timedelta(days=20)
    assert resolve_warmup("12h") == pd.Timedelta(hours=12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", pd.Timedelta(days=30)), ("2w", pd.Timedelta(days=14)), ("90m", pd.Timedelta(90, "m")),
     ("1.5h", pd.Timedelta(minutes=90)), ("0", pd.Timedelta(0)), (0, pd.Timedelta(0)),
     ("auto", None), (None, None)],
)  # fmt: skip
def test_parse_warmup(text, expected):
    assert parse_warmup(text) == expected


@pytest.mark.parametrize("text", ["30", "thirty days", "-3d", "5y", True, 12, [1]])
def test_bad_warmup_is_one_clear_line(text):
    with pytest.raises(ConfigError, match="warmup") as error:
        parse_warmup(text)
    assert "\n" not in str(error.value)


def test_format_warmup_round_trips():
    for text in ("40d", "36h", "90m", "0"):
        assert format_warmup(parse_warmup(text)) == text


def test_bad_tolerance():
    for tolerance in (0, 1, 1.5, -1e-6, "1e-6"):
        with pytest.raises(ConfigError, match="tolerance"):
            warmup_half_lives(tolerance)


def test_open_interest_retention_is_the_product_of_the_falls():
    assert open_interest_retention([100, 110, 99, float("nan"), 120, 60]) == pytest.approx(
        0.9 * 0.5
    )
    assert open_interest_retention([100, 120, 130]) == 1.0
    assert open_interest_retention([]) == 1.0
    assert open_interest_retention([100, 0, 50]) == 0.0
