"""Performance reports of a run: metrics, the self-contained HTML page and the console summary.

The report reads only :class:`backtest.results.Results`, so a saved run can be re-rendered
without re-running it (``python -m backtest report <run-folder>``).
"""

from __future__ import annotations

from backtest.report.html import write_report
from backtest.report.metrics import compute_metrics
from backtest.report.summary import format_summary

__all__ = ["compute_metrics", "format_summary", "write_report"]
