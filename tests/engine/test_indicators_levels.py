"""RoundLevels: the levels of backtest.liquidation.levels as lines, once and next alike."""

from __future__ import annotations

import math
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from backtest.engine.indicators import (
    ROUND_LEVEL_LINES,
    RoundLevels,
    round_levels_array,
    round_levels_at,
)
from backtest.liquidation import levels

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    candles = pd.read_parquet(DATA / "indicators_btc_5m.parquet")
    candles.index = candles.index.tz_convert(None)
    return candles[["open", "high", "low", "close", "volume"]]


class Probe(bt.Strategy):
    def __init__(self) -> None:
        self.levels = RoundLevels(self.data)
        self.major = RoundLevels(self.data, major=True)
        self.high_levels = RoundLevels(self.data.high)


def run(candles: pd.DataFrame, runonce: bool) -> Probe:
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    cerebro.adddata(bt.feeds.PandasData(dataname=candles))
    cerebro.addstrategy(Probe)
    return cerebro.run()[0]


def table(indicator) -> np.ndarray:
    return np.column_stack([np.array(line.array) for line in indicator.lines])


def test_hand_checked_levels():
    # BTC: 1,000 apart, 5,000 for major levels (the table in backtest.liquidation.levels)
    below, above, down, up = round_levels_at(84_999.0)
    assert (below, above) == (84_000.0, 85_000.0)
    assert down == pytest.approx(-999.0 / 84_999.0 * 100.0)
    assert up == pytest.approx(1.0 / 84_999.0 * 100.0)
    assert round_levels_at(83_200.0, major=True)[:2] == (80_000.0, 85_000.0)
    # ETH: 50 apart, 500 for major levels
    assert round_levels_at(2_801.0)[:2] == (2_800.0, 2_850.0)
    assert round_levels_at(2_801.0, major=True)[:2] == (2_500.0, 3_000.0)
    # on a level: both sides are the level, at distance 0
    assert round_levels_at(85_000.0) == (85_000.0, 85_000.0, 0.0, 0.0)
    for bad in (math.nan, 0.0, -5.0, math.inf):
        assert all(math.isnan(value) for value in round_levels_at(bad))


def test_lines_follow_the_close_in_both_modes(frame):
    once = run(frame, runonce=True)
    stepped = run(frame, runonce=False)
    for name in ("levels", "major", "high_levels"):
        assert_array_equal(table(getattr(once, name)), table(getattr(stepped, name)))
    close = frame["close"].to_numpy()
    expected_below = [levels.nearest_level_below(price) for price in close]
    expected_above = [levels.nearest_level_above(price, major=True) for price in close]
    assert_array_equal(np.array(once.levels.level_below.array), expected_below)
    assert_array_equal(np.array(once.major.level_above.array), expected_above)
    high = frame["high"].to_numpy()
    expected_distance = [
        levels.distance_pct(price, levels.nearest_level_above(price)) for price in high
    ]
    assert_array_equal(np.array(once.high_levels.distance_above_pct.array), expected_distance)
    assert (np.array(once.levels.distance_below_pct.array) <= 0.0).all()
    assert (np.array(once.levels.distance_above_pct.array) >= 0.0).all()


prices = st.one_of(
    st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
    # around the spacing boundaries 100*sqrt(5)*10^k and 100*sqrt(50)*10^k, and on levels
    st.builds(
        lambda k, root, wiggle: 100.0 * math.sqrt(root) * 10.0**k * (1.0 + wiggle),
        st.integers(-4, 4),
        st.sampled_from([5.0, 50.0]),
        st.floats(-1e-12, 1e-12),
    ),
    st.builds(lambda n, k: n * 10.0**k, st.integers(1, 999), st.integers(-3, 5)),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(prices, min_size=1, max_size=40), st.booleans())
def test_vectorised_levels_equal_the_scalar_ones(values, major):
    computed = round_levels_array(np.array(values), major)
    expected = np.array([round_levels_at(value, major) for value in values])
    for column, name in enumerate(ROUND_LEVEL_LINES):
        assert_array_equal(computed[name], expected[:, column], err_msg=name)
