"""``PerpetualCommission``: how much a linear perpetual's trades, funding and liquidation cost.

The commission scheme answers "how much"; :class:`backtest.engine.broker.PerpetualBroker`
decides "when" (fills, funding settlements, liquidations).  Quantities are in base units
(contracts × ``mult``), prices and money in the quote currency (USDT).
"""

from __future__ import annotations

import math
from typing import Any

import backtrader as bt

from backtest.errors import ConfigError

#: Liquidation clearance fee rates by venue (fraction of the liquidated notional).
#:
#: Binance reports the rate per symbol as ``liquidationFee`` in ``GET /fapi/v1/exchangeInfo``
#: (https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information);
#: BTCUSDT and ETHUSDT report ``"liquidationFee": "0.012500"`` (1.25 %).  The fee comes out of
#: the position's remaining margin ("Insurance Clearance Fee", Binance support: *What fees are
#: generated in Binance Futures trading*), so a user never pays more than the margin.
#: Bybit, OKX and Hyperliquid charge no separate clearance fee on top of their bankruptcy-price
#: mechanics; 0 is used for them.
LIQUIDATION_FEE_RATES: dict[str, float] = {
    "binance": 0.0125,
    "bybit": 0.0,
    "okx": 0.0,
    "hyperliquid": 0.0,
}


class PerpetualCommission(bt.CommInfoBase):
    """Fees, margin and funding of a USDT-margined (linear) perpetual future.

    Parameters
    ----------
    commission : float
        Taker fee as a fraction of notional (0.0005 = 0.05 %).  ``percabs`` is fixed to True,
        so backtrader never divides it by 100.
    maker_commission : float
        Maker fee as a fraction (charged on fills of limit orders).
    leverage : float
        Default leverage of new positions (an order's ``leverage=`` keyword overrides it).
    liquidation_fee : float
        Clearance fee rate charged on a liquidation, fraction of the liquidated notional
        (Binance BTCUSDT: 0.0125, see :data:`LIQUIDATION_FEE_RATES`).
    size_step : float
        Quantity step (base units) :meth:`getsize` rounds down to; 0 keeps any fraction.
    mult : float
        Contract multiplier (base units per contract, 1 for Binance USDⓈ-M).

    Notes
    -----
    Fee formula (Binance, *What fees are generated in Binance Futures trading*):
    ``fee = quantity × price × rate``.  Funding (Binance, *Introduction to Binance Futures
    Funding Rates*): ``payment = position size × mark price × funding rate``, paid by longs and
    received by shorts when the rate is positive.

    backtrader conventions kept: :meth:`get_margin` and :meth:`getoperationcost` are the
    *unlevered* notional; the broker divides by leverage once (so leverage is never applied
    twice).  :meth:`getsize` returns fractional sizes (the base class truncates to int).
    """

    params = (
        ("commission", 0.0005),
        ("maker_commission", 0.0002),
        ("leverage", 1.0),
        ("liquidation_fee", LIQUIDATION_FEE_RATES["binance"]),
        ("size_step", 0.0),
        ("mult", 1.0),
        ("percabs", True),
        ("stocklike", False),
        ("commtype", bt.CommInfoBase.COMM_PERC),
    )

    def __init__(self) -> None:
        super().__init__()
        checks: dict[str, Any] = {
            "commission": self.p.commission,
            "maker_commission": self.p.maker_commission,
            "liquidation_fee": self.p.liquidation_fee,
            "size_step": self.p.size_step,
        }
        for name, value in checks.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0.0):
                raise ConfigError(f"PerpetualCommission {name}={value!r}: must be a number >= 0")
        if not (math.isfinite(self.p.leverage) and self.p.leverage > 0.0):
            raise ConfigError(
                f"PerpetualCommission leverage={self.p.leverage!r}: must be a number > 0"
            )
        if not (math.isfinite(self.p.mult) and self.p.mult > 0.0):
            raise ConfigError(f"PerpetualCommission mult={self.p.mult!r}: must be a number > 0")

    # -- sizes and margin -------------------------------------------------------------------
    def get_margin(self, price: float) -> float:
        """Unlevered margin of one contract: its notional ``price × mult``."""
        return price * self.p.mult

    def getsize(self, price: float, cash: float) -> float:
        """Largest fractional size whose margin plus taker fee ``cash`` pays for.

        ``size = cash × L / (price × mult × (1 + L × taker))``, rounded down to ``size_step``.
        """
        if price <= 0.0 or cash <= 0.0:
            return 0.0
        leverage = self.p.leverage
        size = cash * leverage / (price * self.p.mult * (1.0 + leverage * self.p.commission))
        step = self.p.size_step
        if step > 0.0:
            size = math.floor(size / step + 1e-9) * step
        return size

    def getoperationcost(self, size: float, price: float) -> float:
        """Unlevered notional ``|size| × price × mult`` (the broker divides by leverage)."""
        return abs(size) * price * self.p.mult

    def getvaluesize(self, size: float, price: float) -> float:
        """Signed notional ``size × price × mult``."""
        return size * price * self.p.mult

    def getvalue(self, position: Any, price: float) -> float:
        """Signed notional of ``position`` at ``price``."""
        return position.size * price * self.p.mult

    # -- profit and loss --------------------------------------------------------------------
    def profitandloss(self, size: float, price: float, newprice: float) -> float:
        """PnL of ``size`` moving from ``price`` to ``newprice``."""
        return size * (newprice - price) * self.p.mult

    def cashadjust(self, size: float, price: float, newprice: float) -> float:
        """Mark-to-market cash adjustment (futures-like: the PnL is settled in cash)."""
        return size * (newprice - price) * self.p.mult

    # -- fees -------------------------------------------------------------------------------
    def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
        """Taker fee ``|size| × rate × price × mult`` (backtrader's default order of terms)."""
        return abs(size) * self.p.commission * price * self.p.mult

    def trading_fee(self, size: float, price: float, *, maker: bool) -> float:
        """Fee of a fill: maker or taker rate times the notional."""
        rate = self.p.maker_commission if maker else self.p.commission
        return abs(size) * rate * price * self.p.mult

    def liquidation_fee(self, size: float, price: float) -> float:
        """Nominal clearance fee of liquidating ``size`` at ``price`` (before the margin cap)."""
        return abs(size) * self.p.liquidation_fee * price * self.p.mult

    # -- funding ----------------------------------------------------------------------------
    def funding_payment(self, size: float, mark_price: float, rate: float) -> float:
        """Funding paid by a position at a settlement (negative when received).

        ``size × mark_price × mult × rate``: a long (size > 0) pays a positive rate, a short
        receives it.
        """
        return size * mark_price * self.p.mult * rate

    def get_credit_interest(self, data: Any, pos: Any, dt: Any) -> float:
        """No day-count interest: funding is charged by the broker at each real settlement."""
        return 0.0
