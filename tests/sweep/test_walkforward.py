import itertools
import math

import pandas as pd
import pytest

from backtest.errors import ConfigError
from backtest.sweep.store import RunRecord
from backtest.sweep.walkforward import (
    best_record,
    make_windows,
    parse_walk_forward,
    stitch,
)

DAY = 86_400_000


def test_parse_walk_forward_lengths():
    spec = parse_walk_forward("5d:2d")
    assert (spec.train_ms, spec.test_ms) == (5 * DAY, 2 * DAY)
    assert parse_walk_forward("36h:12h").train_ms == 36 * 3_600_000
    for bad in ("5d", "5x:2d", "5d:", ":2d"):
        with pytest.raises(ConfigError, match="--walk-forward"):
            parse_walk_forward(bad)


def test_windows_roll_by_the_test_length_and_stay_whole():
    start = 1_000 * DAY
    windows = make_windows(start, start + 12 * DAY + DAY // 2, parse_walk_forward("5d:2d"))
    # test spans [5,7) [7,9) [9,11); [11,13) would pass the end at 12.5 days
    assert len(windows) == 3
    assert [(w.train_since_ms - start) // DAY for w in windows] == [0, 2, 4]
    assert [(w.test_since_ms - start) // DAY for w in windows] == [5, 7, 9]
    for before, after in itertools.pairwise(windows):
        assert before.test_until_ms == after.test_since_ms
    for window in windows:
        assert window.train_until_ms == window.test_since_ms
        assert window.test_until_ms - window.test_since_ms == 2 * DAY
    assert windows[0].train_range == ("1972-09-27T00:00:00", "1972-10-02T00:00:00")


def test_too_little_data_for_one_window_is_explained():
    with pytest.raises(ConfigError, match=r"shorter than one train and one test span"):
        make_windows(0, 6 * DAY, parse_walk_forward("5d:2d"))


def metric_record(key, value, status="complete"):
    return RunRecord(key=key, status=status, metrics={"Sharpe": value})


def test_best_record_skips_failed_and_missing_values_and_keeps_the_first_tie():
    records = [
        metric_record("failed", 99.0, status="failed"),
        metric_record("nan", float("nan")),
        metric_record("a", 1.5),
        metric_record("b", 2.5),
        metric_record("c", 2.5),
        RunRecord(key="text", status="complete", metrics={"Sharpe": "n/a"}),
    ]
    assert best_record(records, "Sharpe").key == "b"
    assert best_record(records, "Sharpe", ascending=True).key == "a"
    assert best_record(records[:2], "Sharpe") is None


def test_stitch_compounds_each_window_from_the_previous_end():
    first = pd.Series([1000.0, 1100.0], index=pd.to_datetime(["2025-10-01", "2025-10-02"]))
    second = pd.Series([1000.0, 900.0], index=pd.to_datetime(["2025-10-03", "2025-10-04"]))
    third = pd.Series([2000.0, 3000.0], index=pd.to_datetime(["2025-10-05", "2025-10-06"]))
    joined = stitch([first, second, third], [1000.0, 1000.0, 2000.0])
    # +10 %, then -10 % of 1100 = 990, then +50 % of 990 = 1485
    assert joined.tolist() == pytest.approx([1000.0, 1100.0, 1100.0, 990.0, 990.0, 1485.0])
    assert joined.index.is_monotonic_increasing
    assert math.isclose(joined.iloc[-1] / joined.iloc[0], 1.1 * 0.9 * 1.5)


def test_stitch_of_nothing_is_empty():
    assert stitch([], []).empty
