"""Vectorised liquidation prices: arrays of entries and leverages in, array of prices out.

The compiled twin of :func:`backtest.liquidation.reference.prices.liquidation_prices`; the
public entry point is :func:`backtest.liquidation.prices.liquidation_prices`, which validates
the values (positive prices, sizes and leverages, leverage within the tiers) before calling
here.  This wrapper checks shapes and codes; the loop runs without the GIL.
"""

include "_liquidation_core.pxi"


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
    cdef Py_ssize_t i
    cdef Py_ssize_t n = entry_prices.shape[0]
    cdef double entry, quantity, wallet
    for i in range(n):
        entry = entry_prices[i]
        quantity = quantities[i]
        wallet = wallet_balances[i]
        if wallet != wallet:  # NaN: default margin
            wallet = quantity * entry / leverages[i]
        out[i] = liq_price_one(
            venue, side, entry, quantity, wallet, floors, rates, amounts, taker_fee, visited
        )


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
