"""The array simulator: one symbol's bars through the perpetual broker's account, in C.

The compiled twin of :func:`backtest.arrays.reference.simulate_reference` (same arguments,
same returned tuple, the same float operations in the same order); the public entry point is
:func:`backtest.arrays.simulate.simulate`, which validates the inputs before calling here.
The bar loop runs without the GIL and touches no Python object: the per-bar results go
straight into preallocated arrays, the events (fills, funding settlements, liquidations,
refused orders) into C buffers that double when full and become NumPy arrays at the end.

The steps of a bar, the formulas and where each comes from (``PerpetualBroker`` on top of
backtrader's ``BackBroker``) are documented in the twin; the comments here name the step.
"""

from libc.math cimport NAN, fabs, isfinite
from libc.stdlib cimport free, malloc, realloc

import numpy as np

from backtest.errors import ConfigError

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


# A residual position smaller than this fraction of the previous size is treated as closed.
cdef double DUST = 1e-9
# target_exposure skips an order smaller than this fraction of max(|target|, |current|, 1).
cdef double TARGET_TOLERANCE = 1e-12

cdef enum:
    FILL_MARKET = 0
    FILL_STOP = 1
    FILL_TAKE_PROFIT = 2
    FILL_LIQUIDATION = 3
    REJECT_SUBMISSION = 1
    REJECT_FILL = 2
    REJECT_CAP = 3
    REJECT_TIER = 4
    # errors of the liquidation price (the twin raises ConfigError where prices.py would)
    ERROR_NONE = 0
    ERROR_BINANCE_LEVERAGE = 1
    ERROR_VENUE_LEVERAGE = 2
    ERROR_WALLET = 3
    ERROR_MEMORY = 4

cdef Py_ssize_t FIRST_CAPACITY = 64


# --------------------------------------------------------------------------------------------
# event rows and their growing buffers
# --------------------------------------------------------------------------------------------
cdef struct FillRow:
    long long bar
    double size
    double price
    double fee
    signed char kind
    short reason
    double pnl
    double closed
    double opened
    double closed_fee
    double opened_fee


cdef struct FundingRow:
    long long bar
    double rate
    double mark
    double size
    double payment


cdef struct LiquidationRow:
    long long bar
    signed char side
    double size
    double entry_price
    double price
    double fill_price
    double booked_price
    double loss
    double fee
    double margin
    unsigned char gap


cdef struct RejectRow:
    long long bar
    double size
    double price
    signed char code
    short reason
    double notional
    double needed
    double available


cdef struct Rows:
    FillRow* fills
    Py_ssize_t fill_count
    Py_ssize_t fill_capacity
    FundingRow* fundings
    Py_ssize_t funding_count
    Py_ssize_t funding_capacity
    LiquidationRow* liquidations
    Py_ssize_t liquidation_count
    Py_ssize_t liquidation_capacity
    RejectRow* rejections
    Py_ssize_t reject_count
    Py_ssize_t reject_capacity


cdef void* grown(void* data, Py_ssize_t* capacity, size_t item) noexcept nogil:
    """``data`` reallocated to twice ``capacity`` items (NULL, data untouched, on failure)."""
    cdef Py_ssize_t wanted = capacity[0] * 2 if capacity[0] > 0 else FIRST_CAPACITY
    cdef void* bigger = realloc(data, <size_t>wanted * item)
    if bigger != NULL:
        capacity[0] = wanted
    return bigger


cdef FillRow* new_fill(Rows* rows) noexcept nogil:
    cdef void* bigger
    if rows.fill_count == rows.fill_capacity:
        bigger = grown(rows.fills, &rows.fill_capacity, sizeof(FillRow))
        if bigger == NULL:
            return NULL
        rows.fills = <FillRow*>bigger
    rows.fill_count += 1
    return &rows.fills[rows.fill_count - 1]


cdef FundingRow* new_funding(Rows* rows) noexcept nogil:
    cdef void* bigger
    if rows.funding_count == rows.funding_capacity:
        bigger = grown(rows.fundings, &rows.funding_capacity, sizeof(FundingRow))
        if bigger == NULL:
            return NULL
        rows.fundings = <FundingRow*>bigger
    rows.funding_count += 1
    return &rows.fundings[rows.funding_count - 1]


cdef LiquidationRow* new_liquidation(Rows* rows) noexcept nogil:
    cdef void* bigger
    if rows.liquidation_count == rows.liquidation_capacity:
        bigger = grown(rows.liquidations, &rows.liquidation_capacity, sizeof(LiquidationRow))
        if bigger == NULL:
            return NULL
        rows.liquidations = <LiquidationRow*>bigger
    rows.liquidation_count += 1
    return &rows.liquidations[rows.liquidation_count - 1]


cdef RejectRow* new_rejection(Rows* rows) noexcept nogil:
    cdef void* bigger
    if rows.reject_count == rows.reject_capacity:
        bigger = grown(rows.rejections, &rows.reject_capacity, sizeof(RejectRow))
        if bigger == NULL:
            return NULL
        rows.rejections = <RejectRow*>bigger
    rows.reject_count += 1
    return &rows.rejections[rows.reject_count - 1]


cdef void free_rows(Rows* rows) noexcept nogil:
    free(rows.fills)
    free(rows.fundings)
    free(rows.liquidations)
    free(rows.rejections)
    rows.fills = NULL
    rows.fundings = NULL
    rows.liquidations = NULL
    rows.rejections = NULL


# --------------------------------------------------------------------------------------------
# the account: settings, backtrader's Position, the broker's _PositionState
# --------------------------------------------------------------------------------------------
cdef struct Order:
    double remaining
    double created_size
    double created_price  # a market order's close, an exit's level
    short reason
    signed char kind  # FILL_MARKET, FILL_STOP or FILL_TAKE_PROFIT
    Py_ssize_t source  # its place in the list step 3 walks (the twin's object identity)


cdef struct Book:
    # settings
    double leverage
    double taker_fee
    double maker_fee
    double liquidation_fee
    double mult
    double slippage
    int venue
    int cross
    int slippage_model
    # money
    double cash
    double wallet
    double fees_paid
    double funding_paid
    double margin_used
    # the position
    double size
    double price
    double adjbase
    double margin
    double liquidation
    int side
    # the market order sent at the previous close, waiting for the submission check
    int has_order
    double order_size
    double order_price
    short order_reason
    # accepted orders still to fill, oldest first, and the copy step 3 walks
    Order* pending
    Py_ssize_t pending_count
    Py_ssize_t pending_capacity
    Order* waiting
    unsigned char* cancelled
    Py_ssize_t waiting_capacity
    # exits placed at the previous close, waiting for the submission check (the stop first)
    double exit_size[2]
    double exit_level[2]
    signed char exit_kind[2]
    int exit_count
    # levels kept for the close after the order sent with them has filled
    int has_deferred
    double deferred_stop
    double deferred_profit
    int deferred_side
    # the first error (the twin raises ConfigError there), with the numbers of its message
    int error
    double error_leverage
    double error_allowed
    double error_notional
    double error_wallet


cdef struct Update:
    double size
    double price
    double opened
    double closed


cdef struct Refusal:
    int code
    double needed
    double available


cdef struct Check:
    double cash
    int refused
    double notional
    double needed
    double available


cdef inline Update position_update(
    double old_size, double old_price, double size, double price
) noexcept nogil:
    """backtrader's ``Position.update``: the same float operations in the same order."""
    cdef Update out
    cdef double new_size = old_size + size
    out.size = new_size
    if not new_size:
        out.price = 0.0
        out.opened = 0.0
        out.closed = size
    elif not old_size:
        out.price = price
        out.opened = size
        out.closed = 0.0
    elif old_size > 0:
        if size > 0:
            out.price = (old_price * old_size + size * price) / new_size
            out.opened = size
            out.closed = 0.0
        elif new_size > 0:
            out.price = old_price
            out.opened = 0.0
            out.closed = size
        else:
            out.price = price
            out.opened = new_size
            out.closed = -old_size
    elif size < 0:
        out.price = (old_price * old_size + size * price) / new_size
        out.opened = size
        out.closed = 0.0
    elif new_size < 0:
        out.price = old_price
        out.opened = 0.0
        out.closed = size
    else:
        out.price = price
        out.opened = new_size
        out.closed = -old_size
    return out


cdef inline double slippage_fraction(
    int model, double slippage, double open_, double high, double low
) noexcept nogil:
    """backtest.engine.broker.slippage_fraction (model 0 fixed, 1 volatility)."""
    if slippage == 0.0:
        return 0.0
    if model == 1:
        if not (open_ > 0.0 and high >= low):
            return 0.0
        return slippage * (high - low) / open_
    return slippage


cdef inline Py_ssize_t first_at_least(const double[::1] caps, double value) noexcept nogil:
    """``bisect_left(caps, value)`` for increasing caps."""
    cdef Py_ssize_t index = 0
    cdef Py_ssize_t count = caps.shape[0]
    while index < count and caps[index] < value:
        index += 1
    return index


cdef inline double py_min(double first, double second) noexcept nogil:
    """Python's ``min(first, second)``."""
    return second if second < first else first


cdef inline double py_max(double first, double second) noexcept nogil:
    """Python's ``max(first, second)``."""
    return second if second > first else first


cdef int push_pending(Book* book, Order order) noexcept nogil:
    """Append ``order`` to the working orders (0; -1 and the memory error when out of memory)."""
    cdef void* bigger
    if book.pending_count == book.pending_capacity:
        bigger = grown(book.pending, &book.pending_capacity, sizeof(Order))
        if bigger == NULL:
            book.error = ERROR_MEMORY
            return -1
        book.pending = <Order*>bigger
    book.pending[book.pending_count] = order
    book.pending_count += 1
    return 0


cdef void keep_market_orders(Book* book, Py_ssize_t source) noexcept nogil:
    """Drop the working exits, except the one taken from place ``source`` of step 3's list."""
    cdef Py_ssize_t read, write = 0
    for read in range(book.pending_count):
        if book.pending[read].kind == FILL_MARKET or book.pending[read].source == source:
            book.pending[write] = book.pending[read]
            write += 1
    book.pending_count = write


cdef void update_liquidation(
    Book* book,
    const double[::1] floors,
    const double[::1] caps,
    const double[::1] rates,
    const double[::1] amounts,
    const double[::1] max_leverages,
    unsigned char[::1] visited,
) noexcept nogil:
    """The broker's liquidation price of the position (a long's clamped at 0)."""
    cdef double quantity, notional, allowed, held, wallet, price
    cdef double last_cap = caps[caps.shape[0] - 1]
    cdef int sign
    if not book.size:
        book.liquidation = NAN
        return
    sign = 1 if book.size > 0 else -1
    quantity = fabs(book.size) * book.mult
    notional = quantity * book.price
    # the checks of prices.liquidation_price (check_leverage), first error kept
    if book.venue == VENUE_BINANCE:
        allowed = max_leverages[0]
        if notional <= last_cap:
            allowed = py_min(allowed, max_leverages[first_at_least(caps, notional)])
        if book.leverage > allowed or notional > last_cap:
            if not book.error:
                book.error = ERROR_BINANCE_LEVERAGE
                book.error_leverage = book.leverage
                book.error_allowed = allowed
                book.error_notional = notional
            return
    else:
        held = py_min(py_max(notional, 0.0), last_cap)
        allowed = max_leverages[first_at_least(caps, held)]
        if book.leverage > allowed:
            if not book.error:
                book.error = ERROR_VENUE_LEVERAGE
                book.error_leverage = book.leverage
                book.error_allowed = allowed
            return
    # a bankrupt cross wallet counts as 0 (PerpetualBroker._update_liquidation_price)
    wallet = (0.0 if book.wallet < 0.0 else book.wallet) if book.cross else book.margin
    if not (wallet >= 0.0 and isfinite(wallet)):
        if not book.error:
            book.error = ERROR_WALLET
            book.error_wallet = wallet
        return
    price = liq_price_one(
        book.venue,
        <double>sign,
        book.price,
        quantity,
        wallet,
        floors,
        rates,
        amounts,
        book.taker_fee,
        visited,
    )
    book.liquidation = py_max(price, 0.0) if book.size > 0 else price


cdef inline Refusal leverage_refusal(
    Book* book, double notional, const double[::1] caps, const double[::1] max_leverages
) noexcept nogil:
    """PerpetualBroker._leverage_refusal as (code, needed, available); code 0 when allowed."""
    cdef Refusal out
    cdef double max_notional = caps[caps.shape[0] - 1]
    cdef double allowed
    out.code = 0
    out.needed = 0.0
    out.available = 0.0
    if notional > max_notional:
        out.code = REJECT_CAP
        out.needed = notional
        out.available = max_notional
        return out
    allowed = max_leverages[first_at_least(caps, notional)]
    if book.leverage > allowed:
        out.code = REJECT_TIER
        out.needed = book.leverage
        out.available = allowed
    return out


cdef Check submission_check(
    Book* book,
    double size,
    double price,
    double fee_rate,
    const double[::1] caps,
    const double[::1] max_leverages,
) noexcept nogil:
    """PerpetualBroker._submission_cash of one order against the position and the cash."""
    cdef Check out
    cdef double mult = book.mult
    cdef bint continuing
    cdef Refusal refusal
    cdef Update update = position_update(book.size, book.price, size, price)
    out.cash = book.cash
    out.refused = 0
    out.needed = out.available = out.notional = 0.0
    if update.closed:
        if book.size:
            out.cash += book.margin * py_min(fabs(update.closed) / fabs(book.size), 1.0)
        out.cash -= fabs(update.closed) * fee_rate * price * mult
    if update.opened:
        continuing = fabs(update.size) > fabs(update.opened)
        out.notional = fabs(update.size) * mult * (book.price if continuing else price)
        refusal = leverage_refusal(book, out.notional, caps, max_leverages)
        out.refused = refusal.code
        out.needed = refusal.needed
        out.available = refusal.available
        if out.refused:
            out.cash = -1.0
        else:
            out.available = out.cash
            out.cash -= fabs(update.opened) * price * mult / book.leverage
            out.cash -= fabs(update.opened) * fee_rate * price * mult
            out.needed = out.available - out.cash
            out.notional = fabs(update.opened) * mult * price
    elif out.cash < 0.0:
        out.cash = 0.0  # a reduce or close needs no margin, even from an underwater account
    if out.cash < 0.0 and not out.refused:  # only an opening order gets here
        out.refused = REJECT_SUBMISSION
    return out


cdef int add_rejection(
    Book* book,
    Rows* rows,
    long long bar,
    double size,
    double price,
    int code,
    short reason,
    double notional,
    double needed,
    double available,
) noexcept nogil:
    """One refused order (0; -1 and the memory error when out of memory)."""
    cdef RejectRow* rejection = new_rejection(rows)
    if rejection == NULL:
        book.error = ERROR_MEMORY
        return -1
    rejection.bar = bar
    rejection.size = size
    rejection.price = price
    rejection.code = <signed char>code
    rejection.reason = reason
    rejection.notional = notional
    rejection.needed = needed
    rejection.available = available
    return 0


cdef double fill(
    Book* book,
    Rows* rows,
    long long bar,
    double size,
    double price,
    signed char kind,
    short code,
    double created_size,
    double created_price,
    double fee_override,
    double fee_rate,
    bint* refused_open,
    const double[::1] floors,
    const double[::1] caps,
    const double[::1] rates,
    const double[::1] amounts,
    const double[::1] max_leverages,
    unsigned char[::1] visited,
) noexcept nogil:
    """PerpetualBroker._fill (+ _book): execute ``size`` at ``price``.

    Returns the size executed; ``refused_open`` tells whether the opening part was refused.
    """
    cdef double mult = book.mult
    cdef double old_size = book.size
    cdef double entry_before = book.price
    cdef double available_cash, available, pnl, closed_fee, opened_fee, posted, released
    cdef double opened, closed, opened_value, notional, executed
    cdef bint continuing
    cdef Update update
    cdef Refusal refusal
    cdef FillRow* row
    refused_open[0] = False
    if old_size and (old_size + size) and fabs(old_size + size) <= DUST * fabs(old_size):
        size = -old_size  # snap a float residue to an exact close
    update = position_update(old_size, entry_before, size, price)
    opened = update.opened
    closed = update.closed
    available_cash = book.cash
    pnl = closed_fee = opened_fee = posted = released = 0.0
    if closed:
        pnl = -closed * (price - entry_before) * mult
        released = book.margin * py_min(fabs(closed) / fabs(old_size), 1.0)
        available_cash += released
        available_cash += -closed * (price - book.adjbase) * mult
        if fee_override == fee_override:
            closed_fee = fee_override
        else:
            closed_fee = fabs(closed) * fee_rate * price * mult
        available_cash -= closed_fee
        book.cash = available_cash
    if opened:
        continuing = fabs(update.size) > fabs(opened)
        opened_value = fabs(opened) * price * mult
        notional = fabs(update.size) * mult * (update.price if continuing else price)
        refusal = leverage_refusal(book, notional, caps, max_leverages)
        posted = opened_value / book.leverage
        opened_fee = fabs(opened) * fee_rate * price * mult
        available = available_cash
        available_cash -= posted + 0.0 + opened_fee
        if refusal.code or available_cash < 0.0:
            if not refusal.code:
                refusal.code = REJECT_FILL
                refusal.needed = posted + 0.0 + opened_fee
                refusal.available = available
                notional = fabs(opened_value)
            if add_rejection(
                book,
                rows,
                bar,
                created_size,
                created_price,
                refusal.code,
                code,
                notional,
                refusal.needed,
                refusal.available,
            ):
                return 0.0
            refused_open[0] = True
            opened = 0.0
            opened_fee = posted = 0.0
        else:
            if continuing:
                available_cash += (update.size - opened) * (price - book.adjbase) * mult
            book.adjbase = price
            book.cash = available_cash
    executed = closed + opened
    if executed:
        update = position_update(book.size, book.price, executed, price)
        book.size = update.size
        book.price = update.price
        # _book: margin, leverage and liquidation price after the fill
        book.margin += posted - released
        book.margin_used += posted - released
        if not book.size:
            book.margin_used -= book.margin
            book.margin = 0.0
            book.side = 0
            book.liquidation = NAN
        else:
            book.side = 1 if book.size > 0 else -1
            update_liquidation(book, floors, caps, rates, amounts, max_leverages, visited)
        book.wallet += pnl - closed_fee - opened_fee
        book.fees_paid += closed_fee + opened_fee
        row = new_fill(rows)
        if row == NULL:
            book.error = ERROR_MEMORY
            return executed
        row.bar = bar
        row.size = executed
        row.price = price
        row.fee = closed_fee + opened_fee
        row.kind = kind
        row.reason = code
        row.pnl = pnl
        row.closed = closed
        row.opened = opened
        row.closed_fee = closed_fee
        row.opened_fee = opened_fee
    return executed


cdef void liquidate(
    Book* book,
    Rows* rows,
    long long bar,
    bint gap,
    double open_,
    double high,
    double low,
    const double[::1] floors,
    const double[::1] caps,
    const double[::1] rates,
    const double[::1] amounts,
    const double[::1] max_leverages,
    unsigned char[::1] visited,
) noexcept nogil:
    """PerpetualBroker._liquidate (one symbol: no other position to close)."""
    cdef double size = book.size
    cdef double entry = book.price
    cdef double mult = book.mult
    cdef double market, fraction, price_loss, nominal_fee, cap, booked_loss, fee, booked_price
    cdef bint refused_open
    cdef LiquidationRow* row
    if gap:
        market = py_min(open_, book.liquidation) if size > 0 else py_max(open_, book.liquidation)
    else:
        market = book.liquidation
    if book.slippage:
        fraction = slippage_fraction(book.slippage_model, book.slippage, open_, high, low)
        market = market * (1.0 + (-1.0 if size > 0 else 1.0) * fraction)
    price_loss = (entry - market) * size * mult
    nominal_fee = fabs(size) * book.liquidation_fee * market * mult
    cap = book.wallet if book.cross else book.margin
    cap = py_max(cap, 0.0)
    if price_loss >= cap:
        booked_loss = cap
        fee = 0.0
    else:
        booked_loss = price_loss
        fee = py_min(nominal_fee, py_max(cap - price_loss, 0.0))
    booked_price = entry - booked_loss / (size * mult)
    # an exchange cancels the working orders on liquidation
    book.has_order = 0
    book.pending_count = 0
    book.exit_count = 0
    row = new_liquidation(rows)
    if row == NULL:
        book.error = ERROR_MEMORY
        return
    row.bar = bar
    row.side = 1 if size > 0 else -1
    row.size = fabs(size)
    row.entry_price = entry
    row.price = book.liquidation
    row.fill_price = market
    row.booked_price = booked_price
    row.loss = booked_loss + fee
    row.fee = fee
    row.margin = book.margin
    row.gap = gap
    fill(
        book,
        rows,
        bar,
        -size,
        booked_price,
        FILL_LIQUIDATION,
        0,
        -size,
        market,
        fee,
        book.taker_fee,
        &refused_open,
        floors,
        caps,
        rates,
        amounts,
        max_leverages,
        visited,
    )


cdef void fill_working_orders(
    Book* book,
    Rows* rows,
    long long bar,
    double open_,
    double high,
    double low,
    const double[::1] floors,
    const double[::1] caps,
    const double[::1] rates,
    const double[::1] amounts,
    const double[::1] max_leverages,
    unsigned char[::1] visited,
) noexcept nogil:
    """Step 3: the fills of the working orders, oldest first.

    Market orders at the open (moved against the order by slippage), exits when the open or
    the range reaches the level; a filled (or dead) exit cancels the other one.
    """
    cdef Py_ssize_t count = book.pending_count
    cdef Py_ssize_t index, other
    cdef void* bigger
    cdef Order order
    cdef double remaining, price, level, fraction, fee_rate, executed
    cdef bint slipped, refused_open
    cdef signed char kind
    if count > book.waiting_capacity:
        bigger = realloc(book.waiting, <size_t>count * sizeof(Order))
        if bigger == NULL:
            book.error = ERROR_MEMORY
            return
        book.waiting = <Order*>bigger
        bigger = realloc(book.cancelled, <size_t>count)
        if bigger == NULL:
            book.error = ERROR_MEMORY
            return
        book.cancelled = <unsigned char*>bigger
        book.waiting_capacity = count
    for index in range(count):
        book.waiting[index] = book.pending[index]
        book.cancelled[index] = 0
    book.pending_count = 0
    for index in range(count):
        if book.cancelled[index]:
            continue
        order = book.waiting[index]
        order.source = index
        remaining = order.remaining
        kind = order.kind
        fee_rate = book.taker_fee
        if kind == FILL_MARKET:
            price = open_
            slipped = True
        else:
            level = order.created_price
            price = NAN
            if kind == FILL_STOP:
                slipped = True
                if remaining < 0.0:
                    if open_ <= level:
                        price = open_
                    elif low <= level:
                        price = level
                elif open_ >= level:
                    price = open_
                elif high >= level:
                    price = level
            else:
                slipped = False
                fee_rate = book.maker_fee
                if remaining < 0.0:
                    if level <= open_:
                        price = open_
                    elif level <= high:
                        price = level
                elif level >= open_:
                    price = open_
                elif level >= low:
                    price = level
            if price != price:  # not reached on this bar: keeps working
                if push_pending(book, order):
                    return
                continue
        if slipped and book.slippage:
            fraction = slippage_fraction(book.slippage_model, book.slippage, open_, high, low)
            price = price * (1.0 + (1.0 if remaining > 0 else -1.0) * fraction)
        executed = fill(
            book,
            rows,
            bar,
            remaining,
            price,
            kind,
            order.reason,
            order.created_size,
            order.created_price,
            NAN,
            fee_rate,
            &refused_open,
            floors,
            caps,
            rates,
            amounts,
            max_leverages,
            visited,
        )
        if book.error == ERROR_MEMORY:
            return
        remaining -= executed
        if remaining and not refused_open:
            order.remaining = remaining
            if push_pending(book, order):
                return
        if kind != FILL_MARKET and (executed or refused_open):
            for other in range(count):
                if other != index and book.waiting[other].kind != FILL_MARKET:
                    book.cancelled[other] = 1
            keep_market_orders(book, index)


cdef void run(
    Book* book,
    Rows* rows,
    const double[::1] opens,
    const double[::1] highs,
    const double[::1] lows,
    const double[::1] closes,
    const double[::1] mark_opens,
    const double[::1] mark_highs,
    const double[::1] mark_lows,
    const double[::1] funding_rates,
    const double[::1] targets,
    const short[::1] reasons,
    const double[::1] stops,
    const double[::1] take_profits,
    int funding_on,
    const double[::1] floors,
    const double[::1] caps,
    const double[::1] rates,
    const double[::1] amounts,
    const double[::1] max_leverages,
    unsigned char[::1] visited,
    double[::1] values,
    double[::1] cashes,
    double[::1] sizes,
    double[::1] margins,
    double[::1] liquidations,
    double[::1] funding_cums,
    double[::1] fee_cums,
) noexcept nogil:
    """The bar loop (the steps of simulate_reference, numbered as there)."""
    cdef Py_ssize_t count = closes.shape[0]
    cdef Py_ssize_t bar
    cdef int exit_index
    cdef double mult = book.mult
    cdef double rate, mark, payment, opening, worst, value
    cdef double price, exposure, wanted, current, difference, largest
    cdef double stop_level, profit_level, place_stop, place_profit
    cdef bint hit, sent, given, place
    cdef Order order
    cdef Check check
    cdef FundingRow* funding
    for bar in range(count):
        # 1. before orders: funding, then a gap through the liquidation price
        if book.side:
            if funding_on:
                rate = funding_rates[bar]
                if rate == rate:
                    mark = mark_opens[bar]
                    if mark != mark:
                        mark = opens[bar]
                    payment = book.size * mark * mult * rate
                    book.cash -= payment
                    book.wallet -= payment
                    book.funding_paid += payment
                    funding = new_funding(rows)
                    if funding == NULL:
                        book.error = ERROR_MEMORY
                        return
                    funding.bar = bar
                    funding.rate = rate
                    funding.mark = mark
                    funding.size = book.size
                    funding.payment = payment
                    if book.cross:
                        update_liquidation(
                            book, floors, caps, rates, amounts, max_leverages, visited
                        )
            opening = mark_opens[bar]
            if opening != opening:
                opening = opens[bar]
            if (book.side > 0 and opening <= book.liquidation) or (
                book.side < 0 and opening >= book.liquidation
            ):
                liquidate(
                    book,
                    rows,
                    bar,
                    True,
                    opens[bar],
                    highs[bar],
                    lows[bar],
                    floors,
                    caps,
                    rates,
                    amounts,
                    max_leverages,
                    visited,
                )
        # 2. submission check of the order sent at the previous close, or of the exits
        if book.has_order:
            book.has_order = 0
            check = submission_check(
                book, book.order_size, book.order_price, book.taker_fee, caps, max_leverages
            )
            if check.cash >= 0.0:
                order.remaining = book.order_size
                order.created_size = book.order_size
                order.created_price = book.order_price
                order.reason = book.order_reason
                order.kind = FILL_MARKET
                order.source = -1
                if push_pending(book, order):
                    return
            elif add_rejection(
                book,
                rows,
                bar,
                book.order_size,
                book.order_price,
                check.refused,
                book.order_reason,
                check.notional,
                check.needed,
                check.available,
            ):
                return
        if book.exit_count:
            # exits are whole-position closes checked before anything changes the position:
            # the broker's check always accepts them (the twin says why)
            for exit_index in range(book.exit_count):
                order.remaining = book.exit_size[exit_index]
                order.created_size = book.exit_size[exit_index]
                order.created_price = book.exit_level[exit_index]
                order.reason = 0
                order.kind = book.exit_kind[exit_index]
                order.source = -1
                if push_pending(book, order):
                    return
            book.exit_count = 0
        # 3. the fills of the working orders, oldest first
        if book.pending_count:
            fill_working_orders(
                book,
                rows,
                bar,
                opens[bar],
                highs[bar],
                lows[bar],
                floors,
                caps,
                rates,
                amounts,
                max_leverages,
                visited,
            )
            if book.error == ERROR_MEMORY:
                return
        # 4. mark to market at the close
        if book.size:
            book.cash += book.size * (closes[bar] - book.adjbase) * mult
            book.adjbase = closes[bar]
        value = book.cash + book.margin_used
        # 5. after orders: the bar's range through the liquidation price
        if book.side:
            if book.side > 0:
                worst = mark_lows[bar]
                if worst != worst:
                    worst = lows[bar]
                hit = worst <= book.liquidation
            else:
                worst = mark_highs[bar]
                if worst != worst:
                    worst = highs[bar]
                hit = worst >= book.liquidation
            if hit:
                liquidate(
                    book,
                    rows,
                    bar,
                    False,
                    opens[bar],
                    highs[bar],
                    lows[bar],
                    floors,
                    caps,
                    rates,
                    amounts,
                    max_leverages,
                    visited,
                )
                value = book.cash + book.margin_used
        values[bar] = value
        cashes[bar] = book.cash
        sizes[bar] = book.size
        margins[bar] = book.margin_used
        liquidations[bar] = book.liquidation if book.side else NAN
        funding_cums[bar] = book.funding_paid
        fee_cums[bar] = book.fees_paid
        if book.error:
            return
        # 6. the decision at the close (target_exposure); the last bar's would never fill
        exposure = targets[bar]
        sent = False
        wanted = 0.0
        if exposure == exposure and bar + 1 < count:
            price = closes[bar]
            if price > 0.0:
                wanted = value * exposure / price
                current = book.size
                difference = wanted - current
                largest = py_max(py_max(fabs(wanted), fabs(current)), 1.0)
                if fabs(difference) > TARGET_TOLERANCE * largest:
                    book.has_order = 1
                    sent = True
                    book.order_size = -current if (not wanted and current) else difference
                    book.order_price = price
                    book.order_reason = reasons[bar]
        # the exits: placed at this close for the position held, kept for the next close
        # when an order was sent, cancelled when the position changes or new levels come
        stop_level = stops[bar]
        profit_level = take_profits[bar]
        given = stop_level == stop_level or profit_level == profit_level
        place = False
        place_stop = place_profit = NAN
        if sent or given:
            keep_market_orders(book, -2)
            book.has_deferred = 0
            if sent:
                if given and wanted:
                    book.has_deferred = 1
                    book.deferred_stop = stop_level
                    book.deferred_profit = profit_level
                    book.deferred_side = 1 if wanted > 0 else -1
            else:
                place = True
                place_stop = stop_level
                place_profit = profit_level
        elif book.has_deferred:
            if (book.size > 0 and book.deferred_side > 0) or (
                book.size < 0 and book.deferred_side < 0
            ):
                place = True
                place_stop = book.deferred_stop
                place_profit = book.deferred_profit
            book.has_deferred = 0
        if place and book.size and bar + 1 < count:
            if place_stop == place_stop:
                book.exit_size[book.exit_count] = -book.size
                book.exit_level[book.exit_count] = place_stop
                book.exit_kind[book.exit_count] = FILL_STOP
                book.exit_count += 1
            if place_profit == place_profit:
                book.exit_size[book.exit_count] = -book.size
                book.exit_level[book.exit_count] = place_profit
                book.exit_kind[book.exit_count] = FILL_TAKE_PROFIT
                book.exit_count += 1


# --------------------------------------------------------------------------------------------
# the buffers as NumPy arrays
# --------------------------------------------------------------------------------------------
cdef list fill_columns(Rows* rows):
    cdef Py_ssize_t count = rows.fill_count
    cdef Py_ssize_t i
    bar = np.empty(count, dtype=np.int64)
    kind = np.empty(count, dtype=np.int8)
    reason = np.empty(count, dtype=np.int16)
    floats = np.empty((8, count), dtype=np.float64)
    cdef long long[::1] bar_view = bar
    cdef signed char[::1] kind_view = kind
    cdef short[::1] reason_view = reason
    cdef double[:, ::1] float_view = floats
    cdef FillRow* row
    for i in range(count):
        row = &rows.fills[i]
        bar_view[i] = row.bar
        kind_view[i] = row.kind
        reason_view[i] = row.reason
        float_view[0, i] = row.size
        float_view[1, i] = row.price
        float_view[2, i] = row.fee
        float_view[3, i] = row.pnl
        float_view[4, i] = row.closed
        float_view[5, i] = row.opened
        float_view[6, i] = row.closed_fee
        float_view[7, i] = row.opened_fee
    size, price, fee, pnl, closed, opened, closed_fee, opened_fee = (
        np.ascontiguousarray(floats[j]) for j in range(8)
    )
    return [bar, size, price, fee, kind, reason, pnl, closed, opened, closed_fee, opened_fee]


cdef list funding_columns(Rows* rows):
    cdef Py_ssize_t count = rows.funding_count
    cdef Py_ssize_t i
    bar = np.empty(count, dtype=np.int64)
    floats = np.empty((4, count), dtype=np.float64)
    cdef long long[::1] bar_view = bar
    cdef double[:, ::1] float_view = floats
    cdef FundingRow* row
    for i in range(count):
        row = &rows.fundings[i]
        bar_view[i] = row.bar
        float_view[0, i] = row.rate
        float_view[1, i] = row.mark
        float_view[2, i] = row.size
        float_view[3, i] = row.payment
    return [bar, *(np.ascontiguousarray(floats[j]) for j in range(4))]


cdef list liquidation_columns(Rows* rows):
    cdef Py_ssize_t count = rows.liquidation_count
    cdef Py_ssize_t i
    bar = np.empty(count, dtype=np.int64)
    side = np.empty(count, dtype=np.int8)
    gap = np.empty(count, dtype=np.bool_)
    floats = np.empty((8, count), dtype=np.float64)
    cdef long long[::1] bar_view = bar
    cdef signed char[::1] side_view = side
    cdef unsigned char[::1] gap_view = gap.view(np.uint8)
    cdef double[:, ::1] float_view = floats
    cdef LiquidationRow* row
    for i in range(count):
        row = &rows.liquidations[i]
        bar_view[i] = row.bar
        side_view[i] = row.side
        gap_view[i] = 1 if row.gap else 0
        float_view[0, i] = row.size
        float_view[1, i] = row.entry_price
        float_view[2, i] = row.price
        float_view[3, i] = row.fill_price
        float_view[4, i] = row.booked_price
        float_view[5, i] = row.loss
        float_view[6, i] = row.fee
        float_view[7, i] = row.margin
    return [bar, side, *(np.ascontiguousarray(floats[j]) for j in range(8)), gap]


cdef list rejection_columns(Rows* rows):
    cdef Py_ssize_t count = rows.reject_count
    cdef Py_ssize_t i
    bar = np.empty(count, dtype=np.int64)
    code = np.empty(count, dtype=np.int8)
    reason = np.empty(count, dtype=np.int16)
    floats = np.empty((5, count), dtype=np.float64)
    cdef long long[::1] bar_view = bar
    cdef signed char[::1] code_view = code
    cdef short[::1] reason_view = reason
    cdef double[:, ::1] float_view = floats
    cdef RejectRow* row
    for i in range(count):
        row = &rows.rejections[i]
        bar_view[i] = row.bar
        code_view[i] = row.code
        reason_view[i] = row.reason
        float_view[0, i] = row.size
        float_view[1, i] = row.price
        float_view[2, i] = row.notional
        float_view[3, i] = row.needed
        float_view[4, i] = row.available
    size, price, notional, needed, available = (
        np.ascontiguousarray(floats[j]) for j in range(5)
    )
    return [bar, size, price, code, reason, notional, needed, available]


cdef object book_error(Book* book):
    """The exception the twin raises for the book's first error."""
    if book.error == ERROR_MEMORY:
        return MemoryError("the array simulator ran out of memory for its event buffers")
    if book.error == ERROR_BINANCE_LEVERAGE:
        return ConfigError(
            f"leverage {book.error_leverage:g} is above the maximum {book.error_allowed:g}x "
            f"allowed for a position of {book.error_notional:,.2f} notional"
        )
    if book.error == ERROR_VENUE_LEVERAGE:
        return ConfigError(
            f"leverage {book.error_leverage:g} is above max_leverage {book.error_allowed:g}; "
            f"allowed range is (0, {book.error_allowed:g}]"
        )
    return ConfigError(
        "wallet_balance must be a finite number >= 0 (quote currency), got "
        f"{book.error_wallet!r}"
    )


# --------------------------------------------------------------------------------------------
# Python entry points
# --------------------------------------------------------------------------------------------
def _contiguous(values, dtype):
    return np.ascontiguousarray(values, dtype=dtype)


def simulate(
    open_,
    high,
    low,
    close,
    mark_open,
    mark_high,
    mark_low,
    mark_close,
    funding_rate,
    target,
    reason,
    stop,
    take_profit,
    double cash,
    double leverage,
    double taker_fee,
    double maker_fee,
    double liquidation_fee,
    double mult,
    int funding_on,
    double slippage,
    tier_floor,
    tier_cap,
    tier_rate,
    tier_cum,
    tier_max_leverage,
    int venue_code,
    int margin_mode_code,
    int slippage_model_code,
):
    """Run the raw simulation; the arguments and the result as in the reference twin.

    See :mod:`backtest.arrays.reference` for the raw interface: nine float64 price arrays of
    the bars, the targets (float64), reason codes (int16), stop and take-profit levels
    (float64, NaN = none), the account's numbers, the tier
    table as five float64 arrays and the venue, margin-mode and slippage-model codes.  Returns
    the tuple of :class:`backtest.arrays.simulation.Simulation`'s fields.

    Raises
    ------
    ValueError
        Arrays of different lengths, an empty tier table or a code out of range.
    ConfigError
        Where the twin raises it (a liquidation price the broker's function would refuse).
    """
    # mark_close is part of the interface: one symbol has no other position for the cross
    # formula to mark at its close.
    prices = [
        _contiguous(array, np.float64)
        for array in (
            open_, high, low, close, mark_open, mark_high, mark_low, funding_rate, target,
            stop, take_profit,
        )
    ]
    reason_array = _contiguous(reason, np.int16)
    tables = [
        _contiguous(array, np.float64)
        for array in (tier_floor, tier_cap, tier_rate, tier_cum, tier_max_leverage)
    ]
    lengths = [array.shape[0] for array in (*prices, reason_array)]
    if len(set(lengths)) != 1:
        raise ValueError(
            "the price, funding, target, reason and level arrays must have the same length; got "
            f"{lengths}"
        )
    sizes_of_tables = [array.shape[0] for array in tables]
    if sizes_of_tables[0] < 1 or len(set(sizes_of_tables)) != 1:
        raise ValueError(
            f"the five tier arrays must have the same length >= 1; got {sizes_of_tables}"
        )
    if venue_code < VENUE_BINANCE or venue_code > VENUE_HYPERLIQUID:
        raise ValueError(f"venue code {venue_code} is outside the allowed range 0..3")
    if margin_mode_code not in (0, 1):
        raise ValueError(f"margin mode code {margin_mode_code} must be 0 or 1")
    if slippage_model_code not in (0, 1):
        raise ValueError(f"slippage model code {slippage_model_code} must be 0 or 1")
    cdef const double[::1] opens = prices[0]
    cdef const double[::1] highs = prices[1]
    cdef const double[::1] lows = prices[2]
    cdef const double[::1] closes = prices[3]
    cdef const double[::1] mark_opens = prices[4]
    cdef const double[::1] mark_highs = prices[5]
    cdef const double[::1] mark_lows = prices[6]
    cdef const double[::1] funding_rates = prices[7]
    cdef const double[::1] targets = prices[8]
    cdef const short[::1] reasons = reason_array
    cdef const double[::1] stops = prices[9]
    cdef const double[::1] take_profits = prices[10]
    cdef const double[::1] floors = tables[0]
    cdef const double[::1] caps = tables[1]
    cdef const double[::1] rates = tables[2]
    cdef const double[::1] amounts = tables[3]
    cdef const double[::1] max_leverages = tables[4]
    cdef Py_ssize_t count = closes.shape[0]
    cdef Py_ssize_t tiers = floors.shape[0]

    value_array = np.empty(count)
    cash_array = np.empty(count)
    size_array = np.empty(count)
    margin_array = np.empty(count)
    liquidation_array = np.empty(count)
    funding_array = np.empty(count)
    fee_array = np.empty(count)
    visited_buffer = bytearray(tiers)
    cdef unsigned char[::1] visited = visited_buffer
    cdef double[::1] values = value_array
    cdef double[::1] cashes = cash_array
    cdef double[::1] sizes = size_array
    cdef double[::1] margins = margin_array
    cdef double[::1] liquidations = liquidation_array
    cdef double[::1] funding_cums = funding_array
    cdef double[::1] fee_cums = fee_array

    cdef Book book
    book.leverage = leverage
    book.taker_fee = taker_fee
    book.maker_fee = maker_fee
    book.liquidation_fee = liquidation_fee
    book.mult = mult
    book.slippage = slippage
    book.venue = venue_code
    book.cross = margin_mode_code == 1
    book.slippage_model = slippage_model_code
    book.cash = cash
    book.wallet = cash
    book.fees_paid = book.funding_paid = book.margin_used = 0.0
    book.size = book.price = 0.0
    book.adjbase = NAN
    book.margin = 0.0
    book.liquidation = NAN
    book.side = 0
    book.has_order = 0
    book.order_size = book.order_price = 0.0
    book.order_reason = 0
    book.pending = NULL
    book.pending_count = book.pending_capacity = 0
    book.waiting = NULL
    book.cancelled = NULL
    book.waiting_capacity = 0
    book.exit_count = 0
    book.has_deferred = 0
    book.deferred_stop = book.deferred_profit = NAN
    book.deferred_side = 0
    book.error = ERROR_NONE
    book.error_leverage = book.error_allowed = book.error_notional = book.error_wallet = 0.0

    cdef Rows rows
    rows.fills = NULL
    rows.fundings = NULL
    rows.liquidations = NULL
    rows.rejections = NULL
    rows.fill_count = rows.fill_capacity = 0
    rows.funding_count = rows.funding_capacity = 0
    rows.liquidation_count = rows.liquidation_capacity = 0
    rows.reject_count = rows.reject_capacity = 0
    try:
        with nogil:
            run(
                &book,
                &rows,
                opens,
                highs,
                lows,
                closes,
                mark_opens,
                mark_highs,
                mark_lows,
                funding_rates,
                targets,
                reasons,
                stops,
                take_profits,
                funding_on,
                floors,
                caps,
                rates,
                amounts,
                max_leverages,
                visited,
                values,
                cashes,
                sizes,
                margins,
                liquidations,
                funding_cums,
                fee_cums,
            )
        if book.error:
            raise book_error(&book)
        columns = [
            *fill_columns(&rows),
            *funding_columns(&rows),
            *liquidation_columns(&rows),
            *rejection_columns(&rows),
        ]
    finally:
        free_rows(&rows)
        free(book.pending)
        free(book.waiting)
        free(book.cancelled)
    final_value = float(value_array[count - 1]) if count else float(cash)
    return (
        value_array,
        cash_array,
        size_array,
        margin_array,
        liquidation_array,
        funding_array,
        fee_array,
        *columns,
        final_value,
    )


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
    """Liquidation price of one position as the simulator's C code computes it (for tests).

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
        price = liq_price_one(
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
    if side > 0 and price < 0.0:
        return 0.0
    return price
