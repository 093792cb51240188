"""ClusterFade: buy the flush after a long liquidation cluster is swept (and the mirror)."""

from __future__ import annotations

import bisect
import math
import types
from typing import Any

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
        candidates = np.flatnonzero(fresh & turns)
        entries, exits, codes = _trades(
            memoryview(np.ascontiguousarray(close)),
            candidates.tolist(),
            latest[candidates].tolist(),
            side[candidates].tolist(),
            _may_exit_early(close, candidates, side[candidates], params).tolist(),
            params,
        )
        target[entries] = np.where(side[entries] > 0, params.exposure, -params.exposure)
        target[exits] = 0.0
        reason[exits] = codes
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


def _trades(
    close: Any,
    candidates: list[int],
    sweeps: list[int],
    sides: list[int],
    early: list[bool],
    params: types.SimpleNamespace,
) -> tuple[list[int], list[int], list[int]]:
    """Entry bars, exit bars and exit codes (1 take-profit, 2 stop, 3 time) of the positions.

    ``candidates`` are the bars where a fresh sweep's reversal bar appears (sorted), with the
    bar of that sweep and its side.  From the first bar on which the strategy is flat, the
    first candidate whose sweep came while flat is an entry; its exit is the first later bar
    whose gain (from the entry bar's close) reaches the take-profit or the stop, else the
    ``hold_bars``-th bar after it, computed with the float operations of ``next``.  The
    strategy is flat again from the bar after the exit.  A position still open at the end has
    an entry and no exit.  ``early`` tells, per candidate, whether the take-profit or the stop
    is reached at all within ``hold_bars`` (:func:`_may_exit_early`); only those are scanned.
    """
    count = len(close)
    hold, take_profit, stop_loss = int(params.hold_bars), params.take_profit, params.stop_loss
    entries: list[int] = []
    exits: list[int] = []
    codes: list[int] = []
    flat_from, position, total = 1, 0, len(candidates)
    while True:
        position = bisect.bisect_left(candidates, flat_from, position)
        while position < total and sweeps[position] < flat_from:
            position += 1  # its sweep came while the position was open
        if position >= total:
            break
        entry = candidates[position]
        entries.append(entry)
        entry_price, long_side = close[entry], sides[position] > 0
        exit_bar, code = entry + hold, 3
        bars = range(entry + 1, min(entry + hold, count - 1) + 1) if early[position] else ()
        for bar in bars:
            change = close[bar] / entry_price - 1.0
            gain = change if long_side else -change
            if gain >= take_profit:
                exit_bar, code = bar, 1
                break
            if gain <= -stop_loss:
                exit_bar, code = bar, 2
                break
        if exit_bar >= count:
            break  # still open at the end
        exits.append(exit_bar)
        codes.append(code)
        flat_from = exit_bar + 1
    return entries, exits, codes


def _may_exit_early(
    close: np.ndarray, candidates: np.ndarray, sides: np.ndarray, params: types.SimpleNamespace
) -> np.ndarray:
    """Whether a position entered at each candidate reaches its take-profit or stop in time.

    The gain ``close / entry - 1`` (negated for a short) is monotone in the close, also in
    floating point, so the best and worst gains over the ``hold_bars`` bars after the entry
    are those of the window's highest and lowest close (running maxima and minima, O(n)).
    """
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    hold = int(params.hold_bars)
    count = close.shape[0]
    origin = -(hold // 2)  # window of bar j: closes j … j + hold - 1
    highest = maximum_filter1d(close, hold, mode="constant", cval=-np.inf, origin=origin)
    lowest = minimum_filter1d(close, hold, mode="constant", cval=np.inf, origin=origin)
    after = candidates + 1
    inside = after < count
    after = np.minimum(after, count - 1)
    entry = close[candidates]
    up = np.where(inside, highest[after], -np.inf) / entry - 1.0
    down = np.where(inside, lowest[after], np.inf) / entry - 1.0
    long_side = sides > 0
    best = np.where(long_side, up, -down)
    worst = np.where(long_side, down, -up)
    return (best >= params.take_profit) | (worst <= -params.stop_loss)
