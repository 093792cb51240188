"""Readers for liquidation, open-interest and long/short files exported from other tools.

Each reader turns one file into rows for the store (:mod:`backtest.market.series` writes them):
``timestamp_ms`` (the bar's OPEN time, UTC epoch milliseconds) and the store's value columns,

============== ===================================================================== ========
kind           columns                                                               unit
============== ===================================================================== ========
liquidations   ``long``, ``short``: notional liquidated in the bar                   quote
open_interest  ``open_interest`` (base units), ``open_interest_value`` (quote)        mixed
long_short     ``long_share``, ``top_account_long_share``, ``top_position_long_share`` fraction
============== ===================================================================== ========

(a "long share" is longs / (longs + shorts), 0..1: a long/short ratio ``r`` is ``r / (1 + r)``).

Layouts, recognised by their header (``layout="auto"``) or named explicitly:

``plain``
    ``time`` (or ``timestamp``/``timestamp_ms``/``date``) and ``long, short`` (quote currency);
    ``open_interest`` (quote currency; ``open_interest_base`` optional); ``long_share`` or
    ``long_short_ratio``/``ratio`` (all accounts unless ``measure`` says otherwise).
``coinglass``
    CoinGlass API v4 aggregated history as CSV or the API's Parquet: ``time_ms`` or ``time``
    with ``long_usd, short_usd`` or ``aggregated_long_liquidation_usd, ...``; open interest
    OHLC in USD (``open, high, low, close``: the close is stored); the Binance long/short
    ratio history (``global_account_long_percent``, ``top_account_long_percent``,
    ``top_position_long_percent``).
``coinglass-exchanges``
    Open interest in USD with one column per exchange (``timestamp, price, BINANCE, BYBIT, ...``);
    the column is picked with ``venue`` (by default from the ccxt exchange id).
``coinglass-symbols``
    Daily rows with a ``symbol`` column (``symbol, ts_utc, liq_long_usd, liq_short_usd`` and
    optionally ``oi_total_close``); rows of the symbol's base coin are kept.
``coinalyze``
    Daily Coinalyze exports in BASE coin (``date_utc, long_liq_base, short_liq_base, oi_base,
    ls_ratio``).  The file has no price, so base amounts are converted to quote currency with
    the close of the stored candles of the same timeframe (the import says so, and refuses
    with the download command when they are missing).
``coinalyze-ohlcv``
    Hourly Coinalyze exports with candles (``t_label, long_liq_base, short_liq_base, open, high,
    low, close, ..., oi_close``): base amounts times the bar's close.  The labels of the known
    file of this shape were written in local time; its provenance infers UTC = label - 6 h, so
    this layout's default ``utc_offset_hours`` is 6 (override it when your file differs).
``coinalyze-wide``
    Coinalyze pulls of many symbols, one column per symbol, exchange code and series
    (``BTCUSDT_PERP.A_longliq``, ``_shortliq``, ``_oi``, ``_ls_ratio``; ``.A`` is Binance, other
    codes through ``venue``), in base coin, valued like ``coinalyze``.
``binance-metrics``
    Binance's ``metrics`` archive (data.binance.vision; ``create_time, symbol,
    sum_open_interest, sum_open_interest_value, count_toptrader_long_short_ratio,
    sum_toptrader_long_short_ratio, count_long_short_ratio, ...``): open interest in base and
    quote, and the all-account, top-trader-account and top-trader-position long/short ratios.

Time convention (enforced by :mod:`backtest.market.tabular`): every row is a bar stamped with
its OPEN time in UTC.  Numbers are epoch milliseconds (a column of epoch SECONDS is refused, not
guessed); text is ISO 8601, naive text is UTC unless ``utc_offset_hours`` says the file's clock
runs ahead of UTC by that many hours (UTC = label - offset).  Dates before 2009 or after now are
refused.  ``binance-metrics`` rows are samples taken at ``create_time`` (known then), or, when
stamped with a date alone, known at the day's end.

When a level (open interest, long/short) is known: CoinGlass and Coinalyze rows are bars
stamped at their open whose stored value is the bar's CLOSE, so it is known only at open +
timeframe (``known_at = "bar_close"``); so are plain files unless ``known_at="time"`` is given.
Liquidation totals are always known at the bar's close.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.errors import ConfigError, DataError
from backtest.market.layouts import LAYOUT_HELP, LAYOUTS, MEASURES
from backtest.market.tabular import (
    dedupe_rows,
    infer_timeframe,
    parse_numbers,
    parse_times,
    read_table,
    trim_blank_rows,
)
from backtest.market.timeframes import format_ms, timeframe_to_ms

#: Value columns of each kind, as stored.
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "liquidations": ("long", "short"),
    "open_interest": ("open_interest", "open_interest_value"),
    "long_short": ("long_share", "top_account_long_share", "top_position_long_share"),
}

#: ccxt exchange id -> column of a per-exchange CoinGlass open-interest file.
_VENUE_COLUMNS: dict[str, str] = {
    "binanceusdm": "BINANCE",
    "binancecoinm": "BINANCE",
    "binance": "BINANCE",
    "bybit": "BYBIT",
    "okx": "OKX",
    "hyperliquid": "HYPERLIQUID",
    "bitget": "BITGET",
    "gate": "GATE",
    "htx": "HTX",
    "kucoinfutures": "KUCOIN",
    "mexc": "MEXC",
    "bitmex": "BITMEX",
    "deribit": "DERIBIT",
}

#: A column of a wide Coinalyze table: ``<SYMBOL>_PERP.<exchange code>_<series>``.
_WIDE_COLUMN = re.compile(r"^([A-Z0-9]+)_PERP\.([A-Z0-9]+)_(longliq|shortliq|oi|ls_ratio|fr)$")

#: ccxt exchange id -> Coinalyze exchange code (the ``.A`` of ``BTCUSDT_PERP.A``).
_COINALYZE_CODES: dict[str, str] = {"binanceusdm": "A", "binance": "A", "binancecoinm": "A"}

_TIME_COLUMNS = ("timestamp_ms", "time_ms", "timestamp", "time", "date", "datetime", "date_utc")


@dataclass
class ParsedSeries:
    """Rows read from one file, ready for the store.

    Attributes
    ----------
    kind : str
        ``liquidations``, ``open_interest`` or ``long_short``.
    frame : pandas.DataFrame
        ``timestamp_ms`` (int64, bar open, UTC) and the kind's float64 columns, sorted, unique.
    timeframe : str
        The bar length found from the row spacing (or given).
    layout : str
        The layout that read the file.
    unit : str
        Unit of the quote-currency columns (``"USD"`` for CoinGlass, the quote otherwise).
    scope : str
        What the numbers cover (venue, contracts), recorded in the file's metadata.
    known_at : str
        ``"bar_close"`` (a row's value is known at open + timeframe) or ``"time"`` (at its time).
    notes : list of str
        Things the user should know (conversions, trimmed blank rows, gaps).
    """

    kind: str
    frame: pd.DataFrame
    timeframe: str
    layout: str
    unit: str
    scope: str
    known_at: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReadOptions:
    """What a reader needs besides the file (see :func:`read_file`)."""

    kind: str
    symbol: str
    exchange: str
    timeframe: str | None = None
    utc_offset_hours: float | None = None
    venue: str | None = None
    measure: str = "global_account"
    known_at: str | None = None
    skip_blank: bool = False
    price_lookup: Callable[[str, np.ndarray], np.ndarray] | None = None


# --------------------------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------------------------
def _lower_columns(frame: pd.DataFrame) -> dict[str, str]:
    return {name.lower(): name for name in frame.columns}


def _has(frame: pd.DataFrame, *names: str) -> bool:
    lower = _lower_columns(frame)
    return all(name in lower for name in names)


def detect_layout(frame: pd.DataFrame) -> str | None:
    """Return the layout a header belongs to, or None."""
    lower = _lower_columns(frame)
    if "sum_open_interest" in lower or "count_long_short_ratio" in lower:
        return "binance-metrics"
    if any(_WIDE_COLUMN.match(str(name)) for name in frame.columns):
        return "coinalyze-wide"
    if "t_label" in lower and "long_liq_base" in lower:
        return "coinalyze-ohlcv"
    if "long_liq_base" in lower or "oi_base" in lower:
        return "coinalyze"
    if "symbol" in lower and ("liq_long_usd" in lower or "oi_total_close" in lower):
        return "coinglass-symbols"
    if "binance" in lower and ("timestamp" in lower or "time_utc" in lower):
        return "coinglass-exchanges"
    if any(
        name in lower
        for name in (
            "long_usd",
            "aggregated_long_liquidation_usd",
            "global_account_long_percent",
            "top_position_long_percent",
        )
    ) or (_has(frame, "time_ms", "close") or _has(frame, "time", "open", "close")):
        return "coinglass"
    if any(name in lower for name in _TIME_COLUMNS):
        return "plain"
    return None


def _column(frame: pd.DataFrame, *candidates: str) -> str | None:
    lower = _lower_columns(frame)
    for name in candidates:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _require(frame: pd.DataFrame, path: Path, layout: str, kind: str, *candidates: str) -> str:
    found = _column(frame, *candidates)
    if found is None:
        raise DataError(
            f"{path} ({layout} layout) has no column {' or '.join(map(repr, candidates))} for "
            f"{kind.replace('_', ' ')}; its columns are {', '.join(frame.columns)}; "
            "pick the right file, --layout or kind"
        )
    return found


@dataclass
class _Extract:
    """What a layout function returns before the shared checks."""

    time_column: str
    values: dict[str, np.ndarray]
    unit: str
    scope: str
    known_at: str
    notes: list[str] = field(default_factory=list)
    base_units: dict[str, np.ndarray] = field(default_factory=dict)
    price: np.ndarray | None = None
    offset_hours: float = 0.0
    keep: np.ndarray | None = None


def _base_coin(symbol: str) -> str:
    return symbol.split("/")[0].upper()


def _quote(symbol: str) -> str:
    quote = symbol.split("/")[1] if "/" in symbol else "quote"
    return quote.split(":")[0].upper()


def _layout_plain(frame: pd.DataFrame, path: Path, options: ReadOptions) -> _Extract:
    time_column = _require(frame, path, "plain", "time", *_TIME_COLUMNS, "time_utc")
    number = lambda name: parse_numbers(frame, name, path, time_column)  # noqa: E731
    quote = _quote(options.symbol)
    known_at = options.known_at or "bar_close"
    if options.kind == "liquidations":
        long = _require(frame, path, "plain", "liquidations", "long", "long_usd")
        short = _require(frame, path, "plain", "liquidations", "short", "short_usd")
        return _Extract(
            time_column,
            {"long": number(long), "short": number(short)},
            quote,
            f"{options.exchange} {options.symbol} (as exported)",
            "bar_close",
        )
    if options.kind == "open_interest":
        value = _column(frame, "open_interest", "open_interest_value", "open_interest_usd")
        base = _column(frame, "open_interest_base")
        if value is None and base is None:
            _require(frame, path, "plain", "open interest", "open_interest", "open_interest_base")
        return _Extract(
            time_column,
            {
                **({"open_interest": number(base)} if base else {}),
                **({"open_interest_value": number(value)} if value else {}),
            },
            quote,
            f"{options.exchange} {options.symbol} (as exported)",
            known_at,
        )
    share = _column(frame, "long_share")
    ratio = _column(frame, "long_short_ratio", "ratio")
    if share is None and ratio is None:
        _require(frame, path, "plain", "long/short", "long_share", "long_short_ratio", "ratio")
    shares = number(share) if share else _ratio_to_share(number(ratio))
    values = {MEASURES[options.measure]: shares}
    return _Extract(
        time_column,
        values,
        "fraction",
        f"{options.exchange} {options.symbol} {options.measure} (as exported)",
        known_at,
    )


def _ratio_to_share(ratio: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        share = ratio / (1.0 + ratio)
    return np.where(ratio < 0, -1.0, share)  # negative ratios fail the range check


def _layout_coinglass(frame: pd.DataFrame, path: Path, options: ReadOptions) -> _Extract:
    time_column = _require(frame, path, "coinglass", "time", "time_ms", "time", "timestamp")
    number = lambda name: parse_numbers(frame, name, path, time_column)  # noqa: E731
    coin = _base_coin(options.symbol)
    if options.kind == "liquidations":
        long = _require(
            frame, path, "coinglass", "liquidations", "long_usd", "aggregated_long_liquidation_usd"
        )
        short = _require(
            frame,
            path,
            "coinglass",
            "liquidations",
            "short_usd",
            "aggregated_short_liquidation_usd",
        )
        return _Extract(
            time_column,
            {"long": number(long), "short": number(short)},
            "USD",
            f"CoinGlass aggregated liquidation history of {coin}, USD, all of the coin's "
            "contracts on the exchanges of the export (exchange_list; e.g. Binance only)",
            "bar_close",
            notes=["CoinGlass counts all of the coin's contracts on the listed venues"]
            + (
                ["the last bar of a saved API response may still have been forming: check it"]
                if path.suffix.lower() == ".parquet"
                else []
            ),
        )
    if options.kind == "open_interest":
        close = _require(frame, path, "coinglass", "open interest", "close")
        return _Extract(
            time_column,
            {"open_interest_value": number(close)},
            "USD",
            f"CoinGlass aggregated open interest of {coin}, all exchanges, USD (bar close)",
            "bar_close",
            notes=["all-exchange open interest in USD (not one venue); base units left empty"],
        )
    values: dict[str, np.ndarray] = {}
    for stored, name in (
        ("long_share", "global_account_long_percent"),
        ("top_account_long_share", "top_account_long_percent"),
        ("top_position_long_share", "top_position_long_percent"),
    ):
        column = _column(frame, name)
        if column:
            values[stored] = number(column) / 100.0
    if not values:
        _require(frame, path, "coinglass", "long/short", "global_account_long_percent")
    return _Extract(
        time_column,
        values,
        "fraction",
        f"CoinGlass copy of Binance's {options.symbol} long/short ratios (global account, top "
        "trader account, top trader position)",
        "bar_close",
    )


def _layout_coinglass_exchanges(frame: pd.DataFrame, path: Path, options: ReadOptions) -> _Extract:
    if options.kind != "open_interest":
        raise DataError(
            f"{path} (coinglass-exchanges layout) holds open interest per exchange, not "
            f"{options.kind.replace('_', ' ')}; import it as open-interest"
        )
    time_column = _require(
        frame, path, "coinglass-exchanges", "time", "timestamp", "time_ms", "time_utc"
    )
    venue = options.venue or _VENUE_COLUMNS.get(options.exchange)
    venues = [
        name
        for name in frame.columns
        if name not in (time_column, "time_utc", "price", "snap", "timestamp")
    ]
    column = _column(frame, venue) if venue else None
    if column is None:
        raise ConfigError(
            f"{path} has no column for venue {venue or options.exchange!r}; pass --venue with "
            f"one of {', '.join(venues)}"
        )
    values = parse_numbers(frame, column, path, time_column)
    return _Extract(
        time_column,
        {"open_interest_value": values},
        "USD",
        f"CoinGlass open interest of {_base_coin(options.symbol)} on {column}, USD, all of that "
        "venue's contracts (sample at the stamp or bar close: undocumented, taken as bar close)",
        "bar_close",
    )


def _layout_coinglass_symbols(frame: pd.DataFrame, path: Path, options: ReadOptions) -> _Extract:
    symbol_column = _require(frame, path, "coinglass-symbols", "symbol", "symbol")
    coin = _base_coin(options.symbol)
    keep = frame[symbol_column].astype(str).str.strip().str.upper() == coin
    if not keep.any():
        found = sorted(frame[symbol_column].astype(str).unique())[:10]
        raise DataError(
            f"{path} has no rows for {coin} (symbols: {', '.join(found)}); pick the file or "
            "--symbol that matches"
        )
    time_column = _require(frame, path, "coinglass-symbols", "time", "ts_utc", "time", "date")
    number = lambda name: parse_numbers(frame, name, path, time_column)  # noqa: E731
    mask = keep.to_numpy()
    if options.kind == "liquidations":
        long = _require(frame, path, "coinglass-symbols", "liquidations", "liq_long_usd")
        short = _require(frame, path, "coinglass-symbols", "liquidations", "liq_short_usd")
        return _Extract(
            time_column,
            {"long": number(long), "short": number(short)},
            "USD",
            f"CoinGlass aggregated liquidations of {coin} over an exchange list not stated in "
            "the file (likely Binance, OKX, Bybit), USD",
            "bar_close",
            keep=mask,
        )
    if options.kind == "open_interest":
        close = _require(frame, path, "coinglass-symbols", "open interest", "oi_total_close")
        return _Extract(
            time_column,
            {"open_interest_value": number(close)},
            "USD",
            f"CoinGlass aggregated open interest of {coin}, all exchanges, USD (bar close)",
            "bar_close",
            keep=mask,
        )
    raise DataError(
        f"{path} (coinglass-symbols layout) holds no long/short ratios; import it as "
        "liquidations or open-interest"
    )


def _layout_coinalyze(frame: pd.DataFrame, path: Path, options: ReadOptions) -> _Extract:
    time_column = _require(frame, path, "coinalyze", "time", "date_utc", "time", "date")
    number = lambda name: parse_numbers(frame, name, path, time_column)  # noqa: E731
    coin = _base_coin(options.symbol)
    scope = f"Coinalyze, {options.exchange} {options.symbol} only"
    if options.kind == "liquidations":
        long = _require(frame, path, "coinalyze", "liquidations", "long_liq_base")
        short = _require(frame, path, "coinalyze", "liquidations", "short_liq_base")
        return _Extract(
            time_column,
            {},
            _quote(options.symbol),
            scope,
            "bar_close",
            base_units={"long": number(long), "short": number(short)},
        )
    if options.kind == "open_interest":
        base = _require(frame, path, "coinalyze", "open interest", "oi_base")
        return _Extract(
            time_column,
            {"open_interest": number(base)},
            _quote(options.symbol),
            f"{scope}, open interest in {coin} (bar close)",
            "bar_close",
            base_units={"open_interest_value": number(base)},
        )
    ratio = _require(frame, path, "coinalyze", "long/short", "ls_ratio")
    values = {"long_share": _ratio_to_share(number(ratio))}
    return _Extract(
        time_column,
        values,
        "fraction",
        f"{scope}, Coinalyze long/short ratio (taken as all accounts)",
        "bar_close",
    )


def _layout_coinalyze_ohlcv(frame: pd.DataFrame, path: Path, options: ReadOptions) -> _Extract:
    time_column = _require(frame, path, "coinalyze-ohlcv", "time", "t_label")
    number = lambda name: parse_numbers(frame, name, path, time_column)  # noqa: E731
    close = number(_require(frame, path, "coinalyze-ohlcv", "price", "close"))
    scope = f"Coinalyze, {options.exchange} {options.symbol} only"
    offset = 6.0 if options.utc_offset_hours is None else options.utc_offset_hours
    note = f"labels read as UTC+{offset:g} h (UTC = label - {offset:g} h)"
    if options.kind == "liquidations":
        long = _require(frame, path, "coinalyze-ohlcv", "liquidations", "long_liq_base")
        short = _require(frame, path, "coinalyze-ohlcv", "liquidations", "short_liq_base")
        return _Extract(
            time_column,
            {},
            _quote(options.symbol),
            scope,
            "bar_close",
            notes=[note, "base-coin amounts converted at each bar's close"],
            base_units={"long": number(long), "short": number(short)},
            price=close,
            offset_hours=offset,
        )
    if options.kind == "open_interest":
        base = number(_require(frame, path, "coinalyze-ohlcv", "open interest", "oi_close"))
        return _Extract(
            time_column,
            {"open_interest": base},
            _quote(options.symbol),
            f"{scope}, open interest (bar close)",
            "bar_close",
            notes=[note],
            base_units={"open_interest_value": base},
            price=close,
            offset_hours=offset,
        )
    raise DataError(
        f"{path} (coinalyze-ohlcv layout) holds no long/short ratios; import it as "
        "liquidations or open-interest"
    )


def _layout_binance_metrics(frame: pd.DataFrame, path: Path, options: ReadOptions) -> _Extract:
    """Binance's ``metrics`` archive (data.binance.vision): point samples at ``create_time``."""
    time_column = _require(frame, path, "binance-metrics", "time", "create_time")
    number = lambda name: parse_numbers(frame, name, path, time_column)  # noqa: E731
    keep = None
    symbol_column = _column(frame, "symbol")
    if symbol_column is not None:
        wanted = options.symbol.split(":")[0].replace("/", "").upper()
        names = frame[symbol_column].astype(str).str.strip().str.upper()
        if not (names == wanted).any():
            raise DataError(
                f"{path} has no rows for {wanted} (symbols: "
                f"{', '.join(sorted(set(names) - {''}))}); pick the file or --symbol that matches"
            )
        keep = ((names == wanted) | (names == "")).to_numpy()
    scope = f"Binance metrics archive, {options.symbol} on {options.exchange} only"
    # the archive's 5-minute rows are samples at create_time; rows stamped with a date alone
    # (a day's sample at an undocumented hour) count as known only at the day's end
    dated_only = not frame[time_column].astype(str).str.contains(":").any()
    known_at = "bar_close" if dated_only else "time"
    if options.kind == "open_interest":
        values = {
            "open_interest": number(
                _require(frame, path, "binance-metrics", "oi", "sum_open_interest")
            ),
            "open_interest_value": number(
                _require(frame, path, "binance-metrics", "oi", "sum_open_interest_value")
            ),
        }
        return _Extract(time_column, values, _quote(options.symbol), scope, known_at, keep=keep)
    if options.kind == "long_short":
        values = {}
        for stored, name in (
            ("long_share", "count_long_short_ratio"),
            ("top_account_long_share", "count_toptrader_long_short_ratio"),
            ("top_position_long_share", "sum_toptrader_long_short_ratio"),
        ):
            column = _column(frame, name)
            if column:
                values[stored] = _ratio_to_share(number(column))
        if not values:
            _require(frame, path, "binance-metrics", "long/short", "count_long_short_ratio")
        return _Extract(time_column, values, "fraction", scope, known_at, keep=keep)
    raise DataError(
        f"{path} (binance-metrics layout) holds no liquidations; import it as open-interest "
        "or long-short"
    )


def _layout_coinalyze_wide(frame: pd.DataFrame, path: Path, options: ReadOptions) -> _Extract:
    """Coinalyze API pulls of many symbols, one column per symbol and series (base coin)."""
    time_column = _column(frame, "t", "time", "date") or str(frame.columns[0])
    wanted = options.symbol.split(":")[0].replace("/", "").upper()
    code = options.venue or _COINALYZE_CODES.get(options.exchange)
    found: dict[str, dict[str, str]] = {}
    for name in frame.columns:
        match = _WIDE_COLUMN.match(str(name))
        if match and match.group(1) == wanted:
            found.setdefault(match.group(2), {})[match.group(3)] = str(name)
    if not found:
        raise DataError(
            f"{path} has no {wanted}_PERP.* columns; pick the file or --symbol that matches"
        )
    if code is None or code not in found:
        raise ConfigError(
            f"{path}: pick the Coinalyze exchange code of {wanted} with --venue, one of "
            f"{', '.join(sorted(found))} (A is Binance)"
        )
    columns = found[code]
    number = lambda name: parse_numbers(frame, name, path, time_column)  # noqa: E731
    scope = f"Coinalyze {wanted}_PERP.{code} only (base coin)"
    needed = {
        "liquidations": ("longliq", "shortliq"),
        "open_interest": ("oi",),
        "long_short": ("ls_ratio",),
    }[options.kind]
    missing = [series for series in needed if series not in columns]
    if missing:
        raise DataError(
            f"{path} has no {wanted}_PERP.{code}_{missing[0]} column for "
            f"{options.kind.replace('_', ' ')}; pick the right file or kind"
        )
    if options.kind == "liquidations":
        return _Extract(
            time_column,
            {},
            _quote(options.symbol),
            scope,
            "bar_close",
            base_units={
                "long": number(columns["longliq"]),
                "short": number(columns["shortliq"]),
            },
        )
    if options.kind == "open_interest":
        base = number(columns["oi"])
        return _Extract(
            time_column,
            {"open_interest": base},
            _quote(options.symbol),
            scope,
            "bar_close",
            base_units={"open_interest_value": base},
        )
    return _Extract(
        time_column,
        {"long_share": _ratio_to_share(number(columns["ls_ratio"]))},
        "fraction",
        f"{scope}, Coinalyze long/short ratio (taken as all accounts)",
        "bar_close",
    )


_READERS: dict[str, Callable[[pd.DataFrame, Path, ReadOptions], _Extract]] = {
    "coinalyze-wide": _layout_coinalyze_wide,
    "binance-metrics": _layout_binance_metrics,
    "plain": _layout_plain,
    "coinglass": _layout_coinglass,
    "coinglass-exchanges": _layout_coinglass_exchanges,
    "coinglass-symbols": _layout_coinglass_symbols,
    "coinalyze": _layout_coinalyze,
    "coinalyze-ohlcv": _layout_coinalyze_ohlcv,
}


# --------------------------------------------------------------------------------------------
# the whole read
# --------------------------------------------------------------------------------------------
def check_values(
    kind: str, frame: pd.DataFrame, path: Path, remedy: str = "fix or remove that row"
) -> None:
    """Refuse impossible values (negative, infinite or missing totals; shares outside 0..1)."""
    times = frame["timestamp_ms"].to_numpy()
    for name in KIND_COLUMNS[kind]:
        values = frame[name].to_numpy(dtype=np.float64)
        if kind == "liquidations":
            bad = ~np.isfinite(values) | (values < 0)
            what = "a negative, missing or infinite amount"
        elif kind == "open_interest":
            bad = np.isinf(values) | (values < 0)
            what = "a negative or infinite open interest"
        else:
            bad = np.isinf(values) | (values < 0) | (values > 1)
            what = "a long share outside 0..1 (or a negative ratio)"
        if bad.any():
            where = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: the bar at {format_ms(int(times[where]))} UTC has {what} in {name} "
                f"({values[where]!r}); {remedy}"
            )
    if kind != "liquidations":
        empty = np.all(np.isnan(frame[list(KIND_COLUMNS[kind])].to_numpy()), axis=1)
        if empty.any():
            where = int(np.flatnonzero(empty)[0])
            raise DataError(
                f"{path}: the bar at {format_ms(int(times[where]))} UTC has no value; fix or "
                "remove that row (or pass --skip-blank)"
            )


def read_file(
    path: str | os.PathLike[str], options: ReadOptions, layout: str = "auto"
) -> ParsedSeries:
    """Read one exported file into store rows (see the module docstring for the layouts).

    Parameters
    ----------
    path : path-like
        CSV (UTF-8, header row) or Parquet file.
    options : ReadOptions
        Kind, symbol, exchange and the layout options.
    layout : str
        ``"auto"`` (by header) or one of :data:`LAYOUTS`.

    Returns
    -------
    ParsedSeries

    Raises
    ------
    DataError
        One line naming the file (and the row, by time) for every defect: unreadable, empty,
        missing columns, non-numeric, negative, infinite or blank values, conflicting
        duplicates, mixed intervals, times off the bar grid or out of range.
    ConfigError
        For an unknown layout, kind or measure.
    """
    path = Path(path)
    if options.kind not in KIND_COLUMNS:
        raise ConfigError(f"unknown kind {options.kind!r}; one of {', '.join(KIND_COLUMNS)}")
    if options.measure not in MEASURES:
        raise ConfigError(f"unknown measure {options.measure!r}; one of {', '.join(MEASURES)}")
    if options.known_at not in (None, "bar_close", "time"):
        raise ConfigError(f"known_at must be 'bar_close' or 'time', not {options.known_at!r}")
    if layout != "auto" and layout not in _READERS:
        raise ConfigError(f"unknown layout {layout!r}; one of auto, {', '.join(LAYOUTS)}")
    frame = read_table(path)
    if layout == "auto":
        found = detect_layout(frame)
        if found is None:
            raise DataError(
                f"{path}: header {', '.join(map(str, frame.columns[:8]))} matches no known layout "
                "(a plain file needs a time column and, e.g., long,short); see "
                "`python -m backtest import --help`"
            )
        layout = found
    extract = _READERS[layout](frame, path, options)
    offset = extract.offset_hours if options.utc_offset_hours is None else options.utc_offset_hours
    if extract.keep is not None:
        frame = frame[extract.keep].reset_index(drop=True)
        extract.values = {name: array[extract.keep] for name, array in extract.values.items()}
        extract.base_units = {
            name: array[extract.keep] for name, array in extract.base_units.items()
        }
    times = parse_times(frame, extract.time_column, path, utc_offset_hours=offset)
    notes = list(extract.notes)
    if options.utc_offset_hours and layout != "coinalyze-ohlcv":
        notes.append(f"times shifted by -{options.utc_offset_hours:g} h to UTC")

    # the bar length comes from every row's time, before blank rows are left out
    timeframe = infer_timeframe(np.unique(times), path, options.timeframe)
    check = {**extract.values, **extract.base_units}
    keep, blank_notes = trim_blank_rows(times, check, options.skip_blank, path)
    notes += blank_notes
    times = times[keep]
    values = {name: array[keep] for name, array in extract.values.items()}
    base_units = {name: array[keep] for name, array in extract.base_units.items()}
    price = extract.price[keep] if extract.price is not None else None

    columns = list(KIND_COLUMNS[options.kind])
    names = [*values, *(f"base:{name}" for name in base_units)]
    if price is not None:
        names.append("price")
    matrix = np.column_stack(
        [*values.values(), *base_units.values(), *([price] if price is not None else [])]
    )
    count = times.size
    times, matrix = dedupe_rows(times, matrix, path)
    if times.size < count:
        notes.append(f"{count - times.size} repeated row(s) with equal values dropped")
    table = {name: matrix[:, index] for index, name in enumerate(names)}

    if base_units:
        if price is None:
            if options.price_lookup is None:
                raise DataError(
                    f"{path} gives amounts in {_base_coin(options.symbol)} and no price column; "
                    "add a close column or import through the store so stored candles convert it"
                )
            try:
                price = options.price_lookup(timeframe, times)
            except DataError as error:
                if options.kind != "open_interest" or "open_interest" not in values:
                    raise DataError(f"{path}: {error}") from None
                price = np.full(times.size, np.nan)
                notes.append(
                    f"open interest stored in {_base_coin(options.symbol)} only (no price in the "
                    f"file and no stored {timeframe} candles to value it)"
                )
            else:
                notes.append(
                    f"amounts in {_base_coin(options.symbol)} converted at the close of the "
                    f"stored {timeframe} candles"
                )
            table["price"] = price
        for name in base_units:
            table[name] = table.pop(f"base:{name}") * table["price"]
        table.pop("price", None)
    result = pd.DataFrame({"timestamp_ms": times.astype(np.int64)})
    for name in columns:
        result[name] = np.asarray(table.get(name, np.full(times.size, np.nan)), dtype=np.float64)
    check_values(options.kind, result, path)
    gaps = int(np.sum(np.diff(times) // timeframe_to_ms(timeframe) - 1)) if times.size > 1 else 0
    if gaps:
        notes.append(f"{gaps} bar(s) missing inside the range (left as gaps)")
    known_at = extract.known_at if options.kind != "liquidations" else "bar_close"
    return ParsedSeries(
        kind=options.kind,
        frame=result,
        timeframe=timeframe,
        layout=layout,
        unit=extract.unit,
        scope=extract.scope,
        known_at=known_at,
        notes=notes,
    )


def describe_layouts() -> Sequence[str]:
    """Return one line per layout for ``--help``."""
    return tuple(f"{name}: {text}" for name, text in LAYOUT_HELP.items())
