"""A sweep stays within the machine: capped workers, refused huge grids, Ctrl-C cleans up.

On the code before these limits, ``--workers 64`` started 64 processes on two cores, a grid of
millions of combinations was expanded and validated run by run, a Ctrl-C pressed while the
workers were starting was ignored (the sweep ran to its end and exited 0), and a sweep folder
could be pointed at any folder of the user's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from backtest.cli import build_parser, main
from backtest.commands.sweep import build_spec
from backtest.errors import ConfigError
from backtest.sweep import driver as driver_module
from backtest.sweep import execute
from backtest.sweep import grid as grid_module
from backtest.sweep.execute import capped_workers, default_workers
from backtest.sweep.limits import MAX_GRID_RUNS
from backtest.sweep.store import SweepStore
from tests.sweep import fakes

SLICE = ["--since", "2025-10-08", "--until", "2025-10-11"]


def values(count: int, start: float = 1.0) -> str:
    return ",".join(str(start + index) for index in range(count))


def spec_of(*argv: str):
    return build_spec(build_parser().parse_args(["sweep", "--strategy", "ClusterFade", *argv]))


# --------------------------------------------------------------------------------------------
# grid limit
# --------------------------------------------------------------------------------------------
def test_a_grid_over_the_limit_is_refused_before_it_is_built(monkeypatch):
    def no_expansion(*args, **kwargs):
        raise AssertionError("the grid was expanded")

    monkeypatch.setattr(grid_module, "expand", no_expansion)
    monkeypatch.setattr(driver_module, "expand", no_expansion)
    huge = ["-g", f"cash={values(1000, 100)}", "-g", f"leverage={values(100)}"]
    huge += ["-g", f"band={values(100, 0.01)}"]  # 10,000,000 combinations
    with pytest.raises(ConfigError) as caught:
        spec_of(*huge)
    message = str(caught.value)
    assert "10,000,000 combinations" in message and f"{MAX_GRID_RUNS:,}" in message
    assert "--allow-large-grid" in message and "\n" not in message
    spec = spec_of(*huge, "--allow-large-grid")
    assert [len(axis.values) for axis in spec.axes] == [1000, 100, 100]


def test_the_limit_is_inclusive_and_stated_in_the_help(capsys):
    spec = spec_of("-g", f"cash={values(100, 100)}", "-g", f"leverage={values(100)}")
    assert len(spec.axes) == 2  # exactly 10,000: allowed
    with pytest.raises(ConfigError):
        spec_of("-g", f"cash={values(101, 100)}", "-g", f"leverage={values(100)}")
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert f"more than {MAX_GRID_RUNS:,} combinations" in capsys.readouterr().out


def test_the_command_refuses_a_huge_grid_in_one_line(capsys, tmp_path):
    status = main(
        [
            "sweep",
            "--strategy",
            "ClusterFade",
            "-g",
            f"cash={values(200, 100)}",
            "-g",
            f"leverage={values(60)}",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "12,000 combinations" in err
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------
# worker count
# --------------------------------------------------------------------------------------------
def test_workers_are_capped_at_the_cores_with_one_clear_line(caplog):
    cores = default_workers()
    assert cores == len(os.sched_getaffinity(0))
    with caplog.at_level(logging.WARNING, logger=execute.__name__):
        assert capped_workers(cores + 62) == cores
    (line,) = [record.getMessage() for record in caplog.records]
    assert line.startswith(f"--workers {cores + 62}: ") and f"using {cores} worker" in line
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=execute.__name__):
        assert capped_workers(1) == 1
    assert not caplog.records
    with pytest.raises(ConfigError, match="at least 1"):
        capped_workers(0)


def test_open_client_starts_no_more_workers_than_cores():
    cores = default_workers()
    with execute.open_client(cores + 3, processes=False) as client:
        assert len(client.scheduler_info()["workers"]) == cores


# --------------------------------------------------------------------------------------------
# sweep folders are ours
# --------------------------------------------------------------------------------------------
def test_a_sweep_folder_is_never_a_users_folder(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("my table")
    with pytest.raises(ConfigError, match="not written by backtest"):
        SweepStore(mine)
    status = main(
        ["sweep", "--strategy", "ClusterFade", "-g", "band=0.02,0.03", *SLICE, "--out", str(mine)]
    )
    assert status == 2 and "delete it yourself" in capsys.readouterr().err
    assert sorted(path.name for path in mine.iterdir()) == ["results.csv"]
    assert (mine / "results.csv").read_text() == "my table"
    ours = tmp_path / "ours"
    with SweepStore(ours):
        pass
    with SweepStore(ours):  # resuming into our own folder
        pass
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "sweep.json").write_text("{}")  # written before folders were marked
    with SweepStore(legacy):
        pass


# --------------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------------
def start_sweep(out: Path, store_dir: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "backtest", "sweep", "--strategy", fakes.STRATEGY]
    command += ["-g", "fast=2,3,4,5,6,7", "-g", "slow=20,30", *SLICE, "--data-dir", store_dir]
    command += ["--workers", "2", "--out", str(out), "-q"]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)


def interrupt(process: subprocess.Popen, ready) -> tuple[int, str, list[psutil.Process]]:
    """SIGINT ``process`` once ``ready(children)``; return its status, stderr and children."""
    parent = psutil.Process(process.pid)
    children: list[psutil.Process] = []
    deadline = time.monotonic() + 120
    try:
        while process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                children = parent.children(recursive=True) or children
            if ready(children):
                break
            time.sleep(0.02)
        assert process.poll() is None, "the sweep ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, err, children


def assert_all_gone(children: list[psutil.Process]) -> None:
    assert children, "the sweep had started worker processes"
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"worker processes left behind: {alive}"


def test_ctrl_c_while_the_workers_start_stops_the_sweep(tmp_path, store_dir):
    process = start_sweep(tmp_path / "out", store_dir)
    status, err, children = interrupt(process, lambda children: len(children) >= 1)
    assert status == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert_all_gone(children)
    assert "Traceback" not in err


def test_ctrl_c_during_the_runs_leaves_no_worker_behind(tmp_path, store_dir):
    out = tmp_path / "out"
    process = start_sweep(out, store_dir)
    records = out / "runs.jsonl"
    status, err, children = interrupt(
        process, lambda children: records.is_file() and records.stat().st_size > 0
    )
    assert status == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert_all_gone(children)
    done = len(records.read_text().splitlines())
    assert 1 <= done < 12
    assert not [path for path in out.iterdir() if ".backtest-tmp-" in path.name]
    json.loads((out / "sweep.json").read_text())


def test_opening_a_sweep_folder_removes_what_killed_sweeps_left(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    dead = process.pid
    folder = tmp_path / "sweep"
    with SweepStore(folder):
        pass
    stale = [
        folder / f".results.csv.backtest-tmp-{dead}-0a1b2c3d.tmp",
        folder / f".sweep.html.backtest-tmp-{dead}-ffffffff.tmp",
    ]
    (folder / "reports").mkdir()
    stale.append(folder / "reports" / f".01-abc.backtest-tmp-{dead}-12345678")
    stale[-1].mkdir()
    for path in stale[:2]:
        path.write_text("half")
    kept = [folder / "results.csv.tmp", folder / "notes.txt", folder / ".my.backtest-tmp-x"]
    for path in kept:
        path.write_text("user's")
    with SweepStore(folder):
        pass
    assert not any(path.exists() for path in stale)
    assert all(path.read_text() == "user's" for path in kept)
