"""Constraints on a sweep's runs: ``--min-trades N`` and ``--max-drawdown PCT``.

A run that breaks a constraint stays in the table, flagged in the ``feasible`` and
``violations`` columns, and is never ranked above a run that keeps them (it gets no rank; see
:func:`backtest.sweep.ranking.rank_table`).  A walk-forward never chooses it for a test span
while a feasible training run exists.  A search reports each constraint to Optuna as a
constraint value (``<= 0`` feasible), which its TPE sampler uses to prefer feasible regions
(:mod:`backtest.sweep.search`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backtest.errors import ConfigError

#: The metrics the constraints read.
TRADES_METRIC = "# Trades"
DRAWDOWN_METRIC = "Max. Drawdown [%]"


@dataclass(frozen=True)
class Constraints:
    """Limits a run must keep to be ranked.

    Attributes
    ----------
    min_trades : int, optional
        Fewest closed trades (metric ``# Trades``).
    max_drawdown : float, optional
        Deepest drawdown allowed, in percent of the peak (``20`` accepts a maximum drawdown of
        up to 20 %; the metric ``Max. Drawdown [%]`` is negative, its magnitude is compared).
    """

    min_trades: int | None = None
    max_drawdown: float | None = None

    def __post_init__(self) -> None:
        if self.min_trades is not None and (
            isinstance(self.min_trades, bool) or int(self.min_trades) < 0
        ):
            raise ConfigError(f"--min-trades {self.min_trades}: give 0 or more trades")
        if self.max_drawdown is not None and not (
            math.isfinite(float(self.max_drawdown)) and 0.0 < float(self.max_drawdown) <= 100.0
        ):
            raise ConfigError(
                f"--max-drawdown {self.max_drawdown}: give a percentage above 0 and at most 100, "
                "e.g. --max-drawdown 25"
            )

    @property
    def active(self) -> bool:
        """Whether any constraint is set."""
        return self.min_trades is not None or self.max_drawdown is not None

    def values(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Optuna-style constraint values of a run: ``> 0`` by how much a limit is broken.

        A missing or non-numeric metric counts as broken (value 1).
        """
        found: dict[str, float] = {}
        if self.min_trades is not None:
            trades = _number(metrics.get(TRADES_METRIC))
            found["min_trades"] = 1.0 if math.isnan(trades) else float(self.min_trades) - trades
        if self.max_drawdown is not None:
            drawdown = _number(metrics.get(DRAWDOWN_METRIC))
            found["max_drawdown"] = (
                1.0 if math.isnan(drawdown) else abs(drawdown) - float(self.max_drawdown)
            )
        return found

    def violations(self, metrics: Mapping[str, Any]) -> str:
        """The broken limits of a run as text ("" when it keeps them all)."""
        broken: list[str] = []
        values = self.values(metrics)
        if values.get("min_trades", 0.0) > 0:
            trades = _number(metrics.get(TRADES_METRIC))
            shown = "missing" if math.isnan(trades) else f"{trades:g}"
            broken.append(f"trades {shown} < {self.min_trades}")
        if values.get("max_drawdown", 0.0) > 0:
            drawdown = _number(metrics.get(DRAWDOWN_METRIC))
            shown = "missing" if math.isnan(drawdown) else f"{abs(drawdown):.2f}"
            broken.append(f"drawdown {shown} % > {float(self.max_drawdown or 0):g} %")
        return "; ".join(broken)

    def feasible(self, metrics: Mapping[str, Any]) -> bool:
        """Whether a run's metrics keep every limit."""
        return all(value <= 0.0 for value in self.values(metrics).values())

    def manifest(self) -> dict[str, Any]:
        """A JSON-friendly description for ``sweep.json``."""
        return {"min_trades": self.min_trades, "max_drawdown": self.max_drawdown}


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)
