"""Choosing the ranking metric by name and building the ranked results table."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from backtest.errors import ConfigError

#: Context columns before the metrics; axis columns come first of all.
CONTEXT_COLUMNS: tuple[str, ...] = ("trial", "phase", "window", "since", "until")
#: Columns a sweep with constraints adds (see :mod:`backtest.sweep.constraints`).
FEASIBLE, VIOLATIONS = "feasible", "violations"

#: Metrics for which a smaller value is better (named without their unit, case-folded): a
#: search minimises them and a sweep ranks them smaller first unless told otherwise.  Every
#: other metric (returns, ratios, ``Max. Drawdown [%]``, which is negative) is maximised.
MINIMISED_METRICS: frozenset[str] = frozenset(
    {
        "volatility (ann.)",
        "max. drawdown duration",
        "longest drawdown duration",
        "liquidations",
        "liquidation loss",
        "rejected orders",
        "fees",
        "max. margin use",
    }
)


def minimised(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (see :data:`MINIMISED_METRICS`)."""
    return _without_unit(metric) in MINIMISED_METRICS


TRAILING_COLUMNS: tuple[str, ...] = ("error", "engine", "seconds", "worker", "key")


def resolve_metric(requested: str, names: Iterable[str], *, option: str = "--rank-by") -> str:
    """Find the metric ``requested`` names among the metrics a run produced.

    Accepts the exact key (``"Sharpe Ratio"``), the key in any case, the key without its unit
    (``"return"`` for ``"Return [%]"``), or a unique start or part of it (``"sharpe"``).

    Raises
    ------
    ConfigError
        When nothing or more than one metric matches (the message lists the candidates).
    """
    numeric = list(dict.fromkeys(names))
    if requested in numeric:
        return requested
    folded = requested.strip().casefold()
    for matcher in (
        lambda name: name.casefold() == folded,
        lambda name: _without_unit(name) == folded,
        lambda name: name.casefold().startswith(folded),
        lambda name: folded in name.casefold(),
    ):
        found = [name for name in numeric if matcher(name)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ConfigError(
                f"{option} {requested!r} matches several metrics: "
                f"{', '.join(repr(name) for name in found)}; write the one you mean"
            )
    raise ConfigError(
        f"{option} {requested!r} is not a metric of these runs; numeric metrics: "
        f"{', '.join(repr(name) for name in numeric) or 'none'}"
    )


def _without_unit(name: str) -> str:
    """``"Return [%]"`` -> ``"return"``."""
    return re.sub(r"\s*\[[^\]]*\]\s*$", "", name).casefold()


def numeric_metric_names(metrics: Mapping[str, Any]) -> list[str]:
    """Keys of ``metrics`` whose values are numbers (booleans excluded)."""
    return [
        name
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]


def rank_table(
    rows: Sequence[Mapping[str, Any]],
    metric: str | None,
    *,
    ascending: bool = False,
    axis_names: Sequence[str] = (),
) -> pd.DataFrame:
    """Order rows best first by ``metric`` and number them.

    Complete runs with a finite metric come first (``rank`` 1, 2, ...; ties keep plan order),
    then complete runs that break a constraint (a ``feasible`` column that is False, see
    :mod:`backtest.sweep.constraints`; ordered by the metric, no rank), then complete runs
    without the metric, then failed runs (``rank`` empty for all of these).
    """
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=["rank", *axis_names, "status"])
    order = list(range(len(frame)))
    if metric is not None and metric in frame.columns:
        values = pd.to_numeric(frame[metric], errors="coerce")
        measured = values.notna() & frame["status"].eq("complete")
        feasible = (
            frame[FEASIBLE].map(lambda flag: flag is not False and flag == flag)
            if FEASIBLE in frame.columns
            else pd.Series(True, index=frame.index)
        )
        finite = measured & feasible.astype(bool)
        direction = 1.0 if ascending else -1.0

        def sort_key(position: int) -> tuple[int, float, int]:
            if finite.iloc[position]:
                return (0, direction * float(values.iloc[position]), position)
            if measured.iloc[position]:
                return (1, direction * float(values.iloc[position]), position)
            return (2 if frame["status"].iloc[position] == "complete" else 3, 0.0, position)

        order = sorted(order, key=sort_key)
        ranked = frame.iloc[order].reset_index(drop=True)
        ranks = pd.array([None] * len(ranked), dtype="Int64")
        count = int(finite.sum())
        ranks[:count] = range(1, count + 1)
        ranked.insert(0, "rank", ranks)
    else:
        ranked = frame.copy()
        ranked.insert(0, "rank", pd.array([None] * len(ranked), dtype="Int64"))
    return ranked[_column_order(ranked.columns, axis_names)]


#: Metrics that say what a run earned and did; an axis that changes none of them changed nothing a
#: trader ranks by (margin use or liquidation distance may still move).
RESULT_METRICS: tuple[str, ...] = (
    "Return [%]",
    "Max. Drawdown [%]",
    "Sharpe",
    "# Trades",
    "Win Rate [%]",
    "Liquidations",
    "Rejected Orders",
    "Avg. Exposure [x]",
)


def unchanged_axes(
    table: pd.DataFrame, axis_names: Sequence[str], metrics: Sequence[str] = RESULT_METRICS
) -> list[str]:
    """Axes whose values left every result metric of the complete runs unchanged.

    For each axis with at least two values, the complete runs are grouped by the other axes
    (and the walk-forward window, when present); the axis is listed when, in every group with
    more than one of its values, each metric of ``metrics`` present in ``table`` takes one value
    (NaN equal to NaN).  A sweep of ``leverage`` over a strategy sized with
    ``target_exposure`` is the typical case: the setting moves only the margin locked.
    """
    if table.empty or "status" not in table.columns:
        return []
    complete = table[table["status"] == "complete"]
    present = [name for name in metrics if name in complete.columns]
    if not present or len(complete) < 2:
        return []
    found = []
    context = [name for name in ("phase", "window") if name in complete.columns]
    for axis in axis_names:
        if axis not in complete.columns or complete[axis].astype(str).nunique() < 2:
            continue
        others = [name for name in axis_names if name != axis and name in complete.columns]
        keys = [*others, *context]
        groups = (
            [group for _, group in complete.groupby(keys, dropna=False, sort=False)]
            if keys
            else [complete]
        )
        compared = False
        same = True
        for group in groups:
            if group[axis].astype(str).nunique() < 2:
                continue
            compared = True
            for name in present:
                values = pd.to_numeric(group[name], errors="coerce").round(12)
                if values.nunique(dropna=False) > 1:
                    same = False
                    break
            if not same:
                break
        if compared and same:
            found.append(axis)
    return found


def _column_order(columns: Iterable[str], axis_names: Sequence[str]) -> list[str]:
    present = list(columns)
    head = ["rank", *[name for name in axis_names if name in present]]
    head += [name for name in CONTEXT_COLUMNS if name in present and name not in head]
    head += ["status"] if "status" in present else []
    head += [name for name in (FEASIBLE, VIOLATIONS) if name in present]
    tail = [name for name in TRAILING_COLUMNS if name in present and name not in head]
    middle = [name for name in present if name not in head and name not in tail]
    return head + middle + tail
