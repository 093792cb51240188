"""A sweep that searches: Optuna trials in fixed batches, run on Dask, recorded like a grid.

:class:`SearchDriver` runs a :class:`~backtest.sweep.driver.SweepSpec` whose ``search`` is set.
For each batch (see :mod:`backtest.sweep.search` for why batches make it deterministic) it asks
the trials, plans their runs like grid runs (validated on the client, keyed by their complete
settings), skips those the folder already holds, runs the rest in parallel and waits for the
whole batch before telling Optuna the results in trial order.  The table has one row per trial
(column ``trial``); two trials that sample the same settings share one run.

With a walk-forward, each window's training span gets its own search (seeds derived from the
seed, the window and the batch); the window's best feasible trial then runs on its test span,
and the test spans' equity is stitched as for a grid.  The windows are searched one after the
other (a window's batches run in parallel).
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

from backtest.errors import ConfigError
from backtest.sweep.driver import GRID, TRAIN, PlannedRun, SweepDriver, SweepOutcome
from backtest.sweep.grid import RUN, _copy_settings
from backtest.sweep.search import (
    Told,
    ask_batch,
    batch_seed,
    constraint_values,
    objective_value,
    values_of,
)
from backtest.sweep.store import RunRecord
from backtest.sweep.walkforward import Window, make_windows
from backtest.sweep.worker import RunTask


class SearchDriver(SweepDriver):
    """Runs a searching :class:`~backtest.sweep.driver.SweepSpec` (``spec.search`` set)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.spec.search is None:
            raise ConfigError("SearchDriver needs a SweepSpec with search set")
        self.search = self.spec.search
        self._show_progress = self.runner.progress
        self.runner.progress = False
        self._bar: Any = None
        self._skipped = 0

    def run(self) -> SweepOutcome:
        """Search (each training window with a walk-forward), record and rank every trial."""
        from tqdm import tqdm

        self.store.write_manifest(self.spec.manifest())
        windows = self._plan_windows() if self.spec.walk_forward is not None else []
        total = self.search.trials * max(1, len(windows)) + len(windows)
        self._bar = tqdm(
            total=total,
            disable=not self._show_progress,
            unit="run",
            desc="search",
            file=sys.stderr,
            dynamic_ncols=True,
        )
        try:
            if not windows:
                self.planned = self._search(None)
            for window in windows:
                runs = self._search(window)
                self._train[window.index] = runs
                self.planned.extend(runs)
                follow = self._start_test(window)
                test = self.tests.get(window.index)
                if follow is not None:
                    self._run_tasks([follow])
                elif test is not None and self.store.completed(test.key) is not None:
                    self._skipped += 1
                    self._bar.update(1)
        finally:
            self._bar.close()
        return self._outcome(self._skipped)

    # -- windows ----------------------------------------------------------------------------
    def _plan_windows(self) -> list[Window]:
        """The walk-forward windows over the markets the searched settings may trade."""
        assert self.spec.walk_forward is not None
        market_axes = [
            item for item in self.search.axes if item.kind == "choice" and item.axis.target == RUN
        ]
        probes: list[PlannedRun] = []
        for combination in itertools.product(*(item.axis.values for item in market_axes)):
            settings = _copy_settings(self.spec.base)
            for item, value in zip(market_axes, combination, strict=True):
                item.axis.apply(settings, value)
            probes.append(self._plan({}, settings))
        good = [run for run in probes if run.error is None]
        if not good:
            raise ConfigError(f"no run of the sweep can be configured: {probes[0].error}")
        start, end = self._market_range(good)
        self.windows = make_windows(start, end, self.spec.walk_forward)
        return self.windows

    # -- searching --------------------------------------------------------------------------
    def _search(self, window: Window | None) -> list[PlannedRun]:
        """All trials of one search (the whole sweep, or one training window)."""
        told: list[Told] = []
        runs: list[PlannedRun] = []
        first = 0
        for batch, count in enumerate(self.search.batch_counts()):
            path = (batch,) if window is None else (window.index, batch)
            asked = ask_batch(
                self.search,
                told,
                count,
                batch_seed(self.search.seed, *path),
                minimise=self.spec.ascending,
            )
            batch_runs = [
                self._plan_trial(first + offset, sampled, window)
                for offset, sampled in enumerate(asked)
            ]
            self._run_batch(batch_runs)
            told.extend(
                self._told(run, sampled) for run, sampled in zip(batch_runs, asked, strict=True)
            )
            runs.extend(batch_runs)
            first += count
        if not any(run.error is None for run in runs):
            raise ConfigError(f"no trial of the search can be configured: {runs[0].error}")
        return runs

    def _plan_trial(
        self, number: int, sampled: dict[str, Any], window: Window | None
    ) -> PlannedRun:
        values = values_of(self.search, sampled)
        settings = _copy_settings(self.spec.base)
        for item in self.search.axes:
            item.axis.apply(settings, values[item.name])
        phase = GRID
        if window is not None:
            settings["since"], settings["until"] = window.train_range
            phase = TRAIN
        run = self._plan(values, settings, phase, None if window is None else window.index)
        run.trial = number
        return run

    def _run_batch(self, runs: list[PlannedRun]) -> None:
        """Run a batch's trials in parallel; a trial repeating earlier settings shares the run."""
        tasks: list[RunTask] = []
        for run in runs:
            if run.error is not None or run.key in self._submitted:
                self._bar.update(1)
                continue
            self._submitted.add(run.key)
            if self.store.completed(run.key) is not None:
                self._skipped += 1
                self._bar.update(1)
                continue
            tasks.append(run.task())
        self._resolve_metric_from(
            self.store.records[run.key] for run in runs if run.key in self.store.records
        )
        if tasks:
            self._run_tasks(tasks)

    def _run_tasks(self, tasks: list[RunTask]) -> None:
        self.runner.run(tasks, self._on_search_record)

    def _on_search_record(self, record: RunRecord) -> list[RunTask]:
        self._bar.update(1)
        return self._on_record(record)

    def _told(self, run: PlannedRun, sampled: dict[str, Any]) -> Told:
        """What the next batches' study learns from one trial."""
        assert run.trial is not None
        record = self.store.records.get(run.key) if run.error is None else None
        if record is None or not record.complete:
            return Told(number=run.trial, sampled=sampled, value=None)
        return Told(
            number=run.trial,
            sampled=sampled,
            value=objective_value(record.metrics, self.metric),
            constraints=constraint_values(self.spec.constraints, record.metrics),
        )
