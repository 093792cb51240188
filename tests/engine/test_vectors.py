"""The Binance rows of the liquidation-price vectors reappear as the broker's liquidation prices.

Each position is opened through the broker at the row's entry price and quantity with the
row's margin (wallet balance); cross rows open the other position in a second market whose
price at that moment is the row's mark.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import backtrader as bt
import pytest

from backtest.engine import PerpCerebro, PerpData, PerpetualBroker, PerpetualCommission
from backtest.liquidation.tiers import LeverageTiers, Tier

VECTORS = (
    Path(__file__).resolve().parents[1] / "liquidation" / "data" / "liquidation_price_vectors.csv"
)


def _rows(mode: str) -> list[dict]:
    with VECTORS.open(newline="", encoding="utf-8") as handle:
        return [
            row
            for row in csv.DictReader(handle)
            if row["venue"] == "binance" and row["mode"] == mode
        ]


class _OpenAndRecord(bt.Strategy):
    """Open the given positions (bar -> [(data index, side, size, leverage)]), add margin,
    record every data's liquidation price at ``record_bar``."""

    params = (("orders", None), ("extra_margin", 0.0), ("record_bar", 2))

    def __init__(self):
        self.recorded = None

    def next(self):
        bar = len(self) - 1
        for index, side, size, leverage in (self.p.orders or {}).get(bar, ()):
            send = self.buy if side == "long" else self.sell
            send(data=self.datas[index], size=size, leverage=leverage)
        if bar == self.p.record_bar - 1 and self.p.extra_margin:
            self.broker.add_margin(self.datas[0], self.p.extra_margin)
        if bar == self.p.record_bar - 1:
            self.recorded = [self.broker.liquidation_price(data) for data in self.datas]


def _cerebro(frames, broker_kwargs, strategy_kwargs, cash):
    cerebro = PerpCerebro()
    for name, frame in frames:
        cerebro.adddata(PerpData(dataname=frame), name=name)
    broker = PerpetualBroker(cash=cash, **broker_kwargs)
    broker.addcommissioninfo(PerpetualCommission(commission=0.0, maker_commission=0.0))
    cerebro.broker = broker
    cerebro.addstrategy(_OpenAndRecord, **strategy_kwargs)
    return cerebro.run()[0]


@pytest.mark.parametrize("row", _rows("isolated"), ids=lambda row: f"{row['side']}-{row['entry']}")
def test_isolated_rows(row, frame_factory):
    entry, quantity = float(row["entry"]), float(row["qty"])
    leverage, wallet = float(row["leverage"]), float(row["wallet_balance"])
    margin_at_leverage = quantity * entry / leverage
    extra = wallet - margin_at_leverage  # rows quoting a wallet above notional/leverage
    assert extra >= -1e-9 * wallet
    frame = frame_factory([entry] * 4)
    strategy = _cerebro(
        [("X", frame)],
        {
            "maintenance_margin_rate": float(row["mmr"]),
            "maintenance_amount": float(row["cum"]),
        },
        {
            "orders": {0: [(0, row["side"], quantity, leverage)]},
            "extra_margin": extra if extra > 1e-9 * wallet else 0.0,
        },
        cash=wallet * 2 + 1.0,
    )
    expected = float(row["expected"])
    assert strategy.broker.position_margin(strategy.datas[0]) == pytest.approx(wallet, rel=1e-12)
    assert strategy.recorded[0] == pytest.approx(expected, rel=float(row["rel_tol"]))


def _two_bracket_tiers(symbol: str, rate: float, cum: float) -> LeverageTiers:
    """A consistent table whose upper bracket has (rate, cum): floor = cum / (rate − 0.005)."""
    floor = cum / (rate - 0.005)
    return LeverageTiers(
        symbol,
        "binanceusdm",
        None,
        (Tier(0.0, floor, 0.005, 125.0, 0.0), Tier(floor, 1e10, rate, 125.0, cum)),
    )


def test_cross_rows(frame_factory):
    first, second = _rows("cross")
    # Row 1: long A (1456.84 × 3683.979) with B (32481.98 × 109.488) open, B's mark 31967.27.
    # Row 2: long B with A open, A's mark 1335.18.  One scenario gives both: B fills at bar 1,
    # A at bar 2, and at bar 2's close A is at 1335.18 and B at 31967.27.
    other_a = json.loads(second["other"])[0]
    other_b = json.loads(first["other"])[0]
    a_entry, b_entry = float(first["entry"]), float(second["entry"])
    frame_a = frame_factory(
        [a_entry, a_entry, other_a["mark"], other_a["mark"]],
        opens=[a_entry, a_entry, a_entry, other_a["mark"]],
    )
    frame_b = frame_factory(
        [b_entry, b_entry, other_b["mark"], other_b["mark"]],
        opens=[b_entry, b_entry, b_entry, other_b["mark"]],
    )
    tiers = {
        "A": _two_bracket_tiers("ETH/USDT:USDT", float(first["mmr"]), float(first["cum"])),
        "B": _two_bracket_tiers("BTC/USDT:USDT", float(second["mmr"]), float(second["cum"])),
    }
    wallet = float(first["wallet_balance"])
    assert wallet == float(second["wallet_balance"])
    strategy = _cerebro(
        [("A", frame_a), ("B", frame_b)],
        {
            "margin_mode": "cross",
            "tiers": tiers,
        },
        {
            "orders": {
                0: [(1, "long", float(second["qty"]), 20.0)],
                1: [(0, "long", float(first["qty"]), 20.0)],
            },
            "record_bar": 3,
        },
        cash=wallet,
    )
    assert strategy.broker.wallet == wallet
    assert strategy.recorded[0] == pytest.approx(
        float(first["expected"]), rel=float(first["rel_tol"])
    )
    assert strategy.recorded[1] == pytest.approx(
        float(second["expected"]), rel=float(second["rel_tol"])
    )


def test_the_vector_file_has_the_binance_rows():
    assert len(_rows("isolated")) == 10 and len(_rows("cross")) == 2
