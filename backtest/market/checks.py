"""Value checks of market data: what a stored series or a caller's frame must hold.

A schema check (column names and types, see :func:`backtest.market.store.read_series`) does not
catch a damaged file: a NaN close, a zero low or timestamps written in seconds have the right
types and would give a run that prints nonsense.  The checks here look at the values and refuse
the first bad row with one line naming the file, the row's time and what to do.

What is refused (every exchange serves clean candles, so any of these is damage):

* timestamps before 1973-03-03 (epoch *seconds* stored where milliseconds belong), negative, or
  after 2262-04-11 (beyond what pandas can index: microseconds or nanoseconds);
* candle open times off the timeframe grid: a multiple of the bar length, or of one day for
  bars of a day or longer (the grid is ``gcd(bar length, one day)``, so weekly bars may open on
  any weekday's midnight);
* prices (open, high, low, close; also mark-price candles) that are NaN, infinite, zero or
  negative; a high below the low; an open or close outside ``[low, high]`` (beyond a relative
  tolerance of 1e-9 for values that went through decimal text);
* volume that is NaN, infinite or negative;
* funding rates that are NaN, infinite or larger than :data:`MAX_FUNDING_RATE` in magnitude
  (5 % per settlement; venues cap funding far below that, e.g. Binance at 0.3 %–3 %);
* open interest that is infinite or negative (NaN is allowed: some venues give only one of the
  two columns).

Gaps (missing bars) are not damage: they are the exchange's own history and are reported by
``backtest download`` and left as they are (never filled).

All checks are vectorised NumPy; a year of 1-minute bars is checked in a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from backtest.errors import DataError
from backtest.timeframes import LATEST_MS as PANDAS_LIMIT_MS
from backtest.timeframes import SECONDS_LIMIT_MS, format_ms

#: Largest funding rate accepted per settlement, as a fraction (0.05 = 5 %).
MAX_FUNDING_RATE = 0.05
#: Relative slack for open/close against the bar's range (decimal text round trips).
RANGE_TOLERANCE = 1e-9
_DAY_MS = 86_400_000

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")


def grid_ms(step_ms: int) -> int:
    """Return the spacing bar open times must be a multiple of (``gcd(step, one day)``)."""
    return math.gcd(int(step_ms), _DAY_MS)


def _time_text(times_ms: np.ndarray, row: int) -> str:
    value = int(times_ms[row])
    if 0 <= value <= PANDAS_LIMIT_MS:
        return f"{format_ms(value)} UTC"
    return f"timestamp {value}"


def _fail(
    source: str, times_ms: np.ndarray, bad: np.ndarray, problem: str, remedy: str
) -> DataError:
    rows = np.flatnonzero(bad)
    first = int(rows[0])
    more = f"; {rows.size - 1} more row(s) like it" if rows.size > 1 else ""
    return DataError(
        f"{source}: {problem} at {_time_text(times_ms, first)} (row {first + 1}{more}); {remedy}"
    )


def check_timestamps(
    times_ms: np.ndarray,
    source: str,
    remedy: str,
    *,
    step_ms: int | None = None,
) -> None:
    """Refuse timestamps in seconds, beyond pandas' range or (with ``step_ms``) off the grid.

    Raises
    ------
    DataError
        Naming ``source``, the first bad row's time and ``remedy``.
    """
    times = np.asarray(times_ms, dtype=np.int64)
    if times.size == 0:
        return
    low = times < SECONDS_LIMIT_MS
    if low.any():
        problem = (
            "timestamp before 1973 (epoch seconds where milliseconds belong?)"
            if (times[low] >= 0).all()
            else "negative or pre-1973 timestamp"
        )
        raise _fail(source, times, low, problem, remedy)
    high = times > PANDAS_LIMIT_MS
    if high.any():
        raise _fail(
            source,
            times,
            high,
            "timestamp after 2262 (micro- or nanoseconds where milliseconds belong?)",
            remedy,
        )
    if step_ms:
        grid = grid_ms(step_ms)
        off = times % grid != 0
        if off.any():
            raise _fail(
                source,
                times,
                off,
                f"bar open time off the {format_grid(grid)} grid of its timeframe",
                remedy,
            )


def format_grid(grid: int) -> str:
    """Return a grid spacing as text: ``5 min``, ``1 h``, ``1 day``."""
    if grid % _DAY_MS == 0:
        return f"{grid // _DAY_MS} day"
    if grid % 3_600_000 == 0:
        return f"{grid // 3_600_000} h"
    if grid % 60_000 == 0:
        return f"{grid // 60_000} min"
    return f"{grid / 1000:g} s"


def check_prices(
    columns: Mapping[str, np.ndarray],
    times_ms: np.ndarray,
    source: str,
    remedy: str,
    *,
    prefix: str = "",
    allow_missing: bool = False,
) -> None:
    """Refuse non-finite or non-positive prices, high < low, open/close outside the range.

    Parameters
    ----------
    columns : mapping
        ``open``, ``high``, ``low``, ``close`` arrays (``volume`` is checked when present).
    times_ms : ndarray
        The rows' times (for the message).
    source, remedy : str
        What is checked (a file) and what to do, for the message.
    prefix : str
        Printed before the column names (``"mark "``).
    allow_missing : bool
        NaN prices are skipped (mark prices joined to candles are NaN where none is stored);
        the range checks then apply to the values present.

    Raises
    ------
    DataError
        For the first bad row.
    """
    values = {name: np.asarray(columns[name], dtype=np.float64) for name in PRICE_COLUMNS}
    for name in PRICE_COLUMNS:
        column = values[name]
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(column) & (column > 0.0))
        if allow_missing:
            bad &= ~np.isnan(column)
        if bad.any():
            sample = column[np.flatnonzero(bad)[0]]
            raise _fail(source, times_ms, bad, f"{prefix}{name} is {float(sample):g}", remedy)
    high, low = values["high"], values["low"]
    inverted = high < low  # False where either is NaN (allowed only with allow_missing)
    if inverted.any():
        raise _fail(source, times_ms, inverted, f"{prefix}high is below {prefix}low", remedy)
    slack_high = high * (1.0 + RANGE_TOLERANCE)
    slack_low = low * (1.0 - RANGE_TOLERANCE)
    for name in ("open", "close"):
        column = values[name]
        outside = (column > slack_high) | (column < slack_low)
        if outside.any():
            raise _fail(
                source,
                times_ms,
                outside,
                f"{prefix}{name} lies outside {prefix}low..{prefix}high",
                remedy,
            )
    if "volume" in columns:
        volume = np.asarray(columns["volume"], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(volume) & (volume >= 0.0))
        if bad.any():
            sample = volume[np.flatnonzero(bad)[0]]
            raise _fail(source, times_ms, bad, f"volume is {float(sample):g}", remedy)


def check_funding(
    rates: np.ndarray,
    times_ms: np.ndarray,
    source: str,
    remedy: str,
    *,
    allow_missing: bool = False,
) -> None:
    """Refuse non-finite funding rates and rates beyond :data:`MAX_FUNDING_RATE`.

    ``allow_missing`` skips NaN (bars without a settlement in a market frame).
    """
    rates = np.asarray(rates, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(rates) <= MAX_FUNDING_RATE)
    if allow_missing:
        bad &= ~np.isnan(rates)
    if bad.any():
        sample = rates[np.flatnonzero(bad)[0]]
        raise _fail(
            source,
            times_ms,
            bad,
            f"funding rate {float(sample):g} is not a rate within ±{MAX_FUNDING_RATE:g} "
            f"({MAX_FUNDING_RATE * 100:g} % per settlement)",
            remedy,
        )


def check_open_interest(
    columns: Mapping[str, np.ndarray], times_ms: np.ndarray, source: str, remedy: str
) -> None:
    """Refuse infinite or negative open interest (NaN means "not given" and is allowed)."""
    for name, column in columns.items():
        column = np.asarray(column, dtype=np.float64)
        bad = np.isinf(column) | (column < 0.0)
        if bad.any():
            sample = column[np.flatnonzero(bad)[0]]
            raise _fail(source, times_ms, bad, f"{name} is {float(sample):g}", remedy)


def check_series_values(
    frame: Mapping[str, np.ndarray],
    series: str,
    source: str,
    *,
    step_ms: int | None = None,
    remedy: str = "delete the file and download it again",
) -> None:
    """Check one stored series' values (see the module docstring for the rules).

    Parameters
    ----------
    frame : DataFrame or mapping
        ``timestamp_ms`` and the series' columns.
    series : str
        ``"ohlcv"``, ``"mark"``, ``"funding"``, ``"open_interest"``; other series get the
        timestamp checks only.
    source : str
        The file, for the message.
    step_ms : int, optional
        Bar length of candle series (enables the grid check).
    remedy : str
        What to do, for the message.

    Raises
    ------
    DataError
        One line: the file, what is wrong, the first bad row's time and ``remedy``.
    """
    times = np.asarray(frame["timestamp_ms"], dtype=np.int64)
    candles = series in ("ohlcv", "mark")
    check_timestamps(times, source, remedy, step_ms=step_ms if candles else None)
    if candles:
        names = PRICE_COLUMNS + (("volume",) if series == "ohlcv" else ())
        check_prices(
            {name: frame[name] for name in names},
            times,
            source,
            remedy,
            prefix="mark " if series == "mark" else "",
        )
    elif series == "funding":
        check_funding(frame["funding_rate"], times, source, remedy)
    elif series == "open_interest":
        check_open_interest(
            {name: frame[name] for name in ("open_interest", "open_interest_value")},
            times,
            source,
            remedy,
        )
