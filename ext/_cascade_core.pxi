# Cascade core: the liquidation-cascade fixed point over one density snapshot, in C.
#
# Included textually, never compiled alone:
#     include "_cascade_core.pxi"        (ext/_cascade.pyx and ext/_heatmap.pyx)
# Every name it defines starts with `cascade_`, `Cascade` or `CASCADE_`, so the including module
# keeps its own namespace.  The pure-Python twin, which is the specification, is
# backtest/liquidation/reference/cascade.py; the Python API is backtest/liquidation/cascade.py.
#
# Density layout (CONTRACTS.md): bucket i spans exp(log_price_min + i*log_step) ..
# exp(log_price_min + (i+1)*log_step); long_notional[i], short_notional[i] in quote currency.
# A bucket's level is its log-centre c_i = log_price_min + (i + 0.5)*log_step.  A price path
# from p0 down to p liquidates the long buckets with log p <= c_i <= log p0; up to p, the short
# buckets with log p0 <= c_i <= log p.  Levels on the far side of p0 are not "crossed".
#
# The cascade, in log price x (x0 = log p0, xs = log(p0*(1 + shock)), direction d = sign(shock)):
#     Q(x)  = notional liquidated between x0 and x (whole buckets, cursor-amortised O(n))
#     x_{k+1} = xs + d * I(Q(x_k), x_k),  x_1 = xs
# I is the relative impact, applied as a log-return (the continuous form of dP/P, so the price
# stays positive), clipped at CASCADE_MAX_IMPACT = 5 (a 148-fold move, far off any realistic
# grid, so such a step ends as a grid-edge runaway) to keep the arithmetic finite:
#     sqrt model:  I = Y * sigma * sqrt(Q / V)                  (square-root law)
#     depth model: I = Q / D,  D = depth_ratio * V * max(1 - depth_stress * drawdown, depth_floor)
#                  drawdown = |p/p0 - 1| at the current price.
# sigma = daily volatility (fraction), V = daily traded notional (quote currency).  The map
# x -> xs + d*I is monotone, so the iterates move one way and stop at the first fixed point.
# Stop rules: converged when |x_{k+1} - x_k| <= tolerance and no new bucket was crossed;
# otherwise each iteration is a step, and the cascade stops as a runaway when the price leaves
# the grid (CASCADE_GRID_EDGE), the depth hits its floor (CASCADE_DEPTH_FLOOR; that step is
# applied with the floored depth) or max_steps steps were made (CASCADE_MAX_STEPS).
# Outputs: end_price = p0*(1 + shock)*exp(x - xs) (exactly the shock price when nothing was
# liquidated), liquidated_notional = Q (including what the shock itself liquidated),
# amplification = (p0 - end_price) / (p0 - p0*(1 + shock)), steps, stop code.
#
# Inputs are trusted: the Python wrappers check them (finite non-negative densities, n >= 0).
# cascade_simulate itself rejects a bad scalar (price <= 0, |shock| < 1e-12, shock <= -1 or
# > 10, log_step <= 0, V <= 0, sigma < 0 or NaN for the sqrt model) by filling the outcome with
# NaN and
# stop = CASCADE_INVALID; it returns -1 then, else 0.
#
# Per-bar inputs for the map (the cascade_risk line):
#     CascadeMarketState + cascade_state_update(state, close, volume, alpha) once per bar, with
#     alpha = cascade_ewma_alpha(halflife_bars); then sigma = cascade_state_daily_volatility(
#     state, bars_per_day) and V = cascade_state_daily_notional(state, bars_per_day) (NaN until
#     the state has one return); then cascade_standard_risk(...) gives the bar's cascade_risk =
#     max(amplification of -shock on the longs, amplification of +shock on the shorts), NaN when
#     sigma or V is not available.

from libc.math cimport ceil, exp, expm1, fabs, floor, isfinite, log, log1p, sqrt, NAN

cdef enum:
    CASCADE_MODEL_SQRT = 0
    CASCADE_MODEL_DEPTH = 1

cdef double CASCADE_MAX_IMPACT = 5.0
cdef double CASCADE_MIN_SHOCK = 1e-12
cdef double CASCADE_MAX_SHOCK = 10.0

cdef enum:
    CASCADE_CONVERGED = 0
    CASCADE_MAX_STEPS = 1
    CASCADE_GRID_EDGE = 2
    CASCADE_DEPTH_FLOOR = 3
    CASCADE_INVALID = 4


ctypedef struct CascadeModel:
    int model                   # CASCADE_MODEL_SQRT or CASCADE_MODEL_DEPTH
    double impact_coefficient   # Y of the square-root law
    double depth_ratio          # D0 / V: linear depth as a multiple of the daily notional
    double depth_stress         # k: depth shrinks by k * drawdown
    double depth_floor          # smallest depth fraction, in (0, 1)
    double tolerance            # convergence on log price (relative price change)
    Py_ssize_t max_steps        # >= 1


ctypedef struct CascadeOutcome:
    double end_price
    double liquidated_notional
    double amplification
    Py_ssize_t steps
    int stop                    # CASCADE_CONVERGED ... CASCADE_INVALID


ctypedef struct CascadeMarketState:
    double last_close
    double variance             # EWMA of squared close-to-close log returns, per bar
    double notional             # EWMA of close * volume, per bar
    bint has_close
    bint has_variance


cdef inline double cascade_take(const double* density, Py_ssize_t n, Py_ssize_t* cursor,
                                double log_price, double log_price_min, double log_step,
                                bint down) noexcept nogil:
    """Sum the buckets the price has now crossed and advance the cursor past them."""
    cdef double taken = 0.0
    cdef Py_ssize_t i = cursor[0]
    if down:
        while i >= 0 and log_price_min + (i + 0.5) * log_step >= log_price:
            taken += density[i]
            i -= 1
    else:
        while i < n and log_price_min + (i + 0.5) * log_step <= log_price:
            taken += density[i]
            i += 1
    cursor[0] = i
    return taken


cdef inline double cascade_impact(const CascadeModel* model, double liquidated,
                                  double log_price, double log_price0, double sigma,
                                  double daily_notional, bint* floor_hit) noexcept nogil:
    """Relative impact (a log-return, clipped) of `liquidated` notional at the current price."""
    cdef double drawdown, shrink, impact
    if liquidated <= 0.0:
        return 0.0
    if model.model == CASCADE_MODEL_SQRT:
        impact = model.impact_coefficient * sigma * sqrt(liquidated / daily_notional)
    else:
        drawdown = fabs(exp(log_price - log_price0) - 1.0)
        shrink = 1.0 - model.depth_stress * drawdown
        if shrink <= model.depth_floor:
            floor_hit[0] = True
            shrink = model.depth_floor
        impact = liquidated / (model.depth_ratio * daily_notional * shrink)
    if impact > CASCADE_MAX_IMPACT:
        return CASCADE_MAX_IMPACT
    return impact


cdef inline void cascade_fill_invalid(CascadeOutcome* out) noexcept nogil:
    out.end_price = NAN
    out.liquidated_notional = NAN
    out.amplification = NAN
    out.steps = 0
    out.stop = CASCADE_INVALID


cdef int cascade_simulate(const double* long_notional, const double* short_notional,
                          Py_ssize_t n, double log_price_min, double log_step, double price,
                          double shock_fraction, double daily_volatility,
                          double daily_notional, const CascadeModel* model,
                          CascadeOutcome* out) noexcept nogil:
    """Run one cascade; see the contract at the top of this file.  Returns 0, or -1 if invalid."""
    cdef const double* density
    cdef double x0, xs, x, x_new, liquidated, taken, start, shock_price, log_price_max
    cdef Py_ssize_t cursor, steps
    cdef bint down, moved
    cdef bint floor_hit = False
    cdef int stop = CASCADE_CONVERGED
    if not (n >= 0 and isfinite(log_price_min) and isfinite(log_step) and log_step > 0.0
            and isfinite(price) and price > 0.0 and isfinite(shock_fraction)
            and shock_fraction > -1.0 and shock_fraction <= CASCADE_MAX_SHOCK
            and fabs(shock_fraction) >= CASCADE_MIN_SHOCK
            and isfinite(daily_notional) and daily_notional > 0.0
            and (model.model == CASCADE_MODEL_DEPTH
                 or (isfinite(daily_volatility) and daily_volatility >= 0.0))):
        cascade_fill_invalid(out)
        return -1
    down = shock_fraction < 0.0
    x0 = log(price)
    xs = x0 + log1p(shock_fraction)
    log_price_max = log_price_min + n * log_step
    start = (x0 - log_price_min) / log_step - 0.5
    if down:
        density = long_notional
        start = floor(start)
        if start > n - 1.0:
            start = n - 1.0
        if start < -1.0:
            start = -1.0
    else:
        density = short_notional
        start = ceil(start)
        if start < 0.0:
            start = 0.0
        if start > <double> n:
            start = <double> n
    cursor = <Py_ssize_t> start

    x = xs
    liquidated = cascade_take(density, n, &cursor, x, log_price_min, log_step, down)
    steps = 0
    while True:
        if down:
            x_new = xs - cascade_impact(model, liquidated, x, x0, daily_volatility,
                                        daily_notional, &floor_hit)
        else:
            x_new = xs + cascade_impact(model, liquidated, x, x0, daily_volatility,
                                        daily_notional, &floor_hit)
        moved = fabs(x_new - x) > model.tolerance
        x = x_new
        taken = cascade_take(density, n, &cursor, x, log_price_min, log_step, down)
        liquidated = liquidated + taken
        if not moved and taken == 0.0:
            break
        steps += 1
        if floor_hit:
            stop = CASCADE_DEPTH_FLOOR
            break
        if (down and x < log_price_min) or (not down and x > log_price_max):
            stop = CASCADE_GRID_EDGE
            break
        if steps >= model.max_steps:
            stop = CASCADE_MAX_STEPS
            break

    shock_price = price * (1.0 + shock_fraction)
    out.end_price = shock_price * exp(x - xs)
    out.liquidated_notional = liquidated
    out.amplification = (price - out.end_price) / (price - shock_price)
    out.steps = steps
    out.stop = stop
    return 0


cdef double cascade_standard_risk(const double* long_notional, const double* short_notional,
                                  Py_ssize_t n, double log_price_min, double log_step,
                                  double price, double shock_fraction, double daily_volatility,
                                  double daily_notional, const CascadeModel* model) noexcept nogil:
    """Per-bar cascade_risk: the larger amplification of -shock (longs) and +shock (shorts).

    `shock_fraction` is the positive size of the standard shock (0.02 for 2 %).  NaN when the
    inputs are not usable (e.g. sigma or V still NaN during the warm-up).
    """
    cdef CascadeOutcome down_outcome, up_outcome
    if cascade_simulate(long_notional, short_notional, n, log_price_min, log_step, price,
                        -shock_fraction, daily_volatility, daily_notional, model,
                        &down_outcome) != 0:
        return NAN
    if cascade_simulate(long_notional, short_notional, n, log_price_min, log_step, price,
                        shock_fraction, daily_volatility, daily_notional, model,
                        &up_outcome) != 0:
        return NAN
    if up_outcome.amplification > down_outcome.amplification:
        return up_outcome.amplification
    return down_outcome.amplification


cdef inline double cascade_ewma_alpha(double halflife_bars) noexcept nogil:
    """EWMA weight of the newest bar for a half-life in bars: 1 - 2**(-1/halflife_bars)."""
    return -expm1(-log(2.0) / halflife_bars)


cdef inline void cascade_state_reset(CascadeMarketState* state) noexcept nogil:
    state.last_close = NAN
    state.variance = NAN
    state.notional = NAN
    state.has_close = False
    state.has_variance = False


cdef inline void cascade_state_update(CascadeMarketState* state, double close, double volume,
                                      double alpha) noexcept nogil:
    """Fold one bar into the EWMA state; bars with NaN, non-positive close or volume are skipped."""
    cdef double notional, log_return
    if not (isfinite(close) and close > 0.0 and isfinite(volume) and volume > 0.0):
        return
    notional = close * volume
    if state.has_close:
        log_return = log(close / state.last_close)
        if state.has_variance:
            state.variance = state.variance + alpha * (log_return * log_return - state.variance)
        else:
            state.variance = log_return * log_return
            state.has_variance = True
        state.notional = state.notional + alpha * (notional - state.notional)
    else:
        state.notional = notional
        state.has_close = True
    state.last_close = close


cdef inline double cascade_state_daily_volatility(const CascadeMarketState* state,
                                                  double bars_per_day) noexcept nogil:
    """Daily volatility sqrt(variance * bars_per_day); NaN before the first return."""
    if not state.has_variance:
        return NAN
    return sqrt(state.variance * bars_per_day)


cdef inline double cascade_state_daily_notional(const CascadeMarketState* state,
                                                double bars_per_day) noexcept nogil:
    """Daily traded notional notional * bars_per_day; NaN before the state has a return."""
    if not state.has_variance:
        return NAN
    return state.notional * bars_per_day


cdef CascadeModel cascade_model_from(tuple model_params, str argument) except *:
    """Unpack and check the ``model_params`` tuple (``CascadeParams.kernel_args()``).

    Python-level (raises ``ValueError``); ``argument`` names the caller's argument in messages.
    """
    cdef CascadeModel model
    if len(model_params) != 7:
        raise ValueError(
            f"{argument} must be (model, impact_coefficient, depth_ratio, depth_stress, "
            f"depth_floor, tolerance, max_steps), got {len(model_params)} values"
        )
    model.model = int(model_params[0])
    model.impact_coefficient = float(model_params[1])
    model.depth_ratio = float(model_params[2])
    model.depth_stress = float(model_params[3])
    model.depth_floor = float(model_params[4])
    model.tolerance = float(model_params[5])
    model.max_steps = int(model_params[6])
    if model.model != CASCADE_MODEL_SQRT and model.model != CASCADE_MODEL_DEPTH:
        raise ValueError(f"cascade model must be 0 (sqrt) or 1 (depth), got {model.model}")
    if model.max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {model.max_steps}")
    return model
