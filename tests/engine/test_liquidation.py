"""Liquidation of the strategy's own positions: gaps, spikes, fees, caps, mark prices.

Tiers: Binance BTCUSDT first bracket, maintenance margin rate 0.4 %, cum 0 (notional < 50,000).
Isolated Binance formula with the position's margin as wallet balance WB:
    long:  LP = (WB − Q·EP) / (Q·MMR − Q)       short: LP = (WB + Q·EP) / (Q·MMR + Q)
"""

from __future__ import annotations

import math

import backtrader as bt
import pytest

# 10 BTC-units at 100 with 10x leverage: notional 1,000, margin 100.
#   long  LP = (100 − 1000) / (0.04 − 10) = 900 / 9.96  = 90.36144578...
#   short LP = (100 + 1000) / (0.04 + 10) = 1100 / 10.04 = 109.56175298...
LONG_LP = 900.0 / 9.96
SHORT_LP = 1100.0 / 10.04
BUY_10 = {0: [("buy", {"size": 10.0})]}
SELL_10 = {0: [("sell", {"size": 10.0})]}


def test_long_10x_through_a_12pct_gap_is_liquidated_once_with_loss_capped_at_margin(
    frame_factory, run_script
):
    # bar 1 fills the buy at 100; bar 3 opens at 88 (−12 %), beyond LP 90.36: a gap.
    # Price loss at the open = 10 × 12 = 120 > margin 100 → loss capped at 100, no fee left,
    # booked at the bankruptcy price 100 − 100/10 = 90.  Opening taker fee 10×100×0.0005 = 0.5.
    closes = [100, 100, 100, 88, 88, 87, 88]
    frame = frame_factory(closes, opens=closes)
    results = run_script(frame, BUY_10, cash=10_000.0, leverage=10.0, taker_fee=0.0005)
    liquidations = results.liquidations
    assert len(liquidations) == 1
    row = liquidations.iloc[0]
    assert row["side"] == "long" and row["size"] == 10.0 and bool(row["gap"])
    assert row["liquidation_price"] == pytest.approx(LONG_LP, rel=1e-12)
    assert row["fill_price"] == 88.0
    assert row["loss"] == pytest.approx(100.0, rel=1e-12)
    assert row["fee"] == 0.0
    assert row["time"] == frame.index[3]
    assert results.equity["value"].iloc[-1] == pytest.approx(10_000.0 - 0.5 - 100.0, rel=1e-12)
    assert results.equity["position_size"].iloc[3:].eq(0.0).all()
    orders = results.orders
    assert list(orders["reason"]) == ["strategy", "liquidation"]
    assert orders["price"].iloc[1] == pytest.approx(90.0, rel=1e-12)
    trade = results.trades.iloc[0]
    assert bool(trade["liquidated"]) and trade["pnl_gross"] == pytest.approx(-100.0, rel=1e-12)
    assert trade["pnl_net"] == pytest.approx(-100.5, rel=1e-12)


def test_short_10x_through_a_12pct_gap_up_is_liquidated_once_with_loss_capped(
    frame_factory, run_script
):
    # Short 10 at 100, 10x: LP 109.56.  Bar 3 opens at 112 (+12 %): loss 120 capped at 100.
    closes = [100, 100, 100, 112, 113, 112]
    frame = frame_factory(closes, opens=closes)
    results = run_script(frame, SELL_10, cash=10_000.0, leverage=10.0)
    assert len(results.liquidations) == 1
    row = results.liquidations.iloc[0]
    assert row["side"] == "short" and bool(row["gap"])
    assert row["liquidation_price"] == pytest.approx(SHORT_LP, rel=1e-12)
    assert row["fill_price"] == 112.0
    assert row["loss"] == pytest.approx(100.0, rel=1e-12)
    assert results.equity["value"].iloc[-1] == pytest.approx(9_900.0, rel=1e-12)


def test_short_through_an_intrabar_spike_closes_at_the_liquidation_price_and_pays_the_fee(
    frame_factory, run_script
):
    # Bar 3 opens at 100 and spikes to 112 (+12 %) before closing at 101: not a gap, so the
    # position closes at LP = 109.5617530.  Price loss = 10 × 9.5617530 = 95.617530; with a
    # 0.1 % clearance fee: 10 × 109.5617530 × 0.001 = 1.0956175, under the 4.38247 left.
    closes = [100, 100, 100, 101, 101]
    highs = [100, 100, 100, 112, 101]
    frame = frame_factory(closes, opens=[100, 100, 100, 100, 101], highs=highs)
    results = run_script(frame, SELL_10, cash=10_000.0, leverage=10.0, liquidation_fee=0.001)
    row = results.liquidations.iloc[0]
    price_loss = 10.0 * (SHORT_LP - 100.0)
    fee = 10.0 * SHORT_LP * 0.001
    assert not bool(row["gap"])
    assert row["fill_price"] == pytest.approx(SHORT_LP, rel=1e-12)
    assert row["fee"] == pytest.approx(fee, rel=1e-12)
    assert row["loss"] == pytest.approx(price_loss + fee, rel=1e-12)
    assert row["loss"] < 100.0
    assert results.equity["value"].iloc[-1] == pytest.approx(10_000.0 - price_loss - fee)
    assert results.equity["fees_cum"].iloc[-1] == pytest.approx(fee, rel=1e-12)


def test_binance_clearance_fee_is_capped_by_the_remaining_margin(frame_factory, run_script):
    # Default Binance rate 1.25 %: nominal fee 10 × 109.5617530 × 0.0125 = 13.695 exceeds the
    # 100 − 95.617530 = 4.382470 of margin left, so the fee charged is 4.382470 and the loss
    # equals the margin.
    closes = [100, 100, 100, 101, 101]
    frame = frame_factory(closes, opens=[100, 100, 100, 100, 101], highs=[100, 100, 100, 112, 101])
    results = run_script(frame, SELL_10, cash=10_000.0, leverage=10.0)
    row = results.liquidations.iloc[0]
    assert row["fee"] == pytest.approx(100.0 - 10.0 * (SHORT_LP - 100.0), rel=1e-9)
    assert row["loss"] == pytest.approx(100.0, rel=1e-12)


def test_one_x_long_is_never_liquidated(frame_factory, run_script):
    # 1x long: LP = (1000 − 1000) / (0.04 − 10) = 0, unreachable; a 99 % crash with a gap
    # only loses money.
    closes = [100, 100, 60, 20, 1, 1]
    frame = frame_factory(closes, opens=[100, 100, 40, 20, 1, 1], lows=[100, 100, 30, 10, 1, 1])
    results = run_script(frame, BUY_10, cash=10_000.0, leverage=1.0)
    assert results.liquidations.empty
    assert results.equity["liquidation_price"].iloc[1] == 0.0
    assert results.equity["position_size"].iloc[-1] == 10.0
    assert results.equity["value"].iloc[-1] == pytest.approx(10_000.0 - 10.0 * 99.0)


def test_mark_price_low_triggers_liquidation_when_traded_low_does_not(frame_factory, run_script):
    # Traded low 91 stays above LP 90.36 but the mark low 90.2 crosses it: liquidated at LP.
    closes = [100, 100, 100, 95, 95]
    lows = [100, 100, 100, 91, 95]
    mark_low = [math.nan, math.nan, math.nan, 90.2, math.nan]
    frame = frame_factory(
        closes, opens=[*closes[:3], 100, 95], lows=lows, marks={"mark_low": mark_low}
    )
    results = run_script(frame, BUY_10, cash=10_000.0, leverage=10.0)
    assert len(results.liquidations) == 1
    assert results.liquidations["fill_price"].iloc[0] == pytest.approx(LONG_LP, rel=1e-12)


def test_traded_low_is_ignored_when_the_bar_has_a_mark_low(frame_factory, run_script):
    # Traded low 89 wicks below LP 90.36 but the mark low 92 does not: no liquidation.
    closes = [100, 100, 100, 95, 95]
    lows = [100, 100, 100, 89, 95]
    mark_low = [math.nan, math.nan, math.nan, 92.0, math.nan]
    frame = frame_factory(
        closes, opens=[*closes[:3], 100, 95], lows=lows, marks={"mark_low": mark_low}
    )
    results = run_script(frame, BUY_10, cash=10_000.0, leverage=10.0)
    assert results.liquidations.empty


def test_liquidation_cancels_the_working_orders_of_that_market(frame_factory, run_script):
    # A take-profit sell limit at 120 is pending when the gap liquidates the long; it must not
    # survive to open a short later when price reaches 120.
    closes = [100, 100, 100, 88, 120, 125]
    frame = frame_factory(closes, opens=closes)
    script = {
        0: [("buy", {"size": 10.0})],
        1: [("sell", {"size": 10.0, "price": 120.0, "exectype": bt.Order.Limit})],
    }
    results = run_script(frame, script, cash=10_000.0, leverage=10.0)
    assert len(results.liquidations) == 1
    assert results.equity["position_size"].iloc[-1] == 0.0
    assert list(results.orders["reason"]) == ["strategy", "liquidation"]


def test_cross_margin_uses_the_whole_wallet(frame_factory, run_script):
    # Cross, one position: WB is the wallet (10,000), so LP = (10000 − 1000)/(0.04 − 10) < 0:
    # the −12 % gap that liquidates the isolated position leaves the cross position open.
    closes = [100, 100, 100, 88, 88]
    frame = frame_factory(closes, opens=closes)
    results = run_script(frame, BUY_10, cash=10_000.0, leverage=10.0, margin_mode="cross")
    assert results.liquidations.empty
    assert results.equity["liquidation_price"].iloc[2] == 0.0


def test_cross_margin_liquidation_price_follows_the_wallet(frame_factory, run_script):
    # Cross with cash 150: WB = 150, long 10 at 100 at 10x.
    #   LP = (150 − 1000) / (0.04 − 10) = 850 / 9.96 = 85.3413654...
    closes = [100, 100, 100, 100, 84]
    frame = frame_factory(closes, opens=closes)
    results = run_script(frame, BUY_10, cash=150.0, leverage=10.0, margin_mode="cross")
    assert results.equity["liquidation_price"].iloc[2] == pytest.approx(850.0 / 9.96, rel=1e-12)
    row = results.liquidations.iloc[0]
    # Gap to 84: loss at the open 160 is capped at the account's equity 150.
    assert row["loss"] == pytest.approx(150.0, rel=1e-12)
    assert results.equity["value"].iloc[-1] == pytest.approx(0.0, abs=1e-9)


def test_near_misses_report_bars_within_the_threshold(frame_factory, run_script):
    # Long LP 90.3614.  Bar 3's low 91 is (91 − 90.3614)/91 = 0.7018 % away (< 1 %), bar 4's
    # low 92 is 1.781 % away (not a near miss).
    closes = [100, 100, 100, 95, 95]
    frame = frame_factory(closes, opens=[100, 100, 100, 100, 95], lows=[100, 100, 100, 91, 92])
    results = run_script(frame, BUY_10, cash=10_000.0, leverage=10.0, near_miss_pct=1.0)
    misses = results.near_misses
    assert len(misses) == 1
    assert misses["time"].iloc[0] == frame.index[3]
    assert misses["distance_pct"].iloc[0] == pytest.approx((91 - LONG_LP) / 91 * 100, rel=1e-12)
    assert list(misses.columns) == ["time", "side", "price", "liquidation_price", "distance_pct"]
