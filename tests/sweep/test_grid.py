import datetime

import pytest

from backtest.errors import ConfigError
from backtest.plugins import resolve_strategy
from backtest.sweep.grid import (
    MAP,
    PARAMS,
    PERIOD,
    RUN,
    build_axes,
    convert_value,
    expand,
    grid_from_table,
    grid_size,
    parse_grid_options,
    split_period,
)
from tests.sweep import fakes

MAP_DEFAULTS = {"bucket_width": 0.002, "lookback_bars": 288, "use_open_interest": False}


@pytest.fixture(scope="module")
def toy():
    return resolve_strategy(fakes.STRATEGY)


def axes_of(grid, toy):
    return build_axes(grid, toy, run_defaults=fakes.RUN_DEFAULTS, map_defaults=MAP_DEFAULTS)


def test_grid_options_split_names_and_values():
    grid = parse_grid_options(["fast=3, 5,8", "leverage=3,5", "map.bucket_width=0.001"])
    assert grid == {
        "fast": ["3", "5", "8"],
        "leverage": ["3", "5"],
        "map.bucket_width": ["0.001"],
    }


@pytest.mark.parametrize("item", ["fast", "=3,4", "fast=", "fast= , "])
def test_malformed_grid_option_is_one_clear_error(item):
    with pytest.raises(ConfigError, match=r"expected name=value1,value2"):
        parse_grid_options([item])


def test_sweep_table_flattens_sub_tables_and_scalars():
    table = {
        "fast": [3, 5],
        "leverage": 5,
        "map": {"bucket_width": [0.001, 0.002]},
        "since": [datetime.date(2025, 10, 1), datetime.datetime(2025, 10, 2, 12, 0)],
    }
    assert grid_from_table(table) == {
        "fast": [3, 5],
        "leverage": [5],
        "map.bucket_width": [0.001, 0.002],
        "since": ["2025-10-01", "2025-10-02T12:00:00"],
    }


def test_axes_are_classified_and_converted(toy):
    grid = {
        "fast": ["3", "5"],
        "leverage": ["3", "10"],
        "symbol": ["BTC/USDT:USDT", "ETH/USDT:USDT"],
        "map.bucket_width": ["0.001"],
        "params.fraction": [0.25],
        "funding": ["false", "true"],
    }
    axes = {axis.name: axis for axis in axes_of(grid, toy)}
    assert (axes["fast"].target, axes["fast"].values) == (PARAMS, (3, 5))
    assert all(type(value) is int for value in axes["fast"].values)
    assert (axes["leverage"].target, axes["leverage"].values) == (RUN, (3.0, 10.0))
    assert all(type(value) is float for value in axes["leverage"].values)
    assert axes["symbol"].values == ("BTC/USDT:USDT", "ETH/USDT:USDT")
    assert (axes["map.bucket_width"].target, axes["map.bucket_width"].field) == (
        MAP,
        "bucket_width",
    )
    assert axes["map.bucket_width"].values == (0.001,)
    assert (axes["params.fraction"].target, axes["params.fraction"].field) == (PARAMS, "fraction")
    assert axes["funding"].values == (False, True)


def test_repeated_values_count_once(toy):
    (axis,) = axes_of({"leverage": ["3", "3.0", 3]}, toy)
    assert axis.values == (3.0,)


def test_unknown_axis_suggests_close_names(toy):
    with pytest.raises(ConfigError, match=r"'slwo'.*did you mean slow"):
        axes_of({"slwo": ["10"]}, toy)
    with pytest.raises(ConfigError, match=r"no map parameter 'bucket_widht'.*bucket_width"):
        axes_of({"map.bucket_widht": ["0.1"]}, toy)


def test_wrongly_typed_values_are_rejected(toy):
    with pytest.raises(ConfigError, match=r"fast"):
        axes_of({"fast": ["three"]}, toy)
    with pytest.raises(ConfigError, match=r"run setting 'leverage' expects float"):
        axes_of({"leverage": ["high"]}, toy)


def test_name_that_is_both_run_setting_and_parameter_needs_a_prefix(toy):
    defaults = {**fakes.RUN_DEFAULTS, "fast": 1}
    with pytest.raises(ConfigError, match=r"run\.fast or params\.fast"):
        build_axes({"fast": ["2"]}, toy, run_defaults=defaults, map_defaults=MAP_DEFAULTS)
    (axis,) = build_axes(
        {"params.fast": ["2"]}, toy, run_defaults=defaults, map_defaults=MAP_DEFAULTS
    )
    assert (axis.target, axis.values) == (PARAMS, (2,))


def test_strategy_cannot_be_an_axis(toy):
    with pytest.raises(ConfigError, match=r"one strategy at a time"):
        axes_of({"strategy": ["A", "B"]}, toy)


def test_axes_setting_the_same_field_clash(toy):
    with pytest.raises(ConfigError, match=r"'period' and 'since' both set since"):
        axes_of({"period": ["2025-10-01..2025-10-03"], "since": ["2025-10-01"]}, toy)


def test_periods_split_into_since_and_until():
    assert split_period("2025-10-01..2025-10-05") == ("2025-10-01", "2025-10-05")
    assert split_period("..2025-10-05") == (None, "2025-10-05")
    with pytest.raises(ConfigError, match=r"SINCE\.\.UNTIL"):
        split_period("2025-10-01")
    with pytest.raises(ConfigError, match=r"not before the end"):
        split_period("2025-10-05..2025-10-01")


def test_expand_is_the_product_in_axis_order(toy):
    axes = axes_of(
        {"fast": ["3", "5"], "leverage": ["2", "4", "6"], "period": ["2025-10-01..2025-10-02"]},
        toy,
    )
    base = {"strategy": "X", "params": {"slow": 30}, "cash": 500.0}
    points = expand(base, axes)
    assert grid_size(axes) == len(points) == 6
    assert [point.values["fast"] for point in points] == [3, 3, 3, 5, 5, 5]
    assert [point.values["leverage"] for point in points] == [2.0, 4.0, 6.0] * 2
    last = points[-1].settings
    assert last["params"] == {"slow": 30, "fast": 5}
    assert (last["leverage"], last["cash"]) == (6.0, 500.0)
    assert (last["since"], last["until"]) == ("2025-10-01", "2025-10-02")
    assert base["params"] == {"slow": 30}, "the base settings must not be modified"
    assert next(axis for axis in axes if axis.name == "period").target == PERIOD


def test_convert_value_follows_the_default_type():
    assert convert_value("x", "5", 1) == 5
    with pytest.raises(ConfigError):
        convert_value("x", "5.5", 1)
    assert convert_value("x", 4, 1.0) == 4.0
    assert convert_value("x", "yes", False) is True
    assert convert_value("x", "(1, 2)", None) == (1, 2)
    assert convert_value("x", "2025-10-01", None) == "2025-10-01"
    with pytest.raises(ConfigError):
        convert_value("x", True, 1.0)
