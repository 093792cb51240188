"""Full reports of a sweep's best runs (``--reports-top K``).

The chosen runs are run again on the cluster (a sweep keeps only metrics, not every run's
tables) and their complete results come back to this process, which writes each report folder
under ``<out>/reports/<position>-<key>/``.  Like ``backtest run``, a folder is assembled under a
temporary name and renamed into place when complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backtest.folders import staged_folder
from backtest.sweep.driver import TEST, SweepOutcome
from backtest.sweep.execute import TaskRunner
from backtest.sweep.worker import RunTask, full_results, one_line

REPORTS_FOLDER = "reports"


@dataclass(frozen=True)
class ReportEntry:
    """One written (or failed) report."""

    position: int
    key: str
    folder: Path | None
    error: str | None = None


def best_keys(outcome: SweepOutcome, count: int) -> list[str]:
    """Keys of the ``count`` best ranked runs (the test runs of a walk-forward)."""
    table = outcome.table
    if count <= 0 or table.empty or "rank" not in table:
        return []
    ranked = table[table["rank"].notna()]
    if "phase" in ranked:
        ranked = ranked[ranked["phase"] == TEST]
    return list(dict.fromkeys(ranked["key"].tolist()))[:count]


def write_top_reports(outcome: SweepOutcome, runner: TaskRunner, count: int) -> list[ReportEntry]:
    """Run the ``count`` best runs again and write their report folders."""
    keys = best_keys(outcome, count)
    if not keys:
        return []
    settings = {run.key: run.settings for run in outcome.planned}
    tasks = [RunTask(key, settings[key]) for key in keys]
    outcomes = runner.gather_results(tasks, full_results)
    root = outcome.folder / REPORTS_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    entries: list[ReportEntry] = []
    for position, (key, results) in enumerate(zip(keys, outcomes, strict=True), start=1):
        if isinstance(results, BaseException):
            entries.append(ReportEntry(position, key, None, one_line(results)))
            continue
        folder = root / f"{position:02d}-{key}"
        try:
            _write_folder(runner, results, folder)
        except Exception as error:  # one report failing does not lose the others
            entries.append(ReportEntry(position, key, None, one_line(error)))
            continue
        entries.append(ReportEntry(position, key, folder))
    return entries


def _write_folder(runner: TaskRunner, results: object, folder: Path) -> None:
    with staged_folder(folder) as staging:
        runner.backend.report(results, staging)
