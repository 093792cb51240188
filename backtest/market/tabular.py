"""Reading exported tables: CSV or Parquet, times, numbers, bar spacing, repeats and blanks.

The shared, layout-independent half of the import (:mod:`backtest.market.groundtruth` holds the
layouts).  Every failure is one :class:`~backtest.errors.DataError` line naming the file, the
row (by its time) and the remedy.

Time convention: numbers are epoch MILLISECONDS (a column of epoch seconds is refused, not
guessed); text is ISO 8601 and naive text is UTC unless the file's clock runs ``utc_offset_hours``
ahead of UTC (UTC = label - offset; refused when the text carries its own offset).  Dates before
2009-01-03 or after now are refused.  A file's bar length is the most common spacing of its rows;
longer spacings that are whole multiples are gaps, anything else is a mix of intervals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from backtest.errors import ConfigError, DataError
from backtest.market.timeframes import format_ms, now_ms, timeframe_to_ms

_EARLIEST_MS = 1_230_940_800_000  # 2009-01-03, the first bitcoin block


# --------------------------------------------------------------------------------------------
# reading the raw table
# --------------------------------------------------------------------------------------------
def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (UTF-8, comma-separated, one header row) or Parquet file as text-typed frame.

    Raises
    ------
    DataError
        One line naming the file when it is missing, empty, not UTF-8 text or not a table.
    """
    if not path.is_file():
        raise DataError(f"{path} does not exist (or is not a file); check the path")
    if path.suffix.lower() == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several unrelated types
            raise DataError(
                f"{path} is not a readable Parquet file ({type(error).__name__}); "
                "export it again, or as CSV"
            ) from error
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as error:
        raise DataError(f"cannot read {path} ({error.strerror}); check its permissions") from error
    if not head.strip():
        raise DataError(f"{path} is empty; export the series again")
    if b"\x00" in head:
        raise DataError(f"{path} is a binary file, not a CSV; export the series as CSV (UTF-8)")
    try:
        frame = pd.read_csv(path, encoding="utf-8", dtype=str, keep_default_na=False)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte {error.start}); save it as a UTF-8 CSV"
        ) from error
    except pd.errors.EmptyDataError as error:
        raise DataError(f"{path} is empty; export the series again") from error
    except pd.errors.ParserError as error:
        first = str(error).splitlines()[0] if str(error) else "unreadable"
        raise DataError(
            f"{path} is not a well-formed CSV ({first}); fix or export it again"
        ) from error
    if frame.empty:
        raise DataError(f"{path} has a header but no rows; export the series again")
    frame.columns = [str(name).strip().lstrip("\ufeff") for name in frame.columns]
    return frame


# --------------------------------------------------------------------------------------------
# times and numbers
# --------------------------------------------------------------------------------------------
def row_label(frame: pd.DataFrame, position: int, time_column: str | None) -> str:
    """Return ``row N (time T)`` for messages: N counts file lines, the header being line 1."""
    label = f"row {position + 2}"  # 1-based, after the header line
    if time_column is not None and time_column in frame:
        label += f" (time {frame[time_column].iloc[position]})"
    return label


def parse_times(
    frame: pd.DataFrame,
    column: str,
    path: Path,
    *,
    utc_offset_hours: float = 0.0,
) -> np.ndarray:
    """Return a time column as int64 UTC epoch milliseconds (see the module's time convention).

    Raises
    ------
    DataError
        Naming the file and the first bad row: unparseable text, epoch seconds where
        milliseconds belong, or a date outside 2009-01-03 .. now.
    """
    raw = frame[column]
    as_text = raw.astype(str).str.strip()
    blank = as_text.isin(["", "nan", "NaN", "None", "NaT"])
    if blank.any():
        where = int(np.flatnonzero(blank.to_numpy())[0])
        raise DataError(
            f"{path}: {row_label(frame, where, None)} has no time in column {column!r}; "
            "remove the row or fill it"
        )
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():
        values = numbers.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            where = int(np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))[0])
            raise DataError(
                f"{path}: {row_label(frame, where, column)} is not a whole number of epoch "
                "milliseconds; write times as epoch ms or ISO 8601 text"
            )
        times = values.astype(np.int64)
        if np.any(times < 100_000_000_000):
            where = int(np.flatnonzero(times < 100_000_000_000)[0])
            raise DataError(
                f"{path}: {row_label(frame, where, column)} looks like epoch SECONDS; the "
                f"column {column!r} must hold epoch milliseconds (multiply by 1000)"
            )
    else:
        try:
            parsed = pd.to_datetime(as_text, utc=True, format="ISO8601")
        except (ValueError, TypeError):
            parsed = pd.to_datetime(as_text, utc=True, format="ISO8601", errors="coerce")
            bad = parsed.isna().to_numpy()
            where = int(np.flatnonzero(bad)[0]) if bad.any() else 0
            raise DataError(
                f"{path}: {row_label(frame, where, column)} is not a date; write times as "
                "ISO 8601 (2025-10-10 20:00:00) or epoch milliseconds"
            ) from None
        times = parsed.dt.as_unit("ms").astype("int64").to_numpy()
        zoned = as_text.str.contains(r"(?:[zZ]|[+-]\d\d(?::?\d\d)?)$", regex=True)
        if utc_offset_hours and zoned.any():
            where = int(np.flatnonzero(zoned.to_numpy())[0])
            raise ConfigError(
                f"{path}: {row_label(frame, where, column)} carries its own UTC offset; "
                "drop --utc-offset (it is for times written in local time without one)"
            )
    times = times - round(utc_offset_hours * 3_600_000)
    latest = now_ms()
    outside = (times < _EARLIEST_MS) | (times > latest)
    if outside.any():
        where = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{path}: {row_label(frame, where, column)} is {format_ms(int(times[where]))} UTC, "
            "outside 2009-01-03 .. now; check the time column (epoch ms or ISO dates)"
        )
    return times


def parse_numbers(frame: pd.DataFrame, column: str, path: Path, time_column: str) -> np.ndarray:
    """Return a value column as float64; text that is not a number is refused by row.

    Blank cells become NaN (the caller decides whether they are allowed).
    """
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw):
        return raw.to_numpy(dtype=np.float64)
    text = raw.astype(str).str.strip()
    blank = text.isin(["", "nan", "NaN", "None"])
    numbers = pd.to_numeric(text.where(~blank), errors="coerce")
    bad = numbers.isna() & ~blank
    if bad.any():
        where = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}: {row_label(frame, where, time_column)} has {text.iloc[where]!r} in "
            f"column {column!r}, not a number; fix the cell or remove the row"
        )
    return numbers.to_numpy(dtype=np.float64)


def timeframe_of_step(step_ms: int) -> str:
    """Return the ccxt timeframe string of a bar length (``14_400_000`` -> ``"4h"``)."""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if step_ms % size == 0 and (unit != "w" or step_ms == size):
            return f"{step_ms // size}{unit}"
    if step_ms % 1000 == 0 and step_ms > 0:
        return f"{step_ms // 1000}s"
    raise DataError(f"bar length {step_ms} ms is not a whole number of seconds")


def infer_timeframe(times: np.ndarray, path: Path, given: str | None = None) -> str:
    """Find the bar length of sorted unique open times and check the rows sit on its grid.

    The most common spacing is the timeframe; every spacing must be a whole multiple of it
    (longer ones are gaps) and it must make up at least half of them, else the file mixes
    intervals.  Bars up to a day long must open on the UTC grid (4h bars at 00:00, 04:00, ...).
    """
    if times.size < 2:
        if given is None:
            raise DataError(
                f"{path} has a single bar; its timeframe cannot be inferred: pass --timeframe"
            )
        step = timeframe_to_ms(given)
    else:
        steps = np.diff(times)
        values, counts = np.unique(steps, return_counts=True)
        step = int(values[np.argmax(counts)])
        if counts.max() * 2 < steps.size:
            raise DataError(
                f"{path} mixes bar intervals (the most common, {timeframe_of_step(step)}, "
                f"spaces only {counts.max()} of {steps.size} rows); split the file by interval"
            )
        if given is not None and timeframe_to_ms(given) != step:
            raise DataError(
                f"{path} holds {timeframe_of_step(step)} bars, not {given}; drop --timeframe "
                "or pick the matching file"
            )
    steps = np.diff(times)
    off = np.flatnonzero(steps % step != 0)
    if off.size:
        where = int(off[0]) + 1
        raise DataError(
            f"{path}: the bar at {format_ms(int(times[where]))} UTC is "
            f"{(times[where] - times[where - 1]) / 60_000:g} min after the previous one, not a "
            f"multiple of the {timeframe_of_step(step)} bars; the file mixes intervals: split it"
        )
    timeframe = timeframe_of_step(step)
    if step <= 86_400_000 and 86_400_000 % step == 0:
        misaligned = np.flatnonzero(times % step != 0)
        if misaligned.size:
            where = int(misaligned[0])
            raise DataError(
                f"{path}: {format_ms(int(times[where]))} UTC is not a {timeframe} bar open time "
                "(rows must be stamped with the bar's OPEN time in UTC); if the file is in local "
                "time pass --utc-offset"
            )
    return timeframe


def trim_blank_rows(
    times: np.ndarray, values: dict[str, np.ndarray], skip_blank: bool, path: Path
) -> tuple[np.ndarray, list[str]]:
    """Return a keep-mask that drops blank rows at the ends (and inside, with skip_blank)."""
    matrix = np.column_stack(list(values.values()))
    blank = np.any(np.isnan(matrix), axis=1) if matrix.size else np.zeros(times.size, bool)
    keep = ~blank
    notes: list[str] = []
    if not blank.any():
        return keep, notes
    filled = np.flatnonzero(keep)
    if filled.size == 0:
        raise DataError(f"{path} has no filled values for this series; check the column")
    inside = blank.copy()
    inside[: filled[0]] = False
    inside[filled[-1] + 1 :] = False
    edges = int(blank.sum() - inside.sum())
    if inside.any() and not skip_blank:
        where = int(np.flatnonzero(inside)[0])
        raise DataError(
            f"{path}: the row at {format_ms(int(times[where]))} UTC has a blank value; fill it, "
            "remove it, or pass --skip-blank to leave such bars out"
        )
    if edges:
        notes.append(f"{edges} blank row(s) at the start/end left out")
    if inside.any():
        notes.append(f"{int(inside.sum())} blank row(s) inside left out (--skip-blank)")
    return keep, notes


def dedupe_rows(times: np.ndarray, matrix: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sort by time; drop repeated rows that agree, refuse repeated rows that differ."""
    order = np.argsort(times, kind="stable")
    times, matrix = times[order], matrix[order]
    repeated = np.flatnonzero(np.diff(times) == 0)
    if repeated.size:
        first, second = matrix[repeated], matrix[repeated + 1]
        agree = np.all((first == second) | (np.isnan(first) & np.isnan(second)), axis=1)
        if not agree.all():
            where = int(repeated[np.flatnonzero(~agree)[0]])
            raise DataError(
                f"{path}: the bar at {format_ms(int(times[where]))} UTC appears twice with "
                "different values; keep one of the rows"
            )
        keep = np.ones(times.size, dtype=bool)
        keep[repeated + 1] = False
        times, matrix = times[keep], matrix[keep]
    return times, matrix
