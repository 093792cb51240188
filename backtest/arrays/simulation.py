"""``Simulation``: what the array simulator returns (NumPy arrays only).

The fields are, in order, the tuple the raw simulators return
(:func:`backtest.arrays.reference.simulate_reference` and the compiled
``backtest.arrays._simulate.simulate``), so ``Simulation(*raw)`` builds it.  Meanings follow
the event engine's analyzers (:mod:`backtest.engine.analyzers`):

* per bar (as the ``equity`` table records it at the bar's end, after its fills and
  liquidation): ``value``, ``cash``, ``position_size``, ``margin_used``,
  ``liquidation_price`` (NaN when flat), ``funding_cum`` (positive = paid), ``fees_cum``;
* one row per fill (the ``orders`` table's execution bits, liquidations included);
* one row per funding settlement crossed with a position (the ``funding`` table);
* one row per liquidation (the ``liquidations`` table plus entry/booked price and margin);
* one row per refused order (the ``rejected`` table; :func:`rejection_message` writes the
  broker's reason text from the numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

#: ``fill_kind`` codes.
FILL_MARKET, FILL_STOP, FILL_TAKE_PROFIT, FILL_LIQUIDATION = 0, 1, 2, 3
#: ``reject_code`` codes.
REJECT_MARGIN_SUBMISSION = 1  # margin + fee above the cash at the submission check
REJECT_MARGIN_FILL = 2  # margin + fee above the cash at the fill
REJECT_NOTIONAL_CAP = 3  # the position's notional beyond the largest bracket
REJECT_TIER_LEVERAGE = 4  # the leverage above the bracket's maximum for the notional


@dataclass(frozen=True, eq=False)
class Simulation:
    """Result of one simulated run.

    Attributes
    ----------
    value, cash, position_size, margin_used, liquidation_price, funding_cum, fees_cum : ndarray
        Per bar (float64, length n): equity (cash + margin used), available cash, position
        size (signed, base units), margin posted, liquidation price (NaN when flat; a long's
        is clamped at 0), cumulative funding paid and cumulative trading plus clearance fees.
    fill_bar : ndarray of int64
        Bar of each fill.
    fill_size : ndarray of float64
        Executed size, signed (+ buy, − sell): ``fill_closed + fill_opened``.
    fill_price : ndarray of float64
        Fill price (slippage included; a liquidation's booked price).
    fill_fee : ndarray of float64
        Fee of the fill (``fill_closed_fee + fill_opened_fee``; a liquidation's clearance fee).
    fill_kind : ndarray of int8
        0 market, 1 stop, 2 take-profit, 3 liquidation.
    fill_reason : ndarray of int16
        Reason code of the order (index into the Decisions' ``reasons``; 0 for liquidations,
        whose reason is ``"liquidation"`` by ``fill_kind``).
    fill_pnl : ndarray of float64
        Gross realised PnL of the closed part.
    fill_closed, fill_opened : ndarray of float64
        Signed parts of the fill that closed and opened position (backtrader's ``closed`` and
        ``opened``).
    fill_closed_fee, fill_opened_fee : ndarray of float64
        Fees of those parts.
    funding_bar : ndarray of int64
        Settlement bar.
    funding_rate, funding_mark, funding_size, funding_payment : ndarray of float64
        Rate, mark price used (mark open, else open), position size and payment (positive =
        paid).
    liq_bar : ndarray of int64
        Bar of the liquidation.
    liq_side : ndarray of int8
        +1 long, −1 short.
    liq_size, liq_entry_price, liq_price, liq_fill_price, liq_booked_price : ndarray
        Size liquidated (positive), entry price, liquidation price, market fill price
        (slippage included) and the booked (bankruptcy when capped) price.
    liq_loss, liq_fee, liq_margin : ndarray
        Loss booked (price loss plus fee, capped), clearance fee charged, margin of the
        position.
    liq_gap : ndarray of bool
        Whether the bar opened beyond the liquidation price.
    reject_bar : ndarray of int64
        Bar the refusal happened on (the bar after the decision).
    reject_size, reject_price : ndarray of float64
        The order's signed size and price (the close it was sent at).
    reject_code : ndarray of int8
        1 margin at submission, 2 margin at the fill, 3 notional beyond the largest bracket,
        4 leverage above the bracket's maximum.
    reject_reason : ndarray of int16
        The order's reason code.
    reject_notional : ndarray of float64
        Codes 1, 2: notional of the opening part (0 for an order that only closes, refused at
        submission because the cash is negative); codes 3, 4: the position's notional.
    reject_needed, reject_available : ndarray of float64
        Codes 1, 2: margin + fee needed and cash available; code 3: the notional and the
        largest bracket's cap; code 4: the leverage and the bracket's maximum.
    final_value : float
        Equity after the last bar.
    """

    value: np.ndarray
    cash: np.ndarray
    position_size: np.ndarray
    margin_used: np.ndarray
    liquidation_price: np.ndarray
    funding_cum: np.ndarray
    fees_cum: np.ndarray
    fill_bar: np.ndarray
    fill_size: np.ndarray
    fill_price: np.ndarray
    fill_fee: np.ndarray
    fill_kind: np.ndarray
    fill_reason: np.ndarray
    fill_pnl: np.ndarray
    fill_closed: np.ndarray
    fill_opened: np.ndarray
    fill_closed_fee: np.ndarray
    fill_opened_fee: np.ndarray
    funding_bar: np.ndarray
    funding_rate: np.ndarray
    funding_mark: np.ndarray
    funding_size: np.ndarray
    funding_payment: np.ndarray
    liq_bar: np.ndarray
    liq_side: np.ndarray
    liq_size: np.ndarray
    liq_entry_price: np.ndarray
    liq_price: np.ndarray
    liq_fill_price: np.ndarray
    liq_booked_price: np.ndarray
    liq_loss: np.ndarray
    liq_fee: np.ndarray
    liq_margin: np.ndarray
    liq_gap: np.ndarray
    reject_bar: np.ndarray
    reject_size: np.ndarray
    reject_price: np.ndarray
    reject_code: np.ndarray
    reject_reason: np.ndarray
    reject_notional: np.ndarray
    reject_needed: np.ndarray
    reject_available: np.ndarray
    final_value: float

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The fields in raw-tuple order."""
        return tuple(field.name for field in fields(cls))


def rejection_message(
    code: int, notional: float, leverage: float, needed: float, available: float
) -> str:
    """The broker's reason text for a refused order (as in the ``rejected`` table).

    Parameters
    ----------
    code : int
        ``reject_code``.
    notional, needed, available : float
        ``reject_notional``, ``reject_needed``, ``reject_available``.
    leverage : float
        The account's leverage.
    """
    if code == REJECT_NOTIONAL_CAP:
        return f"notional {notional:,.0f} exceeds the largest bracket ({available:,.0f})"
    if code == REJECT_TIER_LEVERAGE:
        return f"leverage {needed:g} exceeds the {available:g}x maximum for {notional:,.0f}"
    if code == REJECT_MARGIN_SUBMISSION and notional == 0.0:
        return "insufficient margin"  # an order that only closes, refused for negative cash
    return (
        f"insufficient margin: {notional:,.2f} notional at {leverage:g}x needs "
        f"{needed:,.2f} (margin + fee), {max(available, 0.0):,.2f} available; "
        "trade a smaller size or raise --leverage/--cash"
    )
