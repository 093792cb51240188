"""The sweep page: one self-contained HTML file (plotly's JavaScript embedded, no CDN).

It shows the ranking metric over two chosen parameters as a heatmap (each cell the best run with
those two values; for a walk-forward, each combination's mean over the training windows
first), the walk-forward's stitched out-of-sample equity and its windows, the ranked table
(the best rows, with links to the full reports when written) and the failed runs with their
errors.  Every text that came from the user or a run is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.sweep.driver import TRAIN, SweepOutcome
from backtest.sweep.reports import ReportEntry
from backtest.sweep.store import COMPLETE, write_text_atomic

PAGE_FILE = "sweep.html"
#: Rows of the ranked table shown on the page (the CSV has all).
TABLE_ROWS = 50
#: Metrics shown on the page beside the ranking metric, when the runs have them.
PAGE_METRICS: tuple[str, ...] = (
    "Return [%]",
    "Sharpe",
    "Sortino",
    "Max. Drawdown [%]",
    "# Trades",
    "Win Rate [%]",
    "Funding PnL [USDT]",
    "Fees [USDT]",
    "Liquidations",
)


def heatmap_axes(outcome: SweepOutcome, requested: Sequence[str] | None = None) -> list[str]:
    """The parameters on the heatmap: ``requested``, else the first two that vary.

    Raises
    ------
    ValueError
        When a requested name is not an axis of the sweep.
    """
    names = outcome.spec.axis_names
    if requested:
        unknown = [name for name in requested if name not in names]
        if unknown:
            raise ValueError(
                f"--heatmap {','.join(requested)}: {', '.join(unknown)} not among the sweep's "
                f"axes ({', '.join(names) or 'none'})"
            )
        return list(requested)[:2]
    varying = [axis.name for axis in outcome.spec.axes if len(axis.values) > 1]
    return varying[:2]


def metric_grid(outcome: SweepOutcome, x: str, y: str | None) -> pd.DataFrame:
    """The metric per (y, x) cell: the best run with those values (rows y, columns x)."""
    metric = outcome.metric
    table = outcome.table
    if metric is None or table.empty or metric not in table:
        return pd.DataFrame()
    frame = table[table["status"] == COMPLETE].copy()
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    frame = frame[frame[metric].notna()]
    names = outcome.spec.axis_names
    if "phase" in frame:
        frame = frame[frame["phase"] == TRAIN]
        if names:
            frame = frame.groupby(names, dropna=False)[metric].mean().reset_index()
    keys = [x] if y is None else [y, x]
    grouped = frame.groupby(keys, dropna=False)[metric]
    best = grouped.min() if outcome.spec.ascending else grouped.max()
    if y is None:
        return best.to_frame().T
    return best.unstack(x)


def _ordered(values: Sequence[Any], order: Sequence[Any]) -> list[Any]:
    rank = {value: position for position, value in enumerate(order)}
    return sorted(values, key=lambda value: rank.get(value, len(rank)))


def _heatmap_figure(outcome: SweepOutcome, axes: Sequence[str]) -> Any:
    import plotly.graph_objects as go

    if not axes or outcome.metric is None:
        return None
    axis_values = {axis.name: list(axis.values) for axis in outcome.spec.axes}
    x = axes[0]
    y = axes[1] if len(axes) > 1 else None
    grid = metric_grid(outcome, x, y)
    if grid.empty:
        return None
    columns = _ordered(list(grid.columns), axis_values.get(x, []))
    grid = grid[columns]
    title = f"{outcome.metric} by {x}" + (f" and {y}" if y else "")
    others = [name for name in outcome.spec.axis_names if name not in (x, y)]
    note = f" (best over {', '.join(others)})" if others else ""
    if "phase" in outcome.table:
        note += " (mean over training windows)"
    if y is None:
        figure = go.Figure(go.Bar(x=[str(value) for value in columns], y=grid.iloc[0].tolist()))
        figure.update_layout(title=title + note, xaxis_title=x, yaxis_title=outcome.metric)
        figure.update_xaxes(type="category")
        return figure
    rows = _ordered(list(grid.index), axis_values.get(y, []))
    grid = grid.loc[rows]
    values = grid.to_numpy(dtype=float)
    text = [[("" if math.isnan(cell) else f"{cell:.3g}") for cell in row] for row in values]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=[str(value) for value in columns],
            y=[str(value) for value in rows],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn_r" if outcome.spec.ascending else "RdYlGn",
            colorbar={"title": {"text": outcome.metric}},
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{outcome.metric}=%{{z}}<extra></extra>",
        )
    )
    figure.update_layout(title=title + note, xaxis_title=x, yaxis_title=y)
    figure.update_xaxes(type="category")
    figure.update_yaxes(type="category")
    return figure


def _equity_figure(outcome: SweepOutcome) -> Any:
    import plotly.graph_objects as go

    equity = outcome.oos_equity
    if equity is None or len(equity) == 0:
        return None
    figure = go.Figure(
        go.Scatter(x=equity.index, y=equity.to_numpy(), mode="lines", name="out-of-sample")
    )
    if outcome.windows is not None:
        for start in outcome.windows["test_since"].tolist()[1:]:
            figure.add_vline(x=pd.Timestamp(start, tz="UTC"), line_dash="dot", line_width=1)
    figure.update_layout(
        title=f"Walk-forward out-of-sample equity ({outcome.oos_return_pct:+.2f} %)",
        xaxis_title="time (UTC)",
        yaxis_title="equity",
    )
    return figure


def page_columns(outcome: SweepOutcome) -> list[str]:
    """Columns of the page's table: rank, axes, context, the metric and a few more."""
    table = outcome.table
    wanted = ["rank", *outcome.spec.axis_names, "phase", "window", "since", "until", "status"]
    if outcome.metric:
        wanted.append(outcome.metric)
    wanted += [*PAGE_METRICS, "error", "seconds", "key"]
    return [name for name in dict.fromkeys(wanted) if name in table.columns]


def _table_html(frame: pd.DataFrame, reports: dict[str, str]) -> str:
    if frame.empty:
        return "<p>No runs.</p>"
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for column in frame.columns:
            value = row[column]
            text = html.escape(_format(value))
            if column == "key" and str(value) in reports:
                text = f'<a href="{html.escape(reports[str(value)])}">{text}</a>'
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f0f0f0; } td:first-child { text-align: center; }
.summary td { text-align: left; } .error { color: #a00; }
.wide { overflow-x: auto; }
"""


def render_page(
    outcome: SweepOutcome,
    *,
    heatmap: Sequence[str] | None = None,
    reports: Sequence[ReportEntry] = (),
) -> str:
    """Return the sweep page as one HTML document."""
    from plotly.offline import get_plotlyjs

    spec = outcome.spec
    base = spec.base
    title = f"Sweep of {base.get('strategy') or 'the default strategy'}"
    report_links = {
        entry.key: f"reports/{entry.folder.name}/report.html"
        for entry in reports
        if entry.folder is not None
    }
    order = "smaller first" if spec.ascending else "larger first"
    summary_rows = [
        ("runs", outcome.total),
        ("failed", outcome.failed),
        ("run now / already recorded", f"{outcome.executed} / {outcome.skipped}"),
        ("ranked by", f"{outcome.metric or spec.rank_by} ({order})"),
        ("axes", "; ".join(f"{axis.name} = {list(axis.values)}" for axis in spec.axes)),
        ("base settings", ", ".join(f"{key}={value}" for key, value in base.items())),
    ]
    if spec.search is not None:
        search = spec.search
        summary_rows[4] = ("searched", "; ".join(axis.describe() for axis in search.axes))
        summary_rows.insert(
            4,
            (
                "search",
                f"{search.method}, {search.trials} trials, seed {search.seed}, "
                f"batches of {search.batch_size}",
            ),
        )
    if spec.constraints is not None and spec.constraints.active:
        limits = spec.constraints
        shown = [f"at least {limits.min_trades} trades"] if limits.min_trades is not None else []
        if limits.max_drawdown is not None:
            shown.append(f"drawdown at most {limits.max_drawdown:g} %")
        summary_rows.append(("constraints", ", ".join(shown)))
    if spec.engine is not None:
        summary_rows.append(("engine", f"{spec.engine.engine} ({spec.engine.reason})"))
    if spec.walk_forward is not None:
        summary_rows.append(("walk-forward (train:test)", spec.walk_forward.text))
        summary_rows.append(("out-of-sample return [%]", f"{outcome.oos_return_pct:.4g}"))
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        '<table class="summary">'
        + "".join(
            f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>"
            for name, value in summary_rows
        )
        + "</table>",
    ]
    figures = [
        ("Parameter heatmap", _heatmap_figure(outcome, heatmap_axes(outcome, heatmap))),
        ("Walk-forward", _equity_figure(outcome)),
    ]
    for heading, figure in figures:
        if figure is None:
            continue
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(figure.to_html(full_html=False, include_plotlyjs=False))
    if outcome.windows is not None and not outcome.windows.empty:
        parts.append("<h2>Walk-forward windows</h2>")
        parts.append(_table_html(outcome.windows, report_links))
    parts.append(f"<h2>Best runs (top {min(TABLE_ROWS, outcome.total)} of {outcome.total})</h2>")
    shown = outcome.table.head(TABLE_ROWS)[page_columns(outcome)]
    parts.append(
        f"<p>All columns are in results.csv.</p><div class='wide'>"
        f"{_table_html(shown, report_links)}</div>"
    )
    failed = outcome.table[outcome.table["status"] != COMPLETE] if outcome.total else None
    if failed is not None and not failed.empty:
        parts.append(f"<h2>Failed runs ({len(failed)})</h2><ul>")
        for _, row in failed.iterrows():
            values = ", ".join(f"{name}={row[name]}" for name in spec.axis_names if name in row)
            error = _format(row.get("error"))
            parts.append(
                f'<li>{html.escape(values)}: <span class="error">{html.escape(error)}</span></li>'
            )
        parts.append("</ul>")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head>"
        f"<body>{''.join(parts)}</body></html>"
    )


def write_page(
    outcome: SweepOutcome,
    *,
    heatmap: Sequence[str] | None = None,
    reports: Sequence[ReportEntry] = (),
) -> Path:
    """Write ``sweep.html`` into the sweep's folder and return its path."""
    return write_text_atomic(
        outcome.folder / PAGE_FILE, render_page(outcome, heatmap=heatmap, reports=reports)
    )
