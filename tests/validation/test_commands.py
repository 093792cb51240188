"""The validate and calibrate commands: outputs, a profile round trip, every bad input in one
line with exit status 2."""

from __future__ import annotations

import json

import pytest

from backtest.cli import main
from tests.validation.conftest import STORE, TRUTH_CSV

DATA = ["--data-dir", str(STORE), "--truth", str(TRUTH_CSV)]
WINDOW = ["--since", "2025-10-01", "--until", "2025-10-20", "--warmup", "5d"]


def test_validate_prints_the_table_and_writes_json_series_and_picture(tmp_path, capsys) -> None:
    out = tmp_path / "v"
    assert main(["validate", *DATA, *WINDOW, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Spearman rank correlation [long]" in printed
    assert "map" in printed and "naive" in printed and "range_split" in printed
    assert "114 truth bars" in printed
    document = json.loads((out / "scorecard.json").read_text(encoding="utf-8"))
    assert document["window"]["bars"] == 114
    assert set(document["scorecard"]) == {"map", "naive", "range_split"}
    assert (out / "validation.png").stat().st_size > 20_000
    assert (out / "series.csv").read_text(encoding="utf-8").startswith("time,truth_long")
    # a second run replaces its own folder
    assert main(["validate", *DATA, *WINDOW, "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scored"]["window"]["bars"] == 114


def test_validate_split_scores_train_and_test_windows(tmp_path, capsys) -> None:
    out = tmp_path / "v"
    code = main(["validate", *DATA, *WINDOW, "--split", "2025-10-10", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "== train window ==" in printed and "== test window ==" in printed
    document = json.loads((out / "scorecard.json").read_text(encoding="utf-8"))
    assert document["train"]["window"]["last_bar"].startswith("2025-10-09T20:00")
    assert document["test"]["window"]["first_bar"].startswith("2025-10-10T00:00")
    assert (out / "validation-train.png").exists() and (out / "validation-test.png").exists()


def test_calibrate_writes_a_profile_that_validate_reads(tmp_path, capsys) -> None:
    profile = tmp_path / "fitted.toml"
    code = main([
        "calibrate", *DATA, "--train-since", "2025-09-29", "--train-until", "2025-10-08",
        "--test-until", "2025-10-20", "--warmup", "5d", "--trials", "3", "--seed", "4",
        "--profile", str(profile), "--out", str(tmp_path / "c"), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "objective on the training bars" in printed
    assert "TEST: BTC/USDT:USDT" in printed
    text = profile.read_text(encoding="utf-8")
    assert "[map]" in text and "[calibration]" in text
    code = main([
        "validate", *DATA, "--since", "2025-10-08", "--until", "2025-10-20", "--warmup", "5d",
        "--map-profile", str(profile), "--out", str(tmp_path / "v"),
    ])  # fmt: skip
    assert code == 0
    assert "none of the scored bars: an out-of-sample test" in capsys.readouterr().out
    code = main([
        "validate", *DATA, *WINDOW, "--map-profile", str(profile), "--out", str(tmp_path / "w"),
    ])  # fmt: skip
    assert code == 0
    assert "PART of the scored bars" in capsys.readouterr().out
    # an existing profile is not replaced without --force
    before = profile.read_text(encoding="utf-8")
    code = main([
        "calibrate", *DATA, "--train-until", "2025-10-08", "--warmup", "5d", "--trials", "1",
        "--profile", str(profile), "--out", str(tmp_path / "c"), "--no-progress",
    ])  # fmt: skip
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert profile.read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--since", "someday"], "not a date"),
        (["--since", "2025-10-10", "--until", "2025-10-01"], "not before"),
        (["--truth", "no-such-file.csv"], "no such file"),
        (["--map-profile", "no-such-profile.toml"], "does not exist"),
        (["--map", "bnad=0.05"], "did you mean 'band'"),
        (
            ["--since", "2025-10-05", "--until", "2025-10-10", "--split", "2025-10-12"],
            "not before --until",
        ),
        (["--timeframe", "7x"], "timeframe"),
        (["--symbol", "DOGE/USDT:USDT"], "DOGE"),
        (["--since", "2025-09-25", "--until", "2025-09-27", "--warmup", "40d"], "warm-up"),
        (["--warmup", "forever"], "warmup"),
    ],
)
def test_validate_bad_input_is_one_line(tmp_path, capsys, arguments, message) -> None:
    defaults = ["--since", "2025-10-01", "--until", "2025-10-20", "--warmup", "5d"]
    given = {item for item in arguments if item.startswith("--")}
    base = [item for pair in zip(defaults[::2], defaults[1::2], strict=True)
            if pair[0] not in given for item in pair]  # fmt: skip
    code = main(["validate", *DATA, *base, *arguments, "--out", str(tmp_path / "v")])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("error: ") and error.count("\n") == 1
    assert message in error
    assert not (tmp_path / "v").exists()


def test_validate_never_writes_over_a_users_folder(tmp_path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["validate", *DATA, *WINDOW, "--out", str(mine)]) == 2
    assert "not written by backtest" in capsys.readouterr().err
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--trials", "0"], "--trials 0"),
        (["--space", "half_life_hours=6"], "LOW:HIGH"),
        (["--space", "no_such=1:2"], "neither a MapParams field"),
        (["--fix", "no_such"], "not a searched dimension"),
        (["--objective", "sharpe.long=1"], "not known"),
        (["--train-since", "2025-10-09"], "not before --train-until"),
        (["--test-until", "2025-10-01"], "not after --train-until"),
        (["--workers", "0"], "--workers 0"),
    ],
)
def test_calibrate_bad_input_is_one_line(tmp_path, capsys, arguments, message) -> None:
    code = main([
        "calibrate", *DATA, "--train-until", "2025-10-08", "--warmup", "5d",
        "--out", str(tmp_path / "c"), "--no-progress", *arguments,
    ])  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("error: ") and error.count("\n") == 1
    assert message in error
