"""CascadeBreakout: ride a liquidation cascade that the map says is primed."""

from __future__ import annotations

import math

import backtest


class CascadeBreakout(backtest.Strategy):
    """Short just above a dense long cluster when cascade risk is high (and the mirror).

    The idea: a dense cluster of long liquidation levels a little below the price is fuel.  If
    the cascade simulator says a standard shock would be amplified (``cascade_risk`` above
    ``min_risk``), a break of the cluster is likely to run; the strategy shorts before it and
    targets the cascade's estimated end price, ``close·(1 − shock·amplification)``.  A short
    cluster just above with high risk is the mirror trade.  A stop above the entry, and a
    time limit, bound the trade when the cascade does not come.

    Parameters
    ----------
    proximity : float
        The cluster must lie within this fraction of the close (0.01 = 1 %).
    min_cluster_share : float
        The cluster must hold at least this share of all notional within the map's band on
        its side (dense, not just the largest of many small ones).
    min_risk : float
        Smallest ``cascade_risk`` (amplification of the standard shock) that arms a trade.
    exposure : float
        Position notional as a multiple of equity.
    stop_loss : float
        Exit when price moved this fraction against the position.
    hold_bars : int
        Exit after this many bars at the latest.
    """

    uses_cascade = True
    params = (
        ("proximity", 0.01),
        ("min_cluster_share", 0.15),
        ("min_risk", 1.1),
        ("exposure", 1.0),
        ("stop_loss", 0.01),
        ("hold_bars", 48),
    )
    positive_params = ("hold_bars",)

    def __init__(self) -> None:
        self.entry_bar = 0
        self.entry_price = math.nan
        self.target_price = math.nan
        self.signals: list[tuple[object, str, float]] = []

    def _armed(self, side: str) -> bool:
        lines = self.clusters
        if side == "long":
            distance = lines.long_cluster_distance_pct[0]
            share = lines.long_cluster_notional[0] / max(lines.long_band_notional[0], 1e-12)
        else:
            distance = lines.short_cluster_distance_pct[0]
            share = lines.short_cluster_notional[0] / max(lines.short_band_notional[0], 1e-12)
        if not (math.isfinite(distance) and math.isfinite(share)):
            return False
        return distance <= self.p.proximity * 100.0 and share >= self.p.min_cluster_share

    def _shock_fraction(self) -> float:
        cascade = getattr(self.clusters, "cascade_params", None)
        shock_pct = getattr(cascade, "standard_shock_pct", 2.0)
        return float(shock_pct) / 100.0

    def next(self) -> None:
        """Enter when a primed cluster is close; exit at the cascade's end price or the stop."""
        close = self.data.close[0]
        size = self.position.size
        if size:
            held = len(self) - self.entry_bar
            hit = close <= self.target_price if size < 0 else close >= self.target_price
            adverse = (close / self.entry_price - 1.0) * (1.0 if size > 0 else -1.0)
            if hit or adverse <= -self.p.stop_loss or held >= self.p.hold_bars:
                self.target_exposure(0.0)
            return
        risk = self.clusters.cascade_risk[0]
        if not (math.isfinite(risk) and risk >= self.p.min_risk):
            return
        move = self._shock_fraction() * risk
        long_armed, short_armed = self._armed("long"), self._armed("short")
        if long_armed and not short_armed:
            side, exposure, target = "short", -self.p.exposure, close * (1.0 - move)
        elif short_armed and not long_armed:
            side, exposure, target = "long", self.p.exposure, close * (1.0 + move)
        else:
            return
        self.signals.append((self.data.datetime.datetime(0), side, target))
        self.entry_bar = len(self)
        self.entry_price = close
        self.target_price = target
        self.target_exposure(exposure)
