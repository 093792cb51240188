"""``RoundLevels``: the nearest psychological price levels around the price, bar by bar.

The levels and their spacing come from :mod:`backtest.liquidation.levels` (the same levels
the liquidation map weights entries at), so a strategy sees exactly the map's round numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import backtrader as bt
import numpy as np

from backtest.engine.indicators._buffers import line_view
from backtest.liquidation import levels

ROUND_LEVEL_LINES: tuple[str, ...] = (
    "level_below",
    "level_above",
    "distance_below_pct",
    "distance_above_pct",
)


def round_levels_at(price: float, major: bool = False) -> tuple[float, float, float, float]:
    """Nearest round levels at or below / at or above ``price`` and their signed distances.

    Parameters
    ----------
    price : float
        The price; NaN or non-positive gives four NaN.
    major : bool
        Only major levels (85,000 rather than 84,000 for BTC).

    Returns
    -------
    tuple of float
        ``(level_below, level_above, distance_below_pct, distance_above_pct)``; distances are
        :func:`backtest.liquidation.levels.distance_pct` (negative below, positive above, 0
        when the price sits on a level).
    """
    if not (price > 0.0 and math.isfinite(price)):
        return (math.nan, math.nan, math.nan, math.nan)
    below = levels.nearest_level_below(price, major=major)
    above = levels.nearest_level_above(price, major=major)
    return (
        below,
        above,
        levels.distance_pct(price, below),
        levels.distance_pct(price, above),
    )


class RoundLevels(bt.Indicator):
    """Nearest round price levels below and above the price, and how far they are.

    Parameters
    ----------
    data : line or data feed
        The price to place between levels: a feed means its close; a single line (``high``,
        an average...) is used as it is.
    major : bool
        Only major round levels (default False: every round level).

    Lines
    -----
    level_below, level_above
        Largest round level at or below the price, smallest at or above it (both equal the
        price when it sits on a level).  The spacing follows the price's magnitude: 1,000 for
        BTC near 85,000 (5,000 for major levels), 50 for ETH near 2,800.
    distance_below_pct, distance_above_pct
        Signed distance from the price to each level in % of the price (below <= 0 <= above).
    """

    lines = ROUND_LEVEL_LINES
    params = (("major", False),)
    plotinfo: ClassVar[dict[str, Any]] = {"subplot": False, "plotname": "round levels"}
    plotlines: ClassVar[dict[str, Any]] = {
        "distance_below_pct": {"_plotskip": True},
        "distance_above_pct": {"_plotskip": True},
    }

    def __init__(self) -> None:
        self._price = self.data.lines[0]

    def once(self, start: int, end: int) -> None:
        """Compute bars ``[start, end)`` in place (each bar depends on its own price only)."""
        end = min(end, self.data.buflen(), self.lines[0].buflen())
        if end <= start:
            return
        prices = line_view(self._price, end)[start:end]
        computed = round_levels_array(prices, bool(self.p.major))
        for name, line in zip(ROUND_LEVEL_LINES, self.lines, strict=True):
            line_view(line, end, writeable=True)[start:end] = computed[name]

    def next(self) -> None:
        """Compute the current bar."""
        values = round_levels_at(float(self._price[0]), bool(self.p.major))
        for line, value in zip(self.lines, values, strict=True):
            line[0] = value


def round_levels_array(prices: np.ndarray, major: bool = False) -> dict[str, np.ndarray]:
    """:func:`round_levels_at` over a whole array, vectorised, with the same values.

    The level spacing is taken from :func:`backtest.liquidation.levels.round_step` (or
    ``major_step``), which grows with the price: it is evaluated at the ends of runs of sorted
    prices and runs are halved until both ends share a spacing, so every price gets exactly
    the spacing ``levels`` gives it while only a few dozen scalar calls are made.  Levels and
    distances then use the very operations of ``levels.nearest_level_below/above`` and
    ``levels.distance_pct``.

    Parameters
    ----------
    prices : numpy.ndarray
        Prices; NaN or non-positive entries give NaN.
    major : bool
        Only major levels.

    Returns
    -------
    dict of str to numpy.ndarray
        One float64 array per line name of :class:`RoundLevels`.
    """
    values = np.asarray(prices, dtype=np.float64)
    valid = np.isfinite(values) & (values > 0.0)
    steps = np.full(values.shape, np.nan)
    if valid.any():
        steps[valid] = _spacings(values[valid], levels.major_step if major else levels.round_step)
    with np.errstate(invalid="ignore"):
        below = np.floor(values / steps + 1e-9) * steps
        above = np.ceil(values / steps - 1e-9) * steps
        return {
            "level_below": below,
            "level_above": above,
            "distance_below_pct": (below - values) / values * 100.0,
            "distance_above_pct": (above - values) / values * 100.0,
        }


def _spacings(prices: np.ndarray, spacing: Callable[[float], float]) -> np.ndarray:
    """``spacing(price)`` for every (positive, finite) price, for a non-decreasing ``spacing``."""
    order = np.argsort(prices, kind="stable")
    ordered = prices[order]
    result = np.empty(len(ordered))
    pending = [(0, len(ordered) - 1)]
    while pending:
        first, last = pending.pop()
        low = spacing(float(ordered[first]))
        high = low if first == last else spacing(float(ordered[last]))
        if low == high:
            result[first : last + 1] = low
        else:
            middle = (first + last) // 2
            pending.append((first, middle))
            pending.append((middle + 1, last))
    spacings = np.empty(len(prices))
    spacings[order] = result
    return spacings
