"""Run one single-symbol backtest on the array path: ``decide`` → simulator → :class:`Results`.

:func:`run_arrays` takes what :func:`backtest.engine.run` takes and checks what it checks (the
frame, the warm-up split, the tiers and the leverage, with the same helpers and messages), then
calls the strategy's ``decide`` once over the whole run (:mod:`backtest.strategy`, array form)
and executes its decisions with :func:`backtest.arrays.simulate.simulate`, the broker's account
model over arrays.  The results hold the tables the event engine's analyzers fill, with
``meta["engine"] == "array"``.  Portfolios (several symbols) run on the event engine only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from backtest.arrays.bars import (
    DEFAULT_LINES_CACHE,
    Bars,
    LinesCache,
    effective_map_params,
    make_bars,
    map_lines,
)
from backtest.engine.config import RunConfig
from backtest.errors import ConfigError
from backtest.results import Results
from backtest.strategy import (
    array_params,
    call_decide,
    has_array_form,
)

#: The run's own steps (shown by ``-v``), as for the event engine.
steps = logging.getLogger("backtest.run")

#: Values of ``run --engine``.
ENGINE_CHOICES: tuple[str, ...] = ("auto", "event", "array")


def choose_engine(engine: str, strategy_class: type, config: RunConfig) -> str:
    """``"event"`` or ``"array"`` for ``run --engine`` (``auto``: the array path when it can).

    Raises
    ------
    ConfigError
        For an unknown engine, ``array`` with a portfolio, or ``array`` for a strategy
        without ``decide``.
    """
    if engine not in ENGINE_CHOICES:
        raise ConfigError(f"--engine {engine!r} is unknown; use one of {', '.join(ENGINE_CHOICES)}")
    arrays = has_array_form(strategy_class)
    if engine == "auto":
        return "array" if arrays and not config.portfolio else "event"
    if engine == "array":
        _check_array_run(config, strategy_class)
    return engine


def _check_array_run(config: RunConfig, strategy_class: type) -> None:
    if config.portfolio:
        raise ConfigError(
            f"the array engine runs one symbol; {', '.join(config.symbols)} is a portfolio: "
            "portfolios run on the event engine (--engine event)"
        )
    if not has_array_form(strategy_class):
        raise ConfigError(
            f"strategy {strategy_class.__name__} has no array form (a decide classmethod); "
            "run it on the event engine (--engine event)"
        )


def prepare_bars(
    config: RunConfig,
    strategy_class: type,
    params: Any,
    frame: pd.DataFrame,
    warmup: pd.DataFrame | None,
    tiers: Any,
    lines_cache: LinesCache | None,
) -> Bars:
    """The :class:`Bars` ``decide`` receives: the traded bars and, if used, the map's lines."""
    lines = map_params = None
    if getattr(strategy_class, "uses_clusters", True):
        map_params = effective_map_params(config, strategy_class, params, frame, tiers)
        lines = map_lines(frame, warmup, map_params, cache=lines_cache)
    return make_bars(frame, lines, map_params)


def run_arrays(
    config: RunConfig,
    *,
    data: pd.DataFrame | None = None,
    strategy_class: type | None = None,
    tiers: Any = None,
    lines_cache: LinesCache | None = None,
    heatmap: bool = False,
    simulator: str = "auto",
) -> Results:
    """Backtest ``config`` on the array path and return its :class:`~backtest.results.Results`.

    Parameters
    ----------
    config : RunConfig
        A single-symbol run.
    data : DataFrame, optional
        Candles as from ``load_market`` (loaded from the store when omitted, from the map's
        warm-up on), as for :func:`backtest.engine.run`.
    strategy_class : type, optional
        A strategy with a ``decide`` classmethod; resolved from ``config.strategy`` when
        omitted.
    tiers : LeverageTiers, optional
        Leverage tiers; by default the snapshot in force at the first traded bar.
    lines_cache : LinesCache, optional
        Where the map's lines are cached (by market, effective map parameters and warm-up);
        the process's :data:`~backtest.arrays.bars.DEFAULT_LINES_CACHE` when omitted.
    heatmap : bool
        Also build the report's ``heatmap`` table (the map's density; sweeps leave it out).
    simulator : {"auto", "cython", "python"}
        The simulator (:func:`backtest.arrays.simulate.simulate`).

    Returns
    -------
    Results
        The event engine's tables; ``meta["engine"] == "array"``.

    Raises
    ------
    ConfigError
        Not a RunConfig, a portfolio, a strategy without ``decide``, bad parameters, leverage
        above the tier maximum.
    DataError
        Missing or bad market data.
    PluginError
        When ``decide`` fails or returns something that is not one target per bar.
    """
    from backtest.arrays.account import account_for
    from backtest.arrays.market import market_arrays
    from backtest.arrays.results import simulation_tables
    from backtest.arrays.simulate import simulate
    from backtest.engine.runner import (
        _data_files,
        _funding_settlements,
        _iso,
        _version,
        heatmap_table,
        make_run_id,
        traded_bars,
    )
    from backtest.engine.venues import snapshot_name

    if not isinstance(config, RunConfig):
        raise ConfigError(f"run_arrays() needs a RunConfig, got {type(config).__name__}")
    if isinstance(data, Mapping) and not isinstance(data, pd.DataFrame):
        raise ConfigError(
            "the array engine runs one symbol; a mapping of frames is a portfolio: portfolios "
            "run on the event engine (backtest.engine.run)"
        )
    started = dt.datetime.now(dt.UTC)
    if strategy_class is None:
        from backtest.plugins import resolve_strategy

        strategy_class = resolve_strategy(config.strategy)
    _check_array_run(config, strategy_class)
    params = array_params(strategy_class, config.params)
    split, tiers = traded_bars(config, data, tiers)
    frame = split.frame
    steps.debug("engine: array path for %s on %d bars", strategy_class.__name__, len(frame))
    cache = DEFAULT_LINES_CACHE if lines_cache is None else lines_cache
    bars = prepare_bars(config, strategy_class, params, frame, split.warmup, tiers, cache)
    decisions = call_decide(strategy_class, bars, params)
    account = account_for(config, tiers)
    simulation = simulate(market_arrays(frame), decisions, account, engine=simulator)
    tables = simulation_tables(
        simulation,
        frame,
        reasons=decisions.reasons,
        leverage=account.leverage,
        mult=account.mult,
        near_miss_pct=config.near_miss_pct,
        lines=bars.lines if getattr(strategy_class, "uses_clusters", True) else None,
    )
    meta = {
        "run_id": make_run_id(config, strategy_class, started),
        "strategy": strategy_class.__name__,
        "symbol": config.symbol,
        "status": "complete",
        "error": None,
        "started": _iso(started),
        "finished": _iso(dt.datetime.now(dt.UTC)),
        "version": _version(),
        "warmup": dict(split.info),
        "data_files": _data_files(frame),
        "tiers": {config.symbol: snapshot_name(tiers)},
        "funding_settlements": _funding_settlements(frame),
        "engine": "array",
        "decide_independent_of_fills": bool(
            getattr(strategy_class, "decide_independent_of_fills", False)
        ),
        "bars": len(tables["equity"]),
    }
    heatmap_frame = pd.DataFrame()
    if heatmap:
        heatmap_frame = heatmap_table(
            frame,
            _heatmap_params(config, strategy_class, params, frame, tiers),
            warmup=split.warmup,
        )
    return Results(config=config.to_dict(), meta=meta, heatmap=heatmap_frame, **tables)


def _heatmap_params(
    config: RunConfig, strategy_class: type, params: Any, frame: pd.DataFrame, tiers: Any
) -> dict[str, Any]:
    """The map parameters the event runner's heatmap uses (``runner._map_params``).

    The strategy's map (:func:`effective_map_params`) without the cascade, which a heatmap
    does not draw.
    """
    map_params = effective_map_params(config, strategy_class, params, frame, tiers)
    map_params.pop("cascade", None)
    return map_params


__all__ = ["ENGINE_CHOICES", "choose_engine", "has_array_form", "run_arrays"]
