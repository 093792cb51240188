"""The report's interactive charts (plotly figures built from a run's tables).

:func:`main_figure` stacks, on one shared time axis: price candles with the strategy's entries,
exits, own liquidations, near-misses and own liquidation price over the liquidation-map heatmap;
equity against buy-and-hold; drawdown; trading PnL apart from funding and fees; effective
leverage and margin use.  :func:`trades_figure` shows each trade's net result.  Long series are
thinned for drawing only (:mod:`backtest.report.downsample`).  User text reaching a figure is
HTML-escaped, because plotly renders a subset of HTML in titles and hover labels.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backtest.report.downsample import merge_candles, thin_segments, thin_series

#: Grid of the drawn liquidation heatmap (time buckets x price bins).
HEATMAP_COLUMNS = 300
HEATMAP_ROWS = 120
#: Trade markers drawn at most (the largest results when there are more).
MAX_TRADE_MARKERS = 3000

UP, DOWN = "#26a69a", "#ef5350"
EQUITY, BENCHMARK = "#1f4e99", "#9e9e9e"
LIQUIDATION, NEAR_MISS, LIQUIDATION_LINE = "#111111", "#ff9800", "#8e24aa"
HEAT_SCALE = [
    [0.0, "rgba(255, 236, 179, 0.25)"],
    [0.35, "rgba(255, 193, 7, 0.55)"],
    [0.7, "rgba(255, 111, 0, 0.7)"],
    [1.0, "rgba(183, 28, 28, 0.85)"],
]
#: Colours of the density heatmap: empty is transparent, dense is deep blue (apart from the
#: green and red candles drawn over it).
DENSITY_SCALE = [
    [0.0, "rgba(222, 235, 247, 0.0)"],
    [0.2, "rgba(198, 219, 239, 0.3)"],
    [0.45, "rgba(107, 174, 214, 0.45)"],
    [0.75, "rgba(33, 113, 181, 0.6)"],
    [1.0, "rgba(8, 48, 107, 0.75)"],
]
#: The density's colour scale saturates at this quantile of the non-empty cells.
DENSITY_SATURATION = 0.995


def plot_times(values: Any) -> np.ndarray:
    """Return times as compact UTC strings for plotly (fast to copy, short in the page).

    Plotly reads ``"2025-10-01 12:05"`` as a date; the page states that times are UTC.
    """
    stamps = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).tz_convert("UTC")
    pattern = "%Y-%m-%d %H:%M:%S" if (stamps.second != 0).any() else "%Y-%m-%d %H:%M"
    return np.asarray(stamps.strftime(pattern), dtype=object)


def liquidation_line(equity: pd.DataFrame) -> pd.Series:
    """Return the own liquidation price thinned for drawing, broken between positions."""
    if "position_size" in equity.columns:
        positions = equity["position_size"].to_numpy(dtype=np.float64)
    else:
        positions = np.zeros(len(equity))
    return thin_segments(equity["liquidation_price"].astype(np.float64), positions)


def escape(text: Any) -> str:
    """Return ``text`` safe for plotly's HTML-like labels and for an HTML page."""
    return html.escape(str(text), quote=True)


def cluster_heatmap(
    clusters: pd.DataFrame,
    index: pd.DatetimeIndex,
    price_low: float,
    price_high: float,
    columns: int = HEATMAP_COLUMNS,
    rows: int = HEATMAP_ROWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Bin the map's per-bar cluster lines into a time x price grid of notional.

    Each bar contributes its long and its short cluster (``*_cluster_price``,
    ``*_cluster_notional``) to the cell holding that price in that time bucket; a cell keeps the
    largest notional it received.

    Returns
    -------
    (x, y, z) or None
        Bucket start times, price bin centres and the grid (rows = prices, NaN where empty);
        None when the map's outputs hold no cluster.
    """
    pairs = [
        (f"{side}_cluster_price", f"{side}_cluster_notional")
        for side in ("long", "short")
        if f"{side}_cluster_price" in clusters.columns
    ]
    if clusters.empty or not pairs or len(index) == 0 or not price_high > price_low:
        return None
    if isinstance(clusters.index, pd.DatetimeIndex):
        aligned = clusters.reindex(index)
    elif len(clusters) == len(index):
        aligned = clusters.set_axis(index)
    else:
        return None
    count = len(index)
    bucket = max(1, math.ceil(count / columns))
    buckets = math.ceil(count / bucket)
    edges = np.linspace(price_low, price_high, rows + 1)
    grid = np.zeros((rows, buckets))
    column_of_bar = np.arange(count) // bucket
    found = False
    for price_column, notional_column in pairs:
        prices = aligned[price_column].to_numpy(dtype=np.float64)
        if notional_column in aligned.columns:
            notional = aligned[notional_column].to_numpy(dtype=np.float64)
        else:
            notional = np.ones(count)
        usable = np.isfinite(prices) & np.isfinite(notional) & (notional > 0)
        usable &= (prices >= price_low) & (prices < price_high)
        if not usable.any():
            continue
        found = True
        row_of_bar = np.searchsorted(edges, prices[usable], side="right") - 1
        np.maximum.at(grid, (row_of_bar, column_of_bar[usable]), notional[usable])
    if not found:
        return None
    grid[grid == 0] = np.nan
    centres = (edges[:-1] + edges[1:]) / 2
    return plot_times(index[::bucket]), centres, grid.astype(np.float32)


def density_heatmap(
    heatmap: pd.DataFrame, index: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """:func:`density_grid` with the column edges as plot strings (for plotly)."""
    grid = density_grid(heatmap, index)
    if grid is None:
        return None
    edges, centres, values, width = grid
    return plot_times(edges), centres, values, width


def density_grid(
    heatmap: pd.DataFrame, index: pd.DatetimeIndex
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, float] | None:
    """Pivot ``Results.heatmap`` into a time x price grid of long + short notional.

    A snapshot taken at the bar opening at ``t`` is the density after that bar closed, so its
    column starts at ``t + bar`` and lasts until the next snapshot's column (the last one until
    the end of the candles): every candle sits on the density known when it opened.

    Parameters
    ----------
    heatmap : DataFrame
        ``time``, ``price``, ``long_notional``, ``short_notional`` (long format).
    index : DatetimeIndex
        The candles' open times (for the bar length and the end of the last column).

    Returns
    -------
    (x, y, z, bin_width) or None
        Column edges (one more than columns), bin centres, the grid in millions of quote
        currency (rows = prices, NaN where empty) and the bin width; None without density.
    """
    needed = {"time", "price", "long_notional", "short_notional"}
    if heatmap.empty or not needed <= set(heatmap.columns) or len(index) < 2:
        return None
    total = heatmap["long_notional"].to_numpy(dtype=np.float64) + heatmap[
        "short_notional"
    ].to_numpy(dtype=np.float64)
    grid = pd.DataFrame(
        {"time": pd.to_datetime(heatmap["time"], utc=True), "price": heatmap["price"], "z": total}
    ).pivot_table(index="price", columns="time", values="z", aggfunc="sum")
    if grid.empty or grid.shape[0] < 2:
        return None
    times = pd.DatetimeIndex(grid.columns)
    opens = pd.DatetimeIndex(pd.to_datetime(index, utc=True))
    bar = pd.Timedelta((opens[1:] - opens[:-1]).median())
    starts = times + bar
    step = starts[-1] - starts[-2] if len(starts) >= 2 else bar
    end = opens[-1] + bar
    last = end if end > starts[-1] else starts[-1] + step
    edges = starts.append(pd.DatetimeIndex([last]))
    values = grid.to_numpy(dtype=np.float64) / 1e6
    values[~(values > 0)] = np.nan
    if not np.isfinite(values).any():
        return None
    centres = grid.index.to_numpy(dtype=np.float64)
    width = float(np.median(np.diff(centres)))
    return edges, centres, values.astype(np.float32), width


def price_range(
    market: pd.DataFrame, clusters: pd.DataFrame, equity: pd.DataFrame | None = None
) -> tuple[float, float]:
    """Return the price span to draw: the candles' range widened to nearby cluster prices.

    With ``equity``, the span also covers every positive own liquidation price, so the
    strategy's liquidation line is always inside the chart (a 1x long's, at or below zero, is
    unreachable and not drawn).
    """
    low = float(market["low"].min())
    high = float(market["high"].max())
    if equity is not None and "liquidation_price" in equity.columns:
        own = equity["liquidation_price"].to_numpy(dtype=np.float64)
        own = own[np.isfinite(own) & (own > 0.0)]
        if own.size:
            low, high = min(low, float(own.min())), max(high, float(own.max()))
    prices = [
        clusters[column].to_numpy(dtype=np.float64)
        for column in ("long_cluster_price", "short_cluster_price")
        if column in clusters.columns
    ]
    if prices:
        values = np.concatenate(prices)
        values = values[np.isfinite(values)]
        values = values[(values > low * 0.85) & (values < high * 1.15)]
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    margin = (high - low) * 0.02
    return low - margin, high + margin


def _add_open_trades(figure: go.Figure, open_trades: pd.DataFrame | None, currency: str) -> None:
    """Mark each trade still open at the end: its entry and, at the last bar, its open PnL."""
    needed = {"entry_time", "entry_price", "exit_time", "exit_price", "side", "pnl_net"}
    if open_trades is None or open_trades.empty or not needed <= set(open_trades.columns):
        return
    pnl = open_trades["pnl_net"].to_numpy(dtype=np.float64)
    sides = open_trades["side"].astype(str).to_numpy()
    figure.add_trace(
        go.Scatter(
            x=plot_times(open_trades["entry_time"]),
            y=open_trades["entry_price"],
            mode="markers",
            name="Open trade entry",
            marker={
                "symbol": np.where(sides == "long", "triangle-up", "triangle-down"),
                "size": 11,
                "color": np.where(sides == "long", UP, DOWN),
                "line": {"color": "#263238", "width": 1.5},
            },
            hovertemplate="open trade entry %{y:,.2f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=plot_times(open_trades["exit_time"]),
            y=open_trades["exit_price"],
            mode="markers",
            name="Open at end",
            marker={
                "symbol": "diamond-open",
                "size": 13,
                "color": np.where(pnl > 0, UP, DOWN),
                "line": {"width": 2.5},
            },
            customdata=np.column_stack([pnl, sides]),
            hovertemplate=(
                "still open (%{customdata[1]}) at %{y:,.2f}<br>unrealised net PnL "
                f"%{{customdata[0]:,.2f}} {escape(currency)}<extra></extra>"
            ),
        ),
        row=1,
        col=1,
    )


def _trade_markers(trades: pd.DataFrame) -> pd.DataFrame:
    if len(trades) <= MAX_TRADE_MARKERS or "pnl_net" not in trades.columns:
        return trades
    largest = trades["pnl_net"].abs().nlargest(MAX_TRADE_MARKERS).index
    return trades.loc[trades.index.isin(largest)]


def _add_density(
    figure: go.Figure,
    density: tuple[np.ndarray, np.ndarray, np.ndarray, float],
    currency: str,
    notes: list[str],
) -> None:
    """Draw the stored density snapshots behind the candles."""
    x, y, z, width = density
    finite = z[np.isfinite(z)]
    top = float(np.quantile(finite, DENSITY_SATURATION)) if finite.size else 1.0
    unit = f"M {escape(currency)}"
    figure.add_trace(
        go.Heatmap(
            x=x,
            y=y,
            z=z,
            zmin=0.0,
            zmax=top if top > 0 else None,
            colorscale=DENSITY_SCALE,
            zsmooth=False,
            name="Liquidation density",
            hovertemplate=(
                f"from %{{x}}<br>price %{{y:,.0f}}<br>density %{{z:,.2f}} {unit}<extra>map</extra>"
            ),
            colorbar={
                "title": {"text": f"liquidation<br>density<br>[{unit}<br>per bin]"},
                "len": 0.3,
                "y": 1.0,
                "yanchor": "top",
                "thickness": 12,
            },
            showlegend=True,
        ),
        row=1,
        col=1,
    )
    notes.append(
        f"Heatmap: the liquidation map's estimated density (long + short notional whose "
        f"liquidation price lies in each {width:,.0f}-wide price bin) at {len(x) - 1:,} "
        "regularly spaced snapshot bars, each drawn from the close of its bar until the next "
        "snapshot, so a candle sits on the density known when it opened. Colours saturate at "
        "the 99.5th percentile."
    )


def _add_cluster_heatmap(
    figure: go.Figure,
    clusters: pd.DataFrame,
    index: pd.DatetimeIndex,
    low: float,
    high: float,
    currency: str,
    notes: list[str],
) -> None:
    """Draw each bar's nearest clusters (runs saved without density snapshots)."""
    heat = cluster_heatmap(clusters, index, low, high)
    if heat is not None:
        x, y, z = heat
        figure.add_trace(
            go.Heatmap(
                x=x,
                y=y,
                z=z,
                colorscale=HEAT_SCALE,
                zsmooth=False,
                name="Liquidation clusters",
                hovertemplate=(
                    "%{x}<br>cluster near %{y:,.0f}<br>notional %{z:,.3s} "
                    f"{escape(currency)}<extra>map</extra>"
                ),
                colorbar={
                    "title": {"text": f"cluster<br>notional<br>[{escape(currency)}]"},
                    "len": 0.3,
                    "y": 1.0,
                    "yanchor": "top",
                    "thickness": 12,
                },
                showlegend=True,
            ),
            row=1,
            col=1,
        )
        notes.append(
            "Heatmap: the liquidation map's nearest long and short cluster of each bar (price and "
            "notional), binned by time and price. This run was saved without density snapshots, "
            "so clusters beyond the nearest ones are not drawn; re-run it to see the full map."
        )
    elif not clusters.empty:
        notes.append("The map's outputs hold no cluster prices: no heatmap is drawn.")
    else:
        notes.append("This run used no liquidation map: no heatmap is drawn.")


def _add_price(figure: go.Figure, results: Any, currency: str, notes: list[str]) -> None:
    market: pd.DataFrame = results.market
    if market.empty or not {"open", "high", "low", "close"} <= set(market.columns):
        notes.append("No candles were saved with this run: the price panel is empty.")
        return
    clusters: pd.DataFrame = results.clusters
    equity: pd.DataFrame = results.equity
    low, high = price_range(market, clusters, equity)
    density = density_heatmap(getattr(results, "heatmap", pd.DataFrame()), market.index)
    if density is not None:
        _add_density(figure, density, currency, notes)
    else:
        _add_cluster_heatmap(figure, clusters, market.index, low, high, currency, notes)

    candles, factor = merge_candles(market)
    if factor > 1:
        notes.append(
            f"Candles are merged by {factor} for drawing ({len(candles):,} of {len(market):,}); "
            "zoom shows the same merged candles, metrics use every bar."
        )
    figure.add_trace(
        go.Candlestick(
            x=plot_times(candles.index),
            open=candles["open"],
            high=candles["high"],
            low=candles["low"],
            close=candles["close"],
            name="Price",
            increasing={"line": {"color": UP, "width": 1}, "fillcolor": UP},
            decreasing={"line": {"color": DOWN, "width": 1}, "fillcolor": DOWN},
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    if "liquidation_price" in equity.columns and equity["liquidation_price"].notna().any():
        line = liquidation_line(equity)
        line = line.where(line > 0.0)  # at or below zero: unreachable, not a price to draw
        figure.add_trace(
            go.Scatter(
                x=plot_times(line.index),
                y=line.to_numpy(),
                mode="lines",
                name="Own liquidation price",
                line={"color": LIQUIDATION_LINE, "width": 1.2, "dash": "dot"},
                connectgaps=False,
                hovertemplate="liquidation price %{y:,.2f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    trades = _trade_markers(results.trades)
    if len(trades) < len(results.trades):
        notes.append(
            f"Markers show the {len(trades):,} largest of {len(results.trades):,} trades; "
            "trades.csv lists all."
        )
    if not trades.empty and {"entry_time", "entry_price", "side"} <= set(trades.columns):
        for side, symbol, color in (
            ("long", "triangle-up", UP),
            ("short", "triangle-down", DOWN),
        ):
            chosen = trades[trades["side"] == side]
            if chosen.empty:
                continue
            figure.add_trace(
                go.Scatter(
                    x=plot_times(chosen["entry_time"]),
                    y=chosen["entry_price"],
                    mode="markers",
                    name=f"{side.title()} entry",
                    marker={
                        "symbol": symbol,
                        "size": 11,
                        "color": color,
                        "line": {"color": "#ffffff", "width": 1},
                    },
                    customdata=np.column_stack([chosen["size"]]),
                    hovertemplate=(
                        f"{side} entry %{{y:,.2f}}<br>size %{{customdata[0]:.4f}}<extra></extra>"
                    ),
                ),
                row=1,
                col=1,
            )
        if {"exit_time", "exit_price", "pnl_net"} <= set(trades.columns):
            closed = trades
            if "liquidated" in trades.columns:
                closed = trades[~trades["liquidated"].astype(bool)]
            if not closed.empty:
                won = closed["pnl_net"].to_numpy(dtype=np.float64) > 0
                figure.add_trace(
                    go.Scatter(
                        x=plot_times(closed["exit_time"]),
                        y=closed["exit_price"],
                        mode="markers",
                        name="Exit",
                        marker={
                            "symbol": "circle",
                            "size": 8,
                            "color": np.where(won, UP, DOWN),
                            "line": {"color": "#263238", "width": 1},
                        },
                        customdata=np.column_stack([closed["pnl_net"], closed["side"].astype(str)]),
                        hovertemplate=(
                            "exit %{customdata[1]} %{y:,.2f}<br>net PnL %{customdata[0]:,.2f} "
                            f"{escape(currency)}<extra></extra>"
                        ),
                    ),
                    row=1,
                    col=1,
                )
    _add_open_trades(figure, getattr(results, "open_trades", None), currency)
    liquidations: pd.DataFrame = results.liquidations
    if not liquidations.empty and {"time", "fill_price"} <= set(liquidations.columns):
        loss = liquidations["loss"] if "loss" in liquidations.columns else np.nan
        figure.add_trace(
            go.Scatter(
                x=plot_times(liquidations["time"]),
                y=liquidations["fill_price"],
                mode="markers",
                name="Own liquidation",
                marker={
                    "symbol": "x",
                    "size": 15,
                    "color": LIQUIDATION,
                    "line": {"color": "#ffffff", "width": 1.5},
                },
                customdata=np.column_stack([np.broadcast_to(loss, len(liquidations))]),
                hovertemplate=(
                    "LIQUIDATED at %{y:,.2f}<br>loss %{customdata[0]:,.2f} "
                    f"{escape(currency)}<extra></extra>"
                ),
            ),
            row=1,
            col=1,
        )
    near: pd.DataFrame = results.near_misses
    if not near.empty and {"time", "price"} <= set(near.columns):
        figure.add_trace(
            go.Scatter(
                x=plot_times(near["time"]),
                y=near["price"],
                mode="markers",
                name="Near-miss",
                marker={"symbol": "diamond-open", "size": 7, "color": NEAR_MISS},
                hovertemplate="near-miss %{y:,.2f}<extra></extra>",
                visible="legendonly" if len(near) > 500 else True,
            ),
            row=1,
            col=1,
        )
    figure.update_yaxes(range=[low, high], row=1, col=1)


def _line(series: pd.Series, name: str, color: str, **extra: Any) -> go.Scatter:
    thin = thin_series(series)
    return go.Scatter(
        x=plot_times(thin.index),
        y=thin.to_numpy(dtype=np.float64),
        mode="lines",
        name=name,
        line={"color": color, "width": extra.pop("width", 1.5), **extra.pop("line", {})},
        **extra,
    )


def main_figure(
    results: Any, currency: str, map_lines: Sequence[str] = ()
) -> tuple[go.Figure, list[str]]:
    """Return the stacked main chart and the notes to print under it.

    Parameters
    ----------
    results : backtest.results.Results
        The run.
    currency : str
        Quote currency for labels.
    map_lines : sequence of str
        Columns of ``results.clusters`` (the map lines the strategy reads, e.g.
        ``long_band_notional``, ``cascade_risk``) drawn as one panel each under the price chart
        (:func:`check_map_lines` validates them).
    """
    notes: list[str] = []
    extra = len(map_lines)
    figure = make_subplots(
        rows=5 + extra,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.025 if not extra else 0.018,
        row_heights=[0.42, *([0.08] * extra), 0.17, 0.11, 0.15, 0.15],
        specs=[[{}], *([[{}]] * extra), [{}], [{}], [{}], [{"secondary_y": True}]],
        subplot_titles=(
            "Price, trades and liquidation clusters",
            *(f"Map: {name}" for name in map_lines),
            f"Equity [{escape(currency)}]",
            "Drawdown [%]",
            f"PnL by source [{escape(currency)}]",
            "Exposure (notional / equity) [x] and margin use [%]",
        ),
    )
    _add_price(figure, results, currency, notes)
    _add_map_lines(figure, results.clusters, map_lines)
    equity: pd.DataFrame = results.equity
    if not equity.empty and "value" in equity.columns:
        value = equity["value"].astype(np.float64)
        figure.add_trace(
            _line(value, "Equity", EQUITY, hovertemplate="equity %{y:,.2f}<extra></extra>"),
            row=2 + extra,
            col=1,
        )
        market = results.market
        if not market.empty and "close" in market.columns:
            closes = market["close"].reindex(equity.index).ffill()
            first = closes.dropna()
            if not first.empty:
                benchmark = value.iloc[0] * closes / first.iloc[0]
                figure.add_trace(
                    _line(
                        benchmark,
                        "Buy & hold",
                        BENCHMARK,
                        width=1.2,
                        line={"dash": "dash"},
                        hovertemplate="buy & hold %{y:,.2f}<extra></extra>",
                    ),
                    row=2 + extra,
                    col=1,
                )
        peaks = value.cummax()
        drawdown = (value / peaks - 1.0) * 100.0
        figure.add_trace(
            _line(
                drawdown,
                "Drawdown",
                DOWN,
                width=1,
                fill="tozeroy",
                fillcolor="rgba(239, 83, 80, 0.25)",
                hovertemplate="drawdown %{y:.2f}%<extra></extra>",
                showlegend=False,
            ),
            row=3 + extra,
            col=1,
        )
        start = value.iloc[0]
        funding = _relative(equity, "funding_cum")
        fees = _relative(equity, "fees_cum")
        trading = value - start + funding + fees
        for series, name, color in (
            (trading, "Trading PnL", EQUITY),
            (-funding, "Funding PnL", "#00897b"),
            (-fees, "Fees", "#e65100"),
        ):
            figure.add_trace(
                _line(series, name, color, hovertemplate=f"{name} %{{y:,.2f}}<extra></extra>"),
                row=4 + extra,
                col=1,
            )
        if "effective_leverage" in equity.columns:
            figure.add_trace(
                _line(
                    equity["effective_leverage"].astype(np.float64),
                    "Exposure",
                    "#5e35b1",
                    width=1.2,
                    hovertemplate="exposure %{y:.2f}x<extra></extra>",
                ),
                row=5 + extra,
                col=1,
            )
        if "margin_used" in equity.columns:
            with np.errstate(divide="ignore", invalid="ignore"):
                share = equity["margin_used"].astype(np.float64) / value.where(value > 0) * 100
            figure.add_trace(
                _line(
                    share,
                    "Margin use",
                    "#90a4ae",
                    width=1,
                    fill="tozeroy",
                    fillcolor="rgba(144, 164, 174, 0.2)",
                    hovertemplate="margin use %{y:.1f}%<extra></extra>",
                ),
                row=5 + extra,
                col=1,
                secondary_y=True,
            )
        if len(equity) > len(thin_series(equity["value"])):
            notes.append(
                f"Lines keep each bucket's extremes for drawing ({len(equity):,} bars); "
                "metrics, equity.csv and the tables use every bar."
            )
    figure.update_layout(
        template="plotly_white",
        height=1350 + 160 * extra,
        margin={"l": 70, "r": 40, "t": 110, "b": 40},
        hovermode="x",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.015, "x": 0.0},
        xaxis_rangeslider_visible=False,
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    )
    figure.update_yaxes(title_text="price", tickformat=",.0f", row=1, col=1)
    figure.update_yaxes(tickformat=",.0f", row=2 + extra, col=1)
    figure.update_yaxes(ticksuffix="%", row=3 + extra, col=1)
    figure.update_yaxes(tickformat=",.0f", row=4 + extra, col=1)
    figure.update_yaxes(ticksuffix="x", rangemode="tozero", row=5 + extra, col=1)
    figure.update_yaxes(
        ticksuffix="%",
        rangemode="tozero",
        showgrid=False,
        tickmode="auto",
        nticks=4,
        row=5 + extra,
        col=1,
        secondary_y=True,
    )
    figure.update_xaxes(showspikes=True, spikemode="across", spikethickness=1)
    return figure, notes


def check_map_lines(clusters: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """The requested map lines, checked against the run's map columns.

    Raises
    ------
    ConfigError
        For a name the run's map did not record (the message lists those it did).
    """
    from backtest.errors import ConfigError

    wanted = [name.strip() for name in names if name and name.strip()]
    unknown = [name for name in wanted if name not in clusters.columns]
    if unknown:
        available = ", ".join(clusters.columns) or "none (the run used no map)"
        raise ConfigError(
            f"--map-lines {', '.join(unknown)}: not a line of this run's map; it has {available}"
        )
    return list(dict.fromkeys(wanted))


def _add_map_lines(figure: go.Figure, clusters: pd.DataFrame, names: Sequence[str]) -> None:
    """One panel per map line, under the price chart (thinned like the other lines)."""
    colours = ("#6a1b9a", "#00838f", "#ef6c00", "#2e7d32", "#ad1457", "#455a64")
    for number, name in enumerate(names):
        series = clusters[name].astype(np.float64)
        figure.add_trace(
            _line(
                series,
                name,
                colours[number % len(colours)],
                width=1.1,
                hovertemplate=f"{escape(name)} %{{y:,.4g}}<extra></extra>",
            ),
            row=2 + number,
            col=1,
        )


def _relative(equity: pd.DataFrame, column: str) -> pd.Series:
    if column not in equity.columns:
        return pd.Series(0.0, index=equity.index)
    series = equity[column].astype(np.float64).ffill().fillna(0.0)
    return series - series.iloc[0]


def trades_figure(results: Any, currency: str) -> go.Figure | None:
    """Return a bar chart of each trade's net PnL at its exit time (None without trades)."""
    trades: pd.DataFrame = results.trades
    if trades.empty or not {"exit_time", "pnl_net"} <= set(trades.columns):
        return None
    pnl = trades["pnl_net"].to_numpy(dtype=np.float64)
    liquidated = (
        trades["liquidated"].astype(bool).to_numpy()
        if "liquidated" in trades.columns
        else np.zeros(len(trades), dtype=bool)
    )
    colors = np.where(liquidated, LIQUIDATION, np.where(pnl > 0, UP, DOWN))
    exits = plot_times(trades["exit_time"])
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Bar(
            x=exits,
            y=pnl,
            marker={"color": colors},
            name="Net PnL per trade",
            customdata=np.column_stack(
                [trades.get("side", pd.Series([""] * len(trades))).astype(str), liquidated]
            ),
            hovertemplate=(
                "%{customdata[0]} closed %{x}<br>net %{y:,.2f} "
                f"{escape(currency)}<br>liquidated: %{{customdata[1]}}<extra></extra>"
            ),
        )
    )
    order = np.argsort(pd.to_datetime(trades["exit_time"], utc=True).to_numpy(), kind="stable")
    figure.add_trace(
        go.Scatter(
            x=exits[order],
            y=np.cumsum(pnl[order]),
            mode="lines",
            name="Cumulative",
            line={"color": EQUITY, "width": 1.5, "shape": "hv"},
            hovertemplate="cumulative %{y:,.2f}<extra></extra>",
        ),
        secondary_y=True,
    )
    figure.update_layout(
        template="plotly_white",
        height=320,
        margin={"l": 70, "r": 70, "t": 30, "b": 40},
        legend={"orientation": "h", "y": 1.1, "x": 0.0},
        bargap=0.2,
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    )
    figure.update_yaxes(title_text=f"net PnL [{escape(currency)}]", tickformat=",.0f")
    figure.update_yaxes(
        title_text="cumulative",
        tickformat=",.0f",
        showgrid=False,
        tickmode="auto",
        nticks=5,
        secondary_y=True,
    )
    return figure
