"""Formatting of metric values, and the console summary printed after a run."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

#: Shown for a metric that is undefined (NaN) or missing.
MISSING = "n/a"

_UTC_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:00(\.0+)?)?(\+00:00|Z)$")


def format_value(key: str, value: Any) -> str:
    """Return a metric value as text, with precision chosen from the unit in its key.

    Counts print as integers with thousands separators, percentages, ratios, leverage and
    currency amounts with two decimals, hours and days with one; NaN prints as ``n/a``; a UTC
    time in ISO form prints as ``2025-10-01 12:05 UTC``.
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if key.endswith("[h]") or key.endswith("[d]"):
            return f"{value:,.1f}"
        return f"{value:,.2f}"
    text = str(value)
    stamp = _UTC_STAMP.match(text)
    if stamp:
        return f"{stamp.group(1)} {stamp.group(2)} UTC"
    return text


def _find(metrics: Mapping[str, Any], prefix: str) -> tuple[str, Any] | None:
    for key, value in metrics.items():
        if key == prefix or key.startswith(prefix + " ["):
            return key, value
    return None


#: (label, metric key or key prefix, unit suffix source) of the console summary, in order.
SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("Return", "Return [%]"),
    ("Buy & hold", "Buy & Hold Return [%]"),
    ("CAGR", "CAGR [%]"),
    ("Max. drawdown", "Max. Drawdown [%]"),
    ("Sharpe", "Sharpe"),
    ("Sortino", "Sortino"),
    ("Trades", "# Trades"),
    ("Open at end", "Open Trades"),
    ("Rejected orders", "Rejected Orders"),
    ("Win rate", "Win Rate [%]"),
    ("Own liquidations", "Liquidations"),
    ("Liquidation loss", "Liquidation Loss"),
    ("Near-misses", "Near Misses"),
    ("Trading PnL", "Trading PnL"),
    ("Funding PnL", "Funding PnL"),
    ("Fees", "Fees"),
    ("Leverage setting", "Leverage Setting [x]"),
    ("Max. exposure", "Max. Exposure [x]"),
)


#: Summary rows printed with an explicit sign.
SIGNED = frozenset({"Return [%]", "Buy & Hold Return [%]", "CAGR [%]", "Max. Drawdown [%]"})


def format_summary(metrics: Mapping[str, Any]) -> str:
    """Return a short console table of the headline metrics.

    Parameters
    ----------
    metrics : mapping
        As returned by :func:`backtest.report.metrics.compute_metrics` (or read back from
        ``metrics.json``, where NaN is ``null``).

    Returns
    -------
    str
        A title line (strategy, symbol, timeframe, period) and one aligned line per metric:
        return, buy-and-hold, CAGR, max drawdown, Sharpe, Sortino, trades, rejected orders,
        win rate, own liquidations and their loss, near-misses, trading PnL, funding PnL, fees,
        the leverage setting and the maximum exposure (notional / equity).
        Metrics missing from ``metrics`` are left out.
    """
    title = " ".join(
        str(metrics[key]) for key in ("Strategy", "Symbol", "Timeframe") if metrics.get(key)
    )
    start, end = str(metrics.get("Start") or ""), str(metrics.get("End") or "")
    period = f"{start[:16].replace('T', ' ')} → {end[:16].replace('T', ' ')}" if start else ""
    rows: list[tuple[str, str, str]] = []
    for label, prefix in SUMMARY_ROWS:
        found = _find(metrics, prefix)
        if found is None:
            continue
        key, value = found
        unit = key[key.rfind("[") + 1 : -1] if key.endswith("]") else ""
        text = format_value(key, value)
        if text != MISSING and prefix in SIGNED and isinstance(value, float):
            text = f"{value:+,.2f}"
        rows.append((label, text, unit if text != MISSING else ""))
    label_width = max((len(label) for label, _, _ in rows), default=0)
    value_width = max((len(text) for _, text, _ in rows), default=0)
    lines = [line for line in (title, period) if line]
    if lines:
        lines.append("-" * max(len(line) for line in lines))
    for label, text, unit in rows:
        lines.append(f"{label:<{label_width}}  {text:>{value_width}} {unit}".rstrip())
    return "\n".join(lines)
