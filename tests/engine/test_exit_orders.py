"""Stop and take-profit exits at high exposure: OCO pairs and brackets are checked one by one.

Long 19 at 100 on a 1,000 account at 2x (1.9x exposure; margin 950, 50 left).  backtrader checks
one submission batch cumulatively: the take-profit (sell 19 at 110) would be checked as a new
short of 2,090 notional (1,045 margin) after its stop had closed the long (1,000 cash), refused
for margin, and its refusal would cancel the stop.  Each alternative is checked against its own
fill, so both stay working and the right one exits.
"""

from __future__ import annotations

from typing import Any

import backtrader as bt
import pytest

from backtest.engine import PerpetualBroker

SIZE, STOP, TAKE_PROFIT = 19.0, 95.0, 110.0


class _Exits(bt.Strategy):
    """Bar 0: a long of SIZE with a stop and a take-profit, as ``plan`` says.

    ``"oco"``: market buy, stop sell, limit sell linked OCO, all sent at bar 0.
    ``"oco-later"``: market buy at bar 0, the OCO pair at bar 1 (the position is open).
    ``"bracket"``: ``buy_bracket`` with a market parent.
    """

    params = (("plan", "oco"),)

    def __init__(self) -> None:
        self.notified: list[Any] = []

    def _pair(self) -> None:
        stop = self.sell(size=SIZE, price=STOP, exectype=bt.Order.Stop)
        self.sell(size=SIZE, price=TAKE_PROFIT, exectype=bt.Order.Limit, oco=stop)

    def next(self) -> None:
        bar = len(self) - 1
        plan = self.p.plan
        if bar == 0:
            if plan == "bracket":
                self.buy_bracket(
                    size=SIZE, exectype=bt.Order.Market, stopprice=STOP, limitprice=TAKE_PROFIT
                )
                return
            self.buy(size=SIZE)
            if plan == "oco":
                self._pair()
        elif bar == 1 and plan == "oco-later":
            self._pair()

    def notify_order(self, order: Any) -> None:
        self.notified.append((order.getstatusname(), order.exectype))


def _frame(frame_factory: Any, path: str) -> Any:
    # Bars 0-2 flat at 100 (the entry fills at bar 1's open); bar 3 moves.
    closes = [100.0, 100.0, 100.0, 100.0, 100.0, 100.0]
    opens = list(closes)
    highs = [100.5] * 6
    lows = [99.5] * 6
    if path == "down":
        closes[3], lows[3] = 93.0, 92.0
    elif path == "gap":
        opens[3], highs[3], lows[3], closes[3] = 90.0, 91.0, 89.0, 90.0
    else:
        closes[3], highs[3] = 111.0, 112.0
    closes[4:] = [closes[3]] * 2
    opens[4:] = [closes[3]] * 2
    highs[4:] = [closes[3]] * 2
    lows[4:] = [closes[3]] * 2
    return frame_factory(closes, opens=opens, highs=highs, lows=lows)


def _run(frame: Any, plan: str, btc_tiers: Any) -> Any:
    from backtest.engine import RunConfig, run

    strategy_class = type("Exits", (_Exits,), {"params": (("plan", plan),)})
    config = RunConfig(
        strategy="Exits", cash=1_000.0, leverage=2.0, maker_fee=0.0002, taker_fee=0.0005
    )
    return run(config, data=frame, strategy_class=strategy_class, tiers=btc_tiers)


@pytest.mark.parametrize("plan", ["oco", "oco-later", "bracket"])
@pytest.mark.parametrize(
    ("path", "exit_price", "reason", "fee_rate"),
    [
        ("down", STOP, "stop", 0.0005),
        ("gap", 90.0, "stop", 0.0005),
        ("up", TAKE_PROFIT, "strategy", 0.0002),
    ],
)
def test_the_exit_that_price_reaches_closes_the_long(
    frame_factory, btc_tiers, plan, path, exit_price, reason, fee_rate
):
    results = _run(_frame(frame_factory, path), plan, btc_tiers)
    orders = results.orders
    assert orders["side"].tolist() == ["buy", "sell"]
    assert orders["size"].tolist() == [SIZE, SIZE]
    assert orders["price"].tolist() == [100.0, exit_price]
    assert orders["reason"].tolist() == ["strategy", reason]
    assert orders["fee"].iloc[1] == pytest.approx(SIZE * exit_price * fee_rate, rel=1e-12)
    assert results.rejected.empty
    assert results.liquidations.empty
    equity = results.equity
    assert equity["position_size"].iloc[3:].tolist() == [0.0, 0.0, 0.0]
    # Only one of the pair filled: flat to the end, the other cancelled.
    final = 1_000.0 + SIZE * (exit_price - 100.0) - SIZE * 100.0 * 0.0005
    final -= SIZE * exit_price * fee_rate
    assert equity["value"].iloc[-1] == pytest.approx(final, rel=1e-12)


def test_backtraders_cumulative_check_refused_the_take_profit_and_lost_the_stop(
    frame_factory, btc_tiers, monkeypatch
):
    # The old behaviour, for the record: the take-profit refused for margin cancels the stop,
    # so the fall to 92 is not exited.
    monkeypatch.setattr(PerpetualBroker, "check_submitted", bt.brokers.BackBroker.check_submitted)
    execute = PerpetualBroker._execute

    def cash_only(self, order, ago=None, price=None, cash=None, position=None, dtcoc=None):
        # backtrader's check reads one number: the cash left, negative to refuse
        outcome = execute(self, order, ago, price, cash, position, dtcoc)
        if ago is not None:
            return outcome
        left, accepted = outcome
        return left if accepted else -1.0

    monkeypatch.setattr(PerpetualBroker, "_execute", cash_only)
    results = _run(_frame(frame_factory, "down"), "oco-later", btc_tiers)
    assert results.orders["size"].tolist() == [SIZE]
    assert results.equity["position_size"].iloc[-1] == SIZE


def test_a_pair_that_opens_positions_is_still_checked_for_margin(frame_factory, btc_tiers):
    # Flat account, an OCO pair of entries (a breakout buy stop and a sell stop) each of
    # 2.5x exposure at 2x: each alone needs more margin than the cash, so each is refused.
    class Breakout(bt.Strategy):
        def next(self) -> None:
            if len(self) == 1:
                up = self.buy(size=25.0, price=101.0, exectype=bt.Order.Stop)
                self.sell(size=25.0, price=99.0, exectype=bt.Order.Stop, oco=up)

    from backtest.engine import RunConfig, run

    frame = _frame(frame_factory, "down")
    config = RunConfig(strategy="Breakout", cash=1_000.0, leverage=2.0)
    results = run(config, data=frame, strategy_class=Breakout, tiers=btc_tiers)
    assert results.orders.empty
    assert results.rejected["side"].tolist() == ["buy", "sell"]
    assert results.rejected["reason"].str.startswith("insufficient margin").all()
    assert results.equity["value"].iloc[-1] == 1_000.0


def test_a_reduce_is_accepted_when_the_account_is_underwater(frame_factory, run_script):
    # Long 19 at 100 on 1,000 at 2x; at the close 92 the cash is 50 − 152 = −102.  Selling 1
    # releases 50 of margin: the cash stays below 0, yet a reduce needs no margin.
    frame = frame_factory([100.0, 100.0, 92.0, 92.0, 92.0])
    script = {0: [("buy", {"size": 19.0})], 2: [("sell", {"size": 1.0})]}
    results = run_script(frame, script, cash=1_000.0, leverage=2.0)
    assert results.rejected.empty
    assert results.orders["size"].tolist() == [19.0, 1.0]
    assert results.equity["position_size"].iloc[-1] == 18.0


def test_a_batch_after_an_underwater_reduce_is_checked_against_the_real_cash(
    frame_factory, run_script
):
    # Cash −102 at the close 92 (as above).  The reduce (sell 1) is accepted and leaves −52,
    # not 0.  The flip after it (sell 38: close the rest, which the submission check credits
    # with the position's 950 of margin, and open a short of 20 at 92, 920 of margin) then
    # leaves −22 and is refused at submission, at the price it was sent at (92).  Counting the
    # reduce's cash as 0 accepted it there (30 left), and the fill refused it at bar 3's open
    # (93) instead.
    frame = frame_factory([100.0, 100.0, 92.0, 93.0, 93.0], opens=[100.0, 100.0, 100.0, 93.0, 93.0])
    script = {
        0: [("buy", {"size": 19.0})],
        2: [("sell", {"size": 1.0}), ("sell", {"size": 38.0})],
    }
    results = run_script(frame, script, cash=1_000.0, leverage=2.0)
    assert results.orders["size"].tolist() == [19.0, 1.0]
    rejected = results.rejected
    assert rejected["size"].tolist() == [38.0] and rejected["price"].tolist() == [92.0]
    assert "needs 920.00" in rejected["reason"].iloc[0]
    assert "898.00 available" in rejected["reason"].iloc[0]
