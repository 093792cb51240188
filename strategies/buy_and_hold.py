"""Buy and hold: the baseline every other strategy has to beat."""

from __future__ import annotations

import types

import numpy as np

import backtest


class BuyAndHold(backtest.Strategy):
    """Buy on the first bar and hold to the end (the benchmark).

    Parameters
    ----------
    exposure : float
        Position notional as a multiple of equity (1.0 = unlevered exposure; the run's leverage
        only decides how much margin that locks).
    """

    uses_clusters = False
    params = (("exposure", 1.0),)

    def next(self) -> None:
        """Enter once; never exit."""
        if not self.position:
            self.target_exposure(self.p.exposure)

    @classmethod
    def decide(cls, bars: backtest.arrays.bars.Bars, params: types.SimpleNamespace) -> np.ndarray:
        """Enter at the first bar's close, then no decision.

        Unlike ``next``, the array form does not enter again after a refused entry or a
        liquidation (it cannot see either); it equals ``next`` whenever the entry fills and the
        position is never liquidated.
        """
        target = np.full(len(bars), np.nan)
        if len(bars):
            target[0] = params.exposure
        return target
