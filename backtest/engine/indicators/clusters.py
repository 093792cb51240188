"""``LiquidationClusters``: the liquidation map's per-bar outputs as backtrader lines.

In ``runonce`` mode the map's kernel runs once over the whole buffer, reading NumPy views of the
feed's lines and writing into views of this indicator's own lines (nothing is copied).  In
``next`` mode (``runonce=False``, live feeds) the same kernel is stepped bar by bar through the
map's stepper.  Both paths give the same lines.

When the feed carries warm-up bars (``PerpData(warmup=frame)``, :mod:`backtest.engine.warmup`),
the map runs over them first: the lines from the feed's first bar on are those of a map started
at the warm-up's first bar, as :meth:`LiquidationMap.run` over both gives them.
"""

from __future__ import annotations

import array
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import backtrader as bt
import numpy as np

from backtest.engine.indicators._buffers import feed_line, line_view, require_lines
from backtest.errors import ConfigError
from backtest.liquidation.heatmap import (
    CANDLE_COLUMNS,
    LINES,
    OPTIONAL_INPUTS,
    LiquidationMap,
    MapParams,
    bar_hours,
)

#: The map's per-bar outputs, in line order (the lines of the indicator).
CLUSTER_LINES: tuple[str, ...] = LINES

_CANDLE_LINES: tuple[str, ...] = CANDLE_COLUMNS
#: Optional feed lines, passed to the map under the same keyword when the feed has them.
_OPTIONAL_LINES: tuple[str, ...] = OPTIONAL_INPUTS


def build_liquidation_map(map_params: Mapping[str, Any]) -> Any:
    """Create a :class:`~backtest.liquidation.heatmap.LiquidationMap` from keyword parameters.

    Parameters
    ----------
    map_params : mapping
        Field names and values of :class:`~backtest.liquidation.heatmap.MapParams`; bad names
        or values raise the map's own one-line ``ConfigError``.

    Returns
    -------
    LiquidationMap
    """
    return LiquidationMap(MapParams.from_dict(dict(map_params)))


def feed_bar_seconds(data: Any) -> float | None:
    """Bar length of a feed in seconds, or None when it cannot be told.

    In order: the frame's ``attrs["timeframe"]`` (frames from ``load_market``), the median
    step of the feed's preloaded times, the feed's backtrader timeframe and compression when
    they were set to something other than backtrader's default (days).
    """
    frame = getattr(getattr(data, "p", None), "dataname", None)
    attrs = getattr(frame, "attrs", None) or {}
    datetimes = feed_line(data, "datetime")
    times = None
    if datetimes is not None and isinstance(datetimes.array, array.array):
        times = np.asarray(datetimes.array, dtype=np.float64)
    seconds = bar_seconds_of(attrs, times)
    if seconds is not None:
        return seconds
    seconds_per_unit = {
        bt.TimeFrame.Seconds: 1.0,
        bt.TimeFrame.Minutes: 60.0,
        bt.TimeFrame.Weeks: 7 * 86_400.0,
    }.get(getattr(data, "_timeframe", None))
    if seconds_per_unit is None:
        return None
    return seconds_per_unit * float(getattr(data, "_compression", 1) or 1)


def bar_seconds_of(attrs: Mapping[str, Any], times: np.ndarray | None) -> float | None:
    """Bar length in seconds from ``attrs["timeframe"]``, else the bars' median step.

    ``times`` are backtrader date numbers; None when neither tells.  Shared by the feed
    (:func:`feed_bar_seconds`) and the array path.
    """
    if attrs.get("timeframe"):
        return bar_hours(str(attrs["timeframe"])) * 3600.0
    if times is not None:
        steps = np.diff(times[np.isfinite(times)])
        steps = steps[steps > 0.0]
        if steps.size:
            return round(float(np.median(steps)) * 86_400.0, 3)
    return None


def map_tiers(liquidation_map: Any, attrs: Mapping[str, Any], at: Any) -> Any:
    """The tiers ``LiquidationMap.run`` would choose: the symbol of ``attrs`` at ``at``.

    BTC's when the symbol is unknown or has no bundled snapshot; None when the map needs no
    tiers (another venue, an explicit maintenance rate) or brings its own.  Shared by the
    feed (:func:`feed_tiers`) and the array path.
    """
    params = liquidation_map.params
    if liquidation_map.tiers is not None or params.venue != "binance":
        return None
    if params.maintenance_margin_rate is not None:
        return None
    from backtest.liquidation.tiers import load_tiers

    symbol = attrs.get("symbol") or "BTC/USDT:USDT"
    try:
        return load_tiers(symbol, at=at)
    except ConfigError:
        # Symbols without a bundled snapshot fall back to BTC's, as the map itself does.
        return load_tiers(at=at)


def feed_warmup(data: Any) -> Any:
    """The feed's warm-up bars (``PerpData(warmup=...)``): a non-empty DataFrame, or None."""
    warmup = getattr(getattr(data, "p", None), "warmup", None)
    if warmup is None or len(warmup) == 0:
        return None
    return warmup


def feed_tiers(data: Any, liquidation_map: Any) -> Any:
    """Leverage tiers of the feed's symbol in force at its first bar, or None.

    The first bar is the first warm-up bar when the feed has warm-up bars.

    The choice ``LiquidationMap.run`` makes for a frame: the symbol from the frame's
    ``attrs`` (BTC when unknown or without a bundled snapshot).  None when the map needs no
    tiers (another venue, an explicit maintenance rate) or brings its own.
    """
    frame = getattr(getattr(data, "p", None), "dataname", None)
    attrs = getattr(frame, "attrs", None) or {}
    at = None
    datetimes = feed_line(data, "datetime")
    warmup = feed_warmup(data)
    if warmup is not None:
        at = warmup.index[0].to_pydatetime()
    elif datetimes is not None and data.buflen() > 0 and math.isfinite(datetimes.array[0]):
        at = bt.num2date(datetimes.array[0])
    return map_tiers(liquidation_map, attrs, at)


class LiquidationClusters(bt.Indicator):
    """Estimated liquidation clusters of the market, bar by bar (see ``backtest.liquidation``).

    Parameters
    ----------
    data : backtrader data feed
        Candles (open, high, low, close, volume).  The map also reads the feed's
        ``funding_rate`` line, its ``mark_high``/``mark_low`` lines (the map then consumes
        levels with the mark-price range instead of the traded one) and ``open_interest``,
        each only when the feed has the line and it holds at least one value.
    liquidation_map : LiquidationMap, optional
        A ready map (its parameters, and its timeframe and tiers when it has them).
    timeframe : str or float, optional
        Bar length (ccxt timeframe or seconds) turning ``half_life_hours`` into bars; by
        default the frame's ``attrs["timeframe"]``, else the median step of the feed's times.
    tiers : LeverageTiers, optional
        Binance tiers for the exact liquidation prices; by default the bundled snapshot of
        the frame's symbol in force at its first bar (what ``LiquidationMap.run`` picks).
    **map_params
        Fields of :class:`~backtest.liquidation.heatmap.MapParams` (``band=0.03``,
        ``half_life_hours=24`` ...); not allowed together with ``liquidation_map``.

    Lines
    -----
    liq_long, liq_short
        Notional (quote currency) of long / short positions estimated liquidated this bar.
    long_cluster_price, long_cluster_notional, long_cluster_distance_pct
        Strongest long cluster below the price: its price, notional and distance in %.
    short_cluster_price, short_cluster_notional, short_cluster_distance_pct
        Strongest short cluster above the price, likewise.
    long_band_notional, short_band_notional
        Notional within the search band below / above the price.
    cascade_risk
        The map's per-bar cascade risk (NaN when the map does not compute it).
    """

    lines = CLUSTER_LINES
    plotinfo: ClassVar[dict[str, Any]] = {"subplot": True, "plotname": "liquidation clusters"}

    def __init__(
        self,
        liquidation_map: Any = None,
        timeframe: str | float | None = None,
        tiers: Any = None,
        **map_params: Any,
    ) -> None:
        require_lines(self.data, _CANDLE_LINES, type(self).__name__)
        if liquidation_map is None:
            liquidation_map = build_liquidation_map(map_params)
        elif map_params:
            raise ConfigError(
                f"give either liquidation_map or map parameters ({', '.join(map_params)}), "
                "not both: the map brings its own parameters"
            )
        self.liquidation_map = liquidation_map
        self._timeframe = timeframe
        self._tiers = tiers
        self._context: dict[str, Any] | None = None
        self._candle_lines = tuple(getattr(self.data.lines, name) for name in _CANDLE_LINES)
        self._optional_lines = {
            name: line
            for name in _OPTIONAL_LINES
            if (line := feed_line(self.data, name)) is not None
        }
        self._stepper: Any = None
        self._warmup_columns: dict[str, np.ndarray] | None = None

    def warmup_columns(self) -> dict[str, np.ndarray] | None:
        """The warm-up bars' candle and optional inputs as float64 arrays (None: no warm-up).

        Optional inputs the warm-up frame lacks are NaN (as on the feed).  Built once.
        """
        if self._warmup_columns is None:
            warmup = feed_warmup(self.data)
            if warmup is None:
                return None
            length = len(warmup)
            columns = {}
            for name in (*_CANDLE_LINES, *self._optional_lines):
                if name in warmup.columns:
                    values = warmup[name].to_numpy(dtype=np.float64, na_value=np.nan)
                else:
                    values = np.full(length, np.nan)
                columns[name] = np.ascontiguousarray(values, dtype=np.float64)
            self._warmup_columns = columns
        return self._warmup_columns

    def map_context(self) -> dict[str, Any]:
        """Bar length and tiers the map runs with (resolved once from the feed, then kept).

        An explicit ``timeframe``/``tiers`` wins, then the map's own, then what the feed
        tells (see :func:`feed_bar_seconds` and :func:`feed_tiers`).  Both modes resolve it
        from the whole preloaded buffer, so they run the map identically.
        """
        if self._context is None:
            timeframe = self._timeframe
            if timeframe is None and getattr(self.liquidation_map, "timeframe", None) is None:
                timeframe = feed_bar_seconds(self.data)
            tiers = self._tiers
            if tiers is None and hasattr(self.liquidation_map, "params"):
                tiers = feed_tiers(self.data, self.liquidation_map)
            self._context = {"timeframe": timeframe, "tiers": tiers}
        return self._context

    # -- runonce: the whole buffer in one kernel call ---------------------------------------
    def once(self, start: int, end: int) -> None:
        """Compute bars ``[0, end)`` with one kernel call, in place in this indicator's lines.

        backtrader calls ``oncestart(minperiod - 1, minperiod)`` and then
        ``once(minperiod, buflen)``.  The map is path dependent, so every call recomputes from
        the first bar: the result never depends on an earlier call (``start`` is not needed).
        """
        end = min(end, self.data.buflen(), self.lines[0].buflen())
        if end <= 0:
            return
        inputs = [line_view(line, end) for line in self._candle_lines]
        optional = {name: line_view(line, end) for name, line in self._optional_lines.items()}
        out = {
            name: line_view(line, end, writeable=True)
            for name, line in zip(CLUSTER_LINES, self.lines, strict=True)
        }
        warmup = self.warmup_columns()
        if warmup is not None:
            # the warm-up bars first, then the feed's: one kernel call over both
            count = len(warmup[_CANDLE_LINES[0]])
            inputs = [
                np.concatenate((warmup[name], view))
                for name, view in zip(_CANDLE_LINES, inputs, strict=True)
            ]
            optional = {
                name: np.concatenate((warmup[name], view)) for name, view in optional.items()
            }
            targets = None
        else:
            count = 0
            targets = out
        optional = {
            name: values if not np.isnan(values).all() else None
            for name, values in optional.items()
        }
        result = self.liquidation_map.run_arrays(
            *inputs, **optional, out=targets, **self.map_context()
        )
        if warmup is not None:
            for name, target in out.items():
                target[:] = result[name][count:]
        else:
            _copy_if_detached(result, out)

    # -- next: one bar at a time through the map's stepper ----------------------------------
    def nextstart(self) -> None:
        """Start a fresh stepper (stepped over the warm-up bars) on the first bar, compute it."""
        self._stepper = self._new_stepper()
        self.next()

    def _new_stepper(self) -> Any:
        stepper = self.liquidation_map.stepper(**self.map_context())
        warmup = self.warmup_columns()
        if warmup is not None:
            names = (*_CANDLE_LINES, *self._optional_lines)
            for row in zip(*(warmup[name].tolist() for name in names), strict=True):
                stepper.update(*row[:5], **dict(zip(names[5:], row[5:], strict=True)))
        return stepper

    def next(self) -> None:
        """Step the map over the current bar and write its outputs at index 0."""
        if self._stepper is None:
            self._stepper = self._new_stepper()
        open_, high, low, close, volume = (line[0] for line in self._candle_lines)
        optional = {name: line[0] for name, line in self._optional_lines.items()}
        values = self._stepper.update(open_, high, low, close, volume, **optional)
        if isinstance(values, Mapping):
            for name, line in zip(CLUSTER_LINES, self.lines, strict=True):
                line[0] = values.get(name, math.nan)
        else:
            for value, line in zip(values, self.lines, strict=True):
                line[0] = value


def _copy_if_detached(result: Any, out: dict[str, np.ndarray]) -> None:
    """Copy outputs the map returned in its own arrays into ``out`` (normally a no-op)."""
    if not isinstance(result, Mapping):
        return
    for name, target in out.items():
        produced = result.get(name)
        if produced is None or produced is target or np.shares_memory(produced, target):
            continue
        target[:] = produced
