"""The Parquet store of market history, and loading it as one frame for the engine.

Layout (one file per exchange × symbol × series, timeframe where the series has one)::

    <data>/<exchange>/<BASE>_<QUOTE>[_<SETTLE>]-<timeframe>.parquet          candles
    <data>/<exchange>/<BASE>_<QUOTE>[_<SETTLE>]-<timeframe>-mark.parquet     mark-price candles
    <data>/<exchange>/<BASE>_<QUOTE>[_<SETTLE>]-<timeframe>-oi.parquet       open interest
    <data>/<exchange>/<BASE>_<QUOTE>[_<SETTLE>]-funding.parquet              funding settlements

e.g. ``data/binanceusdm/BTC_USDT_USDT-5m.parquet`` for ccxt's ``BTC/USDT:USDT``.  Every file
holds a column ``timestamp_ms`` (int64, UTC epoch milliseconds: the bar's open time, or the
settlement time) sorted and unique, and float64 value columns.  The Parquet schema metadata
names the series, exchange, symbol, timeframe and source, so a file that was renamed, written
by another tool or truncated is recognised and named instead of being read as something else.

Writes go to a temporary file in the same folder and are moved over the old file with
:func:`os.replace`, which is atomic: a reader or a killed writer sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from backtest._paths import bundled_data_dir
from backtest.errors import ConfigError, DataError
from backtest.folders import clean_temporaries
from backtest.market.checks import check_series_values
from backtest.market.timeframes import (
    format_date_argument,
    format_ms,
    parse_time,
    timeframe_to_ms,
)

#: Value columns of each stored series (all float64), after ``timestamp_ms``.
SERIES_COLUMNS: dict[str, tuple[str, ...]] = {
    "ohlcv": ("open", "high", "low", "close", "volume"),
    "mark": ("open", "high", "low", "close"),
    "funding": ("funding_rate",),
    "open_interest": ("open_interest", "open_interest_value"),
    # per-bar liquidation totals and long/short shares (see backtest.market.series)
    "liquidations": ("long", "short"),
    "long_short": ("long_share", "top_account_long_share", "top_position_long_share"),
}

#: File-name suffix after the timeframe (funding files carry no timeframe).
_SERIES_SUFFIX: dict[str, str] = {
    "ohlcv": "",
    "mark": "-mark",
    "open_interest": "-oi",
    "liquidations": "-liquidations",
    "long_short": "-longshort",
}

#: Columns of the frame :func:`load_market` returns, in order (open interest only when stored).
MARKET_COLUMNS: tuple[str, ...] = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "funding_rate",
    "mark_open",
    "mark_high",
    "mark_low",
    "mark_close",
)

FORMAT_VERSION = "1"
_META_PREFIX = "backtest."
TIMESTAMP = "timestamp_ms"

#: The bundled real sample, searched after the user's store.
SAMPLE_DIR = bundled_data_dir() / "sample"


# --------------------------------------------------------------------------------------------
# names and places
# --------------------------------------------------------------------------------------------
def default_data_dir() -> Path:
    """Return the user's store: ``$BACKTEST_DATA`` when set, else ``./data``."""
    return Path(os.environ.get("BACKTEST_DATA") or "data")


def search_roots(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Return the folders searched for data: the user's store, then the bundled sample."""
    roots = [Path(data_dir) if data_dir is not None else default_data_dir(), SAMPLE_DIR]
    unique: list[Path] = []
    seen: set[Path] = set()
    for root in roots:
        key = root.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(root)
    return unique


#: Longest symbol accepted (ccxt's longest, options such as BTC/USD:BTC-250328-100000-C, are ~30).
MAX_SYMBOL_LENGTH = 100


def symbol_file_stem(symbol: str) -> str:
    """Return the file-name form of a ccxt symbol: ``BTC/USDT:USDT`` -> ``BTC_USDT_USDT``.

    Every character other than letters and digits becomes ``_`` so that the ``-`` separating
    the timeframe and series stays unambiguous (dated futures: ``BTC/USDT:USDT-250328`` ->
    ``BTC_USDT_USDT_250328``).
    """
    if isinstance(symbol, str) and len(symbol) > MAX_SYMBOL_LENGTH:
        raise ConfigError(
            f"symbol {symbol[:40]!r}... is {len(symbol):,} characters long; ccxt symbols are "
            f"short (BTC/USDT:USDT), at most {MAX_SYMBOL_LENGTH} characters here"
        )
    if not symbol or "/" not in symbol:
        raise ConfigError(
            f"symbol {symbol!r} is not a ccxt unified symbol; write it like BTC/USDT:USDT "
            "(perpetual) or BTC/USDT (spot)"
        )
    return re.sub(r"[^0-9A-Za-z]+", "_", symbol).strip("_")


def series_filename(symbol: str, series: str, timeframe: str | None = None) -> str:
    """Return the file name of one series of one symbol (see the module docstring)."""
    stem = symbol_file_stem(symbol)
    if series == "funding":
        return f"{stem}-funding.parquet"
    if series not in _SERIES_SUFFIX:
        raise ValueError(f"unknown series {series!r}; one of {', '.join(SERIES_COLUMNS)}")
    if not timeframe:
        raise ValueError(f"series {series!r} needs a timeframe")
    timeframe_to_ms(timeframe)
    return f"{stem}-{timeframe}{_SERIES_SUFFIX[series]}.parquet"


def series_path(
    data_dir: str | os.PathLike[str],
    exchange: str,
    symbol: str,
    series: str,
    timeframe: str | None = None,
) -> Path:
    """Return ``<data_dir>/<exchange>/<file name>`` for one series."""
    return Path(data_dir) / exchange / series_filename(symbol, series, timeframe)


# --------------------------------------------------------------------------------------------
# reading and writing one series
# --------------------------------------------------------------------------------------------
def empty_series(series: str) -> pd.DataFrame:
    """Return an empty frame with the columns and dtypes of ``series``."""
    columns = {TIMESTAMP: np.empty(0, dtype=np.int64)}
    columns.update({name: np.empty(0, dtype=np.float64) for name in SERIES_COLUMNS[series]})
    return pd.DataFrame(columns)


def _metadata(path: Path, schema: pa.Schema) -> dict[str, str]:
    raw = schema.metadata or {}
    return {
        key.decode(errors="replace")[len(_META_PREFIX) :]: value.decode(errors="replace")
        for key, value in raw.items()
        if key.decode(errors="replace").startswith(_META_PREFIX)
    }


def read_series(
    path: str | os.PathLike[str],
    series: str,
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> pd.DataFrame:
    """Read and check one stored series.

    Parameters
    ----------
    path : path-like
        The Parquet file.
    series : {"ohlcv", "mark", "funding", "open_interest"}
        What the file must hold.
    exchange, symbol, timeframe : str, optional
        When given, the file's metadata must name the same.

    Returns
    -------
    pandas.DataFrame
        ``timestamp_ms`` (int64) and the series' float64 columns, sorted by time; ``attrs``
        carries the file's metadata (series, exchange, symbol, timeframe, source).

    Raises
    ------
    DataError
        Naming the file, when it is unreadable (corrupt, truncated), foreign (not written by
        this store, or holding another series/symbol) or its timestamps are not sorted and unique.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            table = pq.read_table(handle)
    except FileNotFoundError:
        raise
    except (IsADirectoryError, NotADirectoryError, PermissionError) as error:
        raise DataError(unreadable_message(path, error)) from None
    except OSError as error:
        if error.errno in _ACCESS_ERRNOS:
            raise DataError(unreadable_message(path, error)) from None
        raise DataError(
            f"{path} is not a readable Parquet file (corrupt or truncated: "
            f"{_one_line(error)}); delete it and download again"
        ) from error
    except pa.ArrowException as error:
        raise DataError(
            f"{path} is not a readable Parquet file (corrupt or truncated: "
            f"{_one_line(error)}); delete it and download again"
        ) from error
    meta = _metadata(path, table.schema)
    if "series" not in meta:
        raise DataError(
            f"{path} was not written by this store (no backtest metadata); "
            "move it out of the data folder or delete it and download again"
        )
    expected = {"series": series, "exchange": exchange, "symbol": symbol}
    if series != "funding":
        expected["timeframe"] = timeframe
    for key, want in expected.items():
        if want is not None and meta.get(key) != want:
            raise DataError(
                f"{path} holds {key} {meta.get(key)!r}, not {want!r} (a renamed or misplaced "
                "file); move it away or delete it and download again"
            )
    columns = (TIMESTAMP, *SERIES_COLUMNS[series])
    if tuple(table.column_names) != columns:
        raise DataError(
            f"{path} has columns {', '.join(table.column_names)}; a {series} file has "
            f"{', '.join(columns)}; delete it and download again"
        )
    types = [table.schema.field(name).type for name in columns]
    if types[0] != pa.int64() or any(kind != pa.float64() for kind in types[1:]):
        raise DataError(
            f"{path} stores {', '.join(map(str, types))}; expected int64 timestamps and "
            "float64 values; delete it and download again"
        )
    frame = table.to_pandas()
    timestamps = frame[TIMESTAMP].to_numpy()
    if timestamps.size > 1 and not np.all(np.diff(timestamps) > 0):
        row = int(np.flatnonzero(np.diff(timestamps) <= 0)[0]) + 1
        raise DataError(
            f"{path} has unsorted or repeated timestamps (damaged) at row {row + 1} "
            f"(timestamp_ms {int(timestamps[row])}); delete it and download again"
        )
    check_series_values(frame, series, str(path), step_ms=_step_of(path, series, meta))
    frame.attrs.update(meta)
    frame.attrs["path"] = str(path)
    return frame


def _one_line(error: BaseException, limit: int = 300) -> str:
    """A library's error text on one line, cut to ``limit`` characters (Arrow's span lines)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: errno values that mean "not allowed" or "not a file", not "damaged".
_ACCESS_ERRNOS = {errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG}


def unreadable_message(path: Path, error: OSError) -> str:
    """One line for a store file or folder the system refuses to open (not a damaged file)."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENAMETOOLONG:
        return f"cannot read {path}: {reason}; check the symbol and the data folder's path"
    if error.errno in (errno.EISDIR, errno.ENOTDIR):
        return f"cannot read {path}: {reason} (a folder where a data file belongs); move it away"
    return f"cannot read {path}: {reason}; check the permissions of the file and its folders"


def _step_of(path: Path, series: str, meta: dict[str, str]) -> int | None:
    """The bar length of a candle file, from its metadata (None for other series)."""
    if series not in ("ohlcv", "mark"):
        return None
    try:
        return timeframe_to_ms(meta.get("timeframe", ""))
    except ConfigError:
        raise DataError(
            f"{path} names timeframe {meta.get('timeframe')!r} in its metadata, which is not a "
            "timeframe; delete it and download again"
        ) from None


def merge_series(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Concatenate two frames of one series, sort by time and keep one row per timestamp.

    Where both hold a timestamp, the row from ``new`` wins (a later download corrects an
    earlier one).  Rows with a missing timestamp are dropped.
    """
    parts = [part for part in (old, new) if len(part)]
    if not parts:
        return old.iloc[0:0].copy()
    merged = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()
    merged = merged[merged[TIMESTAMP].notna()]
    merged = merged.drop_duplicates(TIMESTAMP, keep="last").sort_values(TIMESTAMP, kind="stable")
    return merged.reset_index(drop=True)


def _to_table(frame: pd.DataFrame, series: str, metadata: dict[str, str]) -> pa.Table:
    arrays = [pa.array(frame[TIMESTAMP].to_numpy(dtype=np.int64), type=pa.int64())]
    for name in SERIES_COLUMNS[series]:
        arrays.append(pa.array(frame[name].to_numpy(dtype=np.float64), type=pa.float64()))
    schema = pa.schema(
        [pa.field(TIMESTAMP, pa.int64())]
        + [pa.field(name, pa.float64()) for name in SERIES_COLUMNS[series]],
        metadata={f"{_META_PREFIX}{key}": value for key, value in metadata.items()},
    )
    return pa.Table.from_arrays(arrays, schema=schema)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_series(
    path: str | os.PathLike[str],
    frame: pd.DataFrame,
    *,
    series: str,
    exchange: str,
    symbol: str,
    timeframe: str | None = None,
    source: str = "",
    extra: dict[str, str] | None = None,
) -> Path:
    """Write one series atomically (temporary file in the same folder, then ``os.replace``).

    The frame is sorted and de-duplicated by timestamp first.

    Parameters
    ----------
    path : path-like
        Destination; its folder is created when missing.
    frame : pandas.DataFrame
        ``timestamp_ms`` and the series' value columns.
    series, exchange, symbol, timeframe, source : str
        Recorded in the file's metadata (``source`` says where the rows came from).
    extra : dict of str, optional
        More metadata (imported series record ``scope``, ``unit``, ``known_at``, ``layout``).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    missing = [name for name in (TIMESTAMP, *SERIES_COLUMNS[series]) if name not in frame]
    if missing:
        raise ValueError(f"cannot write {series}: columns {missing} missing")
    frame = merge_series(empty_series(series), frame[[TIMESTAMP, *SERIES_COLUMNS[series]]])
    metadata = {
        "format": FORMAT_VERSION,
        "series": series,
        "exchange": exchange,
        "symbol": symbol,
        "timeframe": "" if series == "funding" else (timeframe or ""),
        "source": source,
        **(extra or {}),
    }
    table = _to_table(frame, series, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_temporaries(path.parent)  # what killed writes left (only our temporary names)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.backtest-tmp-{os.getpid()}-", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as sink:
            pq.write_table(table, sink, compression="zstd")
            sink.flush()
            os.fsync(sink.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------------------------
# gaps
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gap:
    """Missing bars between two stored bars: ``after_ms`` and ``before_ms`` are present."""

    after_ms: int
    before_ms: int
    missing_bars: int

    def __str__(self) -> str:
        return f"{format_ms(self.after_ms)} -> {format_ms(self.before_ms)} ({self.missing_bars})"


def find_gaps(timestamps_ms: Sequence[int] | np.ndarray, step_ms: int) -> list[Gap]:
    """Return the places where consecutive timestamps are more than one bar apart."""
    times = np.asarray(timestamps_ms, dtype=np.int64)
    if times.size < 2:
        return []
    steps = np.diff(times)
    where = np.flatnonzero(steps > step_ms)
    return [
        Gap(int(times[i]), int(times[i + 1]), int(steps[i] // step_ms) - 1)
        for i in where
        if steps[i] // step_ms > 1 or steps[i] % step_ms
    ]


# --------------------------------------------------------------------------------------------
# what is stored
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredSeries:
    """One file of the store, as :func:`list_available` reports it."""

    path: Path
    exchange: str
    symbol: str
    series: str
    timeframe: str
    rows: int
    first_ms: int | None
    last_ms: int | None
    bundled: bool

    def describe(self) -> str:
        """Return one line: exchange, symbol, series, timeframe, rows and time range."""
        label = self.series if self.series != "ohlcv" else "candles"
        timeframe = f" {self.timeframe}" if self.timeframe else ""
        origin = " (bundled sample)" if self.bundled else ""
        return (
            f"{self.exchange} {self.symbol}{timeframe} {label}: {self.rows} rows, "
            f"{format_ms(self.first_ms)} .. {format_ms(self.last_ms)} UTC{origin}"
        )


def _summarise(path: Path, bundled: bool) -> StoredSeries | None:
    try:
        parquet = pq.ParquetFile(path)
        meta = _metadata(path, parquet.schema_arrow)
        if "series" not in meta:
            return None
        times = parquet.read(columns=[TIMESTAMP]).column(0).to_numpy()
    except (pa.ArrowException, OSError, KeyError):
        return None
    return StoredSeries(
        path=path,
        exchange=meta.get("exchange", path.parent.name),
        symbol=meta.get("symbol", ""),
        series=meta["series"],
        timeframe=meta.get("timeframe", ""),
        rows=int(times.size),
        first_ms=int(times[0]) if times.size else None,
        last_ms=int(times[-1]) if times.size else None,
        bundled=bundled,
    )


def list_available(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    include_sample: bool = True,
) -> list[StoredSeries]:
    """List every readable series in the user's store and (by default) the bundled sample.

    Unreadable or foreign files are skipped here; :func:`read_series` names them when used.
    """
    roots = search_roots(data_dir)
    if not include_sample:
        roots = [root for root in roots if root.resolve() != SAMPLE_DIR.resolve()]
    found: list[StoredSeries] = []
    for root in roots:
        bundled = root.resolve() == SAMPLE_DIR.resolve()
        if not root.is_dir():
            continue
        for path in sorted(root.glob("*/*.parquet")):
            if bundled is False and path.parent.name == "sample":
                continue
            summary = _summarise(path, bundled)
            if summary is not None:
                found.append(summary)
    rank = {name: index for index, name in enumerate(("ohlcv", "mark", "open_interest", "funding"))}

    def order(item: StoredSeries) -> tuple:
        try:
            step = timeframe_to_ms(item.timeframe) if item.timeframe else 0
        except ConfigError:
            step = -1
        return (item.bundled, item.exchange, item.symbol, step, rank.get(item.series, 9))

    return sorted(found, key=order)


# --------------------------------------------------------------------------------------------
# loading a market frame
# --------------------------------------------------------------------------------------------
def download_command(
    exchange: str,
    symbol: str,
    timeframe: str,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> str:
    """Return the ``python -m backtest download ...`` command that fetches a series."""
    command = (
        f"python -m backtest download --exchange {exchange} --symbol {symbol} "
        f"--timeframe {timeframe}"
    )
    if since_ms is not None:
        command += f" --since {format_date_argument(since_ms)}"
    if until_ms is not None:
        command += f" --until {format_date_argument(until_ms)}"
    return command


def _range_text(since_ms: int | None, until_ms: int | None) -> str:
    start = format_ms(since_ms) if since_ms is not None else "the start"
    end = format_ms(until_ms) if until_ms is not None else "the end"
    return f"{start} .. {end}"


def check_data_dir(data_dir: str | os.PathLike[str] | None = None) -> None:
    """Refuse a store folder the user named (``data_dir`` or ``$BACKTEST_DATA``) that is missing.

    Without either, the store is ``./data``, which may be absent (the bundled sample is used).

    Raises
    ------
    DataError
        When the named folder does not exist or is not a folder.
    """
    if data_dir is not None:
        folder, origin = Path(data_dir), "--data-dir"
    elif os.environ.get("BACKTEST_DATA"):
        folder, origin = Path(os.environ["BACKTEST_DATA"]), "$BACKTEST_DATA"
    else:
        return
    try:
        exists = folder.is_dir()
    except OSError as error:
        raise DataError(unreadable_message(folder, error)) from None
    if not exists:
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(
            f"{origin} {folder} {what}; create it with `backtest download --data-dir {folder} "
            "...`, fix the path, or leave it out to use ./data and the bundled sample"
        )


def _is_file(path: Path) -> bool:
    """``path.is_file()``, with refusals other than "not there" turned into one-line errors.

    A folder where the file belongs counts as present, so that :func:`read_series` names it.
    """
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError as error:
        if error.errno == errno.ENOTDIR:
            return False
        raise DataError(unreadable_message(path, error)) from None
    return True


def _overlaps(times: np.ndarray, since_ms: int | None, until_ms: int | None) -> bool:
    if times.size == 0:
        return False
    low = since_ms if since_ms is not None else times[0]
    high = until_ms if until_ms is not None else times[-1] + 1
    return bool(np.any((times >= low) & (times < high)))


def _companion(
    roots: Iterable[Path],
    exchange: str,
    symbol: str,
    series: str,
    timeframe: str | None,
) -> pd.DataFrame | None:
    for root in roots:
        path = series_path(root, exchange, symbol, series, timeframe)
        if _is_file(path):
            return read_series(path, series, exchange=exchange, symbol=symbol, timeframe=timeframe)
    return None


def describe_files(sources: Mapping[str, str] | None) -> dict[str, dict[str, object]]:
    """Describe the files a market frame was read from, for the run's record.

    Parameters
    ----------
    sources : mapping
        Series name -> path, as in ``load_market(...).attrs["sources"]``.

    Returns
    -------
    dict
        Series name -> ``{"path", "bytes", "modified", "sha256"}`` (absolute path, size,
        modification time in UTC ISO form, SHA-256 of the content); a file that vanished
        since it was read has only ``path``.
    """
    described: dict[str, dict[str, object]] = {}
    for series, name in (sources or {}).items():
        path = Path(name).resolve()
        entry: dict[str, object] = {"path": str(path)}
        try:
            status = path.stat()
            digest = _file_digest(path, status.st_size, status.st_mtime_ns)
        except OSError:
            described[series] = entry
            continue
        modified = dt.datetime.fromtimestamp(status.st_mtime, dt.UTC)
        entry.update(
            bytes=status.st_size, modified=modified.isoformat(timespec="seconds"), sha256=digest
        )
        described[series] = entry
    return described


@functools.lru_cache(maxsize=256)
def _file_digest(path: Path, size: int, modified_ns: int) -> str:
    """SHA-256 of a file, remembered per (path, size, modification time).

    A sweep records the same files for every run; a file rewritten since (new size or time)
    is hashed again.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def place_funding(
    bar_times_ms: np.ndarray,
    settlement_times_ms: np.ndarray,
    rates: np.ndarray,
    step_ms: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Put each funding settlement on the first bar whose open time is at or after it.

    Settlement times are compared at whole-second precision (Binance stamps some settlements a
    few milliseconds after the hour).  A settlement before the first bar's period or after the
    last bar's open has no bar and is left out; two settlements falling on one bar (only
    across a gap in the candles) are added.

    Returns
    -------
    (ndarray, ndarray)
        The per-bar funding rate (NaN on bars without a settlement) and, for each settlement,
        the index of its bar (-1 when it has none).
    """
    bars = np.asarray(bar_times_ms, dtype=np.int64)
    settlements = np.asarray(settlement_times_ms, dtype=np.int64)
    keys = settlements - settlements % 1000
    index = np.searchsorted(bars, keys, side="left")
    placed = np.zeros(bars.size, dtype=np.float64)
    hits = np.zeros(bars.size, dtype=np.int64)
    if bars.size:
        valid = (index < bars.size) & (keys > bars[0] - step_ms)
        np.add.at(placed, index[valid], np.asarray(rates, dtype=np.float64)[valid])
        np.add.at(hits, index[valid], 1)
        index = np.where(valid, index, -1)
    else:
        index = np.full(settlements.size, -1)
    funding = np.where(hits > 0, placed, np.nan)
    return funding, index


def _align(bar_times_ms: np.ndarray, other: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Return ``other``'s columns on the bars' timestamps (NaN where it has no row)."""
    out = np.full((bar_times_ms.size, len(columns)), np.nan)
    times = other[TIMESTAMP].to_numpy(dtype=np.int64)
    if times.size == 0 or bar_times_ms.size == 0:
        return out
    position = np.searchsorted(times, bar_times_ms).clip(max=times.size - 1)
    found = times[position] == bar_times_ms
    values = other[list(columns)].to_numpy(dtype=np.float64)
    out[found] = values[position[found]]
    return out


def load_market(
    symbol: str,
    timeframe: str,
    *,
    exchange: str = "binanceusdm",
    since: object = None,
    until: object = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Load candles joined with funding, mark price and open interest, ready for the engine.

    Parameters
    ----------
    symbol : str
        ccxt unified symbol, e.g. ``"BTC/USDT:USDT"``.
    timeframe : str
        ccxt timeframe of the candles, e.g. ``"5m"``.
    exchange : str
        ccxt exchange id the data was downloaded from.
    since, until : str, datetime, pandas.Timestamp or int (epoch ms), optional
        Keep bars whose open time is ``>= since`` and ``< until`` (UTC; naive times are UTC).
    data_dir : path-like, optional
        The user's store; ``$BACKTEST_DATA`` or ``./data`` when omitted.  The bundled sample
        is searched after it.

    Returns
    -------
    pandas.DataFrame
        Indexed by the bar open time (``DatetimeIndex`` UTC named ``"time"``), float64 columns
        open, high, low, close, volume, funding_rate, mark_open, mark_high, mark_low,
        mark_close, and open_interest, open_interest_value when stored.  ``funding_rate`` holds
        each settlement's rate on the first bar whose open time is at or after the settlement
        and NaN elsewhere.  Mark columns come only from mark candles of the same timeframe
        (NaN where there is none).  ``attrs``: exchange, symbol, timeframe, funding_times
        (int64 epoch ms of the settlements placed on the returned bars) and sources (paths).

    Raises
    ------
    DataError
        When the symbol/timeframe is not stored (the message gives the download command), when
        the range holds no bars (the message gives the stored range), or a file is damaged.
    ConfigError
        When a date or the timeframe is not understood, or ``since`` is not before ``until``.
    """
    step_ms = timeframe_to_ms(timeframe)
    since_ms = parse_time(since, "since")
    until_ms = parse_time(until, "until")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise ConfigError(
            f"since {format_ms(since_ms)} is not before until {format_ms(until_ms)}; "
            "swap them or widen the range"
        )
    check_data_dir(data_dir)
    roots = search_roots(data_dir)
    candidates = [
        root for root in roots if _is_file(series_path(root, exchange, symbol, "ohlcv", timeframe))
    ]
    if not candidates:
        others = sorted(
            {
                item.timeframe
                for item in list_available(data_dir)
                if item.exchange == exchange and item.symbol == symbol and item.series == "ohlcv"
            }
        )
        stored = f" (stored timeframes: {', '.join(others)})" if others else ""
        raise DataError(
            f"no {timeframe} candles of {symbol} from {exchange} in {roots[0]} or the bundled "
            f"sample{stored}; download them with: "
            f"{download_command(exchange, symbol, timeframe, since_ms, until_ms)}"
        )
    chosen_root: Path | None = None
    candles: pd.DataFrame | None = None
    held: list[str] = []
    for root in candidates:
        path = series_path(root, exchange, symbol, "ohlcv", timeframe)
        frame = read_series(path, "ohlcv", exchange=exchange, symbol=symbol, timeframe=timeframe)
        times = frame[TIMESTAMP].to_numpy()
        if _overlaps(times, since_ms, until_ms):
            chosen_root, candles = root, frame
            break
        if times.size:
            held.append(f"{format_ms(int(times[0]))} .. {format_ms(int(times[-1]))} UTC in {path}")
        else:
            held.append(f"nothing in {path}")
    if candles is None or chosen_root is None:
        raise DataError(
            f"no {symbol} {timeframe} bars from {exchange} in {_range_text(since_ms, until_ms)}; "
            f"stored: {'; '.join(held)}; pick dates inside that or download them with: "
            f"{download_command(exchange, symbol, timeframe, since_ms, until_ms)}"
        )
    ordered_roots = [chosen_root, *[root for root in roots if root != chosen_root]]
    bar_ms = candles[TIMESTAMP].to_numpy(dtype=np.int64)

    funding = _companion(ordered_roots, exchange, symbol, "funding", None)
    sources = {"ohlcv": candles.attrs["path"]}
    if funding is not None and len(funding):
        sources["funding"] = funding.attrs["path"]
        settlement_ms = funding[TIMESTAMP].to_numpy(dtype=np.int64)
        funding_rate, bar_index = place_funding(
            bar_ms, settlement_ms, funding["funding_rate"].to_numpy(), step_ms
        )
    else:
        settlement_ms = np.empty(0, dtype=np.int64)
        funding_rate = np.full(bar_ms.size, np.nan)
        bar_index = np.empty(0, dtype=np.int64)

    data: dict[str, np.ndarray] = {
        name: candles[name].to_numpy(dtype=np.float64) for name in SERIES_COLUMNS["ohlcv"]
    }
    data["funding_rate"] = funding_rate
    mark = _companion(ordered_roots, exchange, symbol, "mark", timeframe)
    mark_values = np.full((bar_ms.size, 4), np.nan)
    if mark is not None:
        sources["mark"] = mark.attrs["path"]
        mark_values = _align(bar_ms, mark, SERIES_COLUMNS["mark"])
    for column, name in enumerate(SERIES_COLUMNS["mark"]):
        data[f"mark_{name}"] = mark_values[:, column]
    interest = _companion(ordered_roots, exchange, symbol, "open_interest", timeframe)
    if interest is not None:
        sources["open_interest"] = interest.attrs["path"]
        if interest.attrs.get("known_at") == "bar_close":
            # an imported bar's closing value is known at the next bar's open: no look-ahead
            interest = interest.assign(**{TIMESTAMP: interest[TIMESTAMP] + step_ms})
        interest_values = _align(bar_ms, interest, SERIES_COLUMNS["open_interest"])
        for column, name in enumerate(SERIES_COLUMNS["open_interest"]):
            data[name] = interest_values[:, column]

    keep = np.ones(bar_ms.size, dtype=bool)
    if since_ms is not None:
        keep &= bar_ms >= since_ms
    if until_ms is not None:
        keep &= bar_ms < until_ms
    placed = bar_index >= 0
    placed[placed] = keep[bar_index[placed]]
    funding_times = settlement_ms[placed]

    index = pd.DatetimeIndex(
        pd.to_datetime(bar_ms[keep], unit="ms", utc=True).as_unit("ns"), name="time"
    )
    frame = pd.DataFrame({name: values[keep] for name, values in data.items()}, index=index)
    frame.attrs.update(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        funding_times=np.asarray(funding_times, dtype=np.int64),
        sources=sources,
    )
    return frame
