"""CascadeBreakout: ride a liquidation cascade that the map says is primed."""

from __future__ import annotations

import bisect
import math
import types
from typing import Any

import numpy as np

import backtest

#: The standard shock (%) used when the map has no cascade settings of its own (the default of
#: :class:`backtest.liquidation.cascade.CascadeParams`).
DEFAULT_SHOCK_PCT = 2.0


def shock_fraction(map_params: Any) -> float:
    """The cascade's standard shock as a fraction (``CascadeParams.standard_shock_pct`` / 100).

    ``map_params`` is the map's :class:`~backtest.liquidation.heatmap.MapParams` (None, or a
    map without cascade settings, gives the default 2 %).
    """
    cascade = getattr(map_params, "cascade", None)
    shock_pct = getattr(cascade, "standard_shock_pct", DEFAULT_SHOCK_PCT)
    return float(shock_pct) / 100.0


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
        liquidation_map = getattr(self.clusters, "liquidation_map", None)
        return shock_fraction(getattr(liquidation_map, "params", None))

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

    @classmethod
    def decide(cls, bars: backtest.arrays.bars.Bars, params: types.SimpleNamespace) -> np.ndarray:
        """The same trades over whole arrays: entries where ``next`` enters when flat, exits.

        Assumes every entry fills at the next open and that only its own exits close the
        position: after a refused entry or a liquidation ``next`` is flat and may enter again
        earlier than this form does.  The cascade's end price uses the map's standard shock
        (``bars.map_params.cascade``), as ``next`` does.
        """
        count = len(bars)
        target = np.full(count, np.nan)
        if count == 0 or params.exposure == 0.0:
            return target
        close = np.ascontiguousarray(bars.close, dtype=np.float64)
        lines = bars.lines
        risk = lines["cascade_risk"]
        with np.errstate(invalid="ignore"):
            risky = np.isfinite(risk) & (risk >= params.min_risk)
        long_armed = _armed(lines, "long", params)
        short_armed = _armed(lines, "short", params)
        candidates = np.flatnonzero(risky & (long_armed != short_armed))
        goes_long = short_armed[candidates]  # a short cluster above: long (and the mirror)
        move = shock_fraction(bars.map_params) * risk[candidates]
        aims = np.where(
            goes_long, close[candidates] * (1.0 + move), close[candidates] * (1.0 - move)
        )
        entries, exits = _trades(
            memoryview(close),
            candidates.tolist(),
            goes_long.tolist(),
            aims.tolist(),
            _may_exit_early(close, candidates, goes_long, aims, params).tolist(),
            params,
        )
        target[entries] = np.where(goes_long[np.searchsorted(candidates, entries)], 1.0, -1.0)
        target[entries] *= params.exposure
        target[exits] = 0.0
        return target


def _armed(lines: Any, side: str, params: types.SimpleNamespace) -> np.ndarray:
    """``CascadeBreakout._armed`` for every bar."""
    distance = lines[f"{side}_cluster_distance_pct"]
    share = lines[f"{side}_cluster_notional"] / np.maximum(lines[f"{side}_band_notional"], 1e-12)
    with np.errstate(invalid="ignore"):
        near = (distance <= params.proximity * 100.0) & (share >= params.min_cluster_share)
    return np.isfinite(distance) & np.isfinite(share) & near


def _window_extremes(close: np.ndarray, hold: int) -> tuple[np.ndarray, np.ndarray]:
    """Highest and lowest close of the ``hold`` bars starting at each bar."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    origin = -(hold // 2)
    highest = maximum_filter1d(close, hold, mode="constant", cval=-np.inf, origin=origin)
    lowest = minimum_filter1d(close, hold, mode="constant", cval=np.inf, origin=origin)
    return highest, lowest


def _may_exit_early(
    close: np.ndarray,
    candidates: np.ndarray,
    goes_long: np.ndarray,
    aims: np.ndarray,
    params: types.SimpleNamespace,
) -> np.ndarray:
    """Whether a position entered at each candidate meets its aim or stop within hold_bars.

    Both tests are monotone in the close (also in floating point), so the window's highest
    and lowest closes decide them; only those positions are scanned bar by bar.
    """
    hold = int(params.hold_bars)
    count = close.shape[0]
    highest, lowest = _window_extremes(close, hold)
    after = candidates + 1
    inside = after < count
    after = np.minimum(after, count - 1)
    high = np.where(inside, highest[after], -np.inf)
    low = np.where(inside, lowest[after], np.inf)
    entry = close[candidates]
    hit = np.where(goes_long, high >= aims, low <= aims)
    adverse_long = (low / entry - 1.0) * 1.0
    adverse_short = (high / entry - 1.0) * -1.0
    adverse = np.where(goes_long, adverse_long, adverse_short) <= -params.stop_loss
    return hit | adverse


def _trades(
    close: Any,
    candidates: list[int],
    goes_long: list[bool],
    aims: list[float],
    early: list[bool],
    params: types.SimpleNamespace,
) -> tuple[list[int], list[int]]:
    """Entry and exit bars: ``next``'s state machine from one entry candidate to the next."""
    count = len(close)
    hold, stop_loss = int(params.hold_bars), params.stop_loss
    entries: list[int] = []
    exits: list[int] = []
    flat_from, position = 0, 0
    while True:
        position = bisect.bisect_left(candidates, flat_from, position)
        if position >= len(candidates):
            break
        entry = candidates[position]
        entries.append(entry)
        entry_price, aim, long_side = close[entry], aims[position], goes_long[position]
        sign = 1.0 if long_side else -1.0
        exit_bar = entry + hold
        bars = range(entry + 1, min(entry + hold, count - 1) + 1) if early[position] else ()
        for bar in bars:
            price = close[bar]
            hit = price >= aim if long_side else price <= aim
            if hit or (price / entry_price - 1.0) * sign <= -stop_loss:
                exit_bar = bar
                break
        if exit_bar >= count:
            break  # still open at the end
        exits.append(exit_bar)
        flat_from = exit_bar + 1
    return entries, exits
