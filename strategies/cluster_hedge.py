"""ClusterHedge: a long holder that steps aside while a long cluster at a round level is close."""

from __future__ import annotations

import math

import backtest
from backtest.liquidation import levels


class ClusterHedge(backtest.Strategy):
    """Hold a long, but cut it while a dense long cluster near a round level sits close below.

    The idea: long liquidation levels pile up just under round numbers (stops and entries
    gather there), and when price reaches such a pile the forced selling can cascade.  A
    holder who does not want to sell for good steps down to ``hedged_exposure`` while such a
    cluster is within ``trigger`` below the price, and steps back to ``exposure`` once the
    cluster is cleared: left more than ``release`` behind by a rally, or swept by the low and
    the flush over — ``settle_bars`` bars in a row without a new low.

    Parameters
    ----------
    exposure : float
        Normal position notional as a multiple of equity.
    hedged_exposure : float
        Exposure while hedged (0 = flat; negative = net short).
    trigger : float
        Hedge when the strongest long cluster is within this fraction below the close.
    release : float
        Re-risk when the cluster is more than this fraction below the close.
    settle_bars : int
        After a sweep, re-risk only once this many bars in a row made no new low.
    round_tolerance : float
        The cluster must lie within this fraction of a round level.
    min_cluster_share : float
        The cluster must hold at least this share of the long notional within the band.
    """

    params = (
        ("exposure", 1.0),
        ("hedged_exposure", 0.0),
        ("trigger", 0.02),
        ("release", 0.04),
        ("settle_bars", 12),
        ("round_tolerance", 0.004),
        ("min_cluster_share", 0.1),
    )
    positive_params = ("settle_bars",)

    def __init__(self) -> None:
        self.hedged_below = math.nan  # price of the cluster we are hedged against
        self.swept_low = math.nan  # lowest low since the cluster was swept
        self.quiet_bars = 0
        self.hedges: list[tuple[object, float]] = []
        self.releases: list[tuple[object, str]] = []

    @property
    def hedged(self) -> bool:
        """Whether the hedge is on."""
        return math.isfinite(self.hedged_below)

    def _threat(self) -> float:
        """Price of a dense long cluster near a round level within ``trigger``, else NaN."""
        lines = self.clusters
        price = lines.long_cluster_price[0]
        distance = lines.long_cluster_distance_pct[0]
        if not (math.isfinite(price) and math.isfinite(distance) and price > 0.0):
            return math.nan
        share = lines.long_cluster_notional[0] / max(lines.long_band_notional[0], 1e-12)
        level = levels.nearest_level(price)
        near_round = abs(price - level) / price <= self.p.round_tolerance
        if distance <= self.p.trigger * 100.0 and near_round and share >= self.p.min_cluster_share:
            return float(price)
        return math.nan

    def next(self) -> None:
        """Hedge when threatened, re-risk when the threat is cleared."""
        close, low = self.data.close[0], self.data.low[0]
        when = self.data.datetime.datetime(0)
        if self.hedged:
            if math.isnan(self.swept_low) and low <= self.hedged_below:
                self.swept_low = low
                self.quiet_bars = 0
            elif math.isfinite(self.swept_low):
                if low < self.swept_low:
                    self.swept_low, self.quiet_bars = low, 0
                else:
                    self.quiet_bars += 1
            settled = math.isfinite(self.swept_low) and self.quiet_bars >= self.p.settle_bars
            left_behind = (close - self.hedged_below) / close > self.p.release
            if settled or left_behind:
                self.releases.append((when, "swept" if settled else "left behind"))
                self.hedged_below = math.nan
                self.swept_low = math.nan
                self.target_exposure(self.p.exposure)
            return
        threat = self._threat()
        if math.isfinite(threat):
            self.hedged_below = threat
            self.hedges.append((when, threat))
            self.target_exposure(self.p.hedged_exposure)
        elif not self.position:
            self.target_exposure(self.p.exposure)
