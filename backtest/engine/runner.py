"""Run one backtest: :class:`RunConfig` → Cerebro (preload, runonce) → :class:`Results`.

The run uses :class:`PerpData` (bulk-preloaded), :class:`PerpetualBroker` with a
:class:`PerpetualCommission`, the leverage tiers in force at the run's start date, the strategy
with ``config.params`` and the analyzers of :mod:`backtest.engine.analyzers`.  backtrader's
standard observers are off (they cost more than all indicators together).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import logging
import re
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

from backtest.engine.analyzers import ResultsAnalyzer
from backtest.engine.broker import PerpetualBroker
from backtest.engine.commission import PerpetualCommission
from backtest.engine.config import RunConfig
from backtest.engine.feeds import PerpData, date_numbers_to_index
from backtest.engine.resample import add_timeframe_feeds
from backtest.engine.venues import attach_map_defaults, snapshot_name
from backtest.engine.warmup import join_warmup, load_since, split_warmup
from backtest.engine.warmup import logger as warmup_logger
from backtest.errors import ConfigError, DataError, PluginError
from backtest.results import Results

#: The run's own steps (shown by ``-v``).
steps = logging.getLogger("backtest.run")

#: Columns the ``market`` table keeps.
MARKET_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
_REQUIRED_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
_BACKTRADER_DIR = str(Path(bt.__file__).resolve().parent)
_ENGINE_DIR = str(Path(__file__).resolve().parent)
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)
#: The package's code a strategy builds on: errors there follow from the strategy's choices.
_PLUGIN_API = (
    str(Path(__file__).resolve().parent / "indicators"),
    str(Path(__file__).resolve().parent.parent / "strategy.py"),
    str(Path(__file__).resolve().parent.parent / "liquidation"),
)
#: Density snapshots kept in ``Results.heatmap`` at most, and its price bins.
HEATMAP_SNAPSHOTS = 300
HEATMAP_BINS = 120
#: The heatmap's price grid spans the frame's lowest low and highest high widened by these.
HEATMAP_LOW_FACTOR, HEATMAP_HIGH_FACTOR = 0.85, 1.15
#: Columns of ``Results.heatmap``.
HEATMAP_COLUMNS: tuple[str, ...] = ("time", "price", "long_notional", "short_notional")


class PerpCerebro(bt.Cerebro):
    """A Cerebro that carries the run's :class:`RunConfig` as ``run_config``.

    Strategies and indicators read it through ``self.env.run_config`` (e.g. the liquidation
    map's parameters).  Defaults differ from stock Cerebro: no standard observers.
    """

    params = (("stdstats", False),)

    def __init__(self, run_config: RunConfig | None = None) -> None:
        super().__init__()
        self.run_config = run_config


class _Progress(bt.Analyzer):
    """A tqdm progress bar on standard error, updated every 1 % of the bars."""

    params = (("total", 0), ("label", "backtest"))

    def start(self) -> None:
        from tqdm import tqdm

        # disable=None: no bar when standard error is not a terminal (logs, pipes, CI).
        self._bar = tqdm(
            total=self.p.total, desc=self.p.label, unit="bar", leave=False, disable=None
        )
        self._step = max(self.p.total // 100, 1)
        self._count = 0

    def next(self) -> None:
        self._count += 1
        if self._count % self._step == 0:
            self._bar.update(self._step)

    def stop(self) -> None:
        self._bar.update(self._count - self._bar.n)
        self.close()

    def close(self) -> None:
        """Remove the bar from the terminal (also when the run fails half-way)."""
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.close()
            self._bar = None


def build_cerebro(
    config: RunConfig,
    frame: pd.DataFrame,
    strategy_class: type[bt.Strategy],
    *,
    tiers: Any = None,
    progress: bool = False,
    liquidation_price_function: Any = None,
    warmup: pd.DataFrame | None = None,
) -> PerpCerebro:
    """Assemble the Cerebro of a run (data, broker, strategy, analyzers) without running it.

    Parameters
    ----------
    config : RunConfig
        The run.
    frame : DataFrame
        Candles as from :func:`backtest.market.store.load_market`.
    strategy_class : type
        The strategy; ``config.params`` are passed to it.
    tiers : LeverageTiers, optional
        Tiers in force (maintenance rates and maximum leverage).
    progress : bool
        Attach a progress bar.
    liquidation_price_function : callable, optional
        Replacement for :func:`backtest.liquidation.prices.liquidation_price`.
    warmup : DataFrame, optional
        Bars before ``frame`` that the liquidation map runs over first (not traded; see
        :mod:`backtest.engine.warmup`).

    Returns
    -------
    PerpCerebro
    """
    cerebro = PerpCerebro(run_config=config)
    cerebro.p.preload = True
    cerebro.p.runonce = True
    feed = PerpData(dataname=frame, warmup=warmup)
    attach_map_defaults(feed, config, tiers, frame)
    cerebro.adddata(feed, name=config.symbol)
    add_timeframe_feeds(cerebro, strategy_class, {config.symbol: frame}, config.timeframe)
    install_broker(cerebro, config, tiers, liquidation_price_function)
    cerebro.addstrategy(strategy_class, **dict(config.params))
    cerebro.addanalyzer(ResultsAnalyzer, _name="results", near_miss_pct=config.near_miss_pct)
    if progress:
        cerebro.addanalyzer(_Progress, _name="progress", total=len(frame), label=config.symbol)
    return cerebro


def install_broker(
    cerebro: bt.Cerebro, config: RunConfig, tiers: Any, liquidation_price_function: Any = None
) -> PerpetualBroker:
    """Give ``cerebro`` the run's perpetual broker and commission scheme (one or many symbols).

    Parameters
    ----------
    cerebro : backtrader.Cerebro
        The Cerebro being assembled.
    config : RunConfig
        The run: cash, venue, margin mode, funding, slippage, fees, leverage.
    tiers : LeverageTiers or mapping of symbol to LeverageTiers, optional
        Tiers in force.
    liquidation_price_function : callable, optional
        Replacement for :func:`backtest.liquidation.prices.liquidation_price`.

    Returns
    -------
    PerpetualBroker
        The installed broker.
    """
    broker = PerpetualBroker(
        cash=config.cash,
        venue=config.venue,
        margin_mode=config.margin_mode,
        tiers=tiers,
        funding=config.funding,
        liquidation_price_function=liquidation_price_function,
        slippage=config.slippage,
        slippage_model=config.slippage_model,
    )
    broker.addcommissioninfo(
        PerpetualCommission(
            commission=config.taker_fee,
            maker_commission=config.maker_fee,
            leverage=config.leverage,
            liquidation_fee=config.liquidation_fee_rate,
        )
    )
    cerebro.broker = broker
    return broker


def check_leverage(config: RunConfig, tiers: Any) -> None:
    """Refuse a run leverage above the tier maximum for its initial notional (cash × leverage).

    Raises
    ------
    ConfigError
        With the maximum allowed and the tier table's name.
    """
    if tiers is None:
        return
    notional = config.cash * config.leverage
    if notional > tiers.max_notional:
        raise ConfigError(
            f"cash {config.cash:,.2f} at leverage {config.leverage:g} is a {notional:,.0f} "
            f"position, beyond the largest bracket of {tiers.label} ({tiers.max_notional:,.0f}); "
            "lower --cash or --leverage"
        )
    allowed = tiers.max_leverage_for_notional(notional)
    if config.leverage > allowed:
        raise ConfigError(
            f"leverage {config.leverage:g} exceeds the {allowed:g}x maximum of {tiers.label} for "
            f"a {notional:,.0f} position (cash × leverage); use --leverage {allowed:g} or less"
        )


def load_run_tiers(config: RunConfig, start: pd.Timestamp | None = None) -> Any:
    """The leverage tiers in force at the run's start: its first bar, else ``config.since``.

    The store's ``tiers`` folder is searched first (``download`` writes Bybit's, OKX's and
    Hyperliquid's there), then the bundled snapshots (:mod:`backtest.engine.venues`).
    """
    from backtest.engine.venues import load_venue_tiers

    at = start.to_pydatetime() if start is not None else config.since
    return load_venue_tiers(
        config.symbol,
        config.exchange,
        at,
        data_dir=config.data_dir,
        timeframe=config.timeframe,
    )


def load_run_frame(config: RunConfig) -> pd.DataFrame:
    """The run's candles from the store (funding, mark price joined), from the map's warm-up on.

    The bars before ``config.since`` are the liquidation map's warm-up
    (:func:`backtest.engine.warmup.load_since`); :func:`run` does not trade them.
    """
    from backtest.market.store import load_market

    return load_market(
        config.symbol,
        config.timeframe,
        exchange=config.exchange,
        since=load_since(config),
        until=config.until,
        data_dir=config.data_dir,
    )


def check_frame(frame: Any, timeframe: str | None = None) -> pd.DataFrame:
    """Check a caller's frame has what the engine needs, and that its values are sane.

    Parameters
    ----------
    frame : DataFrame
        Candles as from :func:`backtest.market.store.load_market`.
    timeframe : str, optional
        The run's timeframe: bar open times must then lie on its grid.

    Raises
    ------
    DataError
        No rows, no UTC DatetimeIndex, missing candle columns, unsorted times, or a bad value
        (:func:`check_frame_values`).
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            f"data must be a pandas DataFrame as from load_market, got {type(frame).__name__}"
        )
    if frame.empty:
        raise DataError("the market frame has no rows; widen --since/--until")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError("the market frame needs a DatetimeIndex of bar open times (UTC)")
    missing = [name for name in _REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise DataError(
            f"the market frame lacks column(s) {', '.join(missing)}; it needs open, high, low, "
            "close (and volume, funding_rate, mark_* when available)"
        )
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise DataError("the market frame's times must be strictly increasing")
    check_frame_values(frame, timeframe)
    return frame


def check_frame_values(frame: pd.DataFrame, timeframe: str | None = None) -> None:
    """Check the frame's prices, funding and (with ``timeframe``) its bar grid.

    The rules are those of :mod:`backtest.market.checks` (applied to stored files on load),
    so a caller's frame with a NaN close or an inverted bar is refused like a damaged file.

    Raises
    ------
    DataError
        Naming the first bad bar's time.
    """
    from backtest.market.checks import check_funding, check_prices, check_timestamps
    from backtest.timeframes import timeframe_to_ms

    index = frame.index
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    times = index.as_unit("ms").asi8
    source = f"the market frame of {frame.attrs.get('symbol') or 'the run'}"
    remedy = (
        "repair the stored file named in the frame's sources or reload it"
        if frame.attrs.get("sources")
        else "fix or drop that row before passing the frame"
    )
    step_ms = timeframe_to_ms(timeframe) if timeframe else None
    check_timestamps(times, source, remedy, step_ms=step_ms)
    columns = {name: frame[name].to_numpy(dtype=np.float64) for name in _REQUIRED_COLUMNS}
    if "volume" in frame.columns:
        columns["volume"] = frame["volume"].to_numpy(dtype=np.float64)
    check_prices(columns, times, source, remedy)
    if "funding_rate" in frame.columns:
        rates = frame["funding_rate"].to_numpy(dtype=np.float64)
        check_funding(rates, times, source, remedy, allow_missing=True)
    marks = [f"mark_{name}" for name in _REQUIRED_COLUMNS]
    if all(name in frame.columns for name in marks):
        mark_columns = {
            name: frame[f"mark_{name}"].to_numpy(dtype=np.float64) for name in _REQUIRED_COLUMNS
        }
        check_prices(mark_columns, times, source, remedy, prefix="mark ", allow_missing=True)


def run(
    config: RunConfig,
    *,
    data: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    strategy_class: type[bt.Strategy] | None = None,
    progress: bool = False,
    tiers: Any = None,
    liquidation_price_function: Any = None,
) -> Results:
    """Backtest ``config`` and return its :class:`~backtest.results.Results`.

    Parameters
    ----------
    config : RunConfig
        The run.
    data : DataFrame or mapping of symbol to DataFrame, optional
        Candles as from ``load_market`` (loaded from the store when omitted, from the map's
        warm-up on).  Bars before ``config.since`` are the liquidation map's warm-up: the map
        runs over those within the warm-up (:mod:`backtest.engine.warmup`), nothing trades
        them, and no table of the results holds them.  A mapping (one frame per symbol of
        ``config.symbol``) or several symbols make a portfolio run
        (:func:`backtest.engine.portfolio.run_portfolio`).
    strategy_class : type, optional
        The strategy; resolved from ``config.strategy`` by :mod:`backtest.plugins` when omitted.
    progress : bool
        Show a progress bar on standard error.
    tiers : LeverageTiers, optional
        Leverage tiers to use; by default the snapshot in force at the first bar
        (:func:`backtest.liquidation.tiers.load_tiers`).
    liquidation_price_function : callable, optional
        Replacement for :func:`backtest.liquidation.prices.liquidation_price`.

    Returns
    -------
    Results
        ``meta.status == "complete"``; ``meta["warmup"]`` records the map's warm-up (requested,
        used, first bar, bars, and whether missing data shortened it; a shortened warm-up is
        also logged as one warning on the ``backtest.warmup`` logger).

    Raises
    ------
    PluginError
        When the strategy raises; the message names the strategy, the bar time and the cause
        (chained).  The partial results, marked ``"failed"``, ride along as ``error.results``.
    ConfigError, DataError
        Invalid settings (leverage above the tier maximum …) or missing data.
    """
    if not isinstance(config, RunConfig):
        raise ConfigError(f"run() needs a RunConfig, got {type(config).__name__}")
    if config.portfolio or isinstance(data, Mapping):
        from backtest.engine.portfolio import run_portfolio

        return run_portfolio(
            config,
            data=data,
            strategy_class=strategy_class,
            progress=progress,
            tiers=tiers,
            liquidation_price_function=liquidation_price_function,
        )
    started = dt.datetime.now(dt.UTC)
    if strategy_class is None:
        from backtest.plugins import resolve_strategy

        strategy_class = resolve_strategy(config.strategy)
    split, tiers = traded_bars(config, data, tiers)
    frame = split.frame
    cerebro = build_cerebro(
        config,
        frame,
        strategy_class,
        tiers=tiers,
        progress=progress,
        liquidation_price_function=liquidation_price_function,
        warmup=split.warmup,
    )
    meta = {
        "run_id": make_run_id(config, strategy_class, started),
        "strategy": strategy_class.__name__,
        "symbol": config.symbol,
        "status": "complete",
        "error": None,
        "started": _iso(started),
        "finished": None,
        "version": _version(),
        "warmup": dict(split.info),
        "data_files": _data_files(frame),
        "tiers": {config.symbol: snapshot_name(tiers)},
        "funding_settlements": _funding_settlements(frame),
    }
    steps.debug(
        "engine: %s on %d bars, %s margin, leverage setting %g, slippage %g (%s)",
        strategy_class.__name__,
        len(frame),
        config.margin_mode,
        config.leverage,
        config.slippage,
        config.slippage_model,
    )
    try:
        strategies = cerebro.run()
    except (Exception, SystemExit) as error:
        strategy = cerebro.runningstrats[0] if getattr(cerebro, "runningstrats", None) else None
        for analyzer in getattr(strategy, "analyzers", ()):
            if isinstance(analyzer, _Progress):
                analyzer.close()
        bar_time = _current_bar_time(cerebro)
        meta.update(status="failed", finished=_iso(dt.datetime.now(dt.UTC)))
        if _raised_by(error, strategy_class) or _raised_outside_project(error):
            message = _failure_message(error, strategy_class, strategy, bar_time, len(frame))
            meta["error"] = message
            raise _attach(PluginError(message), _partial(config, meta, frame, strategy)) from error
        meta["error"] = f"{type(error).__name__} at bar {bar_time}: {error}"
        _attach(error, _partial(config, meta, frame, strategy))
        raise
    meta["finished"] = _iso(dt.datetime.now(dt.UTC))
    strategy = strategies[0]
    steps.debug("engine: done; map: building the report's heatmap table")
    heatmap = heatmap_table(frame, _map_params(config, strategy), warmup=split.warmup)
    results = _collect(config, meta, frame, strategy, heatmap=heatmap)
    steps.debug(
        "engine: %d orders, %d trades, %d open at the end, %d refused, %d liquidations",
        len(results.orders),
        len(results.trades),
        len(results.open_trades),
        len(results.rejected),
        len(results.liquidations),
    )
    return results


def traded_bars(config: RunConfig, data: pd.DataFrame | None, tiers: Any) -> tuple[Any, Any]:
    """The run's checked bars split into warm-up and traded bars, and the tiers in force.

    Shared by the event engine and the array path (:func:`backtest.arrays.run_arrays`): the
    frame's values are checked, the map's warm-up is cut off (a shortened one is logged as one
    warning), the tiers default to the snapshot in force at the first traded bar and the
    run's leverage is checked against them.

    Raises
    ------
    DataError
        When no bar lies at or after ``config.since``, or the frame is damaged.
    ConfigError
        When the leverage is above what the tiers allow.
    """
    frame = check_frame(
        data if data is not None else load_run_frame(config), timeframe=config.timeframe
    )
    split = split_warmup(config, frame)
    frame = split.frame
    if frame.empty:
        raise DataError(
            f"the market frame has no bar at or after since {config.since}; widen --since/--until"
        )
    steps.debug(
        "loading: %s %s %s, %d traded bars %s → %s",
        config.exchange,
        config.symbol,
        config.timeframe,
        len(frame),
        frame.index[0],
        frame.index[-1],
    )
    steps.debug("map: warm-up %s", dict(split.info))
    warning = split.warning(config)
    if warning is not None:
        warmup_logger.warning(warning)
    if tiers is None:
        tiers = load_run_tiers(config, frame.index[0])
    steps.debug("tiers: %s", snapshot_name(tiers))
    check_leverage(config, tiers)
    return split, tiers


def _funding_settlements(frame: pd.DataFrame) -> int:
    """How many funding settlements the traded bars carry (0: no funding series for them)."""
    if "funding_rate" not in frame.columns:
        return 0
    return int(frame["funding_rate"].notna().sum())


def _data_files(frame: pd.DataFrame) -> dict[str, Any]:
    """The files the frame was read from (path, size, time, SHA-256); empty for a caller's frame."""
    from backtest.market.store import describe_files

    sources = frame.attrs.get("sources")
    return describe_files(sources) if isinstance(sources, dict) else {}


def _partial(
    config: RunConfig, meta: dict[str, Any], frame: pd.DataFrame, strategy: Any
) -> Results:
    """Results of a failed run (tables as far as they got), never marked complete."""
    try:
        return _collect(config, meta, frame, strategy)
    except Exception:  # the run is already failing: do not mask its error
        return Results(config=config.to_dict(), meta=dict(meta))


def _attach(error: BaseException, results: Results) -> BaseException:
    error.results = results  # type: ignore[attr-defined]
    return error


def _strategy_files(strategy_class: type) -> set[str]:
    """Resolved source files of the strategy class and its bases outside backtrader."""
    files = set()
    for klass in strategy_class.__mro__:
        module = getattr(klass, "__module__", "")
        if module.startswith("backtrader") or module == "builtins":
            continue
        try:
            files.add(str(Path(inspect.getfile(klass)).resolve()))
        except (TypeError, OSError):
            continue
    return files


def _raised_outside_project(error: BaseException) -> bool:
    """Whether the error arose in backtrader or a library below it, not in this package.

    Such an error comes from an indicator a strategy built (e.g. a moving average longer than
    the data) or from the plugin itself: it is reported as the strategy's failure in one line.
    When code of this package (the broker, the analyzers) ran between backtrader and the
    error, it is the engine's own failure and keeps its traceback.  A ``SystemExit`` (a
    plugin calling ``sys.exit``) is always the strategy's.
    """
    if isinstance(error, SystemExit):
        return True
    files = [
        str(Path(item.filename).resolve()) for item in traceback.extract_tb(error.__traceback__)
    ]
    inside = [index for index, name in enumerate(files) if name.startswith(_BACKTRADER_DIR)]
    if not inside:
        return False
    return not any(
        name.startswith(_PACKAGE_DIR) and not name.startswith(_PLUGIN_API)
        for name in files[inside[0] :]
    )


def _failure_message(
    error: BaseException,
    strategy_class: type,
    strategy: Any,
    bar_time: str,
    bars: int,
) -> str:
    """One line: the strategy, where it failed (file:line), the bar and the cause."""
    frames = traceback.extract_tb(error.__traceback__)
    files = _strategy_files(strategy_class)
    own = [item for item in frames if str(Path(item.filename).resolve()) in files]
    if own:
        place = f"{own[-1].filename}:{own[-1].lineno}"
    else:
        try:
            source = inspect.getsourcefile(strategy_class)
            line = inspect.getsourcelines(strategy_class)[1]
            place = f"{source}:{line}"
        except (TypeError, OSError):
            place = strategy_class.__module__
    if isinstance(error, SystemExit):
        cause = f"called sys.exit({error.code!r})"
    else:
        cause = f"{type(error).__name__}: {' '.join(str(error).split())}"
        if frames and not own:
            cause += f" (in {Path(frames[-1].filename).name}:{frames[-1].lineno})"
    needed = getattr(strategy, "_minperiod", 0) or 0
    hint = ""
    if isinstance(needed, int) and needed > bars:
        hint = (
            f"; its indicators need {needed} bars before the first signal and the range "
            f"holds {bars}: widen --since/--until or shorten the periods"
        )
    return f"strategy {strategy_class.__name__} ({place}) failed at bar {bar_time}: {cause}{hint}"


def _raised_by(error: BaseException, strategy_class: type) -> bool:
    """Whether the exception passed through code of the strategy class (or its bases).

    Only classes outside backtrader and the engine count: a plugin, its helper bases and the
    project's :class:`backtest.Strategy` base.
    """
    files = _strategy_files(strategy_class)
    for frame_summary in traceback.extract_tb(error.__traceback__):
        filename = str(Path(frame_summary.filename).resolve())
        if filename in files and not filename.startswith(_ENGINE_DIR):
            return True
    return False


def _current_bar_time(cerebro: PerpCerebro) -> str:
    datas = getattr(cerebro, "datas", None)
    if not datas:
        return "start"
    lines = datas[0].lines
    index = lines.close.idx
    if index < 0 or len(datas[0]) == 0:
        return "start (before the first bar)"
    number = lines.datetime.array[index]
    return str(date_numbers_to_index(np.array([number]))[0].isoformat())


def _map_params(config: RunConfig, strategy: Any) -> dict[str, Any]:
    """The run's map parameters with the strategy's overrides, as its indicator got them.

    The cascade is left out: it only feeds the per-bar ``cascade_risk`` line, not the density.
    """
    datas = getattr(strategy, "datas", None) or [None]
    map_params = dict(getattr(datas[0], "map_defaults", None) or {})
    map_params.update(config.map_params or {})
    overrides = getattr(strategy, "map_overrides", None)
    if callable(overrides):
        map_params.update(overrides())
    map_params.pop("cascade", None)
    return map_params


def heatmap_table(
    frame: pd.DataFrame,
    map_params: dict[str, Any] | None = None,
    *,
    max_snapshots: int = HEATMAP_SNAPSHOTS,
    bins: int = HEATMAP_BINS,
    warmup: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The liquidation map's density at regular snapshot bars, on one price grid.

    The map (:class:`~backtest.liquidation.heatmap.LiquidationMap` with ``map_params``) runs
    over the warm-up bars, if any, and the whole frame, copying its density every ``k`` bars of
    the frame (``k`` chosen so that there are at most ``max_snapshots`` copies).  Each copy is
    re-bucketed by overlap (:func:`backtest.liquidation.picture.rebucket`) onto ``bins``
    equal-width bins spanning
    ``[0.85 x lowest low, 1.15 x highest high]``; notional outside that span is dropped.

    Parameters
    ----------
    frame : DataFrame
        The run's candles (UTC DatetimeIndex).
    map_params : dict, optional
        :class:`~backtest.liquidation.heatmap.MapParams` fields.
    max_snapshots : int
        Snapshot bars kept at most.
    bins : int
        Price bins of the grid.
    warmup : DataFrame, optional
        Bars before the frame the map runs over first (no snapshot is taken in them).

    Returns
    -------
    DataFrame
        Long format, one row per snapshot and bin: ``time`` (open time of the snapshot bar,
        UTC; the density is as of its close), ``price`` (bin centre), ``long_notional`` and
        ``short_notional`` (quote currency).  Empty when the map cannot run on the frame.
    """
    from backtest.liquidation.heatmap import LiquidationMap, MapParams
    from backtest.liquidation.picture import rebucket

    empty = pd.DataFrame({name: [] for name in HEATMAP_COLUMNS})
    length = len(frame)
    if length == 0 or not isinstance(frame.index, pd.DatetimeIndex):
        return empty
    low = float(frame["low"].min()) * HEATMAP_LOW_FACTOR
    high = float(frame["high"].max()) * HEATMAP_HIGH_FACTOR
    if not (np.isfinite(low) and np.isfinite(high) and high > low > 0):
        return empty
    every = max(1, -(-length // max_snapshots))
    count = 0 if warmup is None else len(warmup)
    positions = list(range(count + every - 1, count + length, every))
    whole = join_warmup(warmup, frame)
    try:
        result = LiquidationMap(MapParams.from_dict(map_params)).run(whole, snapshot_at=positions)
    except (ConfigError, DataError):
        return empty
    snapshots = [item for item in result.snapshots if item.time is not None]
    if not snapshots:
        return empty
    edges = np.linspace(low, high, bins + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    longs = np.empty((len(snapshots), bins))
    shorts = np.empty((len(snapshots), bins))
    for row, snapshot in enumerate(snapshots):
        longs[row], shorts[row] = rebucket(snapshot, edges)
    times = pd.DatetimeIndex([item.time for item in snapshots])
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    return pd.DataFrame(
        {
            "time": np.repeat(times, bins),
            "price": np.tile(centres, len(snapshots)),
            "long_notional": np.maximum(longs.ravel(), 0.0),
            "short_notional": np.maximum(shorts.ravel(), 0.0),
        }
    )


def _collect(
    config: RunConfig,
    meta: dict[str, Any],
    frame: pd.DataFrame,
    strategy: Any,
    *,
    heatmap: pd.DataFrame | None = None,
) -> Results:
    """Build Results from the strategy's analyzers (partial tables after a failure)."""
    tables: dict[str, pd.DataFrame] = {}
    analyzer = getattr(strategy.analyzers, "results", None) if strategy is not None else None
    if analyzer is not None and hasattr(analyzer, "recorders"):
        tables = analyzer.get_analysis()
    market = frame[[name for name in MARKET_COLUMNS if name in frame.columns]].copy()
    market.attrs = {}  # load_market's attrs hold arrays, which Parquet metadata cannot
    market.index = pd.DatetimeIndex(market.index, name="time")
    if market.index.tz is None:
        market.index = market.index.tz_localize("UTC")
    meta = dict(meta)
    if "equity" in tables:
        meta["bars"] = len(tables["equity"])
    return Results(
        config=config.to_dict(),
        meta=meta,
        market=market,
        clusters=_clusters_frame(strategy),
        heatmap=heatmap if heatmap is not None else pd.DataFrame(),
        **tables,
    )


def _clusters_frame(strategy: Any) -> pd.DataFrame:
    """The strategy's liquidation-map lines (``self.clusters``), empty when it has none."""
    indicator = getattr(strategy, "clusters", None) if strategy is not None else None
    if indicator is None or not hasattr(indicator, "lines"):
        return pd.DataFrame()
    count = len(strategy)
    if count <= 0:
        return pd.DataFrame()
    datetimes = np.asarray(strategy.datas[0].lines.datetime.array, dtype=np.float64)[:count]
    columns = {}
    for name in indicator.lines.getlinealiases():
        values = np.asarray(getattr(indicator.lines, name).array, dtype=np.float64)[:count]
        if len(values) == count:
            columns[name] = values
    return pd.DataFrame(columns, index=date_numbers_to_index(datetimes))


def make_run_id(config: RunConfig, strategy_class: type, started: dt.datetime) -> str:
    """``<UTC start>-<strategy>-<symbol>-<timeframe>-<config hash>``, safe as a folder name."""
    digest = hashlib.sha256(
        json.dumps(config.to_dict(), sort_keys=True, default=str).encode()
    ).hexdigest()[:8]
    symbol = "_".join(re.sub(r"[^A-Za-z0-9]+", "", item.split(":")[0]) for item in config.symbols)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{strategy_class.__name__}-{symbol}-{config.timeframe}-{digest}"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _version() -> str:
    from backtest import __version__

    return __version__
