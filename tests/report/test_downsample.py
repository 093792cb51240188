"""Thinning of what is drawn: extremes, gaps and candles survive."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backtest.report.downsample import (
    merge_candles,
    min_max_positions,
    thin_segments,
    thin_series,
)


def test_short_series_are_kept_whole():
    np.testing.assert_array_equal(min_max_positions(np.arange(10.0), 100), np.arange(10))


def test_spikes_survive_thinning():
    rng = np.random.default_rng(7)
    values = np.cumsum(rng.normal(size=100_000))
    values[31_337] = 1e6  # a spike
    values[77_777] = -1e6  # a crash
    keep = min_max_positions(values, 1000)
    assert len(keep) <= 1000
    assert {0, 31_337, 77_777, 99_999} <= set(keep.tolist())
    assert np.all(np.diff(keep) > 0)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.integers(5, 3000), elements=st.floats(-1e6, 1e6)),
    st.integers(4, 400),
)
def test_thinning_keeps_the_extremes_and_the_ends(values, max_points):
    keep = min_max_positions(values, max_points)
    assert len(keep) <= max(max_points, 4)
    kept = values[keep]
    assert kept.max() == values.max() and kept.min() == values.min()
    assert keep[0] == 0 and keep[-1] == len(values) - 1


def test_a_gap_stays_a_gap():
    values = np.ones(10_000)
    values[4_000:6_000] = np.nan  # e.g. liquidation price while flat
    kept = values[min_max_positions(values, 200)]
    assert np.isnan(kept).any()
    assert np.isfinite(kept).sum() >= 2


def test_thin_series_keeps_the_index():
    series = pd.Series(np.arange(5000.0), index=pd.date_range("2025", periods=5000, freq="min"))
    thin = thin_series(series, 100)
    assert len(thin) <= 100
    assert thin.index[0] == series.index[0] and thin.index[-1] == series.index[-1]
    assert (thin.to_numpy() == series.loc[thin.index].to_numpy()).all()


def test_merge_candles_by_hand():
    index = pd.date_range("2025-10-10", periods=6, freq="5min", tz="UTC")
    candles = pd.DataFrame(
        {
            "open": [10.0, 11, 12, 13, 14, 15],
            "high": [12.0, 15, 13, 14, 20, 16],
            "low": [9.0, 10, 8, 12, 13, 11],
            "close": [11.0, 12, 13, 14, 15, 12],
            "volume": [1.0, 2, 3, 4, 5, 6],
        },
        index=index,
    )
    merged, factor = merge_candles(candles, max_candles=2)
    assert factor == 3
    assert list(merged.index) == [index[0], index[3]]
    assert merged["open"].tolist() == [10.0, 13.0]
    assert merged["high"].tolist() == [15.0, 20.0]
    assert merged["low"].tolist() == [8.0, 11.0]
    assert merged["close"].tolist() == [13.0, 12.0]
    assert merged["volume"].tolist() == [6.0, 15.0]
    same, one = merge_candles(candles, max_candles=10)
    assert one == 1 and same is candles


@pytest.mark.parametrize("count", [1501, 10_000, 525_600])
def test_merged_candle_count_is_bounded(count):
    index = pd.date_range("2025-01-01", periods=count, freq="min", tz="UTC")
    prices = np.linspace(100, 200, count)
    candles = pd.DataFrame(
        {"open": prices, "high": prices + 1, "low": prices - 1, "close": prices}, index=index
    )
    merged, _ = merge_candles(candles, max_candles=1500)
    assert len(merged) <= 1500
    assert merged["high"].max() == candles["high"].max()
    assert merged["low"].min() == candles["low"].min()


def test_lines_break_between_positions_instead_of_jumping():
    index = pd.date_range("2025-10-10", periods=8, freq="h", tz="UTC")
    liquidation = pd.Series([np.nan, 90.0, 90.0, 90.0, 110.0, 110.0, np.nan, 95.0], index=index)
    positions = np.array([0.0, 1.0, 1.0, 1.0, -1.0, -1.0, 0.0, 1.0])
    line = thin_segments(liquidation, positions)
    values = line.to_numpy()
    # No two consecutive drawn points belong to different positions: 90 never joins 110.
    for before, after in itertools.pairwise(values):
        if np.isfinite(before) and np.isfinite(after):
            assert before == after
    assert list(values[np.isfinite(values)]) == [90.0, 90.0, 90.0, 110.0, 110.0, 95.0]
    assert line.index.is_monotonic_increasing


def test_segment_breaks_survive_thinning():
    count = 50_000
    positions = np.repeat([1.0, -1.0, 1.0, -1.0, 1.0], count // 5)
    liquidation = pd.Series(
        np.where(positions > 0, 80.0, 120.0),
        index=pd.date_range("2025", periods=count, freq="min", tz="UTC"),
    )
    line = thin_segments(liquidation, positions, max_points=200)
    values = line.to_numpy()
    assert len(values) <= 200 + 2 * 4
    assert np.isnan(values).sum() == 4  # one break per position change
    finite = np.isfinite(values[:-1]) & np.isfinite(values[1:])
    assert (values[:-1][finite] == values[1:][finite]).all()
