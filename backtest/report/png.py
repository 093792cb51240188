"""A static picture of the main chart (matplotlib, Agg backend) for quick looks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from backtest.folders import atomic_target
from backtest.report.charts import (
    BENCHMARK,
    DENSITY_SATURATION,
    DOWN,
    EQUITY,
    LIQUIDATION,
    LIQUIDATION_LINE,
    UP,
    density_grid,
    liquidation_line,
    price_range,
)
from backtest.report.downsample import thin_series
from backtest.report.summary import format_value


def _plain(text: Any) -> str:
    """Return user text that matplotlib prints literally (``$`` would start mathtext)."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def write_png(results: Any, metrics: dict[str, Any], target: str | os.PathLike[str]) -> Path:
    """Draw price with trades and clusters, equity against buy-and-hold, and drawdown.

    Parameters
    ----------
    results : backtest.results.Results
        The run.
    metrics : dict
        Its metrics (headline numbers go into the title).
    target : path
        The PNG file to write (replaced atomically).

    Returns
    -------
    Path
        ``target``.
    """
    figure = Figure(figsize=(14, 9), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    price_axes, equity_axes, drawdown_axes = figure.subplots(
        3, 1, sharex=True, height_ratios=[3, 1.6, 1]
    )
    market: pd.DataFrame = results.market
    equity: pd.DataFrame = results.equity
    currency = next(
        (key[key.rfind("[") + 1 : -1] for key in metrics if key.startswith("Net PnL [")), ""
    )
    if not market.empty and "close" in market.columns:
        close = thin_series(market["close"].astype(np.float64))
        price_axes.plot(
            close.index, close.to_numpy(), color="#37474f", linewidth=0.8, label="close"
        )
        clusters: pd.DataFrame = results.clusters
        density = density_grid(getattr(results, "heatmap", pd.DataFrame()), market.index)
        if density is not None:
            edges, centres, values, _ = density
            finite = values[np.isfinite(values)]
            top = float(np.quantile(finite, DENSITY_SATURATION)) if finite.size else 1.0
            step = centres[1] - centres[0]
            price_edges = np.concatenate([centres - step / 2, [centres[-1] + step / 2]])
            mesh = price_axes.pcolormesh(
                edges.to_pydatetime(),
                price_edges,
                np.ma.masked_invalid(values),
                cmap="Blues",
                vmin=0.0,
                vmax=top if top > 0 else None,
                alpha=0.75,
                shading="flat",
                zorder=0,
            )
            figure.colorbar(mesh, ax=price_axes, pad=0.01, fraction=0.03).set_label(
                f"liquidation density [M {_plain(currency)} per bin]"
            )
            clusters = pd.DataFrame()  # the density shows the clusters
        for column, color, label in (
            ("long_cluster_price", DOWN, "long-liquidation cluster"),
            ("short_cluster_price", UP, "short-liquidation cluster"),
        ):
            if column in clusters.columns and isinstance(clusters.index, pd.DatetimeIndex):
                line = thin_series(clusters[column].astype(np.float64))
                price_axes.plot(
                    line.index,
                    line.to_numpy(),
                    color=color,
                    alpha=0.35,
                    linewidth=2.5,
                    label=label,
                )
    if "liquidation_price" in equity.columns and equity["liquidation_price"].notna().any():
        line = liquidation_line(equity)
        price_axes.plot(
            line.index,
            line.to_numpy(),
            color=LIQUIDATION_LINE,
            linestyle=":",
            linewidth=1,
            label="own liquidation price",
        )
    trades: pd.DataFrame = results.trades
    if not trades.empty and {"entry_time", "entry_price", "side"} <= set(trades.columns):
        for side, marker, color in (("long", "^", UP), ("short", "v", DOWN)):
            chosen = trades[trades["side"] == side]
            if not chosen.empty:
                price_axes.scatter(
                    pd.to_datetime(chosen["entry_time"], utc=True),
                    chosen["entry_price"],
                    marker=marker,
                    s=60,
                    color=color,
                    edgecolors="white",
                    linewidths=0.6,
                    zorder=5,
                    label=f"{side} entry",
                )
        if {"exit_time", "exit_price"} <= set(trades.columns):
            price_axes.scatter(
                pd.to_datetime(trades["exit_time"], utc=True),
                trades["exit_price"],
                marker="o",
                s=22,
                facecolors="none",
                edgecolors="#263238",
                linewidths=0.9,
                zorder=5,
                label="exit",
            )
    liquidations: pd.DataFrame = results.liquidations
    if not liquidations.empty and {"time", "fill_price"} <= set(liquidations.columns):
        price_axes.scatter(
            pd.to_datetime(liquidations["time"], utc=True),
            liquidations["fill_price"],
            marker="X",
            s=140,
            color=LIQUIDATION,
            edgecolors="white",
            linewidths=0.8,
            zorder=6,
            label="own liquidation",
        )
    if not market.empty and {"low", "high"} <= set(market.columns):
        price_axes.set_ylim(*price_range(market, results.clusters, results.equity))
    thousands = FuncFormatter(lambda value, _: f"{value:,.0f}")
    price_axes.yaxis.set_major_formatter(thousands)
    price_axes.set_ylabel("price")
    if price_axes.get_legend_handles_labels()[0]:
        price_axes.legend(
            loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=8, frameon=False
        )
    price_axes.grid(alpha=0.25)

    if not equity.empty and "value" in equity.columns:
        value = equity["value"].astype(np.float64)
        thin = thin_series(value)
        equity_axes.plot(thin.index, thin.to_numpy(), color=EQUITY, linewidth=1.1, label="equity")
        if not market.empty and "close" in market.columns:
            closes = market["close"].reindex(equity.index).ffill().dropna()
            if not closes.empty:
                benchmark = thin_series(value.iloc[0] * closes / closes.iloc[0])
                equity_axes.plot(
                    benchmark.index,
                    benchmark.to_numpy(),
                    color=BENCHMARK,
                    linestyle="--",
                    linewidth=1,
                    label="buy & hold",
                )
        equity_axes.legend(loc="upper left", fontsize=8)  # equity is always labelled
        drawdown = thin_series((value / value.cummax() - 1.0) * 100.0)
        drawdown_axes.fill_between(
            drawdown.index, drawdown.to_numpy(), 0, color=DOWN, alpha=0.3, linewidth=0
        )
        drawdown_axes.plot(drawdown.index, drawdown.to_numpy(), color=DOWN, linewidth=0.8)
    equity_axes.yaxis.set_major_formatter(thousands)
    equity_axes.set_ylabel(f"equity [{_plain(currency)}]")
    equity_axes.grid(alpha=0.25)
    drawdown_axes.set_ylabel("drawdown [%]")
    drawdown_axes.grid(alpha=0.25)

    def pick(key: str) -> str:
        return format_value(key, metrics.get(key))

    name = " ".join(
        _plain(metrics.get(key, "")) for key in ("Strategy", "Symbol", "Timeframe")
    ).strip()
    figure.suptitle(
        f"{name}    return {pick('Return [%]')} %   buy & hold {pick('Buy & Hold Return [%]')} %"
        f"   max drawdown {pick('Max. Drawdown [%]')} %   Sharpe {pick('Sharpe')}"
        f"   trades {pick('# Trades')}   own liquidations {pick('Liquidations')}",
        fontsize=12,
        x=0.01,
        ha="left",
    )
    path = Path(target)
    with atomic_target(path) as temporary:
        figure.savefig(temporary, format="png")
    return path
