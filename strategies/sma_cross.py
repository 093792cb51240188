"""A moving-average crossover: the plain trend-following baseline."""

from __future__ import annotations

import math
import types

import backtrader as bt
import numpy as np

import backtest


class SmaCross(backtest.Strategy):
    """Long while the fast SMA is above the slow one (short below it if allowed).

    Parameters
    ----------
    fast, slow : int
        Periods of the two simple moving averages of the close, in bars.
    exposure : float
        Position notional as a multiple of equity.
    allow_short : bool
        Also hold a short while the fast average is below the slow one.
    """

    uses_clusters = False
    decide_independent_of_fills = True  # orders on crossings only, whatever the position
    params = (("fast", 10), ("slow", 30), ("exposure", 1.0), ("allow_short", False))
    positive_params = ("fast", "slow")

    def __init__(self) -> None:
        fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
        slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
        self.crossover = bt.indicators.CrossOver(fast, slow)

    def next(self) -> None:
        """Flip on crossings only, so the baseline trades as rarely as the signal does."""
        if self.crossover[0] > 0:
            self.target_exposure(self.p.exposure)
        elif self.crossover[0] < 0:
            self.target_exposure(-self.p.exposure if self.p.allow_short else 0.0)

    @classmethod
    def decide(cls, bars: backtest.arrays.bars.Bars, params: types.SimpleNamespace) -> np.ndarray:
        """The same crossings over whole arrays (see :func:`crossover`)."""
        signal = crossover(bars.close, int(params.fast), int(params.slow))
        target = np.full(len(bars), np.nan)
        target[signal > 0] = params.exposure
        target[signal < 0] = -params.exposure if params.allow_short else 0.0
        return target


def rolling_mean(values: np.ndarray, period: int) -> np.ndarray:
    """The SMA of backtrader: ``math.fsum`` of the last ``period`` values / period (NaN before).

    NumPy's sums (any order) are within ``period`` units in the last place of the exact sum;
    the caller rounds only where that matters (:func:`crossover`).
    """
    result = np.full(values.shape[0], np.nan)
    if period <= values.shape[0]:
        windows = np.lib.stride_tricks.sliding_window_view(values, period)
        result[period - 1 :] = windows.sum(axis=1) / period
    return result


def _exact_mean(values: np.ndarray, end: int, period: int) -> float:
    return math.fsum(values[end - period + 1 : end + 1].tolist()) / period


def crossover(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """The ``CrossOver(SMA(fast), SMA(slow))`` of backtrader over whole arrays, exact in sign.

    +1 where the fast average crosses above the slow one, -1 where it crosses below, 0
    elsewhere (and before the first bar the event strategy sees, ``max(fast, slow)``).  As in
    backtrader, the crossing compares the bar's averages with the last *non-zero* difference
    (``NonZeroDifference``): equal averages neither cross nor reset the side.  The averages
    are NumPy sums; wherever the difference is within their rounding bound, both are
    recomputed exactly as backtrader does (``math.fsum``), so crossings decided by tiny
    differences, and exact ties, agree with the event engine.
    """
    close = np.ascontiguousarray(close, dtype=np.float64)
    count = close.shape[0]
    signal = np.zeros(count, dtype=np.int8)
    start = max(fast, slow)  # the first bar of CrossOver (minimum period max + 1)
    if count <= start:
        return signal
    fast_mean = rolling_mean(close, fast)
    slow_mean = rolling_mean(close, slow)
    first = start - 1
    difference = fast_mean[first:] - slow_mean[first:]
    # rounding bound of a NumPy sum of n positive values: n ulps of the sum, and some margin
    bound = 4.0 * (fast + slow + 2) * np.finfo(np.float64).eps
    bound = bound * (np.abs(fast_mean[first:]) + np.abs(slow_mean[first:]))
    unsure = np.flatnonzero(~(np.abs(difference) > bound))
    for offset in unsure.tolist():
        index = first + offset
        difference[offset] = _exact_mean(close, index, fast) - _exact_mean(close, index, slow)
    sign = np.sign(difference)
    # NonZeroDifference: carry the last non-zero difference over zero ones (seeded by the first)
    positions = np.where(sign != 0, np.arange(sign.shape[0]), 0)
    np.maximum.accumulate(positions, out=positions)
    carried = sign[positions]
    before, now = carried[:-1], sign[1:]
    signal[start:] = np.where(
        (before < 0) & (now > 0), 1, np.where((before > 0) & (now < 0), -1, 0)
    )
    return signal
