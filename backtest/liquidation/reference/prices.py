"""Pure-Python twin of the ``_prices`` kernel (``ext/_prices.pyx``): same name, inputs, output.

Each element is computed with the scalar formulas of :mod:`backtest.liquidation.prices`, so
comparing the kernel with this twin also compares it with the scalar API the broker uses.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from backtest.liquidation.prices import (
    VENUE_CODES,
    bracket_index,
    bybit_formula,
    hyperliquid_formula,
    okx_formula,
    solve_binance_brackets,
)

_BINANCE = VENUE_CODES["binance"]
_BYBIT = VENUE_CODES["bybit"]
_OKX = VENUE_CODES["okx"]


def liquidation_prices(
    venue: int,
    side: int,
    entry_prices: npt.NDArray[np.float64],
    leverages: npt.NDArray[np.float64],
    quantities: npt.NDArray[np.float64],
    wallet_balances: npt.NDArray[np.float64],
    tier_floors: npt.NDArray[np.float64],
    tier_rates: npt.NDArray[np.float64],
    tier_amounts: npt.NDArray[np.float64],
    taker_fee: float,
    out: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Fill ``out`` with the isolated-margin liquidation price of each position; return it.

    Parameters
    ----------
    venue : int
        0 Binance, 1 Bybit, 2 OKX, 3 Hyperliquid (``prices.VENUE_CODES``).
    side : int
        +1 long, -1 short.
    entry_prices, leverages, quantities, wallet_balances : float64 arrays, same length
        Per position; a NaN wallet balance means ``quantity * entry / leverage``.
    tier_floors, tier_rates, tier_amounts : float64 arrays, same length >= 1
        Bracket floors (first 0, increasing), maintenance rates and amounts (Binance cum).
        Binance picks the bracket by notional at the liquidation price
        (:func:`~backtest.liquidation.prices.solve_binance_brackets`); the other venues by
        the entry notional.  For Hyperliquid the rate is ``1 / (2 * max_leverage)``.
    taker_fee : float
        OKX's fee term (ignored by the other venues).
    out : float64 array, same length as the positions

    Returns
    -------
    out
    """
    count = len(entry_prices)
    if venue not in VENUE_CODES.values():
        raise ValueError(f"venue code {venue} is outside the allowed range 0..3")
    if side not in (1, -1):
        raise ValueError(f"side {side} must be +1 (long) or -1 (short)")
    lengths = [len(leverages), len(quantities), len(wallet_balances), len(out)]
    if any(length != count for length in lengths):
        raise ValueError(
            "entry_prices, leverages, quantities, wallet_balances and out must have the same "
            f"length; got {count}, {', '.join(map(str, lengths))}"
        )
    brackets = len(tier_floors)
    if brackets < 1 or len(tier_rates) != brackets or len(tier_amounts) != brackets:
        raise ValueError(
            "tier_floors, tier_rates and tier_amounts must have the same length >= 1; got "
            f"{brackets}, {len(tier_rates)}, {len(tier_amounts)}"
        )
    floors = [float(value) for value in tier_floors]
    rates = [float(value) for value in tier_rates]
    amounts = [float(value) for value in tier_amounts]
    for i in range(count):
        entry = float(entry_prices[i])
        quantity = float(quantities[i])
        wallet = float(wallet_balances[i])
        if math.isnan(wallet):
            wallet = quantity * entry / float(leverages[i])
        if venue == _BINANCE:
            out[i] = solve_binance_brackets(
                side, entry, quantity, wallet, 0.0, floors, rates, amounts
            )[0]
            continue
        index = bracket_index(floors, quantity * entry)
        if venue == _BYBIT:
            out[i] = bybit_formula(side, entry, quantity, wallet, rates[index], amounts[index])
        elif venue == _OKX:
            out[i] = okx_formula(side, entry, quantity, wallet, rates[index], taker_fee)
        else:
            out[i] = hyperliquid_formula(side, entry, quantity, wallet, rates[index])
    return out
