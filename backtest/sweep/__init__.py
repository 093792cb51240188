"""Parameter sweeps and walk-forward analysis on local processes or a Dask cluster.

The pieces, each in its own module:

- :mod:`~backtest.sweep.grid` — axes from ``-g name=v1,v2`` and ``[sweep]``, their product;
- :mod:`~backtest.sweep.search` and :mod:`~backtest.sweep.search_driver` — Optuna random/TPE
  search in seeded batches; :mod:`~backtest.sweep.constraints` — ``--min-trades`` and
  ``--max-drawdown``;
- :mod:`~backtest.sweep.engines` — the array path or the event engine (``--engine``);
- :mod:`~backtest.sweep.walkforward` — rolling train/test windows, the stitched equity;
- :mod:`~backtest.sweep.execute` — the Dask client and the futures loop;
- :mod:`~backtest.sweep.worker` — what runs on a worker (per-process market cache);
- :mod:`~backtest.sweep.store` — the output folder, run records and resume;
- :mod:`~backtest.sweep.driver` — a whole sweep from spec to ranked table;
- :mod:`~backtest.sweep.outputs`, :mod:`~backtest.sweep.page`, :mod:`~backtest.sweep.reports`
  — the table files, the sweep page and the best runs' reports.

Example
-------
>>> from backtest.sweep import SweepSpec, SweepStore, open_client, run_sweep
>>> from backtest.sweep.grid import build_axes
>>> from backtest.plugins import resolve_strategy
>>> axes = build_axes({"band": ["0.02", "0.03"]}, resolve_strategy("ClusterFade"))
>>> spec = SweepSpec(base={"strategy": "ClusterFade"}, axes=tuple(axes))
>>> with SweepStore("sweeps/demo") as store, open_client(workers=2) as client:
...     outcome = run_sweep(spec, client, store)                    # doctest: +SKIP
"""

from __future__ import annotations

from backtest._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Axis": "backtest.sweep.grid",
    "Backend": "backtest.sweep.backends",
    "Constraints": "backtest.sweep.constraints",
    "SearchSpec": "backtest.sweep.search",
    "build_search_axes": "backtest.sweep.search",
    "choose_engine": "backtest.sweep.engines",
    "DEFAULT_BACKEND": "backtest.sweep.backends",
    "RunRecord": "backtest.sweep.store",
    "SweepOutcome": "backtest.sweep.driver",
    "SweepSpec": "backtest.sweep.driver",
    "SweepStore": "backtest.sweep.store",
    "open_client": "backtest.sweep.execute",
    "run_sweep": "backtest.sweep.driver",
    "write_outputs": "backtest.sweep.outputs",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
