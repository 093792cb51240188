"""The base class of strategy plugins.

A plugin is a :class:`Strategy` subclass: class-level ``params``, an optional ``__init__`` that
declares indicators, and ``next`` that decides.  Sizing, leverage, fees, funding and the
liquidation of the strategy's own positions belong to the run (see
:class:`backtest.engine.RunConfig`), not to the plugin.

When ``uses_clusters`` is true (the default) the liquidation map is attached before the plugin's
``__init__`` runs, as ``self.clusters`` — a backtrader indicator whose lines are the map's per-bar
outputs (``liq_long``, ``long_cluster_price``, ``long_cluster_distance_pct``, ``cascade_risk`` …),
computed by the Cython kernel over the whole buffer.  The model's parameters come from the run
(``RunConfig.map_params``), so every plugin of a run sees the same map.  A portfolio run
(several symbols) attaches one map per symbol: ``self.maps[symbol]`` or
``self.clusters_for(data)``; ``self.clusters`` is the first symbol's.  ``timeframes = ("1h",)``
adds read-only slower feeds of the same symbols (:meth:`Strategy.timeframe_data`).

Array form
----------
A plugin may also (or only) decide over whole arrays, with a classmethod::

    @classmethod
    def decide(cls, bars, params):  # -> Decisions or a float64 ndarray of targets
        ...

``bars`` is a :class:`backtest.arrays.bars.Bars` (``open``, ``high``, ``low``, ``close``,
``volume``, ``time``, ``funding_rate`` and ``lines``: the liquidation map's lines, the values
``self.clusters`` holds in an event run, warm-up included); ``params`` a
:class:`types.SimpleNamespace` of the class's ``params`` overlaid with the run's.  It returns
one target exposure per bar, decided at that bar's close (NaN: no order), executed like
:meth:`Strategy.target_exposure`; or a :class:`backtest.arrays.decisions.Decisions` that also
names each order's ``reason`` and may give ``stop`` and ``take_profit`` levels per bar: resting
stop-market and take-profit limit orders that close the position the bar's decision leaves
(from the next bar when no order is sent, else once the order has filled; cancelled when the
position changes, new levels come, or one of them fills; semantics in
:mod:`backtest.arrays.decisions`).  ``map_overrides`` is then called with ``self.p`` = ``params``
(it may read only ``self.p``).  Single-symbol runs use the array form through
:func:`backtest.arrays.run.run_arrays` (``run --engine array``, sweeps); a plugin with
``decide`` but no ``next`` runs on the event engine by replaying its decisions.  An array form
decides from prices alone: it cannot see a refused order or a liquidation of its own position.

Example
-------
>>> import backtest
>>> class FadeTheFlush(backtest.Strategy):
...     '''Buy after a long cluster was swept, exit two hours later.'''
...     params = (("min_liquidated", 5e6),)
...     def next(self):
...         if not self.position and self.clusters.liq_long[0] > self.p.min_liquidated:
...             self.buy_fraction(0.5)
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from typing import Any, ClassVar

import backtrader as bt
import numpy as np

#: Version of the plugin interface.  A plugin may declare the version it was written for in
#: ``INTERFACE_VERSION``; the loader refuses plugins written for a newer interface.
INTERFACE_VERSION = 1


class _MetaPluginStrategy(type(bt.Strategy)):  # type: ignore[misc]
    """Attach the liquidation map before the plugin's own ``__init__`` runs."""

    def dopreinit(cls, _obj: Any, *args: Any, **kwargs: Any) -> tuple[Any, tuple, dict]:
        _obj, args, kwargs = super().dopreinit(_obj, *args, **kwargs)
        if cls.uses_clusters:
            from backtest.engine.indicators import LiquidationClusters

            run_config = getattr(_obj.env, "run_config", None)
            map_params = dict(getattr(run_config, "map_params", None) or {})
            cascade = map_params.get("cascade")
            if cls.uses_cascade and cascade is None:
                cascade = {}
            map_params.update(_obj.map_overrides())
            if isinstance(cascade, dict):
                from backtest.liquidation.cascade import CascadeParams

                map_params["cascade"] = CascadeParams(**cascade)
            # Created here so that backtrader registers them as this strategy's indicators.
            # The run's venue defaults (formula, tiers, funding interval: set on the feed by
            # the runner, backtest.engine.venues) lie under the run's and the strategy's.
            _obj.maps = {
                data._name: LiquidationClusters(
                    data, **{**(getattr(data, "map_defaults", None) or {}), **map_params}
                )
                for data in _symbol_feeds(_obj, run_config)
            }
            _obj.clusters = next(iter(_obj.maps.values()))
        else:
            _obj.clusters = None
            _obj.maps = {}
        return _obj, args, kwargs


def _symbol_feeds(strategy: Any, run_config: Any) -> list[Any]:
    """The traded feeds: one per symbol of the run (the first feed outside a run)."""
    symbols = tuple(getattr(run_config, "symbols", ()) or ())
    feeds = [data for data in strategy.datas if symbols and data._name in symbols]
    return feeds or [strategy.datas[0]]


class Strategy(bt.Strategy, metaclass=_MetaPluginStrategy):
    """Base class of every strategy plugin (a thin :class:`backtrader.Strategy`).

    Attributes
    ----------
    INTERFACE_VERSION : int
        The plugin interface this class was written for.
    uses_clusters : bool
        Attach the liquidation map as ``self.clusters`` (default True).  Baselines that do not
        read it set this to False and skip its cost.
    uses_cascade : bool
        Have the map compute its ``cascade_risk`` line (the amplification of the standard
        shock, :mod:`backtest.liquidation.cascade`) even when the run's map parameters do not
        ask for it (default False: the line is NaN and costs nothing).
    decide_independent_of_fills : bool
        True when ``decide``'s targets do not depend on whether earlier orders filled (a
        signal-only strategy such as ``SmaCross``): its array form then stays equal to ``next``
        after a refused order or a liquidation.  False (the default) makes an array run that
        had either warn that ``next`` may have traded differently.
    timeframes : tuple of str
        Slower timeframes of the same symbol(s) the strategy reads (e.g. ``("1h",)`` beside
        5m bars).  The runner resamples the stored candles and adds one read-only feed per
        symbol and timeframe after the traded feeds (:meth:`timeframe_data`); each slower bar
        becomes visible on the traded bar that completes it, never earlier.
    clusters : LiquidationClusters or None
        The liquidation map's lines for the first data feed.
    maps : dict of str to LiquidationClusters
        Every traded feed's map by symbol (portfolio runs have one per symbol);
        :meth:`clusters_for` looks one up.
    """

    INTERFACE_VERSION: ClassVar[int] = INTERFACE_VERSION
    uses_clusters: ClassVar[bool] = True
    uses_cascade: ClassVar[bool] = False
    decide_independent_of_fills: ClassVar[bool] = False
    timeframes: ClassVar[tuple[str, ...]] = ()

    # -- feeds of a portfolio and of slower timeframes -------------------------------------
    @property
    def symbol_datas(self) -> list[bt.AbstractDataBase]:
        """The traded feeds, one per symbol, in the run's order (resampled feeds left out)."""
        return [data for data in self.datas if getattr(data, "resampled_from", None) is None]

    def clusters_for(self, data_or_symbol: bt.AbstractDataBase | str) -> Any:
        """The liquidation map of a traded feed, given the feed or its symbol.

        Raises
        ------
        KeyError
            When the run has no map for that symbol (or the strategy uses none).
        """
        name = data_or_symbol if isinstance(data_or_symbol, str) else data_or_symbol._name
        maps = getattr(self, "maps", None) or {}
        if name not in maps:
            raise KeyError(
                f"no liquidation map for {name!r}; this run's maps: {', '.join(maps) or 'none'}"
            )
        return maps[name]

    def timeframe_data(self, timeframe: str, symbol: str | None = None) -> bt.AbstractDataBase:
        """The resampled feed of ``timeframe`` (declared in :attr:`timeframes`) of ``symbol``.

        ``symbol`` defaults to the first traded feed's.

        Raises
        ------
        KeyError
            When the run has no such feed.
        """
        base = symbol if symbol is not None else self.datas[0]._name
        name = f"{base}@{timeframe}"
        for data in self.datas:
            if data._name == name:
                return data
        raise KeyError(
            f"no {timeframe} feed of {base}; declare timeframes = ({timeframe!r},) on the strategy"
        )

    def map_overrides(self) -> dict[str, Any]:
        """Liquidation-map parameters this strategy sets from its own parameters.

        Called before ``__init__`` with ``self.p`` already set; the result is laid over the
        run's ``map_params``.  E.g. a strategy whose ``band`` parameter is the map's search
        band returns ``{"band": self.p.band}``.
        """
        return {}

    # -- array-only plugins on the event engine ---------------------------------------------
    def next(self) -> None:
        """Array-only plugins: execute ``decide``'s decision of the bar that just closed.

        A plugin with its own ``next`` overrides this.  One with only ``decide`` gets its
        decisions computed once, over the whole run, at its first bar (the map's lines are
        ready then), and executed as :class:`backtest.arrays.replay.ReplayDecisions` does.
        """
        if not has_array_form(type(self)):
            return
        from backtest.arrays.replay import ReplayDecisions

        if getattr(self, "_targets", None) is None:
            self._start_replay()
        ReplayDecisions.next(self)

    def prenext(self) -> None:
        """Array-only plugins decide on every bar, also before other indicators are ready."""
        if type(self).next is Strategy.next:
            self.next()

    def _start_replay(self) -> None:
        """Run ``decide`` over the feed's bars and the map's lines; keep its decisions."""
        from backtest.arrays.bars import Bars

        feed = self.datas[0]
        count = feed.buflen()

        def values(line: Any) -> Any:
            return np.asarray(line.array, dtype=np.float64)[:count].copy()

        lines = {}
        if self.clusters is not None:
            for name in self.clusters.lines.getlinealiases():
                lines[name] = values(getattr(self.clusters.lines, name))
        funding = (
            values(feed.lines.funding_rate)
            if "funding_rate" in feed.lines.getlinealiases()
            else None
        )
        if funding is not None and np.isnan(funding).all():
            funding = None
        from backtest.engine.feeds import date_numbers_to_index

        times = date_numbers_to_index(values(feed.lines.datetime)).tz_localize(None)
        bars = Bars(
            open=values(feed.lines.open),
            high=values(feed.lines.high),
            low=values(feed.lines.low),
            close=values(feed.lines.close),
            volume=values(feed.lines.volume),
            time=times.as_unit("ns").to_numpy(),
            funding_rate=funding,
            lines=lines,
        )
        params = types.SimpleNamespace(**dict(self.p._getkwargs()))
        from backtest.arrays.replay import ReplayDecisions

        ReplayDecisions.load(self, call_decide(type(self), bars, params))

    # -- position helpers -----------------------------------------------------------------
    def liquidation_price(self, data: bt.AbstractDataBase | None = None) -> float:
        """Exchange-exact liquidation price of the open position (NaN when flat)."""
        broker = self.broker
        helper = getattr(broker, "liquidation_price", None)
        if helper is None:
            return math.nan
        return float(helper(data if data is not None else self.datas[0]))

    def liquidation_distance_pct(self, data: bt.AbstractDataBase | None = None) -> float:
        """Distance from the current close to the liquidation price, in % (NaN when flat).

        Positive while the position is safe: for a long, how far price may still fall; for a
        short, how far it may still rise.
        """
        feed = data if data is not None else self.datas[0]
        liquidation = self.liquidation_price(feed)
        price = float(feed.close[0])
        if math.isnan(liquidation) or price <= 0.0:
            return math.nan
        size = self.getposition(feed).size
        if size > 0:
            return (price - liquidation) / price * 100.0
        return (liquidation - price) / price * 100.0

    def equity(self) -> float:
        """Account equity (wallet balance plus unrealised PnL), quote currency."""
        return float(self.broker.getvalue())

    def target_exposure(
        self, exposure: float, data: bt.AbstractDataBase | None = None, **kwargs: Any
    ) -> bt.Order | None:
        """Trade so that the position's notional is ``exposure`` × equity.

        ``1.0`` is a long worth the whole account, ``-0.5`` a short worth half of it and ``0``
        closes the position.  The margin this needs is notional / leverage (the run's leverage
        unless ``leverage=`` is given); an order the margin cannot cover is rejected by the broker.
        """
        feed = data if data is not None else self.datas[0]
        price = float(feed.close[0])
        if not price > 0.0:
            return None
        target = self.equity() * float(exposure) / price
        current = self.getposition(feed).size
        if abs(target - current) <= 1e-12 * max(abs(target), abs(current), 1.0):
            return None
        return self.order_target_size(data=feed, target=target, **kwargs)

    def buy_fraction(self, fraction: float, **kwargs: Any) -> bt.Order | None:
        """Open or add a long whose margin is ``fraction`` of equity at the run's leverage."""
        return self._order_fraction(fraction, self.buy, **kwargs)

    def sell_fraction(self, fraction: float, **kwargs: Any) -> bt.Order | None:
        """Open or add a short whose margin is ``fraction`` of equity at the run's leverage."""
        return self._order_fraction(fraction, self.sell, **kwargs)

    def _order_fraction(self, fraction: float, send: Any, **kwargs: Any) -> bt.Order | None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        feed = kwargs.pop("data", None) or self.datas[0]
        price = float(feed.close[0])
        if not price > 0.0:
            return None
        leverage = float(kwargs.get("leverage") or self._run_leverage())
        size = self.equity() * fraction * leverage / price
        if size <= 0.0:
            return None
        return send(data=feed, size=size, **kwargs)

    def _run_leverage(self) -> float:
        run_config = getattr(self.env, "run_config", None)
        return float(getattr(run_config, "leverage", 1.0) or 1.0)


# -- the array form ---------------------------------------------------------------------------
def has_event_form(strategy_class: type) -> bool:
    """Whether the class decides bar by bar (defines ``next`` below :class:`Strategy`)."""
    return getattr(strategy_class, "next", None) is not Strategy.next


def has_array_form(strategy_class: type) -> bool:
    """Whether the class decides over whole arrays (defines a callable ``decide``)."""
    return callable(getattr(strategy_class, "decide", None))


def strategy_form(strategy_class: type) -> str:
    """``"event"``, ``"array"`` or ``"both"``: which decision forms the class defines."""
    event, arrays = has_event_form(strategy_class), has_array_form(strategy_class)
    if event and arrays:
        return "both"
    return "array" if arrays else "event"


def array_params(
    strategy_class: type, values: Mapping[str, Any] | None = None
) -> types.SimpleNamespace:
    """The ``params`` an array form receives: the class's defaults overlaid with ``values``.

    ``values`` (a run's ``params``) are checked and converted as for the event engine
    (:func:`backtest.plugins.coerce_parameters`).

    Raises
    ------
    ConfigError
        For an unknown parameter or a value of the wrong type.
    """
    from backtest.plugins import coerce_parameters, strategy_parameters

    merged = strategy_parameters(strategy_class)
    merged.update(coerce_parameters(strategy_class, dict(values or {})))
    return types.SimpleNamespace(**merged)


def map_overrides_for(strategy_class: type, params: types.SimpleNamespace) -> dict[str, Any]:
    """The class's :meth:`Strategy.map_overrides` for ``params`` (no instance needed).

    ``map_overrides`` is called with a stand-in ``self`` whose ``p``/``params`` are ``params``,
    so an override that reads only ``self.p`` serves both forms.

    Raises
    ------
    PluginError
        When ``map_overrides`` needs more than ``self.p`` or returns no mapping.
    """
    from backtest.errors import PluginError

    method = getattr(strategy_class, "map_overrides", None)
    if method is None or method is Strategy.map_overrides:
        return {}
    stand_in = types.SimpleNamespace(p=params, params=params)
    try:
        bound = getattr(method, "__self__", None)
        result = method() if bound is strategy_class else method(stand_in)
    except Exception as error:
        raise PluginError(
            f"strategy {strategy_class.__name__}: map_overrides failed for the array form "
            f"({type(error).__name__}: {error}); it may read only self.p"
        ) from error
    if not isinstance(result, Mapping):
        raise PluginError(
            f"strategy {strategy_class.__name__}: map_overrides must return a dict, got "
            f"{type(result).__name__}"
        )
    return dict(result)


def call_decide(strategy_class: type, bars: Any, params: types.SimpleNamespace) -> Any:
    """Run the class's ``decide`` and return its checked :class:`Decisions`.

    Raises
    ------
    PluginError
        When ``decide`` raises (naming the strategy, its file:line and the cause) or returns
        something that is not one finite target per bar (:func:`check_decisions`).
    """
    import inspect
    import traceback
    from pathlib import Path

    from backtest.errors import PluginError

    name = strategy_class.__name__
    try:
        result = strategy_class.decide(bars, params)
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        try:
            own_file = str(Path(inspect.getfile(strategy_class)).resolve())
        except (TypeError, OSError):
            own_file = ""
        own = [item for item in frames if str(Path(item.filename).resolve()) == own_file]
        place = f" ({own[-1].filename}:{own[-1].lineno})" if own else ""
        cause = " ".join(str(error).split())
        raise PluginError(
            f"strategy {name}{place} failed in decide: {type(error).__name__}: {cause}"
        ) from error
    return check_decisions(strategy_class, result, len(bars))


def check_decisions(strategy_class: type, result: Any, length: int) -> Any:
    """Check what ``decide`` returned and make it a :class:`Decisions` of ``length`` bars.

    Raises
    ------
    PluginError
        One line naming the strategy: not a Decisions/ndarray, not one-dimensional, wrong
        length, a dtype that is not a number, or an infinite target.
    """
    import numpy as np

    from backtest.arrays.decisions import Decisions
    from backtest.errors import ConfigError, PluginError

    name = strategy_class.__name__
    where = f"strategy {name}: decide"
    if isinstance(result, Decisions):
        decisions = result
    else:
        if not isinstance(result, np.ndarray):
            raise PluginError(
                f"{where} must return a Decisions or a NumPy array of target exposures, got "
                f"{type(result).__name__}"
            )
        if result.dtype.kind not in "fiu":
            raise PluginError(
                f"{where} returned an array of dtype {result.dtype}; it must hold float64 "
                "target exposures (NaN where there is no decision)"
            )
        if result.ndim != 1:
            raise PluginError(
                f"{where} returned an array of shape {result.shape}; it must be one target "
                f"per bar, shape ({length},)"
            )
        if result.shape[0] != length:
            raise PluginError(
                f"{where} returned {result.shape[0]} targets for {length} bars; return one "
                "per bar (NaN where there is no decision)"
            )
        target = np.ascontiguousarray(result, dtype=np.float64)
        if np.isinf(target).any():
            first = int(np.flatnonzero(np.isinf(target))[0])
            raise PluginError(
                f"{where} returned an infinite target at bar {first}; targets are exposures "
                "such as 1.0 or -0.5 (NaN: no decision)"
            )
        decisions = Decisions.from_target(target)
    try:
        decisions.check(length)
    except (ConfigError, PluginError, ValueError) as error:
        raise PluginError(f"{where}: {error}") from error
    return decisions
