"""Buy and hold: the baseline every other strategy has to beat."""

from __future__ import annotations

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
