"""ClusterRotation: hold several markets long, step out of the one a long cluster threatens."""

from __future__ import annotations

import math

import backtest


class ClusterRotation(backtest.Strategy):
    """Hold every symbol of a portfolio long; cut the one whose long cluster is closest below.

    A cross-asset use of the liquidation map (run it on a portfolio, e.g.
    ``--symbol BTC/USDT:USDT,ETH/USDT:USDT``).  On every bar each symbol's map gives the
    distance from the close down to its strongest long cluster (``long_cluster_distance_pct``;
    no cluster in the map's band counts as infinitely far).  The symbol with the *closest*
    cluster is cut (its long closed) when that cluster is within ``cut_within`` below the
    price; only that one, so the portfolio never sells everything on one bar.  A cut symbol is
    bought back once its closest long cluster is more than ``reenter_beyond`` below the price
    (swept, or left behind by a rally).  Each held symbol's notional is ``exposure`` × equity
    when bought; positions are not rebalanced in between.

    Parameters
    ----------
    exposure : float
        Notional of each held symbol as a multiple of equity when it is bought.
    cut_within : float
        Cut the closest-threatened symbol when its long cluster is within this fraction below.
    reenter_beyond : float
        Buy a cut symbol back when its long cluster is more than this fraction below.
    """

    params = (("exposure", 0.5), ("cut_within", 0.01), ("reenter_beyond", 0.03))
    positive_params = ("exposure", "cut_within", "reenter_beyond")

    def __init__(self) -> None:
        self.holding = {data._name: False for data in self.symbol_datas}
        self.decisions: list[tuple[object, str, str]] = []  # (bar time, symbol, "cut"/"enter")

    def cluster_distance(self, data: object) -> float:
        """Fraction from the close down to the symbol's strongest long cluster (inf if none)."""
        distance = self.clusters_for(data).long_cluster_distance_pct[0]
        return distance / 100.0 if math.isfinite(distance) else math.inf

    def next(self) -> None:
        """Cut the closest-threatened symbol, buy back those whose cluster is far enough."""
        feeds = self.symbol_datas
        distances = [self.cluster_distance(data) for data in feeds]
        closest = min(range(len(feeds)), key=lambda number: distances[number])
        when = self.data.datetime.datetime(0)
        for number, data in enumerate(feeds):
            name = data._name
            if self.holding[name]:
                if number == closest and distances[number] <= self.p.cut_within:
                    self.holding[name] = False
                    self.decisions.append((when, name, "cut"))
                    self.target_exposure(0.0, data=data)
            elif distances[number] > self.p.reenter_beyond:
                self.holding[name] = True
                self.decisions.append((when, name, "enter"))
                self.target_exposure(self.p.exposure, data=data)
