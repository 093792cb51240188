"""Which candle bars make up which truth bar, and which truth bars are scored.

The truth (recorded liquidations) comes in coarser bars than the candles the map runs on,
e.g. 4 h totals against 5 m candles.  Both are indexed by their bar's **open** time (UTC).
Candle bar ``t`` belongs to truth bar ``T`` when ``T <= t < T + truth step``.  A truth bar is
scored only when it is whole: inside the scored window (``since <= T`` and
``T + step <= until``), its value is finite, and every one of its ``step / candle step``
candle bars is present (a gap in the candles would make the estimate look too small).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtest.errors import ConfigError, DataError

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class TruthBins:
    """The scored truth bars and, for every candle bar, the scored bar it falls in.

    Attributes
    ----------
    index : pandas.DatetimeIndex
        Open times (UTC) of the scored truth bars, ascending.
    candle_bin : numpy.ndarray of int64
        For each candle bar, the position in ``index`` of its truth bar, or -1 when that
        truth bar is not scored (before the warm-up end, outside the window, incomplete).
    truth_step : pandas.Timedelta
        Length of a truth bar.
    """

    index: pd.DatetimeIndex
    candle_bin: IntArray
    truth_step: pd.Timedelta

    @property
    def count(self) -> int:
        """Number of scored truth bars."""
        return len(self.index)

    def sum(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Sum per-candle-bar ``values`` into the scored truth bars (NaN values count as 0)."""
        array = np.asarray(values, dtype=np.float64)
        keep = self.candle_bin >= 0
        weights = np.nan_to_num(array[keep], nan=0.0, posinf=0.0, neginf=0.0)
        return np.bincount(self.candle_bin[keep], weights=weights, minlength=self.count)


def utc_index(index: Any, what: str) -> pd.DatetimeIndex:
    """``index`` as a UTC DatetimeIndex in nanoseconds (naive times are taken as UTC)."""
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"the {what} needs a DatetimeIndex of bar open times (UTC)")
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return index.as_unit("ns")


def bar_step(index: pd.DatetimeIndex, what: str) -> pd.Timedelta:
    """The most common spacing of ``index`` (its bar length)."""
    if len(index) < 2:
        raise DataError(f"the {what} has fewer than 2 bars; cannot tell its bar length")
    steps = np.diff(index.asi8)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise DataError(f"the {what} has no increasing times; sort it by bar open time")
    values, counts = np.unique(steps, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")


def truth_bins(
    candle_index: pd.DatetimeIndex,
    truth: pd.DataFrame,
    *,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    candle_step: pd.Timedelta | None = None,
    truth_step: pd.Timedelta | None = None,
) -> TruthBins:
    """Match candle bars to the whole truth bars inside ``[since, until)``.

    Parameters
    ----------
    candle_index : pandas.DatetimeIndex
        Open times of the candles the map ran over (ascending).
    truth : pandas.DataFrame
        Columns ``long`` and ``short`` indexed by the truth bars' open times.
    since, until : pandas.Timestamp, optional
        The scored window: truth bars opening at or after ``since`` and ending at or before
        ``until``.
    candle_step, truth_step : pandas.Timedelta, optional
        Bar lengths; the most common spacing of each index when omitted.

    Raises
    ------
    DataError
        When the truth bars are not a whole number of candle bars, or nothing is scored.
    """
    candles = utc_index(candle_index, "candle frame")
    truth_index = utc_index(truth.index, "truth series")
    candle_step = candle_step if candle_step is not None else bar_step(candles, "candle frame")
    truth_step = truth_step if truth_step is not None else bar_step(truth_index, "truth series")
    ratio = truth_step / candle_step
    if ratio < 1 or not math.isclose(ratio, round(ratio)):
        raise DataError(
            f"truth bars of {truth_step} are not a whole number of {candle_step} candle bars; "
            "use candles of a timeframe that divides the truth's"
        )
    per_bar = round(ratio)
    values = truth[["long", "short"]].to_numpy(dtype=np.float64)
    keep = np.isfinite(values).all(axis=1)
    if since is not None:
        keep &= truth_index >= since
    if until is not None:
        keep &= (truth_index + truth_step) <= until
    candidates = truth_index[keep]
    # the truth bar of each candle: the last truth open at or before it, if within one step
    position = candidates.asi8.searchsorted(candles.asi8, side="right") - 1
    inside = position >= 0
    inside[inside] = candles.asi8[inside] < (candidates.asi8[position[inside]] + truth_step.value)
    position = np.where(inside, position, -1)
    counts = np.bincount(position[inside], minlength=len(candidates))
    whole = counts == per_bar
    if not whole.any():
        raise DataError(
            "no whole truth bar lies in the scored window with all its candles present; widen "
            "the window or load the candles that cover it"
        )
    new_position = np.cumsum(whole) - 1
    candle_bin = np.where(
        inside & whole[np.maximum(position, 0)], new_position[np.maximum(position, 0)], -1
    ).astype(np.int64)
    return TruthBins(index=candidates[whole], candle_bin=candle_bin, truth_step=truth_step)


def check_truth(truth: Any) -> pd.DataFrame:
    """Check a truth frame (columns long/short, time index) and return it sorted in UTC.

    Raises
    ------
    DataError
        For a missing column, negative values, duplicate times or no rows.
    """
    if not isinstance(truth, pd.DataFrame):
        raise DataError(f"the truth must be a DataFrame with columns long, short, got {truth!r}")
    missing = [name for name in ("long", "short") if name not in truth.columns]
    if missing:
        raise DataError(
            f"the truth series lacks column(s) {', '.join(missing)}; it needs per-bar long and "
            "short liquidated notional (quote currency)"
        )
    frame = truth[["long", "short"]].astype(np.float64)
    frame.index = utc_index(truth.index, "truth series")
    frame = frame.sort_index()
    if frame.index.has_duplicates:
        raise DataError("the truth series repeats a bar time; keep one row per bar")
    if len(frame) == 0:
        raise DataError("the truth series is empty")
    values = frame.to_numpy()
    if (values[np.isfinite(values)] < 0).any():
        raise DataError("the truth series has negative liquidation totals; check the file")
    return frame


def as_time(value: Any, what: str) -> pd.Timestamp | None:
    """A UTC Timestamp from a date, datetime, text or epoch ms (None stays None)."""
    if value is None:
        return None
    try:
        if isinstance(value, int | np.integer) and not isinstance(value, bool):
            moment = pd.Timestamp(int(value), unit="ms")
        else:
            moment = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {value!r} is not a date; write it like 2025-07-01") from None
    if moment is pd.NaT:
        raise ConfigError(f"{what} {value!r} is not a date; write it like 2025-07-01")
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


__all__ = ["TruthBins", "as_time", "bar_step", "check_truth", "truth_bins", "utc_index"]
