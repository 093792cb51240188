"""Performance metrics of one run, computed from its equity curve and trade list.

Every function here is pure: it reads arrays or frames and returns numbers, so a saved run can
be re-scored without re-running it.  :func:`compute_metrics` gathers them into one flat dict whose
keys carry their units (``"Return [%]"``, ``"Max. Drawdown Duration [h]"``, ``"Funding PnL
[USDT]"``; the currency is the run's settlement currency), in the order a report shows them.

Conventions
-----------
- Bar returns are simple returns of the account equity between consecutive bars.
- Annualisation uses crypto's calendar: markets trade 365 days a year, 24 hours a day, so a year
  holds ``365 * 24 * 3600 / bar_seconds`` bars; the bar length is inferred from the equity
  index (the median spacing of its timestamps).
- Ratios are reported as NaN, never as infinity, when their denominator is zero: Sharpe and
  the volatility-based ones on a flat curve, Sortino without a losing bar, Calmar without a
  drawdown, profit factor without a losing trade; and every metric needing at least two bars
  (or one trade) is NaN without them.  The JSON file writes NaN as ``null``.
- The risk-free rate is zero.
- Returns are measured from the first equity value of the curve; funding and fees are the
  changes of ``funding_cum`` and ``fees_cum`` over the same bars, so ``Net PnL = Trading PnL +
  Funding PnL - Fees`` holds exactly (trading PnL is price PnL, realised and open).
- "Time in Clusters" is the share of bars whose high-low range met the band (``+/-
  cluster_band_pct``, 0.5 % by default) around the long or short cluster price the liquidation
  map predicted at the bar before; NaN when the run used no map.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Seconds in a crypto year (365 days of 24 hours).
SECONDS_PER_YEAR = 365 * 24 * 3600

#: Bars whose range comes within this many percent of a predicted cluster count as inside it.
DEFAULT_CLUSTER_BAND_PCT = 0.5

#: A per-bar standard deviation below this is treated as zero (a flat or constant-growth curve).
_ZERO_VOLATILITY = 1e-12

#: Runs spanning fewer days than this get n/a for the figures that extrapolate their return to
#: a year (Return (Ann.), CAGR, Calmar): a week's return compounded 52 times says nothing.
MIN_ANNUALISED_DAYS = 30.0

#: The metrics :data:`MIN_ANNUALISED_DAYS` applies to.
EXTRAPOLATED_METRICS: tuple[str, ...] = ("Return (Ann.) [%]", "CAGR [%]", "Calmar")

#: "Max. Drawdown End" of a drawdown still open at the last bar.
NOT_RECOVERED = "not recovered"

Metric = float | int | str


# --------------------------------------------------------------------------- calendar


def infer_bar_seconds(index: pd.Index) -> float:
    """Return the bar length in seconds: the median spacing of a time index.

    Parameters
    ----------
    index : pandas.Index
        A DatetimeIndex (any resolution, naive or UTC).

    Returns
    -------
    float
        Median positive spacing in seconds; NaN with fewer than two timestamps or when the index
        is not made of times.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return math.nan
    nanoseconds = index.as_unit("ns").asi8
    steps = np.diff(nanoseconds)
    steps = steps[steps > 0]
    if steps.size == 0:
        return math.nan
    return float(np.median(steps)) / 1e9


def periods_per_year(bar_seconds: float) -> float:
    """Return how many bars of ``bar_seconds`` fit in a 365-day, 24-hour year (NaN if unknown)."""
    if not bar_seconds > 0:
        return math.nan
    return SECONDS_PER_YEAR / bar_seconds


# --------------------------------------------------------------------------- returns


def bar_returns(values: np.ndarray) -> np.ndarray:
    """Return simple returns ``v[i] / v[i-1] - 1`` of an equity series.

    Returns after a non-positive or non-finite value (an account wiped out) are dropped, so the
    result never holds infinities.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return np.empty(0)
    previous, current = values[:-1], values[1:]
    usable = np.isfinite(previous) & (previous > 0) & np.isfinite(current)
    return current[usable] / previous[usable] - 1.0


def total_return(values: np.ndarray) -> float:
    """Return ``last / first - 1`` (a fraction); NaN when empty or the start is not positive."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or not values[0] > 0:
        return math.nan
    return float(values[-1] / values[0] - 1.0)


def cagr(values: np.ndarray, years: float) -> float:
    """Return the compound annual growth rate ``(last / first) ** (1 / years) - 1``.

    NaN when ``years`` is not positive, the start is not positive, or the extrapolation of a
    very short run overflows.
    """
    growth = total_return(values) + 1.0
    if not (years > 0) or not np.isfinite(growth) or growth < 0:
        return math.nan
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        result = float(np.power(growth, 1.0 / years) - 1.0)
    return result if math.isfinite(result) else math.nan


def annualised_return(returns: np.ndarray, bars_per_year: float) -> float:
    """Return the arithmetic annualised return ``mean(r) * bars_per_year`` (NaN if no returns)."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.size == 0 or not bars_per_year > 0:
        return math.nan
    return float(returns.mean() * bars_per_year)


def annualised_volatility(returns: np.ndarray, bars_per_year: float) -> float:
    """Return ``std(r, ddof=1) * sqrt(bars_per_year)`` (NaN with fewer than two returns)."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.size < 2 or not bars_per_year > 0:
        return math.nan
    return float(returns.std(ddof=1) * math.sqrt(bars_per_year))


def sharpe_ratio(returns: np.ndarray, bars_per_year: float) -> float:
    """Return ``mean(r) / std(r, ddof=1) * sqrt(bars_per_year)``; NaN when volatility is zero."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.size < 2 or not bars_per_year > 0:
        return math.nan
    deviation = returns.std(ddof=1)
    if deviation < _ZERO_VOLATILITY:
        return math.nan
    return float(returns.mean() / deviation * math.sqrt(bars_per_year))


def sortino_ratio(returns: np.ndarray, bars_per_year: float) -> float:
    """Return ``mean(r) / sqrt(mean(min(r, 0)**2)) * sqrt(bars_per_year)``.

    The downside deviation is taken against a zero target over all bars (as empyrical does);
    NaN when no bar lost money.
    """
    returns = np.asarray(returns, dtype=np.float64)
    if returns.size < 2 or not bars_per_year > 0:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside < _ZERO_VOLATILITY:
        return math.nan
    return float(returns.mean() / downside * math.sqrt(bars_per_year))


def calmar_ratio(growth_rate: float, max_drawdown: float) -> float:
    """Return ``CAGR / |max drawdown|`` (both fractions); NaN without a drawdown."""
    if not math.isfinite(growth_rate) or not max_drawdown < 0:
        return math.nan
    return float(growth_rate / abs(max_drawdown))


# --------------------------------------------------------------------------- drawdowns


def drawdown(values: np.ndarray) -> np.ndarray:
    """Return the drawdown ``v / running_max(v) - 1`` per bar (0 at a new high, negative below)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.empty(0)
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(peaks > 0, values / peaks - 1.0, 0.0)
    return result


@dataclass(frozen=True)
class DrawdownPeriod:
    """One spell below a previous equity high.

    Attributes
    ----------
    peak, trough : int
        Bar positions of the high before the spell and of its lowest point.
    end : int
        Position of the bar that regained the high, or of the last bar when it never did.
    recovered : bool
        Whether the high was regained.
    depth : float
        Lowest drawdown of the spell (a negative fraction).
    """

    peak: int
    trough: int
    end: int
    recovered: bool
    depth: float


def drawdown_periods(values: np.ndarray) -> list[DrawdownPeriod]:
    """Split an equity series into its drawdown spells, in time order."""
    under = drawdown(values)
    below = under < 0
    if not below.any():
        return []
    edges = np.diff(np.concatenate(([0], below.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # first bar back at the high (may be len)
    periods = []
    last = len(under) - 1
    for start, stop in zip(starts, stops, strict=True):
        trough = int(start + np.argmin(under[start:stop]))
        recovered = stop <= last
        periods.append(
            DrawdownPeriod(
                peak=int(start - 1) if start > 0 else 0,
                trough=trough,
                end=int(stop) if recovered else last,
                recovered=bool(recovered),
                depth=float(under[trough]),
            )
        )
    return periods


# --------------------------------------------------------------------------- trades


def trade_statistics(pnl: np.ndarray) -> dict[str, float]:
    """Return win rate, profit factor, expectancy and average win/loss of net trade PnLs.

    Parameters
    ----------
    pnl : ndarray
        Net PnL of each closed trade (quote currency).

    Returns
    -------
    dict
        ``win_rate`` (fraction of trades with PnL > 0), ``profit_factor`` (gross wins over gross
        losses, NaN without a loss), ``expectancy`` (mean PnL), ``average_win``,
        ``average_loss`` (negative), ``best``, ``worst``.  NaN where there is nothing to average.
    """
    pnl = np.asarray(pnl, dtype=np.float64)
    pnl = pnl[np.isfinite(pnl)]
    if pnl.size == 0:
        nan = math.nan
        return {
            "win_rate": nan,
            "profit_factor": nan,
            "expectancy": nan,
            "average_win": nan,
            "average_loss": nan,
            "best": nan,
            "worst": nan,
        }
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_loss = -losses.sum()
    return {
        "win_rate": float(wins.size / pnl.size),
        "profit_factor": float(wins.sum() / gross_loss) if gross_loss > 0 else math.nan,
        "expectancy": float(pnl.mean()),
        "average_win": float(wins.mean()) if wins.size else math.nan,
        "average_loss": float(losses.mean()) if losses.size else math.nan,
        "best": float(pnl.max()),
        "worst": float(pnl.min()),
    }


# --------------------------------------------------------------------------- tables


def monthly_returns(values: pd.Series) -> pd.DataFrame:
    """Return calendar-month returns in percent as a Year x month table with a yearly total.

    Each month's return is its last equity value over the previous month's last value (the
    first month is measured from the first value).  Columns ``Jan`` .. ``Dec`` and ``Year``
    (compounded months); months outside the run are NaN.
    """
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    series = values.dropna()
    if series.empty or not isinstance(series.index, pd.DatetimeIndex):
        return pd.DataFrame(columns=[*names, "Year"], dtype=np.float64)
    stamps = series.index
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    months = stamps.to_period("M")
    closes = series.groupby(months).last()
    previous = closes.shift(1)
    previous.iloc[0] = series.iloc[0]
    returns = closes / previous - 1.0
    table = pd.DataFrame(
        np.nan, index=sorted({period.year for period in returns.index}), columns=names
    )
    for period, value in returns.items():
        table.loc[period.year, names[period.month - 1]] = value * 100.0
    yearly = (table[names] / 100.0 + 1.0).prod(axis=1, min_count=1) - 1.0
    table["Year"] = yearly * 100.0
    table.index.name = "Year"
    return table


# --------------------------------------------------------------------------- perpetuals


def time_in_clusters(
    market: pd.DataFrame, clusters: pd.DataFrame, band_pct: float = DEFAULT_CLUSTER_BAND_PCT
) -> float:
    """Return the percentage of bars that traded inside a predicted liquidation cluster.

    A bar is inside a cluster when its range ``[low, high]`` overlaps the band ``price *
    (1 +/- band_pct / 100)`` around the long or the short cluster price the map predicted at the
    previous bar (so the prediction precedes the bar it is scored on).  The denominator is every
    bar of the market.

    Returns
    -------
    float
        Percent of bars, or NaN when the map's outputs are missing.
    """
    columns = [c for c in ("long_cluster_price", "short_cluster_price") if c in clusters]
    if market.empty or not columns or not {"high", "low"} <= set(market.columns):
        return math.nan
    if not isinstance(clusters.index, pd.DatetimeIndex) and len(clusters) == len(market):
        aligned = clusters[columns].set_axis(market.index)
    else:
        aligned = clusters[columns].reindex(market.index)
    predicted = aligned.shift(1).to_numpy(dtype=np.float64)
    high = market["high"].to_numpy(dtype=np.float64)[:, None]
    low = market["low"].to_numpy(dtype=np.float64)[:, None]
    fraction = band_pct / 100.0
    with np.errstate(invalid="ignore"):
        overlaps = (low <= predicted * (1 + fraction)) & (high >= predicted * (1 - fraction))
    return float(overlaps.any(axis=1).mean() * 100.0)


def closest_liquidation_distance(equity: pd.DataFrame, market: pd.DataFrame) -> float:
    """Return the smallest distance, in percent of price, between price and our liquidation price.

    For each bar holding a position, the adverse extreme is used: the low for a long, the high
    for a short; distance is ``(low - liq) / low`` or ``(liq - high) / high``.  NaN when the
    run never held a position with a known liquidation price.
    """
    needed = {"liquidation_price", "position_size"}
    if equity.empty or market.empty or not needed <= set(equity.columns):
        return math.nan
    frame = equity[["liquidation_price", "position_size"]].join(
        market[["high", "low"]], how="inner"
    )
    liquidation = frame["liquidation_price"].to_numpy(dtype=np.float64)
    size = frame["position_size"].to_numpy(dtype=np.float64)
    high = frame["high"].to_numpy(dtype=np.float64)
    low = frame["low"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = np.where(size > 0, (low - liquidation) / low, (liquidation - high) / high)
    distance = distance[np.isfinite(liquidation) & (size != 0) & np.isfinite(distance)]
    return float(distance.min() * 100.0) if distance.size else math.nan


def quote_currency(config: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> str:
    """Return the settlement currency of the run's symbol (``BTC/USDT:USDT`` -> ``USDT``)."""
    symbol = config.get("symbol") or (meta or {}).get("symbol") or ""
    if isinstance(symbol, list | tuple):  # a portfolio: its first symbol's
        symbol = symbol[0] if symbol else ""
    symbol = str(symbol)
    if ":" in symbol:
        return symbol.rsplit(":", 1)[1] or "USDT"
    if "/" in symbol:
        return symbol.split("/", 1)[1] or "USDT"
    return "USDT"


# --------------------------------------------------------------------------- everything


def _column(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    return frame[name].to_numpy(dtype=np.float64)


def _hours(delta: pd.Timedelta | Any) -> float:
    return float(pd.Timedelta(delta).total_seconds() / 3600.0)


def _stamp(index: pd.Index, position: int | None) -> str:
    if position is None or len(index) == 0:
        return ""
    value = index[position]
    return pd.Timestamp(value).isoformat() if isinstance(index, pd.DatetimeIndex) else str(value)


def _cost_total(equity: pd.DataFrame, column: str) -> float | None:
    values = _column(equity, column)
    if values is None:
        return None
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0
    return float(finite[-1] - finite[0])


def compute_metrics(
    results: Any,
    *,
    cluster_band_pct: float = DEFAULT_CLUSTER_BAND_PCT,
    min_annualised_days: float = MIN_ANNUALISED_DAYS,
) -> dict[str, Metric]:
    """Return every metric of a run as an ordered flat dict whose keys carry their units.

    Parameters
    ----------
    results : backtest.results.Results
        The run (only its tables, ``config`` and ``meta`` are read).
    cluster_band_pct : float
        Half-width of a cluster band for ``"Time in Clusters [%]"``.
    min_annualised_days : float
        Runs spanning fewer days get NaN for :data:`EXTRAPOLATED_METRICS` (0 keeps them).

    Returns
    -------
    dict
        Strings (names, ISO times), ints (counts) and floats (NaN where undefined; see the
        module notes).  ``Net PnL = Trading PnL + Funding PnL - Fees`` holds by construction.
        A portfolio run's are the account's
        (:func:`backtest.report.portfolio.compute_portfolio_metrics`).  ``Funding PnL`` is NaN
        when the run had funding on but no funding series covered its bars (``meta``
        ``funding_settlements == 0``): funding was not charged, which is not a zero result.
    """
    if getattr(results, "portfolio", False):
        from backtest.report.portfolio import compute_portfolio_metrics

        return compute_portfolio_metrics(results)[0]
    config: Mapping[str, Any] = results.config or {}
    meta: Mapping[str, Any] = results.meta or {}
    currency = quote_currency(config, meta)
    equity: pd.DataFrame = results.equity
    trades: pd.DataFrame = results.trades
    market: pd.DataFrame = results.market

    values = _column(equity, "value")
    values = np.empty(0) if values is None else values
    index = equity.index
    bar_seconds = infer_bar_seconds(index)
    bars_per_year = periods_per_year(bar_seconds)
    returns = bar_returns(values)
    span_seconds = bar_seconds * (len(values) - 1) if len(values) > 1 else 0.0
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        span_seconds = (index[-1] - index[0]).total_seconds()
    years = span_seconds / SECONDS_PER_YEAR

    out: dict[str, Metric] = {}
    out["Strategy"] = str(meta.get("strategy") or config.get("strategy") or "")
    out["Symbol"] = str(meta.get("symbol") or config.get("symbol") or "")
    out["Timeframe"] = str(config.get("timeframe") or "")
    out["Start"] = _stamp(index, 0)
    out["End"] = _stamp(index, len(index) - 1 if len(index) else None)
    out["Duration [d]"] = span_seconds / 86400.0
    out["Bars"] = len(values)

    # Returns and risk.
    start_value = float(values[0]) if values.size else math.nan
    final_value = float(values[-1]) if values.size else math.nan
    growth = total_return(values)
    out[f"Equity Start [{currency}]"] = start_value
    out[f"Equity Final [{currency}]"] = final_value
    out[f"Equity Peak [{currency}]"] = float(np.nanmax(values)) if values.size else math.nan
    net_pnl = final_value - start_value
    out[f"Net PnL [{currency}]"] = net_pnl
    out["Return [%]"] = growth * 100.0
    out["Return (Ann.) [%]"] = annualised_return(returns, bars_per_year) * 100.0
    growth_rate = cagr(values, years)
    out["CAGR [%]"] = growth_rate * 100.0
    out["Buy & Hold Return [%]"] = _buy_and_hold(market, index) * 100.0
    out["Volatility (Ann.) [%]"] = annualised_volatility(returns, bars_per_year) * 100.0
    out["Sharpe"] = sharpe_ratio(returns, bars_per_year)
    out["Sortino"] = sortino_ratio(returns, bars_per_year)

    out.update(_drawdown_metrics(values, index, growth_rate))
    position = _column(equity, "position_size")
    in_position = (position != 0) & np.isfinite(position) if position is not None else None
    out["Exposure Time [%]"] = (
        float(in_position.mean() * 100.0) if in_position is not None and len(in_position) else 0.0
    )
    out.update(_trade_metrics(trades, currency))
    open_trades = getattr(results, "open_trades", None)
    has_open = open_trades is not None and not open_trades.empty
    out["Open Trades"] = len(open_trades) if has_open else 0
    out[f"Open Trades PnL [{currency}]"] = _sum(open_trades, "pnl_net") if has_open else 0.0
    out.update(_perpetual_metrics(results, net_pnl, in_position, currency, cluster_band_pct))
    if values.size > 1 and span_seconds < min_annualised_days * 86400.0:
        for name in EXTRAPOLATED_METRICS:
            out[name] = math.nan
    if config.get("funding", True) and meta.get("funding_settlements") == 0:
        out[f"Funding PnL [{currency}]"] = math.nan
    return out


def _drawdown_metrics(values: np.ndarray, index: pd.Index, growth_rate: float) -> dict[str, Metric]:
    """Depth, dates and durations of the deepest and the longest drawdown, and Calmar."""
    periods = drawdown_periods(values)
    deepest = min(periods, key=lambda period: period.depth) if periods else None
    longest = max(periods, key=lambda p: _span(index, p.peak, p.end)) if periods else None
    max_drawdown = deepest.depth if deepest else (0.0 if values.size else math.nan)
    out: dict[str, Metric] = {}
    out["Calmar"] = calmar_ratio(growth_rate, max_drawdown)
    out["Max. Drawdown [%]"] = max_drawdown * 100.0
    out["Avg. Drawdown [%]"] = (
        float(np.mean([p.depth for p in periods])) * 100.0 if periods else max_drawdown * 100.0
    )
    out["Max. Drawdown Start"] = _stamp(index, deepest.peak if deepest else None)
    out["Max. Drawdown Trough"] = _stamp(index, deepest.trough if deepest else None)
    out["Max. Drawdown End"] = ""
    if deepest is not None:
        out["Max. Drawdown End"] = (
            _stamp(index, deepest.end) if deepest.recovered else NOT_RECOVERED
        )
    out["Max. Drawdown Duration [h]"] = (
        _span(index, deepest.peak, deepest.end) / 3600.0 if deepest else 0.0
    )
    out["Longest Drawdown Duration [h]"] = (
        _span(index, longest.peak, longest.end) / 3600.0 if longest else 0.0
    )
    return out


def _perpetual_metrics(
    results: Any,
    net_pnl: float,
    in_position: np.ndarray | None,
    currency: str,
    cluster_band_pct: float,
) -> dict[str, Metric]:
    """PnL by source, own liquidations, near-misses, leverage setting and exposure, margin."""
    equity: pd.DataFrame = results.equity
    market: pd.DataFrame = results.market
    values = _column(equity, "value")
    funding_paid = _cost_total(equity, "funding_cum")
    if funding_paid is None:
        funding_paid = _sum(results.funding, "payment")
    fees_paid = _cost_total(equity, "fees_cum")
    if fees_paid is None:
        fees_paid = _sum(results.orders, "fee")
    funding_pnl = 0.0 - funding_paid  # 0.0, not -0.0, when nothing was paid
    out: dict[str, Metric] = {}
    out[f"Trading PnL [{currency}]"] = net_pnl - funding_pnl + fees_paid
    out[f"Funding PnL [{currency}]"] = funding_pnl
    out[f"Fees [{currency}]"] = fees_paid
    out["Funding Payments"] = len(results.funding)
    liquidations: pd.DataFrame = results.liquidations
    out["Liquidations"] = len(liquidations)
    out[f"Liquidation Loss [{currency}]"] = _sum(liquidations, "loss")
    out["Near Misses"] = len(results.near_misses)
    rejected = getattr(results, "rejected", None)
    out["Rejected Orders"] = 0 if rejected is None else len(rejected)
    out["Closest Liquidation Distance [%]"] = closest_liquidation_distance(equity, market)
    # Two distinct numbers: the leverage setting (the run's --leverage: it sets the margin a
    # position locks and so its liquidation price) and the effective exposure (|notional| /
    # equity: how large the positions were, which the strategy's sizing decides).
    setting = (results.config or {}).get("leverage")
    out["Leverage Setting [x]"] = float(setting) if setting is not None else math.nan
    exposure = _column(equity, "effective_leverage")
    out["Avg. Exposure [x]"] = 0.0
    out["Max. Exposure [x]"] = 0.0
    if exposure is not None and in_position is not None and in_position.any():
        held = exposure[in_position & np.isfinite(exposure)]
        out["Avg. Exposure [x]"] = float(held.mean()) if held.size else 0.0
        out["Max. Exposure [x]"] = float(held.max()) if held.size else 0.0
    margin = _column(equity, "margin_used")
    out["Max. Margin Use [%]"] = math.nan
    if margin is not None and values is not None and values.size:
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(values > 0, margin / values, np.nan)
        share = share[np.isfinite(share)]
        out["Max. Margin Use [%]"] = float(share.max() * 100.0) if share.size else 0.0
    out["Time in Clusters [%]"] = time_in_clusters(market, results.clusters, cluster_band_pct)
    return out


def _span(index: pd.Index, first: int, last: int) -> float:
    if isinstance(index, pd.DatetimeIndex):
        return float((index[last] - index[first]).total_seconds())
    return float(last - first)


def _sum(frame: pd.DataFrame, column: str) -> float:
    if frame.empty or column not in frame.columns:
        return 0.0
    return float(frame[column].astype(np.float64).sum())


def _buy_and_hold(market: pd.DataFrame, index: pd.Index) -> float:
    """Close-to-close return of the market over the equity curve's span (a fraction)."""
    if market.empty or "close" not in market.columns:
        return math.nan
    closes = market["close"]
    if (
        isinstance(index, pd.DatetimeIndex)
        and len(index)
        and isinstance(market.index, pd.DatetimeIndex)
    ):
        closes = closes.loc[(closes.index >= index[0]) & (closes.index <= index[-1])]
    closes = closes.dropna()
    if closes.empty or not closes.iloc[0] > 0:
        return math.nan
    return float(closes.iloc[-1] / closes.iloc[0] - 1.0)


def _trade_metrics(trades: pd.DataFrame, currency: str) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    count = len(trades)
    pnl = _column(trades, "pnl_net")
    pnl = np.empty(0) if pnl is None else pnl
    stats = trade_statistics(pnl)
    out["# Trades"] = count
    sides = trades["side"].astype(str) if "side" in trades.columns else pd.Series(dtype=str)
    out["Long Trades"] = int((sides == "long").sum())
    out["Short Trades"] = int((sides == "short").sum())
    out["Win Rate [%]"] = stats["win_rate"] * 100.0
    out["Profit Factor"] = stats["profit_factor"]
    out[f"Expectancy [{currency}]"] = stats["expectancy"]
    out[f"Avg. Win [{currency}]"] = stats["average_win"]
    out[f"Avg. Loss [{currency}]"] = stats["average_loss"]
    out[f"Best Trade [{currency}]"] = stats["best"]
    out[f"Worst Trade [{currency}]"] = stats["worst"]
    notional = None
    if count and {"size", "entry_price"} <= set(trades.columns):
        notional = np.abs(_column(trades, "size") * _column(trades, "entry_price"))
    if notional is not None and pnl.size == notional.size:
        with np.errstate(divide="ignore", invalid="ignore"):
            trade_returns = pnl / notional * 100.0
        trade_returns = trade_returns[np.isfinite(trade_returns)]
    else:
        trade_returns = np.empty(0)
    has = trade_returns.size > 0
    out["Best Trade [%]"] = float(trade_returns.max()) if has else math.nan
    out["Worst Trade [%]"] = float(trade_returns.min()) if has else math.nan
    out["Avg. Trade [%]"] = float(trade_returns.mean()) if has else math.nan
    durations = np.empty(0)
    if count and {"entry_time", "exit_time"} <= set(trades.columns):
        spans = pd.to_datetime(trades["exit_time"], utc=True) - pd.to_datetime(
            trades["entry_time"], utc=True
        )
        durations = (spans.dt.total_seconds() / 3600.0).to_numpy(dtype=np.float64)
        durations = durations[np.isfinite(durations)]
    out["Avg. Trade Duration [h]"] = float(durations.mean()) if durations.size else math.nan
    out["Max. Trade Duration [h]"] = float(durations.max()) if durations.size else math.nan
    return out
