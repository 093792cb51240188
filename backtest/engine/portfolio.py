"""Portfolio runs: several symbols, one account, one clock.

:func:`backtest.engine.run` hands a run here when ``config.symbol`` lists several symbols (or
when it is given a mapping of frames).  Each symbol is loaded, checked and cut at its map's
warm-up as a single-symbol run's market is; then:

* **One clock: the intersection.**  A bar time missing from any symbol's candles is dropped
  from every feed (:func:`align_frames`), so every feed advances on every bar and nothing is
  repeated or traded on a stale bar.  A funding settlement placed on a dropped bar moves to the
  next kept bar of that symbol (rates of two settlements landing on one bar are added); one
  after the last kept bar is lost.  Binance's gaps (maintenance windows) hit all symbols at
  once, so on its data the intersection drops next to nothing.
* **One feed and one liquidation map per symbol** (``self.maps[symbol]``,
  ``self.clusters_for(data_or_symbol)``; ``self.clusters`` is the first symbol's), each feed
  with its own funding series, leverage tiers and map warm-up.
* **One account**: the broker's wallet; ``margin_mode="isolated"`` margins each position on
  its own, ``"cross"`` shares the wallet with the venue's cross formula and liquidates the
  whole account together (:mod:`backtest.engine.broker`).

The results hold a ``symbol`` column in every event table, every symbol's candles, map lines
and heatmap, the account's equity and a ``positions`` table (see :class:`Results`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

from backtest.engine.config import RunConfig
from backtest.engine.venues import snapshot_name
from backtest.errors import ConfigError, DataError, PluginError
from backtest.results import Results


def align_frames(frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Keep the bar times every frame has; move funding off dropped bars.

    Parameters
    ----------
    frames : mapping of symbol to DataFrame
        Market frames with sorted UTC DatetimeIndexes.

    Returns
    -------
    dict of symbol to DataFrame
        Frames on the common index (a frame already on it is returned as is); ``attrs`` kept.

    Raises
    ------
    DataError
        When the frames share no bar time.
    """
    if len(frames) <= 1:
        return dict(frames)
    common: pd.DatetimeIndex | None = None
    for frame in frames.values():
        common = frame.index if common is None else common.intersection(frame.index)
    assert common is not None
    if len(common) == 0:
        names = ", ".join(frames)
        raise DataError(
            f"the markets {names} share no bar time in the run's range; pick one range all of "
            "them cover (`backtest download` the missing one)"
        )
    aligned: dict[str, pd.DataFrame] = {}
    for symbol, frame in frames.items():
        if len(frame.index) == len(common):
            aligned[symbol] = frame
            continue
        keep = frame.index.isin(common)
        result = frame.loc[keep].copy()
        if "funding_rate" in frame.columns:
            result["funding_rate"] = _carried_funding(frame["funding_rate"].to_numpy(), keep)
        result.attrs = dict(frame.attrs)
        aligned[symbol] = result
    return aligned


def _carried_funding(rates: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Funding rates on the kept bars, each dropped settlement added to the next kept bar."""
    kept_positions = np.flatnonzero(keep)
    out = rates[keep].astype(np.float64, copy=True)
    for position in np.flatnonzero(~keep & ~np.isnan(rates)):
        target = int(np.searchsorted(kept_positions, position, side="left"))
        if target >= len(kept_positions):
            continue  # after the last common bar: no bar left to settle on
        current = out[target]
        out[target] = rates[position] if np.isnan(current) else current + rates[position]
    return out


def run_portfolio(
    config: RunConfig,
    *,
    data: Mapping[str, pd.DataFrame] | None = None,
    strategy_class: type[bt.Strategy] | None = None,
    progress: bool = False,
    tiers: Any = None,
    liquidation_price_function: Any = None,
) -> Results:
    """Backtest every symbol of ``config`` in one account (see the module notes).

    Parameters are those of :func:`backtest.engine.run`; ``data`` maps each symbol to its frame
    and ``tiers`` may be one table for all symbols or a mapping by symbol.

    Raises
    ------
    ConfigError, DataError, PluginError
        As :func:`backtest.engine.run`.
    """
    from backtest.engine import runner
    from backtest.engine.warmup import logger as warmup_logger
    from backtest.engine.warmup import split_warmup

    started = dt.datetime.now(dt.UTC)
    symbols = config.symbols
    if data is not None:
        missing = [symbol for symbol in symbols if symbol not in data]
        extra = [symbol for symbol in data if symbol not in symbols]
        if missing or extra:
            raise ConfigError(
                f"data must hold one frame per symbol of the run ({', '.join(symbols)}); "
                f"missing: {', '.join(missing) or 'none'}, extra: {', '.join(extra) or 'none'}"
            )
    if strategy_class is None:
        from backtest.plugins import resolve_strategy

        strategy_class = resolve_strategy(config.strategy)
    from backtest.strategy import has_event_form

    if not has_event_form(strategy_class):
        raise ConfigError(
            f"strategy {strategy_class.__name__} has only an array form (decide), which decides "
            "for one symbol; a portfolio needs next(): run one symbol, or add next()"
        )
    frames: dict[str, pd.DataFrame] = {}
    warmups: dict[str, pd.DataFrame | None] = {}
    warmup_info: dict[str, Any] = {}
    for symbol in symbols:
        single = config.replace(symbol=symbol)
        raw = data[symbol] if data is not None else runner.load_run_frame(single)
        split = split_warmup(single, runner.check_frame(raw, timeframe=config.timeframe))
        if split.frame.empty:
            raise DataError(
                f"the {symbol} market has no bar at or after since {config.since}; widen "
                "--since/--until"
            )
        warning = split.warning(single)
        if warning is not None:
            warmup_logger.warning(warning)
        frames[symbol], warmups[symbol] = split.frame, split.warmup
        warmup_info[symbol] = dict(split.info)
    lengths = {symbol: len(frame) for symbol, frame in frames.items()}
    frames = align_frames(frames)
    tiers_by_symbol = _tiers(config, frames, tiers)
    for symbol in symbols:
        runner.check_leverage(config.replace(symbol=symbol), tiers_by_symbol[symbol])
    cerebro, feeds = build_portfolio_cerebro(
        config,
        frames,
        strategy_class,
        warmups=warmups,
        tiers=tiers_by_symbol,
        progress=progress,
        liquidation_price_function=liquidation_price_function,
    )
    meta = {
        "run_id": runner.make_run_id(config, strategy_class, started),
        "strategy": strategy_class.__name__,
        "symbol": ", ".join(symbols),
        "symbols": list(symbols),
        "status": "complete",
        "error": None,
        "started": runner._iso(started),
        "finished": None,
        "version": runner._version(),
        "warmup": warmup_info,
        "data_files": {symbol: runner._data_files(frame) for symbol, frame in frames.items()},
        "tiers": {symbol: snapshot_name(tiers_by_symbol[symbol]) for symbol in frames},
        "bars_dropped": {symbol: lengths[symbol] - len(frame) for symbol, frame in frames.items()},
        "funding_settlements_by_symbol": {
            symbol: runner._funding_settlements(frame) for symbol, frame in frames.items()
        },
    }
    meta["funding_settlements"] = sum(meta["funding_settlements_by_symbol"].values())
    try:
        strategies = cerebro.run()
    except (Exception, SystemExit) as error:
        strategy = cerebro.runningstrats[0] if getattr(cerebro, "runningstrats", None) else None
        for analyzer in getattr(strategy, "analyzers", ()):
            if isinstance(analyzer, runner._Progress):
                analyzer.close()
        bar_time = runner._current_bar_time(cerebro)
        meta.update(status="failed", finished=runner._iso(dt.datetime.now(dt.UTC)))
        partial = _partial(config, meta, frames, strategy)
        if runner._raised_by(error, strategy_class) or runner._raised_outside_project(error):
            bars = len(next(iter(frames.values())))
            message = runner._failure_message(error, strategy_class, strategy, bar_time, bars)
            meta["error"] = partial.meta["error"] = message
            raise runner._attach(PluginError(message), partial) from error
        meta["error"] = partial.meta["error"] = f"{type(error).__name__} at bar {bar_time}: {error}"
        runner._attach(error, partial)
        raise
    meta["finished"] = runner._iso(dt.datetime.now(dt.UTC))
    strategy = strategies[0]
    heatmaps = {
        symbol: runner.heatmap_table(
            frames[symbol], _symbol_map_params(config, strategy, feed), warmup=warmups[symbol]
        )
        for symbol, feed in zip(symbols, feeds, strict=True)
    }
    return _collect(config, meta, frames, strategy, heatmaps=heatmaps)


def _symbol_map_params(config: RunConfig, strategy: Any, feed: Any) -> dict[str, Any]:
    """One symbol's map parameters as its indicator got them (for its report heatmap)."""
    map_params = dict(getattr(feed, "map_defaults", None) or {})
    map_params.update(config.map_params or {})
    overrides = getattr(strategy, "map_overrides", None)
    if callable(overrides):
        map_params.update(overrides())
    map_params.pop("cascade", None)
    return map_params


def _tiers(config: RunConfig, frames: Mapping[str, pd.DataFrame], tiers: Any) -> dict[str, Any]:
    """Each symbol's leverage tiers: the caller's (one table or a mapping) or the snapshot's."""
    from backtest.engine import runner

    if isinstance(tiers, Mapping):
        missing = [symbol for symbol in frames if symbol not in tiers]
        if missing:
            raise ConfigError(f"tiers has no table for {', '.join(missing)}")
        return {symbol: tiers[symbol] for symbol in frames}
    if tiers is not None:
        return {symbol: tiers for symbol in frames}
    return {
        symbol: runner.load_run_tiers(config.replace(symbol=symbol), frame.index[0])
        for symbol, frame in frames.items()
    }


def build_portfolio_cerebro(
    config: RunConfig,
    frames: Mapping[str, pd.DataFrame],
    strategy_class: type[bt.Strategy],
    *,
    warmups: Mapping[str, pd.DataFrame | None] | None = None,
    tiers: Mapping[str, Any] | None = None,
    progress: bool = False,
    liquidation_price_function: Any = None,
) -> tuple[Any, tuple[Any, ...]]:
    """Assemble a portfolio's Cerebro: one feed per symbol (then the slower timeframes).

    Returns
    -------
    (PerpCerebro, tuple of PerpData)
        The Cerebro and the traded feeds in symbol order.
    """
    from backtest.engine.analyzers import ResultsAnalyzer
    from backtest.engine.feeds import PerpData
    from backtest.engine.resample import add_timeframe_feeds
    from backtest.engine.runner import PerpCerebro, _Progress, install_broker
    from backtest.engine.venues import attach_map_defaults

    cerebro = PerpCerebro(run_config=config)
    cerebro.p.preload = True
    cerebro.p.runonce = True
    feeds = []
    for symbol, frame in frames.items():
        warmup = (warmups or {}).get(symbol)
        feed = PerpData(dataname=frame, warmup=warmup)
        attach_map_defaults(feed, config, (tiers or {}).get(symbol), frame)
        cerebro.adddata(feed, name=symbol)
        feeds.append(feed)
    add_timeframe_feeds(cerebro, strategy_class, frames, config.timeframe)
    install_broker(
        cerebro, config, dict(tiers) if tiers is not None else None, liquidation_price_function
    )
    cerebro.addstrategy(strategy_class, **dict(config.params))
    cerebro.addanalyzer(
        ResultsAnalyzer,
        _name="results",
        near_miss_pct=config.near_miss_pct,
        portfolio=tuple(feeds),
    )
    if progress:
        total = len(next(iter(frames.values())))
        cerebro.addanalyzer(_Progress, _name="progress", total=total, label=config.symbols[0])
    return cerebro, tuple(feeds)


def _partial(
    config: RunConfig, meta: dict[str, Any], frames: Mapping[str, pd.DataFrame], strategy: Any
) -> Results:
    """Results of a failed portfolio run (tables as far as they got), never marked complete."""
    try:
        return _collect(config, meta, frames, strategy)
    except Exception:  # the run is already failing: do not mask its error
        return Results(config=config.to_dict(), meta=dict(meta))


def _collect(
    config: RunConfig,
    meta: dict[str, Any],
    frames: Mapping[str, pd.DataFrame],
    strategy: Any,
    *,
    heatmaps: Mapping[str, pd.DataFrame] | None = None,
) -> Results:
    """Build a portfolio's Results: account tables plus every symbol's market, map and heatmap."""
    from backtest.engine.runner import MARKET_COLUMNS

    tables: dict[str, pd.DataFrame] = {}
    analyzer = getattr(strategy.analyzers, "results", None) if strategy is not None else None
    if analyzer is not None and hasattr(analyzer, "recorders"):
        tables = analyzer.get_analysis()
    markets, clusters, heatmap_parts = [], [], []
    for symbol, frame in frames.items():
        market = frame[[name for name in MARKET_COLUMNS if name in frame.columns]].copy()
        market.attrs = {}
        market.index = pd.DatetimeIndex(market.index, name="time")
        if market.index.tz is None:
            market.index = market.index.tz_localize("UTC")
        market.insert(0, "symbol", symbol)
        markets.append(market)
        lines = _map_frame(strategy, symbol)
        if not lines.empty:
            lines.insert(0, "symbol", symbol)
            clusters.append(lines)
        heatmap = (heatmaps or {}).get(symbol)
        if heatmap is not None and not heatmap.empty:
            heatmap = heatmap.copy()
            heatmap.insert(0, "symbol", symbol)
            heatmap_parts.append(heatmap)
    meta = dict(meta)
    if "equity" in tables:
        meta["bars"] = len(tables["equity"])
    return Results(
        config=config.to_dict(),
        meta=meta,
        market=pd.concat(markets) if markets else pd.DataFrame(),
        clusters=pd.concat(clusters) if clusters else pd.DataFrame(),
        heatmap=pd.concat(heatmap_parts, ignore_index=True) if heatmap_parts else pd.DataFrame(),
        **tables,
    )


def _map_frame(strategy: Any, symbol: str) -> pd.DataFrame:
    """One symbol's liquidation-map lines, indexed by bar time (empty without a map)."""
    from backtest.engine.feeds import date_numbers_to_index

    maps = getattr(strategy, "maps", None) or {} if strategy is not None else {}
    indicator = maps.get(symbol)
    if indicator is None or not hasattr(indicator, "lines"):
        return pd.DataFrame()
    count = len(strategy)
    if count <= 0:
        return pd.DataFrame()
    data = indicator.data
    datetimes = np.asarray(data.lines.datetime.array, dtype=np.float64)[:count]
    columns = {}
    for name in indicator.lines.getlinealiases():
        values = np.asarray(getattr(indicator.lines, name).array, dtype=np.float64)[:count]
        if len(values) == count:
            columns[name] = values
    return pd.DataFrame(columns, index=date_numbers_to_index(datetimes))
