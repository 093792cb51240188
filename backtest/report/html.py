"""The run's report folder: ``report.html`` plus ``metrics.json``, CSVs and a PNG beside it.

``report.html`` is one self-contained page: plotly's JavaScript is embedded once in its head,
figures carry their data inline, and nothing is fetched from a network (no ``src`` or ``href``
pointing anywhere), so it opens offline and can be mailed as one file.  Every piece of user text
(strategy name, parameters, error messages) is HTML-escaped.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd
import plotly.io as pio
from plotly.offline import get_plotlyjs

from backtest.folders import atomic_target, write_atomic
from backtest.report.charts import main_figure, trades_figure
from backtest.report.metrics import compute_metrics, monthly_returns, quote_currency
from backtest.report.png import write_png
from backtest.report.summary import MISSING, format_value
from backtest.strict_json import dumps

#: Trades listed in the page (all of them are in trades.csv).
MAX_TRADE_ROWS = 1000

#: Files written by :func:`write_report`, by role.
REPORT_FILES = {
    "html": "report.html",
    "metrics": "metrics.json",
    "equity": "equity.csv",
    "trades": "trades.csv",
    "png": "report.png",
}
#: Per-symbol metrics of a portfolio run, beside the report files.
SYMBOL_METRICS_FILE = "symbols.csv"

#: Metric key (or key prefix) that opens each group of the metrics table.
METRIC_GROUPS = (
    ("Strategy", "Run"),
    ("Equity Start", "Returns and risk"),
    ("# Trades", "Trades"),
    ("Trading PnL", "Perpetual futures"),
)

#: Headline cards: (label, key or key prefix, signed colouring).
CARDS = (
    ("Return", "Return [%]", True),
    ("Buy & hold", "Buy & Hold Return [%]", True),
    ("Max. drawdown", "Max. Drawdown [%]", False),
    ("Sharpe", "Sharpe", True),
    ("Trades", "# Trades", False),
    ("Win rate", "Win Rate [%]", False),
    ("Own liquidations", "Liquidations", False),
    ("Funding PnL", "Funding PnL", True),
    ("Fees", "Fees", False),
)

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": False}


def _escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _lookup(metrics: Mapping[str, Any], prefix: str) -> tuple[str, Any] | None:
    for key, value in metrics.items():
        if key == prefix or key.startswith(prefix + " ["):
            return key, value
    return None


def _cards(metrics: Mapping[str, Any]) -> str:
    parts = []
    for label, prefix, signed in CARDS:
        found = _lookup(metrics, prefix)
        if found is None:
            continue
        key, value = found
        unit = key[key.rfind("[") + 1 : -1] if key.endswith("]") else ""
        text = format_value(key, value)
        tone = ""
        if signed and isinstance(value, float) and math.isfinite(value) and value != 0:
            tone = " pos" if value > 0 else " neg"
        if key.startswith("Max. Drawdown") and isinstance(value, float) and value < 0:
            tone = " neg"
        suffix = f' <span class="unit">{_escape(unit)}</span>' if unit and text != MISSING else ""
        parts.append(
            f'<div class="card" data-key="{_escape(key)}"><div class="label">{_escape(label)}'
            f'</div><div class="value{tone}">{_escape(text)}{suffix}</div></div>'
        )
    return "".join(parts)


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """Return the metrics as a grouped two-column HTML table (``id="metrics"``).

    Each row carries its metric key in ``data-key`` so that tools can find a value.
    """
    starts = {prefix: title for prefix, title in METRIC_GROUPS}
    rows = []
    for key, value in metrics.items():
        group = next(
            (title for prefix, title in starts.items() if key == prefix or key.startswith(prefix)),
            None,
        )
        if group is not None:
            rows.append(f'<tr class="group"><th colspan="2">{_escape(group)}</th></tr>')
        rows.append(
            f'<tr data-key="{_escape(key)}"><th>{_escape(key)}</th>'
            f"<td>{_escape(format_value(key, value))}</td></tr>"
        )
    return f'<table class="kv" id="metrics">{"".join(rows)}</table>'


def _cell_colour(value: float, scale: float) -> str:
    if not math.isfinite(value) or scale <= 0:
        return ""
    strength = min(abs(value) / scale, 1.0) * 0.55 + 0.08
    rgb = "38, 166, 154" if value >= 0 else "239, 83, 80"
    return f' style="background: rgba({rgb}, {strength:.2f})"'


def monthly_table(equity: pd.DataFrame) -> str:
    """Return calendar-month returns as an HTML table coloured by sign and size."""
    if equity.empty or "value" not in equity.columns:
        return "<p>No equity curve.</p>"
    table = monthly_returns(equity["value"].astype(np.float64))
    if table.empty:
        return "<p>No equity curve.</p>"
    values = table.drop(columns="Year").to_numpy(dtype=np.float64)
    finite = np.abs(values[np.isfinite(values)])
    scale = float(finite.max()) if finite.size else 0.0
    header = "".join(f"<th>{_escape(name)}</th>" for name in ["", *table.columns])
    body = []
    for year, row in table.iterrows():
        cells = []
        for name, value in row.items():
            number = float(value)
            text = "" if math.isnan(number) else f"{number:+.2f}"
            style = _cell_colour(number, scale) if name != "Year" else ""
            weight = ' class="year"' if name == "Year" else ""
            cells.append(f"<td{weight}{style}>{text}</td>")
        body.append(f"<tr><th>{_escape(year)}</th>{''.join(cells)}</tr>")
    return (
        f'<div class="scroll"><table class="monthly" id="monthly"><thead><tr>{header}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def config_table(config: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """Return the run's configuration and metadata as an HTML table (nested keys dotted)."""
    rows = []
    for title, mapping in (("Run", meta), ("Configuration", config)):
        if not mapping:
            continue
        rows.append(f'<tr class="group"><th colspan="2">{_escape(title)}</th></tr>')
        for name, value in _flatten(mapping):
            text = value if isinstance(value, str) else dumps(value)
            rows.append(f"<tr><th>{_escape(name)}</th><td>{_escape(text)}</td></tr>")
    if not rows:
        return "<p>No configuration was saved with this run.</p>"
    return f'<table class="kv config" id="config">{"".join(rows)}</table>'


_TRADE_COLUMNS = (
    ("symbol", "Symbol"),  # portfolio runs only
    ("side", "Side"),
    ("entry_time", "Entry"),
    ("exit_time", "Exit"),
    ("size", "Size"),
    ("entry_price", "Entry price"),
    ("exit_price", "Exit price"),
    ("pnl_gross", "Gross PnL"),
    ("fees", "Fees"),
    ("funding_pnl", "Funding PnL"),
    ("pnl_net", "Net PnL"),
    ("bars", "Bars"),
    ("liquidated", "Liquidated"),
    ("exit_reason", "Exit reason"),
)


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    if column == "liquidated":
        return "LIQUIDATED" if bool(value) else ""
    if column == "size":
        return f"{float(value):,.6g}"
    if column == "bars":
        return f"{int(value):,}"
    if isinstance(value, int | float | np.number):
        return f"{float(value):,.2f}"
    return str(value)


def with_pnl_signs(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with funding as PnL, as the console and the metrics show it (paid < 0).

    The saved tables count funding as a cost (``funding``, ``funding_cum``: positive = paid);
    what a reader sees (report, ``trades.csv``, ``equity.csv``) uses one convention with the
    console's ``Funding PnL``: ``funding_pnl`` and ``funding_pnl_cum``, negative when paid.
    """
    renamed = {"funding": "funding_pnl", "funding_cum": "funding_pnl_cum"}
    present = {old: new for old, new in renamed.items() if old in frame.columns}
    if not present:
        return frame
    frame = frame.copy()
    for old in present:
        frame[old] = 0.0 - frame[old].astype(np.float64)
    return frame.rename(columns=present)


def trades_table(trades: pd.DataFrame, currency: str) -> str:
    """Return the trade list as an HTML table (the first :data:`MAX_TRADE_ROWS` trades)."""
    if trades.empty:
        return "<p>No trades.</p>"
    trades = with_pnl_signs(trades)
    columns = [(name, title) for name, title in _TRADE_COLUMNS if name in trades.columns]
    shown = trades.head(MAX_TRADE_ROWS)
    header = "<th>#</th>" + "".join(f"<th>{_escape(title)}</th>" for _, title in columns)
    body = []
    for number, row in enumerate(shown.itertuples(index=False), start=1):
        values = row._asdict()
        cells = []
        for name, _ in columns:
            value = values[name]
            if name in ("entry_time", "exit_time") and value is not None:
                value = pd.Timestamp(value)
            css = ""
            if name == "pnl_net" and isinstance(value, int | float) and value:
                css = ' class="pos"' if value > 0 else ' class="neg"'
            if name == "liquidated" and bool(value):
                css = ' class="liq"'
            cells.append(f"<td{css}>{_escape(_cell(name, value))}</td>")
        body.append(f"<tr><td>{number}</td>{''.join(cells)}</tr>")
    note = ""
    if len(trades) > MAX_TRADE_ROWS:
        note = (
            f'<p class="notes">Showing the first {MAX_TRADE_ROWS:,} of {len(trades):,} trades; '
            "trades.csv lists all.</p>"
        )
    return (
        f'<p class="notes">Amounts in {_escape(currency)}.</p>'
        f'<div class="scroll"><table class="trades" id="trades"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{note}"
    )


def pnl_by_reason(results: Any) -> pd.DataFrame:
    """Trades grouped by ``exit_reason``: count, wins, net PnL total and mean, by total PnL.

    Trades still open at the end count under ``"end of data"`` (their PnL is unrealised).
    """
    frames = [results.trades, getattr(results, "open_trades", None)]
    frames = [f for f in frames if f is not None and not f.empty and "exit_reason" in f.columns]
    if not frames:
        return pd.DataFrame(columns=["exit_reason", "trades", "win_rate_pct", "pnl_net", "mean"])
    trades = pd.concat([f[["exit_reason", "pnl_net"]] for f in frames], ignore_index=True)
    trades["won"] = trades["pnl_net"].astype(np.float64) > 0.0
    grouped = trades.groupby("exit_reason", sort=False)
    table = pd.DataFrame(
        {
            "trades": grouped.size(),
            "win_rate_pct": grouped["won"].mean() * 100.0,
            "pnl_net": grouped["pnl_net"].sum(),
            "mean": grouped["pnl_net"].mean(),
        }
    )
    table = table.sort_values("pnl_net", ascending=False, kind="stable")
    return table.reset_index()


def reason_table(results: Any, currency: str) -> str:
    """The report's "PnL by exit reason" table (empty text without trades)."""
    table = pnl_by_reason(results)
    if table.empty:
        return ""
    rows = "".join(
        f"<tr><td>{_escape(row.exit_reason)}</td><td>{int(row.trades):,}</td>"
        f"<td>{row.win_rate_pct:,.1f}</td>"
        f'<td class="{"pos" if row.pnl_net > 0 else "neg" if row.pnl_net < 0 else ""}">'
        f"{row.pnl_net:,.2f}</td><td>{row.mean:,.2f}</td></tr>"
        for row in table.itertuples(index=False)
    )
    return (
        f'<h3 id="pnl-by-reason">PnL by exit reason [{_escape(currency)}]</h3>'
        '<p class="notes">The closing order\'s reason (a strategy sets it: '
        'self.close(reason="stop")); without one "stop" for a stop order, else "strategy".</p>'
        '<table class="trades" id="reasons"><thead><tr><th>exit reason</th><th>trades</th>'
        "<th>win rate [%]</th><th>net PnL</th><th>mean net PnL</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def open_trades_table(open_trades: pd.DataFrame | None, currency: str) -> str:
    """Trades still open at the end, marked at the last close (empty text when none)."""
    if open_trades is None or open_trades.empty:
        return ""
    table = trades_table(open_trades, currency).replace('id="trades"', 'id="open-trades"', 1)
    return (
        f'<h3 id="open-trades-heading">Open at the end ({len(open_trades):,})</h3>'
        '<p class="notes">Not closed when the data ended: the exit is the last bar\'s close '
        "(the mark), the PnL unrealised; not counted in # Trades.</p>" + table
    )


def rejected_table(rejected: pd.DataFrame | None) -> str:
    """The orders the broker refused, with their reasons (empty text when there were none)."""
    if rejected is None or rejected.empty:
        return ""
    columns = [name for name in ("symbol", "time", "side", "size", "price", "reason")]
    columns = [name for name in columns if name in rejected.columns]
    header = "".join(f"<th>{_escape(name)}</th>" for name in columns)
    body = []
    for row in rejected.head(MAX_TRADE_ROWS).itertuples(index=False):
        values = row._asdict()
        cells = "".join(f"<td>{_escape(_cell(name, values[name]))}</td>" for name in columns)
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<h3 id="rejected-orders">Rejected orders ({len(rejected):,})</h3>'
        '<p class="notes">Orders the broker refused (not filled, not in the trade list).</p>'
        f'<div class="scroll"><table class="trades" id="rejected"><thead><tr>{header}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure_html(figure: Any, div_id: str) -> str:
    return pio.to_html(
        figure,
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=_PLOTLY_CONFIG,
        default_width="100%",
    )


def _price_charts(
    results: Any, currency: str, map_lines: Sequence[str] = ()
) -> tuple[str, list[str], str]:
    """The price chart(s), their notes and extra HTML for the metrics section.

    A portfolio run gets one chart per symbol, each titled with its symbol (the account's
    equity under each), in the run's symbol order, and the per-symbol metrics table under them.
    """
    if not getattr(results, "portfolio", False):
        figure, notes = main_figure(results, currency, map_lines)
        return _figure_html(figure, "chart-main"), notes, ""
    from backtest.report.portfolio import symbol_metrics, symbol_table_html

    parts: list[str] = []
    notes = [
        "One chart per symbol: its price, trades, liquidation map, own liquidation price, "
        "buy and hold and leverage, over the whole account's equity, drawdown and PnL."
    ]
    for number, symbol in enumerate(results.symbols):
        figure, symbol_notes = main_figure(results.for_symbol(symbol), currency, map_lines)
        div_id = "chart-main" if number == 0 else f"chart-main-{number}"
        parts.append(f'<h3 class="symbol">{_escape(symbol)}</h3>{_figure_html(figure, div_id)}')
        notes += [f"{symbol}: {note}" for note in symbol_notes]
    # The per-symbol table goes under the charts, at full width (too wide for the metrics).
    parts.append(symbol_table_html(symbol_metrics(results), currency))
    return "".join(parts), notes, ""


def render_html(results: Any, metrics: Mapping[str, Any], map_lines: Sequence[str] = ()) -> str:
    """Return the complete, self-contained report page of ``results``.

    ``map_lines`` names map columns (``results.clusters``) drawn as panels under the price.
    """
    currency = quote_currency(results.config or {}, results.meta or {})
    meta: Mapping[str, Any] = results.meta or {}
    main_chart, notes, symbol_table = _price_charts(results, currency, map_lines)
    trade_figure = trades_figure(results, currency)
    name = " · ".join(
        str(metrics.get(key)) for key in ("Strategy", "Symbol", "Timeframe") if metrics.get(key)
    )
    start, end = str(metrics.get("Start", ""))[:16], str(metrics.get("End", ""))[:16]
    subheading = f"{start.replace('T', ' ')} → {end.replace('T', ' ')} UTC" if start else ""
    if meta.get("run_id"):
        subheading += f" · run {meta['run_id']}"
    banner = ""
    if meta and meta.get("status", "complete") != "complete":
        reason = meta.get("error") or "no reason was recorded"
        banner = (
            f'<div class="banner" id="failed"><strong>This run did not finish</strong> '
            f"(status {_escape(meta.get('status'))}): {_escape(reason)}. "
            "The tables below are partial.</div>"
        )
    from backtest.report.realism import run_warnings

    gaps = run_warnings(results, metrics)
    if gaps:
        banner += (
            '<div class="banner" id="warnings"><strong>Read with care:</strong><ul>'
            + "".join(f"<li>{_escape(gap)}</li>" for gap in gaps)
            + "</ul></div>"
        )
    template = Template(
        resources.files("backtest.report")
        .joinpath("templates/report.html")
        .read_text(encoding="utf-8")
    )
    from backtest import __version__

    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return template.substitute(
        version=_escape(__version__),
        title=_escape(f"Backtest report · {name}" if name else "Backtest report"),
        plotlyjs=get_plotlyjs(),
        heading=_escape(name or "Backtest report"),
        subheading=_escape(subheading),
        banner=banner,
        cards=_cards(metrics),
        main_chart=main_chart,
        notes="".join(f"<li>{_escape(note)}</li>" for note in notes),
        metrics_table=metrics_table(metrics) + symbol_table,
        monthly_table=monthly_table(results.equity),
        config_table=config_table(results.config or {}, meta),
        trades_chart=_figure_html(trade_figure, "chart-trades") if trade_figure else "",
        trades_table=reason_table(results, currency)
        + trades_table(results.trades, currency)
        + open_trades_table(getattr(results, "open_trades", None), currency)
        + rejected_table(getattr(results, "rejected", None)),
        footer=_escape(
            f"Generated {generated} by backtest {__version__}. Files beside this page: "
            "metrics.json, equity.csv, trades.csv, report.png. Annualisation: 365 days x 24 h."
        ),
    )


def _atomic_write(text: str | bytes, target: Path) -> None:
    write_atomic(target, text)


def _write_csv(frame: pd.DataFrame, target: Path, index_label: str | None) -> None:
    """Write ``frame`` as CSV with pyarrow (several times faster than pandas on long runs)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    table = frame.reset_index(names=index_label) if index_label else frame
    with atomic_target(target) as temporary:
        pa_csv.write_csv(pa.Table.from_pandas(table, preserve_index=False), temporary)


def trades_with_status(results: Any) -> pd.DataFrame:
    """Closed trades then the trades still open at the end, with a ``status`` column."""
    trades = results.trades.assign(status="closed")
    open_trades = getattr(results, "open_trades", None)
    if open_trades is None or open_trades.empty:
        return trades
    return pd.concat([trades, open_trades.assign(status="open")], ignore_index=True)


def write_report(
    results: Any, folder: str | os.PathLike[str], map_lines: Sequence[str] = ()
) -> Path:
    """Write the report files of ``results`` into ``folder`` and return the HTML page's path.

    Parameters
    ----------
    results : backtest.results.Results
        The run (complete or failed; a failed run is reported with a banner).
    folder : path
        Target folder, created if needed; usually the folder the run was saved in.
    map_lines : sequence of str
        Map columns (``results.clusters``) drawn as panels under the price chart; checked
        first (:func:`backtest.report.charts.check_map_lines`), so a wrong name writes nothing.

    Returns
    -------
    Path
        ``folder / "report.html"``.  Beside it: ``metrics.json`` (every metric, NaN as null),
        ``equity.csv`` (the per-bar equity table), ``trades.csv`` (closed trades, then those
        still open at the end, marked at the last close; column ``status``) and ``report.png``.  A
        portfolio run's metrics are the account's (:mod:`backtest.report.portfolio`), its
        per-symbol metrics go to ``symbols.csv`` and its PNG draws the first symbol.
    """
    from backtest.report.charts import check_map_lines

    map_lines = check_map_lines(results.clusters, map_lines) if map_lines else []
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    pictured = results
    metrics = compute_metrics(results)
    if getattr(results, "portfolio", False):
        from backtest.report.portfolio import symbol_metrics

        _write_csv(symbol_metrics(results), path / SYMBOL_METRICS_FILE, None)
        pictured = results.for_symbol(results.symbols[0])  # the PNG draws the first symbol
    _atomic_write(dumps(dict(metrics), indent=2) + "\n", path / REPORT_FILES["metrics"])
    _write_csv(with_pnl_signs(results.equity), path / REPORT_FILES["equity"], "time")
    _write_csv(with_pnl_signs(trades_with_status(results)), path / REPORT_FILES["trades"], None)
    write_png(pictured, metrics, path / REPORT_FILES["png"])
    target = path / REPORT_FILES["html"]
    _atomic_write(render_html(results, metrics, map_lines), target)
    return target
