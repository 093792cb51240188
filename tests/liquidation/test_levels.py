"""Round levels: steps by magnitude, nearest levels, ranges, and agreement with the map's kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.errors import ConfigError
from backtest.liquidation import levels
from backtest.liquidation.heatmap import LiquidationMap, MapParams


@pytest.mark.parametrize(
    ("price", "step", "major"),
    [
        (85_000.0, 1_000.0, 5_000.0),
        (115_000.0, 1_000.0, 5_000.0),
        (2_800.0, 50.0, 500.0),
        (4_100.0, 50.0, 500.0),
        (0.52, 0.005, 0.05),
        (30_000.0, 500.0, 5_000.0),
        (999.0, 10.0, 50.0),
    ],
)
def test_step_by_magnitude(price, step, major):
    assert levels.round_step(price) == pytest.approx(step, rel=1e-12)
    assert levels.major_step(price) == pytest.approx(major, rel=1e-12)


def test_issue_examples_are_levels_and_85000_is_major():
    assert levels.is_round_level(85_000.0)
    assert levels.is_round_level(85_000.0, major=True)
    assert levels.is_round_level(2_800.0)
    assert not levels.is_round_level(2_800.0, major=True)
    assert not levels.is_round_level(84_500.0)
    assert not levels.is_round_level(2_810.0)


def test_nearest_levels_below_and_above():
    assert levels.nearest_level_below(84_321.0) == 84_000.0
    assert levels.nearest_level_above(84_321.0) == 85_000.0
    assert levels.nearest_level_below(84_321.0, major=True) == 80_000.0
    assert levels.nearest_level_above(84_321.0, major=True) == 85_000.0
    assert levels.nearest_level(84_700.0) == 85_000.0
    # a level is its own nearest level on both sides
    assert levels.nearest_level_below(2_800.0) == levels.nearest_level_above(2_800.0) == 2_800.0


def test_levels_between_the_crash_bar():
    # BTC's 21:15 bar on 2025-10-10 went from 112,539.5 down to 102,193.6
    inside = levels.levels_between(102_193.6, 112_539.5)
    np.testing.assert_array_equal(inside, np.arange(103_000.0, 112_001.0, 1_000.0))
    np.testing.assert_array_equal(
        levels.levels_between(102_193.6, 112_539.5, major=True), [105_000.0, 110_000.0]
    )
    assert levels.levels_between(84_100.0, 84_900.0).size == 0


def test_distance_pct_is_signed():
    assert levels.distance_pct(100.0, 103.0) == pytest.approx(3.0)
    assert levels.distance_pct(100.0, 95.0) == pytest.approx(-5.0)


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf, "abc"])
def test_bad_prices_raise_one_clear_error(price):
    with pytest.raises(ConfigError, match="positive finite"):
        levels.round_step(price)


def test_bad_range_raises():
    with pytest.raises(ConfigError, match="above high"):
        levels.levels_between(10.0, 9.0)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_levels_bracket_any_price(price):
    step = levels.round_step(price)
    # spacing stays between about 0.45 % and 2.3 % of the price at every magnitude
    assert 0.0044 < step / price < 0.0230
    below = levels.nearest_level_below(price)
    above = levels.nearest_level_above(price)
    assert below <= price * (1 + 1e-12) and above >= price * (1 - 1e-12)
    assert above - below == pytest.approx(0.0, abs=step * 1e-6) or above - below == (
        pytest.approx(step, rel=1e-6)
    )
    assert levels.is_round_level(below)
    assert levels.major_step(price) > step
    ratio = levels.major_step(price) / step
    assert ratio in (pytest.approx(5.0), pytest.approx(10.0))


@settings(max_examples=100, deadline=None)
@given(
    st.floats(min_value=0.01, max_value=2e5, allow_nan=False),
    st.floats(min_value=0.0, max_value=0.03),
)
def test_the_map_uses_the_same_levels(low, width):
    """The kernel spec's round levels (step of the close) are levels.py's levels."""
    high = low * (1.0 + width)
    kernel = LiquidationMap(MapParams(), timeframe="5m", backend="reference").new_kernel()
    pairs = kernel._round_levels(low, high, low)
    found = np.array(pairs[0::2])
    expected = levels.levels_between(low, high)
    if expected.size > 16:  # the map keeps only the major ones in very wide bars
        expected = levels.levels_between(low, high, major=True)
        if expected.size > 16:
            expected = expected[:0]

    # levels.py forgives 1e-9 relative at the bounds, the kernel compares exactly
    def inner(values):
        values = np.asarray(values, dtype=float)
        keep = (values > low * (1 + 1e-9)) & (values < high * (1 - 1e-9))
        return values[keep]

    np.testing.assert_allclose(inner(found), inner(expected), rtol=1e-12)
