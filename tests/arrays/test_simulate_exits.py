"""Stop and take-profit levels of Decisions: hand-checked cases, twin against the event engine.

Each case runs the same decisions through ``backtest.engine.run`` (ReplayDecisions: backtrader
Stop and Limit orders linked OCO), the reference twin and the compiled kernel, and must give
the same tables (:func:`tests.arrays.twin_checks.assert_same`); the expected fills are worked out
in the comments.  Account: 10,000 cash, taker 0.05 %, maker 0.02 %; ``target = 1`` at a close
of 100 is a long of 100.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtest.arrays.account import account_for
from backtest.arrays.decisions import Decisions
from backtest.arrays.market import market_arrays
from backtest.arrays.run import run_arrays
from backtest.arrays.simulate import simulate
from backtest.arrays.simulation import FILL_LIQUIDATION, FILL_MARKET, FILL_STOP, FILL_TAKE_PROFIT
from backtest.engine import run
from backtest.errors import ConfigError
from backtest.strategy import Strategy
from tests.arrays.twin_checks import BTC_TIERS, assert_same, config, make_frame, run_both

NAN = math.nan
FEES = {"taker_fee": 0.0005, "maker_fee": 0.0002}


def candles(*bars: tuple[float, float, float, float]):
    """A frame from (open, high, low, close) tuples."""
    opens, highs, lows, closes = (list(column) for column in zip(*bars, strict=True))
    return make_frame(closes, opens=opens, highs=highs, lows=lows)


FLAT = (100.0, 100.5, 99.5, 100.0)


def both(frame, target, stop=None, take_profit=None, **fields):
    decisions = Decisions.from_target(target, stop=stop, take_profit=take_profit)
    settings = {**FEES, "leverage": 2.0, **fields}
    results, simulation = run_both(frame, decisions, config(**settings))
    assert_same(results, simulation, frame, decisions)
    # the compiled kernel too
    kernel = simulate(
        market_arrays(frame), decisions, account_for(config(**settings), BTC_TIERS), engine="cython"
    )
    assert_same(results, kernel, frame, decisions)
    return results, simulation


def nans(count: int, **levels: float) -> list[float]:
    """NaN everywhere except ``b<bar>=value``."""
    values = [NAN] * count
    for key, value in levels.items():
        values[int(key[1:])] = value
    return values


def test_stop_is_hit_inside_the_bar():
    # Long 100 at bar 1's open 100; the stop of bar 0 works from bar 2 (placed at bar 1's
    # close once the entry filled).  Bar 2's low 94 reaches 95: sold at 95, taker fee
    # 100 × 95 × 0.0005 = 4.75.
    frame = candles(FLAT, FLAT, (100.0, 100.0, 94.0, 96.0), (96.0,) * 4)
    results, simulation = both(frame, nans(4, b0=1.0), stop=nans(4, b0=95.0))
    assert simulation.fill_kind.tolist() == [FILL_MARKET, FILL_STOP]
    assert simulation.fill_bar.tolist() == [1, 2]
    np.testing.assert_allclose(simulation.fill_price, [100.0, 95.0])
    np.testing.assert_allclose(simulation.fill_fee, [5.0, 4.75])
    assert list(results.orders["reason"]) == ["strategy", "stop"]
    assert list(results.trades["exit_reason"]) == ["stop"]
    assert simulation.final_value == pytest.approx(10_000.0 - 500.0 - 5.0 - 4.75, rel=1e-12)


def test_take_profit_is_hit_at_the_level_with_the_maker_fee():
    # Bar 2's high 111 reaches 110: sold at 110, maker fee 100 × 110 × 0.0002 = 2.2.
    frame = candles(FLAT, FLAT, (100.0, 111.0, 100.0, 108.0), (108.0,) * 4)
    results, simulation = both(
        frame, nans(4, b0=1.0), stop=nans(4, b0=95.0), take_profit=nans(4, b0=110.0)
    )
    assert simulation.fill_kind.tolist() == [FILL_MARKET, FILL_TAKE_PROFIT]
    np.testing.assert_allclose(simulation.fill_price, [100.0, 110.0])
    np.testing.assert_allclose(simulation.fill_fee, [5.0, 2.2])
    assert list(results.orders["reason"]) == ["strategy", "take-profit"]
    assert simulation.final_value == pytest.approx(10_000.0 + 1_000.0 - 5.0 - 2.2, rel=1e-12)


@pytest.mark.parametrize("slippage", [0.0, 0.001])
def test_a_gap_through_the_stop_fills_at_the_open_with_slippage(slippage):
    # Bar 2 opens at 90, below the stop 95: sold at the open 90 (× (1 − slippage)).
    frame = candles(FLAT, FLAT, (90.0, 91.0, 89.0, 90.0), (90.0,) * 4)
    _, simulation = both(frame, nans(4, b0=1.0), stop=nans(4, b0=95.0), slippage=slippage)
    assert simulation.fill_kind.tolist() == [FILL_MARKET, FILL_STOP]
    expected = 90.0 * (1.0 - slippage)
    np.testing.assert_allclose(simulation.fill_price, [100.0 * (1.0 + slippage), expected])


def test_a_take_profit_gapped_through_fills_at_the_better_open():
    # Short 100 (target −1); take-profit 95 (a buy limit).  Bar 2 opens at 93: bought at 93.
    frame = candles(FLAT, FLAT, (93.0, 94.0, 92.0, 93.0), (93.0,) * 4)
    _, simulation = both(
        frame, nans(4, b0=-1.0), stop=nans(4, b0=105.0), take_profit=nans(4, b0=95.0)
    )
    assert simulation.fill_kind.tolist() == [FILL_MARKET, FILL_TAKE_PROFIT]
    np.testing.assert_allclose(simulation.fill_size, [-100.0, 100.0])
    np.testing.assert_allclose(simulation.fill_price, [100.0, 93.0])


def test_when_one_bar_reaches_both_the_stop_fills():
    # Bar 2 reaches 111 and 94: the stop (checked first, as the event engine does) sells at
    # 95 and cancels the take-profit — even though the bar opened above it at 112.
    frame = candles(FLAT, FLAT, (112.0, 112.0, 94.0, 100.0), FLAT)
    _, simulation = both(
        frame, nans(4, b0=1.0), stop=nans(4, b0=95.0), take_profit=nans(4, b0=110.0)
    )
    assert simulation.fill_kind.tolist() == [FILL_MARKET, FILL_STOP]
    np.testing.assert_allclose(simulation.fill_price, [100.0, 95.0])
    assert simulation.position_size.tolist() == [0.0, 100.0, 0.0, 0.0]


def test_the_entry_bar_is_not_covered_and_levels_for_a_held_position_work_next_bar():
    # Levels with the entry order work from bar 2: bar 1 (the entry's bar) falls to 90
    # without an exit; bar 2 opens at 93, through the stop: sold at 93.  Then a new long at
    # bar 3 (no levels), levels given on bar 4 with no order: they work from bar 5, whose
    # high 106 reaches the take-profit 105.
    frame = candles(
        (100.0, 100.0, 100.0, 100.0),
        (100.0, 100.0, 90.0, 94.0),
        (93.0, 94.0, 92.0, 93.0),
        (93.0, 100.0, 93.0, 100.0),
        (100.0, 100.5, 99.5, 100.0),
        (100.0, 106.0, 99.0, 104.0),
        (104.0,) * 4,
    )
    target = nans(7, b0=1.0, b3=1.0)
    _, simulation = both(
        frame, target, stop=nans(7, b0=95.0, b4=90.0), take_profit=nans(7, b4=105.0)
    )
    assert simulation.fill_kind.tolist() == [FILL_MARKET, FILL_STOP, FILL_MARKET, FILL_TAKE_PROFIT]
    assert simulation.fill_bar.tolist() == [1, 2, 4, 5]
    np.testing.assert_allclose(simulation.fill_price[[1, 3]], [93.0, 105.0])


def test_new_levels_replace_both_old_ones():
    # Stop 95 and take-profit 110 from bar 0; bar 2 gives only a stop of 90 (NaN take-profit:
    # none).  Bar 3 reaches 94 and 111: neither old exit fills; bar 4's low 89 sells at 90.
    frame = candles(FLAT, FLAT, FLAT, (100.0, 111.0, 94.0, 100.0), (100.0, 100.0, 89.0, 92.0))
    _, simulation = both(
        frame,
        nans(5, b0=1.0),
        stop=nans(5, b0=95.0, b2=90.0),
        take_profit=nans(5, b0=110.0),
    )
    assert simulation.fill_kind.tolist() == [FILL_MARKET, FILL_STOP]
    assert simulation.fill_bar.tolist() == [1, 4]
    np.testing.assert_allclose(simulation.fill_price, [100.0, 90.0])


@pytest.mark.parametrize("later", [0.0, 0.5])
def test_an_order_cancels_the_levels(later):
    # Bar 2 sends target 0 (closed at bar 3's open) or 0.5 (sold down to 50 at bar 3's open):
    # the stop 95 is cancelled at bar 2's close, so bar 3's low 90 fills nothing more.  The
    # equity at bar 2's close is 10,000 − 5 (entry fee): 0.5 is a long of 49.975.
    frame = candles(FLAT, FLAT, FLAT, (100.0, 100.0, 90.0, 92.0), (92.0,) * 4)
    _, simulation = both(frame, nans(5, b0=1.0, b2=later), stop=nans(5, b0=95.0))
    assert simulation.fill_kind.tolist() == [FILL_MARKET, FILL_MARKET]
    assert simulation.position_size[-1] == pytest.approx(later * 99.95, rel=1e-12)


@pytest.mark.parametrize("gap", [False, True])
def test_a_liquidation_cancels_the_levels(gap):
    # 20x long of 100 at 100 (margin 500): liquidation price about 95.2.  The stop 90 lies
    # beyond it; bar 2 liquidates the long (range or gap), and the stop is cancelled with it:
    # bar 3's fall to 85 does not fill it as a new short.
    bar2 = (94.0, 95.0, 93.0, 94.0) if gap else (100.0, 100.0, 94.0, 96.0)
    frame = candles(FLAT, FLAT, bar2, (94.0, 94.0, 85.0, 86.0), (86.0,) * 4)
    results, simulation = both(
        frame, nans(5, b0=1.0), stop=nans(5, b0=90.0), take_profit=nans(5, b0=120.0), leverage=20.0
    )
    assert simulation.fill_kind.tolist() == [FILL_MARKET, FILL_LIQUIDATION]
    assert simulation.liq_gap.tolist() == [gap]
    assert simulation.position_size[-1] == 0.0
    assert list(results.orders["reason"]) == ["strategy", "liquidation"]


def test_a_refused_flip_keeps_no_levels_for_the_other_side():
    # Long 100; bar 2 asks for −3 at 2x (a 300 short needs 15,000 margin): refused at bar 3.
    # Its stop 105 (for the short) is not placed on the long: bar 4's high 106 fills nothing.
    frame = candles(FLAT, FLAT, FLAT, FLAT, (100.0, 106.0, 99.0, 104.0), (104.0,) * 4)
    _, simulation = both(frame, nans(6, b0=1.0, b2=-3.0), stop=nans(6, b2=105.0))
    assert simulation.fill_kind.tolist() == [FILL_MARKET]
    assert simulation.reject_bar.tolist() == [3]
    assert simulation.position_size[-1] == 100.0


def test_levels_on_a_flat_account_or_a_flat_target_place_nothing():
    frame = candles(FLAT, FLAT, (100.0, 120.0, 80.0, 100.0), FLAT)
    _, simulation = both(
        frame, nans(4, b1=0.0), stop=nans(4, b0=95.0, b1=95.0), take_profit=nans(4, b1=105.0)
    )
    assert simulation.fill_bar.shape == (0,)


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ({"stop": [95.0, NAN]}, "stop has 2 values for 3 bars"),
        ({"stop": [95.0, -1.0, NAN]}, r"stop\[1\] is -1.0"),
        ({"take_profit": [math.inf, NAN, NAN]}, r"take_profit\[0\] is inf"),
        ({"take_profit": [[1.0]]}, "take_profit must be one-dimensional"),
        ({"stop": ["x", 1.0, 2.0]}, "stop must be numbers"),
    ],
)
def test_bad_levels_are_refused_in_one_line(levels, message):
    with pytest.raises(ConfigError, match=message):
        Decisions.from_target([1.0, NAN, NAN], **levels).check(3)


class _BracketedLongs(Strategy):
    """Array-only: long at bars 0 and 4 with a stop 1 % and a take-profit 1 % from the close."""

    uses_clusters = False

    @classmethod
    def decide(cls, bars, params):
        count = len(bars)
        target = np.full(count, np.nan)
        target[[0, 4]] = 1.0
        stop = np.where(np.isfinite(target), bars.close * 0.99, np.nan)
        take_profit = np.where(np.isfinite(target), bars.close * 1.01, np.nan)
        return Decisions.from_target(target, stop=stop, take_profit=take_profit)


def test_an_array_only_plugin_with_levels_runs_the_same_on_both_engines():
    # Bar 0's entry fills at bar 1, its exits (99, 101) work from bar 2, whose high 101.5 takes
    # the profit; bar 4's entry fills at bar 5, and bar 6's low 98 stops it out at 99.
    frame = candles(
        FLAT, FLAT, (100.0, 101.5, 99.5, 101.0), FLAT, FLAT, FLAT, (100.0, 100.0, 98.0, 98.5)
    )
    run_config = config(strategy="BracketedLongs", **FEES, leverage=2.0)
    event = run(run_config, data=frame, strategy_class=_BracketedLongs, tiers=BTC_TIERS)
    arrays = run_arrays(
        run_config, data=frame, strategy_class=_BracketedLongs, tiers=BTC_TIERS, simulator="python"
    )
    for name in ("orders", "trades", "equity"):
        pd.testing.assert_frame_equal(
            getattr(arrays, name), getattr(event, name), check_exact=False, rtol=1e-9
        )
    assert list(event.orders["reason"]) == ["strategy", "take-profit", "strategy", "stop"]


def test_a_reduce_from_an_underwater_account_is_accepted():
    # Long 19 at 100 on 1,000 at 2x (margin 950, cash 50); the close 92 leaves cash
    # 50 − 152 = −102.  Target 1.88 of the equity 848 is 17.33: selling 1.67 releases only
    # 83.5 of margin, so the cash stays negative — still accepted (a reduce needs no margin).
    frame = make_frame([100.0, 100.0, 92.0, 92.0, 92.0])
    results, simulation = both(
        frame, [1.9, NAN, 1.88, NAN, NAN], cash=1_000.0, taker_fee=0.0, maker_fee=0.0
    )
    assert results.rejected.empty
    assert simulation.fill_bar.tolist() == [1, 3]
    assert simulation.position_size[-1] == pytest.approx(848.0 * 1.88 / 92.0, rel=1e-12)
