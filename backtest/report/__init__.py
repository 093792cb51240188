"""Performance reports of a run: metrics, the self-contained HTML page and the console summary.

The report reads only :class:`backtest.results.Results`, so a saved run can be re-rendered
without re-running it (``python -m backtest report <run-folder>``).  The names are loaded
lazily: computing metrics (what every sweep worker does) does not import plotly or matplotlib.
"""

from __future__ import annotations

from backtest._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "compute_metrics": "backtest.report.metrics",
    "format_summary": "backtest.report.summary",
    "write_report": "backtest.report.html",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
