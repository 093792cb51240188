"""No user file is ever lost: marked run folders, atomic replaces, kills at any moment, cleanup.

On the code before run folders were marked, ``run --report DIR`` removed DIR recursively
whatever it held (the user-folder tests find their files gone), the replace deleted the old
run before renaming the new one in (a kill between the two lost both), ``report`` re-rendered
folders without their tables, and temporary files of killed writers stayed forever.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from backtest.cli import main
from backtest.folders import (
    MARKER_FILE,
    RUN,
    check_writable_target,
    clean_temporaries,
    marker_kind,
    staged_folder,
)
from backtest.results import Results
from tests.cli.folder_checks import one_error_line, snapshot

SHORT = ["--since", "2025-10-09", "--until", "2025-10-10", "-q"]
FILES = 12


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("years of work")
    (path / "data").mkdir()
    (path / "data" / "prices.csv").write_text("1,2,3")
    return path


def fake_run(folder: Path, version: str) -> Path:
    """A marked run folder written by the program's own staging, every file tagged."""
    with staged_folder(folder) as staging:
        for index in range(FILES):
            (staging / f"f{index}.txt").write_text(version)
    return folder


def complete_version(folder: Path) -> str:
    """The version of a complete fake run at ``folder`` (fails when it is partial or missing)."""
    assert folder.is_dir(), f"{folder} is gone"
    assert marker_kind(folder) == RUN
    texts = {(folder / f"f{index}.txt").read_text() for index in range(FILES)}
    assert len(texts) == 1, f"mixed or partial run: {texts}"
    names = {path.name for path in folder.iterdir()}
    assert names == {MARKER_FILE, *(f"f{index}.txt" for index in range(FILES))}
    return texts.pop()


def leftovers(parent: Path) -> list[str]:
    return sorted(path.name for path in parent.iterdir() if ".backtest-" in path.name)


# --------------------------------------------------------------------------------------------
# what may be replaced
# --------------------------------------------------------------------------------------------
def test_report_onto_a_user_folder_is_refused_and_nothing_changes(tmp_path, capsys):
    folder = user_folder(tmp_path / "myproject")
    before = snapshot(folder)
    assert main(["run", *SHORT, "--report", str(folder)]) == 2
    line = one_error_line(capsys)
    assert "not written by backtest" in line and "delete it yourself" in line
    assert snapshot(folder) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["myproject"]


def test_report_onto_the_parent_folder_or_the_current_one_is_refused(tmp_path, capsys, monkeypatch):
    user_folder(tmp_path / "other")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = snapshot(tmp_path)
    for target in ("..", ".", "/", str(Path.home())):
        assert main(["run", *SHORT, "--report", target]) == 2, target
        line = one_error_line(capsys)
        assert "--report" in line
    assert snapshot(tmp_path) == before


def test_report_onto_a_file_or_a_plain_earlier_results_folder_is_refused(tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    assert main(["run", *SHORT, "--report", str(afile)]) == 2
    assert "not a folder" in one_error_line(capsys)
    assert afile.read_text() == "keep me"
    unmarked = user_folder(tmp_path / "unmarked")
    (unmarked / "results.json").write_text("{}")  # looks like a run, but not marked as ours
    assert main(["run", *SHORT, "--report", str(unmarked)]) == 2
    one_error_line(capsys)
    assert (unmarked / "thesis.tex").read_text() == "years of work"


def test_an_empty_folder_or_an_earlier_run_is_replaced(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert complete_version(fake_run(empty, "first")) == "first"
    assert complete_version(fake_run(empty, "second")) == "second"
    assert leftovers(tmp_path) == []


def test_results_save_does_not_write_into_a_user_folder(tmp_path):
    folder = user_folder(tmp_path / "mine")
    with pytest.raises(Exception, match="not written by backtest"):
        Results(meta={"status": "complete"}).save(folder)
    assert sorted(path.name for path in folder.iterdir()) == ["data", "thesis.tex"]


# --------------------------------------------------------------------------------------------
# interrupted replaces, killed for real
# --------------------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from backtest.folders import staged_folder

    target, version, slow = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    with staged_folder(target) as staging:
        for index in range({files}):
            (staging / f"f{{index}}.txt").write_text(version)
            if index == {files} // 2:
                (staging.parent / "half-written").touch()
            time.sleep(slow)
    """
).format(files=FILES)


def start_writer(target: Path, version: str, slow: float, pause: str = "") -> subprocess.Popen:
    env = {**os.environ, "BACKTEST_TEST_PAUSE": pause}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), version, str(slow)],
        env=env,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"the writer ended before {what}"
        assert time.monotonic() < deadline, f"never reached {what}"
        time.sleep(0.01)


def backups(parent: Path) -> list[Path]:
    return [path for path in parent.iterdir() if ".backtest-old-" in path.name]


def stagings(parent: Path) -> list[Path]:
    return [path for path in parent.iterdir() if ".backtest-tmp-" in path.name]


STEPS = {
    # step: (pause setting, condition on the parent folder meaning the step is reached)
    "assembling": ("", lambda parent, target: (parent / "half-written").exists()),
    "staged": (
        "staged:2",
        lambda parent, target: any((path / MARKER_FILE).exists() for path in stagings(parent)),
    ),
    "swapped-out": (
        "swapped-out:2",
        lambda parent, target: bool(backups(parent)) and not target.exists(),
    ),
    "swapped-in": (
        "swapped-in:2",
        lambda parent, target: bool(backups(parent)) and target.exists(),
    ),
}


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
@pytest.mark.parametrize("step", list(STEPS))
def test_a_replace_killed_at_any_step_leaves_the_old_or_the_new_run(tmp_path, step, kill):
    parent = tmp_path / "reports"
    target = fake_run(parent / "run", "old")
    pause, reached = STEPS[step]
    writer = start_writer(target, "new", 0.2 if step == "assembling" else 0.0, pause)
    try:
        wait_for(lambda: reached(parent, target), writer, step)
        writer.send_signal(kill)
        writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    (parent / "half-written").unlink(missing_ok=True)
    clean_temporaries(parent)  # what the next start does
    version = complete_version(target)
    if step in ("assembling", "staged"):
        assert version == "old"
    elif kill == signal.SIGINT or step == "swapped-in":
        assert version == "new", "Ctrl-C waits for the two renames; after them the new is in"
    assert leftovers(parent) == []


def test_kills_at_random_moments_never_lose_both_runs(tmp_path):
    parent = tmp_path / "reports"
    target = fake_run(parent / "run", "v0")
    chooser = random.Random(12)
    seen = set()
    for attempt in range(1, 11):
        writer = start_writer(target, f"v{attempt}", 0.004)
        time.sleep(chooser.uniform(0.05, 0.35))
        writer.send_signal(chooser.choice([signal.SIGKILL, signal.SIGINT]))
        writer.wait(timeout=60)
        (parent / "half-written").unlink(missing_ok=True)
        clean_temporaries(parent)
        seen.add(complete_version(target))
        assert leftovers(parent) == []
    assert seen, "every attempt left a complete run"


def test_a_real_run_killed_mid_replace_is_recovered_and_replaced_by_the_next_run(tmp_path, capsys):
    parent = tmp_path / "reports"
    target = fake_run(parent / "run", "old")
    env = {**os.environ, "BACKTEST_TEST_PAUSE": "swapped-out:30", "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "backtest", "run", *SHORT, "--report", str(target)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: bool(backups(parent)) and not target.exists(), process, "the swap")
        process.kill()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert stagings(parent) and backups(parent), "both runs are on disk, neither at the target"
    assert main(["run", *SHORT, "--report", str(target)]) == 0, capsys.readouterr().err
    assert Results.load(target).complete and marker_kind(target) == RUN
    assert not (target / "f0.txt").exists(), "the old run was replaced as a whole"
    assert leftovers(parent) == []


# --------------------------------------------------------------------------------------------
# cleanup of temporary files on the next start
# --------------------------------------------------------------------------------------------
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_next_start_removes_only_the_programs_own_temporaries(tmp_path, capsys):
    parent = tmp_path / "reports"
    parent.mkdir()
    pid = dead_pid()
    ours = [
        parent / f".run.backtest-tmp-{pid}-0a1b2c3d",  # a half-assembled run folder
        parent / f".report.html.backtest-tmp-{pid}-deadbeef.tmp",  # a half-written file
    ]
    ours[0].mkdir()
    (ours[0] / "equity.parquet").write_bytes(b"partial")
    ours[1].write_text("partial")
    alive = parent / f".x.backtest-tmp-{os.getpid()}-0a1b2c3d"  # a live process's: kept
    alive.mkdir()
    restored = parent / f".older.backtest-old-{pid}-12345678"  # killed between the renames
    restored.mkdir()
    (restored / "f.txt").write_text("the old run")
    lookalikes = [".notes.tmp", "report.html.tmp", ".run.backtest-tmp-x", "backtest-tmp-1-2"]
    for name in lookalikes:
        (parent / name).write_text("user's")
    assert main(["run", *SHORT, "--report", str(parent / "new")]) == 0, capsys.readouterr().err
    assert not any(path.exists() for path in ours)
    assert alive.is_dir()
    assert (parent / "older" / "f.txt").read_text() == "the old run"
    for name in lookalikes:
        assert (parent / name).read_text() == "user's", name


def test_a_killed_store_write_is_cleaned_by_the_next_write(tmp_path):
    import pandas as pd

    from backtest.market.store import write_series

    folder = tmp_path / "binanceusdm"
    folder.mkdir()
    pid = dead_pid()
    stale = folder / f".BTCUSDT-5m.parquet.backtest-tmp-{pid}-ab_12cde.tmp"
    stale.write_bytes(b"half a parquet file")
    foreign = folder / ".BTCUSDT-5m.parquet.x9.tmp"
    foreign.write_bytes(b"not ours")
    frame = pd.DataFrame(
        {
            "timestamp_ms": [1_760_000_100_000 - 1_760_000_100_000 % 300_000],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [1.0],
        }
    )
    write_series(
        folder / "BTCUSDT-5m.parquet",
        frame,
        series="ohlcv",
        exchange="binanceusdm",
        symbol="BTC/USDT:USDT",
        timeframe="5m",
    )
    assert not stale.exists() and foreign.exists()
    assert sorted(path.name for path in folder.iterdir()) == [foreign.name, "BTCUSDT-5m.parquet"]


# --------------------------------------------------------------------------------------------
# `backtest report` on bad folders and outputs
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "run"
    assert main(["run", *SHORT, "--report", str(folder)]) == 0
    return folder


def copy_of(saved: Path, folder: Path) -> Path:
    folder.mkdir()
    for path in saved.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("no-equity", "incomplete run folder (equity missing"),
        ("no-marker", "no .backtest-run marker"),
        ("results-list", "damaged"),
        ("results-empty", "not a readable results file"),
    ],
)
def test_report_on_an_incomplete_or_damaged_run_fails_in_one_line(
    saved, tmp_path, capsys, damage, expected
):
    folder = copy_of(saved, tmp_path / "run")
    if damage == "no-equity":
        (folder / "equity.parquet").unlink()
    elif damage == "no-marker":
        (folder / MARKER_FILE).unlink()
    elif damage == "results-list":
        (folder / "results.json").write_text("[1, 2]")
    else:
        (folder / "results.json").write_text("")
    assert main(["report", str(folder)]) == 2
    assert expected in one_error_line(capsys)


def test_report_output_onto_user_files_is_refused(saved, tmp_path, capsys):
    mine = user_folder(tmp_path / "mine")
    (mine / "report.html").write_text("my own page")
    before = snapshot(mine)
    assert main(["report", str(saved), "--output", str(mine)]) == 2
    assert "not written by backtest" in one_error_line(capsys)
    assert snapshot(mine) == before
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    for target in (afile, afile / "sub", Path("/")):
        assert main(["report", str(saved), "--output", str(target)]) == 2, target
        one_error_line(capsys)
    assert afile.read_text() == "x"


def test_report_output_into_a_new_folder_twice_and_onto_another_run(saved, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", str(saved), "--output", str(out), "-q"]) == 0
    assert (out / "report.html").is_file() and marker_kind(out) == "report"
    assert check_writable_target(out, ("report",), "--output") == out, "ours: may be rewritten"
    other = copy_of(saved, tmp_path / "other-run")
    assert main(["report", str(saved), "--output", str(other)]) == 2
    assert "run folder" in one_error_line(capsys)


def test_report_that_cannot_write_its_files_is_one_line(saved, tmp_path, capsys):
    folder = copy_of(saved, tmp_path / "run")
    (folder / "metrics.json").unlink()
    (folder / "metrics.json").mkdir()  # in the way (as a read-only folder would be)
    assert main(["report", str(folder)]) == 2
    assert "cannot write the report" in one_error_line(capsys)
