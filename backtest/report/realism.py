"""Warnings about what a run could not model: the gaps a trader must know before trusting it.

:func:`run_warnings` reads a :class:`~backtest.results.Results` (and its metrics) and returns one
sentence per gap: no funding series for the run's bars or for one symbol of a portfolio
(funding not charged), ``until`` past the stored data (the range actually used), annualised
figures left out of a short run, orders the broker refused, and array runs whose decisions
could not see a refusal or a liquidation.  The console prints them after a run and the report
shows them at the top.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from backtest.report.metrics import EXTRAPOLATED_METRICS, MIN_ANNUALISED_DAYS


def _rows(table: Any) -> int:
    return 0 if table is None else len(table)


def _stamp(moment: Any) -> str:
    return pd.Timestamp(moment).strftime("%Y-%m-%d %H:%M UTC")


def run_warnings(results: Any, metrics: Mapping[str, Any] | None = None) -> list[str]:
    """One sentence per realism gap of ``results`` (empty when there is none).

    Parameters
    ----------
    results : backtest.results.Results
        The run.
    metrics : mapping, optional
        Its metrics (:func:`backtest.report.metrics.compute_metrics`); the short-run note is
        given only when they left the annualised figures out.
    """
    config: Mapping[str, Any] = results.config or {}
    meta: Mapping[str, Any] = results.meta or {}
    equity: pd.DataFrame = results.equity
    warnings: list[str] = []
    if config.get("funding", True) and meta.get("funding_settlements") == 0:
        warnings.append(
            "no funding series covers this run's bars: funding was not charged (Funding PnL "
            "n/a); download the funding history or pass --no-funding to say so"
        )
    elif config.get("funding", True):
        by_symbol = meta.get("funding_settlements_by_symbol") or {}
        unfunded = [symbol for symbol, count in by_symbol.items() if count == 0]
        if unfunded:
            warnings.append(
                f"no funding series covers {', '.join(unfunded)} in this run: funding was not "
                "charged on those positions (the account's Funding PnL leaves them out); "
                "download their funding history"
            )
    if meta.get("engine") == "array" and not meta.get("decide_independent_of_fills", True):
        refused = _rows(getattr(results, "rejected", None))
        liquidated = _rows(getattr(results, "liquidations", None))
        if refused or liquidated:
            warnings.append(
                f"array engine: {refused} refused order(s) and {liquidated} liquidation(s); "
                "the strategy's decide chose its targets before the run and carried on as if "
                "its positions stood, where next() would have seen them: compare with "
                "--engine event"
            )
    index = equity.index if isinstance(equity.index, pd.DatetimeIndex) else None
    until = config.get("until")
    if until and index is not None and len(index) > 1:
        requested = pd.Timestamp(until)
        requested = requested.tz_localize("UTC") if requested.tzinfo is None else requested
        step = index[-1] - index[-2]
        if index[-1] + step < requested:
            warnings.append(
                f"--until {until} is past the stored data: the run used "
                f"{_stamp(index[0])} → {_stamp(index[-1])} (last bar)"
            )
    if metrics is not None and index is not None and len(index) > 1:
        days = (index[-1] - index[0]).total_seconds() / 86400.0
        left_out = [
            name
            for name in EXTRAPOLATED_METRICS
            if name in metrics and metrics[name] != metrics[name]
        ]
        if days < MIN_ANNUALISED_DAYS and left_out:
            warnings.append(
                f"the run spans {days:.1f} days, under the {MIN_ANNUALISED_DAYS:g}-day minimum "
                f"for annualised figures: {', '.join(left_out)} shown as n/a"
            )
    return warnings
