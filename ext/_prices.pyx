"""Vectorised liquidation prices: arrays of entries and leverages in, array of prices out.

The compiled twin of :func:`backtest.liquidation.reference.prices.liquidation_prices`; the
public entry point is :func:`backtest.liquidation.prices.liquidation_prices`, which validates
the values (positive prices, sizes and leverages, leverage within the tiers) before calling
here.  This wrapper checks shapes and codes; the loop runs without the GIL.
"""

cdef enum:
    VENUE_BINANCE = 0
    VENUE_BYBIT = 1
    VENUE_OKX = 2
    VENUE_HYPERLIQUID = 3


cdef inline Py_ssize_t bracket_index(
    const double[::1] floors, double notional
) noexcept nogil:
    """0-based bracket holding ``notional`` (floor inclusive), clamped to the table."""
    cdef Py_ssize_t index = 0
    cdef Py_ssize_t count = floors.shape[0]
    while index + 1 < count and notional >= floors[index + 1]:
        index += 1
    return index


cdef inline double binance_formula(
    double side, double entry, double quantity, double wallet, double rate, double amount
) noexcept nogil:
    return (wallet + amount - side * quantity * entry) / (quantity * rate - side * quantity)


cdef double binance_solve(
    double side,
    double entry,
    double quantity,
    double wallet,
    const double[::1] floors,
    const double[::1] rates,
    const double[::1] amounts,
    unsigned char[::1] visited,
) noexcept nogil:
    """Bracket by notional at the liquidation price; envelope on a revisit (see prices.py)."""
    cdef Py_ssize_t count = floors.shape[0]
    cdef Py_ssize_t index = bracket_index(floors, quantity * entry)
    cdef Py_ssize_t new_index, other
    cdef double price, candidate
    for other in range(count):
        visited[other] = 0
    while True:
        price = binance_formula(side, entry, quantity, wallet, rates[index], amounts[index])
        new_index = bracket_index(floors, quantity * price)
        if new_index == index:
            return price
        visited[index] = 1
        if visited[new_index]:
            break
        index = new_index
    price = binance_formula(side, entry, quantity, wallet, rates[0], amounts[0])
    for other in range(1, count):
        candidate = binance_formula(side, entry, quantity, wallet, rates[other], amounts[other])
        if (side > 0 and candidate > price) or (side < 0 and candidate < price):
            price = candidate
    return price


cdef void fill_prices(
    int venue,
    double side,
    const double[::1] entry_prices,
    const double[::1] leverages,
    const double[::1] quantities,
    const double[::1] wallet_balances,
    const double[::1] floors,
    const double[::1] rates,
    const double[::1] amounts,
    double taker_fee,
    unsigned char[::1] visited,
    double[::1] out,
) noexcept nogil:
    cdef Py_ssize_t i, index
    cdef Py_ssize_t n = entry_prices.shape[0]
    cdef double entry, quantity, wallet, rate, amount, margin_available
    for i in range(n):
        entry = entry_prices[i]
        quantity = quantities[i]
        wallet = wallet_balances[i]
        if wallet != wallet:  # NaN: default margin
            wallet = quantity * entry / leverages[i]
        if venue == VENUE_BINANCE:
            out[i] = binance_solve(
                side, entry, quantity, wallet, floors, rates, amounts, visited
            )
            continue
        index = bracket_index(floors, quantity * entry)
        rate = rates[index]
        amount = amounts[index]
        if venue == VENUE_BYBIT:
            out[i] = entry - side * (wallet - (quantity * entry * rate - amount)) / quantity
        elif venue == VENUE_OKX:
            out[i] = (entry - side * wallet / quantity) / (1.0 - side * (rate + taker_fee))
        else:
            margin_available = wallet - quantity * entry * rate
            out[i] = entry - side * margin_available / quantity / (1.0 - rate * side)


def liquidation_prices(
    int venue,
    int side,
    const double[::1] entry_prices,
    const double[::1] leverages,
    const double[::1] quantities,
    const double[::1] wallet_balances,
    const double[::1] tier_floors,
    const double[::1] tier_rates,
    const double[::1] tier_amounts,
    double taker_fee,
    out,
):
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
        Binance picks the bracket by notional at the liquidation price; the other venues by
        the entry notional (one bracket when the rate is explicit).  For Hyperliquid the rate
        is ``1 / (2 * max_leverage)``.
    taker_fee : float
        OKX's fee term (ignored by the other venues).
    out : writable, contiguous float64 array, same length as the positions

    Returns
    -------
    out
    """
    cdef Py_ssize_t n = entry_prices.shape[0]
    cdef Py_ssize_t count = tier_floors.shape[0]
    cdef double[::1] out_view = out
    if venue < VENUE_BINANCE or venue > VENUE_HYPERLIQUID:
        raise ValueError(f"venue code {venue} is outside the allowed range 0..3")
    if side != 1 and side != -1:
        raise ValueError(f"side {side} must be +1 (long) or -1 (short)")
    if (
        leverages.shape[0] != n
        or quantities.shape[0] != n
        or wallet_balances.shape[0] != n
        or out_view.shape[0] != n
    ):
        raise ValueError(
            "entry_prices, leverages, quantities, wallet_balances and out must have the same "
            f"length; got {n}, {leverages.shape[0]}, {quantities.shape[0]}, "
            f"{wallet_balances.shape[0]}, {out_view.shape[0]}"
        )
    if count < 1 or tier_rates.shape[0] != count or tier_amounts.shape[0] != count:
        raise ValueError(
            "tier_floors, tier_rates and tier_amounts must have the same length >= 1; got "
            f"{count}, {tier_rates.shape[0]}, {tier_amounts.shape[0]}"
        )
    visited_buffer = bytearray(count)
    cdef unsigned char[::1] visited = visited_buffer
    with nogil:
        fill_prices(
            venue,
            <double>side,
            entry_prices,
            leverages,
            quantities,
            wallet_balances,
            tier_floors,
            tier_rates,
            tier_amounts,
            taker_fee,
            visited,
            out_view,
        )
    return out
