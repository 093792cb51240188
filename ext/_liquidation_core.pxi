# Liquidation price of ONE position, in C, for the four venues.
#
# Included textually, never compiled alone:
#     include "_liquidation_core.pxi"     (ext/_prices.pyx and ext/_simulate.pyx)
# Every name it defines starts with `liq_` or `VENUE_`, so the including module keeps its own
# namespace.  The specification is backtest/liquidation/prices.py (the literal venue formulas,
# each citing its exchange's documentation, and solve_binance_brackets); its pure-Python
# vectorised twin is backtest/liquidation/reference/prices.py.
#
# Tier table: floors (first 0, increasing), maintenance rates and amounts (Binance cum, Bybit's
# deduction; 0 where the venue has none), one entry per bracket, count >= 1.
#   Binance: the bracket is the one holding the notional AT THE LIQUIDATION PRICE: start from
#            the entry notional's bracket, re-pick until stable; on a revisit, the envelope
#            (max over brackets for a long, min for a short) -- see solve_binance_brackets.
#   Bybit, OKX, Hyperliquid: the bracket holding the ENTRY notional Q*EP (clamped to the
#            table), as backtest.engine.venues.position_maintenance picks it for the broker.
#            For Hyperliquid the table's rate is 1 / (2 * max_leverage) of the asset.
# The wallet is the isolated position's margin, or the cross wallet balance (one position).

cdef enum:
    VENUE_BINANCE = 0
    VENUE_BYBIT = 1
    VENUE_OKX = 2
    VENUE_HYPERLIQUID = 3


cdef inline Py_ssize_t liq_bracket_index(
    const double[::1] floors, double notional
) noexcept nogil:
    """0-based bracket holding ``notional`` (floor inclusive), clamped to the table."""
    cdef Py_ssize_t index = 0
    cdef Py_ssize_t count = floors.shape[0]
    while index + 1 < count and notional >= floors[index + 1]:
        index += 1
    return index


cdef inline double liq_binance_formula(
    double side, double entry, double quantity, double wallet, double rate, double amount
) noexcept nogil:
    return (wallet + amount - side * quantity * entry) / (quantity * rate - side * quantity)


cdef double liq_binance_solve(
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
    cdef Py_ssize_t index = liq_bracket_index(floors, quantity * entry)
    cdef Py_ssize_t new_index, other
    cdef double price, candidate
    for other in range(count):
        visited[other] = 0
    while True:
        price = liq_binance_formula(side, entry, quantity, wallet, rates[index], amounts[index])
        new_index = liq_bracket_index(floors, quantity * price)
        if new_index == index:
            return price
        visited[index] = 1
        if visited[new_index]:
            break
        index = new_index
    price = liq_binance_formula(side, entry, quantity, wallet, rates[0], amounts[0])
    for other in range(1, count):
        candidate = liq_binance_formula(
            side, entry, quantity, wallet, rates[other], amounts[other]
        )
        if (side > 0 and candidate > price) or (side < 0 and candidate < price):
            price = candidate
    return price


cdef double liq_price_one(
    int venue,
    double side,
    double entry,
    double quantity,
    double wallet,
    const double[::1] floors,
    const double[::1] rates,
    const double[::1] amounts,
    double taker_fee,
    unsigned char[::1] visited,
) noexcept nogil:
    """Liquidation (mark) price of one position of ``quantity`` at ``entry`` with ``wallet``.

    ``side`` is +1 long, -1 short; ``visited`` is scratch of the table's length (Binance).  The
    raw formula value: a long may get a price <= 0 (the caller floors it where it must).
    """
    cdef Py_ssize_t index
    cdef double rate, amount
    if venue == VENUE_BINANCE:
        return liq_binance_solve(side, entry, quantity, wallet, floors, rates, amounts, visited)
    index = liq_bracket_index(floors, quantity * entry)
    rate = rates[index]
    amount = amounts[index]
    if venue == VENUE_BYBIT:
        return entry - side * (wallet - (quantity * entry * rate - amount)) / quantity
    if venue == VENUE_OKX:
        return (entry - side * wallet / quantity) / (1.0 - side * (rate + taker_fee))
    return entry - side * (wallet - quantity * entry * rate) / quantity / (1.0 - rate * side)
