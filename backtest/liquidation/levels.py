"""Round (psychological) price levels: where traders put entries, stops and take-profits.

Prices that are round numbers attract resting orders: take-profit orders cluster at round
numbers and stop orders just beyond them (C. Osler, "Currency orders and exchange rate
dynamics: an explanation for the predictive success of technical analysis", Journal of
Finance 58(5), 2003).  Leveraged entries cluster there too, which is why the liquidation map
gives round levels extra entry weight.

What counts as round depends on the price's magnitude.  The *step* between adjacent levels is
taken from the 1–5 sequence (…, 10, 50, 100, 500, 1000, 5000, …) as the value closest (in
ratio) to one hundredth of the price, so levels are 0.45 %–2.2 % apart at any magnitude:

=============  ======  =======  ===========================================
price           step    major    examples
=============  ======  =======  ===========================================
85,000 (BTC)    1,000   5,000    84,000, 85,000 (major), 86,000
115,000 (BTC)   1,000   5,000    114,000, 115,000 (major), 116,000
2,800 (ETH)        50     500    2,750, 2,800, 2,850; 2,500 and 3,000 major
4,100 (ETH)        50     500    4,050, 4,100; 4,000 and 4,500 major
0.52 (DOGE)     0.005    0.05    0.515, 0.52, 0.525; 0.5 and 0.55 major
=============  ======  =======  ===========================================

The *major* step is the next coarser value of the form 5·10^k, so a major level is also a
level.  :func:`round_step` is written with the very operations the map's kernel uses
(``ext/_heatmap.pyx``), so both agree on every price.
"""

from __future__ import annotations

import math

import numpy as np

from backtest.errors import ConfigError

#: log(100): levels are about one hundredth of the price apart.
LOG_HUNDRED = math.log(100.0)
#: log(10), to turn a natural log into a decimal exponent.
LOG_TEN = math.log(10.0)
#: Boundaries between the 1–5 steps, as mantissas of price/100: sqrt(5) (1 → 5) and
#: sqrt(50) (5 → 10); a step is chosen when it is the nearest in ratio.
STEP_ONE_BELOW = math.sqrt(5.0)
STEP_FIVE_BELOW = math.sqrt(50.0)
#: Decimal exponents covered (prices from about 1e-10 to 1e14).
MIN_EXPONENT = -12
MAX_EXPONENT = 12
#: ``POWERS_OF_TEN[e - MIN_EXPONENT] == 10.0 ** e``; the kernel receives this same table.
POWERS_OF_TEN: tuple[float, ...] = tuple(10.0**e for e in range(MIN_EXPONENT, MAX_EXPONENT + 1))


def _check_price(price: float, name: str = "price") -> float:
    try:
        value = float(price)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0.0):
        raise ConfigError(f"{name} must be a positive finite number, got {price!r}")
    return value


def step_for(price: float, log_price: float) -> tuple[float, int]:
    """Round-level step and the number of steps per major step around ``price``.

    This is the definition the kernel mirrors operation for operation (it has ``log(price)``
    at hand already, hence the second argument).

    Parameters
    ----------
    price : float
        A positive price.
    log_price : float
        ``math.log(price)``.

    Returns
    -------
    step : float
        Distance between adjacent round levels.
    major_every : int
        How many steps make a major step (5 when the step is 1·10^k, else 10).
    """
    exponent = math.floor((log_price - LOG_HUNDRED) / LOG_TEN)
    exponent = min(max(exponent, MIN_EXPONENT + 1), MAX_EXPONENT - 1)
    base = POWERS_OF_TEN[exponent - MIN_EXPONENT]
    mantissa = price / 100.0 / base
    if mantissa >= 10.0:
        exponent += 1
        base = POWERS_OF_TEN[exponent - MIN_EXPONENT]
        mantissa = mantissa / 10.0
    elif mantissa < 1.0:
        exponent -= 1
        base = POWERS_OF_TEN[exponent - MIN_EXPONENT]
        mantissa = mantissa * 10.0
    if mantissa < STEP_ONE_BELOW:
        return base, 5
    if mantissa < STEP_FIVE_BELOW:
        return 5.0 * base, 10
    return 10.0 * base, 5


def _step_pair(price: float) -> tuple[float, int]:
    value = _check_price(price)
    return step_for(value, math.log(value))


def round_step(price: float) -> float:
    """Distance between adjacent round levels around ``price``.

    Examples
    --------
    >>> round_step(85_000.0), round_step(2_800.0)
    (1000.0, 50.0)
    """
    return _step_pair(price)[0]


def major_step(price: float) -> float:
    """Distance between adjacent *major* round levels around ``price`` (85,000 is major)."""
    step, major_every = _step_pair(price)
    return step * major_every


def _step(price: float, major: bool) -> float:
    step, major_every = _step_pair(price)
    return step * major_every if major else step


def nearest_level_below(price: float, *, major: bool = False) -> float:
    """The largest round level at or below ``price`` (the step of ``price``'s magnitude).

    Parameters
    ----------
    price : float
        A positive price.
    major : bool
        Only major levels.

    Returns
    -------
    float
        The level; equal to ``price`` when ``price`` is itself a level.
    """
    step = _step(price, major)
    return math.floor(price / step + 1e-9) * step


def nearest_level_above(price: float, *, major: bool = False) -> float:
    """The smallest round level at or above ``price``; ``price`` itself when it is a level."""
    step = _step(price, major)
    return math.ceil(price / step - 1e-9) * step


def nearest_level(price: float, *, major: bool = False) -> float:
    """The round level closest to ``price`` (the lower one on an exact tie)."""
    below = nearest_level_below(price, major=major)
    above = nearest_level_above(price, major=major)
    return below if price - below <= above - price else above


def is_round_level(price: float, *, major: bool = False) -> bool:
    """True when ``price`` is a round level (within a relative 1e-9)."""
    step = _step(price, major)
    ratio = price / step
    return abs(ratio - round(ratio)) <= 1e-9 * max(1.0, abs(ratio))


def distance_pct(price: float, level: float) -> float:
    """Signed distance from ``price`` to ``level`` in percent of ``price``.

    Positive when the level is above the price: ``distance_pct(100, 103) == 3.0``.
    """
    reference = _check_price(price)
    return (float(level) - reference) / reference * 100.0


def levels_between(low: float, high: float, *, major: bool = False) -> np.ndarray:
    """All round levels in ``[low, high]``, using the step of ``low``'s magnitude.

    Parameters
    ----------
    low, high : float
        Positive bounds with ``low <= high``.
    major : bool
        Only major levels.

    Returns
    -------
    numpy.ndarray
        Levels in increasing order (float64), possibly empty.

    Raises
    ------
    ConfigError
        For non-positive bounds, ``low > high`` or a range holding more than 100,000 levels.
    """
    low = _check_price(low, "low")
    high = _check_price(high, "high")
    if low > high:
        raise ConfigError(f"low {low:g} is above high {high:g}; pass low <= high")
    step = _step(low, major)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    if last - first > 100_000:
        raise ConfigError(
            f"{last - first + 1} round levels between {low:g} and {high:g}; narrow the range"
        )
    return np.arange(first, last + 1, dtype=np.float64) * step
