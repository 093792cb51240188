"""Compiled cascade simulator: one cascade, a grid of snapshots x shocks, the per-bar risk line.

Thin Python-facing wrappers around the C core in ``_cascade_core.pxi`` (shared with the map
kernel).  The specification is the pure-Python twin
:mod:`backtest.liquidation.reference.cascade`, which has the same functions and signatures;
the public API with validation and clear errors is :mod:`backtest.liquidation.cascade`.

``model_params`` is the tuple ``(model, impact_coefficient, depth_ratio, depth_stress,
depth_floor, tolerance, max_steps)`` with ``model`` 0 (square-root law) or 1 (depth model), as
built by ``CascadeParams.kernel_args()``.
"""

import numpy as np

include "_cascade_core.pxi"


def simulate(const double[::1] long_notional, const double[::1] short_notional,
             double log_price_min, double log_step, double price, double shock_fraction,
             double daily_volatility, double daily_notional, tuple model_params):
    """Run one cascade.

    Returns
    -------
    tuple
        ``(end_price, liquidated_notional, amplification, steps, stop)``; ``stop`` is 0
        (converged), 1 (max steps), 2 (grid edge), 3 (depth floor) or 4 (invalid input, the
        floats are NaN).
    """
    cdef CascadeModel model = cascade_model_from(model_params, "model_params")
    cdef CascadeOutcome outcome
    cdef Py_ssize_t n = long_notional.shape[0]
    if short_notional.shape[0] != n:
        raise ValueError(
            f"long_notional and short_notional differ in length ({n} vs "
            f"{short_notional.shape[0]})"
        )
    with nogil:
        cascade_simulate(&long_notional[0] if n else NULL,
                         &short_notional[0] if n else NULL, n, log_price_min, log_step,
                         price, shock_fraction, daily_volatility, daily_notional, &model,
                         &outcome)
    return (outcome.end_price, outcome.liquidated_notional, outcome.amplification,
            outcome.steps, outcome.stop)


def _check_grid(long_notional, short_notional, log_price_min, log_step, price,
                daily_volatility, daily_notional):
    rows = long_notional.shape[0]
    if tuple(short_notional.shape[:2]) != tuple(long_notional.shape[:2]):
        raise ValueError(
            f"long_notional and short_notional differ in shape ({long_notional.shape[0]}x"
            f"{long_notional.shape[1]} vs {short_notional.shape[0]}x{short_notional.shape[1]})"
        )
    for name, values in (("log_price_min", log_price_min), ("log_step", log_step),
                         ("price", price), ("daily_volatility", daily_volatility),
                         ("daily_notional", daily_notional)):
        if values.shape[0] != rows:
            raise ValueError(f"{name} has {values.shape[0]} values for {rows} snapshots")
    return rows


def cascade_grid(const double[:, ::1] long_notional, const double[:, ::1] short_notional,
                 const double[::1] log_price_min, const double[::1] log_step,
                 const double[::1] price, const double[::1] daily_volatility,
                 const double[::1] daily_notional, const double[::1] shock_fraction,
                 tuple model_params):
    """Run every shock on every snapshot (one row per snapshot, one column per shock).

    Returns
    -------
    tuple of ndarray
        ``(end_price, liquidated_notional, amplification, steps, stop)``, each of shape
        ``(snapshots, shocks)``; float64 for the first three, int64 and int8 after.
    """
    cdef CascadeModel model = cascade_model_from(model_params, "model_params")
    cdef Py_ssize_t rows = _check_grid(long_notional, short_notional, log_price_min, log_step,
                                       price, daily_volatility, daily_notional)
    cdef Py_ssize_t n = long_notional.shape[1]
    cdef Py_ssize_t shocks = shock_fraction.shape[0]
    cdef Py_ssize_t row, column
    cdef CascadeOutcome outcome
    end_array = np.empty((rows, shocks), dtype=np.float64)
    liquidated_array = np.empty((rows, shocks), dtype=np.float64)
    amplification_array = np.empty((rows, shocks), dtype=np.float64)
    steps_array = np.empty((rows, shocks), dtype=np.int64)
    stop_array = np.empty((rows, shocks), dtype=np.int8)
    cdef double[:, ::1] end_view = end_array
    cdef double[:, ::1] liquidated_view = liquidated_array
    cdef double[:, ::1] amplification_view = amplification_array
    cdef long long[:, ::1] steps_view = steps_array
    cdef signed char[:, ::1] stop_view = stop_array
    with nogil:
        for row in range(rows):
            for column in range(shocks):
                cascade_simulate(&long_notional[row, 0] if n else NULL,
                                 &short_notional[row, 0] if n else NULL, n,
                                 log_price_min[row], log_step[row], price[row],
                                 shock_fraction[column], daily_volatility[row],
                                 daily_notional[row], &model, &outcome)
                end_view[row, column] = outcome.end_price
                liquidated_view[row, column] = outcome.liquidated_notional
                amplification_view[row, column] = outcome.amplification
                steps_view[row, column] = outcome.steps
                stop_view[row, column] = <signed char> outcome.stop
    return end_array, liquidated_array, amplification_array, steps_array, stop_array


def standard_risk(const double[:, ::1] long_notional, const double[:, ::1] short_notional,
                  const double[::1] log_price_min, const double[::1] log_step,
                  const double[::1] price, const double[::1] daily_volatility,
                  const double[::1] daily_notional, double shock_fraction,
                  tuple model_params):
    """Per-snapshot cascade_risk: max amplification of ``-shock`` and ``+shock``.

    ``shock_fraction`` is the positive size of the standard shock (0.02 for 2 %).
    """
    cdef CascadeModel model = cascade_model_from(model_params, "model_params")
    cdef Py_ssize_t rows = _check_grid(long_notional, short_notional, log_price_min, log_step,
                                       price, daily_volatility, daily_notional)
    cdef Py_ssize_t n = long_notional.shape[1]
    cdef Py_ssize_t row
    if not shock_fraction > 0.0:
        raise ValueError(f"shock_fraction must be positive, got {shock_fraction}")
    risk_array = np.empty(rows, dtype=np.float64)
    cdef double[::1] risk_view = risk_array
    with nogil:
        for row in range(rows):
            risk_view[row] = cascade_standard_risk(
                &long_notional[row, 0] if n else NULL,
                &short_notional[row, 0] if n else NULL, n, log_price_min[row],
                log_step[row], price[row], shock_fraction, daily_volatility[row],
                daily_notional[row], &model)
    return risk_array


def market_state(const double[::1] close, const double[::1] volume, double halflife_bars,
                 double bars_per_day):
    """Per-bar EWMA estimates of the daily volatility and the daily traded notional.

    Bars with NaN or non-positive close or volume are skipped (the state carries over).

    Returns
    -------
    tuple of ndarray
        ``(daily_volatility, daily_notional)``, NaN until the first close-to-close return.
    """
    cdef Py_ssize_t n = close.shape[0]
    cdef Py_ssize_t i
    cdef CascadeMarketState state
    cdef double alpha
    if volume.shape[0] != n:
        raise ValueError(f"close has {n} values but volume has {volume.shape[0]}")
    if not halflife_bars > 0.0:
        raise ValueError(f"halflife_bars must be positive, got {halflife_bars}")
    if not bars_per_day > 0.0:
        raise ValueError(f"bars_per_day must be positive, got {bars_per_day}")
    alpha = cascade_ewma_alpha(halflife_bars)
    volatility_array = np.empty(n, dtype=np.float64)
    notional_array = np.empty(n, dtype=np.float64)
    cdef double[::1] volatility_view = volatility_array
    cdef double[::1] notional_view = notional_array
    cascade_state_reset(&state)
    with nogil:
        for i in range(n):
            cascade_state_update(&state, close[i], volume[i], alpha)
            volatility_view[i] = cascade_state_daily_volatility(&state, bars_per_day)
            notional_view[i] = cascade_state_daily_notional(&state, bars_per_day)
    return volatility_array, notional_array
