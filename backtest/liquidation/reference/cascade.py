"""Pure-Python specification of the cascade kernel (``ext/_cascade.pyx`` + ``_cascade_core.pxi``).

Same functions, arguments and outputs as the compiled module, written for reading: one loop
per idea, Python floats only.  Tests compare the two with ``assert_allclose``.

The model (see :mod:`backtest.liquidation.cascade` for the rationale and sources): in log
price ``x``, with ``x0 = log p0``, ``xs = log(p0 (1 + shock))`` and ``d = sign(shock)``,

    x_{k+1} = xs + d * I(Q(x_k), x_k),   x_1 = xs,

where ``Q(x)`` is the notional of the buckets crossed between ``x0`` and ``x`` (a bucket's
level is its log-centre ``log_price_min + (i + 0.5) log_step``) and ``I`` the relative impact:
``Y sigma sqrt(Q / V)`` (square-root law) or ``Q / (depth_ratio V max(1 - k drawdown, floor))``
(depth model).  ``model_params`` is ``(model, impact_coefficient, depth_ratio, depth_stress,
depth_floor, tolerance, max_steps)`` with ``model`` 0 (sqrt) or 1 (depth).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

MODEL_SQRT = 0
MODEL_DEPTH = 1

CONVERGED = 0
MAX_STEPS = 1
GRID_EDGE = 2
DEPTH_FLOOR = 3
INVALID = 4

#: Largest impact of one step, in log price (a 148-fold move): keeps the arithmetic finite.
MAX_IMPACT = 5.0
#: Valid shocks (fractions): MIN_SHOCK <= |shock|, -1 < shock <= MAX_SHOCK.
MIN_SHOCK = 1e-12
MAX_SHOCK = 10.0

_NAN = float("nan")

FloatArray = npt.NDArray[np.float64]


def _unpack(model_params: Sequence[float]) -> tuple[int, float, float, float, float, float, int]:
    if len(model_params) != 7:
        raise ValueError(
            "model_params must be (model, impact_coefficient, depth_ratio, depth_stress, "
            f"depth_floor, tolerance, max_steps), got {len(model_params)} values"
        )
    model = int(model_params[0])
    max_steps = int(model_params[6])
    if model not in (MODEL_SQRT, MODEL_DEPTH):
        raise ValueError(f"model must be 0 (sqrt) or 1 (depth), got {model}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    return (
        model,
        float(model_params[1]),
        float(model_params[2]),
        float(model_params[3]),
        float(model_params[4]),
        float(model_params[5]),
        max_steps,
    )


def _start_cursor(
    log_price0: float, log_price_min: float, log_step: float, n: int, down: bool
) -> int:
    """Return the first bucket a move from ``log_price0`` can cross."""
    start = (log_price0 - log_price_min) / log_step - 0.5
    if down:
        return int(min(max(math.floor(start), -1.0), n - 1.0))
    return int(min(max(math.ceil(start), 0.0), float(n)))


def _impact(
    params: tuple[int, float, float, float, float, float, int],
    liquidated: float,
    log_price: float,
    log_price0: float,
    daily_volatility: float,
    daily_notional: float,
) -> tuple[float, bool]:
    """Return (relative impact as a log-return, whether the depth floor was hit)."""
    model, impact_coefficient, depth_ratio, depth_stress, depth_floor, _, _ = params
    if liquidated <= 0.0:
        return 0.0, False
    floor_hit = False
    if model == MODEL_SQRT:
        impact = impact_coefficient * daily_volatility * math.sqrt(liquidated / daily_notional)
    else:
        drawdown = abs(math.exp(log_price - log_price0) - 1.0)
        shrink = 1.0 - depth_stress * drawdown
        floor_hit = shrink <= depth_floor
        if floor_hit:
            shrink = depth_floor
        impact = liquidated / (depth_ratio * daily_notional * shrink)
    return min(impact, MAX_IMPACT), floor_hit


def _valid(
    n: int,
    log_price_min: float,
    log_step: float,
    price: float,
    shock_fraction: float,
    daily_volatility: float,
    daily_notional: float,
    model: int,
) -> bool:
    finite = math.isfinite
    return (
        n >= 0
        and finite(log_price_min)
        and finite(log_step)
        and log_step > 0.0
        and finite(price)
        and price > 0.0
        and finite(shock_fraction)
        and shock_fraction > -1.0
        and shock_fraction <= MAX_SHOCK
        and abs(shock_fraction) >= MIN_SHOCK
        and finite(daily_notional)
        and daily_notional > 0.0
        and (model == MODEL_DEPTH or (finite(daily_volatility) and daily_volatility >= 0.0))
    )


def _simulate_row(
    long_notional: Sequence[float],
    short_notional: Sequence[float],
    log_price_min: float,
    log_step: float,
    price: float,
    shock_fraction: float,
    daily_volatility: float,
    daily_notional: float,
    params: tuple[int, float, float, float, float, float, int],
) -> tuple[float, float, float, int, int]:
    n = len(long_notional)
    tolerance, max_steps = params[5], params[6]
    if not _valid(
        n,
        log_price_min,
        log_step,
        price,
        shock_fraction,
        daily_volatility,
        daily_notional,
        params[0],
    ):
        return _NAN, _NAN, _NAN, 0, INVALID
    down = shock_fraction < 0.0
    density = long_notional if down else short_notional
    log_price0 = math.log(price)
    log_shock = log_price0 + math.log1p(shock_fraction)
    log_price_max = log_price_min + n * log_step
    cursor = _start_cursor(log_price0, log_price_min, log_step, n, down)

    def take(log_price: float) -> float:
        nonlocal cursor
        taken = 0.0
        if down:
            while cursor >= 0 and log_price_min + (cursor + 0.5) * log_step >= log_price:
                taken += float(density[cursor])
                cursor -= 1
        else:
            while cursor < n and log_price_min + (cursor + 0.5) * log_step <= log_price:
                taken += float(density[cursor])
                cursor += 1
        return taken

    log_price = log_shock
    liquidated = take(log_price)
    steps = 0
    stop = CONVERGED
    floor_hit = False
    while True:
        impact, hit = _impact(
            params, liquidated, log_price, log_price0, daily_volatility, daily_notional
        )
        floor_hit = floor_hit or hit
        new_log_price = log_shock - impact if down else log_shock + impact
        moved = abs(new_log_price - log_price) > tolerance
        log_price = new_log_price
        taken = take(log_price)
        liquidated = liquidated + taken
        if not moved and taken == 0.0:
            break
        steps += 1
        if floor_hit:
            stop = DEPTH_FLOOR
            break
        if (down and log_price < log_price_min) or (not down and log_price > log_price_max):
            stop = GRID_EDGE
            break
        if steps >= max_steps:
            stop = MAX_STEPS
            break

    shock_price = price * (1.0 + shock_fraction)
    end_price = shock_price * math.exp(log_price - log_shock)
    amplification = (price - end_price) / (price - shock_price)
    return end_price, liquidated, amplification, steps, stop


def simulate(
    long_notional: FloatArray,
    short_notional: FloatArray,
    log_price_min: float,
    log_step: float,
    price: float,
    shock_fraction: float,
    daily_volatility: float,
    daily_notional: float,
    model_params: tuple[float, ...],
) -> tuple[float, float, float, int, int]:
    """Run one cascade.

    Returns
    -------
    tuple
        ``(end_price, liquidated_notional, amplification, steps, stop)``; ``stop`` is 0
        (converged), 1 (max steps), 2 (grid edge), 3 (depth floor) or 4 (invalid input, the
        floats are NaN).
    """
    params = _unpack(model_params)
    if len(short_notional) != len(long_notional):
        raise ValueError(
            f"long_notional and short_notional differ in length ({len(long_notional)} vs "
            f"{len(short_notional)})"
        )
    return _simulate_row(
        np.asarray(long_notional, dtype=np.float64).tolist(),
        np.asarray(short_notional, dtype=np.float64).tolist(),
        float(log_price_min),
        float(log_step),
        float(price),
        float(shock_fraction),
        float(daily_volatility),
        float(daily_notional),
        params,
    )


def _check_grid(
    long_notional: npt.NDArray[np.float64],
    short_notional: npt.NDArray[np.float64],
    per_row: dict[str, FloatArray],
) -> int:
    rows = long_notional.shape[0]
    if short_notional.shape != long_notional.shape:
        raise ValueError(
            f"long_notional and short_notional differ in shape ({long_notional.shape[0]}x"
            f"{long_notional.shape[1]} vs {short_notional.shape[0]}x{short_notional.shape[1]})"
        )
    for name, values in per_row.items():
        if values.shape[0] != rows:
            raise ValueError(f"{name} has {values.shape[0]} values for {rows} snapshots")
    return rows


def cascade_grid(
    long_notional: npt.NDArray[np.float64],
    short_notional: npt.NDArray[np.float64],
    log_price_min: FloatArray,
    log_step: FloatArray,
    price: FloatArray,
    daily_volatility: FloatArray,
    daily_notional: FloatArray,
    shock_fraction: FloatArray,
    model_params: tuple[float, ...],
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """Run every shock on every snapshot (one row per snapshot, one column per shock)."""
    params = _unpack(model_params)
    per_row = {
        "log_price_min": np.asarray(log_price_min, dtype=np.float64),
        "log_step": np.asarray(log_step, dtype=np.float64),
        "price": np.asarray(price, dtype=np.float64),
        "daily_volatility": np.asarray(daily_volatility, dtype=np.float64),
        "daily_notional": np.asarray(daily_notional, dtype=np.float64),
    }
    long_notional = np.asarray(long_notional, dtype=np.float64)
    short_notional = np.asarray(short_notional, dtype=np.float64)
    rows = _check_grid(long_notional, short_notional, per_row)
    shocks = np.asarray(shock_fraction, dtype=np.float64)
    end = np.empty((rows, shocks.shape[0]))
    liquidated = np.empty((rows, shocks.shape[0]))
    amplification = np.empty((rows, shocks.shape[0]))
    steps = np.empty((rows, shocks.shape[0]), dtype=np.int64)
    stop = np.empty((rows, shocks.shape[0]), dtype=np.int8)
    for row in range(rows):
        longs = long_notional[row].tolist()
        shorts = short_notional[row].tolist()
        for column, shock in enumerate(shocks.tolist()):
            outcome = _simulate_row(
                longs,
                shorts,
                float(per_row["log_price_min"][row]),
                float(per_row["log_step"][row]),
                float(per_row["price"][row]),
                shock,
                float(per_row["daily_volatility"][row]),
                float(per_row["daily_notional"][row]),
                params,
            )
            end[row, column], liquidated[row, column], amplification[row, column] = outcome[:3]
            steps[row, column], stop[row, column] = outcome[3], outcome[4]
    return end, liquidated, amplification, steps, stop


def standard_risk(
    long_notional: npt.NDArray[np.float64],
    short_notional: npt.NDArray[np.float64],
    log_price_min: FloatArray,
    log_step: FloatArray,
    price: FloatArray,
    daily_volatility: FloatArray,
    daily_notional: FloatArray,
    shock_fraction: float,
    model_params: tuple[float, ...],
) -> FloatArray:
    """Per-snapshot cascade_risk: max amplification of ``-shock`` (longs) and ``+shock`` (shorts).

    NaN for a snapshot whose inputs are not usable (for example sigma still NaN).
    """
    if not shock_fraction > 0.0:
        raise ValueError(f"shock_fraction must be positive, got {shock_fraction}")
    _, _, amplification, _, stop = cascade_grid(
        long_notional,
        short_notional,
        log_price_min,
        log_step,
        price,
        daily_volatility,
        daily_notional,
        np.array([-shock_fraction, shock_fraction]),
        model_params,
    )
    risk = np.maximum(amplification[:, 0], amplification[:, 1])
    risk[(stop == INVALID).any(axis=1)] = _NAN
    return risk


def ewma_alpha(halflife_bars: float) -> float:
    """EWMA weight of the newest bar for a half-life in bars: ``1 - 2**(-1/halflife_bars)``."""
    return -math.expm1(-math.log(2.0) / halflife_bars)


def market_state(
    close: FloatArray, volume: FloatArray, halflife_bars: float, bars_per_day: float
) -> tuple[FloatArray, FloatArray]:
    """Per-bar EWMA estimates of the daily volatility and the daily traded notional.

    The variance is an EWMA of squared close-to-close log returns, the notional an EWMA of
    ``close * volume``; both are per bar and scaled to a day by ``bars_per_day`` (square root
    for the volatility).  Bars with NaN or non-positive close or volume are skipped: the state
    carries over.  Both outputs are NaN until the first return.
    """
    close_list = np.asarray(close, dtype=np.float64).tolist()
    volume_list = np.asarray(volume, dtype=np.float64).tolist()
    if len(volume_list) != len(close_list):
        raise ValueError(f"close has {len(close_list)} values but volume has {len(volume_list)}")
    if not halflife_bars > 0.0:
        raise ValueError(f"halflife_bars must be positive, got {halflife_bars}")
    if not bars_per_day > 0.0:
        raise ValueError(f"bars_per_day must be positive, got {bars_per_day}")
    alpha = ewma_alpha(halflife_bars)
    volatility = np.empty(len(close_list))
    notional_out = np.empty(len(close_list))
    last_close = _NAN
    variance = _NAN
    notional = _NAN
    has_close = has_variance = False
    for i, (bar_close, bar_volume) in enumerate(zip(close_list, volume_list, strict=True)):
        usable = (
            math.isfinite(bar_close)
            and bar_close > 0.0
            and math.isfinite(bar_volume)
            and bar_volume > 0.0
        )
        if usable:
            bar_notional = bar_close * bar_volume
            if has_close:
                log_return = math.log(bar_close / last_close)
                if has_variance:
                    variance = variance + alpha * (log_return * log_return - variance)
                else:
                    variance = log_return * log_return
                    has_variance = True
                notional = notional + alpha * (bar_notional - notional)
            else:
                notional = bar_notional
                has_close = True
            last_close = bar_close
        volatility[i] = math.sqrt(variance * bars_per_day) if has_variance else _NAN
        notional_out[i] = notional * bars_per_day if has_variance else _NAN
    return volatility, notional_out
