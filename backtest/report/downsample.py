"""Thinning of long series for drawing: what is drawn is reduced, never what is computed.

A year of one-minute bars is half a million points; a browser draws a few thousand per trace
without effort.  Lines keep the minimum and the maximum of each bucket (so spikes and drawdowns
stay visible), candles are merged into coarser candles (open of the first, extremes, close of the
last), and a gap (NaN) stays a gap.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Points per line trace above which lines are thinned.
MAX_LINE_POINTS = 2400
#: Candles above which candles are merged.
MAX_CANDLES = 1500


def min_max_positions(values: np.ndarray, max_points: int = MAX_LINE_POINTS) -> np.ndarray:
    """Return sorted positions that keep each bucket's minimum and maximum.

    Parameters
    ----------
    values : ndarray
        The series (NaN allowed: a bucket of NaN keeps its first position, so gaps survive).
    max_points : int
        Upper bound on the number of positions returned (at least 4).

    Returns
    -------
    ndarray of int
        All positions when the series is short enough; otherwise, per bucket of equal length,
        the positions of its minimum and maximum, plus the first and the last position.
    """
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    max_points = max(int(max_points), 4)
    if count <= max_points:
        return np.arange(count)
    bucket = math.ceil(count / ((max_points - 2) // 2))
    buckets = math.ceil(count / bucket)
    padded = np.full(buckets * bucket, np.nan)
    padded[:count] = values
    grid = padded.reshape(buckets, bucket)
    empty = np.isnan(grid).all(axis=1)
    low = np.where(np.isnan(grid), np.inf, grid).argmin(axis=1)
    high = np.where(np.isnan(grid), -np.inf, grid).argmax(axis=1)
    offsets = np.arange(buckets) * bucket
    keep = np.concatenate(
        (
            offsets[~empty] + low[~empty],
            offsets[~empty] + high[~empty],
            offsets[empty],  # an all-NaN bucket: keep one NaN so the line breaks
            [0, count - 1],
        )
    )
    keep = np.unique(keep)
    return keep[keep < count]


def thin_series(series: pd.Series, max_points: int = MAX_LINE_POINTS) -> pd.Series:
    """Return ``series`` reduced to its per-bucket extremes (see :func:`min_max_positions`)."""
    if len(series) <= max_points:
        return series
    return series.iloc[min_max_positions(series.to_numpy(dtype=np.float64), max_points)]


def merge_candles(
    candles: pd.DataFrame, max_candles: int = MAX_CANDLES
) -> tuple[pd.DataFrame, int]:
    """Merge consecutive candles so that at most ``max_candles`` remain.

    Parameters
    ----------
    candles : DataFrame
        ``open``, ``high``, ``low``, ``close`` (and optionally ``volume``), indexed by time.
    max_candles : int
        Upper bound on the candles returned.

    Returns
    -------
    (DataFrame, int)
        The merged candles, stamped with the open time of their first bar, and how many bars
        each holds (1 when nothing was merged).
    """
    count = len(candles)
    if count <= max_candles:
        return candles, 1
    factor = math.ceil(count / max_candles)
    groups = np.arange(count) // factor
    grouped = candles.groupby(groups)
    merged = pd.DataFrame(
        {
            "open": grouped["open"].first().to_numpy(),
            "high": grouped["high"].max().to_numpy(),
            "low": grouped["low"].min().to_numpy(),
            "close": grouped["close"].last().to_numpy(),
        },
        index=candles.index[::factor],
    )
    if "volume" in candles.columns:
        merged["volume"] = grouped["volume"].sum().to_numpy()
    return merged, factor


def thin_segments(
    series: pd.Series, segments: np.ndarray, max_points: int = MAX_LINE_POINTS
) -> pd.Series:
    """Thin ``series`` and break the line wherever ``segments`` changes.

    Parameters
    ----------
    series : Series
        Values per bar (NaN where undefined).
    segments : ndarray
        A label per bar (e.g. the position held); consecutive bars with different labels are
        not joined, so a line never jumps vertically from one position's level to the next.
    max_points : int
        Bound on the points kept before the breaks are inserted.

    Returns
    -------
    Series
        The kept points, with a NaN placed (at the later point's time) at each break.
    """
    values = series.to_numpy(dtype=np.float64)
    labels = np.asarray(segments)
    if values.size == 0:
        return series.astype(np.float64)
    keep = min_max_positions(values, max_points)
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1  # first bar of a new segment
    if 0 < changes.size <= max_points:  # keep each segment's first bar when affordable
        keep = np.union1d(keep, changes)
    breaks = np.flatnonzero(labels[keep][1:] != labels[keep][:-1]) + 1
    # A NaN at the time of the point after each break; plotly and matplotlib leave a gap.
    positions = np.insert(np.arange(keep.size), breaks, breaks)
    result = pd.Series(
        values[keep][positions], index=series.index[keep][positions], name=series.name
    )
    result.iloc[breaks + np.arange(breaks.size)] = np.nan
    return result
