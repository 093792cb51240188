"""The scorecard: every figure for the map and each baseline, side by side.

The figures are those of :mod:`backtest.validation.metrics`, for long, short and total.

Rows of :attr:`Scorecard.table` are ``(figure, side)`` pairs, columns the estimators (``map``
first, then the baselines).  The long-share correlation has the single side ``share``; the
explained variance added over the naive proxy is, by definition, not shown for ``naive``
itself (NaN, printed as ``-``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backtest.validation import metrics

#: Figures per side, in the order of the table, with their printed labels.
FIGURES: dict[str, str] = {
    "spearman": "Spearman rank correlation",
    "long_share_correlation": "long-share correlation, busiest quarter",
    "explained_variance_added": "explained variance of log(truth) added over naive",
    "top_decile_hit_rate": "top-decile hit rate",
    "scale": "scale (estimate total / truth total)",
}
SIDES: tuple[str, ...] = ("long", "short", "total")
#: The estimator the explained variance is measured over.
NAIVE = "naive"


@dataclass(frozen=True, eq=False)
class Scorecard:
    """Figures of several estimators against one truth over the same bars.

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``(figure, side)``, one column per estimator.
    bars : int
        Number of truth bars scored.
    """

    table: pd.DataFrame
    bars: int

    def value(self, figure: str, side: str, estimator: str = "map") -> float:
        """One figure, e.g. ``value("spearman", "long")``."""
        return float(self.table.loc[(figure, side), estimator])

    def to_dict(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """``{estimator: {figure: {side: value}}}`` with NaN as None (JSON-able)."""
        result: dict[str, dict[str, dict[str, float | None]]] = {}
        for estimator in self.table.columns:
            figures: dict[str, dict[str, float | None]] = {}
            for (figure, side), value in self.table[estimator].items():
                number = float(value)
                figures.setdefault(figure, {})[side] = number if math.isfinite(number) else None
            result[str(estimator)] = figures
        return result

    def format(self) -> str:
        """The table as aligned text (one row per figure and side)."""
        estimators = [str(name) for name in self.table.columns]
        labels = [f"{FIGURES[figure]} [{side}]" for figure, side in self.table.index]
        width = max(len(label) for label in labels)
        column = max(11, *(len(name) for name in estimators))
        lines = [" " * width + "".join(name.rjust(column + 2) for name in estimators)]
        for label, (figure, _side) in zip(labels, self.table.index, strict=True):
            cells = []
            for name in estimators:
                value = float(self.table.loc[(figure, _side), name])
                cells.append(_format_value(figure, value).rjust(column + 2))
            lines.append(label.ljust(width) + "".join(cells))
        return "\n".join(lines)


def _format_value(figure: str, value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if figure == "scale":
        return f"x{value:.3g}" if value < 100 else f"x{value:,.0f}"
    if figure == "top_decile_hit_rate":
        return f"{100 * value:.0f} %"
    return f"{value:.3f}"


def score(
    truth_long: np.ndarray,
    truth_short: np.ndarray,
    estimates: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> Scorecard:
    """Score each estimate (per-truth-bar long and short arrays) against the truth.

    Parameters
    ----------
    truth_long, truth_short : numpy.ndarray
        Recorded liquidations per scored truth bar.
    estimates : mapping of str to (long, short)
        Estimators by name (``map`` and the baselines); must include ``naive`` for the
        explained-variance figure.

    Returns
    -------
    Scorecard
    """
    truth = {
        "long": np.asarray(truth_long, dtype=np.float64),
        "short": np.asarray(truth_short, dtype=np.float64),
    }
    truth["total"] = truth["long"] + truth["short"]
    naive = estimates.get(NAIVE)
    naive_sides: dict[str, np.ndarray] | None = None
    if naive is not None:
        naive_sides = {"long": naive[0], "short": naive[1], "total": naive[0] + naive[1]}
    rows: list[tuple[str, str]] = []
    for figure in FIGURES:
        if figure == "long_share_correlation":
            rows.append((figure, "share"))
        else:
            rows.extend((figure, side) for side in SIDES)
    columns: dict[str, list[float]] = {}
    for name, (long, short) in estimates.items():
        sides = {
            "long": np.asarray(long, dtype=np.float64),
            "short": np.asarray(short, dtype=np.float64),
        }
        sides["total"] = sides["long"] + sides["short"]
        values: list[float] = []
        for figure, side in rows:
            values.append(_figure(figure, side, name, sides, truth, naive_sides))
        columns[name] = values
    table = pd.DataFrame(columns, index=pd.MultiIndex.from_tuples(rows, names=["figure", "side"]))
    return Scorecard(table=table, bars=int(truth["long"].shape[0]))


def _figure(
    figure: str,
    side: str,
    name: str,
    sides: dict[str, np.ndarray],
    truth: dict[str, np.ndarray],
    naive_sides: dict[str, np.ndarray] | None,
) -> float:
    if figure == "spearman":
        return metrics.spearman(sides[side], truth[side])
    if figure == "long_share_correlation":
        return metrics.long_share_correlation(
            sides["long"], sides["short"], truth["long"], truth["short"]
        )
    if figure == "explained_variance_added":
        if name == NAIVE or naive_sides is None:
            return math.nan
        return metrics.explained_variance_added(sides[side], naive_sides[side], truth[side])
    if figure == "top_decile_hit_rate":
        return metrics.top_decile_hit_rate(sides[side], truth[side])
    if figure == "scale":
        return metrics.scale(sides[side], truth[side])
    raise ValueError(f"unknown figure {figure!r}")  # pragma: no cover - FIGURES is closed


def scorecard_from_dict(data: Mapping[str, Any], bars: int = 0) -> Scorecard:
    """Rebuild a :class:`Scorecard` from :meth:`Scorecard.to_dict` output."""
    columns: dict[str, dict[tuple[str, str], float]] = {}
    for estimator, figures in data.items():
        for figure, sides in figures.items():
            for side, value in sides.items():
                columns.setdefault(estimator, {})[(figure, side)] = (
                    math.nan if value is None else float(value)
                )
    table = pd.DataFrame(columns)
    table.index = pd.MultiIndex.from_tuples(list(table.index), names=["figure", "side"])
    return Scorecard(table=table, bars=bars)


__all__ = ["FIGURES", "NAIVE", "SIDES", "Scorecard", "score", "scorecard_from_dict"]
