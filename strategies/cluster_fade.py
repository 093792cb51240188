"""ClusterFade: buy the flush after a long liquidation cluster is swept (and the mirror)."""

from __future__ import annotations

import math
import types

import numpy as np

import backtest
from backtest.arrays.decisions import Decisions

#: Reason labels of the array form's orders (codes 1, 2, 3).
REASONS: tuple[str, ...] = ("strategy", "take-profit", "stop", "time")


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

    @classmethod
    def decide(cls, bars: backtest.arrays.bars.Bars, params: types.SimpleNamespace) -> Decisions:
        """The same state machine as ``next``, over whole arrays.

        Sweeps, reversal bars and exits are found with NumPy; a loop runs only over the
        entries.  The array form assumes every entry fills at the next open and that the
        position is only closed by its own exits: in the event engine a refused entry (margin,
        tier) leaves the strategy flat and looking for the next sweep, and a liquidation of the
        position ends the trade early, so after either the two forms differ.
        """
        count = len(bars)
        target = np.full(count, np.nan)
        reason = np.zeros(count, dtype=np.int16)
        if count < 2 or params.exposure == 0.0:
            return Decisions.from_target(target, reason, REASONS)
        close, open_ = bars.close, bars.open
        lines = bars.lines
        armed = np.zeros(count, dtype=np.int8)  # +1 long sweep, -1 short sweep
        long_sweep = _sweeps(lines["long_band_notional"], lines["liq_long"], params)
        armed[1:][long_sweep] = 1
        if params.fade_shorts:
            short_sweep = _sweeps(lines["short_band_notional"], lines["liq_short"], params)
            armed[1:][short_sweep & ~long_sweep] = -1
        # the latest sweep at or before each bar, and whether the bar turns its way in time
        latest = np.where(armed != 0, np.arange(count), -1)
        np.maximum.accumulate(latest, out=latest)
        side = np.where(latest >= 0, armed[np.maximum(latest, 0)], 0)
        body = close - open_
        fresh = (latest >= 0) & (np.arange(count) - latest <= params.confirm_bars)
        turns = ((side > 0) & (body > 0.0)) | ((side < 0) & (body < 0.0))
        candidates = np.flatnonzero(fresh & turns).tolist()
        hold, take_profit, stop_loss = int(params.hold_bars), params.take_profit, params.stop_loss
        flat_from = 1
        for entry in candidates:
            if entry < flat_from or latest[entry] < flat_from:
                continue  # in a position then, or its sweep came before the position closed
            direction = int(side[entry])
            target[entry] = params.exposure if direction > 0 else -params.exposure
            entry_price = close[entry]
            window = close[entry + 1 : entry + hold + 1]
            change = window / entry_price - 1.0
            gain = change if direction > 0 else -change
            hits = np.flatnonzero((gain >= take_profit) | (gain <= -stop_loss))
            if hits.size:
                offset = int(hits[0])
                code = 1 if gain[offset] >= take_profit else 2
            else:
                offset, code = hold - 1, 3
            exit_bar = entry + 1 + offset
            if exit_bar >= count:
                break  # still open at the end
            target[exit_bar] = 0.0
            reason[exit_bar] = code
            flat_from = exit_bar + 1
        return Decisions.from_target(target, reason, REASONS)

    def _arm(self, side: str) -> None:
        """Remember a sweep; the entry waits for a bar that turns."""
        self.sweeps.append((self.data.datetime.datetime(0), side))
        self.pending_side = side
        self.pending_until = len(self) + self.p.confirm_bars


def _sweeps(
    band_notional: np.ndarray, liquidated: np.ndarray, params: types.SimpleNamespace
) -> np.ndarray:
    """``ClusterFade._swept`` for bars 1 … n-1: the bar's liquidations against the band before."""
    before, now = band_notional[:-1], liquidated[1:]
    with np.errstate(invalid="ignore"):
        swept = now >= params.min_swept_share * before
    return np.isfinite(before) & (before > 0.0) & np.isfinite(now) & swept
