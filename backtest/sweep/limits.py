"""Limits of a sweep, free of heavy imports so that `backtest sweep --help` can state them."""

from __future__ import annotations

#: Largest grid (number of combinations) a sweep runs without ``--allow-large-grid``.
MAX_GRID_RUNS = 10_000
