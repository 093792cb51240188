"""Naive estimates of per-bar liquidations, the yardsticks the map is scored against.

Each baseline maps a candle frame (columns open, high, low, close, volume; volume in base
units, as :func:`backtest.market.store.load_market` gives it) to a frame with columns
``long`` and ``short`` (quote currency per candle bar, same index).  Bars with a NaN price or
volume, or no range, contribute 0.  The scorecard sums them into the truth's bars like the map.

``naive`` (the issue's proxy)
    ``volume·typical × max(open − close, 0)/open`` for longs and
    ``volume·typical × max(close − open, 0)/open`` for shorts: traded notional times the bar's
    down-move (longs) or up-move (shorts) from open to close, typical = (high+low+close)/3.
    Liquidations follow volume and the move that hurts one side.
``range_split``
    ``volume·typical × (high − low)/open``, split by where the close lies in the range:
    longs get ``(high − close)/(high − low)`` of it, shorts ``(close − low)/(high − low)``.
    It also sees a bar that spikes down and recovers (the long flush the open→close move
    misses), which is the shape of many liquidation wicks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from backtest.errors import DataError


def _columns(candles: pd.DataFrame) -> tuple[np.ndarray, ...]:
    missing = [name for name in ("open", "high", "low", "close", "volume") if name not in candles]
    if missing:
        raise DataError(
            f"the candle frame lacks column(s) {', '.join(missing)}; load it with "
            "backtest.market.store.load_market"
        )
    return tuple(
        candles[name].to_numpy(dtype=np.float64)
        for name in ("open", "high", "low", "close", "volume")
    )


def _valid(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
           volume: np.ndarray) -> np.ndarray:  # fmt: skip
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(open_) & np.isfinite(high) & np.isfinite(low) & np.isfinite(close)
            & np.isfinite(volume) & (volume > 0.0) & (open_ > 0.0) & (high >= low)
        )  # fmt: skip


def naive_proxy(candles: pd.DataFrame) -> pd.DataFrame:
    """Traded notional × the bar's down-move (long) or up-move (short), open to close."""
    open_, high, low, close, volume = _columns(candles)
    valid = _valid(open_, high, low, close, volume)
    long = np.zeros(open_.shape[0])
    short = np.zeros(open_.shape[0])
    notional = volume[valid] * (high[valid] + low[valid] + close[valid]) / 3.0
    move = (close[valid] - open_[valid]) / open_[valid]
    long[valid] = notional * np.maximum(-move, 0.0)
    short[valid] = notional * np.maximum(move, 0.0)
    return pd.DataFrame({"long": long, "short": short}, index=candles.index)


def range_split_proxy(candles: pd.DataFrame) -> pd.DataFrame:
    """Traded notional × the bar's range, split by where the close lies in the range."""
    open_, high, low, close, volume = _columns(candles)
    valid = _valid(open_, high, low, close, volume) & (high > low)
    long = np.zeros(open_.shape[0])
    short = np.zeros(open_.shape[0])
    spread = high[valid] - low[valid]
    notional = volume[valid] * (high[valid] + low[valid] + close[valid]) / 3.0
    amount = notional * spread / open_[valid]
    long[valid] = amount * (high[valid] - close[valid]) / spread
    short[valid] = amount * (close[valid] - low[valid]) / spread
    return pd.DataFrame({"long": long, "short": short}, index=candles.index)


#: The baselines every scorecard shows, by name (``naive`` first: the others are judged
#: against it).
BASELINES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "naive": naive_proxy,
    "range_split": range_split_proxy,
}

__all__ = ["BASELINES", "naive_proxy", "range_split_proxy"]
