"""ClusterFade: buy the flush after a long liquidation cluster is swept (and the mirror)."""

from __future__ import annotations

import math

import backtest


class ClusterFade(backtest.Strategy):
    """Fade forced flows: buy after a long cluster is swept, sell after a short one is.

    The idea: when price runs through a dense cluster of long liquidation levels, the forced
    selling is mechanical, not informed; once the cluster is consumed the selling stops and
    price tends to mean-revert.  A bar is a sweep when the map's estimated long liquidations
    in it are at least ``min_swept_share`` of all the long notional the map saw within
    ``band`` below the price on the bar before.  Catching the falling knife is what loses in a
    cascade, so the strategy waits for the flush to stall: it buys at the close of the first
    bar after the sweep that closes up (within ``confirm_bars``).  Short clusters swept by a
    spike are faded with a short, after a bar that closes down.  Positions close at the
    take-profit, the stop, or after ``hold_bars``.

    Parameters
    ----------
    band : float
        How far from the price the map gathers the notional a sweep is measured against
        (0.03 = 3 %; it sets the map's ``band`` for this run).
    min_swept_share : float
        Estimated liquidations in one bar, as a share of the notional within the band on the
        bar before, that make a sweep.
    exposure : float
        Position notional as a multiple of equity.
    take_profit, stop_loss : float
        Exit when the price moved this fraction for or against the position.
    hold_bars : int
        Exit after this many bars at the latest.
    confirm_bars : int
        How many bars after a sweep a reversal bar may come; later, the signal lapses.
    fade_shorts : bool
        Also sell after short clusters are swept.
    """

    params = (
        ("band", 0.03),
        ("min_swept_share", 0.03),
        ("exposure", 1.0),
        ("take_profit", 0.02),
        ("stop_loss", 0.015),
        ("hold_bars", 36),
        ("confirm_bars", 12),
        ("fade_shorts", True),
    )
    positive_params = ("hold_bars", "confirm_bars")

    def __init__(self) -> None:
        self.entry_bar = 0
        self.entry_price = math.nan
        self.pending_side = ""
        self.pending_until = 0
        self.sweeps: list[tuple[object, str]] = []
        self.signals: list[tuple[object, str]] = []

    def map_overrides(self) -> dict[str, float]:
        """The strategy's ``band`` is the map's search band."""
        return {"band": float(self.p.band)}

    def _swept(self, side: str) -> bool:
        lines = self.clusters
        if side == "long":
            before, liquidated = lines.long_band_notional[-1], lines.liq_long[0]
        else:
            before, liquidated = lines.short_band_notional[-1], lines.liq_short[0]
        if not (math.isfinite(before) and before > 0.0 and math.isfinite(liquidated)):
            return False
        return bool(liquidated >= self.p.min_swept_share * before)

    def next(self) -> None:
        """Arm on a sweep, enter on the first bar that turns; exit on target, stop or time."""
        if len(self) < 2:
            return
        size = self.position.size
        if size:
            change = self.data.close[0] / self.entry_price - 1.0
            gain = change if size > 0 else -change
            held = len(self) - self.entry_bar
            if gain >= self.p.take_profit:
                self.target_exposure(0.0, reason="take-profit")
            elif gain <= -self.p.stop_loss:
                self.target_exposure(0.0, reason="stop")
            elif held >= self.p.hold_bars:
                self.target_exposure(0.0, reason="time")
            return
        if self._swept("long"):
            self._arm("long")
        elif self.p.fade_shorts and self._swept("short"):
            self._arm("short")
        if not self.pending_side or len(self) > self.pending_until:
            self.pending_side = ""
            return
        body = self.data.close[0] - self.data.open[0]
        if self.pending_side == "long" and body > 0.0:
            exposure = self.p.exposure
        elif self.pending_side == "short" and body < 0.0:
            exposure = -self.p.exposure
        else:
            return
        self.signals.append((self.data.datetime.datetime(0), self.pending_side))
        self.pending_side = ""
        self.entry_bar = len(self)
        self.entry_price = self.data.close[0]
        self.target_exposure(exposure)

    def _arm(self, side: str) -> None:
        """Remember a sweep; the entry waits for a bar that turns."""
        self.sweeps.append((self.data.datetime.datetime(0), side))
        self.pending_side = side
        self.pending_until = len(self) + self.p.confirm_bars
