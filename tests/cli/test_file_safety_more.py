"""More commands that must never overwrite a user's files, and JSON that stays strict.

On the code before these tests, ``heatmap --out DIR`` wrote its pictures into any folder (and
over any file of the same name), ``calibrate --profile FILE --force`` replaced any file with a
profile, the validation scorecard's JSON raised on NaN, tier snapshots were written with bare
``NaN``, and the data folder's write probe (``.write-test-*``) of a killed download stayed
forever.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from backtest.cli import main
from backtest.errors import ConfigError
from backtest.folders import MARKER_FILE, TEMPORARY_PATTERN, marker_kind, write_marker
from backtest.liquidation.heatmap import MapParams
from backtest.liquidation.profiles import check_profile_target, load_profile, write_profile
from tests.cli.folder_checks import one_error_line, snapshot

HEATMAP = ["heatmap", "--at", "2025-10-10T20:00", "--window", "12h", "--after", "2h"]


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def strict_loads(text: str):
    def refuse(constant: str):
        raise ValueError(f"bare {constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------------------------
# heatmap --out
# --------------------------------------------------------------------------------------------
def heatmap(out: Path, store: Path) -> list[str]:
    return [*HEATMAP, "--out", str(out), "--data-dir", str(store)]


def test_heatmap_never_writes_into_a_users_folder_or_over_a_file(tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()  # empty: the bundled sample is used
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    before = snapshot(mine)
    assert main(heatmap(mine, store)) == 2
    assert "not written by backtest" in one_error_line(capsys)
    assert snapshot(mine) == before
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert main(heatmap(a_file, store)) == 2
    assert "not a folder" in one_error_line(capsys)
    assert a_file.read_text() == "mine"
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    write_marker(run_folder, "run")
    assert main(heatmap(run_folder, store)) == 2
    assert "is a run folder" in one_error_line(capsys)
    assert sorted(path.name for path in run_folder.iterdir()) == [MARKER_FILE]


def test_heatmap_marks_its_folder_writes_into_it_again_and_cleans_killed_leftovers(
    tmp_path, capsys
):
    store = tmp_path / "store"
    store.mkdir()
    out = tmp_path / "pictures"
    assert main(heatmap(out, store)) == 0, capsys.readouterr().err
    assert marker_kind(out) == "heatmap"
    first = sorted(path.name for path in out.iterdir())
    assert len([name for name in first if name.endswith((".png", ".html"))]) == 2
    pid = dead_pid()
    leftover = out / f".liquidation-map.backtest-tmp-{pid}-0a1b2c3d"  # a killed heatmap's
    leftover.mkdir()
    (leftover / "half.png").write_bytes(b"partial")
    assert main(heatmap(out, store)) == 0, capsys.readouterr().err
    assert not leftover.exists()
    assert sorted(path.name for path in out.iterdir()) == first  # no temporaries remain


# --------------------------------------------------------------------------------------------
# calibrate --profile FILE --force
# --------------------------------------------------------------------------------------------
def test_force_replaces_only_an_earlier_profile(tmp_path):
    mine = tmp_path / "notes.toml"
    mine.write_text("my own notes\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not one"):
        write_profile(mine, MapParams(), overwrite=True)
    assert mine.read_text(encoding="utf-8") == "my own notes\n"
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        check_profile_target(folder, overwrite=True)
    earlier = write_profile(tmp_path / "p.toml", MapParams(half_life_hours=12.0))
    with pytest.raises(ConfigError, match="already exists"):
        write_profile(earlier, MapParams())
    write_profile(earlier, MapParams(), overwrite=True)
    assert load_profile(earlier) == MapParams()


def test_calibrate_force_refuses_a_users_file_before_any_work(tmp_path, capsys):
    from tests.validation.conftest import STORE, TRUTH_CSV

    mine = tmp_path / "settings.toml"
    mine.write_text('[tool]\nname = "mine"\n', encoding="utf-8")
    code = main([
        "calibrate", "--data-dir", str(STORE), "--truth", str(TRUTH_CSV),
        "--train-until", "2025-10-08", "--warmup", "5d", "--trials", "1", "--no-progress",
        "--out", str(tmp_path / "c"), "--profile", str(mine), "--force",
    ])  # fmt: skip
    assert code == 2
    assert "--force replaces only an earlier map profile" in one_error_line(capsys)
    assert mine.read_text(encoding="utf-8") == '[tool]\nname = "mine"\n'
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------------------------
# strict JSON
# --------------------------------------------------------------------------------------------
def test_validation_json_writes_null_for_nan():
    from backtest.validation.scoring import ValidationResult

    fake = types.SimpleNamespace(to_dict=lambda: {"spearman": float("nan"), "n": float("inf")})
    assert strict_loads(ValidationResult.to_json(fake)) == {"spearman": None, "n": None}


def test_tier_snapshots_are_strict_json(tmp_path):
    import datetime as dt

    from backtest.liquidation.tiers import write_snapshot

    rows = [
        {"minNotional": 0, "maxNotional": 1e6, "maintenanceMarginRate": 0.01, "maxLeverage": 50}
    ]
    path = write_snapshot(
        tmp_path, {"BTC/USDT:USDT": rows}, exchange="binanceusdm",
        effective_date=dt.date(2025, 10, 7), source="test", notes={"coverage": float("nan")},
    )  # fmt: skip
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        document = strict_loads(handle.read())
    assert document["notes"] == {"coverage": None}


# --------------------------------------------------------------------------------------------
# the data folder's write probe
# --------------------------------------------------------------------------------------------
KILLED_PROBE = """
import os, sys
from pathlib import Path
from backtest.market import download
Path.unlink = lambda self, missing_ok=False: None  # the process dies before removing it
download.check_writable(sys.argv[1], "binanceusdm")
os._exit(0)
"""


def test_a_killed_downloads_write_probe_is_removed_on_the_next_start(tmp_path):
    from backtest.market.download import check_writable

    folder = tmp_path / "binanceusdm"
    folder.mkdir()
    (folder / "notes.txt").write_text("user's")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", KILLED_PROBE, str(tmp_path)], check=True, env=env)
    probes = [path.name for path in folder.iterdir() if path.name != "notes.txt"]
    assert len(probes) == 1 and TEMPORARY_PATTERN.match(probes[0]), probes
    assert check_writable(tmp_path, "binanceusdm") == folder
    assert [path.name for path in folder.iterdir()] == ["notes.txt"]
