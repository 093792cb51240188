"""Performance reports of a run: metrics, the self-contained HTML page and the console summary.

The report reads only :class:`backtest.results.Results`, so a saved run can be re-rendered
without re-running it (``python -m backtest report <run-folder>``).  The names are loaded
lazily: computing metrics (what every sweep worker does) does not import plotly or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "compute_metrics": "backtest.report.metrics",
    "format_summary": "backtest.report.summary",
    "write_report": "backtest.report.html",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'backtest.report' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
