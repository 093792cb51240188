"""A moving-average crossover: the plain trend-following baseline."""

from __future__ import annotations

import backtrader as bt

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
