"""Every JSON document the program writes or prints is strict JSON: null, never NaN/Infinity.

On the code before :mod:`backtest.strict_json`, ``run --json`` printed ``NaN`` for the metrics
of a run without trades (Sharpe, Win Rate, ...), ``runs.jsonl`` lines and ``results.json`` /
``sweep.json`` wrote ``NaN``/``Infinity`` as Python does by default; a strict parser rejects all
of them.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from backtest.cli import main
from backtest.results import Results
from backtest.strict_json import dumps, json_ready
from backtest.sweep.store import RunRecord, SweepStore

NO_TRADES = ["--since", "2025-10-09", "--until", "2025-10-10"]
NO_TRADES += ["--strategy", "SmaCross", "-p", "fast=50", "-p", "slow=200"]


def strict(text: str):
    def refuse(constant):
        raise AssertionError(f"not strict JSON: bare {constant}")

    return json.loads(text, parse_constant=refuse)


def test_run_json_and_metrics_json_have_null_for_missing_metrics(tmp_path, capsys):
    assert main(["run", *NO_TRADES, "--json", "--report", str(tmp_path / "r")]) == 0
    summary = strict(capsys.readouterr().out)
    assert summary["metrics"]["# Trades"] == 0
    assert summary["metrics"]["Win Rate [%]"] is None and summary["metrics"]["Sharpe"] is None
    metrics = strict((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["Win Rate [%]"] is None
    strict((tmp_path / "r" / "results.json").read_text())


def test_results_json_with_non_finite_and_numpy_values(tmp_path):
    results = Results(
        meta={"status": "complete", "score": float("nan"), "count": np.int64(3)},
        config={"cash": float("inf"), "levels": [np.float32("-inf"), np.float64(1.5)]},
    )
    results.save(tmp_path / "run")
    document = strict((tmp_path / "run" / "results.json").read_text())
    assert document["meta"]["score"] is None and document["meta"]["count"] == 3
    assert document["config"] == {"cash": None, "levels": [None, 1.5]}


def test_runs_jsonl_lines_and_the_manifest_are_strict(tmp_path):
    record = RunRecord(
        key="k",
        status="complete",
        metrics={"Sharpe": float("nan"), "Return [%]": np.float64("inf"), "# Trades": np.int64(0)},
        settings={"leverage": 3.0},
    )
    line = record.to_json()
    assert strict(line)["metrics"] == {"Sharpe": None, "Return [%]": None, "# Trades": 0}
    assert RunRecord.from_json(line).metrics["Sharpe"] is None
    with SweepStore(tmp_path / "sweep") as store:
        store.append(record)
        store.write_manifest({"base": {"cash": float("inf")}, "axes": {"x": [math.nan, 1]}})
    for text in (tmp_path / "sweep" / "runs.jsonl").read_text().splitlines():
        strict(text)
    manifest = strict((tmp_path / "sweep" / "sweep.json").read_text())
    assert manifest == {"base": {"cash": None}, "axes": {"x": [None, 1]}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), None),
        (np.float32("inf"), None),
        (np.float64(2.5), 2.5),
        (np.int32(7), 7),
        (np.array([1.0, np.nan]), [1.0, None]),
        ({"a": (1, float("-inf"))}, {"a": [1, None]}),
        ({float("nan"): 1}, {"nan": 1}),
        (pd.NaT, None),
        (pd.NA, None),
        (True, True),
    ],
)
def test_json_ready_converts_what_strict_json_cannot_hold(value, expected):
    assert json_ready(value) == expected
    strict(dumps(value))


def test_unknown_objects_are_written_as_text():
    stamp = pd.Timestamp("2025-10-10", tz="UTC")
    assert strict(dumps({"time": stamp})) == {"time": str(stamp)}
