"""``PerpetualBroker``: backtrader's broker for leveraged perpetual futures.

A :class:`backtrader.brokers.BackBroker` subclass (install it with ``cerebro.broker = ...``)
that keeps backtrader's order matching and replaces the accounting with a perpetual's:

* **Margin.**  Opening ``q`` at ``p`` posts ``q·p/L`` of margin (``L`` = the order's
  ``leverage=`` keyword, else the position's, else the commission scheme's).  The commission
  scheme's costs are unlevered and leverage is divided here, once.  Adding with another leverage
  re-margins the whole position at the new leverage (as changing leverage does on an exchange).
  ``cash`` is the available balance (wallet − margin + unrealised PnL, marked to market every
  bar) and ``value`` the equity (wallet + unrealised PnL).  Only the opening part of an order
  needs margin (a reduce or close is accepted even from an underwater account), and orders
  that are alternatives of each other (an OCO group, a bracket's stop and take-profit) are
  each checked against the position before any of them fills (:meth:`check_submitted`).
* **Fees.**  Limit and stop-limit fills pay the maker rate, every other fill the taker rate.
* **Liquidation.**  When a position changes, its exchange-exact liquidation price is computed
  once by :func:`backtest.liquidation.prices.liquidation_price` with the leverage tier in force
  (isolated: the position's margin is its wallet; cross: the account's wallet and the other
  positions).  Every bar is then two float comparisons: the open (a gap) and the low/high,
  using the mark-price candle when the feed has it for that bar.  A liquidated position is
  closed at its liquidation price, or at the open when the bar opened beyond it; the venue's
  clearance fee is charged and the loss (price loss plus fee) is capped at the isolated margin
  (cross: at the account's remaining equity).  In cross mode a liquidation takes the whole
  account: every other open position is closed with it, at its bar's close (its open on a
  gap), with its clearance fee.  The forced order carries
  ``order.info.reason == "liquidation"`` and the details analyzers report.
* **Funding.**  On bars whose ``funding_rate`` line is not NaN (the store places each
  settlement on the first bar at or after its timestamp, whatever the interval), every open
  position pays ``size × mark × rate`` (received when negative), mark being the bar's
  ``mark_open`` when present, else its ``open``.  Settlement precedes the fills of that bar's
  open.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import backtrader as bt

from backtest.engine.commission import PerpetualCommission
from backtest.errors import ConfigError

#: Margin modes the broker models.
MARGIN_MODES: tuple[str, ...] = ("isolated", "cross")
#: Venues whose liquidation formula :mod:`backtest.liquidation.prices` implements.
VENUES: tuple[str, ...] = ("binance", "bybit", "okx", "hyperliquid")
#: Slippage models (:func:`slippage_fraction`).
SLIPPAGE_MODELS: tuple[str, ...] = ("fixed", "volatility")

# Order types filled as maker (resting limit orders); every other type pays the taker fee.
_MAKER_TYPES = frozenset((bt.Order.Limit, bt.Order.StopLimit, bt.Order.StopTrailLimit))
# Order types that take liquidity at whatever price the book gives: slippage applies.
_SLIPPED_TYPES = frozenset((bt.Order.Market, bt.Order.Close, bt.Order.Stop, bt.Order.StopTrail))
# A residual position smaller than this fraction of the previous size is treated as closed.
_DUST = 1e-9
_NAN = math.nan


def slippage_fraction(model: str, slippage: float, open_: float, high: float, low: float) -> float:
    """How far (a fraction of the price) a taker fill moves against the order on this bar.

    ``"fixed"``: ``slippage`` itself (0.0005 = 5 basis points on every taker fill).
    ``"volatility"``: ``slippage`` × the bar's range relative to its open, (high − low) / open,
    so a fill in a 2 % bar with ``slippage = 0.25`` moves 0.5 %, and a quiet bar costs little.
    A buy then fills at ``price × (1 + fraction)``, a sell at ``price × (1 − fraction)``.
    """
    if slippage == 0.0:
        return 0.0
    if model == "volatility":
        if not (open_ > 0.0 and high >= low):
            return 0.0
        return slippage * (high - low) / open_
    return slippage


def _margin_refusal(notional: float, leverage: float, required: float, available: float) -> str:
    """Why an order was refused for margin, with the numbers and what to change."""
    return (
        f"insufficient margin: {notional:,.2f} notional at {leverage:g}x needs "
        f"{required:,.2f} (margin + fee), {max(available, 0.0):,.2f} available; "
        "trade a smaller size or raise --leverage/--cash"
    )


def _resolve_liquidation_price_function() -> Callable[..., float]:
    from backtest.liquidation.prices import liquidation_price

    return liquidation_price


class _PositionState:
    """What the broker keeps per data feed beside backtrader's ``Position``."""

    __slots__ = (
        "clock",
        "close",
        "comminfo",
        "data",
        "funding",
        "high",
        "leverage",
        "liquidation_price",
        "low",
        "margin",
        "mark_close",
        "mark_high",
        "mark_low",
        "mark_open",
        "open",
        "owner",
        "side",
        "tiers",
        "tradeid",
    )

    def __init__(self, data: Any, comminfo: PerpetualCommission, tiers: Any) -> None:
        lines = data.lines
        aliases = set(lines.getlinealiases())

        def array_of(name: str) -> Any:
            return getattr(lines, name).array if name in aliases else None

        self.data = data
        self.comminfo = comminfo
        self.tiers = tiers
        self.clock = lines.close
        self.open = lines.open.array
        self.high = lines.high.array
        self.low = lines.low.array
        self.close = lines.close.array
        self.mark_open = array_of("mark_open")
        self.mark_high = array_of("mark_high")
        self.mark_low = array_of("mark_low")
        self.mark_close = array_of("mark_close")
        self.funding = array_of("funding_rate")
        self.leverage = comminfo.p.leverage
        self.margin = 0.0
        self.liquidation_price = _NAN
        self.side = 0
        self.owner: Any = None
        self.tradeid = 0


class PerpetualBroker(bt.brokers.BackBroker):
    """Broker for USDT-margined perpetual futures with liquidation and funding.

    Parameters
    ----------
    cash : float
        Starting wallet balance (quote currency).
    venue : str
        Liquidation formula: ``"binance"``, ``"bybit"``, ``"okx"`` or ``"hyperliquid"``.
    margin_mode : str
        ``"isolated"`` (default) or ``"cross"``.
    tiers : LeverageTiers or mapping of data name to LeverageTiers, optional
        Leverage tiers in force (maintenance rates for the liquidation price and the maximum
        leverage an order may use).  Without tiers, ``maintenance_margin_rate`` is passed on.
    maintenance_margin_rate, maintenance_amount : float, optional
        Fixed maintenance rate and amount (Binance ``cum``) instead of the tiers.
    funding : bool
        Charge and pay funding at the feed's settlements (default True).
    liquidation_price_function : callable, optional
        Replacement for :func:`backtest.liquidation.prices.liquidation_price` (same signature).
    slippage : float
        Slippage of taker fills (market, close, stop and liquidation fills; limit fills have
        none): a fraction of the price for ``"fixed"``, a multiple of the bar's relative range
        for ``"volatility"`` (:func:`slippage_fraction`).  Default 0: fills at the bar's prices.
    slippage_model : str
        ``"fixed"`` (default) or ``"volatility"``.

    Attributes
    ----------
    wallet : float
        Wallet balance: starting cash + realised PnL − fees − funding.
    fees_paid, funding_paid : float
        Cumulative trading plus liquidation fees, and cumulative funding (positive = paid).
    funding_events : list of tuple
        One ``(date number, data name, rate, mark price, position size, payment)`` per
        settlement crossed with an open position.
    liquidation_events : list of dict
        One record per liquidation (also attached to the forced order's ``info``).
    """

    params = (
        ("venue", "binance"),
        ("margin_mode", "isolated"),
        ("tiers", None),
        ("maintenance_margin_rate", None),
        ("maintenance_amount", None),
        ("funding", True),
        ("liquidation_price_function", None),
        ("slippage", 0.0),
        ("slippage_model", "fixed"),
    )

    def __init__(self) -> None:
        super().__init__()
        if not isinstance(self.comminfo.get(None), PerpetualCommission):
            self.comminfo[None] = PerpetualCommission()
        self._check_params()

    # -- set-up -----------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.p.margin_mode not in MARGIN_MODES:
            raise ConfigError(
                f"margin mode {self.p.margin_mode!r} is not supported; use one of "
                f"{', '.join(MARGIN_MODES)}"
            )
        if self.p.venue not in VENUES:
            raise ConfigError(
                f"venue {self.p.venue!r} has no liquidation formula; use one of {', '.join(VENUES)}"
            )
        if self.p.slippage_model not in SLIPPAGE_MODELS:
            raise ConfigError(
                f"slippage model {self.p.slippage_model!r} is unknown; use "
                f"{' or '.join(SLIPPAGE_MODELS)}"
            )
        slippage = self.p.slippage
        if not (isinstance(slippage, int | float) and 0.0 <= slippage < 1.0):
            raise ConfigError(f"slippage {slippage!r} must be a number in [0, 1)")

    def init(self) -> None:
        """Reset the accounts (called by backtrader at construction and at every start)."""
        super().init()
        self.wallet = self.cash
        self.fees_paid = 0.0
        self.funding_paid = 0.0
        self.margin_used = 0.0
        self.funding_events: list[tuple[float, str, float, float, float, float]] = []
        self.liquidation_events: list[dict[str, Any]] = []
        self._states: dict[Any, _PositionState] = {}
        self._open_states: list[_PositionState] = []

    def start(self) -> None:
        """Check the commission schemes and resolve the liquidation-price function."""
        super().start()
        self._check_params()
        for name, comminfo in self.comminfo.items():
            if not isinstance(comminfo, PerpetualCommission):
                label = "the default" if name is None else f"data {name!r}"
                raise ConfigError(
                    f"PerpetualBroker needs PerpetualCommission schemes, {label} has "
                    f"{type(comminfo).__name__}; use "
                    "broker.addcommissioninfo(PerpetualCommission(...))"
                )
        function = self.p.liquidation_price_function
        self._liquidation_price_function = (
            function if function is not None else _resolve_liquidation_price_function()
        )
        self._funding_on = bool(self.p.funding)
        self._cross = self.p.margin_mode == "cross"

    def set_cash(self, cash: float) -> None:
        """Set the starting wallet balance."""
        super().set_cash(cash)
        self.wallet = cash

    setcash = set_cash

    def setcommission(
        self,
        commission: float = 0.0005,
        margin: Any = None,
        mult: float = 1.0,
        commtype: Any = None,
        percabs: bool = True,
        stocklike: bool = False,
        interest: float = 0.0,
        interest_long: bool = False,
        leverage: float = 1.0,
        automargin: Any = False,
        name: str | None = None,
    ) -> None:
        """Install a :class:`PerpetualCommission` with this taker fee (fraction) and leverage.

        The stock-only arguments (``margin``, ``commtype``, ``stocklike``, ``interest`` …) have
        no meaning for a perpetual and are refused.
        """
        if margin is not None or commtype is not None or stocklike or interest or automargin:
            raise ConfigError(
                "setcommission on a PerpetualBroker takes commission (taker fee fraction), mult "
                "and leverage only; use addcommissioninfo(PerpetualCommission(...)) for more"
            )
        if not percabs:
            commission = commission / 100.0
        self.comminfo[name] = PerpetualCommission(
            commission=commission, mult=mult, leverage=leverage
        )

    def submit(self, order: Any, check: bool = True) -> Any:
        """Check the order's ``leverage=`` and size, then hand it to backtrader's queue.

        Raises
        ------
        ConfigError
            When ``leverage`` is not a number > 0 or the size is not a finite number.
        """
        reason = order.info.get("reason")
        if reason is not None and (not isinstance(reason, str) or reason == "liquidation"):
            raise ConfigError(
                f"order reason={reason!r} must be a text such as 'take-profit' or 'stop'; "
                "'liquidation' is the broker's own"
            )
        requested = order.info.get("leverage")
        if requested is not None:
            if isinstance(requested, bool) or not isinstance(requested, int | float):
                raise ConfigError(f"order leverage={requested!r} must be a number > 0")
            if not (math.isfinite(requested) and requested > 0.0):
                raise ConfigError(f"order leverage={requested!r} must be a number > 0")
        size = order.created.size
        if not math.isfinite(size):
            raise ConfigError(f"order size {size!r} must be a finite number of base units")
        base = getattr(order.data, "resampled_from", None)
        if base is not None:
            raise ConfigError(
                f"orders go to the traded feed {base!r}, not to its resampled feed "
                f"{order.data._name!r} (a read-only slower timeframe)"
            )
        return super().submit(order, check)

    # -- helpers for strategies -------------------------------------------------------------
    def liquidation_price(self, data: Any) -> float:
        """Liquidation price of the position on ``data`` (NaN when flat; 0 when unreachable)."""
        state = self._states.get(data)
        if state is None or not state.side:
            return _NAN
        return state.liquidation_price

    def position_margin(self, data: Any) -> float:
        """Margin posted for the position on ``data`` (0 when flat)."""
        state = self._states.get(data)
        return state.margin if state is not None and state.side else 0.0

    def position_leverage(self, data: Any) -> float:
        """Leverage of the position on ``data`` (NaN when flat)."""
        state = self._states.get(data)
        return state.leverage if state is not None and state.side else _NAN

    def add_margin(self, data: Any, amount: float) -> None:
        """Move ``amount`` of cash into the isolated margin of the position on ``data``.

        The liquidation price moves away accordingly (Binance "adjust margin").

        Raises
        ------
        ConfigError
            In cross mode, when flat, for a non-positive amount or more than the cash.
        """
        state = self._states.get(data)
        if self._cross_mode():
            raise ConfigError("add_margin applies to isolated margin; the run uses cross margin")
        if state is None or not state.side:
            raise ConfigError("add_margin needs an open position on that data feed")
        if not (math.isfinite(amount) and 0.0 < amount <= self.cash):
            raise ConfigError(
                f"add_margin amount {amount!r} must be > 0 and at most the cash {self.cash:,.2f}"
            )
        self.cash -= amount
        state.margin += amount
        self.margin_used += amount
        self._update_liquidation_price(state)

    def _cross_mode(self) -> bool:
        return self.p.margin_mode == "cross"

    # -- per-bar hook -----------------------------------------------------------------------
    def next(self) -> None:
        """Settle funding and gap liquidations, match orders, then check the bar's range."""
        if self._open_states:
            self._before_orders()
        super().next()
        if self._open_states:
            self._after_orders()

    def _before_orders(self) -> None:
        for state in tuple(self._open_states):
            if not state.side:
                continue  # closed this bar by a cross-margin account liquidation
            index = state.clock.idx
            if self._funding_on and state.funding is not None:
                rate = state.funding[index]
                if rate == rate:
                    self._settle_funding(state, index, rate)
            liquidation = state.liquidation_price
            if state.side > 0:
                opening = state.mark_open[index] if state.mark_open is not None else _NAN
                if opening != opening:
                    opening = state.open[index]
                if opening <= liquidation:
                    self._liquidate(state, index, gap=True)
                    self._liquidate_account(gap=True)
            else:
                opening = state.mark_open[index] if state.mark_open is not None else _NAN
                if opening != opening:
                    opening = state.open[index]
                if opening >= liquidation:
                    self._liquidate(state, index, gap=True)
                    self._liquidate_account(gap=True)

    def _after_orders(self) -> None:
        if self._cross and len(self._open_states) > 1:
            for state in self._open_states:
                self._update_liquidation_price(state)
        liquidated = False
        for state in tuple(self._open_states):
            if not state.side:
                continue  # closed this bar by a cross-margin account liquidation
            index = state.clock.idx
            if state.side > 0:
                low = state.mark_low[index] if state.mark_low is not None else _NAN
                if low != low:
                    low = state.low[index]
                if low <= state.liquidation_price:
                    self._liquidate(state, index, gap=False)
                    self._liquidate_account(gap=False)
                    liquidated = True
            else:
                high = state.mark_high[index] if state.mark_high is not None else _NAN
                if high != high:
                    high = state.high[index]
                if high >= state.liquidation_price:
                    self._liquidate(state, index, gap=False)
                    self._liquidate_account(gap=False)
                    liquidated = True
        if liquidated:
            self._get_value()

    # -- funding ----------------------------------------------------------------------------
    def _settle_funding(self, state: _PositionState, index: int, rate: float) -> None:
        mark = state.mark_open[index] if state.mark_open is not None else _NAN
        if mark != mark:
            mark = state.open[index]
        size = self.positions[state.data].size
        payment = state.comminfo.funding_payment(size, mark, rate)
        self.cash -= payment
        self.wallet -= payment
        self.funding_paid += payment
        data = state.data
        self.funding_events.append(
            (data.lines.datetime.array[index], data._name, rate, mark, size, payment)
        )
        if self._cross:
            self._update_liquidation_price(state)

    # -- liquidation ------------------------------------------------------------------------
    def _liquidate_account(self, *, gap: bool) -> None:
        """Cross margin: after one position's liquidation, close every other one too.

        A cross position's liquidation price is where the whole account's margin balance falls
        to the maintenance margin of all its positions (the Binance cross formula of
        :func:`backtest.liquidation.prices.binance_formula`, with the other positions'
        maintenance margin and unrealised PnL).  There the account, not one position, is
        insolvent, and the cross margin balance backs every position; as elsewhere in this
        broker there is no partial liquidation, so every position is closed at once: the other
        positions at their traded price of the bar the formula used for them (the open on a
        gap, else the close).
        """
        if not self._cross:
            return
        for other in tuple(self._open_states):
            if other.side:
                index = other.clock.idx
                price = other.open[index] if gap else other.close[index]
                self._liquidate(other, index, gap=gap, market_price=price)

    def _liquidate(
        self, state: _PositionState, index: int, *, gap: bool, market_price: float | None = None
    ) -> None:
        data = state.data
        position = self.positions[data]
        size = position.size
        entry = position.price
        liquidation = state.liquidation_price
        comminfo = state.comminfo
        mult = comminfo.p.mult
        if market_price is not None:
            market = market_price
        elif gap:
            traded_open = state.open[index]
            market = min(traded_open, liquidation) if size > 0 else max(traded_open, liquidation)
        else:
            market = liquidation
        if self.p.slippage:
            market = self._slipped(data, market, -1 if size > 0 else 1)
        quantity = abs(size)
        price_loss = (entry - market) * size * mult  # positive when the move went against us
        nominal_fee = comminfo.liquidation_fee(size, market)
        cap = state.margin if not self._cross else self._cross_loss_cap(state)
        cap = max(cap, 0.0)
        if price_loss >= cap:
            booked_price_loss, fee = cap, 0.0
        else:
            booked_price_loss = price_loss
            fee = min(nominal_fee, max(cap - price_loss, 0.0))
        # Price at which the PnL is booked: the market price, or the bankruptcy price when the
        # insurance fund absorbs a loss beyond the margin.
        booked_price = entry - booked_price_loss / (size * mult)
        self._cancel_orders_of(data)
        order_class = bt.SellOrder if size > 0 else bt.BuyOrder
        order = order_class(
            owner=state.owner,
            data=data,
            size=quantity,
            price=market,
            exectype=bt.Order.Market,
            tradeid=state.tradeid,
        )
        record = {
            "time": data.lines.datetime.array[index],
            "data": data._name,
            "side": "long" if size > 0 else "short",
            "size": quantity,
            "entry_price": entry,
            "liquidation_price": liquidation,
            "fill_price": market,
            "booked_price": booked_price,
            "loss": booked_price_loss + fee,
            "fee": fee,
            "margin": state.margin,
            "gap": gap,
        }
        order.addinfo(reason="liquidation", **record)
        self._ocoize(order, None)
        order.submit(self)
        order.accept(self)
        self.orders.append(order)
        self.liquidation_events.append(record)
        self._fill(order, -size, booked_price, fee_override=fee)

    def _cross_loss_cap(self, state: _PositionState) -> float:
        """Account equity apart from this position's unrealised PnL (what can still be lost)."""
        equity = self.wallet
        for other in self._open_states:
            if other is state:
                continue
            position = self.positions[other.data]
            index = other.clock.idx
            equity += other.comminfo.profitandloss(
                position.size, position.price, other.close[index]
            )
        return equity

    def _cancel_orders_of(self, data: Any) -> None:
        """Cancel the data's working orders: an exchange cancels them on liquidation."""
        for order in [o for o in self.pending if o is not None and o.data is data]:
            self.cancel(order)
        for order in [o for o in self.submitted if o.data is data]:
            self.submitted.remove(order)
            order.cancel()
            self.notify(order)

    # -- liquidation prices -----------------------------------------------------------------
    def _update_liquidation_price(self, state: _PositionState) -> None:
        position = self.positions[state.data]
        size = position.size
        if not size:
            state.liquidation_price = _NAN
            return
        comminfo = state.comminfo
        tiers = state.tiers
        other_positions: tuple[dict[str, Any], ...] = ()
        if self._cross_mode():
            # Funding (or a loss capped at the account) can leave the wallet below zero while a
            # position is open: the account is bankrupt, and a wallet of 0 puts the position's
            # liquidation price beyond the market, so the next check closes it.
            wallet_balance = max(self.wallet, 0.0)
            other_positions = tuple(
                self._describe(other) for other in self._open_states if other is not state
            )
        else:
            wallet_balance = state.margin
        quantity = abs(size) * comminfo.p.mult
        rate, amount = self.p.maintenance_margin_rate, self.p.maintenance_amount
        max_leverage = tiers.max_leverage if tiers is not None else None
        if self.p.venue != "binance" and rate is None and tiers is not None:
            # Bybit, OKX, Hyperliquid: the bracket holding the position's notional gives the
            # rate their formulas take (Binance's solver picks its bracket itself).
            from backtest.engine.venues import position_maintenance

            rate, amount, max_leverage = position_maintenance(
                self.p.venue, tiers, quantity * position.price
            )
            tiers = None
        price = self._liquidation_price_function(
            self.p.venue,
            "long" if size > 0 else "short",
            position.price,
            quantity,
            state.leverage,
            tiers=tiers,
            maintenance_margin_rate=rate,
            maintenance_amount=amount,
            wallet_balance=wallet_balance,
            margin_mode=self.p.margin_mode,
            other_positions=other_positions,
            taker_fee=comminfo.p.commission,
            max_leverage=max_leverage,
        )
        price = float(price)
        state.liquidation_price = max(price, 0.0) if size > 0 else price

    def _describe(self, state: _PositionState) -> dict[str, Any]:
        """Another open position, as the cross-margin formula needs it."""
        position = self.positions[state.data]
        index = state.clock.idx
        mark = state.mark_close[index] if state.mark_close is not None else _NAN
        if mark != mark:
            mark = state.close[index]
        quantity = abs(position.size) * state.comminfo.p.mult
        rate, amount = self._maintenance(state, quantity * mark)
        return {
            "side": "long" if position.size > 0 else "short",
            "quantity": quantity,
            "entry_price": position.price,
            "mark_price": mark,
            "maintenance_margin_rate": rate,
            "maintenance_amount": amount,
        }

    def _maintenance(self, state: _PositionState, notional: float) -> tuple[float, float]:
        if self.p.maintenance_margin_rate is not None:
            return float(self.p.maintenance_margin_rate), float(self.p.maintenance_amount or 0.0)
        if state.tiers is None:
            raise ConfigError(
                "cross margin needs leverage tiers or maintenance_margin_rate for every position"
            )
        tier = state.tiers.tier_for_notional(min(notional, state.tiers.max_notional))
        return tier.maintenance_margin_rate, tier.cum

    # -- accounting -------------------------------------------------------------------------
    def _state(self, data: Any) -> _PositionState:
        state = self._states.get(data)
        if state is None:
            tiers = self.p.tiers
            if isinstance(tiers, Mapping):
                tiers = tiers.get(data._name)
            state = _PositionState(data, self.getcommissioninfo(data), tiers)
            self._states[data] = state
        return state

    def _order_leverage(self, order: Any, state: _PositionState, continuing: bool) -> float:
        requested = order.info.get("leverage")
        if requested is None:
            return state.leverage if continuing else state.comminfo.p.leverage
        return float(requested)  # checked by submit

    def _leverage_refusal(self, state: _PositionState, leverage: float, notional: float) -> str:
        """Why ``leverage`` is not allowed for ``notional`` (empty when it is)."""
        tiers = state.tiers
        if tiers is None:
            return ""
        if notional > tiers.max_notional:
            return (
                f"notional {notional:,.0f} exceeds the largest bracket ({tiers.max_notional:,.0f})"
            )
        allowed = tiers.max_leverage_for_notional(notional)
        if leverage > allowed:
            return f"leverage {leverage:g} exceeds the {allowed:g}x maximum for {notional:,.0f}"
        return ""

    def _execute(
        self,
        order: Any,
        ago: int | None = None,
        price: float | None = None,
        cash: float | None = None,
        position: Any = None,
        dtcoc: Any = None,
    ) -> tuple[float, bool] | None:
        """Backtrader's fill hook: a margin check at submission (ago None) or a real fill.

        At submission it returns ``(cash left, accepted)`` (:meth:`_submission_cash`), which
        only :meth:`check_submitted` asks for.
        """
        if ago is not None and price is None:
            return None
        if self.p.filler is None or ago is None:
            size = order.executed.remsize
        else:
            size = self.p.filler(order, price, ago)
            if not order.isbuy():
                size = -size
        if ago is None:
            if self.p.coo and order.exectype == bt.Order.Market:
                fill_price = order.data.open[0]
            else:
                fill_price = order.created.price
            return self._submission_cash(order, size, fill_price, cash, position)
        if self.p.slippage and order.exectype in _SLIPPED_TYPES:
            price = self._slipped(order.data, price, 1 if size > 0 else -1)
        self._fill(order, size, price, dtcoc=dtcoc)
        return None

    def check_submitted(self) -> None:
        """Check the submitted orders for margin, alternatives each against its own fill.

        backtrader checks the orders of one submission batch cumulatively against one clone of
        the position and of the cash: each order as if every order before it had filled.  For
        orders that are alternatives of each other — the members of one OCO group, or the
        children of one bracket (its stop and its take-profit) — only one can fill, so each is
        checked against the position and cash as they are when it comes up, without its
        siblings (after the orders that precede it, such as the bracket's parent).  A
        take-profit is then checked as the close it is, not as a new position opened after
        its stop closed the position, and is not refused for margin (which would cancel its
        stop too).  Once the group's last member is checked, the orders after it see the
        outcome of the accepted member that leaves the least cash.  Orders outside such groups
        are checked exactly as backtrader does.
        """
        submitted = self.submitted
        remaining = Counter(self._alternatives_key(order) for order in submitted)
        cash = self.cash
        positions: dict[Any, Any] = {}
        # Per group seen so far: the accepted member that leaves the least cash, as
        # (cash change, data, position after it), or None while none is accepted.
        worst: dict[tuple[str, int], tuple[float, Any, Any] | None] = {}
        while submitted:
            order = submitted.popleft()
            if self._take_children(order) is None:  # a child whose parent is gone: rejected
                continue
            key = self._alternatives_key(order)
            current = positions.get(order.data)
            if current is None:
                current = positions[order.data] = self.positions[order.data].clone()
            if remaining[key] > 1 or key in worst:  # one of several alternatives
                position = current.clone()
                after, accepted = self._execute(order, cash=cash, position=position)
                chosen = worst.setdefault(key, None)
                if accepted and (chosen is None or after - cash < chosen[0]):
                    worst[key] = (after - cash, order.data, position)
                remaining[key] -= 1
                if not remaining[key] and worst[key] is not None:  # the last one: apply it
                    change, data, position = worst[key]
                    cash += change
                    positions[data] = position
            else:
                cash, accepted = self._execute(order, cash=cash, position=current)
            if accepted:
                self.submit_accept(order)
                continue
            order.margin()
            self.notify(order)
            self._ococheck(order)
            self._bracketize(order, cancel=True)

    def _alternatives_key(self, order: Any) -> tuple[str, int]:
        """The group of orders ``order`` is an alternative to: its bracket's or its OCO's."""
        parent = order.parent
        if parent is not None and parent is not order:
            return ("bracket", parent.ref)
        return ("oco", self._ocos.get(order.ref, order.ref))

    def _slipped(self, data: Any, price: float, direction: int) -> float:
        """``price`` moved against a buy (``direction`` 1) or a sell (-1) by the slippage."""
        lines = data.lines
        index = lines.close.idx
        fraction = slippage_fraction(
            self.p.slippage_model,
            self.p.slippage,
            lines.open.array[index],
            lines.high.array[index],
            lines.low.array[index],
        )
        return price * (1.0 + direction * fraction)

    def _submission_cash(
        self, order: Any, size: float, price: float, cash: float, position: Any
    ) -> tuple[float, bool]:
        """Cash left after ``order`` fills at ``price``, and whether the order is accepted.

        Only the opening part needs margin: an order that opens nothing (a reduce or a close)
        is accepted even when the account is underwater (unrealised loss beyond the free
        balance), as an exchange accepts reduce-only orders; the cash it leaves, below zero
        then, is what the next order of the batch is checked against.
        """
        state = self._state(order.data)
        comminfo = state.comminfo
        old_size = position.size
        entry = position.price
        _, _, opened, closed = position.update(size, price)
        maker = order.exectype in _MAKER_TYPES
        if closed:
            if old_size:
                cash += state.margin * min(abs(closed) / abs(old_size), 1.0)
            cash -= comminfo.trading_fee(closed, price, maker=maker)
        if opened:
            continuing = abs(position.size) > abs(opened)
            leverage = self._order_leverage(order, state, continuing)
            notional = abs(position.size) * comminfo.p.mult * (entry if continuing else price)
            refusal = self._leverage_refusal(state, leverage, notional)
            if refusal:
                order.addinfo(reject_reason=refusal)
                return -1.0, False
            available = cash
            cash -= comminfo.getoperationcost(opened, price) / leverage
            cash -= comminfo.trading_fee(opened, price, maker=maker)
            if cash < 0.0:
                order.addinfo(
                    reject_reason=_margin_refusal(
                        abs(opened) * comminfo.p.mult * price, leverage, available - cash, available
                    )
                )
        return cash, cash >= 0.0 or not opened

    def _fill(
        self,
        order: Any,
        size: float,
        price: float,
        *,
        dtcoc: Any = None,
        fee_override: float | None = None,
    ) -> None:
        """Execute ``size`` of ``order`` at ``price`` and update the perpetual's accounts."""
        data = order.data
        state = self._state(data)
        comminfo = state.comminfo
        position = self.positions[data]
        old_size = position.size
        entry_before = position.price
        if old_size and (old_size + size) and abs(old_size + size) <= _DUST * abs(old_size):
            size = -old_size  # snap a float residue to an exact close
        psize, pprice, opened, closed = position.pseudoupdate(size, price)
        maker = order.exectype in _MAKER_TYPES
        cash = self.cash
        pnl = closedvalue = closedcomm = openedvalue = openedcomm = posted = 0.0
        released = 0.0
        if closed:
            pnl = comminfo.profitandloss(-closed, entry_before, price)
            closedvalue = comminfo.getoperationcost(closed, entry_before)
            released = state.margin * min(abs(closed) / abs(old_size), 1.0)
            cash += released
            cash += comminfo.cashadjust(-closed, position.adjbase, price)
            if fee_override is not None:
                closedcomm = fee_override
            else:
                closedcomm = comminfo.trading_fee(closed, price, maker=maker)
            cash -= closedcomm
            self.cash = cash
        popened = opened
        leverage = state.leverage
        remargin = 0.0
        if opened:
            continuing = abs(psize) > abs(opened)
            leverage = self._order_leverage(order, state, continuing)
            openedvalue = comminfo.getoperationcost(opened, price)
            notional = abs(psize) * comminfo.p.mult * (pprice if continuing else price)
            refusal = self._leverage_refusal(state, leverage, notional)
            posted = openedvalue / leverage
            if continuing and leverage != state.leverage:
                remargin = comminfo.getoperationcost(old_size, entry_before) / leverage - (
                    state.margin
                )
            openedcomm = comminfo.trading_fee(opened, price, maker=maker)
            available = cash
            cash -= posted + remargin + openedcomm
            if refusal or cash < 0.0:
                if not refusal:
                    refusal = _margin_refusal(
                        abs(openedvalue), leverage, posted + remargin + openedcomm, available
                    )
                order.addinfo(reject_reason=refusal)
                opened = 0
                openedvalue = openedcomm = posted = remargin = 0.0
            else:
                if continuing:
                    cash += comminfo.cashadjust(psize - opened, position.adjbase, price)
                position.adjbase = price
                self.cash = cash
        execsize = closed + opened
        if execsize:
            position.update(execsize, price, data.datetime.datetime())
            self._book(state, order, position.size, released, posted + remargin, leverage, opened)
            realized = pnl - closedcomm - openedcomm
            self.wallet += realized
            self.fees_paid += closedcomm + openedcomm
            order.execute(
                dtcoc or data.datetime[0],
                execsize,
                price,
                closed,
                closedvalue,
                closedcomm,
                opened,
                openedvalue,
                openedcomm,
                posted,
                pnl,
                psize,
                pprice,
            )
            order.addcomminfo(comminfo)
            self.notify(order)
            self._ococheck(order)
        if popened and not opened:
            order.margin()
            self.notify(order)
            self._ococheck(order)
            self._bracketize(order, cancel=True)

    def _book(
        self,
        state: _PositionState,
        order: Any,
        new_size: float,
        released: float,
        posted: float,
        leverage: float,
        opened: float,
    ) -> None:
        """Update the margin, leverage and liquidation price after a fill."""
        state.margin += posted - released
        self.margin_used += posted - released
        if not new_size:
            self.margin_used -= state.margin
            state.margin = 0.0
            state.side = 0
            state.liquidation_price = _NAN
            if state in self._open_states:
                self._open_states.remove(state)
            if self._cross:
                for other in self._open_states:
                    self._update_liquidation_price(other)
            return
        if opened:
            state.leverage = leverage
            state.owner = order.owner
            state.tradeid = order.tradeid
        state.side = 1 if new_size > 0 else -1
        if state not in self._open_states:
            self._open_states.append(state)
        if self._cross:
            for other in self._open_states:
                self._update_liquidation_price(other)
        else:
            self._update_liquidation_price(state)

    def _get_value(self, datas: Any = None, lever: bool = False) -> float:
        """Equity: available cash plus posted margin (cash is marked to market every bar)."""
        while self._cash_addition:
            deposit = self._cash_addition.popleft()
            self._fundshares += deposit / self._fundval
            self.cash += deposit
            self.wallet += deposit
        if datas is not None:
            total = 0.0
            for data in datas:
                state = self._states.get(data)
                if state is None or not state.side:
                    continue
                position = self.positions[data]
                index = state.clock.idx
                total += state.margin + state.comminfo.profitandloss(
                    position.size, position.price, state.close[index]
                )
            return total
        self._value = value = self.cash + self.margin_used
        self._valuemkt = self.margin_used
        self._fundval = value / self._fundshares
        return value
