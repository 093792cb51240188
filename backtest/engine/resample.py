"""Slower timeframes of a traded feed, resampled from its stored candles.

A strategy that declares ``timeframes = ("1h",)`` gets, beside each traded 5m feed, a read-only
1h feed built here from the same candles (as ``cerebro.resampledata`` does for backtrader users,
but on the whole frame at once and with the perpetual's mark-price lines).

No look-ahead: a slower bar is stamped with the open time of the *last* traded bar it contains,
so backtrader delivers it together with that bar, when the slower bar has just closed.  A bin
the data does not reach the end of (the last, partial hour of a run) is left out.  Funding is
left out too (the traded feed settles it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from backtest.errors import ConfigError, DataError

#: How each column of a market frame is aggregated into a slower bar.
AGGREGATIONS: dict[str, str] = {
    "open": "first",
    "high": "max",
    "low": "min",
    "close": "last",
    "volume": "sum",
    "mark_open": "first",
    "mark_high": "max",
    "mark_low": "min",
    "mark_close": "last",
    "open_interest": "last",
}


def resample_frame(frame: pd.DataFrame, timeframe: str, base_timeframe: str) -> pd.DataFrame:
    """Aggregate a market frame of ``base_timeframe`` bars into ``timeframe`` bars.

    Bins are aligned on the Unix epoch (1h bins start on the hour), left-closed:
    open = first open, high = highest high, low = lowest low, close = last close, volume = sum
    (mark-price candle likewise, open interest = last value).  Each bar is indexed by the open
    time of the last base bar of its bin; the bin's own start is in the ``period_start`` column.
    Bins without bars are skipped; a last bin the data does not fill to its end is dropped.

    Parameters
    ----------
    frame : DataFrame
        Candles with a UTC DatetimeIndex of bar open times.
    timeframe : str
        The slower timeframe (ccxt notation, e.g. ``"1h"``); a whole multiple of the base one.
    base_timeframe : str
        The frame's timeframe.

    Returns
    -------
    DataFrame
        ``attrs`` hold ``timeframe`` and the frame's ``symbol``.

    Raises
    ------
    ConfigError
        When ``timeframe`` is not a whole multiple (> 1) of ``base_timeframe``.
    DataError
        When the frame does not fill a single slower bar.
    """
    from backtest.timeframes import timeframe_to_ms

    step_ms = timeframe_to_ms(timeframe)
    base_ms = timeframe_to_ms(base_timeframe)
    if step_ms <= base_ms or step_ms % base_ms:
        raise ConfigError(
            f"timeframe {timeframe!r} must be a whole multiple of the run's {base_timeframe!r} "
            "bars and longer (e.g. 1h beside 5m)"
        )
    times = pd.DatetimeIndex(frame.index)
    milliseconds = times.as_unit("ms").asi8
    bins = milliseconds - milliseconds % step_ms
    columns = {name: how for name, how in AGGREGATIONS.items() if name in frame.columns}
    source = frame[list(columns)].copy(deep=False)
    source.attrs = {}  # load_market's attrs hold arrays, which pandas cannot compare on concat
    grouped = source.groupby(bins, sort=True)
    slow = grouped.agg(columns)
    last_bar = pd.Series(milliseconds, index=bins).groupby(level=0).max()
    complete = np.ones(len(slow), dtype=bool)
    if len(slow):
        data_end = milliseconds[-1] + base_ms
        complete[-1] = data_end >= slow.index[-1] + step_ms
    slow = slow[complete]
    last_bar = last_bar[complete]
    if slow.empty:
        raise DataError(
            f"the run's bars do not fill one {timeframe} bar; widen --since/--until or drop "
            f"timeframe {timeframe!r}"
        )
    starts = pd.to_datetime(slow.index.to_numpy(), unit="ms", utc=True)
    stamps = pd.to_datetime(last_bar.to_numpy(), unit="ms", utc=True)
    if times.tz is None:
        starts, stamps = starts.tz_localize(None), stamps.tz_localize(None)
    slow = slow.set_axis(pd.DatetimeIndex(stamps, name=frame.index.name))
    slow["period_start"] = starts
    slow.attrs = {"timeframe": timeframe, "symbol": frame.attrs.get("symbol")}
    return slow


def add_timeframe_feeds(
    cerebro: Any, strategy_class: type, frames: Mapping[str, pd.DataFrame], base_timeframe: str
) -> list[Any]:
    """Add the strategy's slower feeds (``strategy_class.timeframes``) after the traded ones.

    One :class:`~backtest.engine.feeds.PerpData` per timeframe and symbol, named
    ``"<symbol>@<timeframe>"`` and marked ``resampled_from = <symbol>`` (the broker refuses
    orders on it).

    Returns
    -------
    list
        The feeds added (empty when the strategy declares no timeframe).

    Raises
    ------
    ConfigError
        When ``timeframes`` is not a tuple of timeframe strings, or one is not slower.
    """
    from backtest.engine.feeds import PerpData

    timeframes = getattr(strategy_class, "timeframes", ()) or ()
    if isinstance(timeframes, str) or not all(isinstance(item, str) for item in timeframes):
        raise ConfigError(
            f"{strategy_class.__name__}.timeframes must be a tuple of timeframes such as "
            f"('1h',), got {timeframes!r}"
        )
    feeds = []
    for timeframe in timeframes:
        for symbol, frame in frames.items():
            feed = PerpData(dataname=resample_frame(frame, timeframe, base_timeframe))
            feed.resampled_from = symbol
            cerebro.adddata(feed, name=f"{symbol}@{timeframe}")
            feeds.append(feed)
    return feeds
