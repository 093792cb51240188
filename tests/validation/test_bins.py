"""Matching candle bars to whole truth bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.errors import DataError
from backtest.validation.bins import check_truth, truth_bins


def _truth(start: str, bars: int) -> pd.DataFrame:
    index = pd.date_range(start, periods=bars, freq="1h", tz="UTC")
    return pd.DataFrame({"long": np.arange(bars, dtype=float), "short": 1.0}, index=index)


def test_whole_bars_only_and_the_window() -> None:
    candles = pd.date_range("2025-01-01 00:00", "2025-01-01 04:45", freq="15min", tz="UTC")
    candles = candles.delete(6)  # 01:30 missing: the 01:00 truth bar is incomplete
    truth = _truth("2025-01-01", 6)  # 00:00 .. 05:00; the candles end at 05:00
    bins = truth_bins(candles, truth, since=pd.Timestamp("2025-01-01 00:00", tz="UTC"))
    assert [time.hour for time in bins.index] == [0, 2, 3, 4]
    sums = bins.sum(np.ones(len(candles)))
    assert sums.tolist() == [4.0, 4.0, 4.0, 4.0]
    # since/until cut whole truth bars
    bins = truth_bins(
        candles, truth,
        since=pd.Timestamp("2025-01-01 02:00", tz="UTC"),
        until=pd.Timestamp("2025-01-01 04:30", tz="UTC"),
    )  # fmt: skip
    assert [time.hour for time in bins.index] == [2, 3]
    assert (bins.candle_bin[candles < pd.Timestamp("2025-01-01 02:00", tz="UTC")] == -1).all()


def test_nan_truth_bars_are_not_scored() -> None:
    candles = pd.date_range("2025-01-01", periods=8, freq="30min", tz="UTC")
    truth = _truth("2025-01-01", 4)
    truth.iloc[1, 0] = np.nan
    bins = truth_bins(candles, truth)
    assert [time.hour for time in bins.index] == [0, 2, 3]


def test_truth_bars_must_be_whole_candle_multiples() -> None:
    candles = pd.date_range("2025-01-01", periods=20, freq="25min", tz="UTC")
    with pytest.raises(DataError, match="whole number"):
        truth_bins(candles, _truth("2025-01-01", 4))


def test_check_truth_refuses_bad_frames() -> None:
    truth = _truth("2025-01-01", 3)
    with pytest.raises(DataError, match="lacks column"):
        check_truth(truth.drop(columns="short"))
    negative = truth.copy()
    negative.iloc[0, 0] = -5.0
    with pytest.raises(DataError, match="negative"):
        check_truth(negative)
    with pytest.raises(DataError, match="repeats"):
        check_truth(pd.concat([truth, truth.iloc[:1]]))
