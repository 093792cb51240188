"""A whole sweep, from the grid to the ranked table: plan, skip what is done, run, collect.

:func:`run_sweep` is the library behind ``backtest sweep``.  It expands the grid over the base
settings, validates every run on the client (a combination that cannot even be configured is
recorded as failed without being sent), skips runs already recorded in the output folder, runs
the rest through :class:`~backtest.sweep.execute.TaskRunner`, and writes ``runs.jsonl`` as runs
finish.  With a walk-forward, the test run of a window is sent as soon as the last training run
of that window has finished.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.errors import BacktestError, ConfigError
from backtest.sweep.backends import DEFAULT_BACKEND, Backend
from backtest.sweep.constraints import Constraints
from backtest.sweep.engines import EngineChoice
from backtest.sweep.execute import TaskRunner
from backtest.sweep.grid import PERIOD, RUN, Axis, check_grid_size, expand, grid_size
from backtest.sweep.ranking import (
    FEASIBLE,
    VIOLATIONS,
    numeric_metric_names,
    rank_table,
    resolve_metric,
)
from backtest.sweep.search import SearchSpec
from backtest.sweep.store import COMPLETE, FAILED, RunRecord, SweepStore, run_key
from backtest.sweep.walkforward import (
    WalkForward,
    Window,
    best_record,
    make_windows,
    metric_value,
    stitch,
)
from backtest.sweep.worker import RunTask, market_key, market_span, one_line

GRID, TRAIN, TEST = "grid", "train", "test"
#: Dask priority of a walk-forward test run (ahead of the remaining training runs).
TEST_PRIORITY = 1_000_000


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep.

    Attributes
    ----------
    base : mapping
        Settings shared by every run (a run file merged with flags).
    axes : tuple of Axis
        The varied settings (see :mod:`backtest.sweep.grid`).
    rank_by : str
        Metric to rank by (a unique part of its name is enough).
    ascending : bool
        Rank smaller values first (e.g. a drawdown reported as a positive number).
    walk_forward : WalkForward, optional
        Train/test window lengths.
    allow_large_grid : bool
        Accept a grid of more than :data:`~backtest.sweep.limits.MAX_GRID_RUNS` combinations
        (refused otherwise, before it is built).
    constraints : Constraints, optional
        ``--min-trades`` / ``--max-drawdown``: runs breaking them are flagged, never ranked
        (:mod:`backtest.sweep.constraints`).
    search : SearchSpec, optional
        Random or TPE search instead of the grid (``axes`` is then empty; see
        :mod:`backtest.sweep.search`); ``rank_by`` is the objective and ``ascending`` its
        direction (minimised when true).
    engine : EngineChoice, optional
        The engine the runs use, recorded in ``sweep.json`` (:mod:`backtest.sweep.engines`).
    """

    base: Mapping[str, Any]
    axes: tuple[Axis, ...]
    rank_by: str = "Sharpe"
    ascending: bool = False
    walk_forward: WalkForward | None = None
    allow_large_grid: bool = False
    constraints: Constraints | None = None
    search: SearchSpec | None = None
    engine: EngineChoice | None = None

    def __post_init__(self) -> None:
        if self.search is not None and self.axes:
            raise ConfigError("a search takes its settings from SearchSpec.axes: leave axes empty")
        check_grid_size(self.axes, allow_large=self.allow_large_grid)
        if self.walk_forward is None:
            return
        varied = [item.axis for item in self.search.axes] if self.search else self.axes
        for axis in varied:
            if axis.target == PERIOD or (axis.target == RUN and axis.field in ("since", "until")):
                raise ConfigError(
                    f"sweep axis {axis.name!r} sets the dates, which --walk-forward chooses; "
                    "drop the axis or the walk-forward"
                )

    @property
    def axis_names(self) -> list[str]:
        """Axis (or searched setting) names in order (the first columns of the table)."""
        if self.search is not None:
            return self.search.axis_names
        return [axis.name for axis in self.axes]

    @property
    def metric_option(self) -> str:
        """The option that names the ranking metric (for error messages)."""
        return "--objective" if self.search is not None else "--rank-by"

    def manifest(self) -> dict[str, Any]:
        """A JSON-friendly description, written to ``sweep.json``."""
        runs = self.search.trials if self.search is not None else grid_size(self.axes)
        manifest: dict[str, Any] = {
            "base": dict(self.base),
            "axes": {axis.name: list(axis.values) for axis in self.axes},
            "runs_per_window" if self.walk_forward else "runs": runs,
            "rank_by": self.rank_by,
            "ascending": self.ascending,
            "walk_forward": self.walk_forward.text if self.walk_forward else None,
        }
        if self.search is not None:
            manifest["search"] = {
                **self.search.manifest(),
                "objective": self.rank_by,
                "direction": "minimise" if self.ascending else "maximise",
            }
        if self.constraints is not None and self.constraints.active:
            manifest["constraints"] = self.constraints.manifest()
        if self.engine is not None:
            manifest["engine"] = self.engine.manifest()
        return manifest

    def feasible(self, record: RunRecord) -> bool:
        """Whether a complete run keeps the constraints (always, without constraints)."""
        return self.constraints is None or self.constraints.feasible(record.metrics)


@dataclass
class PlannedRun:
    """One row of the sweep: where it sits in the grid and the settings it runs with."""

    key: str
    values: dict[str, Any]
    raw: dict[str, Any]
    settings: dict[str, Any]
    phase: str = GRID
    window: int | None = None
    error: str | None = None
    trial: int | None = None

    def task(self, *, keep_equity: bool = False, priority: int = 0) -> RunTask:
        """The task a worker runs."""
        return RunTask(self.key, self.settings, keep_equity=keep_equity, priority=priority)


@dataclass
class SweepOutcome:
    """The result of :func:`run_sweep`.

    Attributes
    ----------
    table : DataFrame
        Every run, best first (see :func:`backtest.sweep.ranking.rank_table`).
    metric : str or None
        The metric ranked by (None when no run completed).
    windows : DataFrame or None
        Walk-forward: one row per window with the chosen parameters and their metric.
    oos_equity : Series or None
        Walk-forward: the stitched out-of-sample equity.
    executed, skipped, failed : int
        Runs done now, runs found already recorded, and failed rows in the table.
    """

    table: pd.DataFrame
    metric: str | None
    spec: SweepSpec
    folder: Path
    windows: pd.DataFrame | None = None
    oos_equity: pd.Series | None = None
    executed: int = 0
    skipped: int = 0
    failed: int = 0
    planned: list[PlannedRun] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows of the table."""
        return len(self.table)

    @property
    def oos_return_pct(self) -> float:
        """Total return of the stitched out-of-sample equity, in % (NaN without one)."""
        if self.oos_equity is None or len(self.oos_equity) == 0:
            return math.nan
        return (float(self.oos_equity.iloc[-1]) / float(self.oos_equity.iloc[0]) - 1.0) * 100.0


class SweepDriver:
    """Runs one :class:`SweepSpec` on a Dask client into a :class:`SweepStore`."""

    def __init__(
        self,
        spec: SweepSpec,
        client: Any,
        store: SweepStore,
        *,
        backend: Backend = DEFAULT_BACKEND,
        progress: bool = False,
    ) -> None:
        if spec.search is not None and type(self) is SweepDriver:
            raise ConfigError(
                "a SweepSpec with search runs on SearchDriver: use run_sweep() or make_driver()"
            )
        self.spec = spec
        self.client = client
        self.store = store
        self.backend = backend
        self.runner = TaskRunner(client, backend, progress=progress)
        self.metric: str | None = None
        self.planned: list[PlannedRun] = []
        self.windows: list[Window] = []
        self.tests: dict[int, PlannedRun | None] = {}
        self._waiting: dict[int, set[str]] = {}
        self._train: dict[int, list[PlannedRun]] = {}
        self._executed = 0
        self._submitted: set[str] = set()

    # -- planning ---------------------------------------------------------------------------
    def _plan(
        self,
        values: Mapping[str, Any],
        raw: Mapping[str, Any],
        phase: str = GRID,
        window: int | None = None,
    ) -> PlannedRun:
        try:
            settings = dict(self.backend.prepare(raw))
        except (BacktestError, ValueError, TypeError) as error:
            return PlannedRun(
                key=run_key(raw),
                values=dict(values),
                raw=dict(raw),
                settings=dict(raw),
                phase=phase,
                window=window,
                error=one_line(error),
            )
        return PlannedRun(
            key=run_key(settings),
            values=dict(values),
            raw=dict(raw),
            settings=settings,
            phase=phase,
            window=window,
        )

    def plan_grid(self) -> list[PlannedRun]:
        """Every grid combination over the base settings, prepared."""
        points = expand(self.spec.base, self.spec.axes)
        planned = [self._plan(point.values, point.settings) for point in points]
        good = [run for run in planned if run.error is None]
        if planned and not good:
            raise ConfigError(f"no run of the sweep can be configured: {planned[0].error}")
        return planned

    def _market_range(self, planned: Sequence[PlannedRun]) -> tuple[int, int]:
        """Bars common to every market of the grid: ``[first open, last open + bar)``."""
        markets: dict[Any, dict[str, Any]] = {}
        for run in planned:
            if run.error is None:
                markets.setdefault(market_key(run.settings), run.settings)
        futures = [
            self.client.submit(market_span, settings, pure=False) for settings in markets.values()
        ]
        spans = [future.result() for future in futures]
        start = max(first for first, _, _ in spans)
        end = min(last + step for _, last, step in spans)
        return start, end

    def plan_walk_forward(self, grid: Sequence[PlannedRun]) -> list[PlannedRun]:
        """Training runs of every window (each grid point with the window's dates)."""
        assert self.spec.walk_forward is not None
        start, end = self._market_range(grid)
        self.windows = make_windows(start, end, self.spec.walk_forward)
        points = expand(self.spec.base, self.spec.axes)
        planned: list[PlannedRun] = []
        for window in self.windows:
            since, until = window.train_range
            runs = [
                self._plan(
                    point.values,
                    {**point.settings, "since": since, "until": until},
                    TRAIN,
                    window.index,
                )
                for point in points
            ]
            self._train[window.index] = runs
            planned.extend(runs)
        return planned

    # -- running ----------------------------------------------------------------------------
    def run(self) -> SweepOutcome:
        """Plan, skip recorded runs, run the rest and build the outcome."""
        grid = self.plan_grid()
        if self.spec.walk_forward is None:
            self.planned = grid
        else:
            self.planned = self.plan_walk_forward(grid)
        self.store.write_manifest(self.spec.manifest())
        self._resolve_metric_from(
            self.store.records[run.key] for run in self.planned if run.key in self.store.records
        )
        tasks: list[RunTask] = []
        skipped = 0
        for run in self.planned:
            if run.error is not None or run.key in self._submitted:
                continue
            self._submitted.add(run.key)
            if self.store.completed(run.key) is not None:
                skipped += 1
                continue
            priority = -run.window if run.window is not None else 0
            tasks.append(run.task(priority=priority))
        for window in self.windows:
            self._waiting[window.index] = {
                run.key
                for run in self._train[window.index]
                if run.error is None and self.store.completed(run.key) is None
            }
        for window in self.windows:
            if self._waiting[window.index]:
                continue
            follow = self._start_test(window)
            test = self.tests.get(window.index)
            if follow is not None:
                tasks.append(follow)
            elif test is not None and self.store.completed(test.key) is not None:
                skipped += 1
        self.runner.run(tasks, self._on_record, already_done=skipped)
        return self._outcome(skipped)

    def _resolve_metric_from(self, records: Iterable[RunRecord]) -> None:
        if self.metric is not None:
            return
        for record in records:
            if record.complete and record.metrics:
                self.metric = resolve_metric(
                    self.spec.rank_by,
                    numeric_metric_names(record.metrics),
                    option=self.spec.metric_option,
                )
                return

    def _on_record(self, record: RunRecord) -> list[RunTask]:
        self.store.append(record)
        self._executed += 1
        self._resolve_metric_from([record])
        follow_ups: list[RunTask] = []
        for window in self.windows:
            waiting = self._waiting.get(window.index)
            if waiting and record.key in waiting:
                waiting.discard(record.key)
                if not waiting:
                    task = self._start_test(window)
                    if task is not None:
                        follow_ups.append(task)
        return follow_ups

    def _start_test(self, window: Window) -> RunTask | None:
        """Choose the window's best training run and plan its test run (None if not needed)."""
        candidates = {
            run.key: run for run in self._train.get(window.index, []) if run.error is None
        }
        records = [self.store.records[key] for key in candidates if key in self.store.records]
        best = (
            best_record(
                records, self.metric, ascending=self.spec.ascending, feasible=self.spec.feasible
            )
            if self.metric
            else None
        )
        if best is None:
            self.tests[window.index] = None
            return None
        chosen = candidates[best.key]
        since, until = window.test_range
        test = self._plan(
            chosen.values, {**chosen.raw, "since": since, "until": until}, TEST, window.index
        )
        self.tests[window.index] = test
        self.planned.append(test)
        if test.error is not None or test.key in self._submitted:
            return None
        self._submitted.add(test.key)
        if self.store.completed(test.key) is not None:
            return None
        return test.task(keep_equity=True, priority=TEST_PRIORITY)

    # -- outcome ----------------------------------------------------------------------------
    def _row(self, run: PlannedRun) -> dict[str, Any]:
        record = self.store.records.get(run.key)
        row: dict[str, Any] = dict(run.values)
        if run.trial is not None:
            row["trial"] = run.trial
        if self.spec.walk_forward is not None:
            row.update(
                phase=run.phase,
                window=run.window,
                since=run.settings.get("since"),
                until=run.settings.get("until"),
            )
        if run.error is not None:
            row.update(status=FAILED, error=run.error, key=run.key)
            return row
        if record is None:
            row.update(status="not run", key=run.key)
            return row
        row["status"] = record.status
        constraints = self.spec.constraints
        if constraints is not None and constraints.active and record.complete:
            row[FEASIBLE] = constraints.feasible(record.metrics)
            row[VIOLATIONS] = constraints.violations(record.metrics) or None
        for name, value in record.metrics.items():
            row[name if name not in run.values else f"{name} (metric)"] = value
        row.update(
            error=record.error,
            engine=record.engine or None,
            seconds=round(record.seconds, 3),
            worker=record.worker,
            key=run.key,
        )
        return row

    def _outcome(self, skipped: int) -> SweepOutcome:
        table = rank_table(
            [self._row(run) for run in self.planned],
            self.metric,
            ascending=self.spec.ascending,
            axis_names=self.spec.axis_names,
        )
        outcome = SweepOutcome(
            table=table,
            metric=self.metric,
            spec=self.spec,
            folder=self.store.folder,
            executed=self._executed,
            skipped=skipped,
            failed=int((table["status"] != COMPLETE).sum()) if len(table) else 0,
            planned=self.planned,
        )
        if self.spec.walk_forward is not None:
            outcome.windows, outcome.oos_equity = self._walk_forward_summary()
        return outcome

    def _walk_forward_summary(self) -> tuple[pd.DataFrame, pd.Series]:
        rows: list[dict[str, Any]] = []
        curves: list[pd.Series] = []
        cash: list[float] = []
        metric = self.metric or self.spec.rank_by
        for window in self.windows:
            test = self.tests.get(window.index)
            train_records = [
                self.store.records[run.key]
                for run in self._train[window.index]
                if run.error is None and run.key in self.store.records
            ]
            best = best_record(
                train_records, metric, ascending=self.spec.ascending, feasible=self.spec.feasible
            )
            row: dict[str, Any] = {
                "window": window.index,
                "train_since": window.train_range[0],
                "train_until": window.train_range[1],
                "test_since": window.test_range[0],
                "test_until": window.test_range[1],
            }
            row.update(test.values if test is not None else {})
            row[f"train {metric}"] = metric_value(best, metric) if best else math.nan
            record = self.store.records.get(test.key) if test is not None else None
            row[f"test {metric}"] = metric_value(record, metric) if record else math.nan
            if test is None:
                row["test_status"] = "no complete training run"
            elif test.error is not None:
                row["test_status"] = f"{FAILED}: {test.error}"
            elif record is None:
                row["test_status"] = "not run"
            else:
                row["test_status"] = (
                    record.status if record.complete else f"{FAILED}: {record.error}"
                )
                if record.complete:
                    curves.append(record.equity_series())
                    cash.append(float(test.settings.get("cash") or 0.0) or math.nan)
            row["test_key"] = test.key if test is not None else None
            rows.append(row)
        usable = [
            (curve, money)
            for curve, money in zip(curves, cash, strict=True)
            if len(curve) and not math.isnan(money)
        ]
        equity = stitch([curve for curve, _ in usable], [money for _, money in usable])
        return pd.DataFrame(rows), equity


def run_sweep(
    spec: SweepSpec,
    client: Any,
    store: SweepStore,
    *,
    backend: Backend = DEFAULT_BACKEND,
    progress: bool = False,
) -> SweepOutcome:
    """Run ``spec`` on ``client``, recording into ``store`` (opened), and rank the runs.

    Returns
    -------
    SweepOutcome
        The ranked table and, for a walk-forward, the windows and out-of-sample equity.
    """
    return make_driver(spec, client, store, backend=backend, progress=progress).run()


def make_driver(
    spec: SweepSpec,
    client: Any,
    store: SweepStore,
    *,
    backend: Backend = DEFAULT_BACKEND,
    progress: bool = False,
) -> SweepDriver:
    """The driver for ``spec``: a grid's, or a search's when ``spec.search`` is set."""
    if spec.search is not None:
        from backtest.sweep.search_driver import SearchDriver

        return SearchDriver(spec, client, store, backend=backend, progress=progress)
    return SweepDriver(spec, client, store, backend=backend, progress=progress)
