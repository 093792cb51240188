"""Hand-checked cases of the array simulator's reference twin, each also run on the event engine.

Every case is small enough to work out on paper (the numbers are in the comments); each one
also runs through ``backtest.engine.run`` with :class:`ReplayDecisions` and must give the same
tables (:func:`tests.arrays.twin_checks.assert_same`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.arrays.decisions import Decisions
from backtest.arrays.simulation import (
    REJECT_MARGIN_FILL,
    REJECT_MARGIN_SUBMISSION,
    REJECT_NOTIONAL_CAP,
    REJECT_TIER_LEVERAGE,
)
from tests.arrays.twin_checks import SMALL_TIERS, assert_same, config, make_frame, run_both

NAN = math.nan
# Binance, 10x, a long of 500 at 100 (margin 5,000): the bracket of the notional at the
# liquidation price is the first one (MMR 0.4 %, cum 0), so
# LP = (WB − Q·EP) / (Q·MMR − Q) = (5,000 − 50,000) / (2 − 500) = 45,000 / 498.
ISOLATED_LP = 45_000.0 / 498.0


def both(frame, target, reasons=("strategy",), reason=None, tiers=None, **fields):
    decisions = Decisions.from_target(target, reason, reasons)
    extra = {} if tiers is None else {"tiers": tiers}
    results, simulation = run_both(frame, decisions, config(**fields), **extra)
    assert_same(results, simulation, frame, decisions)
    return results, simulation


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_funding_is_settled_at_the_mark_open_else_the_open(side):
    # A position of 100 (±1 × 10,000 / 100) from bar 1.  Bar 3 settles 0.1 % at the open 100
    # (no mark candle): 10 paid by a long, received by a short; bar 4 settles 0.1 % at the
    # mark open 102: 10.2.
    frame = make_frame(
        [100.0] * 6,
        funding={0: 0.001, 3: 0.001, 4: 0.001},
        marks={"mark_open": [NAN, NAN, NAN, NAN, 102.0, NAN]},
    )
    _, simulation = both(frame, [side, NAN, NAN, NAN, NAN, NAN], leverage=2.0)
    # bar 0 has no position yet: no settlement there
    assert simulation.funding_bar.tolist() == [3, 4]
    np.testing.assert_allclose(simulation.funding_mark, [100.0, 102.0])
    np.testing.assert_allclose(simulation.funding_payment, [side * 10.0, side * 10.2])
    np.testing.assert_allclose(
        simulation.value,
        [10_000.0, 10_000.0, 10_000.0] + [10_000.0 - side * x for x in (10.0, 20.2, 20.2)],
    )
    np.testing.assert_allclose(simulation.funding_cum[-1], side * 20.2)


def test_a_gap_through_the_liquidation_price_fills_at_the_open_and_books_the_margin():
    # Long 500 at 100 at 10x (margin 5,000, LP = 90.3614).  Bar 2 opens at 85: the loss at
    # the open (15 × 500 = 7,500) exceeds the margin, so 5,000 is booked at the bankruptcy
    # price 100 − 5,000 / 500 = 90 and no clearance fee is left to charge.  The order sent
    # at bar 1 (target 0) is cancelled by the liquidation.
    frame = make_frame([100.0, 100.0, 96.0, 96.0], opens=[100.0, 100.0, 85.0, 96.0])
    results, simulation = both(frame, [5.0, 0.0, NAN, NAN], leverage=10.0)
    np.testing.assert_allclose(simulation.liquidation_price[1], ISOLATED_LP)
    assert simulation.liq_bar.tolist() == [2]
    assert simulation.liq_gap.tolist() == [True]
    np.testing.assert_allclose(simulation.liq_fill_price, [85.0])
    np.testing.assert_allclose(simulation.liq_booked_price, [90.0])
    np.testing.assert_allclose(simulation.liq_loss, [5_000.0])
    np.testing.assert_allclose(simulation.liq_fee, [0.0])
    np.testing.assert_allclose(simulation.value[2:], [5_000.0, 5_000.0])
    assert simulation.position_size[2] == 0.0
    # the market order of bar 1's close never fills: one buy, one liquidation
    assert simulation.fill_kind.tolist() == [0, 3]
    assert list(results.orders["reason"]) == ["strategy", "liquidation"]


@pytest.mark.parametrize(
    ("liquidation_fee", "fee"),
    [
        # 1.25 % of 500 × LP = 564.76 is capped at what the margin has left:
        # 5,000 − (100 − LP) × 500 = 180.72
        (None, 5_000.0 - (100.0 - ISOLATED_LP) * 500.0),
        # 0.1 % of 500 × LP = 45.18 fits in the margin left
        (0.001, 0.001 * 500.0 * ISOLATED_LP),
    ],
)
def test_a_range_liquidation_fills_at_the_liquidation_price_with_the_fee_capped(
    liquidation_fee, fee
):
    # Long 500 at 100 at 10x; bar 2 opens at 95 (above LP) and trades down to 90 (below).
    frame = make_frame(
        [100.0, 100.0, 96.0, 96.0],
        opens=[100.0, 100.0, 95.0, 96.0],
        lows=[100.0, 100.0, 90.0, 96.0],
    )
    fields = {} if liquidation_fee is None else {"liquidation_fee": liquidation_fee}
    _, simulation = both(frame, [5.0, NAN, NAN, NAN], leverage=10.0, **fields)
    assert simulation.liq_gap.tolist() == [False]
    np.testing.assert_allclose(simulation.liq_fill_price, [ISOLATED_LP])
    np.testing.assert_allclose(simulation.liq_booked_price, [ISOLATED_LP])
    np.testing.assert_allclose(simulation.liq_fee, [fee])
    price_loss = (100.0 - ISOLATED_LP) * 500.0
    np.testing.assert_allclose(simulation.liq_loss, [price_loss + fee])
    np.testing.assert_allclose(simulation.value[2], 10_000.0 - price_loss - fee)
    np.testing.assert_allclose(simulation.fees_cum[-1], fee)


def test_an_order_beyond_the_cash_is_refused_at_submission():
    # 3 × 10,000 at 2x needs 15,000 margin + 15 fee (0.05 % of 30,000) with 10,000 available;
    # refused on bar 1, at the close of bar 0 it was sent at.
    frame = make_frame([100.0] * 3)
    results, simulation = both(frame, [3.0, NAN, NAN], leverage=2.0, taker_fee=0.0005)
    assert simulation.reject_bar.tolist() == [1]
    assert simulation.reject_code.tolist() == [REJECT_MARGIN_SUBMISSION]
    np.testing.assert_allclose(simulation.reject_size, [300.0])
    np.testing.assert_allclose(simulation.reject_price, [100.0])
    np.testing.assert_allclose(simulation.reject_needed, [15_015.0])
    np.testing.assert_allclose(simulation.reject_available, [10_000.0])
    assert (
        results.rejected["reason"]
        .iloc[0]
        .startswith(
            "insufficient margin: 30,000.00 notional at 2x needs 15,015.00 (margin + fee), "
            "10,000.00 available"
        )
    )
    assert len(simulation.fill_bar) == 0
    np.testing.assert_allclose(simulation.value, [10_000.0] * 3)


def test_an_order_that_passes_submission_can_be_refused_at_the_fill():
    # 199 at the close 100 needs 9,950 at 2x (passes); bar 1 opens at 110: 199 × 110 / 2 =
    # 10,945 > 10,000, refused at the fill.
    frame = make_frame([100.0, 110.0, 110.0], opens=[100.0, 110.0, 110.0])
    _, simulation = both(frame, [1.99, NAN, NAN], leverage=2.0)
    assert simulation.reject_code.tolist() == [REJECT_MARGIN_FILL]
    np.testing.assert_allclose(simulation.reject_needed, [10_945.0])
    np.testing.assert_allclose(simulation.reject_notional, [21_890.0])
    assert simulation.position_size.tolist() == [0.0, 0.0, 0.0]


def test_the_tier_table_refuses_leverage_and_notional_beyond_its_brackets():
    # 1,000 cash at 15x.  Bar 0: 25 × 1,000 = 25,000 notional, whose bracket allows 10x;
    # bar 1: 200,000 notional, beyond the last cap (150,000).
    frame = make_frame([100.0] * 4)
    results, simulation = both(
        frame, [25.0, 200.0, NAN, NAN], tiers=SMALL_TIERS, cash=1_000.0, leverage=15.0
    )
    assert simulation.reject_code.tolist() == [REJECT_TIER_LEVERAGE, REJECT_NOTIONAL_CAP]
    assert simulation.reject_bar.tolist() == [1, 2]
    assert list(results.rejected["reason"]) == [
        "leverage 15 exceeds the 10x maximum for 25,000",
        "notional 200,000 exceeds the largest bracket (150,000)",
    ]


@pytest.mark.parametrize(
    ("slippage", "model", "buy", "sell"),
    [
        # fixed: 0.1 % against the order
        (0.001, "fixed", 100.0 * 1.001, 100.0 * 0.999),
        # volatility: 0.5 × (104 − 96) / 100 = 4 % against the order
        (0.5, "volatility", 104.0, 96.0),
    ],
)
def test_slippage_moves_market_fills_against_the_order(slippage, model, buy, sell):
    frame = make_frame(
        [100.0] * 4,
        highs=[100.0, 104.0, 104.0, 100.0],
        lows=[100.0, 96.0, 96.0, 100.0],
    )
    _, simulation = both(
        frame, [1.0, 0.0, NAN, NAN], leverage=2.0, slippage=slippage, slippage_model=model
    )
    np.testing.assert_allclose(simulation.fill_price, [buy, sell])
    assert simulation.fill_bar.tolist() == [1, 2]


def test_a_flip_from_long_to_short_closes_and_opens_in_one_order():
    # Bar 1: buy 100 at 100 (fee 5, margin 5,000 at 2x); bar 2 closes at 110: equity 10,995.
    # Target −1 sends −10,995 / 110 − 100 = −199.9545…, filled at 110 on bar 3: it closes 100
    # (PnL +1,000, fee 5.5) and opens −99.9545… (fee 5.4977…, margin 5,497.5).
    frame = make_frame([100.0, 100.0, 110.0, 110.0, 110.0])
    _, simulation = both(frame, [1.0, NAN, -1.0, NAN, NAN], leverage=2.0, taker_fee=0.0005)
    short = -10_995.0 / 110.0
    np.testing.assert_allclose(simulation.fill_size, [100.0, short - 100.0])
    np.testing.assert_allclose(simulation.fill_closed, [0.0, -100.0])
    np.testing.assert_allclose(simulation.fill_opened, [100.0, short])
    np.testing.assert_allclose(simulation.fill_pnl, [0.0, 1_000.0])
    np.testing.assert_allclose(simulation.fill_closed_fee, [0.0, 5.5])
    np.testing.assert_allclose(simulation.fill_opened_fee, [5.0, -short * 0.0005 * 110.0])
    np.testing.assert_allclose(simulation.margin_used[3], -short * 110.0 / 2.0)
    np.testing.assert_allclose(simulation.position_size[3], short)
    np.testing.assert_allclose(simulation.value[3], 10_995.0 - 5.5 + short * 0.0005 * 110.0)


def test_cross_margin_backs_the_position_with_the_wallet_and_funding_moves_it():
    # Cross, 10x, long 500 at 100: the wallet (10,000) backs it,
    # LP = (10,000 − 50,000) / (2 − 500) = 80.3213; the 0.02 % settlement of bar 2 pays 10 and
    # moves it to (9,990 − 50,000) / −498 = 80.3414.  Bar 3 trades down to 80: the loss is
    # capped at the wallet, so the account ends at 0.
    frame = make_frame(
        [100.0] * 5,
        lows=[100.0, 100.0, 100.0, 80.0, 100.0],
        funding={2: 0.0002},
    )
    _, simulation = both(frame, [5.0, NAN, NAN, NAN, NAN], leverage=10.0, margin_mode="cross")
    np.testing.assert_allclose(simulation.liquidation_price[1], 40_000.0 / 498.0)
    np.testing.assert_allclose(simulation.liquidation_price[2], 40_010.0 / 498.0)
    np.testing.assert_allclose(simulation.liq_price, [40_010.0 / 498.0])
    np.testing.assert_allclose(simulation.liq_loss, [9_990.0])
    np.testing.assert_allclose(simulation.value[3:], [0.0, 0.0], atol=1e-9)


def test_reasons_tag_the_orders_and_no_decision_sends_nothing():
    frame = make_frame([100.0, 101.0, 102.0, 103.0, 104.0])
    results, simulation = both(
        frame,
        [1.0, NAN, 2.0, -1.0, NAN],
        reasons=("strategy", "entry", "flip"),
        reason=[1, 0, 0, 2, 0],
        leverage=3.0,
    )
    # bar 2 doubles the long (untagged), bar 3 flips it (tagged "flip")
    assert list(results.orders["reason"]) == ["entry", "strategy", "flip"]
    assert simulation.fill_reason.tolist() == [1, 0, 2]


@pytest.mark.parametrize("engine", ["python", "cython"])
def test_funding_that_empties_a_cross_wallet_liquidates_instead_of_failing(engine):
    """A settlement that takes the cross wallet below zero: the account is bankrupt.

    Flat at 100, a 1x long worth the account, 4.7 % funding every bar: after 21 settlements
    the wallet is 13.13 (liquidation price 99.70, below the market), the 22nd takes it to
    -34.34.  The run used to stop with "wallet_balance must be ... >= 0"; now a wallet below
    zero counts as 0, the liquidation price (101.01) lies above the next open and the
    position is closed there, with nothing more lost (the loss cap is the account, 0).
    """
    bars = 30
    frame = make_frame([100.0] * bars, funding=dict.fromkeys(range(1, bars), 0.047))
    target = np.full(bars, np.nan)
    target[0] = 1.0
    decisions = Decisions.from_target(target)
    results, simulation = run_both(
        frame,
        decisions,
        config(cash=1_010.0, margin_mode="cross", leverage=1.0),
        SMALL_TIERS,
        engine=engine,
    )
    assert_same(results, simulation, frame, decisions)
    assert len(results.liquidations) == 1
    liquidation = results.liquidations.iloc[0]
    assert bool(liquidation["gap"]) and liquidation["loss"] == 0.0
    # the entry fills at bar 1's open, after bar 1's settlement: the 22nd one it pays is bar 23's
    assert liquidation["time"] == frame.index[23]
    assert len(results.funding) == 22
    assert results.equity["value"].iloc[-1] == pytest.approx(1_010.0 * (1.0 - 22 * 0.047))
