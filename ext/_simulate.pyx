"""The array simulator: one symbol's bars through the perpetual broker's account, in C.

The compiled twin of :func:`backtest.arrays.reference.simulate_reference` (same arguments,
same returned tuple); the public entry point is :func:`backtest.arrays.simulate.simulate`,
which validates the inputs before calling here.  The bar loop runs without the GIL.
"""

include "_liquidation_core.pxi"


cdef extern from *:
    """
    #ifdef BACKTEST_DEBUG_BUILD
    #define SIMULATE_IS_DEBUG 1
    #else
    #define SIMULATE_IS_DEBUG 0
    #endif
    """
    int SIMULATE_IS_DEBUG


cdef inline double position_liquidation(
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
    """The broker's liquidation price of the position: the venue's price, a long's floored at 0.

    As ``PerpetualBroker._update_liquidation_price`` computes it: ``wallet`` is the isolated
    position's margin or, in cross mode with one symbol, the wallet balance.
    """
    cdef double price = liq_price_one(
        venue, side, entry, quantity, wallet, floors, rates, amounts, taker_fee, visited
    )
    if side > 0.0 and price < 0.0:
        return 0.0
    return price


def debug_build():
    """Return True when this module was built with ``BACKTEST_DEBUG=1`` (bounds checks on)."""
    return SIMULATE_IS_DEBUG == 1


def read_element(const double[::1] values, Py_ssize_t index):
    """Return ``values[index]`` with this module's indexing directives (debug-build probe).

    In a debug build an out-of-range index raises ``IndexError``; in a release build it is not
    checked, so only call it with a bad index when :func:`debug_build` is true.
    """
    return values[index]


def liquidation_price(
    int venue,
    int side,
    double entry,
    double quantity,
    double wallet,
    const double[::1] tier_floors,
    const double[::1] tier_rates,
    const double[::1] tier_amounts,
    double taker_fee,
):
    """Liquidation price of one position exactly as the simulator computes it (for tests).

    Parameters
    ----------
    venue : int
        0 Binance, 1 Bybit, 2 OKX, 3 Hyperliquid (``prices.VENUE_CODES``).
    side : int
        +1 long, -1 short.
    entry, quantity, wallet : float
        Entry price, size in base units (> 0) and the margin behind it (isolated: the
        position's margin; cross: the wallet balance).
    tier_floors, tier_rates, tier_amounts : float64 arrays, same length >= 1
        The tier table (Hyperliquid: rate ``1 / (2 * max_leverage)``).
    taker_fee : float
        OKX's fee term (ignored by the other venues).

    Returns
    -------
    float
        The price; a long's is floored at 0 (as the broker keeps it).
    """
    cdef Py_ssize_t count = tier_floors.shape[0]
    if venue < VENUE_BINANCE or venue > VENUE_HYPERLIQUID:
        raise ValueError(f"venue code {venue} is outside the allowed range 0..3")
    if side != 1 and side != -1:
        raise ValueError(f"side {side} must be +1 (long) or -1 (short)")
    if count < 1 or tier_rates.shape[0] != count or tier_amounts.shape[0] != count:
        raise ValueError(
            "tier_floors, tier_rates and tier_amounts must have the same length >= 1; got "
            f"{count}, {tier_rates.shape[0]}, {tier_amounts.shape[0]}"
        )
    visited_buffer = bytearray(count)
    cdef unsigned char[::1] visited = visited_buffer
    cdef double price
    with nogil:
        price = position_liquidation(
            venue,
            <double>side,
            entry,
            quantity,
            wallet,
            tier_floors,
            tier_rates,
            tier_amounts,
            taker_fee,
            visited,
        )
    return price
