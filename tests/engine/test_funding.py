"""Funding at the real settlement times of the funding series, on mark-price notional."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest


def _hourly(start: str, hours: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=hours, freq="1h", tz="UTC", name="time")


def test_flat_price_cash_paid_is_fees_plus_funding_over_the_settlements_crossed(
    frame_factory, run_script
):
    # Hourly bars from 2025-10-01 00:00, flat at 50,000.  Settlements (irregular, with a 4 h
    # interval): 00:00 (before entry, not charged), 08:00, 16:00 (mark open 50,500), 20:00
    # (4 h later), 2025-10-02 00:00 and 04:00 (after exit, not charged).
    # Long 2 BTC: buy at bar 1 (order at bar 0 fills at 01:00), sell at bar 25 (fills 02:00 on
    # 2025-10-02) ... the 2025-10-02 00:00 settlement is crossed.
    #   08:00  2 × 50,000 × 0.0001   =  10.0
    #   16:00  2 × 50,500 × −0.00005 =  −5.05
    #   20:00  2 × 50,000 × 0.0003   =  30.0
    #   00:00  2 × 50,000 × 0.0002   =  20.0        Σ funding = 54.95
    # Taker fees 2 × 50,000 × 0.0005 = 50 on each side = 100.
    hours = 30
    index = _hourly("2025-10-01", hours)
    funding = {0: 0.0001, 8: 0.0001, 16: -0.00005, 20: 0.0003, 24: 0.0002, 28: 0.0004}
    mark_open = np.full(hours, np.nan)
    mark_open[16] = 50_500.0
    frame = frame_factory(
        [50_000.0] * hours, index=index, funding=funding, marks={"mark_open": mark_open}
    )
    script = {0: [("buy", {"size": 2.0})], 25: [("close", {})]}
    results = run_script(frame, script, cash=100_000.0, leverage=5.0, taker_fee=0.0005)
    expected_funding = 10.0 - 5.05 + 30.0 + 20.0
    assert results.equity["value"].iloc[-1] == pytest.approx(
        100_000.0 - 100.0 - expected_funding, rel=1e-12
    )
    table = results.funding
    assert list(table["time"]) == [index[8], index[16], index[20], index[24]]
    assert table["payment"].tolist() == pytest.approx([10.0, -5.05, 30.0, 20.0], rel=1e-12)
    assert table["mark_price"].tolist() == [50_000.0, 50_500.0, 50_000.0, 50_000.0]
    assert table["position_size"].tolist() == [2.0] * 4
    assert results.equity["funding_cum"].iloc[-1] == pytest.approx(expected_funding, rel=1e-12)
    trade = results.trades.iloc[0]
    assert trade["funding"] == pytest.approx(expected_funding, rel=1e-12)
    assert trade["pnl_net"] == pytest.approx(-100.0 - expected_funding, rel=1e-12)


def test_shorts_receive_positive_funding_and_pay_negative(frame_factory, run_script):
    # Short 1 at 40,000: rate +0.0002 at 02:00 → receives 8; rate −0.0001 at 03:00 → pays 4.
    hours = 6
    frame = frame_factory([40_000.0] * hours, funding={2: 0.0002, 3: -0.0001})
    results = run_script(frame, {0: [("sell", {"size": 1.0})]}, cash=10_000.0, leverage=5.0)
    assert results.funding["payment"].tolist() == pytest.approx([-8.0, 4.0], rel=1e-12)
    assert results.equity["value"].iloc[-1] == pytest.approx(10_000.0 + 8.0 - 4.0, rel=1e-12)


def test_settlement_on_the_entry_bar_is_not_charged_and_on_the_exit_bar_is(
    frame_factory, run_script
):
    # Settlements at bars 1 (entry fill bar) and 4 (exit fill bar): the settlement precedes
    # the fills at the bar's open, so only bar 4's is paid: 1 × 30,000 × 0.001 = 30.
    frame = frame_factory([30_000.0] * 6, funding={1: 0.001, 4: 0.001})
    script = {0: [("buy", {"size": 1.0})], 3: [("close", {})]}
    results = run_script(frame, script, cash=10_000.0, leverage=3.0)
    assert results.funding["time"].tolist() == [frame.index[4]]
    assert results.equity["value"].iloc[-1] == pytest.approx(10_000.0 - 30.0, rel=1e-12)


def test_funding_off_charges_nothing(frame_factory, run_script):
    frame = frame_factory([30_000.0] * 6, funding={2: 0.001, 4: 0.001})
    results = run_script(frame, {0: [("buy", {"size": 1.0})]}, cash=10_000.0, funding=False)
    assert results.funding.empty
    assert results.equity["value"].iloc[-1] == 10_000.0


def test_funding_uses_the_open_when_the_bar_has_no_mark_price(frame_factory, run_script):
    # The settlement bar opens at 31,000 (gap up from 30,000): notional 1 × 31,000 × 0.001 = 31.
    closes = [30_000.0, 30_000.0, 30_000.0, 31_000.0, 31_000.0]
    frame = frame_factory(closes, opens=closes, funding={3: 0.001})
    results = run_script(frame, {0: [("buy", {"size": 1.0})]}, cash=10_000.0, leverage=5.0)
    assert results.funding["payment"].tolist() == pytest.approx([31.0], rel=1e-12)
    assert not math.isnan(results.equity["funding_cum"].iloc[-1])


def test_each_trade_carries_only_the_funding_settled_while_it_was_open(frame_factory, run_script):
    # Trade 1: long 1 from bar 1 to bar 4 pays bars 2 and 3 (1 × 20,000 × 0.001 = 20 each);
    # bar 5's settlement falls while flat; trade 2: short 2 from bar 6 to bar 9 receives bar 8's
    # (2 × 20,000 × 0.0005 = 20) and pays bar 9's (exit bar, negative rate: 2 × 20,000 × 0.00025
    # = 10), so it was paid 10 in all: funding −10.
    frame = frame_factory(
        [20_000.0] * 12, funding={2: 0.001, 3: 0.001, 5: 0.002, 8: 0.0005, 9: -0.00025}
    )
    script = {
        0: [("buy", {"size": 1.0})],
        3: [("close", {})],
        5: [("sell", {"size": 2.0})],
        8: [("close", {})],
    }
    results = run_script(frame, script, cash=100_000.0, leverage=3.0)
    assert results.trades["funding"].tolist() == pytest.approx([40.0, -10.0], rel=1e-12)
