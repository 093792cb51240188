import json

import numpy as np
import pandas as pd
import pytest

from backtest.errors import ConfigError
from backtest.sweep.store import RunRecord, SweepStore, canonical_json, run_key


def record(key, status="complete", **fields):
    return RunRecord(key=key, status=status, **fields)


def test_run_key_ignores_key_order_and_numpy_types():
    first = {"leverage": 3.0, "params": {"fast": 5, "slow": 20}, "since": "2025-10-01"}
    second = {"since": "2025-10-01", "params": {"slow": 20, "fast": np.int64(5)}, "leverage": 3.0}
    assert run_key(first) == run_key(second)
    assert len(run_key(first)) == 16
    assert run_key(first) != run_key({**first, "leverage": 3.5})
    assert run_key(first) != run_key({**first, "params": {"fast": 5, "slow": 21}})


def test_canonical_json_is_stable_for_non_finite_floats():
    assert canonical_json({"x": float("nan")}) == canonical_json({"x": float("nan")})


def test_records_are_appended_and_read_back(tmp_path):
    with SweepStore(tmp_path / "sweep") as store:
        store.append(record("a", metrics={"Return [%]": 1.5}, seconds=0.25, worker="h:1"))
        store.append(record("b", "failed", error="RuntimeError: boom"))
    with SweepStore(tmp_path / "sweep") as store:
        assert set(store.records) == {"a", "b"}
        assert store.records["a"].metrics == {"Return [%]": 1.5}
        assert store.completed("a") is not None
        assert store.completed("b") is None, "failed runs are redone on resume"
        assert store.completed("c") is None


def test_a_line_cut_short_is_dropped_and_the_file_repaired(tmp_path):
    folder = tmp_path / "sweep"
    with SweepStore(folder) as store:
        store.append(record("a"))
        store.append(record("b"))
    path = folder / "runs.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 10])  # the second line is cut in the middle
    with SweepStore(folder) as store:
        assert set(store.records) == {"a"}
        assert store.dropped_lines == 1
        store.append(record("c"))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "c"]


def test_garbage_lines_are_skipped(tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    good = record("a").to_json()
    (folder / "runs.jsonl").write_text(f"not json\n{good}\n[1, 2]\n")
    with SweepStore(folder) as store:
        assert set(store.records) == {"a"}
        assert store.dropped_lines == 2


def test_two_sweeps_cannot_share_a_folder(tmp_path):
    with (
        SweepStore(tmp_path / "sweep"),
        pytest.raises(ConfigError, match="another sweep is writing"),
    ):
        SweepStore(tmp_path / "sweep").open()
    with SweepStore(tmp_path / "sweep"):
        pass  # released when the first one closed


def test_equity_round_trips_through_the_record():
    times = pd.date_range("2025-10-01", periods=3, freq="5min", tz="UTC")
    original = RunRecord(
        key="k",
        status="complete",
        equity={"time_ms": times.as_unit("ms").asi8.tolist(), "value": [1.0, 2.0, 1.5]},
    )
    series = RunRecord.from_json(original.to_json()).equity_series()
    assert series.index.equals(times)
    assert series.tolist() == [1.0, 2.0, 1.5]


def test_table_is_written_as_csv_and_parquet(tmp_path):
    frame = pd.DataFrame(
        {
            "rank": pd.array([1, None], dtype="Int64"),
            "fast": [3, 5],
            "Start": ["2025-10-01", 7.0],  # a metric that is text in one run, a number in another
            "Return [%]": [1.25, float("nan")],
            "status": ["complete", "failed"],
        }
    )
    with SweepStore(tmp_path / "sweep") as store:
        csv_path, parquet_path = store.write_table(frame)
    back = pd.read_parquet(parquet_path)
    assert back["fast"].tolist() == [3, 5]
    assert back["Start"].tolist() == ["2025-10-01", "7.0"]
    assert back["Return [%]"].iloc[0] == 1.25
    assert pd.read_csv(csv_path)["status"].tolist() == ["complete", "failed"]
