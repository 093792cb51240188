"""What an array strategy sees: the traded candles and the liquidation map's lines as arrays.

:func:`map_lines` computes the map exactly as the event engine's
:class:`~backtest.engine.indicators.LiquidationClusters` does in a run (same parameters, same
inputs, same kernel call), so a strategy's ``decide`` reads bit for bit the values its ``next``
reads from ``self.clusters``:

* parameters: the venue's defaults (:func:`backtest.engine.venues.map_defaults`), under the
  run's ``map_params``, under the strategy's ``map_overrides``; the cascade on when the run asks
  for it or the strategy sets ``uses_cascade`` (as :class:`backtest.Strategy` builds them);
* inputs: the warm-up bars (:func:`backtest.engine.warmup.split_warmup`) followed by the traded
  bars, with the optional funding, mark and open-interest inputs the feed would pass;
* context: the bar length and the Binance tiers the indicator resolves from its feed.

Sweeps vary a strategy's parameters far more often than the map's, so the lines are cached per
(market, effective map parameters, warm-up) in a small :class:`LinesCache`.
"""

from __future__ import annotations

import math
import threading
import types
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backtest.liquidation.heatmap import CANDLE_COLUMNS, LINES, OPTIONAL_INPUTS

#: Lines of the liquidation map, in the indicator's order.
MAP_LINES: tuple[str, ...] = LINES


@dataclass(frozen=True, eq=False)
class Bars:
    """The traded bars of a run as read-only NumPy arrays (what ``decide`` receives).

    Attributes
    ----------
    open, high, low, close, volume : numpy.ndarray
        float64 candles (volume NaN where the data has none).
    time : numpy.ndarray
        datetime64[ns] bar open times (UTC, naive).
    funding_rate : numpy.ndarray or None
        The settlement rate on the bar at or after each settlement, NaN elsewhere; None when
        the run has no funding series.
    lines : mapping of str to numpy.ndarray
        The liquidation map's lines (``liq_long``, ``long_band_notional`` …) over the traded
        bars: the values ``self.clusters`` holds in an event run, warm-up included.  Empty when
        the strategy sets ``uses_clusters = False``.
    map_params : MapParams or None
        The parameters the lines were computed with (what ``self.clusters.liquidation_map.params``
        is in an event run: venue defaults, the run's ``map_params``, the strategy's overrides
        and its cascade settings); None when the strategy uses no map.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    time: np.ndarray
    funding_rate: np.ndarray | None = None
    lines: Mapping[str, np.ndarray] = field(default_factory=dict)
    map_params: Any = None

    def __len__(self) -> int:
        return int(self.close.shape[0])


def _read_only(values: np.ndarray) -> np.ndarray:
    view = values.view()
    view.flags.writeable = False
    return view


def _column(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    """A column of the frame as float64 (matched case-insensitively, as PandasData does)."""
    if name in frame.columns:
        column = frame[name]
    else:
        matches = [item for item in frame.columns if str(item).lower() == name]
        if not matches:
            return None
        column = frame[matches[0]]
    return np.ascontiguousarray(column.to_numpy(dtype=np.float64, na_value=np.nan))


def bar_times(frame: pd.DataFrame) -> np.ndarray:
    """The frame's bar times as naive-UTC datetime64[ns]."""
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("ns").to_numpy()


def make_bars(
    frame: pd.DataFrame, lines: Mapping[str, np.ndarray] | None = None, map_params: Any = None
) -> Bars:
    """:class:`Bars` of a run's traded frame (from :func:`split_warmup`) and its map lines.

    ``map_params`` (the indicator's keyword arguments, :func:`effective_map_params`) is kept
    on the bars as the map's :class:`~backtest.liquidation.heatmap.MapParams`.
    """
    length = len(frame)
    columns = {}
    for name in CANDLE_COLUMNS:
        values = _column(frame, name)
        columns[name] = _read_only(values if values is not None else np.full(length, np.nan))
    funding = _column(frame, "funding_rate")
    if funding is not None and np.isnan(funding).all():
        funding = None
    return Bars(
        time=_read_only(bar_times(frame)),
        funding_rate=None if funding is None else _read_only(funding),
        lines=types.MappingProxyType({k: _read_only(v) for k, v in (lines or {}).items()}),
        map_params=None if map_params is None else _as_map_params(map_params),
        **columns,
    )


# -- the map's parameters as the event strategy builds them ----------------------------------
def _as_map_params(map_params: Any) -> Any:
    from backtest.liquidation.heatmap import MapParams

    return (
        map_params if isinstance(map_params, MapParams) else MapParams.from_dict(dict(map_params))
    )


def effective_map_params(
    config: Any,
    strategy_class: type,
    params: types.SimpleNamespace,
    frame: pd.DataFrame,
    tiers: Any,
) -> dict[str, Any]:
    """The keyword arguments the strategy's ``LiquidationClusters`` gets in an event run.

    Mirrors ``backtest.strategy._MetaPluginStrategy.dopreinit`` over the venue defaults of
    :func:`backtest.engine.venues.attach_map_defaults`.
    """
    from backtest.engine.venues import attach_map_defaults
    from backtest.liquidation.cascade import CascadeParams
    from backtest.strategy import map_overrides_for

    defaults = attach_map_defaults(types.SimpleNamespace(), config, tiers, frame)
    map_params = dict(getattr(config, "map_params", None) or {})
    cascade = map_params.get("cascade")
    if getattr(strategy_class, "uses_cascade", False) and cascade is None:
        cascade = {}
    map_params.update(map_overrides_for(strategy_class, params))
    if isinstance(cascade, dict):
        map_params["cascade"] = CascadeParams(**cascade)
    return {**(defaults or {}), **map_params}


def _bar_seconds(frame: pd.DataFrame) -> float | None:
    """:func:`backtest.engine.indicators.clusters.feed_bar_seconds` for the run's feed."""
    from backtest.engine.feeds import date_numbers
    from backtest.engine.indicators.clusters import bar_seconds_of

    return bar_seconds_of(frame.attrs or {}, date_numbers(frame.index))


def _map_tiers(frame: pd.DataFrame, warmup: pd.DataFrame | None, liquidation_map: Any) -> Any:
    """:func:`backtest.engine.indicators.clusters.feed_tiers` for the run's feed."""
    import backtrader as bt

    from backtest.engine.feeds import date_numbers
    from backtest.engine.indicators.clusters import map_tiers

    at = None
    if warmup is not None and len(warmup):
        at = warmup.index[0].to_pydatetime()
    elif len(frame):
        first = float(date_numbers(frame.index[:1])[0])
        if math.isfinite(first):
            at = bt.num2date(first)
    return map_tiers(liquidation_map, frame.attrs or {}, at)


def _map_inputs(
    frame: pd.DataFrame, warmup: pd.DataFrame | None
) -> tuple[list[np.ndarray], dict[str, np.ndarray | None], int]:
    """The kernel's inputs as the indicator builds them: warm-up then traded bars."""
    length = len(frame)
    traded = {}
    for name in (*CANDLE_COLUMNS, *OPTIONAL_INPUTS):
        values = _column(frame, name)
        traded[name] = values if values is not None else np.full(length, np.nan)
    count = 0
    if warmup is not None and len(warmup):
        count = len(warmup)
        joined = {}
        for name, values in traded.items():
            if name in warmup.columns:
                before = warmup[name].to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                before = np.full(count, np.nan)
            joined[name] = np.concatenate((np.ascontiguousarray(before, np.float64), values))
        traded = joined
    candles = [traded[name] for name in CANDLE_COLUMNS]
    optional = {
        name: None if np.isnan(traded[name]).all() else traded[name] for name in OPTIONAL_INPUTS
    }
    return candles, optional, count


def _summary(arrays: Sequence[np.ndarray | None]) -> tuple[Any, ...]:
    """A cheap key part of the map's inputs: lengths and the first and last values."""
    parts: list[Any] = []
    for values in arrays:
        if values is None or values.shape[0] == 0:
            parts.append(None)
        else:
            parts.append((values.shape[0], values[0].tobytes(), values[-1].tobytes()))
    return tuple(parts)


def _same_inputs(
    stored: Sequence[np.ndarray | None] | None, inputs: Sequence[np.ndarray | None]
) -> bool:
    """Whether two lists of input arrays are the same, bit for bit (NaN equal to NaN)."""
    if stored is None or len(stored) != len(inputs):
        return False
    for before, now in zip(stored, inputs, strict=True):
        if before is None or now is None:
            if before is not now:
                return False
            continue
        if before is now:
            continue
        if before.shape != now.shape or before.dtype != now.dtype:
            return False
        if not np.array_equal(
            np.ascontiguousarray(before).view(np.uint8), np.ascontiguousarray(now).view(np.uint8)
        ):
            return False
    return True


def _tiers_key(tiers: Any) -> Any:
    if tiers is None:
        return None
    brackets = getattr(tiers, "brackets", None) or getattr(tiers, "tiers", None)
    return (getattr(tiers, "label", None), repr(brackets) if brackets is not None else id(tiers))


class LinesCache:
    """A small least-recently-used cache of map lines (thread-safe).

    Parameters
    ----------
    maxsize : int
        Entries kept (each holds the map's lines over one market: about 10 x 8 bytes per bar).
    """

    def __init__(self, maxsize: int = 4) -> None:
        self.maxsize = max(int(maxsize), 0)
        self._entries: OrderedDict[Any, tuple[Any, dict[str, np.ndarray]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any, inputs: Sequence[np.ndarray | None] | None = None) -> Any:
        """The lines stored under ``key`` (None when absent); marks them recently used.

        With ``inputs`` (the map's input arrays), an entry counts only when its inputs were
        the same, bit for bit: the key holds cheap summaries, the comparison makes it exact.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or (inputs is not None and not _same_inputs(entry[0], inputs)):
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(
        self,
        key: Any,
        lines: dict[str, np.ndarray],
        inputs: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        """Store ``lines`` (and the ``inputs`` they came from) under ``key``.

        The least recently used entries beyond ``maxsize`` are dropped.
        """
        if self.maxsize == 0:
            return
        with self._lock:
            self._entries[key] = (None if inputs is None else tuple(inputs), lines)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


#: The process's default cache (used when a run is given none).
DEFAULT_LINES_CACHE = LinesCache()


def map_lines(
    frame: pd.DataFrame,
    warmup: pd.DataFrame | None,
    map_params: Mapping[str, Any],
    *,
    cache: LinesCache | None = None,
) -> dict[str, np.ndarray]:
    """The liquidation map's lines over the traded ``frame``, after running over ``warmup``.

    Parameters
    ----------
    frame : DataFrame
        The traded bars (:func:`backtest.engine.warmup.split_warmup`'s ``frame``).
    warmup : DataFrame or None
        The warm-up bars before it.
    map_params : mapping
        The indicator's keyword arguments (:func:`effective_map_params`).
    cache : LinesCache, optional
        Where to look the lines up and keep them.

    Returns
    -------
    dict of str to numpy.ndarray
        Every line of :data:`MAP_LINES`, read-only, one value per traded bar.
    """
    from backtest.engine.indicators.clusters import build_liquidation_map

    liquidation_map = build_liquidation_map(map_params)
    timeframe = None
    if getattr(liquidation_map, "timeframe", None) is None:
        timeframe = _bar_seconds(frame)
    tiers = _map_tiers(frame, warmup, liquidation_map)
    candles, optional, count = _map_inputs(frame, warmup)
    key = None
    inputs = [*candles, *optional.values()]
    if cache is not None:
        key = (
            _summary(inputs),
            count,
            repr(liquidation_map.params),
            timeframe,
            _tiers_key(tiers),
        )
        found = cache.get(key, inputs)
        if found is not None:
            return found
    result = liquidation_map.run_arrays(*candles, **optional, timeframe=timeframe, tiers=tiers)
    lines = {name: _read_only(np.ascontiguousarray(result[name][count:])) for name in MAP_LINES}
    if cache is not None:
        cache.put(key, lines, inputs)
    return lines


__all__ = [
    "DEFAULT_LINES_CACHE",
    "MAP_LINES",
    "Bars",
    "LinesCache",
    "bar_times",
    "effective_map_params",
    "make_bars",
    "map_lines",
]
