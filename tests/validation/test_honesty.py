"""Honest by construction: scoring never reads what lies before the warm-up end or outside the
window, and calibrate never reads the test window's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.validation import calibrate, validate

SINCE = pd.Timestamp("2025-10-01", tz="UTC")
UNTIL = pd.Timestamp("2025-10-20", tz="UTC")


def _garbage(frame: pd.DataFrame, mask: np.ndarray, seed: int = 7) -> pd.DataFrame:
    poisoned = frame.copy()
    rng = np.random.default_rng(seed)
    for column in ("long", "short"):
        values = poisoned[column].to_numpy().copy()
        values[mask] = rng.uniform(0, 1e12, size=int(mask.sum()))
        poisoned[column] = values
    return poisoned


def test_truth_before_the_scored_window_is_never_read(candles, truth) -> None:
    clean = validate(candles, truth, since=SINCE, until=UNTIL, warmup="5d")
    outside = (truth.index < SINCE) | (truth.index >= UNTIL)
    poisoned = validate(candles, _garbage(truth, outside), since=SINCE, until=UNTIL, warmup="5d")
    pd.testing.assert_frame_equal(clean.scorecard.table, poisoned.scorecard.table)


def test_candles_before_the_warmup_start_are_never_read(candles, truth) -> None:
    clean = validate(candles, truth, since=SINCE, until=UNTIL, warmup="5d")
    early = candles.index < clean.window.map_start
    assert early.sum() > 0
    damaged = candles.copy()
    damaged.loc[early, ["open", "high", "low", "close"]] *= 3.0
    damaged.loc[early, "volume"] *= 50.0
    again = validate(damaged, truth, since=SINCE, until=UNTIL, warmup="5d")
    pd.testing.assert_frame_equal(clean.series, again.series)


def test_no_bar_scored_before_the_warmup_end_when_data_starts_late(candles, truth) -> None:
    # the candles start 2025-09-24: a 10-day warm-up before 2025-09-26 is not there, so
    # scoring starts 10 days after the first candle instead
    result = validate(candles, truth, since="2025-09-26", until=UNTIL, warmup="10d")
    assert result.window.scored_start == pd.Timestamp("2025-10-04", tz="UTC")
    assert result.series.index[0] == pd.Timestamp("2025-10-04", tz="UTC")
    assert result.window.warmup_used == pd.Timedelta(days=10)


@pytest.mark.parametrize("poison", ["garbage", "nan"])
def test_calibrate_never_reads_the_test_windows_truth(candles, truth, poison) -> None:
    options = dict(
        train_since="2025-09-29", train_until="2025-10-08", test_until="2025-10-20",
        warmup="5d", trials=6, seed=3, progress=False,
    )  # fmt: skip
    clean = calibrate(candles, truth, **options)
    test_bars = truth.index >= pd.Timestamp("2025-10-08", tz="UTC")
    if poison == "nan":
        poisoned_truth = truth.copy()
        poisoned_truth.loc[test_bars, :] = np.nan
    else:
        poisoned_truth = _garbage(truth, test_bars)
    poisoned = calibrate(candles, poisoned_truth, **options)
    assert poisoned.params == clean.params
    assert poisoned.objective_best == clean.objective_best
    name = "BTC/USDT:USDT"
    pd.testing.assert_frame_equal(
        poisoned.train[name].scorecard.table, clean.train[name].scorecard.table
    )
    # the test scorecard did read the test window (after the fit)
    if poison == "garbage":
        assert not poisoned.test[name].scorecard.table.equals(clean.test[name].scorecard.table)
    else:
        assert name not in poisoned.test
