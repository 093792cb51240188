"""A small strategy for the sweep tests: an SMA crossover that can be told to fail."""

from __future__ import annotations

import backtrader as bt

import backtest


class ToyCross(backtest.Strategy):
    """Long while the fast SMA is above the slow one, flat otherwise."""

    uses_clusters = False
    params = (("fast", 5), ("slow", 20), ("fraction", 0.5), ("explode_after", 0))

    def __init__(self) -> None:
        fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
        slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
        self.cross = bt.indicators.CrossOver(fast, slow)

    def next(self) -> None:
        if self.p.explode_after and len(self) >= self.p.explode_after:
            raise RuntimeError(f"explode_after={self.p.explode_after}: deliberate failure")
        if self.cross[0] > 0 and not self.position:
            self.buy_fraction(self.p.fraction)
        elif self.cross[0] < 0 and self.position:
            self.close()
