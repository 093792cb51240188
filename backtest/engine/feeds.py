"""``PerpData``: a perpetual-futures data feed preloaded in bulk from a ``load_market`` frame.

backtrader's :class:`~backtrader.feeds.PandasData` preloads one cell at a time (``iloc`` per
value per line, about 30 µs per bar).  :class:`PerpData` keeps PandasData's parameters and
column mapping but fills each line buffer with its whole column at once: a line buffer's
``array`` is a flat ``array('d')``, so preloading is one ``frombytes`` per line.  The temporary
NumPy columns are dropped as soon as the buffers hold them.

Besides the candles the feed carries the perpetual's own series as lines: ``funding_rate`` (the
settlement rate on the first bar at or after each settlement, NaN elsewhere), the mark-price
candle ``mark_open``/``mark_high``/``mark_low``/``mark_close`` (NaN where no mark candle of the
same timeframe exists) and ``open_interest``.  Missing columns become all-NaN lines.
"""

from __future__ import annotations

import array
import math
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

from backtest.errors import DataError

#: Extra lines of :class:`PerpData`, in declaration order.
PERP_LINES: tuple[str, ...] = (
    "funding_rate",
    "mark_open",
    "mark_high",
    "mark_low",
    "mark_close",
    "open_interest",
)

# bt.date2num is the Gregorian ordinal plus the day fraction, summed with math.fsum.  Every
# datetime64[ns] lies in 1677..2262, whose ordinals are in [2**19, 2**20): all results share one
# binade, so the correctly rounded sum is the ordinal plus the day fraction rounded once on that
# binade's grid, which is computed once per distinct time of day.
_BINADE_LOW = float(2**19)
_NANOSECONDS_PER_DAY = 86_400_000_000_000
#: date2num(1970-01-01): the Gregorian ordinal of the Unix epoch.
UNIX_EPOCH_DATE_NUMBER = 719_163.0


def date_numbers(times: pd.DatetimeIndex | pd.Series | np.ndarray) -> np.ndarray:
    """Convert times to backtrader date numbers, bit for bit as :func:`backtrader.date2num`.

    Parameters
    ----------
    times : DatetimeIndex, Series of datetimes or datetime64 array
        Bar times.  Aware times are converted to UTC; naive times are taken as UTC.

    Returns
    -------
    numpy.ndarray
        float64 days since 0001-01-01 plus one (backtrader's convention), equal to
        ``bt.date2num(t.to_pydatetime())`` for every element.
    """
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    nanoseconds = index.as_unit("ns").asi8
    days, within_day = np.divmod(nanoseconds, _NANOSECONDS_PER_DAY)
    ordinals = days.astype(np.float64) + UNIX_EPOCH_DATE_NUMBER
    unique_fractions, positions = np.unique(within_day, return_inverse=True)
    rounded = np.array(
        [
            math.fsum((_BINADE_LOW, *_day_parts(int(value)))) - _BINADE_LOW
            for value in unique_fractions
        ],
        dtype=np.float64,
    )
    return ordinals + rounded[positions]


def _day_parts(nanoseconds: int) -> tuple[float, float, float, float]:
    """The four day-fraction terms date2num sums (microsecond resolution, as datetime)."""
    microseconds_total = nanoseconds // 1_000
    seconds_total, microsecond = divmod(microseconds_total, 1_000_000)
    minutes_total, second = divmod(seconds_total, 60)
    hour, minute = divmod(minutes_total, 60)
    return (hour / 24.0, minute / 1_440.0, second / 86_400.0, microsecond / 86_400_000_000.0)


def date_numbers_to_index(numbers: np.ndarray | array.array) -> pd.DatetimeIndex:
    """Convert backtrader date numbers back to a UTC ``DatetimeIndex`` (rounded to the ms).

    Parameters
    ----------
    numbers : array-like of float
        Date numbers as stored in a datetime line.

    Returns
    -------
    pandas.DatetimeIndex
        UTC times named ``"time"``.
    """
    values = np.asarray(numbers, dtype=np.float64)
    milliseconds = np.rint((values - UNIX_EPOCH_DATE_NUMBER) * 86_400_000.0).astype(np.int64)
    return pd.DatetimeIndex(pd.to_datetime(milliseconds, unit="ms", utc=True), name="time")


class PerpData(bt.feeds.PandasData):
    """Candles plus funding rate, mark-price candle and open interest, preloaded in bulk.

    ``dataname`` is a frame as returned by :func:`backtest.market.store.load_market`: a UTC
    ``DatetimeIndex`` and float64 columns ``open, high, low, close, volume, funding_rate,
    mark_open, mark_high, mark_low, mark_close`` (``open_interest`` optional).  Column names are
    matched case-insensitively as in PandasData; a line whose column is absent is all NaN.

    Lines
    -----
    datetime, open, high, low, close, volume, openinterest (NaN unless mapped)
        The usual backtrader lines.
    funding_rate
        Settlement rate (fraction) on the first bar at or after each settlement, NaN elsewhere.
    mark_open, mark_high, mark_low, mark_close
        The mark-price candle of the same bar (NaN where none was stored).
    open_interest
        Open interest (base units) when stored.

    Parameters
    ----------
    warmup : DataFrame, optional
        Bars before the feed's first bar (same columns) that the liquidation map runs over
        before the feed starts (:mod:`backtest.engine.warmup`).  They are not delivered as bars:
        nothing trades, and no analyzer sees them.

    Notes
    -----
    With ``preload=True`` (the default and what :func:`backtest.engine.run` uses) every line
    buffer receives its whole column at once.  With ``preload=False`` bars are delivered one by
    one from NumPy copies made at ``start`` (still far cheaper than PandasData's ``iloc``).
    Data filters (``addfilter``) and ``tzinput`` fall back to backtrader's per-bar preload.
    """

    lines = PERP_LINES

    params = (
        ("openinterest", None),
        ("funding_rate", -1),
        ("mark_open", -1),
        ("mark_high", -1),
        ("mark_low", -1),
        ("mark_close", -1),
        ("open_interest", -1),
        ("warmup", None),
    )

    def __init__(self) -> None:
        frame = self.p.dataname
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"PerpData needs a pandas DataFrame (as from load_market), got "
                f"{type(frame).__name__}; load the market with backtest.market.store.load_market"
            )
        super().__init__()
        self._staging: list[tuple[Any, list[float]]] | None = None
        self._row = -1
        self._delivered_all = False

    # -- staging ----------------------------------------------------------------------------
    def _columns(self) -> dict[str, np.ndarray]:
        """Every line's values as float64 arrays (datetime as date numbers), in line order."""
        frame = self.p.dataname
        count = len(frame)
        columns: dict[str, np.ndarray] = {}
        for alias in self.getlinealiases():
            if alias == "datetime":
                source = self._colmapping.get("datetime")
                times = frame.index if source is None else frame.iloc[:, source]
                if not isinstance(
                    times, pd.DatetimeIndex
                ) and not pd.api.types.is_datetime64_any_dtype(times):
                    raise DataError(
                        "PerpData needs bar times as a DatetimeIndex (UTC) or a datetime "
                        "column; load the market with backtest.market.store.load_market"
                    )
                columns[alias] = date_numbers(times)
                continue
            column_index = self._colmapping.get(alias)
            if column_index is None:
                columns[alias] = np.full(count, np.nan)
                continue
            try:
                columns[alias] = np.ascontiguousarray(
                    frame.iloc[:, column_index].to_numpy(dtype=np.float64, na_value=np.nan)
                )
            except (TypeError, ValueError) as error:
                name = frame.columns[column_index]
                raise DataError(
                    f"PerpData column {name!r} is not numeric ({error}); columns must be float64"
                ) from error
        return columns

    def _kept_rows(self, date_numbers_: np.ndarray) -> slice | np.ndarray:
        """Rows the fromdate/todate filters let through, as backtrader's ``load`` would."""
        if self.fromdate == -math.inf and self.todate == math.inf:
            return slice(None)
        beyond = np.flatnonzero(date_numbers_ > self.todate)
        stop = int(beyond[0]) if len(beyond) else len(date_numbers_)
        keep = np.zeros(len(date_numbers_), dtype=bool)
        keep[:stop] = date_numbers_[:stop] >= self.fromdate
        return keep

    # -- backtrader hooks -------------------------------------------------------------------
    def start(self) -> None:
        """Map the columns to lines (PandasData) and forget any previous run's state."""
        super().start()
        self._row = -1
        self._staging = None
        self._delivered_all = False

    def preload(self) -> None:
        """Fill every line buffer with its whole column (bulk), then rewind to the start."""
        bulk = (
            not self._filters
            and not self._ffilters
            and self.p.tzinput is None
            and all(isinstance(line.array, array.array) for line in self.lines)
        )
        if not bulk:
            super().preload()
            self._staging = None
            return
        columns = self._columns()
        rows = self._kept_rows(columns["datetime"])
        count = 0
        for alias in self.getlinealiases():
            values = np.ascontiguousarray(columns.pop(alias)[rows], dtype=np.float64)
            line = getattr(self.lines, alias)
            line.array.frombytes(values.tobytes())
            count = len(values)
        del columns
        for line in self.lines:
            line.idx = count - 1
            line.lencount = count
        self._delivered_all = True  # every bar is in the buffers: _load has nothing more
        self._last()
        self.home()

    def _load(self) -> bool:
        """Deliver one bar from the staged columns (only used when not preloading)."""
        if self._delivered_all:
            return False
        if self._staging is None:
            columns = self._columns()
            rows = self._kept_rows(columns["datetime"])
            self._staging = [
                (getattr(self.lines, alias), columns[alias][rows].tolist())
                for alias in self.getlinealiases()
            ]
        self._row += 1
        if self._row >= len(self._staging[0][1]):
            self._delivered_all = True  # exhausted: free the staged copies, deliver nothing more
            self._staging = None
            return False
        row = self._row
        for line, values in self._staging:
            line[0] = values[row]
        return True

    def _tick_nullify(self) -> None:
        """Forget the previous bar's ``tick_*`` prices (candle lines only, see _tick_fill)."""
        self.tick_open = self.tick_high = self.tick_low = self.tick_close = None
        self.tick_volume = self.tick_openinterest = self.tick_last = None

    def _tick_fill(self, force: bool = False) -> None:
        """Set the ``tick_*`` prices the broker matches orders against (candle lines only).

        backtrader sets one attribute per line on every bar; the perpetual's extra lines have
        no tick meaning, so only the candle lines are copied (this runs once per bar).
        """
        if force or getattr(self, "tick_open", None) is None:
            lines = self.lines
            self.tick_open = lines.open[0]
            self.tick_high = lines.high[0]
            self.tick_low = lines.low[0]
            self.tick_close = self.tick_last = lines.close[0]
            self.tick_volume = lines.volume[0]
            self.tick_openinterest = lines.openinterest[0]
