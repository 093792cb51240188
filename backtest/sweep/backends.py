"""The four functions a sweep calls for one backtest, bundled so they travel to the workers.

A :class:`Backend` holds plain module-level functions (they pickle by reference), so the same
sweep machinery runs the real engine or, in tests, a stand-in:

``prepare(settings) -> dict``
    On the client: validate one run's settings and return them complete (every RunConfig
    field), which is what :func:`~backtest.sweep.store.run_key` hashes.
``run(settings, frame) -> Results``
    On a worker: the backtest on the market ``frame`` (already cut to the run's dates).
``metrics(results) -> dict``
    On a worker: the metrics that fill the sweep's table.
``report(results, folder) -> None``
    On the client: write a run's full report into ``folder`` (``--reports-top``).
"""

from __future__ import annotations

import inspect
import os
import pickle
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.sweep.engines import ARRAY, AUTO, EVENT


@dataclass(frozen=True)
class Backend:
    """The functions behind one sweep (see the module docstring).

    A backend pickles its functions with cloudpickle, so functions written in a script or a
    notebook (or a module registered with ``cloudpickle.register_pickle_by_value``) travel to
    the workers by value; functions of installed modules still travel by name.
    """

    prepare: Callable[[Mapping[str, Any]], dict[str, Any]]
    run: Callable[[Mapping[str, Any], pd.DataFrame], Any]
    metrics: Callable[[Any], Mapping[str, Any]]
    report: Callable[[Any, Path], Any]

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        import cloudpickle

        functions = (self.prepare, self.run, self.metrics, self.report)
        return _restore_backend, (cloudpickle.dumps(functions),)


def _restore_backend(payload: bytes) -> Backend:
    return Backend(*pickle.loads(payload))


def prepare_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Validate settings as :func:`backtest.runs.prepare` does and return every field.

    Raises
    ------
    ConfigError, PluginError
        As :func:`backtest.runs.prepare`.
    """
    config, _ = prepare_run(settings)
    return dict(config.to_dict())


def prepare_run(settings: Mapping[str, Any]) -> tuple[Any, type]:
    """:func:`backtest.runs.prepare` with the strategy resolved once per process.

    Finding a strategy by name scans the strategy folders and the installed entry points
    (about 8 ms), which a sweep would otherwise repeat for every run on the client and again on
    the worker.  The same steps as :func:`backtest.runs.prepare` follow (parameters coerced,
    map parameters checked, :class:`~backtest.engine.RunConfig` built).

    Raises
    ------
    ConfigError, PluginError
        As :func:`backtest.runs.prepare`.
    """
    from backtest.runs import prepare

    return prepare(settings, resolve=resolved_strategy)


_RESOLVED: dict[tuple[str, str], tuple[type, Any]] = {}
_RESOLVED_LOCK = threading.Lock()


def resolved_strategy(spec: str) -> type:
    """:func:`backtest.plugins.resolve_strategy`, remembered per process and working folder.

    Resolved again when the file that defines the class changed since (its size or
    modification time), so an edited strategy is picked up by the next sweep of a session.
    """
    from backtest.plugins import resolve_strategy

    key = (spec, os.getcwd())
    with _RESOLVED_LOCK:
        cached = _RESOLVED.get(key)
    if cached is not None and _source_stamp(cached[0]) == cached[1]:
        return cached[0]
    strategy_class = resolve_strategy(spec)
    with _RESOLVED_LOCK:
        _RESOLVED[key] = (strategy_class, _source_stamp(strategy_class))
    return strategy_class


def _source_stamp(strategy_class: type) -> Any:
    try:
        status = os.stat(inspect.getfile(strategy_class))
    except (TypeError, OSError):
        return None
    return (status.st_size, status.st_mtime_ns)


def run_backtest(settings: Mapping[str, Any], frame: pd.DataFrame) -> Any:
    """Run one backtest on ``frame`` with the settings :func:`prepare_settings` returned.

    The array path (:func:`backtest.arrays.run_arrays`) when the strategy has an array form
    and the run trades one symbol, the event engine otherwise (``--engine auto``, see
    :mod:`backtest.sweep.engines`).  The liquidation map is warmed up on the bars before
    ``frame`` (taken from the worker's cached history,
    :func:`backtest.sweep.worker.with_warmup`), as ``backtest run`` does.
    """
    return _run(settings, frame, AUTO)


def run_backtest_event(settings: Mapping[str, Any], frame: pd.DataFrame) -> Any:
    """:func:`run_backtest` on the event engine (``--engine event``)."""
    return _run(settings, frame, EVENT)


def run_backtest_array(settings: Mapping[str, Any], frame: pd.DataFrame) -> Any:
    """:func:`run_backtest` on the array path (``--engine array``)."""
    return _run(settings, frame, ARRAY)


def _run(settings: Mapping[str, Any], frame: Any, engine: str) -> Any:
    from backtest.sweep.engines import array_functions, has_array_form, is_portfolio
    from backtest.sweep.worker import FULL_RESULTS, lines_cache, with_warmup

    config, strategy_class = prepare_run(settings)
    data = with_warmup(config.to_dict(), frame)
    single = not isinstance(data, Mapping) and not is_portfolio(config.symbol)
    if engine != EVENT and single and has_array_form(strategy_class):
        functions = array_functions()
        assert functions is not None  # has_array_form is False without the array path
        # a best run's report draws the map's heatmap: built only then (worker.FULL_RESULTS)
        extra = {"heatmap": True} if FULL_RESULTS.get() else {}
        return functions[1](
            config, data=data, strategy_class=strategy_class, lines_cache=lines_cache(), **extra
        )
    if engine == ARRAY:
        from backtest.errors import ConfigError

        raise ConfigError("--engine array: this run cannot use the array path")
    from backtest.engine import run

    return run(config, data=data, strategy_class=strategy_class, progress=False)


def compute_metrics(results: Any) -> dict[str, Any]:
    """The report's metrics of one run."""
    from backtest.report import compute_metrics as report_metrics

    return dict(report_metrics(results))


def write_report(results: Any, folder: Path) -> None:
    """Save the results and render the run's report into ``folder``."""
    from backtest.report import write_report as render

    results.save(folder)
    render(results, folder)


#: The real engines and report (the engine chosen per run, ``--engine auto``).
DEFAULT_BACKEND = Backend(
    prepare=prepare_settings,
    run=run_backtest,
    metrics=compute_metrics,
    report=write_report,
)
#: Every run on the event engine (``--engine event``).
EVENT_BACKEND = Backend(
    prepare=prepare_settings, run=run_backtest_event, metrics=compute_metrics, report=write_report
)
#: Every run on the array path (``--engine array``).
ARRAY_BACKEND = Backend(
    prepare=prepare_settings, run=run_backtest_array, metrics=compute_metrics, report=write_report
)


def backend_for(engine: str) -> Backend:
    """The real backend for ``--engine auto|event|array``."""
    return {AUTO: DEFAULT_BACKEND, EVENT: EVENT_BACKEND, ARRAY: ARRAY_BACKEND}[engine]
