"""Writing a finished sweep's folder: the ranked table, walk-forward files, reports, the page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backtest.sweep.driver import SweepOutcome
from backtest.sweep.execute import TaskRunner
from backtest.sweep.page import write_page
from backtest.sweep.reports import ReportEntry, write_top_reports
from backtest.sweep.store import SweepStore, write_text_atomic

WALK_FORWARD_STEM = "walkforward"
OOS_EQUITY_FILE = "oos_equity.csv"


@dataclass
class SweepFiles:
    """Where a sweep's outputs were written."""

    table: Path
    page: Path
    walk_forward: Path | None = None
    oos_equity: Path | None = None
    reports: list[ReportEntry] = field(default_factory=list)


def write_outputs(
    outcome: SweepOutcome,
    store: SweepStore,
    runner: TaskRunner,
    *,
    reports_top: int = 0,
    heatmap: Sequence[str] | None = None,
) -> SweepFiles:
    """Write ``results.csv/.parquet``, the walk-forward files, the K best reports and the page.

    ``runner`` re-runs the best runs on the same cluster for their reports.
    """
    table_path, _ = store.write_table(outcome.table)
    files = SweepFiles(table=table_path, page=store.folder / "sweep.html")
    if outcome.windows is not None:
        files.walk_forward, _ = store.write_table(outcome.windows, WALK_FORWARD_STEM)
    if outcome.oos_equity is not None:
        files.oos_equity = store.folder / OOS_EQUITY_FILE
        frame = outcome.oos_equity.rename_axis("time").to_frame("equity")
        write_text_atomic(files.oos_equity, frame.to_csv())
    if reports_top > 0:
        files.reports = write_top_reports(outcome, runner, reports_top)
    files.page = write_page(outcome, heatmap=heatmap, reports=files.reports)
    return files
