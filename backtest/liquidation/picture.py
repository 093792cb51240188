"""The liquidation map as a picture: candles over the estimated density, and a profile.

:func:`build_picture` turns a candle frame and the map's density snapshots into a
:class:`MapPicture` (plain arrays: the densities re-bucketed from the map's log-spaced buckets
to round dollar bins, the profile at ``at``, round levels, the strongest clusters);
:func:`render_png` draws it with matplotlib (Agg) and :func:`render_html` with plotly, the
plotly.js library embedded so the page works offline.

Time semantics: a snapshot taken at the bar that opens at ``t`` is the density after that
bar closed, so its column starts at ``t + bar`` and lasts until the next snapshot's close (one
bar when every bar has a snapshot): every candle sits on the density it met when it opened.
The profile "at" a time is the density after the last bar that closed at or before it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtest.errors import DataError
from backtest.liquidation import levels
from backtest.liquidation.cascade import CascadeResult

FloatArray = npt.NDArray[np.float64]

#: Colours shared by both renderings.
LONG_COLOUR = "#e0464e"  # longs liquidated on the way down: forced sells
SHORT_COLOUR = "#2fb380"  # shorts liquidated on the way up: forced buys
UP_CANDLE = "#f2f2f2"
DOWN_CANDLE = "#ff5a5f"
COLOUR_MAP = "viridis"
#: Share of the colour scale given to the largest cells: the scale saturates at this quantile.
SATURATION_QUANTILE = 0.995


@dataclass(frozen=True, slots=True)
class Cluster:
    """A local maximum of the liquidation profile.

    Attributes
    ----------
    side : str
        ``"long"`` (below the price: liquidated by a drop) or ``"short"`` (above it).
    price : float
        Centre of the peak bin.
    notional : float
        Notional within the peak bin and its two neighbours (quote currency).
    distance_pct : float
        Signed distance from the price at ``at``, in percent.
    """

    side: str
    price: float
    notional: float
    distance_pct: float


@dataclass(frozen=True)
class MapPicture:
    """Everything the renderers draw, as plain arrays (no plotting objects)."""

    symbol: str
    exchange: str
    timeframe: str
    candles: pd.DataFrame
    bar: pd.Timedelta
    column_edges: pd.DatetimeIndex
    price_edges: FloatArray
    long_density: FloatArray
    short_density: FloatArray
    at: pd.Timestamp
    price_at: float
    profile_long: FloatArray
    profile_short: FloatArray
    round_levels: FloatArray
    major_levels: FloatArray
    clusters: tuple[Cluster, ...]
    band_pct: float
    cascades: tuple[CascadeResult, ...] = field(default=())

    @property
    def bin_step(self) -> float:
        """Width of one price bin (quote currency)."""
        return float(self.price_edges[1] - self.price_edges[0])

    @property
    def bin_centres(self) -> FloatArray:
        """Centre price of every bin."""
        return 0.5 * (self.price_edges[:-1] + self.price_edges[1:])

    @property
    def quote(self) -> str:
        """Quote currency of the symbol (the unit of every notional)."""
        return quote_currency(self.symbol)


def quote_currency(symbol: str) -> str:
    """Return the quote currency of a ccxt symbol: ``"BTC/USDT:USDT"`` -> ``"USDT"``."""
    if "/" not in symbol:
        return "quote"
    return symbol.split("/", 1)[1].split(":", 1)[0]


def format_notional(value: float) -> str:
    """Short human form of a notional: ``42.1 M``, ``1.25 B``, ``850 k``."""
    size = abs(value)
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= threshold:
            scaled = value / threshold
            return f"{scaled:.3g} {suffix}" if abs(scaled) < 100 else f"{scaled:.0f} {suffix}"
    return f"{value:.0f}"


def nice_step(span: float, rows: int) -> float:
    """Round bin width (1, 2 or 5 times a power of ten) giving about ``rows`` bins over ``span``."""
    if not (span > 0 and rows > 0):
        raise ValueError(f"span and rows must be positive, got {span} and {rows}")
    raw = span / rows
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1.0, 2.0, 5.0, 10.0):
        if raw <= multiple * power * 1.0000001:
            return multiple * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def rebucket(snapshot: Any, price_edges: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Re-bucket a snapshot's log-spaced density onto the given price bins.

    Each log bucket's notional is spread uniformly over its price span, so a dollar bin that
    overlaps part of a bucket gets that part (no aliasing stripes when bins and buckets have
    similar widths).  Notional outside the bins is dropped.

    Parameters
    ----------
    snapshot : DensitySnapshot
        ``log_price_min``, ``log_step``, ``long_notional``, ``short_notional``.
    price_edges : ndarray
        Increasing bin edges.

    Returns
    -------
    tuple of ndarray
        Long and short notional per bin (``len(price_edges) - 1`` values each).
    """
    long_notional = np.asarray(snapshot.long_notional, dtype=np.float64)
    short_notional = np.asarray(snapshot.short_notional, dtype=np.float64)
    n = long_notional.shape[0]
    bucket_edges = np.exp(snapshot.log_price_min + snapshot.log_step * np.arange(n + 1))
    result = []
    for density in (long_notional, short_notional):
        cumulative = np.concatenate(([0.0], np.cumsum(density)))
        at_edges = np.interp(price_edges, bucket_edges, cumulative)
        result.append(np.diff(at_edges))
    return result[0], result[1]


def find_clusters(
    centres: FloatArray,
    long_profile: FloatArray,
    short_profile: FloatArray,
    price: float,
    band_pct: float,
    count: int = 3,
) -> tuple[Cluster, ...]:
    """The strongest local maxima of the profile within ``band_pct`` of ``price``, per side.

    A peak is a local maximum of the profile smoothed with the kernel (1, 2, 1) (the last bin
    of a flat top); its notional is the sum of the peak bin and its two neighbours.  Long
    clusters are searched below the price, short clusters above, each ranked by notional.
    """
    clusters: list[Cluster] = []
    low, high = price * (1 - band_pct / 100), price * (1 + band_pct / 100)
    for side, profile, in_side in (
        ("long", long_profile, (centres < price) & (centres >= low)),
        ("short", short_profile, (centres > price) & (centres <= high)),
    ):
        window = np.convolve(profile, np.ones(3), mode="same")
        smooth = np.convolve(profile, (1.0, 2.0, 1.0), mode="same")
        left = np.concatenate(([-np.inf], smooth[:-1]))
        right = np.concatenate((smooth[1:], [-np.inf]))
        peaks = np.flatnonzero(in_side & (smooth > 0) & (smooth >= left) & (smooth > right))
        ranked = peaks[np.argsort(window[peaks])[::-1]][:count]
        clusters.extend(
            Cluster(
                side,
                float(centres[i]),
                float(window[i]),
                levels.distance_pct(price, float(centres[i])),
            )
            for i in ranked
        )
    return tuple(clusters)


def _snapshot_time(snapshot: Any) -> pd.Timestamp:
    time = pd.Timestamp(snapshot.time)
    return time.tz_localize("UTC") if time.tzinfo is None else time.tz_convert("UTC")


def build_picture(
    candles: pd.DataFrame,
    snapshots: Sequence[Any],
    at: pd.Timestamp,
    *,
    symbol: str,
    exchange: str,
    timeframe: str,
    band_pct: float = 10.0,
    cascades: Sequence[CascadeResult] = (),
    rows: int = 220,
    margin_pct: float = 2.0,
) -> MapPicture:
    """Assemble the picture's arrays.

    Parameters
    ----------
    candles : pandas.DataFrame
        The bars to draw (UTC ``DatetimeIndex`` of open times; open, high, low, close).
    snapshots : sequence of DensitySnapshot
        In time order, each with ``time`` = the open time of the bar after which it was
        taken (one per bar, or one every few bars).
    at : pandas.Timestamp
        Time of the profile; the snapshot of the last bar that closed at or before it is used.
    symbol, exchange, timeframe : str
        For titles and units.
    band_pct : float
        Search band for the clusters around the price at ``at``, in percent.
    cascades : sequence of CascadeResult
        Cascades simulated from the profile (shown as text).
    rows : int
        About how many round-dollar price bins to use.
    margin_pct : float
        Price margin above the highest high and below the lowest low, in percent.

    Returns
    -------
    MapPicture
    """
    if candles.empty or not snapshots:
        raise DataError("nothing to draw: the window holds no bars; widen --window or move --at")
    bar = pd.Timedelta(candles.index[1] - candles.index[0]) if len(candles) > 1 else None
    if bar is None:
        raise DataError("the window holds a single bar; widen --window")
    at = pd.Timestamp(at)
    times = pd.DatetimeIndex([_snapshot_time(snapshot) for snapshot in snapshots])
    closes = times + bar
    last_width = closes[-1] - closes[-2] if len(closes) > 1 else bar
    column_edges = closes.append(pd.DatetimeIndex([closes[-1] + last_width]))
    closed = np.flatnonzero(closes <= at)
    if closed.size == 0:
        raise DataError(f"no bar closed at or before {at:%Y-%m-%d %H:%M} UTC inside the window")
    profile_snapshot = snapshots[int(closed[-1])]
    price_at = float(profile_snapshot.price)

    band_low = price_at * (1 - band_pct / 100)
    band_high = price_at * (1 + band_pct / 100)
    low = min(float(candles["low"].min()), band_low) * (1 - margin_pct / 100)
    high = max(float(candles["high"].max()), band_high) * (1 + margin_pct / 100)
    step = nice_step(high - low, rows)
    price_edges = np.arange(math.floor(low / step), math.ceil(high / step) + 1) * step

    long_density = np.empty((len(snapshots), price_edges.size - 1))
    short_density = np.empty_like(long_density)
    for row, snapshot in enumerate(snapshots):
        long_density[row], short_density[row] = rebucket(snapshot, price_edges)
    profile_long = long_density[int(closed[-1])]
    profile_short = short_density[int(closed[-1])]
    clusters = find_clusters(
        0.5 * (price_edges[:-1] + price_edges[1:]),
        profile_long,
        profile_short,
        price_at,
        band_pct,
    )
    return MapPicture(
        symbol=symbol,
        exchange=exchange,
        timeframe=timeframe,
        candles=candles[["open", "high", "low", "close"]],
        bar=bar,
        column_edges=column_edges,
        price_edges=price_edges,
        long_density=long_density,
        short_density=short_density,
        at=at,
        price_at=price_at,
        profile_long=profile_long,
        profile_short=profile_short,
        round_levels=levels.levels_between(price_edges[0], price_edges[-1]),
        major_levels=levels.levels_between(price_edges[0], price_edges[-1], major=True),
        clusters=clusters,
        band_pct=band_pct,
        cascades=tuple(cascades),
    )


def _title(picture: MapPicture) -> str:
    return (
        f"{picture.symbol} · {picture.exchange} · {picture.timeframe} — estimated liquidation "
        f"map, profile at {picture.at:%Y-%m-%d %H:%M} UTC (price {picture.price_at:,.2f})"
    )


def _cascade_lines(picture: MapPicture) -> list[str]:
    lines = []
    for result in picture.cascades:
        shock = (result.shock_price / result.start_price - 1) * 100
        runaway = " — runaway" if result.runaway else ""
        lines.append(
            f"{shock:+.1f} % shock → {result.end_price:,.0f} ({result.move_pct:+.2f} %, "
            f"×{result.amplification:.2f}, {format_notional(result.liquidated_notional)} "
            f"{picture.quote} liquidated){runaway}"
        )
    return lines


def _colour_limit(total: FloatArray) -> float:
    positive = total[total > 0]
    if positive.size == 0:
        return 1.0
    return float(np.quantile(positive, SATURATION_QUANTILE))


def render_png(picture: MapPicture, path: str | Path, *, dpi: int = 110) -> Path:
    """Draw the picture with matplotlib (Agg backend) and write a PNG.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    path = Path(path)
    scale = 1e6
    unit = f"M {picture.quote}"
    total = (picture.long_density + picture.short_density) / scale
    figure = plt.figure(figsize=(17, 10), dpi=dpi, layout="constrained")
    grid = figure.add_gridspec(1, 2, width_ratios=(4.0, 1.6))
    main = figure.add_subplot(grid[0, 0])
    profile = figure.add_subplot(grid[0, 1], sharey=main)

    # density behind the candles
    x_edges = mdates.date2num(picture.column_edges.to_pydatetime())
    mesh = main.pcolormesh(
        x_edges,
        picture.price_edges,
        total.T,
        cmap=COLOUR_MAP,
        vmin=0.0,
        vmax=_colour_limit(total),
        shading="flat",
        rasterized=True,
    )
    colour_bar = figure.colorbar(
        mesh, ax=main, location="bottom", pad=0.01, fraction=0.04, aspect=60, extend="max"
    )
    colour_bar.set_label(
        f"Estimated notional of open positions liquidated at that price, per "
        f"{picture.bin_step:,.0f} {picture.quote} bin [{unit}] (long + short; colours saturate "
        f"at the {SATURATION_QUANTILE:.1%} quantile)"
    )

    # candles
    candles = picture.candles
    times = mdates.date2num(candles.index.to_pydatetime())
    width = picture.bar / pd.Timedelta(days=1) * 0.7
    rising = (candles["close"] >= candles["open"]).to_numpy()
    for mask, colour in ((rising, UP_CANDLE), (~rising, DOWN_CANDLE)):
        main.vlines(
            times[mask],
            candles["low"].to_numpy()[mask],
            candles["high"].to_numpy()[mask],
            color=colour,
            linewidth=0.7,
        )
        bottoms = np.minimum(candles["open"], candles["close"]).to_numpy()[mask]
        heights = np.abs(candles["close"] - candles["open"]).to_numpy()[mask]
        main.bar(
            times[mask],
            np.maximum(heights, picture.price_at * 2e-5),
            width=width,
            bottom=bottoms,
            color=colour,
            edgecolor=colour,
            linewidth=0.3,
        )
    at_number = mdates.date2num(picture.at.to_pydatetime())
    main.axvline(at_number, color="white", linestyle="--", linewidth=1.0, alpha=0.9)
    main.text(
        at_number,
        picture.price_edges[-1],
        f" profile at {picture.at:%H:%M} UTC ",
        color="black",
        backgroundcolor="white",
        fontsize=9,
        va="top",
        ha="center",
    )
    for level in picture.major_levels:
        main.axhline(level, color="white", linewidth=0.5, alpha=0.25, linestyle=":")
    main.set_xlim(x_edges[0], x_edges[-1])
    main.set_ylim(picture.price_edges[0], picture.price_edges[-1])
    locator = mdates.AutoDateLocator(tz="UTC", minticks=6, maxticks=14)
    main.xaxis.set_major_locator(locator)
    main.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))
    main.set_xlabel("Time (UTC)")
    main.set_ylabel(f"Price [{picture.quote}]")
    main.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    main.set_title(_title(picture), fontsize=12, loc="left")

    # profile at `at`
    centres = picture.bin_centres
    profile.barh(
        centres,
        picture.profile_long / scale,
        height=picture.bin_step,
        color=LONG_COLOUR,
        label="longs (liquidated if price falls here: forced sells)",
    )
    profile.barh(
        centres,
        picture.profile_short / scale,
        height=picture.bin_step,
        color=SHORT_COLOUR,
        label="shorts (liquidated if price rises here: forced buys)",
    )
    profile_max = max(
        float(picture.profile_long.max(initial=0)), float(picture.profile_short.max(initial=0))
    )
    limit = (profile_max / scale) * 1.75 or 1.0
    profile.set_xlim(0, limit)
    for level in picture.round_levels:
        major = bool(np.isclose(picture.major_levels, level).any())
        profile.axhline(
            level,
            color="#555555" if major else "#bbbbbb",
            linewidth=0.9 if major else 0.5,
            zorder=0,
        )
    profile.axhline(picture.price_at, color="black", linestyle="--", linewidth=1.0)
    profile.text(
        limit * 0.98,
        picture.price_at,
        f"price {picture.price_at:,.0f}",
        ha="right",
        va="bottom",
        fontsize=8,
    )
    band = picture.band_pct / 100
    profile.axhspan(
        picture.price_at * (1 - band), picture.price_at * (1 + band), color="#f3f3f3", zorder=-1
    )
    for cluster in picture.clusters:
        colour = LONG_COLOUR if cluster.side == "long" else SHORT_COLOUR
        value = (picture.profile_long if cluster.side == "long" else picture.profile_short)[
            int(np.argmin(np.abs(centres - cluster.price)))
        ] / scale
        profile.annotate(
            f"{cluster.price:,.0f}  {format_notional(cluster.notional)}  "
            f"{cluster.distance_pct:+.1f} %",
            xy=(value, cluster.price),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=colour,
            fontweight="bold",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 0.5},
        )
        main.plot(
            [at_number],
            [cluster.price],
            marker="<",
            color=colour,
            markersize=7,
            markeredgecolor="white",
        )
    profile.set_xlabel(f"Notional per {picture.bin_step:,.0f} {picture.quote} bin [{unit}]")
    profile.set_title(
        f"Profile at {picture.at:%Y-%m-%d %H:%M} UTC\n"
        "grey lines: round levels (dark: major)\n"
        f"shaded: cluster search band ±{picture.band_pct:g} %",
        fontsize=9,
        loc="left",
    )
    profile.tick_params(axis="y", labelleft=False)
    cascade_text = _cascade_lines(picture)
    legend = profile.legend(
        loc="upper left",
        bbox_to_anchor=(0.0, -0.07),
        fontsize=8,
        frameon=False,
        title=("Cascade simulation from the profile:\n" + "\n".join(cascade_text))
        if cascade_text
        else None,
        title_fontsize=8,
    )
    legend._legend_box.align = "left"  # title flush left with the entries
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def render_html(picture: MapPicture, path: str | Path) -> Path:
    """Write an interactive, self-contained HTML page (plotly.js embedded; works offline).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    path = Path(path)
    scale = 1e6
    unit = f"M {picture.quote}"
    total = (picture.long_density + picture.short_density) / scale
    centres = picture.bin_centres
    edges = picture.column_edges
    column_centres = edges[:-1] + (edges[1:] - edges[:-1]) / 2
    figure = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        column_widths=(0.78, 0.22),
        horizontal_spacing=0.01,
        subplot_titles=(
            "",
            f"Profile at {picture.at:%Y-%m-%d %H:%M} UTC<br>"
            "<sup>grey lines: round levels (dark: major)</sup>",
        ),
    )
    figure.add_trace(
        go.Heatmap(
            x=column_centres,
            y=centres,
            z=np.round(total.T, 4),
            colorscale="Viridis",
            zmin=0.0,
            zmax=_colour_limit(total),
            colorbar={
                "title": {"text": f"{unit} per<br>{picture.bin_step:,.0f} bin", "side": "top"},
                "x": 1.01,
                "len": 0.9,
            },
            hovertemplate=(
                "%{x|%Y-%m-%d %H:%M} UTC<br>price %{y:,.0f}<br>"
                f"liquidations %{{z:.2f}} {unit}<extra></extra>"
            ),
            name="density",
        ),
        row=1,
        col=1,
    )
    candles = picture.candles
    figure.add_trace(
        go.Candlestick(
            x=candles.index,
            open=candles["open"],
            high=candles["high"],
            low=candles["low"],
            close=candles["close"],
            increasing={"line": {"color": UP_CANDLE, "width": 1}, "fillcolor": UP_CANDLE},
            decreasing={"line": {"color": DOWN_CANDLE, "width": 1}, "fillcolor": DOWN_CANDLE},
            name="price",
        ),
        row=1,
        col=1,
    )
    for name, values, colour in (
        ("longs (forced sells if price falls here)", picture.profile_long, LONG_COLOUR),
        ("shorts (forced buys if price rises here)", picture.profile_short, SHORT_COLOUR),
    ):
        figure.add_trace(
            go.Bar(
                x=np.round(values / scale, 4),
                y=centres,
                orientation="h",
                marker={"color": colour},
                width=picture.bin_step,
                name=name,
                hovertemplate=f"price %{{y:,.0f}}<br>%{{x:.2f}} {unit}<extra>{name}</extra>",
            ),
            row=1,
            col=2,
        )
    for level in picture.round_levels:
        major = bool(np.isclose(picture.major_levels, level).any())
        figure.add_hline(
            y=level,
            line={"color": "#666666" if major else "#cccccc", "width": 1 if major else 0.5},
            row=1,
            col=2,
        )
    figure.add_hline(
        y=picture.price_at,
        line={"color": "black", "dash": "dash", "width": 1},
        row=1,
        col=2,
        annotation_text=f"price {picture.price_at:,.0f}",
        annotation_position="top right",
    )
    figure.add_vline(
        x=picture.at, line={"color": "white", "dash": "dash", "width": 1}, row=1, col=1
    )
    for cluster in picture.clusters:
        profile = picture.profile_long if cluster.side == "long" else picture.profile_short
        figure.add_annotation(
            x=float(profile[int(np.argmin(np.abs(centres - cluster.price)))]) / scale,
            y=cluster.price,
            xref="x2",
            yref="y2",
            text=(
                f"{cluster.price:,.0f} · {format_notional(cluster.notional)} · "
                f"{cluster.distance_pct:+.1f} %"
            ),
            showarrow=False,
            xanchor="left",
            font={
                "size": 10,
                "color": LONG_COLOUR if cluster.side == "long" else SHORT_COLOUR,
            },
            bgcolor="rgba(255,255,255,0.8)",
        )
    subtitle = "<br>".join(_cascade_lines(picture))
    profile_limit = (
        1.75
        * max(
            float(picture.profile_long.max(initial=0.0)),
            float(picture.profile_short.max(initial=0.0)),
        )
        / scale
        or 1.0
    )
    figure.update_layout(
        title={"text": _title(picture) + (f"<br><sup>{subtitle}</sup>" if subtitle else "")},
        height=850,
        template="plotly_white",
        xaxis={"rangeslider": {"visible": False}, "title": "Time (UTC)"},
        xaxis2={
            "title": f"{unit} per {picture.bin_step:,.0f} bin",
            "range": [0, profile_limit],
        },
        yaxis={"title": f"Price [{picture.quote}]", "tickformat": ",.0f"},
        legend={"orientation": "h", "y": -0.08, "x": 0.6},
        bargap=0,
        barmode="overlay",
        margin={"l": 120},
    )
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path
