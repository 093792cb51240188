"""Liquidation totals, open interest and long/short shares: import into the store, load, align.

Stored next to the candles (see :mod:`backtest.market.store`)::

    <data>/<exchange>/<SYMBOL>-<tf>-liquidations.parquet   long, short (quote currency)
    <data>/<exchange>/<SYMBOL>-<tf>-oi.parquet             open_interest (base), open_interest_value
    <data>/<exchange>/<SYMBOL>-<tf>-longshort.parquet      long_share, top_account_long_share,
                                                           top_position_long_share (0..1)

Conventions (tested in ``tests/market/test_series*.py``):

* A row's ``timestamp_ms`` is the bar's OPEN time, UTC epoch milliseconds.
* Liquidation totals are sums over the bar.  :func:`load_liquidations` returns them on a
  COARSER timeframe by summing whole bars: a coarse bar is returned only when every one of its
  source bars is stored (partial bars are dropped and counted in ``attrs``).  A FINER timeframe
  than stored cannot be made up and is refused: sum the estimate up to the truth's timeframe.
* Levels (open interest, long/short shares) carry ``known_at`` in their metadata: ``bar_close``
  (the value is the source bar's close, known at open + timeframe: CoinGlass and Coinalyze
  rows) or ``time`` (a sample taken at the stamp: the venue's open-interest history that
  ``download`` stores).  :func:`align_as_of` puts a level on any bars using only values known at
  each bar's open: no look-ahead.
* Imported files record ``scope`` (what the numbers cover: CoinGlass open interest is all
  exchanges, a download is one venue), ``unit``, ``layout`` and ``source`` in their metadata; an
  import never merges into a file of another scope and never touches a file this program did
  not write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.errors import ConfigError, DataError
from backtest.market import store
from backtest.market.groundtruth import (
    KIND_COLUMNS,
    ParsedSeries,
    ReadOptions,
    check_values,
    read_file,
)
from backtest.market.timeframes import format_ms, parse_time, timeframe_to_ms

#: Kind names accepted by :func:`import_series` (the command's words map onto them).
KINDS: dict[str, str] = {
    "liquidations": "liquidations",
    "open-interest": "open_interest",
    "open_interest": "open_interest",
    "long-short": "long_short",
    "long_short": "long_short",
}

_LABELS = {
    "liquidations": "liquidations",
    "open_interest": "open interest",
    "long_short": "long/short shares",
}
_COMMAND_KIND = {
    "liquidations": "liquidations",
    "open_interest": "open-interest",
    "long_short": "long-short",
}


@dataclass
class ImportResult:
    """What :func:`import_series` stored."""

    path: Path
    kind: str
    symbol: str
    exchange: str
    timeframe: str
    layout: str
    rows_read: int
    rows_stored: int
    first_ms: int
    last_ms: int
    scope: str
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Return one line for the console."""
        text = (
            f"{self.exchange} {self.symbol} {self.timeframe} {_LABELS[self.kind]} "
            f"({self.layout} layout): {self.rows_read} bars read, {self.rows_stored} stored "
            f"({format_ms(self.first_ms)} .. {format_ms(self.last_ms)} UTC, bar open times) "
            f"in {self.path}"
        )
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def _kind(kind: str) -> str:
    try:
        return KINDS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown kind {kind!r}; one of liquidations, open-interest, long-short"
        ) from None


def import_command(kind: str, symbol: str, exchange: str) -> str:
    """Return the ``python -m backtest import ...`` command for a series."""
    return (
        f"python -m backtest import {_COMMAND_KIND[_kind(kind)]} FILE --symbol {symbol} "
        f"--exchange {exchange}"
    )


def _price_lookup(symbol: str, exchange: str, data_dir: str | os.PathLike[str] | None):
    """Return a function giving stored candle closes for bar open times (for base-coin files)."""

    def lookup(timeframe: str, times: np.ndarray) -> np.ndarray:
        try:
            candles = store.load_market(symbol, timeframe, exchange=exchange, data_dir=data_dir)
        except DataError:
            first = format_ms(int(times[0])) if times.size else "-"
            raise DataError(
                f"amounts are in {symbol.split('/')[0]} and the file has no price column; "
                f"converting them needs stored {timeframe} candles of {symbol} from {first} UTC: "
                f"{store.download_command(exchange, symbol, timeframe, int(times[0]))}"
            ) from None
        closes = pd.Series(candles["close"].to_numpy(), index=_ms(candles.index))
        price = closes.reindex(times).to_numpy(dtype=np.float64)
        missing = np.flatnonzero(np.isnan(price))
        if missing.size:
            raise DataError(
                f"no stored {timeframe} candle of {symbol} at {format_ms(int(times[missing[0]]))} "
                f"UTC to convert the file's base-coin amounts ({missing.size} bars lack one); "
                f"{store.download_command(exchange, symbol, timeframe, int(times[0]))}"
            )
        return price

    return lookup


def _ms(index: pd.DatetimeIndex) -> np.ndarray:
    return index.as_unit("ms").asi8.astype(np.int64)


def import_series(
    path: str | os.PathLike[str],
    *,
    kind: str,
    symbol: str,
    exchange: str = "binanceusdm",
    layout: str = "auto",
    data_dir: str | os.PathLike[str] | None = None,
    timeframe: str | None = None,
    utc_offset_hours: float | None = None,
    venue: str | None = None,
    measure: str = "global_account",
    known_at: str | None = None,
    skip_blank: bool = False,
    scope: str | None = None,
) -> ImportResult:
    """Import liquidation totals, open interest or long/short shares from a file into the store.

    Parameters
    ----------
    path : path-like
        CSV or Parquet export (layouts: :mod:`backtest.market.groundtruth`).
    kind : {"liquidations", "open-interest", "long-short"}
        What to read from the file.
    symbol : str
        ccxt unified symbol the series belongs to, e.g. ``"BTC/USDT:USDT"``.
    exchange : str
        ccxt exchange id whose store folder receives the file.
    layout : str
        ``"auto"`` (recognised by the header) or a layout name.
    data_dir : path-like, optional
        Store root; ``$BACKTEST_DATA`` or ``./data`` by default.
    timeframe : str, optional
        Bar length; inferred from the row spacing when omitted (must agree when given).
    utc_offset_hours : float, optional
        The file's clock runs this many hours ahead of UTC (UTC = label - offset); 0 unless
        the layout knows better (``coinalyze-ohlcv``: 6).
    venue : str, optional
        Column of a per-exchange open-interest file (default from ``exchange``).
    measure : {"global_account", "top_account", "top_position"}
        Which long/short share a plain file holds.
    known_at : {"bar_close", "time"}, optional
        When a plain file's level is known (default ``bar_close``: at open + timeframe).
    skip_blank : bool
        Leave out rows with blank values inside the file instead of refusing it (blank rows
        at the start or end are always left out).
    scope : str, optional
        What the numbers cover, recorded in the file (the layout's description by default;
        e.g. ``"CoinGlass, Binance only, all BTC contracts"`` when you know the export's venues).

    Returns
    -------
    ImportResult
        What was stored where.

    Raises
    ------
    DataError
        One line naming the file, the row and the remedy; nothing is written.
    ConfigError
        An unknown kind, layout or option.
    """
    kind = _kind(kind)
    store.symbol_file_stem(symbol)
    options = ReadOptions(
        kind=kind,
        symbol=symbol,
        exchange=exchange,
        timeframe=timeframe,
        utc_offset_hours=utc_offset_hours,
        venue=venue,
        measure=measure,
        known_at=known_at,
        skip_blank=skip_blank,
        price_lookup=_price_lookup(symbol, exchange, data_dir),
    )
    parsed = read_file(path, options, layout)
    if scope:
        parsed.scope = scope
    root = Path(data_dir) if data_dir is not None else store.default_data_dir()
    target = store.series_path(root, exchange, symbol, kind, parsed.timeframe)
    return _store(parsed, target, Path(path), symbol, exchange)


def _store(
    parsed: ParsedSeries, target: Path, source: Path, symbol: str, exchange: str
) -> ImportResult:
    metadata = {
        "scope": parsed.scope,
        "unit": parsed.unit,
        "known_at": parsed.known_at,
        "layout": parsed.layout,
    }
    frame = parsed.frame
    if target.exists():
        stored = store.read_series(
            target, parsed.kind, exchange=exchange, symbol=symbol, timeframe=parsed.timeframe
        )
        held = {key: stored.attrs.get(key, "") for key in ("scope", "unit", "known_at")}
        if held["scope"] != parsed.scope or held["unit"] != parsed.unit:
            what = held["scope"] or f"a download from {exchange} ({stored.attrs.get('source')})"
            raise DataError(
                f"{target} already holds {_LABELS[parsed.kind]} of another scope ({what}); "
                f"importing {parsed.scope} would mix them: import into another --data-dir or "
                "move that file away"
            )
        frame = store.merge_series(stored[list(frame.columns)], frame)
    written = store.write_series(
        target,
        frame,
        series=parsed.kind,
        exchange=exchange,
        symbol=symbol,
        timeframe=parsed.timeframe,
        source=f"{source.name} (imported, {parsed.layout} layout)",
        extra=metadata,
    )
    times = frame["timestamp_ms"].to_numpy()
    return ImportResult(
        path=written,
        kind=parsed.kind,
        symbol=symbol,
        exchange=exchange,
        timeframe=parsed.timeframe,
        layout=parsed.layout,
        rows_read=len(parsed.frame),
        rows_stored=len(frame),
        first_ms=int(times[0]),
        last_ms=int(times[-1]),
        scope=parsed.scope,
        notes=parsed.notes,
    )


# --------------------------------------------------------------------------------------------
# finding and loading
# --------------------------------------------------------------------------------------------
def stored_timeframes(
    kind: str,
    symbol: str,
    *,
    exchange: str = "binanceusdm",
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Return ``timeframe -> file`` of a stored series (the user's store wins over the sample)."""
    found: dict[str, Path] = {}
    for timeframe, path in _stored_files(kind, symbol, exchange, data_dir):
        found.setdefault(timeframe, path)
    return dict(sorted(found.items(), key=lambda item: timeframe_to_ms(item[0])))


def _stored_files(
    kind: str, symbol: str, exchange: str, data_dir: str | os.PathLike[str] | None
) -> list[tuple[str, Path]]:
    """Every stored file of a series as ``(timeframe, path)``, in search-root order."""
    kind = _kind(kind)
    stem = store.symbol_file_stem(symbol)
    suffix = store.series_filename(symbol, kind, "1m").split("-1m", 1)[1]
    files: list[tuple[str, Path]] = []
    for root in store.search_roots(data_dir):
        folder = root / exchange
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"{stem}-*{suffix}")):
            timeframe = path.name[len(stem) + 1 : -len(suffix)]
            try:
                timeframe_to_ms(timeframe)
            except ConfigError:
                continue
            files.append((timeframe, path))
    return files


def _root_rank(path: Path, data_dir: str | os.PathLike[str] | None) -> int:
    """Position of the search root holding ``path`` (0: the user's store)."""
    for rank, root in enumerate(store.search_roots(data_dir)):
        if path.parent.parent.resolve() == root.resolve():
            return rank
    return len(store.search_roots(data_dir))


def _read(kind: str, path: Path, symbol: str, exchange: str, timeframe: str) -> pd.DataFrame:
    frame = store.read_series(path, kind, exchange=exchange, symbol=symbol, timeframe=timeframe)
    check_values(kind, frame, path, "the file is damaged: import the series again")
    return frame


def _range(since: object, until: object) -> tuple[int | None, int | None]:
    since_ms = parse_time(since, "since")
    until_ms = parse_time(until, "until")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise ConfigError(
            f"since {format_ms(since_ms)} is not before until {format_ms(until_ms)}; swap them"
        )
    return since_ms, until_ms


def _to_frame(
    times: np.ndarray, values: dict[str, np.ndarray], attrs: dict[str, object]
) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True).as_unit("ns"), name="time")
    frame = pd.DataFrame(
        {name: np.asarray(array, dtype=np.float64) for name, array in values.items()}, index=index
    )
    frame.attrs.update(attrs)
    return frame


def _cut(
    frame: pd.DataFrame,
    since_ms: int | None,
    until_ms: int | None,
    what: str,
    path: object,
) -> pd.DataFrame:
    times = _ms(frame.index)
    keep = np.ones(times.size, dtype=bool)
    if since_ms is not None:
        keep &= times >= since_ms
    if until_ms is not None:
        keep &= times < until_ms
    if not keep.any():
        held = (
            f"{format_ms(int(times[0]))} .. {format_ms(int(times[-1]))} UTC"
            if times.size
            else "nothing"
        )
        start = format_ms(since_ms) if since_ms is not None else "the start"
        end = format_ms(until_ms) if until_ms is not None else "the end"
        raise DataError(
            f"no {what} in {start} .. {end}; {path} holds {held}; pick dates inside that or "
            "import more"
        )
    result = frame[keep]
    result.attrs.update(frame.attrs)
    return result


def _missing(kind: str, symbol: str, exchange: str, data_dir: object, timeframe: str) -> DataError:
    roots = store.search_roots(data_dir)
    return DataError(
        f"no {_LABELS[kind]} of {symbol} from {exchange} in {roots[0]} or the bundled sample "
        f"({timeframe} or finer); import a file with: {import_command(kind, symbol, exchange)}"
    )


def _group_origin(step_ms: int) -> int:
    """Bars of a week open on Mondays (ccxt/Binance); shorter bars on the UTC epoch grid."""
    return 345_600_000 if step_ms == 604_800_000 else 0  # 1970-01-05 is a Monday


def sum_bars(
    times_ms: np.ndarray, values: np.ndarray, source_step_ms: int, target_step_ms: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Sum totals of ``source`` bars into ``target`` bars; keep only complete target bars.

    Parameters
    ----------
    times_ms : ndarray of int64
        Sorted unique source bar open times.
    values : ndarray, shape (n, k)
        The source bars' totals.
    source_step_ms, target_step_ms : int
        Bar lengths; ``target`` must be a whole multiple of ``source``.

    Returns
    -------
    (ndarray, ndarray, int)
        Target bar open times, their sums, and how many partial target bars were dropped.
    """
    if target_step_ms % source_step_ms:
        raise ValueError("the target timeframe is not a multiple of the source timeframe")
    origin = _group_origin(target_step_ms)
    bars = times_ms - (times_ms - origin) % target_step_ms
    starts, first, counts = np.unique(bars, return_index=True, return_counts=True)
    sums = np.add.reduceat(values, first, axis=0) if times_ms.size else values[:0]
    complete = counts == target_step_ms // source_step_ms
    return starts[complete], sums[complete], int(np.sum(~complete))


def load_liquidations(
    symbol: str,
    timeframe: str,
    *,
    exchange: str = "binanceusdm",
    since: object = None,
    until: object = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Load per-bar liquidation totals (the truth a liquidation map is scored against).

    Parameters
    ----------
    symbol : str
        ccxt unified symbol, e.g. ``"BTC/USDT:USDT"``.
    timeframe : str
        Bar length wanted.  The stored file of that timeframe is used when there is one;
        otherwise the coarsest stored timeframe that divides it, summed (whole bars only).
    exchange : str
        ccxt exchange id of the store folder.
    since, until : str, datetime, pandas.Timestamp or int (epoch ms), optional
        Keep bars whose open time is ``>= since`` and ``< until`` (UTC).
    data_dir : path-like, optional
        The user's store (``$BACKTEST_DATA`` or ``./data``); the bundled sample (CoinGlass
        Binance BTC and ETH 4h) is searched after it.

    Returns
    -------
    pandas.DataFrame
        Index: bar open times (``DatetimeIndex`` UTC, named ``"time"``); float64 columns
        ``long`` and ``short``: notional of long and short positions liquidated in the bar, in
        quote currency (USD for CoinGlass).  ``attrs``: symbol, exchange, timeframe,
        source_timeframe, scope, unit, source, path, partial_bars_dropped.

    Raises
    ------
    DataError
        When nothing is stored (the message gives the import command), when only coarser bars
        are stored (a finer series cannot be invented: sum the estimate up to that timeframe
        instead), when the range holds no bars, or a file is damaged.
    """
    step = timeframe_to_ms(timeframe)
    since_ms, until_ms = _range(since, until)
    available = stored_timeframes("liquidations", symbol, exchange=exchange, data_dir=data_dir)
    if not available:
        raise _missing("liquidations", symbol, exchange, data_dir, timeframe)
    files = [
        (tf, path)
        for tf, path in _stored_files("liquidations", symbol, exchange, data_dir)
        if step % timeframe_to_ms(tf) == 0
    ]
    if not files:
        raise DataError(
            f"the stored liquidations of {symbol} ({exchange}) are {', '.join(available)} bars; "
            f"{timeframe} bars cannot be made from them (a finer series is not invented): load "
            f"{next(iter(available))} and sum the estimate up to it"
        )
    # the requested timeframe first, then coarser-to-finer sources; the user's store before the
    # bundled sample; the first file holding bars in the range wins
    files.sort(key=lambda item: (item[0] != timeframe, -timeframe_to_ms(item[0])))
    chosen: tuple[str, Path, pd.DataFrame] | None = None
    for source_timeframe, path in files:
        stored = _read("liquidations", path, symbol, exchange, source_timeframe)
        held = stored["timestamp_ms"].to_numpy(dtype=np.int64)
        inside = np.ones(held.size, dtype=bool)
        if since_ms is not None:
            inside &= held + timeframe_to_ms(source_timeframe) > since_ms
        if until_ms is not None:
            inside &= held < until_ms
        if inside.any():
            chosen = (source_timeframe, path, stored)
            break
    if chosen is None:
        chosen = (
            files[0][0],
            files[0][1],
            _read("liquidations", files[0][1], symbol, exchange, files[0][0]),
        )
    source_timeframe, path, stored = chosen
    times = stored["timestamp_ms"].to_numpy(dtype=np.int64)
    values = stored[["long", "short"]].to_numpy(dtype=np.float64)
    dropped = 0
    if source_timeframe != timeframe:
        times, values, dropped = sum_bars(times, values, timeframe_to_ms(source_timeframe), step)
    attrs = {
        "symbol": symbol,
        "exchange": exchange,
        "timeframe": timeframe,
        "source_timeframe": source_timeframe,
        "scope": stored.attrs.get("scope", ""),
        "unit": stored.attrs.get("unit", ""),
        "source": stored.attrs.get("source", ""),
        "path": str(path),
        "partial_bars_dropped": dropped,
    }
    frame = _to_frame(times, {"long": values[:, 0], "short": values[:, 1]}, attrs)
    return _cut(frame, since_ms, until_ms, f"{timeframe} liquidations of {symbol}", path)


def _load_level(
    kind: str,
    symbol: str,
    timeframe: str | None,
    exchange: str,
    since: object,
    until: object,
    data_dir: str | os.PathLike[str] | None,
) -> pd.DataFrame:
    since_ms, until_ms = _range(since, until)
    available = stored_timeframes(kind, symbol, exchange=exchange, data_dir=data_dir)
    if not available:
        raise _missing(kind, symbol, exchange, data_dir, timeframe or "any")
    if timeframe is None:
        # the finest timeframe of the first folder holding any (the user's store before the sample)
        first_root = min(_root_rank(path, data_dir) for path in available.values())
        timeframe = next(
            tf for tf, path in available.items() if _root_rank(path, data_dir) == first_root
        )
    elif timeframe not in available:
        raise DataError(
            f"no {timeframe} {_LABELS[kind]} of {symbol} ({exchange}); stored: "
            f"{', '.join(available)}; load one of those and put it on your bars with align_as_of"
        )
    path = available[timeframe]
    stored = _read(kind, path, symbol, exchange, timeframe)
    times = stored["timestamp_ms"].to_numpy(dtype=np.int64)
    attrs = {
        "symbol": symbol,
        "exchange": exchange,
        "timeframe": timeframe,
        "known_at": stored.attrs.get("known_at") or "time",
        "scope": stored.attrs.get("scope") or f"{exchange} {symbol} (downloaded)",
        "unit": stored.attrs.get("unit", ""),
        "source": stored.attrs.get("source", ""),
        "path": str(path),
    }
    values = {name: stored[name].to_numpy() for name in KIND_COLUMNS[kind]}
    frame = _to_frame(times, values, attrs)
    return _cut(frame, since_ms, until_ms, f"{timeframe} {_LABELS[kind]} of {symbol}", path)


def load_open_interest(
    symbol: str,
    timeframe: str | None = None,
    *,
    exchange: str = "binanceusdm",
    since: object = None,
    until: object = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Load stored open interest (downloaded or imported) as stored, stamped by bar open.

    Parameters
    ----------
    symbol : str
        ccxt unified symbol.
    timeframe : str, optional
        The stored timeframe to read; when omitted, the finest one in the user's store (the
        bundled sample's when the store has none).  To put open
        interest on candles of another timeframe use :func:`align_as_of` (no look-ahead).
    exchange, since, until, data_dir
        As in :func:`load_liquidations`.

    Returns
    -------
    pandas.DataFrame
        Index: bar open times (UTC, ``"time"``); float64 columns ``open_interest`` (base units,
        NaN when the source gives none) and ``open_interest_value`` (quote currency; USD for
        CoinGlass).  ``attrs``: timeframe, known_at (``bar_close``: the value is known at open +
        timeframe; ``time``: at the stamp), scope (e.g. all exchanges vs one venue), unit,
        source, path.

    Raises
    ------
    DataError
        Nothing stored (with the import command), the timeframe not stored, no bars in range.
    """
    return _load_level("open_interest", symbol, timeframe, exchange, since, until, data_dir)


def load_long_short(
    symbol: str,
    timeframe: str | None = None,
    *,
    exchange: str = "binanceusdm",
    since: object = None,
    until: object = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Load stored long/short shares (fraction of longs, 0..1), stamped by bar open.

    Returns
    -------
    pandas.DataFrame
        Float64 columns ``long_share`` (all accounts: Binance's global long/short account
        ratio ``r`` as ``r / (1 + r)``), ``top_account_long_share`` and
        ``top_position_long_share`` (Binance's top traders by account and by position), NaN
        where the source has none.  Index and ``attrs`` as in :func:`load_open_interest`.
    """
    return _load_level("long_short", symbol, timeframe, exchange, since, until, data_dir)


def known_times(frame: pd.DataFrame) -> np.ndarray:
    """Return when each row of a loaded level became known, epoch ms (see ``attrs['known_at']``)."""
    times = _ms(frame.index)
    if frame.attrs.get("known_at", "time") == "bar_close":
        return times + timeframe_to_ms(str(frame.attrs["timeframe"]))
    return times


def align_as_of(
    levels: pd.DataFrame,
    index: pd.DatetimeIndex,
    *,
    max_age: str | None = "source",
) -> pd.DataFrame:
    """Put a level series on other bars using only values known at each bar's open.

    Each target bar opening at ``t`` gets the newest row known at or before ``t`` (a row stamped
    at its source bar's open with ``known_at = "bar_close"`` is known at open + source
    timeframe).  So a 4h open-interest close stamped 08:00 first appears on the bar opening at
    12:00, on 5m and 4h candles alike.

    Parameters
    ----------
    levels : pandas.DataFrame
        As returned by :func:`load_open_interest` or :func:`load_long_short`.
    index : pandas.DatetimeIndex
        Target bar open times (UTC, e.g. a candle frame's index).
    max_age : str or None
        How long a value stays valid after it became known: ``"source"`` (one source bar: a
        missing source row leaves NaN rather than a stale value), a timeframe such as ``"8h"``,
        or None (no limit).

    Returns
    -------
    pandas.DataFrame
        The level's columns on ``index``; NaN where nothing was known yet (or it is too old).
    """
    target = _ms(pd.DatetimeIndex(index))
    known = known_times(levels)
    order = np.argsort(known, kind="stable")
    known = known[order]
    values = levels.to_numpy(dtype=np.float64)[order]
    position = np.searchsorted(known, target, side="right") - 1
    found = position >= 0
    if max_age is not None and known.size:
        limit = timeframe_to_ms(
            str(levels.attrs["timeframe"]) if max_age == "source" else str(max_age)
        )
        age = target - known[position.clip(min=0)]
        found &= age < limit
    out = np.full((target.size, values.shape[1]), np.nan)
    out[found] = values[position[found]]
    frame = pd.DataFrame(out, index=index, columns=levels.columns)
    frame.attrs.update(levels.attrs)
    return frame


def load_context(
    bars: pd.DataFrame | pd.DatetimeIndex,
    symbol: str | None = None,
    *,
    exchange: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Return open interest and long/short shares on candle bars, as known at each bar's open.

    Parameters
    ----------
    bars : pandas.DataFrame or pandas.DatetimeIndex
        Candles (e.g. from :func:`backtest.market.store.load_market`, whose ``attrs`` name the
        symbol and exchange) or their index.
    symbol, exchange : str, optional
        Override / supply what ``bars.attrs`` does not.
    data_dir : path-like, optional
        The store (the bundled sample is searched after it).

    Returns
    -------
    pandas.DataFrame
        On the bars' index: ``open_interest``, ``open_interest_value``, ``long_share``,
        ``top_account_long_share``, ``top_position_long_share`` (NaN where not stored or not yet
        known).  The finest stored timeframe of each series is used.  ``attrs['sources']``
        names the files.
    """
    index = bars if isinstance(bars, pd.DatetimeIndex) else bars.index
    attrs = {} if isinstance(bars, pd.DatetimeIndex) else bars.attrs
    symbol = symbol or attrs.get("symbol")
    exchange = exchange or attrs.get("exchange") or "binanceusdm"
    if not symbol:
        raise ConfigError("load_context needs the symbol (bars.attrs has none)")
    columns: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for kind in ("open_interest", "long_short"):
        if not stored_timeframes(kind, symbol, exchange=exchange, data_dir=data_dir):
            for name in KIND_COLUMNS[kind]:
                columns[name] = np.full(len(index), np.nan)
            continue
        levels = _load_level(kind, symbol, None, exchange, None, None, data_dir)
        aligned = align_as_of(levels, index)
        sources[kind] = str(levels.attrs["path"])
        for name in KIND_COLUMNS[kind]:
            columns[name] = aligned[name].to_numpy()
    frame = pd.DataFrame(columns, index=index)
    frame.attrs["sources"] = sources
    return frame
