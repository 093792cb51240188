"""Timeframes and timestamps: ccxt timeframe strings, UTC epoch milliseconds, user dates.

Everything in the market layer counts time in integer milliseconds since the Unix epoch, UTC
(the unit ccxt uses), in variables named ``*_ms``.  This module converts to and from that unit
without importing ccxt, so loading stored data stays light.

It sits at the top of the package because both the market layer (:mod:`backtest.market`) and
the liquidation model (:mod:`backtest.liquidation`, which must not import the market layer)
parse timeframes; :mod:`backtest.market.timeframes` re-exports it.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from backtest.errors import ConfigError

#: Milliseconds per ccxt timeframe unit.  Months and years are left out on purpose: their
#: length varies, so "next since = last + one timeframe" would drift.
UNIT_MS: dict[str, int] = {
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}

_TIMEFRAME = re.compile(r"^([1-9][0-9]*)([smhdw])$")


def timeframe_to_ms(timeframe: str) -> int:
    """Return the length of a ccxt timeframe (``"5m"``, ``"1h"``, ``"1d"``) in milliseconds.

    Parameters
    ----------
    timeframe : str
        A positive count followed by one unit: s, m, h, d or w.

    Returns
    -------
    int
        Milliseconds in one bar.

    Raises
    ------
    ConfigError
        When the string is not a timeframe of that form.
    """
    match = _TIMEFRAME.match(str(timeframe))
    if match is None:
        raise ConfigError(
            f"timeframe {timeframe!r} is not understood; use a count and a unit "
            "such as 1m, 5m, 15m, 1h, 4h, 1d or 1w"
        )
    return int(match.group(1)) * UNIT_MS[match.group(2)]


def now_ms() -> int:
    """Return the current UTC time in epoch milliseconds."""
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def parse_time(value: object, name: str = "date") -> int | None:
    """Turn a user's date into UTC epoch milliseconds.

    Parameters
    ----------
    value : str, int, float, datetime, date, pandas.Timestamp or None
        ISO 8601 text (``2025-10-10``, ``2025-10-10T20:00``, ``2025-10-10 20:00:00+02:00``),
        epoch milliseconds as a number, or a date/time object.  Naive times are taken as UTC.
    name : str
        What the value is (``"--since"``), used in the error message.

    Returns
    -------
    int or None
        Epoch milliseconds, or None when ``value`` is None or empty.

    Raises
    ------
    ConfigError
        When the text is not a date.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{name} {value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    if isinstance(value, int | float):
        return _check_range(_epoch_number(value, name), name)
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"{name} {value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
            ) from None
    if not isinstance(value, dt.datetime):
        raise ConfigError(f"{name} {value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return _check_range(round(value.timestamp() * 1000), name, value)


#: Epoch milliseconds below this (1973-03-03) given as a number are taken for epoch seconds.
SECONDS_LIMIT_MS = 100_000_000_000
#: The last millisecond pandas can index (2262-04-11 23:47:16.854 UTC).
LATEST_MS = 9_223_372_036_854


def _epoch_number(value: int | float, name: str) -> int:
    """A number given as a time: epoch milliseconds, finite, not epoch seconds."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{name} {value!r} is not a date; use YYYY-MM-DD, YYYY-MM-DDTHH:MM or epoch ms"
        )
    if 0 <= value < SECONDS_LIMIT_MS:
        raise ConfigError(
            f"{name} {value!r} looks like epoch seconds (or is before 1973); times given as "
            f"numbers are epoch milliseconds: use {int(value) * 1000} or a date (YYYY-MM-DD)"
        )
    return int(value)


def _check_range(milliseconds: int, name: str, shown: object = None) -> int:
    """Refuse times before 1970 or after 2262-04-11 (beyond what pandas can index)."""
    if not 0 <= milliseconds <= LATEST_MS:
        text = shown.isoformat() if isinstance(shown, dt.datetime) else str(milliseconds)
        raise ConfigError(
            f"{name} {text.replace('+00:00', '')} lies outside 1970-01-01 .. 2262-04-11 (the "
            "range of times this program can hold); give a date inside it"
        )
    return milliseconds


def format_ms(timestamp_ms: int | None) -> str:
    """Format epoch milliseconds as ``YYYY-MM-DD HH:MM`` UTC (seconds shown only when set).

    A value no calendar date can show (from a damaged file) is written as ``<n> ms``.
    """
    if timestamp_ms is None:
        return "-"
    try:
        moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{timestamp_ms} ms"
    if moment.second or moment.microsecond:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def format_date_argument(timestamp_ms: int) -> str:
    """Format epoch milliseconds the way ``--since``/``--until`` accept it back."""
    moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%dT%H:%M")
