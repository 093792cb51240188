"""``backtest report <run-folder>``: re-render a saved run, or fail in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backtest.cli import main
from backtest.report import compute_metrics


@pytest.fixture(scope="module")
def saved_run(sample_results, tmp_path_factory) -> Path:
    return sample_results.save(tmp_path_factory.mktemp("reports") / "run-1")


def test_report_re_renders_a_saved_run(saved_run, sample_results, capsys):
    assert not (saved_run / "report.html").exists()
    assert main(["report", str(saved_run)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith(f"report: {saved_run / 'report.html'}")
    assert "Return" in out and "Own liquidations" in out
    for name in ("report.html", "metrics.json", "equity.csv", "trades.csv", "report.png"):
        assert (saved_run / name).is_file(), name
    saved = json.loads((saved_run / "metrics.json").read_text())
    expected = json.loads(json.dumps(compute_metrics(sample_results)).replace("NaN", "null"))
    assert saved == expected  # the loaded run scores exactly like the original


def test_report_output_folder(saved_run, tmp_path, capsys):
    assert main(["report", str(saved_run), "--output", str(tmp_path / "copy"), "-q"]) == 0
    assert capsys.readouterr().out == ""  # -q: quiet (issue 13)
    assert (tmp_path / "copy" / "report.html").is_file()


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt"])
def test_a_bad_folder_fails_in_one_line(case, saved_run, tmp_path, capsys):
    folder = tmp_path / "bad"
    if case == "empty":
        folder.mkdir()
    elif case == "corrupt":
        folder.mkdir()
        (folder / "results.json").write_text((saved_run / "results.json").read_text())
        (folder / "equity.parquet").write_bytes(b"not parquet at all")
    assert main(["report", str(folder)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(folder) in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_python_dash_m_backtest_report(saved_run, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", "backtest", "report", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    done = subprocess.run(
        [sys.executable, "-m", "backtest", "report", str(saved_run), "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
