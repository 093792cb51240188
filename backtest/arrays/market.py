"""``MarketArrays``: the traded bars of a run as contiguous NumPy arrays.

:func:`market_arrays` takes the frame the event engine trades (the output of
:func:`backtest.engine.runner.load_run_frame` after
:func:`backtest.engine.warmup.split_warmup`: traded bars only) and holds exactly what the event
feed :class:`backtest.engine.feeds.PerpData` puts on its lines: candles, the mark-price candle
(NaN where none was stored) and the funding rate (the settlement's rate on the first bar at or
after it, NaN elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from backtest.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

_MARK_COLUMNS = ("mark_open", "mark_high", "mark_low", "mark_close")


@dataclass(frozen=True, eq=False)
class MarketArrays:
    """Candles, mark candle and funding of the traded bars.

    Attributes
    ----------
    open, high, low, close, volume : ndarray of float64
        The traded candles (volume NaN when the frame has none).
    time : ndarray of int64
        Bar open times, nanoseconds since the epoch (UTC).
    mark_open, mark_high, mark_low, mark_close : ndarray of float64 or None
        Mark-price candle (NaN on bars without one); None when the frame has no mark columns
        (the broker then uses the traded prices everywhere).
    funding_rate : ndarray of float64 or None
        Funding rate on settlement bars, NaN elsewhere; None when the frame has no funding.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    time: np.ndarray
    mark_open: np.ndarray | None = None
    mark_high: np.ndarray | None = None
    mark_low: np.ndarray | None = None
    mark_close: np.ndarray | None = None
    funding_rate: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def raw(self) -> tuple[np.ndarray, ...]:
        """The nine price arrays of the raw interface, None replaced by all-NaN arrays.

        Returns
        -------
        tuple of ndarray
            ``open, high, low, close, mark_open, mark_high, mark_low, mark_close,
            funding_rate`` (contiguous float64).
        """
        count = len(self)

        def filled(values: np.ndarray | None) -> np.ndarray:
            if values is None:
                return np.full(count, np.nan)
            return np.ascontiguousarray(values, dtype=np.float64)

        return (
            filled(self.open),
            filled(self.high),
            filled(self.low),
            filled(self.close),
            filled(self.mark_open),
            filled(self.mark_high),
            filled(self.mark_low),
            filled(self.mark_close),
            filled(self.funding_rate),
        )

    @property
    def times(self) -> pd.DatetimeIndex:
        """Bar open times as a UTC DatetimeIndex named ``time``."""
        import pandas as pd

        return pd.DatetimeIndex(pd.to_datetime(self.time, unit="ns", utc=True), name="time")


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError) as error:
        raise DataError(f"market column {name!r} is not numeric ({error})") from None


def market_arrays(frame: pd.DataFrame) -> MarketArrays:
    """The traded bars of ``frame`` as :class:`MarketArrays`.

    Parameters
    ----------
    frame : DataFrame
        A run frame (UTC DatetimeIndex, ``open, high, low, close`` and optionally ``volume``,
        ``funding_rate`` and the ``mark_*`` columns), warm-up bars already split off.

    Raises
    ------
    DataError
        When the frame is not a DataFrame with a DatetimeIndex or lacks a candle column.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError("market_arrays needs a DataFrame with a DatetimeIndex of bar open times")
    missing = [name for name in ("open", "high", "low", "close") if name not in frame.columns]
    if missing:
        raise DataError(f"the market frame lacks column(s) {', '.join(missing)}")
    index = frame.index
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    times = np.ascontiguousarray(index.as_unit("ns").asi8, dtype=np.int64)
    count = len(frame)
    marks = {
        name: _column(frame, name) if name in frame.columns else None for name in _MARK_COLUMNS
    }
    return MarketArrays(
        open=_column(frame, "open"),
        high=_column(frame, "high"),
        low=_column(frame, "low"),
        close=_column(frame, "close"),
        volume=_column(frame, "volume") if "volume" in frame.columns else np.full(count, np.nan),
        time=times,
        funding_rate=_column(frame, "funding_rate") if "funding_rate" in frame.columns else None,
        **marks,
    )
