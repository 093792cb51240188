"""The map's warm-up in a run: bars before ``since`` that the map runs over but nobody trades.

A run trades from ``config.since``; its liquidation map starts earlier, at
:func:`backtest.liquidation.warmup.warmup_start` (the rule: 20 half-lives of the map's decay by
default, or ``config.warmup``).  :func:`split_warmup` cuts a market frame into the warm-up bars
and the traded bars.  The traded bars make the feed as before (no trade, equity, funding or
metric before ``since``); the warm-up bars ride along on the feed (``PerpData(warmup=...)``)
and :class:`~backtest.engine.indicators.LiquidationClusters` runs the map over them first, so
its lines from ``since`` on are those of a map started at the warm-up's first bar.

When the data starts later than the warm-up asks, the map runs over what exists: one warning
line on the ``backtest.warmup`` logger, and the warm-up actually used is recorded in the
run's ``Results.meta["warmup"]``.

The warm-up is sized from the run's map parameters (``config.map_params``), before any
strategy exists: a strategy whose ``map_overrides`` lengthens the half-life should be run with
that half-life in ``--map`` too (or a longer ``--warmup``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backtest.liquidation.warmup import (
    describe_span,
    format_warmup,
    open_interest_retention,
    resolve_warmup,
)

logger = logging.getLogger("backtest.warmup")


@dataclass(frozen=True)
class WarmupSplit:
    """A market frame cut at ``since``.

    Attributes
    ----------
    warmup : DataFrame or None
        Bars the map runs over before the run starts (None when there are none).
    frame : DataFrame
        The traded bars, from ``since`` on.
    requested : Timedelta
        The warm-up the rule (or ``config.warmup``) asked for.
    info : dict
        What ``Results.meta["warmup"]`` records: ``requested``, ``used`` (as ``--warmup``
        spans), ``start`` (first warm-up bar, ISO UTC, or None), ``bars`` and ``shortened``;
        ``open_interest_retention`` when the warm-up has open interest.
    """

    warmup: pd.DataFrame | None
    frame: pd.DataFrame
    requested: pd.Timedelta
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def used(self) -> pd.Timedelta:
        """The warm-up the data held: ``since`` minus the first warm-up bar."""
        if self.warmup is None or len(self.frame) == 0:
            return pd.Timedelta(0)
        return _as_utc(self.frame.index[0]) - _as_utc(self.warmup.index[0])

    @property
    def shortened(self) -> bool:
        """Whether the data held less warm-up than requested."""
        return bool(self.info.get("shortened"))

    def warning(self, config: Any) -> str | None:
        """The one-line warning for a shortened warm-up (None when it is complete)."""
        if not self.shortened:
            return None
        first = self.frame.index[0] if self.warmup is None else self.warmup.index[0]
        requested = describe_span(self.requested)
        if not config.since:
            return (
                f"warm-up shortened: no --since, so the liquidation map starts empty at the "
                f"first traded bar {first:%Y-%m-%d %H:%M} UTC (the warm-up asks for {requested} "
                "before it); its clusters are thin at first — pass a later --since"
            )
        return (
            f"warm-up shortened: the liquidation map starts at {first:%Y-%m-%d %H:%M} UTC, "
            f"{describe_span(self.used)} before --since {config.since} (the warm-up asks for "
            f"{requested}; "
            f"no stored {config.symbol} {config.timeframe} bars before that); its clusters are "
            "thinner at first — download earlier data or start later"
        )


def run_warmup(config: Any) -> pd.Timedelta:
    """The warm-up a run asks for: ``config.warmup`` or the rule for its map and timeframe."""
    return resolve_warmup(
        getattr(config, "warmup", None), dict(config.map_params or {}), config.timeframe
    )


def load_since(config: Any) -> pd.Timestamp | None:
    """Where to load a run's market from: ``since`` minus the warm-up (None: from the start)."""
    if config.since is None:
        return None
    return pd.Timestamp(config.since, tz="UTC") - run_warmup(config)


def split_warmup(config: Any, frame: pd.DataFrame) -> WarmupSplit:
    """Cut ``frame`` into the warm-up before ``config.since`` and the traded bars.

    Bars before ``since - warm-up`` are dropped; with no ``since`` every bar is traded (and
    the map starts at the first one, a warm-up of 0 recorded as shortened when one was asked).

    Parameters
    ----------
    config : RunConfig
        The run (``since``, ``timeframe``, ``map_params``, ``warmup``).
    frame : DataFrame
        Candles with a sorted UTC DatetimeIndex, possibly starting before ``since``.

    Returns
    -------
    WarmupSplit
        ``frame`` unchanged (same object) when it has no bar before ``since``.
    """
    requested = run_warmup(config)
    index = frame.index
    traded_from = 0
    if config.since is not None:
        since = pd.Timestamp(config.since, tz="UTC")
        traded_from = int(index.searchsorted(_like(since, index), side="left"))
        start = since - requested
        first = int(index.searchsorted(_like(start, index), side="left"))
    else:
        since = index[0] if len(index) else None
        first = 0
    warmup: pd.DataFrame | None = None
    traded = frame
    if traded_from > first:
        warmup = frame.iloc[first:traded_from]
        traded = frame.iloc[traded_from:]
        traded.attrs = _attrs_within(frame, traded_from, len(frame))
        warmup.attrs = _attrs_within(frame, first, traded_from)
    elif traded_from > 0:
        traded = frame.iloc[traded_from:]
        traded.attrs = _attrs_within(frame, traded_from, len(frame))
    used = pd.Timedelta(0)
    if warmup is not None and since is not None:
        used = _as_utc(since) - _as_utc(warmup.index[0])
    bar = _bar_length(config, index)
    info: dict[str, Any] = {
        "requested": format_warmup(requested),
        "used": format_warmup(used),
        "start": None if warmup is None else _as_utc(warmup.index[0]).isoformat(),
        "bars": 0 if warmup is None else len(warmup),
        "shortened": bool(requested - used >= bar) if requested > pd.Timedelta(0) else False,
    }
    if warmup is not None and "open_interest" in warmup.columns:
        values = warmup["open_interest"].to_numpy(dtype=np.float64)
        if np.isfinite(values).any():
            info["open_interest_retention"] = open_interest_retention(values)
    return WarmupSplit(warmup=warmup, frame=traded, requested=requested, info=info)


def join_warmup(warmup: pd.DataFrame | None, frame: pd.DataFrame) -> pd.DataFrame:
    """The warm-up bars followed by the frame's, with the frame's attrs (the map's whole input).

    Returns ``frame`` itself when there is no warm-up.
    """
    if warmup is None or len(warmup) == 0:
        return frame
    parts = []
    for part in (warmup, frame):
        bare = part.copy(deep=False)
        bare.attrs = {}  # pandas compares attrs on concat, which fails for array values
        parts.append(bare)
    whole = pd.concat(parts)
    whole.attrs = dict(frame.attrs)
    return whole


def _bar_length(config: Any, index: pd.DatetimeIndex) -> pd.Timedelta:
    from backtest.timeframes import timeframe_to_ms

    try:
        return pd.Timedelta(milliseconds=timeframe_to_ms(config.timeframe))
    except Exception:  # a caller's frame of another bar length: one step of its index
        return pd.Timedelta(index[1] - index[0]) if len(index) > 1 else pd.Timedelta(0)


def _as_utc(moment: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _like(moment: pd.Timestamp, index: pd.DatetimeIndex) -> pd.Timestamp:
    """``moment`` comparable with ``index`` (naive UTC for a naive index)."""
    if index.tz is None:
        return moment.tz_convert("UTC").tz_localize(None)
    return moment


def _attrs_within(frame: pd.DataFrame, start: int, stop: int) -> dict[str, Any]:
    """The frame's attrs with ``funding_times`` kept to the settlements placed on the slice."""
    attrs = dict(frame.attrs)
    settlements = attrs.get("funding_times")
    if settlements is None:
        return attrs
    settlements = np.asarray(settlements, dtype=np.int64)
    if settlements.size:
        bar_ms = pd.DatetimeIndex(frame.index).as_unit("ms").asi8
        bars = np.searchsorted(bar_ms, settlements - settlements % 1000, side="left")
        settlements = settlements[(bars >= start) & (bars < stop)]
    attrs["funding_times"] = settlements
    return attrs


__all__ = ["WarmupSplit", "join_warmup", "load_since", "logger", "run_warmup", "split_warmup"]
