"""The scorecard's figures: how well a per-bar estimate of liquidations follows the truth.

Every function takes equal-length float arrays, one value per truth bar (the estimate already
summed into the truth's bars), and returns one float (NaN when the figure is undefined, e.g. a
constant series).  NaN inputs are never passed here: the scorecard drops unscored bars first.

Definitions
-----------
Spearman rank correlation
    Pearson correlation of the ranks (ties get their average rank), as
    :func:`scipy.stats.spearmanr`.  Insensitive to the estimate's scale and to any monotone
    distortion, so it judges *when* liquidations happen, not how much.
Long-share correlation on the busiest quarter
    Pearson correlation between the estimated and the recorded long share
    ``long / (long + short)`` over the bars whose recorded total is at or above its 75th
    percentile (bars with no estimated liquidation are left out of that quarter).  Quiet bars
    are left out because their split is noise (a few small orders); the busy ones are where a
    trader needs to know which side is being flushed.
Explained variance added over the naive proxy
    With ``y = log(1 + truth)``, ``n = log(1 + naive)`` and ``e = log(1 + estimate)``, fit
    ordinary least squares ``y ~ 1 + n`` and ``y ~ 1 + n + e``; the figure is the share of the
    variance the naive proxy leaves unexplained that the estimate explains::

        (R²(n, e) − R²(n)) / (1 − R²(n))

    (the partial R² of ``e`` given ``n``).  0 means the estimate adds nothing the naive proxy
    does not already say, 1 means it explains all that is left.  Logs make a bar with
    $500 M weigh like a few bars with $5 M rather than like a hundred.
Top-decile hit rate
    Of the truth's top-10 % bars (``ceil(0.1·n)`` bars, ties broken by time), the share that
    are also among the estimate's top-10 % bars.  A random estimate scores about 0.10.
Scale
    ``sum(estimate) / sum(truth)``: how many times the recorded notional the estimate claims.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

FloatArray = npt.NDArray[np.float64]

#: Fraction of bars in the "busiest quarter" (long-share correlation).
BUSY_QUANTILE = 0.75
#: Fraction of bars in the top decile (hit rate).
TOP_FRACTION = 0.10


def _pearson(x: FloatArray, y: FloatArray) -> float:
    if x.shape[0] < 3:
        return math.nan
    x_centred = x - x.mean()
    y_centred = y - y.mean()
    denominator = math.sqrt(float(x_centred @ x_centred) * float(y_centred @ y_centred))
    if denominator == 0.0 or not math.isfinite(denominator):
        return math.nan
    return float(x_centred @ y_centred) / denominator


def spearman(estimate: FloatArray, truth: FloatArray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN for a constant series."""
    estimate = np.asarray(estimate, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    return _pearson(rankdata(estimate), rankdata(truth))


def long_share_correlation(
    estimate_long: FloatArray,
    estimate_short: FloatArray,
    truth_long: FloatArray,
    truth_short: FloatArray,
    busy_quantile: float = BUSY_QUANTILE,
) -> float:
    """Correlation of the long share ``long/(long+short)`` on the busiest bars of the truth.

    Busy bars: recorded total at or above its ``busy_quantile`` quantile (linear
    interpolation, as :func:`numpy.quantile`); bars where either total is zero are left out.
    """
    estimate_long = np.asarray(estimate_long, dtype=np.float64)
    estimate_short = np.asarray(estimate_short, dtype=np.float64)
    truth_long = np.asarray(truth_long, dtype=np.float64)
    truth_short = np.asarray(truth_short, dtype=np.float64)
    truth_total = truth_long + truth_short
    estimate_total = estimate_long + estimate_short
    if truth_total.shape[0] == 0:
        return math.nan
    threshold = float(np.quantile(truth_total, busy_quantile))
    busy = (truth_total >= threshold) & (truth_total > 0.0) & (estimate_total > 0.0)
    return _pearson(
        estimate_long[busy] / estimate_total[busy], truth_long[busy] / truth_total[busy]
    )


def _r_squared(target: FloatArray, regressors: list[FloatArray]) -> float:
    design = np.column_stack([np.ones(target.shape[0]), *regressors])
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ coefficients
    total = float(((target - target.mean()) ** 2).sum())
    if total == 0.0:
        return math.nan
    return 1.0 - float(residual @ residual) / total


def explained_variance_added(estimate: FloatArray, naive: FloatArray, truth: FloatArray) -> float:
    """Partial R² of ``log(1+estimate)`` for ``log(1+truth)`` given ``log(1+naive)``.

    ``(R²(naive, estimate) − R²(naive)) / (1 − R²(naive))`` with ordinary least squares and an
    intercept (see the module docstring).  NaN for fewer than 4 bars or a constant truth.
    """
    estimate = np.asarray(estimate, dtype=np.float64)
    naive = np.asarray(naive, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if truth.shape[0] < 4:
        return math.nan
    target = np.log1p(truth)
    log_naive = np.log1p(naive)
    base = _r_squared(target, [log_naive])
    joint = _r_squared(target, [log_naive, np.log1p(estimate)])
    if not (math.isfinite(base) and math.isfinite(joint)) or base >= 1.0:
        return math.nan
    return (joint - base) / (1.0 - base)


def _top(values: FloatArray, count: int) -> set[int]:
    # stable sort on the negated values: among equal values the earlier bar ranks first
    order = np.argsort(-values, kind="stable")
    return {int(position) for position in order[:count]}


def top_decile_hit_rate(
    estimate: FloatArray, truth: FloatArray, fraction: float = TOP_FRACTION
) -> float:
    """Share of the truth's top ``fraction`` bars that are also in the estimate's top bars."""
    estimate = np.asarray(estimate, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    length = truth.shape[0]
    if length == 0:
        return math.nan
    count = max(1, math.ceil(fraction * length - 1e-9))
    return len(_top(estimate, count) & _top(truth, count)) / count


def scale(estimate: FloatArray, truth: FloatArray) -> float:
    """``sum(estimate) / sum(truth)``; NaN when the truth sums to zero."""
    total = float(np.sum(truth))
    if total == 0.0:
        return math.nan
    return float(np.sum(estimate)) / total


__all__ = [
    "BUSY_QUANTILE",
    "TOP_FRACTION",
    "explained_variance_added",
    "long_share_correlation",
    "scale",
    "spearman",
    "top_decile_hit_rate",
]
