"""Pure-Python reference twin of the array simulator (``ext/_simulate.pyx``).

Interface changes (newest first):

* 2026-12-03 05:00 UTC, semantics: an order that only reduces or closes the position passes
  the submission check even when the account is underwater (as PerpetualBroker now does).

* 2026-12-03 05:00 UTC, arguments: ``stop`` and ``take_profit`` (float64[n], NaN = no level)
  after ``reason``: resting exit orders (step 6 places them, steps 2-3 check and fill them;
  semantics in :mod:`backtest.arrays.decisions`).  Fill kinds 1 (stop) and 2 (take-profit).
* 2026-12-03 04:25 UTC, semantics: an accepted order whose fill the dust snap shortened stays
  pending with its float residue and fills on the next bar (``pending`` list, step 3), as
  backtrader keeps a partly executed order alive.

Raw interface (shared with the compiled kernel ``backtest.arrays._simulate.simulate``)
-------------------------------------------------------------------------------------
Plain float64/int arrays and scalars only; nothing inside the loop is a Python object::

    simulate_reference(
        open, high, low, close,                       # float64[n] traded candle
        mark_open, mark_high, mark_low, mark_close,   # float64[n], NaN where no mark candle
        funding_rate,                                 # float64[n], NaN where no settlement
        target,                                       # float64[n], NaN = no decision
        reason,                                       # int16[n], reason code per bar
        stop, take_profit,                            # float64[n] exit levels, NaN = none
        cash, leverage, taker_fee, maker_fee,         # float
        liquidation_fee, mult,                        # float
        funding_on,                                   # int 0/1
        slippage,                                     # float
        tier_floor, tier_cap, tier_rate,              # float64[k] bracket floor, cap, MMR
        tier_cum, tier_max_leverage,                  # float64[k] cum, max leverage
        venue_code,                                   # int: 0 binance, 1 bybit, 2 okx,
                                                      #      3 hyperliquid
        margin_mode_code,                             # int: 0 isolated, 1 cross
        slippage_model_code,                          # int: 0 fixed, 1 volatility
    ) -> tuple

The result is the tuple of :class:`backtest.arrays.simulation.Simulation`'s fields in
declaration order (per-bar arrays, fills, funding, liquidations, rejections, final value), so
``Simulation(*raw)`` builds the result.  Dtypes: bars int64, sizes/prices/money float64,
``fill_kind``/``liq_side``/``reject_code`` int8, reason codes int16, ``liq_gap`` bool.

Semantics: those of :class:`backtest.engine.broker.PerpetualBroker` on top of backtrader's
``BackBroker`` for the market orders :meth:`backtest.Strategy.target_exposure` sends, bar by
bar (the twin documents each step where it happens).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from typing import Any

import numpy as np

from backtest.errors import ConfigError

_NAN = math.nan
# A residual position smaller than this fraction of the previous size is treated as closed
# (PerpetualBroker._DUST).
_DUST = 1e-9
# target_exposure skips an order smaller than this fraction of max(|target|, |current|, 1).
_TARGET_TOLERANCE = 1e-12
_BINANCE, _BYBIT, _OKX, _HYPERLIQUID = 0, 1, 2, 3
_FILL_MARKET, _FILL_STOP, _FILL_TAKE_PROFIT, _FILL_LIQUIDATION = 0, 1, 2, 3
_REJECT_SUBMISSION, _REJECT_FILL, _REJECT_CAP, _REJECT_TIER = 1, 2, 3, 4


# --------------------------------------------------------------------------------------------
# Liquidation price (PerpetualBroker._update_liquidation_price → prices.solve_liquidation)
# --------------------------------------------------------------------------------------------


def _bracket_index(floors: list[float], notional: float) -> int:
    """0-based bracket holding ``notional`` (prices.bracket_index / index_for_notional)."""
    return max(0, min(bisect_right(floors, notional) - 1, len(floors) - 1))


def _binance_formula(
    side: int, entry: float, quantity: float, wallet: float, rate: float, amount: float
) -> float:
    """prices.binance_formula with no other positions (cross adjustment 0.0)."""
    numerator = wallet + 0.0 + amount - side * quantity * entry
    return numerator / (quantity * rate - side * quantity)


def _binance_price(
    side: int,
    entry: float,
    quantity: float,
    wallet: float,
    floors: list[float],
    rates: list[float],
    amounts: list[float],
) -> float:
    """prices.solve_binance_brackets: bracket of the notional at the liquidation price."""
    count = len(floors)
    index = _bracket_index(floors, quantity * entry)
    visited = [False] * count
    while True:
        price = _binance_formula(side, entry, quantity, wallet, rates[index], amounts[index])
        new_index = _bracket_index(floors, quantity * price)
        if new_index == index:
            return price
        visited[index] = True
        if visited[new_index]:
            break
        index = new_index
    # Envelope (prices.binance_envelope_price): max over brackets for a long, min for a short.
    best = _binance_formula(side, entry, quantity, wallet, rates[0], amounts[0])
    for index in range(1, count):
        candidate = _binance_formula(side, entry, quantity, wallet, rates[index], amounts[index])
        if (side > 0 and candidate > best) or (side < 0 and candidate < best):
            best = candidate
    return best


def liquidation_price_raw(
    venue: int,
    side: int,
    entry: float,
    quantity: float,
    leverage: float,
    wallet: float,
    taker_fee: float,
    floors: list[float],
    caps: list[float],
    rates: list[float],
    amounts: list[float],
    max_leverages: list[float],
) -> float:
    """The liquidation price the broker computes for a position (before the long's clamp at 0).

    Binance: the bracket is the one holding the notional at the liquidation price
    (:func:`backtest.liquidation.prices.solve_binance_brackets`).  Bybit, OKX, Hyperliquid: the
    bracket holding the position's notional gives the rate (Bybit also its deduction) as in
    :func:`backtest.engine.venues.position_maintenance`, then the venue's formula
    (:mod:`backtest.liquidation.prices` cites each venue's documentation).

    Raises
    ------
    ConfigError
        Where :func:`backtest.liquidation.prices.liquidation_price` would: a negative wallet
        balance (cross margin after losses beyond the wallet) or a leverage above the maximum
        for the notional.
    """
    notional = quantity * entry
    if venue == _BINANCE:
        allowed = max_leverages[0]
        if notional <= caps[-1]:
            allowed = min(allowed, max_leverages[bisect_left(caps, notional)])
        if leverage > allowed or notional > caps[-1]:
            raise ConfigError(
                f"leverage {leverage:g} is above the maximum {allowed:g}x allowed for a position "
                f"of {notional:,.2f} notional"
            )
    else:
        held = min(max(notional, 0.0), caps[-1])
        index = _bracket_index(floors, held)
        rate = rates[index]
        allowed = max_leverages[bisect_left(caps, held)]
        if leverage > allowed:
            raise ConfigError(
                f"leverage {leverage:g} is above max_leverage {allowed:g}; allowed range is "
                f"(0, {allowed:g}]"
            )
    if not (wallet >= 0.0 and math.isfinite(wallet)):
        raise ConfigError(
            f"wallet_balance must be a finite number >= 0 (quote currency), got {wallet!r}"
        )
    if venue == _BINANCE:
        return _binance_price(side, entry, quantity, wallet, floors, rates, amounts)
    if venue == _BYBIT:
        maintenance_margin = quantity * entry * rate - amounts[index]
        return entry - side * (wallet - maintenance_margin) / quantity
    if venue == _OKX:
        return (entry - side * wallet / quantity) / (1.0 - side * (rate + taker_fee))
    margin_available = wallet - quantity * entry * rate  # hyperliquid
    return entry - side * margin_available / quantity / (1.0 - rate * side)


# --------------------------------------------------------------------------------------------
# backtrader's Position.update
# --------------------------------------------------------------------------------------------


def position_update(
    old_size: float, old_price: float, size: float, price: float
) -> tuple[float, float, float, float]:
    """``(new size, new price, opened, closed)`` after adding ``size`` at ``price``.

    backtrader's ``Position.update``, the same float operations in the same order.
    """
    new_size = old_size + size
    if not new_size:
        return new_size, 0.0, 0.0, size
    if not old_size:
        return new_size, price, size, 0.0
    if old_size > 0:
        if size > 0:
            return new_size, (old_price * old_size + size * price) / new_size, size, 0.0
        if new_size > 0:
            return new_size, old_price, 0.0, size
        return new_size, price, new_size, -old_size
    if size < 0:
        return new_size, (old_price * old_size + size * price) / new_size, size, 0.0
    if new_size < 0:
        return new_size, old_price, 0.0, size
    return new_size, price, new_size, -old_size


def slippage_fraction_raw(
    model: int, slippage: float, open_: float, high: float, low: float
) -> float:
    """backtest.engine.broker.slippage_fraction with the model as a code (0 fixed, 1 volatility)."""
    if slippage == 0.0:
        return 0.0
    if model == 1:
        if not (open_ > 0.0 and high >= low):
            return 0.0
        return slippage * (high - low) / open_
    return slippage


# --------------------------------------------------------------------------------------------
# The simulation
# --------------------------------------------------------------------------------------------


def simulate_reference(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    mark_open: np.ndarray,
    mark_high: np.ndarray,
    mark_low: np.ndarray,
    mark_close: np.ndarray,
    funding_rate: np.ndarray,
    target: np.ndarray,
    reason: np.ndarray,
    stop: np.ndarray,
    take_profit: np.ndarray,
    cash: float,
    leverage: float,
    taker_fee: float,
    maker_fee: float,
    liquidation_fee: float,
    mult: float,
    funding_on: int,
    slippage: float,
    tier_floor: np.ndarray,
    tier_cap: np.ndarray,
    tier_rate: np.ndarray,
    tier_cum: np.ndarray,
    tier_max_leverage: np.ndarray,
    venue_code: int,
    margin_mode_code: int,
    slippage_model_code: int,
) -> tuple[Any, ...]:
    """Run the raw simulation (arguments and result: see the module docstring).

    Each bar ``i`` goes through the steps of ``PerpetualBroker.next`` then the strategy:

    1. *Before orders* (a position is open): funding settlement (``size × mark × mult ×
       rate`` with mark = mark open, else open; cash and wallet pay it; cross margin
       recomputes the liquidation price), then the gap check (mark open, else open, at or
       beyond the liquidation price: liquidated at the traded open or the liquidation price,
       whichever is worse, which cancels the order waiting for this bar).
    2. *Submission check* (``check_submitted``) of the order sent at the previous close, at
       the price it was sent at: cash after closing (released margin minus fee) and opening
       (margin at leverage plus taker fee) must stay >= 0, and the tier table must allow the
       leverage for the position's notional; an order that only reduces or closes is always
       accepted (one order per bar here, so no later order of the batch sees the cash it
       leaves).  Exit orders placed at the previous close (a stop, a take-profit:
       alternatives of one OCO pair) close the whole position, which nothing has changed
       since they were placed, so the broker's check, which needs no margin for a close,
       always accepts them.
    3. *Fill* of the working orders in the order they were accepted: a market order at the
       open (slippage against the order); a stop when the open (a gap) or the bar's range
       reaches its level, at the open or at the level (slippage, taker fee); a take-profit
       when the open or the range reaches its level, at the open or at the level (no
       slippage, maker fee).  A filled exit cancels the other one.  Closing part first
       (margin released, PnL settled from the last mark, fee), then the opening part
       (refused, keeping the close, when the margin plus fee exceeds the cash or the tiers
       refuse it).  The liquidation price is recomputed whenever the position changes.
    4. *Mark to market* at the close: ``cash += size × (close − last mark) × mult``;
       equity ``value = cash + margin used``.
    5. *After orders*: the range check (mark low/high, else low/high, at or beyond the
       liquidation price): liquidated at the liquidation price.  A liquidation books the loss
       (capped at the isolated margin, or at the wallet in cross mode) plus the clearance fee
       (capped at what is left) at the booked (bankruptcy) price.
    6. *Decision* at the close: ``target_exposure(target[i])`` sends a market order for
       ``value × target / close − position`` (none when NaN or within 1e-12 relative).  When
       it sends an order or the bar gives a level, the working exits are cancelled; the
       bar's levels are then placed at once for the position held (no order sent), or kept
       for the next close when an order was sent (placed then if the position is on the
       side the target asked for).  Other bars place the levels kept from the bar before.
    """
    count = len(close)
    opens, highs, lows, closes = open_.tolist(), high.tolist(), low.tolist(), close.tolist()
    mark_opens, mark_highs, mark_lows = mark_open.tolist(), mark_high.tolist(), mark_low.tolist()
    del mark_close  # the cross formula's other positions use it; one symbol has none
    rates_funding = funding_rate.tolist()
    targets = target.tolist()
    reasons = reason.tolist()
    stops, take_profits = stop.tolist(), take_profit.tolist()
    floors, caps = tier_floor.tolist(), tier_cap.tolist()
    mmrs, cums, max_leverages = tier_rate.tolist(), tier_cum.tolist(), tier_max_leverage.tolist()
    max_notional = caps[-1]
    cross = margin_mode_code == 1
    cash = float(cash)
    wallet = cash
    fees_paid = funding_paid = margin_used = 0.0
    # backtrader's Position (size, price, adjbase) and the broker's _PositionState.
    pos_size = 0.0
    pos_price = 0.0
    adjbase = _NAN
    margin = 0.0
    side = 0
    liquidation = _NAN
    # The order sent at the previous close, waiting for the submission check.
    has_order = False
    order_size = order_price = 0.0
    order_reason = 0
    # Accepted orders still to fill: [remaining size, created size, created price, reason].
    # A market order fills whole on the next bar, except when the broker's dust snap closes
    # the position exactly: the order's float residue then stays pending and fills (opening a
    # dust position) on the following bar, as backtrader keeps a partly executed order alive.
    # Exit orders are pending too: [remaining, created size, level, reason 0, kind 1 or 2].
    pending: list[list[Any]] = []
    # Exit orders placed at the previous close, waiting for the submission check:
    # [size, level, kind], the stop first.
    submitted_exits: list[list[Any]] = []
    # Levels of the bar whose order is still to fill: (stop, take-profit, side) or None.
    deferred: tuple[float, float, int] | None = None

    values = np.empty(count)
    cashes = np.empty(count)
    sizes = np.empty(count)
    margins = np.empty(count)
    liquidations = np.empty(count)
    funding_cums = np.empty(count)
    fee_cums = np.empty(count)
    fills: list[tuple[Any, ...]] = []
    fundings: list[tuple[Any, ...]] = []
    liquidated: list[tuple[Any, ...]] = []
    rejected: list[tuple[Any, ...]] = []

    def update_liquidation() -> None:
        nonlocal liquidation
        if not pos_size:
            liquidation = _NAN
            return
        sign = 1 if pos_size > 0 else -1
        price = liquidation_price_raw(
            venue_code,
            sign,
            pos_price,
            abs(pos_size) * mult,
            leverage,
            max(wallet, 0.0) if cross else margin,  # a bankrupt cross wallet counts as 0
            taker_fee,
            floors,
            caps,
            mmrs,
            cums,
            max_leverages,
        )
        liquidation = max(price, 0.0) if pos_size > 0 else price

    def refusal(notional: float) -> tuple[int, float, float]:
        """PerpetualBroker._leverage_refusal: (code, needed, available), code 0 when allowed."""
        if notional > max_notional:
            return _REJECT_CAP, notional, max_notional
        allowed = max_leverages[bisect_left(caps, notional)]
        if leverage > allowed:
            return _REJECT_TIER, leverage, allowed
        return 0, 0.0, 0.0

    def submission_check(
        size: float, price: float, fee_rate: float
    ) -> tuple[float, int, float, float, float]:
        """PerpetualBroker._submission_cash of one order against the position and the cash.

        Returns the cash left (negative: refused) and, when refused, the rejection's code,
        notional, needed and available amounts.
        """
        check = cash
        new_size, _, opened, closed = position_update(pos_size, pos_price, size, price)
        refused = 0
        needed = available = notional = 0.0
        if closed:
            if pos_size:
                check += margin * min(abs(closed) / abs(pos_size), 1.0)
            check -= abs(closed) * fee_rate * price * mult
        if opened:
            continuing = abs(new_size) > abs(opened)
            notional = abs(new_size) * mult * (pos_price if continuing else price)
            refused, needed, available = refusal(notional)
            if refused:
                check = -1.0
            else:
                available = check
                check -= abs(opened) * price * mult / leverage
                check -= abs(opened) * fee_rate * price * mult
                needed = available - check
                notional = abs(opened) * mult * price
        elif check < 0.0:
            check = 0.0  # a reduce or close needs no margin, even from an underwater account
        if check < 0.0 and not refused:  # only an opening order gets here
            refused = _REJECT_SUBMISSION
        return check, refused, notional, needed, available

    def fill(
        bar: int,
        size: float,
        price: float,
        kind: int,
        code: int,
        created_size: float,
        created_price: float,
        fee_override: float,
        fee_rate: float,
    ) -> tuple[float, bool]:
        """PerpetualBroker._fill (+ _book): execute ``size`` at ``price``.

        Returns the size executed and whether the opening part was refused (the order dies).
        """
        nonlocal cash, wallet, fees_paid, margin_used, pos_size, pos_price, adjbase
        nonlocal margin, side, liquidation
        old_size = pos_size
        entry_before = pos_price
        if old_size and (old_size + size) and abs(old_size + size) <= _DUST * abs(old_size):
            size = -old_size  # snap a float residue to an exact close
        psize, pprice, opened, closed = position_update(old_size, entry_before, size, price)
        available_cash = cash
        pnl = closed_fee = opened_fee = posted = released = 0.0
        if closed:
            pnl = -closed * (price - entry_before) * mult
            released = margin * min(abs(closed) / abs(old_size), 1.0)
            available_cash += released
            available_cash += -closed * (price - adjbase) * mult
            if fee_override == fee_override:
                closed_fee = fee_override
            else:
                closed_fee = abs(closed) * fee_rate * price * mult
            available_cash -= closed_fee
            cash = available_cash
        refused_open = False
        if opened:
            continuing = abs(psize) > abs(opened)
            opened_value = abs(opened) * price * mult
            notional = abs(psize) * mult * (pprice if continuing else price)
            refused, needed, allowed = refusal(notional)
            posted = opened_value / leverage
            opened_fee = abs(opened) * fee_rate * price * mult
            available = available_cash
            available_cash -= posted + 0.0 + opened_fee
            if refused or available_cash < 0.0:
                if not refused:
                    refused, needed, allowed = _REJECT_FILL, posted + 0.0 + opened_fee, available
                    notional = abs(opened_value)
                rejected.append(
                    (bar, created_size, created_price, refused, code, notional, needed, allowed)
                )
                refused_open = True
                opened = 0.0
                opened_fee = posted = 0.0
            else:
                if continuing:
                    available_cash += (psize - opened) * (price - adjbase) * mult
                adjbase = price
                cash = available_cash
        executed = closed + opened
        if executed:
            pos_size, pos_price, _, _ = position_update(pos_size, pos_price, executed, price)
            # _book: margin, leverage and liquidation price after the fill.
            margin += posted - released
            margin_used += posted - released
            if not pos_size:
                margin_used -= margin
                margin = 0.0
                side = 0
                liquidation = _NAN
            else:
                side = 1 if pos_size > 0 else -1
                update_liquidation()
            wallet += pnl - closed_fee - opened_fee
            fees_paid += closed_fee + opened_fee
            fills.append(
                (
                    bar,
                    executed,
                    price,
                    closed_fee + opened_fee,
                    kind,
                    code,
                    pnl,
                    closed,
                    opened,
                    closed_fee,
                    opened_fee,
                )
            )
        return executed, refused_open

    def liquidate(bar: int, gap: bool) -> None:
        """PerpetualBroker._liquidate (one symbol: no other position to close)."""
        nonlocal has_order
        size = pos_size
        entry = pos_price
        if gap:
            traded_open = opens[bar]
            market = min(traded_open, liquidation) if size > 0 else max(traded_open, liquidation)
        else:
            market = liquidation
        if slippage:
            fraction = slippage_fraction_raw(
                slippage_model_code, slippage, opens[bar], highs[bar], lows[bar]
            )
            market = market * (1.0 + (-1 if size > 0 else 1) * fraction)
        quantity = abs(size)
        price_loss = (entry - market) * size * mult
        nominal_fee = abs(size) * liquidation_fee * market * mult
        cap = wallet if cross else margin
        cap = max(cap, 0.0)
        if price_loss >= cap:
            booked_loss, fee = cap, 0.0
        else:
            booked_loss = price_loss
            fee = min(nominal_fee, max(cap - price_loss, 0.0))
        booked_price = entry - booked_loss / (size * mult)
        has_order = False  # an exchange cancels the working orders on liquidation
        pending.clear()
        submitted_exits.clear()
        liquidated.append(
            (
                bar,
                1 if size > 0 else -1,
                quantity,
                entry,
                liquidation,
                market,
                booked_price,
                booked_loss + fee,
                fee,
                margin,
                gap,
            )
        )
        fill(bar, -size, booked_price, _FILL_LIQUIDATION, 0, -size, market, fee, taker_fee)

    for bar in range(count):
        # 1. before orders: funding, then a gap through the liquidation price.
        if side:
            if funding_on:
                rate = rates_funding[bar]
                if rate == rate:
                    mark = mark_opens[bar]
                    if mark != mark:
                        mark = opens[bar]
                    payment = pos_size * mark * mult * rate
                    cash -= payment
                    wallet -= payment
                    funding_paid += payment
                    fundings.append((bar, rate, mark, pos_size, payment))
                    if cross:
                        update_liquidation()
            opening = mark_opens[bar]
            if opening != opening:
                opening = opens[bar]
            if (side > 0 and opening <= liquidation) or (side < 0 and opening >= liquidation):
                liquidate(bar, True)
        # 2. submission check of the order sent at the previous close, or of the exits.
        if has_order:
            has_order = False
            check, refused, notional, needed, available = submission_check(
                order_size, order_price, taker_fee
            )
            if check >= 0.0:
                pending.append([order_size, order_size, order_price, order_reason, _FILL_MARKET])
            else:
                rejected.append(
                    (
                        bar,
                        order_size,
                        order_price,
                        refused,
                        order_reason,
                        notional,
                        needed,
                        available,
                    )
                )
        if submitted_exits:
            # Exits are placed at a close as the whole position (``-pos_size``) and checked here,
            # before anything can change it (funding moves no size; a gap liquidation cancels
            # them): a close needs no margin, so the broker's check always accepts them.
            for size, level, kind in submitted_exits:
                pending.append([size, size, level, 0, kind])
            submitted_exits.clear()
        # 3. the fills of the working orders, oldest first: market orders at the open (moved
        # against the order by slippage), exits when the open or the range reaches the level.
        if pending:
            waiting = pending[:]
            pending.clear()
            cancelled: list[Any] = []
            for order in waiting:
                if any(order is other for other in cancelled):
                    continue
                remaining = order[0]
                kind = order[4]
                fee_rate = taker_fee
                if kind == _FILL_MARKET:
                    price = opens[bar]
                    slipped = True
                else:
                    level = order[2]
                    price = _NAN
                    if kind == _FILL_STOP:
                        slipped = True
                        if remaining < 0.0:
                            if opens[bar] <= level:
                                price = opens[bar]
                            elif lows[bar] <= level:
                                price = level
                        elif opens[bar] >= level:
                            price = opens[bar]
                        elif highs[bar] >= level:
                            price = level
                    else:
                        slipped = False
                        fee_rate = maker_fee
                        if remaining < 0.0:
                            if level <= opens[bar]:
                                price = opens[bar]
                            elif level <= highs[bar]:
                                price = level
                        elif level >= opens[bar]:
                            price = opens[bar]
                        elif level >= lows[bar]:
                            price = level
                    if price != price:  # not reached on this bar: keeps working
                        pending.append(order)
                        continue
                if slipped and slippage:
                    fraction = slippage_fraction_raw(
                        slippage_model_code, slippage, opens[bar], highs[bar], lows[bar]
                    )
                    price = price * (1.0 + (1 if remaining > 0 else -1) * fraction)
                executed, refused_open = fill(
                    bar, remaining, price, kind, order[3], order[1], order[2], _NAN, fee_rate
                )
                remaining -= executed
                if remaining and not refused_open:
                    order[0] = remaining
                    pending.append(order)
                if kind != _FILL_MARKET and (executed or refused_open):
                    # the filled (or dead) exit cancels the other one of its pair
                    for other in waiting:
                        if other is not order and other[4] != _FILL_MARKET:
                            cancelled.append(other)
                    pending[:] = [
                        other for other in pending if other[4] == _FILL_MARKET or other is order
                    ]
        # 4. mark to market at the close.
        if pos_size:
            cash += pos_size * (closes[bar] - adjbase) * mult
            adjbase = closes[bar]
        value = cash + margin_used
        # 5. after orders: the bar's range through the liquidation price.
        if side:
            if side > 0:
                worst = mark_lows[bar]
                if worst != worst:
                    worst = lows[bar]
                hit = worst <= liquidation
            else:
                worst = mark_highs[bar]
                if worst != worst:
                    worst = highs[bar]
                hit = worst >= liquidation
            if hit:
                liquidate(bar, False)
                value = cash + margin_used
        values[bar] = value
        cashes[bar] = cash
        sizes[bar] = pos_size
        margins[bar] = margin_used
        liquidations[bar] = liquidation if side else _NAN
        funding_cums[bar] = funding_paid
        fee_cums[bar] = fees_paid
        # 6. the decision at the close (target_exposure); the last bar's would never fill.
        exposure = targets[bar]
        sent = False
        wanted = 0.0
        if exposure == exposure and bar + 1 < count:
            price = closes[bar]
            if price > 0.0:
                wanted = value * exposure / price
                current = pos_size
                difference = wanted - current
                if abs(difference) > _TARGET_TOLERANCE * max(abs(wanted), abs(current), 1.0):
                    has_order = sent = True
                    order_size = -current if (not wanted and current) else difference
                    order_price = price
                    order_reason = reasons[bar]
        # the exits: placed at this close for the position held, kept for the next close when
        # an order was sent, cancelled when the position changes or new levels come.
        stop_level, profit_level = stops[bar], take_profits[bar]
        given = stop_level == stop_level or profit_level == profit_level
        place: tuple[float, float] | None = None
        if sent or given:
            pending[:] = [order for order in pending if order[4] == _FILL_MARKET]
            deferred = None
            if sent:
                if given and wanted:
                    deferred = (stop_level, profit_level, 1 if wanted > 0 else -1)
            else:
                place = (stop_level, profit_level)
        elif deferred is not None:
            if (pos_size > 0 and deferred[2] > 0) or (pos_size < 0 and deferred[2] < 0):
                place = (deferred[0], deferred[1])
            deferred = None
        if place is not None and pos_size and bar + 1 < count:
            if place[0] == place[0]:
                submitted_exits.append([-pos_size, place[0], _FILL_STOP])
            if place[1] == place[1]:
                submitted_exits.append([-pos_size, place[1], _FILL_TAKE_PROFIT])

    return (
        values,
        cashes,
        sizes,
        margins,
        liquidations,
        funding_cums,
        fee_cums,
        *_columns(fills, (np.int64, *(np.float64,) * 3, np.int8, np.int16, *(np.float64,) * 5)),
        *_columns(fundings, (np.int64, *(np.float64,) * 4)),
        *_columns(liquidated, (np.int64, np.int8, *(np.float64,) * 8, np.bool_)),
        *_columns(
            rejected, (np.int64, np.float64, np.float64, np.int8, np.int16, *(np.float64,) * 3)
        ),
        float(values[-1]) if count else cash,
    )


def _columns(rows: list[tuple[Any, ...]], dtypes: tuple[Any, ...]) -> list[np.ndarray]:
    """Rows of event tuples as one array per column with the given dtypes."""
    return [
        np.array([row[column] for row in rows], dtype=dtype) for column, dtype in enumerate(dtypes)
    ]
