"""Exchange-exact liquidation prices of one perpetual-futures position, and their inverse.

Four venues, each formula as its exchange documents it (the docstrings cite the page):

- ``"binance"``: Binance USDⓈ-M, one-way mode, isolated or cross margin, with the maintenance
  bracket chosen by the position notional *at the liquidation price* (see
  :func:`solve_liquidation`);
- ``"bybit"``: Bybit USDT perpetual, isolated margin;
- ``"okx"``: OKX USDT-margined swap, isolated margin (maintenance rate plus taker fee);
- ``"hyperliquid"``: Hyperliquid perpetual, isolated margin.

Every formula is affine in the entry price and the margin, which is what makes the inverse
(:func:`entry_price_for_liquidation`) a closed form and the scale-free factor
(:func:`liquidation_factor`) exact.  The scalar functions use plain float arithmetic (no
NumPy): the broker calls them every time a position changes.  :func:`liquidation_prices` is the
vectorised form over arrays of entries and leverages (compiled kernel ``ext/_prices.pyx``; its
pure-Python twin is :mod:`backtest.liquidation.reference.prices`).

Prices are in quote currency (USDT), quantities in base units (contracts = coins on USDⓈ-M).
The liquidation price is the *mark* price at which the exchange liquidates; fees, funding and
the insurance-fund clearance are not part of it (except OKX, whose formula includes the
taker fee of the liquidation order).
"""

from __future__ import annotations

import bisect
import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backtest.errors import ConfigError
from backtest.liquidation.tiers import LeverageTiers

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Venues with an exact formula, and the code the kernel uses for each.
VENUE_CODES: dict[str, int] = {"binance": 0, "bybit": 1, "okx": 2, "hyperliquid": 3}
VENUES: tuple[str, ...] = tuple(VENUE_CODES)
#: Other accepted spellings (ccxt exchange ids) of a venue.
VENUE_ALIASES: dict[str, str] = {"binanceusdm": "binance"}
#: Side name -> sign used in the formulas (+1 long, -1 short).
SIDE_SIGNS: dict[str, int] = {"long": 1, "short": -1}
MARGIN_MODES: tuple[str, ...] = ("isolated", "cross")
#: OKX regular-user (Lv1) taker fee of USDT-margined swaps, used when ``taker_fee`` is omitted.
OKX_DEFAULT_TAKER_FEE = 0.0005

#: How the Binance bracket was settled (see :func:`solve_binance_brackets`).
RESOLVED_FIXED = "fixed"
RESOLVED_ITERATION = "iteration"
RESOLVED_ENVELOPE = "envelope"


@dataclass(frozen=True, slots=True)
class OtherPosition:
    """Another position in the same cross-margin wallet (Binance cross mode).

    Attributes
    ----------
    quantity : float
        Size in base units (> 0).
    entry_price, mark_price : float
        Its entry price and current mark price.
    maintenance_margin_rate, maintenance_amount : float
        Its bracket's MMR and ``cum`` (maintenance margin is ``quantity·mark·MMR − cum``).
    side : str
        ``"long"`` or ``"short"``.
    """

    quantity: float
    entry_price: float
    mark_price: float
    maintenance_margin_rate: float
    maintenance_amount: float = 0.0
    side: str = "long"

    @property
    def maintenance_margin(self) -> float:
        """Maintenance margin at the mark price (Binance's TMM contribution)."""
        notional = self.quantity * self.mark_price
        return notional * self.maintenance_margin_rate - self.maintenance_amount

    @property
    def unrealized_pnl(self) -> float:
        """Unrealised PnL at the mark price (Binance's UPNL contribution)."""
        return side_sign(self.side) * self.quantity * (self.mark_price - self.entry_price)


@dataclass(frozen=True, slots=True)
class LiquidationSolution:
    """A liquidation price with how it was obtained.

    Attributes
    ----------
    price : float
        Liquidation (mark) price; may be <= 0 for a long that cannot be liquidated.
    maintenance_margin_rate, maintenance_amount : float
        Rate and amount (Binance ``cum``) of the bracket used.
    tier_index : int or None
        0-based bracket of ``tiers`` used (the one holding the notional at the liquidation
        price), None when the rate was given explicitly.
    rounds : int
        Bracket re-selections made (0 when the rate was given).
    resolved_by : str
        ``"fixed"`` (explicit rate), ``"iteration"`` (bracket stable) or ``"envelope"`` (the
        iteration revisited a bracket; see :func:`solve_binance_brackets`).
    wallet_balance : float
        Margin / wallet balance the formula used.
    """

    price: float
    maintenance_margin_rate: float
    maintenance_amount: float
    tier_index: int | None
    rounds: int
    resolved_by: str
    wallet_balance: float


# --------------------------------------------------------------------------------------------
# The venue formulas (literal, as documented).  side is +1 for long, -1 for short.
# --------------------------------------------------------------------------------------------


def binance_formula(
    side: int,
    entry_price: float,
    quantity: float,
    wallet_balance: float,
    maintenance_margin_rate: float,
    maintenance_amount: float,
    cross_adjustment: float = 0.0,
) -> float:
    """Binance USDⓈ-M liquidation price, one-way mode, for one given bracket.

    ``LP = (WB − TMM₁ + UPNL₁ + cum − side·Q·EP) / (Q·MMR − side·Q)``

    where WB is the wallet balance (isolated: the position's margin), TMM₁ and UPNL₁ the
    maintenance margin and unrealised PnL of all *other* positions in the cross wallet (0 in
    isolated mode; ``cross_adjustment = UPNL₁ − TMM₁``), cum the bracket's maintenance amount,
    Q the size, EP the entry price and MMR the bracket's maintenance margin rate.

    Source: Binance Support, "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts",
    https://www.binance.com/en/support/faq/how-to-calculate-liquidation-price-of-usd%E2%93%A2-m-futures-contracts-b3c689c1f50a44cabb3a84e663b81d93
    (one-way mode formula; the hedge-mode terms vanish in one-way mode).
    """
    numerator = (
        wallet_balance + cross_adjustment + maintenance_amount - side * quantity * entry_price
    )
    return numerator / (quantity * maintenance_margin_rate - side * quantity)


def bybit_formula(
    side: int,
    entry_price: float,
    quantity: float,
    position_margin: float,
    maintenance_margin_rate: float,
    maintenance_amount: float = 0.0,
) -> float:
    """Bybit USDT-contract liquidation price, isolated margin.

    Long: ``LP = EP − (IM + extra − MM) / Q``; short: ``LP = EP + (IM + extra − MM) / Q``, with
    ``MM = Q·EP·MMR − deduction``.  With ``position_margin = IM + extra = Q·EP/L + extra`` this
    is the help centre's ``LP = EP·(1 − 1/L + MMR) − extra/Q`` for a long (mirrored for a
    short).  ``maintenance_amount`` is the risk-limit tier's maintenance-margin deduction (0 on
    the first tier).

    Source: Bybit Help Center, "Liquidation Price (USDT Contract)",
    https://www.bybit.com/en/help-center/article/Liquidation-Price-USDT-Contract
    """
    maintenance_margin = quantity * entry_price * maintenance_margin_rate - maintenance_amount
    return entry_price - side * (position_margin - maintenance_margin) / quantity


def okx_formula(
    side: int,
    entry_price: float,
    quantity: float,
    margin: float,
    maintenance_margin_rate: float,
    taker_fee: float,
) -> float:
    """OKX USDT-margined swap liquidation price, isolated margin.

    Long: ``LP = (EP − margin/Q) / (1 − (MMR + fee))``; short:
    ``LP = (EP + margin/Q) / (1 + (MMR + fee))``: liquidation happens when margin plus PnL
    falls to maintenance margin plus the taker fee of closing, both charged on the notional at
    the liquidation price.

    Source: OKX Help, "Tiered maintenance margin ratio rules" (isolated margin ratio
    ``(margin + PnL) / (face value × |contracts| × mark × (tier MMR + fee rate))``),
    https://www.okx.com/help/v-tiered-maintenance-margin-ratio-rules ; the same estimate
    freqtrade implements for OKX.
    """
    return (entry_price - side * margin / quantity) / (
        1.0 - side * (maintenance_margin_rate + taker_fee)
    )


def hyperliquid_formula(
    side: int,
    entry_price: float,
    quantity: float,
    margin: float,
    maintenance_margin_rate: float,
) -> float:
    """Hyperliquid perpetual liquidation price, isolated margin.

    ``LP = EP − side · margin_available / Q / (1 − l·side)`` with
    ``l = 1 / MAINTENANCE_LEVERAGE = 1 / (2·max_leverage)`` (the maintenance margin is half
    the initial margin at the asset's maximum leverage, passed here as
    ``maintenance_margin_rate``) and ``margin_available = margin − Q·EP·l``.

    Source: Hyperliquid Docs, "Liquidations",
    https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations
    """
    margin_available = margin - quantity * entry_price * maintenance_margin_rate
    return entry_price - side * margin_available / quantity / (1.0 - maintenance_margin_rate * side)


def _affine_terms(
    venue: str,
    side: int,
    quantity: float,
    maintenance_margin_rate: float,
    maintenance_amount: float,
    cross_adjustment: float,
    taker_fee: float,
) -> tuple[float, float, float]:
    """Return ``(a, b, c)`` with ``LP = a·EP + b·WB + c`` for one bracket (same formulas)."""
    rate = maintenance_margin_rate
    if venue == "binance":
        denominator = quantity * (rate - side)
        return (
            -side * quantity / denominator,
            1.0 / denominator,
            (cross_adjustment + maintenance_amount) / denominator,
        )
    if venue == "bybit":
        return 1.0 + side * rate, -side / quantity, -side * maintenance_amount / quantity
    if venue == "okx":
        denominator = 1.0 - side * (rate + taker_fee)
        return 1.0 / denominator, -side / (quantity * denominator), 0.0
    denominator = 1.0 - side * rate  # hyperliquid
    return 1.0 / denominator, -side / (quantity * denominator), 0.0


def _venue_formula(
    venue: str,
    side: int,
    entry_price: float,
    quantity: float,
    wallet_balance: float,
    rate: float,
    amount: float,
    cross_adjustment: float,
    taker_fee: float,
) -> float:
    if venue == "binance":
        return binance_formula(
            side, entry_price, quantity, wallet_balance, rate, amount, cross_adjustment
        )
    if venue == "bybit":
        return bybit_formula(side, entry_price, quantity, wallet_balance, rate, amount)
    if venue == "okx":
        return okx_formula(side, entry_price, quantity, wallet_balance, rate, taker_fee)
    return hyperliquid_formula(side, entry_price, quantity, wallet_balance, rate)


# --------------------------------------------------------------------------------------------
# Binance bracket selection
# --------------------------------------------------------------------------------------------


def bracket_index(floors: Sequence[float], notional: float) -> int:
    """0-based bracket holding ``notional`` (floor inclusive), clamped to the table."""
    return max(0, min(bisect.bisect_right(floors, notional) - 1, len(floors) - 1))


def solve_binance_brackets(
    side: int,
    entry_price: float,
    quantity: float,
    wallet_balance: float,
    cross_adjustment: float,
    floors: Sequence[float],
    rates: Sequence[float],
    amounts: Sequence[float],
) -> tuple[float, int, int, str]:
    """Binance liquidation price with the bracket picked by notional at the liquidation price.

    Start from the bracket of the entry notional ``Q·EP``; compute LP with it; re-pick the
    bracket of ``Q·LP``; repeat until the bracket no longer changes (usually one or two
    rounds).  A stable bracket is self-consistent, and the self-consistent price is unique: the
    maintenance margin ``MM(N) = N·MMR_n − cum_n`` is continuous and convex in N (rates rise
    with notional, cum makes it continuous) with slope < Q·1, so the margin balance minus
    maintenance margin is strictly monotone in the price and crosses zero once.

    Ping-pong: should the iteration come back to a bracket it already tried (it can alternate
    between two brackets near a boundary, or wander), it stops and returns the *envelope*
    solution, which is the same unique root written in closed form: each bracket's straight
    line ``N·MMR_n − cum_n`` lies below the convex ``MM(N)``, so every bracket's LP is a lower
    bound for a long (upper bound for a short) and the root is ``max_n LP_n`` for a long,
    ``min_n LP_n`` for a short.  The result is therefore deterministic and the same whichever
    way it is reached; at most ``len(floors)`` rounds are made.

    Parameters
    ----------
    side : int
        +1 long, -1 short.
    entry_price, quantity, wallet_balance, cross_adjustment : float
        As in :func:`binance_formula`.
    floors, rates, amounts : sequence of float
        Bracket floors (first 0), maintenance margin rates and ``cum`` of a valid table.

    Returns
    -------
    tuple
        ``(price, bracket index of Q·price, rounds, "iteration" or "envelope")``.
    """
    count = len(floors)
    index = bracket_index(floors, quantity * entry_price)
    visited = [False] * count
    rounds = 0
    while True:
        rounds += 1
        price = binance_formula(
            side,
            entry_price,
            quantity,
            wallet_balance,
            rates[index],
            amounts[index],
            cross_adjustment,
        )
        new_index = bracket_index(floors, quantity * price)
        if new_index == index:
            return price, index, rounds, RESOLVED_ITERATION
        visited[index] = True
        if visited[new_index]:
            break
        index = new_index
    best = binance_envelope_price(
        side, entry_price, quantity, wallet_balance, cross_adjustment, rates, amounts
    )
    return best, bracket_index(floors, quantity * best), rounds, RESOLVED_ENVELOPE


def binance_envelope_price(
    side: int,
    entry_price: float,
    quantity: float,
    wallet_balance: float,
    cross_adjustment: float,
    rates: Sequence[float],
    amounts: Sequence[float],
) -> float:
    """Binance liquidation price over a whole bracket table in closed form.

    ``max_n LP_n`` for a long, ``min_n LP_n`` for a short, where ``LP_n`` is
    :func:`binance_formula` with bracket n: the maintenance margin of a consistent table is
    the upper envelope of the bracket lines ``N·MMR_n − cum_n``, so each bracket's price bounds
    the true one from the safe side (see :func:`solve_binance_brackets`).
    """
    best = binance_formula(
        side, entry_price, quantity, wallet_balance, rates[0], amounts[0], cross_adjustment
    )
    for index in range(1, len(rates)):
        candidate = binance_formula(
            side,
            entry_price,
            quantity,
            wallet_balance,
            rates[index],
            amounts[index],
            cross_adjustment,
        )
        if (side > 0 and candidate > best) or (side < 0 and candidate < best):
            best = candidate
    return best


# --------------------------------------------------------------------------------------------
# Argument checks (one clear line each)
# --------------------------------------------------------------------------------------------


def canonical_venue(venue: str) -> str:
    """Return the canonical venue name, or raise ConfigError with the closest match."""
    name = str(venue).strip().lower()
    if name in VENUE_CODES:
        return name
    if name in VENUE_ALIASES:
        return VENUE_ALIASES[name]
    close = difflib.get_close_matches(name, [*VENUES, *VENUE_ALIASES], n=1, cutoff=0.5)
    hint = f"did you mean {VENUE_ALIASES.get(close[0], close[0])!r}? " if close else ""
    raise ConfigError(f"unknown venue {venue!r}: {hint}allowed venues are {', '.join(VENUES)}")


def side_sign(side: str) -> int:
    """Return +1 for ``"long"``, -1 for ``"short"``, or raise ConfigError."""
    sign = SIDE_SIGNS.get(str(side).strip().lower())
    if sign is None:
        close = difflib.get_close_matches(str(side).lower(), list(SIDE_SIGNS), n=1, cutoff=0.4)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown side {side!r}{hint}; allowed sides are 'long' and 'short'")
    return sign


def _positive(name: str, value: float, unit: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number > 0 ({unit}), got {value!r}") from None
    if not (number > 0.0 and math.isfinite(number)):
        raise ConfigError(f"{name} must be a finite number > 0 ({unit}), got {value!r}")
    return number


def _non_negative(name: str, value: float, unit: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number >= 0 ({unit}), got {value!r}") from None
    if not (number >= 0.0 and math.isfinite(number)):
        raise ConfigError(f"{name} must be a finite number >= 0 ({unit}), got {value!r}")
    return number


def _rate(name: str, value: float) -> float:
    number = _non_negative(name, value, "a fraction, 0.004 = 0.4 %")
    if number >= 1.0:
        raise ConfigError(
            f"{name} {number:g} is outside the allowed range [0, 1) (a fraction, 0.004 = 0.4 %)"
        )
    return number


def check_leverage(
    leverage: float,
    notional: float,
    *,
    tiers: LeverageTiers | None = None,
    max_leverage: float | None = None,
) -> float:
    """Validate ``leverage`` for a position of ``notional``; return it as float.

    It must be > 0, at most ``max_leverage`` when given, and at most the tier table's maximum
    for that notional when ``tiers`` is given.

    Raises
    ------
    ConfigError
        Naming the leverage and the allowed range.
    """
    value = _positive("leverage", leverage, "e.g. 10 for 10x")
    if max_leverage is not None:
        cap = _positive("max_leverage", max_leverage, "the venue's maximum leverage")
        if value > cap:
            raise ConfigError(
                f"leverage {value:g} is above max_leverage {cap:g}; allowed range is (0, {cap:g}]"
            )
    if tiers is not None:
        allowed = tiers.max_leverage_for_notional(notional)
        if value > allowed:
            largest = tiers.max_notional_for_leverage(value)
            smaller = (
                f", or keep the notional <= {largest:,.0f} at this leverage" if largest else ""
            )
            raise ConfigError(
                f"leverage {value:g} is above the maximum {allowed:g}x allowed for a position "
                f"of {notional:,.2f} notional by {tiers.label}; allowed range is "
                f"(0, {allowed:g}]{smaller}"
            )
    return value


def _other_position(position: OtherPosition | Mapping[str, Any]) -> OtherPosition:
    if isinstance(position, Mapping):
        try:
            position = OtherPosition(**position)
        except TypeError as error:
            raise ConfigError(
                f"other position {dict(position)!r} is malformed ({error}); give quantity, "
                "entry_price, mark_price, maintenance_margin_rate, maintenance_amount, side"
            ) from None
    if not isinstance(position, OtherPosition):
        raise ConfigError(
            f"other_positions items must be OtherPosition or mappings, got {position!r}"
        )
    _positive("other position quantity", position.quantity, "base units")
    _positive("other position entry_price", position.entry_price, "quote currency")
    _positive("other position mark_price", position.mark_price, "quote currency")
    _rate("other position maintenance_margin_rate", position.maintenance_margin_rate)
    side_sign(position.side)
    return position


def cross_adjustment(other_positions: Iterable[OtherPosition | Mapping[str, Any]]) -> float:
    """Return ``UPNL₁ − TMM₁`` over the other positions of a cross wallet (at mark prices)."""
    total = 0.0
    for position in other_positions:
        checked = _other_position(position)
        total += checked.unrealized_pnl - checked.maintenance_margin
    return total


@dataclass(frozen=True, slots=True)
class _Setup:
    venue: str
    side: int
    quantity: float
    leverage: float
    rate: float | None
    amount: float
    cross: float
    fee: float


def _prepare(
    venue: str,
    side: str,
    quantity: float,
    leverage: float,
    *,
    tiers: LeverageTiers | None,
    maintenance_margin_rate: float | None,
    maintenance_amount: float | None,
    margin_mode: str,
    other_positions: Iterable[OtherPosition | Mapping[str, Any]],
    taker_fee: float | None,
    max_leverage: float | None,
) -> _Setup:
    """Validate everything that does not depend on the entry price."""
    name = canonical_venue(venue)
    sign = side_sign(side)
    quantity = _positive("quantity", quantity, "base units, e.g. 0.5 BTC")
    leverage = _positive("leverage", leverage, "e.g. 10 for 10x")
    mode = str(margin_mode).strip().lower()
    if mode not in MARGIN_MODES:
        raise ConfigError(
            f"unknown margin_mode {margin_mode!r}; allowed are 'isolated' and 'cross'"
        )
    others = tuple(other_positions or ())
    if mode == "cross" and name != "binance":
        raise ConfigError(
            f"margin_mode 'cross' is implemented for venue 'binance' only, not {name!r}; "
            "use margin_mode='isolated'"
        )
    if others and mode != "cross":
        raise ConfigError(
            "other_positions only apply to margin_mode='cross'; pass margin_mode='cross' or "
            "drop other_positions"
        )
    if tiers is not None and name != "binance":
        raise ConfigError(
            f"tiers are Binance USDⓈ-M brackets and apply to venue 'binance' only, not "
            f"{name!r}; pass maintenance_margin_rate for {name}"
        )
    rate = (
        None
        if maintenance_margin_rate is None
        else _rate("maintenance_margin_rate", maintenance_margin_rate)
    )
    amount = 0.0
    if maintenance_amount is not None:
        if name in ("okx", "hyperliquid"):
            raise ConfigError(
                f"maintenance_amount does not enter the {name} formula; leave it out "
                "(it is Binance's cum or Bybit's maintenance-margin deduction)"
            )
        amount = _non_negative("maintenance_amount", maintenance_amount, "quote currency")
    fee = 0.0
    if name == "okx":
        fee = OKX_DEFAULT_TAKER_FEE if taker_fee is None else _rate("taker_fee", taker_fee)
    if name == "hyperliquid" and rate is None:
        if max_leverage is None:
            raise ConfigError(
                "venue 'hyperliquid' needs the asset's max_leverage (e.g. 40 for BTC) or its "
                "maintenance_margin_rate (1 / (2 * max_leverage))"
            )
        rate = 1.0 / (2.0 * _positive("max_leverage", max_leverage, "the asset's maximum"))
    if name == "binance" and rate is None and tiers is None:
        raise ConfigError(
            "venue 'binance' needs tiers (e.g. tiers=load_tiers('BTC/USDT:USDT')) or an "
            "explicit maintenance_margin_rate (and maintenance_amount)"
        )
    if name in ("bybit", "okx") and rate is None:
        raise ConfigError(
            f"venue {name!r} needs maintenance_margin_rate (a fraction, e.g. 0.005 for 0.5 %)"
        )
    if mode == "cross" and rate is None and tiers is None:  # pragma: no cover - caught above
        raise ConfigError("cross margin needs tiers or maintenance_margin_rate")
    return _Setup(name, sign, quantity, leverage, rate, amount, cross_adjustment(others), fee)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def solve_liquidation(
    venue: str,
    side: str,
    entry_price: float,
    quantity: float,
    leverage: float,
    *,
    tiers: LeverageTiers | None = None,
    maintenance_margin_rate: float | None = None,
    maintenance_amount: float | None = None,
    wallet_balance: float | None = None,
    margin_mode: str = "isolated",
    other_positions: Iterable[OtherPosition | Mapping[str, Any]] = (),
    taker_fee: float | None = None,
    max_leverage: float | None = None,
) -> LiquidationSolution:
    """Liquidation price of a position, with the bracket used and how it was settled.

    Same arguments as :func:`liquidation_price`.
    """
    setup = _prepare(
        venue,
        side,
        quantity,
        leverage,
        tiers=tiers,
        maintenance_margin_rate=maintenance_margin_rate,
        maintenance_amount=maintenance_amount,
        margin_mode=margin_mode,
        other_positions=other_positions,
        taker_fee=taker_fee,
        max_leverage=max_leverage,
    )
    entry = _positive("entry_price", entry_price, "quote currency")
    notional = setup.quantity * entry
    check_leverage(setup.leverage, notional, tiers=tiers, max_leverage=max_leverage)
    if wallet_balance is None:
        wallet = notional / setup.leverage
    else:
        wallet = _non_negative("wallet_balance", wallet_balance, "quote currency")
    if setup.rate is not None:
        price = _venue_formula(
            setup.venue,
            setup.side,
            entry,
            setup.quantity,
            wallet,
            setup.rate,
            setup.amount,
            setup.cross,
            setup.fee,
        )
        return LiquidationSolution(price, setup.rate, setup.amount, None, 0, RESOLVED_FIXED, wallet)
    assert tiers is not None  # binance with tiers (checked in _prepare)
    rates = tiers.maintenance_margin_rates
    amounts = tiers.maintenance_amounts
    price, index, rounds, how = solve_binance_brackets(
        setup.side, entry, setup.quantity, wallet, setup.cross, tiers.floors, rates, amounts
    )
    return LiquidationSolution(price, rates[index], amounts[index], index, rounds, how, wallet)


def liquidation_price(
    venue: str,
    side: str,
    entry_price: float,
    quantity: float,
    leverage: float,
    *,
    tiers: LeverageTiers | None = None,
    maintenance_margin_rate: float | None = None,
    maintenance_amount: float | None = None,
    wallet_balance: float | None = None,
    margin_mode: str = "isolated",
    other_positions: Iterable[OtherPosition | Mapping[str, Any]] = (),
    taker_fee: float | None = None,
    max_leverage: float | None = None,
) -> float:
    """Exchange-exact liquidation (mark) price of one position.

    Parameters
    ----------
    venue : {"binance", "bybit", "okx", "hyperliquid"}
        Exchange formula (``"binanceusdm"`` is accepted for Binance).
    side : {"long", "short"}
    entry_price : float
        Average entry price (> 0, quote currency).
    quantity : float
        Position size (> 0, base units).
    leverage : float
        Leverage (> 0); sets the default margin and is checked against ``tiers`` /
        ``max_leverage``.
    tiers : LeverageTiers, optional
        Binance brackets; the bracket is chosen by the notional at the liquidation price
        (:func:`solve_binance_brackets`).  Ignored in favour of ``maintenance_margin_rate``
        when both are given (the leverage is still checked against the tiers).
    maintenance_margin_rate : float, optional
        Explicit rate in [0, 1) (bypasses bracket selection).  Required for Bybit and OKX;
        for Hyperliquid it replaces ``1 / (2·max_leverage)``.
    maintenance_amount : float, optional
        Binance ``cum`` / Bybit maintenance-margin deduction that goes with an explicit rate
        (default 0).
    wallet_balance : float, optional
        Binance: wallet balance (isolated: the position's margin; cross: the cross wallet).
        Bybit: position margin (initial + extra).  OKX, Hyperliquid: isolated margin.
        Default ``quantity·entry_price/leverage`` (the initial margin).
    margin_mode : {"isolated", "cross"}
        ``"cross"`` is Binance only.
    other_positions : iterable of OtherPosition or mappings
        Binance cross mode: the wallet's other positions (their maintenance margin and
        unrealised PnL at mark enter the formula).
    taker_fee : float, optional
        OKX only: fee of the liquidation order (default :data:`OKX_DEFAULT_TAKER_FEE`).
    max_leverage : float, optional
        Venue/asset maximum leverage: checked against ``leverage``; for Hyperliquid it also
        sets the maintenance rate ``1 / (2·max_leverage)``.

    Returns
    -------
    float
        The liquidation price.  A long whose margin covers the whole notional (1x on Binance)
        gets a price <= 0: it cannot be liquidated at a positive price.

    Raises
    ------
    ConfigError
        (a ValueError) for an unknown venue, side or margin mode, a non-positive size, price
        or leverage, a leverage above the tiers' maximum for the notional, or missing
        maintenance parameters — one line naming the argument and the allowed range.
    """
    return solve_liquidation(
        venue,
        side,
        entry_price,
        quantity,
        leverage,
        tiers=tiers,
        maintenance_margin_rate=maintenance_margin_rate,
        maintenance_amount=maintenance_amount,
        wallet_balance=wallet_balance,
        margin_mode=margin_mode,
        other_positions=other_positions,
        taker_fee=taker_fee,
        max_leverage=max_leverage,
    ).price


def entry_price_for_liquidation(
    venue: str,
    side: str,
    liquidation_price: float,
    quantity: float,
    leverage: float,
    *,
    tiers: LeverageTiers | None = None,
    maintenance_margin_rate: float | None = None,
    maintenance_amount: float | None = None,
    wallet_balance: float | None = None,
    margin_mode: str = "isolated",
    other_positions: Iterable[OtherPosition | Mapping[str, Any]] = (),
    taker_fee: float | None = None,
    max_leverage: float | None = None,
) -> float:
    """Entry price that puts the liquidation of the position at ``liquidation_price``.

    The inverse of :func:`liquidation_price` with the same arguments.  Every formula is affine
    in the entry price for a given bracket, and on Binance the bracket is the one holding the
    notional at the liquidation price, which is known here, so the answer is a closed form.
    With the default margin (``wallet_balance`` omitted) the margin scales with the entry price
    too.

    Raises
    ------
    ConfigError
        As :func:`liquidation_price`, and when no positive entry price gives that liquidation
        price (e.g. a 1x long on Binance, whose liquidation price does not depend on entry, or
        a target on the wrong side), or when the entry found needs more leverage than allowed.
    """
    setup = _prepare(
        venue,
        side,
        quantity,
        leverage,
        tiers=tiers,
        maintenance_margin_rate=maintenance_margin_rate,
        maintenance_amount=maintenance_amount,
        margin_mode=margin_mode,
        other_positions=other_positions,
        taker_fee=taker_fee,
        max_leverage=max_leverage,
    )
    try:
        target = float(liquidation_price)
    except (TypeError, ValueError):
        target = math.nan
    if not math.isfinite(target):
        raise ConfigError(
            f"liquidation_price must be a finite number (quote currency), got {liquidation_price!r}"
        )
    rate, amount = setup.rate, setup.amount
    if rate is None:
        assert tiers is not None
        tier = tiers.tiers[tiers.index_for_notional(setup.quantity * target)]
        rate, amount = tier.maintenance_margin_rate, tier.cum
    a, b, c = _affine_terms(
        setup.venue, setup.side, setup.quantity, rate, amount, setup.cross, setup.fee
    )
    if wallet_balance is None:
        slope, intercept = a + b * setup.quantity / setup.leverage, c
    else:
        wallet = _non_negative("wallet_balance", wallet_balance, "quote currency")
        slope, intercept = a, b * wallet + c
    if abs(slope) <= 1e-12 * (abs(a) + abs(b * setup.quantity / setup.leverage)):
        raise ConfigError(
            f"the liquidation price does not depend on the entry price at leverage "
            f"{setup.leverage:g} with the default margin (the margin covers the whole notional)"
            "; no entry price can be solved for — pass wallet_balance or a higher leverage"
        )
    entry = (target - intercept) / slope
    if not (entry > 0.0 and math.isfinite(entry)):
        side_name = "long" if setup.side > 0 else "short"
        raise ConfigError(
            f"no positive entry price puts a {side_name}'s liquidation at {target:g} with these "
            f"margin settings (solution {entry:g}); check the side and the liquidation price"
        )
    check_leverage(setup.leverage, setup.quantity * entry, tiers=tiers, max_leverage=max_leverage)
    return entry


def liquidation_factor(
    venue: str,
    side: str,
    leverage: float,
    *,
    notional: float,
    tiers: LeverageTiers | None = None,
    maintenance_margin_rate: float | None = None,
    maintenance_amount: float | None = None,
    taker_fee: float | None = None,
    max_leverage: float | None = None,
) -> float:
    """Scale-free liquidation factor ``LP / EP`` of an isolated position of fixed notional.

    For a position of notional ``N = Q·EP`` with the default margin ``N / leverage``, every
    term of every venue formula is proportional to EP once N is fixed (``Q = N/EP``, margin
    ``N/L``; Binance: ``LP = EP·(1/L + cum/N − side)/(MMR − side)``), and the Binance bracket
    is picked by ``Q·LP = N·(LP/EP)``, which does not depend on EP either.  So ``LP/EP`` is
    exact and the liquidation map can place a level at ``EP · factor`` for any entry price of
    that notional, computing the factor once per (side, leverage, notional).

    Parameters
    ----------
    venue, side, leverage, tiers, maintenance_margin_rate, maintenance_amount, taker_fee,
    max_leverage
        As in :func:`liquidation_price` (isolated margin, default margin).
    notional : float
        Position notional in quote currency (> 0).

    Returns
    -------
    float
        ``liquidation_price / entry_price``.
    """
    size = _positive("notional", notional, "quote currency")
    # Entry 1 and quantity N: the position has notional N and LP equals the factor.
    return liquidation_price(
        venue,
        side,
        1.0,
        size,
        leverage,
        tiers=tiers,
        maintenance_margin_rate=maintenance_margin_rate,
        maintenance_amount=maintenance_amount,
        taker_fee=taker_fee,
        max_leverage=max_leverage,
    )


def kernel_tier_arrays(
    venue: str,
    *,
    tiers: LeverageTiers | None,
    maintenance_margin_rate: float | None,
    maintenance_amount: float | None,
    max_leverage: float | None,
) -> tuple[list[float], list[float], list[float]]:
    """Bracket floors, rates and amounts the vectorised kernel uses for a venue's settings.

    With an explicit rate (or a non-Binance venue) the table has one bracket.
    """
    setup = _prepare(
        venue,
        "long",
        1.0,
        1.0,
        tiers=tiers,
        maintenance_margin_rate=maintenance_margin_rate,
        maintenance_amount=maintenance_amount,
        margin_mode="isolated",
        other_positions=(),
        taker_fee=0.0 if canonical_venue(venue) == "okx" else None,
        max_leverage=max_leverage,
    )
    if setup.rate is not None:
        return [0.0], [setup.rate], [setup.amount]
    assert tiers is not None
    return list(tiers.floors), list(tiers.maintenance_margin_rates), list(tiers.maintenance_amounts)


def liquidation_prices(
    venue: str,
    side: str,
    entry_prices: npt.ArrayLike,
    leverages: npt.ArrayLike,
    *,
    quantity: npt.ArrayLike | None = None,
    notional: npt.ArrayLike | None = None,
    tiers: LeverageTiers | None = None,
    maintenance_margin_rate: float | None = None,
    maintenance_amount: float | None = None,
    wallet_balances: npt.ArrayLike | None = None,
    taker_fee: float | None = None,
    max_leverage: float | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Vectorised :func:`liquidation_price` for isolated positions (compiled kernel).

    Parameters
    ----------
    venue, side, tiers, maintenance_margin_rate, maintenance_amount, taker_fee, max_leverage
        As in :func:`liquidation_price` (one venue and side for the whole batch).
    entry_prices, leverages : array_like of float
        Entry prices and leverages, broadcast together (1-D result).
    quantity, notional : array_like of float
        Exactly one: sizes in base units, or notionals in quote currency (then
        ``quantity = notional / entry``).  Scalars or arrays broadcastable to the entries.
    wallet_balances : array_like of float, optional
        Margins; NaN or omitted means the default ``quantity·entry/leverage``.
    out : ndarray of float64, optional
        Contiguous array to write into (returned).

    Returns
    -------
    ndarray of float64
        Liquidation prices, element-wise equal (to rounding) to the scalar function.

    Raises
    ------
    ConfigError
        As the scalar function; the message names the first offending element.
    """
    import numpy as np

    from backtest.liquidation._native import load_kernel

    if (quantity is None) == (notional is None):
        raise ConfigError("pass exactly one of quantity (base units) or notional (quote currency)")
    name = canonical_venue(venue)
    sign = side_sign(side)
    floors, rates, amounts = kernel_tier_arrays(
        name,
        tiers=tiers,
        maintenance_margin_rate=maintenance_margin_rate,
        maintenance_amount=maintenance_amount,
        max_leverage=max_leverage,
    )
    fee = 0.0
    if name == "okx":
        fee = OKX_DEFAULT_TAKER_FEE if taker_fee is None else _rate("taker_fee", taker_fee)
    size = quantity if quantity is not None else notional
    wallets = np.nan if wallet_balances is None else wallet_balances
    entry, lev, size_arr, wallet = np.broadcast_arrays(
        *(np.asarray(value, dtype=np.float64) for value in (entry_prices, leverages, size, wallets))
    )
    entry, lev, size_arr, wallet = (
        np.ascontiguousarray(np.ravel(value)) for value in (entry, lev, size_arr, wallet)
    )
    _check_array_positive("entry_prices", entry, "quote currency")
    _check_array_positive("leverages", lev, "e.g. 10 for 10x")
    _check_array_positive("quantity" if quantity is not None else "notional", size_arr, "> 0")
    bad_wallet = ~(np.isnan(wallet) | ((wallet >= 0.0) & np.isfinite(wallet)))
    if bad_wallet.any():
        index = int(np.flatnonzero(bad_wallet)[0])
        raise ConfigError(
            f"wallet_balances[{index}] = {float(wallet[index])!r} must be >= 0 "
            "(or NaN for the default)"
        )
    quantities = size_arr if quantity is not None else size_arr / entry
    notionals = quantities * entry
    _check_array_leverage(lev, notionals, tiers=tiers, max_leverage=max_leverage)
    if out is None:
        out = np.empty(entry.shape[0], dtype=np.float64)
    elif out.dtype != np.float64 or out.ndim != 1 or out.shape[0] != entry.shape[0]:
        raise ConfigError(
            f"out must be a float64 array of shape ({entry.shape[0]},), got {out.dtype} {out.shape}"
        )
    kernel = load_kernel("_prices")
    return kernel.liquidation_prices(
        VENUE_CODES[name],
        sign,
        entry,
        lev,
        np.ascontiguousarray(quantities),
        wallet,
        np.asarray(floors, dtype=np.float64),
        np.asarray(rates, dtype=np.float64),
        np.asarray(amounts, dtype=np.float64),
        fee,
        out,
    )


def _check_array_positive(name: str, values: np.ndarray, unit: str) -> None:
    import numpy as np

    bad = ~((values > 0.0) & np.isfinite(values))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"{name}[{index}] = {float(values[index])!r} must be a finite number > 0 ({unit})"
        )


def _check_array_leverage(
    leverages: np.ndarray,
    notionals: np.ndarray,
    *,
    tiers: LeverageTiers | None,
    max_leverage: float | None,
) -> None:
    import numpy as np

    if max_leverage is not None:
        cap = _positive("max_leverage", max_leverage, "the venue's maximum leverage")
        above = leverages > cap
        if above.any():
            index = int(np.flatnonzero(above)[0])
            raise ConfigError(
                f"leverages[{index}] = {leverages[index]:g} is above max_leverage {cap:g}; "
                f"allowed range is (0, {cap:g}]"
            )
    if tiers is None:
        return
    caps = np.array([tier.max_notional for tier in tiers.tiers])
    allowed_by_tier = np.array([tier.max_leverage for tier in tiers.tiers])
    beyond = notionals > caps[-1]
    if beyond.any():
        index = int(np.flatnonzero(beyond)[0])
        raise ConfigError(
            f"position {index} has notional {notionals[index]:,.2f}, beyond the largest "
            f"bracket of {tiers.label}; allowed range is (0, {caps[-1]:,.0f}]"
        )
    allowed = allowed_by_tier[np.searchsorted(caps, notionals, side="left")]
    above = leverages > allowed
    if above.any():
        index = int(np.flatnonzero(above)[0])
        raise ConfigError(
            f"leverages[{index}] = {leverages[index]:g} is above the maximum "
            f"{allowed[index]:g}x allowed for notional {notionals[index]:,.2f} by "
            f"{tiers.label}; allowed range is (0, {allowed[index]:g}]"
        )
