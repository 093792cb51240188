"""Timeframes and timestamps for the market layer: a re-export of :mod:`backtest.timeframes`.

The parsing lives in :mod:`backtest.timeframes` so that the liquidation model can use it without
importing the market layer; this module keeps the market layer's import path working.
"""

from __future__ import annotations

from backtest.timeframes import (
    UNIT_MS,
    format_date_argument,
    format_ms,
    now_ms,
    parse_time,
    timeframe_to_ms,
)

__all__ = [
    "UNIT_MS",
    "format_date_argument",
    "format_ms",
    "now_ms",
    "parse_time",
    "timeframe_to_ms",
]
