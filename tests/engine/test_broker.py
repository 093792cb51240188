"""Margin, leverage, fees and fills of the perpetual broker; parity with stock backtrader."""

from __future__ import annotations

import math
from pathlib import Path

import backtrader as bt
import pandas as pd
import pytest

from backtest.engine import (
    PerpData,
    PerpetualBroker,
    PerpetualCommission,
    RunConfig,
    build_cerebro,
)
from backtest.errors import ConfigError, PluginError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "binanceusdm"


def test_order_leverage_is_applied_once(frame_factory, run_script):
    # Run leverage 2, the order asks for 5: margin = 10 × 100 / 5 = 200 (not /2, not /10).
    frame = frame_factory([100.0] * 4)
    script = {0: [("buy", {"size": 10.0, "leverage": 5})]}
    results = run_script(frame, script, cash=1_000.0, leverage=2.0)
    equity = results.equity
    assert equity["margin_used"].iloc[-1] == pytest.approx(200.0, rel=1e-12)
    assert equity["cash"].iloc[-1] == pytest.approx(800.0, rel=1e-12)
    assert equity["value"].iloc[-1] == pytest.approx(1_000.0, rel=1e-12)
    assert equity["effective_leverage"].iloc[-1] == pytest.approx(1.0, rel=1e-12)


def test_run_leverage_applies_when_the_order_gives_none(frame_factory, run_script):
    frame = frame_factory([100.0] * 4)
    results = run_script(frame, {0: [("buy", {"size": 10.0})]}, cash=1_000.0, leverage=4.0)
    assert results.equity["margin_used"].iloc[-1] == pytest.approx(250.0, rel=1e-12)


def test_adding_with_another_leverage_remargins_the_whole_position(frame_factory, run_cerebro):
    # 10 at 100 with 5x (margin 200), then 10 more at 100 with 10x: the position (2,000
    # notional) is re-margined at 10x = 200 in total, so 200 − 200 + 100 = 100 net posted.
    frame = frame_factory([100.0] * 5)
    script = {
        0: [("buy", {"size": 10.0, "leverage": 5})],
        1: [("buy", {"size": 10.0, "leverage": 10})],
    }
    strategy, broker = run_cerebro(frame, script, cash=1_000.0)
    data = strategy.datas[0]
    assert broker.position_margin(data) == pytest.approx(200.0, rel=1e-12)
    assert broker.position_leverage(data) == 10.0
    assert broker.getcash() == pytest.approx(800.0, rel=1e-12)


def test_fractional_sizes_are_kept(frame_factory, run_script):
    frame = frame_factory([100.0] * 4)
    results = run_script(frame, {0: [("buy", {"size": 0.0123})]}, cash=1_000.0)
    assert results.orders["size"].tolist() == [0.0123]
    assert results.equity["position_size"].iloc[-1] == 0.0123


def test_limit_fills_pay_maker_and_market_fills_pay_taker(frame_factory, run_script):
    # Limit buy 10 at 99 fills on bar 2 (low 98): maker 10 × 99 × 0.0002 = 0.198.
    # Market sell at bar 4's open 101: taker 10 × 101 × 0.0005 = 0.505.
    closes = [100.0, 100.0, 99.5, 101.0, 101.0, 101.0]
    frame = frame_factory(closes, lows=[100.0, 100.0, 98.0, 99.5, 101.0, 101.0])
    script = {
        0: [("buy", {"size": 10.0, "price": 99.0, "exectype": bt.Order.Limit})],
        3: [("close", {})],
    }
    results = run_script(frame, script, cash=1_000.0, maker_fee=0.0002, taker_fee=0.0005)
    assert results.orders["fee"].tolist() == pytest.approx([0.198, 0.505], rel=1e-12)
    assert results.orders["price"].tolist() == [99.0, 101.0]
    trade = results.trades.iloc[0]
    assert trade["pnl_gross"] == pytest.approx(20.0, rel=1e-12)
    assert trade["fees"] == pytest.approx(0.703, rel=1e-12)
    assert results.equity["value"].iloc[-1] == pytest.approx(1_000.0 + 20.0 - 0.703, rel=1e-12)


def test_an_order_the_margin_cannot_cover_is_refused(frame_factory, run_cerebro):
    # Margin of 10 × 100 at 5x is 200 > cash 150: status Margin, nothing opened.
    frame = frame_factory([100.0] * 4)
    script = {0: [("buy", {"size": 10.0})]}
    strategy, broker = run_cerebro(frame, script, cash=150.0, leverage=5.0)
    statuses = [order.getstatusname() for order in strategy.notified]
    assert statuses[-1] == "Margin"
    assert broker.getposition(strategy.datas[0]).size == 0
    assert broker.getvalue() == 150.0


def test_leverage_above_the_tier_maximum_is_refused(frame_factory, run_cerebro):
    # The first BTC bracket (notional < 50,000) allows 125x at most.
    frame = frame_factory([100.0] * 4)
    script = {0: [("buy", {"size": 10.0, "leverage": 150})]}
    strategy, broker = run_cerebro(frame, script, cash=1_000.0)
    refused = strategy.notified[-1]
    assert refused.getstatusname() == "Margin"
    assert "125" in refused.info["reject_reason"]
    assert broker.getposition(strategy.datas[0]).size == 0


def test_invalid_order_leverage_is_a_config_error(frame_factory, run_script):
    frame = frame_factory([100.0] * 4)
    with pytest.raises(PluginError, match="leverage=-3") as caught:
        run_script(frame, {0: [("buy", {"size": 1.0, "leverage": -3})]}, cash=1_000.0)
    assert isinstance(caught.value.__cause__, ConfigError)


def test_partial_close_releases_margin_pro_rata(frame_factory, run_script):
    # Long 10 at 100, 10x (margin 100).  Sell 4 at 110: releases 40 of margin, realises
    # 4 × 10 = 40.  Remaining 6 units: margin 60, LP = (60 − 600)/(6 × 0.004 − 6) = 90.3614.
    closes = [100.0, 100.0, 110.0, 110.0, 110.0]
    frame = frame_factory(closes, opens=[100.0, 100.0, 110.0, 110.0, 110.0])
    script = {0: [("buy", {"size": 10.0})], 1: [("sell", {"size": 4.0})]}
    results = run_script(frame, script, cash=1_000.0, leverage=10.0)
    last = results.equity.iloc[-1]
    assert last["position_size"] == 6.0
    assert last["margin_used"] == pytest.approx(60.0, rel=1e-12)
    assert last["liquidation_price"] == pytest.approx(540.0 / 5.976, rel=1e-12)
    assert last["value"] == pytest.approx(1_000.0 + 100.0, rel=1e-12)  # 40 realised + 60 open


def test_reversal_closes_then_opens_at_the_new_leverage(frame_factory, run_script):
    # Long 10 at 100 (10x), sell 20 at 110 with leverage 5: closes 10 (+100), opens a 10 short
    # at 110 with margin 10 × 110 / 5 = 220.
    closes = [100.0, 100.0, 110.0, 110.0]
    frame = frame_factory(closes, opens=closes)
    script = {0: [("buy", {"size": 10.0})], 1: [("sell", {"size": 20.0, "leverage": 5})]}
    results = run_script(frame, script, cash=1_000.0, leverage=10.0)
    last = results.equity.iloc[-1]
    assert last["position_size"] == -10.0
    assert last["margin_used"] == pytest.approx(220.0, rel=1e-12)
    assert last["value"] == pytest.approx(1_100.0, rel=1e-12)
    trades = results.trades
    assert len(trades) == 1 and trades["side"].iloc[0] == "long"
    assert trades["pnl_gross"].iloc[0] == pytest.approx(100.0, rel=1e-12)


def test_value_is_wallet_plus_unrealised_pnl_every_bar(frame_factory, run_script):
    # Long 5 at 100 (3x).  Each bar: value = 1,000 + 5 × (close − 100) and cash = value − margin.
    closes = [100.0, 100.0, 104.0, 97.0, 102.5]
    frame = frame_factory(closes, opens=[100.0, 100.0, 101.0, 98.0, 99.0])
    results = run_script(frame, {0: [("buy", {"size": 5.0})]}, cash=1_000.0, leverage=3.0)
    equity = results.equity
    expected = [1_000.0, 1_000.0, 1_020.0, 985.0, 1_012.5]
    assert equity["value"].tolist() == pytest.approx(expected, rel=1e-12)
    margin = 5 * 100.0 / 3.0
    assert (equity["cash"].iloc[1:] + margin).tolist() == pytest.approx(expected[1:], rel=1e-12)
    assert equity["position_notional"].tolist() == pytest.approx(
        [0.0] + [5 * c for c in closes[1:]]
    )


def test_broker_refuses_stock_commission_schemes():
    broker = PerpetualBroker()
    with pytest.raises(ConfigError, match="PerpetualCommission"):
        broker.setcommission(commission=0.001, margin=2000.0)
    broker.addcommissioninfo(bt.CommInfoBase(commission=0.001), name="x")
    broker.p.liquidation_price_function = lambda *args, **kwargs: 0.0
    with pytest.raises(ConfigError, match="PerpetualCommission"):
        broker.start()


def test_broker_rejects_unknown_margin_mode_and_venue():
    with pytest.raises(ConfigError, match="margin mode"):
        PerpetualBroker(margin_mode="portfolio")
    with pytest.raises(ConfigError, match="venue"):
        PerpetualBroker(venue="ftx")


def test_default_commission_is_perpetual():
    broker = PerpetualBroker()
    assert isinstance(broker.getcommissioninfo(type("D", (), {"_name": ""})()), PerpetualCommission)


class _SmaCross(bt.Strategy):
    """SMA(10/30) crossover, always in the market with 0.1 BTC."""

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=10), bt.ind.SMA(period=30))
        self.closed = []
        self.fills = []

    def next(self):
        if self.cross[0] > 0:
            if self.position:
                self.close()
            self.buy(size=0.1)
        elif self.cross[0] < 0:
            if self.position:
                self.close()
            self.sell(size=0.1)

    def notify_order(self, order):
        if order.status == order.Completed:
            self.fills.append(
                (order.executed.dt, order.executed.size, order.executed.price, order.executed.comm)
            )

    def notify_trade(self, trade):
        if trade.isclosed:
            self.closed.append(
                (
                    trade.dtopen,
                    trade.dtclose,
                    trade.barlen,
                    trade.pnl,
                    trade.pnlcomm,
                    trade.commission,
                )
            )


def test_sma_crossover_reproduces_stock_backtrader_on_real_data(btc_tiers):
    raw = pd.read_parquet(SAMPLE / "BTC_USDT_USDT-5m.parquet")
    index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp_ms"], unit="ms", utc=True), name="time")
    candles = raw.drop(columns="timestamp_ms").set_index(index)

    stock = bt.Cerebro(stdstats=False)
    stock.adddata(bt.feeds.PandasData(dataname=candles))
    stock.addstrategy(_SmaCross)
    stock.broker.setcash(100_000.0)
    stock.broker.setcommission(commission=0.0005)
    stock_strategy = stock.run()[0]

    config = RunConfig(
        strategy="SmaCross",
        cash=100_000.0,
        leverage=1.0,
        funding=False,
        maker_fee=0.0005,
        taker_fee=0.0005,
    )
    frame = candles.assign(funding_rate=0.0001)  # present but ignored: funding is off
    ours = build_cerebro(
        config,
        frame,
        _SmaCross,
        tiers=btc_tiers,
    )
    our_strategy = ours.run()[0]

    assert len(stock_strategy.closed) > 100
    assert our_strategy.fills == stock_strategy.fills
    assert our_strategy.closed == stock_strategy.closed
    assert ours.broker.getvalue() == pytest.approx(stock.broker.getvalue(), rel=0, abs=1e-6)


def test_position_helpers_when_flat_and_open(frame_factory, run_cerebro):
    # Long 10 at 100, 10x: margin 100, LP 90.3614 (see test_liquidation); a flat feed gets NaN.
    frame = frame_factory([100.0] * 4)
    strategy, broker = run_cerebro(
        frame, {0: [("buy", {"size": 10.0})]}, cash=1_000.0, leverage=10.0
    )
    data = strategy.datas[0]
    assert broker.liquidation_price(data) == pytest.approx(900.0 / 9.96, rel=1e-12)
    assert broker.position_margin(data) == pytest.approx(100.0, rel=1e-12)
    assert broker.position_leverage(data) == 10.0
    other = PerpData(dataname=frame_factory([100.0] * 4))  # a feed with no position
    assert math.isnan(broker.liquidation_price(other))
    assert broker.position_margin(other) == 0.0 and math.isnan(broker.position_leverage(other))


def test_add_margin_moves_the_liquidation_price_away(frame_factory, run_cerebro):
    # Adding 50 to the 100 of margin: LP = (150 − 1000) / (0.04 − 10) = 85.3414.
    frame = frame_factory([100.0] * 4)
    strategy, broker = run_cerebro(
        frame, {0: [("buy", {"size": 10.0})]}, cash=1_000.0, leverage=10.0
    )
    data = strategy.datas[0]
    broker.add_margin(data, 50.0)
    assert broker.liquidation_price(data) == pytest.approx(850.0 / 9.96, rel=1e-12)
    assert broker.getcash() == pytest.approx(850.0, rel=1e-12)
    assert broker.getvalue() == pytest.approx(1_000.0, rel=1e-12)
    with pytest.raises(ConfigError, match="at most the cash"):
        broker.add_margin(data, 1e9)


def test_add_margin_needs_an_isolated_open_position(frame_factory, run_cerebro):
    frame = frame_factory([100.0] * 3)
    strategy, broker = run_cerebro(frame, {}, cash=1_000.0)
    with pytest.raises(ConfigError, match="open position"):
        broker.add_margin(strategy.datas[0], 10.0)
    strategy, broker = run_cerebro(
        frame, {0: [("buy", {"size": 1.0})]}, cash=1_000.0, margin_mode="cross"
    )
    with pytest.raises(ConfigError, match="cross"):
        broker.add_margin(strategy.datas[0], 10.0)


def test_every_public_engine_name_resolves():
    import backtest.engine as engine

    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
