"""Reports of portfolio runs: combined metrics for the account, a row of metrics per symbol.

A portfolio's :class:`~backtest.results.Results` holds every symbol's candles and events with a
``symbol`` column and the account's equity.  :func:`combined_view` is the account seen as one
run (its market-dependent metrics taken over the symbols: the closest liquidation distance is
the smallest, buy and hold the equal-weight mean, time in clusters left undefined);
:func:`symbol_metrics` gives one row per symbol from that symbol's own tables.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

#: Columns of :func:`symbol_metrics`, besides the symbol.
SYMBOL_METRIC_COLUMNS: tuple[str, ...] = (
    "Trades",
    "Win Rate [%]",
    "Closed-Trade PnL",
    "Fees",
    "Funding PnL",
    "Liquidations",
    "Liquidation Loss",
    "Near Misses",
    "Exposure Time [%]",
    "Max. Exposure [x]",
    "Closest Liquidation Distance [%]",
    "Buy & Hold Return [%]",
)


def combined_view(results: Any) -> Any:
    """The account of a portfolio run as one run (no single market: market tables empty)."""
    from backtest.results import Results

    config = dict(results.config or {})
    config["symbol"] = ", ".join(results.symbols)  # one label: the view is no portfolio
    return Results(
        config=config,
        meta=dict(results.meta or {}),
        equity=results.equity,
        trades=results.trades,
        orders=results.orders,
        liquidations=results.liquidations,
        funding=results.funding,
        near_misses=results.near_misses,
        rejected=getattr(results, "rejected", None),
        open_trades=getattr(results, "open_trades", None),
    )


def compute_portfolio_metrics(results: Any) -> tuple[dict[str, Any], pd.DataFrame]:
    """Combined metrics of the account and the per-symbol table.

    Returns
    -------
    (dict, DataFrame)
        The metrics of :func:`backtest.report.metrics.compute_metrics` for the account (with
        ``Closest Liquidation Distance [%]`` the smallest over the symbols and ``Buy & Hold
        Return [%]`` their equal-weight mean) and :func:`symbol_metrics`.
    """
    from backtest.report.metrics import compute_metrics

    metrics = compute_metrics(combined_view(results))
    table = symbol_metrics(results)
    if not table.empty:
        distances = table["Closest Liquidation Distance [%]"].to_numpy(dtype=np.float64)
        finite = distances[np.isfinite(distances)]
        closest = float(finite.min()) if finite.size else math.nan
        metrics["Closest Liquidation Distance [%]"] = closest
        metrics["Buy & Hold Return [%]"] = float(table["Buy & Hold Return [%]"].mean())
    return metrics, table


def symbol_metrics(results: Any) -> pd.DataFrame:
    """One row per symbol: its trades, costs, liquidations, exposure and buy and hold.

    ``Closed-Trade PnL`` is the sum of the symbol's closed trades' net PnL (fees and funding
    inside them); ``Fees`` and ``Funding PnL`` are every fee and settlement of the symbol
    (a still-open position's too).  The other columns are those of
    :func:`backtest.report.metrics.compute_metrics` on :meth:`Results.for_symbol`.
    """
    from backtest.report.metrics import compute_metrics

    rows = []
    for symbol in results.symbols:
        view = results.for_symbol(symbol)
        metrics = compute_metrics(view)
        trades, orders, funding = view.trades, view.orders, view.funding
        wins = trades["pnl_net"] > 0 if "pnl_net" in trades.columns else pd.Series(dtype=bool)
        rows.append(
            {
                "symbol": symbol,
                "Trades": len(trades),
                "Win Rate [%]": float(wins.mean() * 100.0) if len(trades) else math.nan,
                "Closed-Trade PnL": _total(trades, "pnl_net"),
                "Fees": _total(orders, "fee"),
                "Funding PnL": 0.0 - _total(funding, "payment"),
                "Liquidations": len(view.liquidations),
                "Liquidation Loss": _total(view.liquidations, "loss"),
                "Near Misses": len(view.near_misses),
                "Exposure Time [%]": metrics.get("Exposure Time [%]", math.nan),
                "Max. Exposure [x]": metrics.get("Max. Exposure [x]", math.nan),
                "Closest Liquidation Distance [%]": metrics.get(
                    "Closest Liquidation Distance [%]", math.nan
                ),
                "Buy & Hold Return [%]": metrics.get("Buy & Hold Return [%]", math.nan),
            }
        )
    return pd.DataFrame(rows, columns=["symbol", *SYMBOL_METRIC_COLUMNS])


def _total(frame: pd.DataFrame, column: str) -> float:
    if frame.empty or column not in frame.columns:
        return 0.0
    return float(frame[column].astype(np.float64).sum())


#: Short column titles of the report's per-symbol table (the CSV keeps the full names).
_SHORT_TITLES: dict[str, str] = {
    "Win Rate [%]": "Win [%]",
    "Closed-Trade PnL": "Trade PnL",
    "Funding PnL": "Funding",
    "Liquidations": "Liq.",
    "Liquidation Loss": "Liq. loss",
    "Near Misses": "Near misses",
    "Exposure Time [%]": "Exposure [%]",
    "Max. Exposure [x]": "Max. exp. [x]",
    "Closest Liquidation Distance [%]": "Closest liq. [%]",
    "Buy & Hold Return [%]": "Buy & hold [%]",
}


def symbol_table_html(table: pd.DataFrame, currency: str) -> str:
    """The per-symbol metrics as an HTML table (amounts in ``currency``)."""
    from html import escape

    if table.empty:
        return ""
    titles = [_SHORT_TITLES.get(name, name) for name in table.columns[1:]]
    header = "<th>Symbol</th>" + "".join(f"<th>{escape(title)}</th>" for title in titles)
    body = []
    for row in table.itertuples(index=False):
        cells = [f"<td>{escape(str(row[0]))}</td>"]
        for value in row[1:]:
            if isinstance(value, int | np.integer):
                text = f"{int(value):,}"
            elif isinstance(value, float) and math.isnan(value):
                text = "n/a"
            else:
                text = f"{float(value):,.2f}"
            cells.append(f"<td>{escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<h3>Per symbol</h3><p class="notes">Amounts in {escape(currency)}; trade PnL is '
        "the closed trades' net PnL; the metrics below are the whole account's.</p>"
        f'<div class="scroll"><table class="trades" id="symbols"><thead><tr>{header}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )
