"""Bad input ends in one line and exit status 2, never a traceback (issue 12, point 6).

Run files that are not UTF-8 or nest too deeply, times given as NaN, infinity, epoch seconds
or past 2262, stores with timestamps past 2262 or unreadable files, 100,000-character symbols,
``--map`` values that overflow and ``--map cascade`` -- across ``run``, ``heatmap``, ``sweep``,
``price`` and ``download --list``.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest

from backtest.cli import main
from backtest.folders import MARKER_FILE
from backtest.market import store
from backtest.results import Results

BTC = "BTC/USDT:USDT"
SHORT = ["--since", "2025-10-09", "--until", "2025-10-10"]
LONG_SYMBOL = "BTC/" + "A" * 100_000 + ":USDT"
HUGE_INTEGER = "9" * 400


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(code, err, *fragments):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert len(err) < 1000, err[:200]
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """Work in an empty folder: nothing may appear there after a refused command."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def assert_nothing_written(folder, *allowed):
    assert sorted(path.name for path in folder.iterdir()) == sorted(allowed)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'since = "\xff\xfe"\n', "is not UTF-8 text (byte 0xff at offset 9)"),
        (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nests arrays or tables too deeply"),
        (b"x = " + b"{a=" * 3000 + b"1" + b"}" * 3000 + b"\n", "nests arrays or tables too deeply"),
    ],
)
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_unreadable_run_files(outside, capsys, command, content, fragment):
    (outside / "run.toml").write_bytes(content)
    code, _, err = run_cli(capsys, command, "--config", "run.toml")
    assert_one_line(code, err, "config file run.toml", fragment)
    assert_nothing_written(outside, "run.toml")


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("since = nan", "since nan is not a date"),
        ("since = inf", "since inf is not a date"),
        ("since = -inf", "since -inf is not a date"),
        ("since = 1760000000", "since 1760000000 looks like epoch seconds"),
        ("until = 99999999999999999", "lies outside 1970-01-01 .. 2262-04-11"),
        ("until = 2300-01-01", "until 2300-01-01T00:00:00 lies outside 1970-01-01 .. 2262-04-11"),
    ],
)
def test_impossible_times_in_run_files(outside, capsys, line, fragment):
    (outside / "run.toml").write_text(line + "\n")
    code, _, err = run_cli(capsys, "run", "--config", "run.toml")
    assert_one_line(code, err, fragment)
    assert_nothing_written(outside, "run.toml")


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--since", "nan"], "is not a date"),
        (["--since", "1760000000"], "is not a date"),
        (["--until", "2300-01-01"], "lies outside 1970-01-01 .. 2262-04-11"),
        (["--since", "0001-01-01"], "lies outside 1970-01-01 .. 2262-04-11"),
    ],
)
def test_impossible_times_as_flags(outside, capsys, flags, fragment):
    code, _, err = run_cli(capsys, "run", *flags)
    assert_one_line(code, err, fragment)
    assert_nothing_written(outside)


def write_candles(root, frame):
    path = store.series_path(root, "binanceusdm", BTC, "ohlcv", "5m")
    store.write_series(
        path, frame, series="ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="5m"
    )
    return path


@pytest.fixture
def store_after_2262(tmp_path):
    """A store whose candles were written in microseconds (every time past 2262)."""
    sample = store.read_series(
        store.SAMPLE_DIR / "binanceusdm" / "BTC_USDT_USDT-5m.parquet", "ohlcv"
    )
    frame = sample.iloc[:300].copy()
    frame["timestamp_ms"] *= 1000
    root = tmp_path / "store"
    write_candles(root, frame)
    return root


def test_store_with_times_after_2262(store_after_2262, outside, capsys):
    code, _, err = run_cli(capsys, "run", "--data-dir", str(store_after_2262))
    assert_one_line(code, err, "timestamp after 2262")
    code, _, err = run_cli(capsys, "heatmap", "--data-dir", str(store_after_2262))
    assert_one_line(code, err, "timestamp after 2262")
    code, out, err = run_cli(capsys, "download", "--list", "--data-dir", str(store_after_2262))
    assert code == 0 and "Traceback" not in err
    assert "candles: 300 rows" in out
    assert_nothing_written(outside)


def test_unreadable_store_file_is_not_called_corrupt(tmp_path, outside, capsys, monkeypatch):
    sample = store.read_series(
        store.SAMPLE_DIR / "binanceusdm" / "BTC_USDT_USDT-5m.parquet", "ohlcv"
    )
    path = write_candles(tmp_path / "store", sample.iloc[:400])
    before = path.read_bytes()

    def refuse(name, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(name))

    monkeypatch.setattr(store, "open", refuse, raising=False)
    for command in ("run", "heatmap"):
        code, _, err = run_cli(capsys, command, "--data-dir", str(tmp_path / "store"))
        assert_one_line(code, err, f"cannot read {path}: Permission denied", "permissions")
        assert "corrupt" not in err and "delete" not in err
    assert path.read_bytes() == before
    assert_nothing_written(outside)


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--symbol", LONG_SYMBOL],
        ["heatmap", "--symbol", LONG_SYMBOL],
        ["sweep", "--symbol", LONG_SYMBOL, "-g", "band=0.02,0.03"],
        ["price", "--symbol", LONG_SYMBOL],
    ],
)
def test_huge_symbols(outside, capsys, command):
    code, _, err = run_cli(capsys, *command)
    assert code in (1, 2) and "Traceback" not in err
    assert "100,00" in err and "characters long" in err
    assert len(err) < 2000  # the symbol is not echoed whole
    if command[0] != "sweep":
        assert_one_line(code, err)
        assert_nothing_written(outside)


@pytest.mark.parametrize(
    ("assignment", "fragment"),
    [
        ("band=1e400", "must be finite"),
        (f"half_life_bars={HUGE_INTEGER}", "too large"),
        ("half_life_hours=-1e400", "finite"),
    ],
)
def test_map_values_that_overflow_in_heatmap(outside, capsys, assignment, fragment):
    code, _, err = run_cli(capsys, "heatmap", "--map", assignment)
    assert_one_line(code, err, fragment)
    assert_nothing_written(outside)


@pytest.mark.parametrize(
    ("assignment", "fragment"),
    [
        ("band=1e400", "finite"),
        (f"half_life_bars={HUGE_INTEGER}", "out of range"),
        (f"band={HUGE_INTEGER}", "finite"),
    ],
)
def test_map_values_that_overflow_in_run(outside, capsys, assignment, fragment):
    code, _, err = run_cli(capsys, "run", "--map", assignment)
    assert_one_line(code, err, fragment)
    assert_nothing_written(outside)


def test_map_cascade_from_the_command_line(outside, capsys):
    code, _, err = run_cli(capsys, "run", "--map", "cascade")
    assert_one_line(code, err, "--map cascade=true")
    code, _, err = run_cli(capsys, "run", "--map", "cascade=maybe")
    assert_one_line(code, err, "takes true or false")
    code, _, err = run_cli(capsys, "heatmap", "--map", "cascade=maybe")
    assert_one_line(code, err, "takes true or false")

    code, _, err = run_cli(capsys, "run", "-q", *SHORT, "--map", "cascade=true", "--report", "on")
    assert code == 0, err
    results = Results.load(outside / "on")
    assert results.config["map_params"]["cascade"] == {}
    assert results.clusters["cascade_risk"].notna().any()  # the line is computed

    code, _, err = run_cli(capsys, "run", "-q", *SHORT, "--map", "cascade=false", "--report", "off")
    assert code == 0, err
    assert "cascade" not in Results.load(outside / "off").config["map_params"]


def test_heatmap_takes_map_cascade_true(outside, capsys):
    code, out, err = run_cli(
        capsys, "heatmap", "--at", "2025-10-10T20:00", "--map", "cascade=true", "--out", "pics"
    )
    assert code == 0, err
    assert "cascade:" in out
    pictures = [path for path in (outside / "pics").iterdir() if path.name != MARKER_FILE]
    assert len(pictures) == 2


def test_results_of_the_sample_are_finite(outside, capsys):
    """The guard the other tests rely on: a clean run still succeeds with finite numbers."""
    code, _, err = run_cli(capsys, "run", "-q", *SHORT, "--report", "clean")
    assert code == 0, err
    value = Results.load(outside / "clean").equity["value"]
    assert len(value) == 288 and np.isfinite(value.to_numpy()).all()


def test_sweep_refuses_a_missing_data_folder_before_any_run(outside, capsys):
    code, _, err = run_cli(
        capsys, "sweep", "--data-dir", str(outside / "missing"), "-g", "band=0.02,0.03"
    )
    assert_one_line(code, err, "does not exist")
    assert_nothing_written(outside)


@pytest.mark.parametrize("command", ["run", "heatmap", "validate"])
def test_a_too_deeply_nested_map_profile(outside, capsys, command):
    (outside / "profile.toml").write_text("[map]\nband = " + "[" * 900 + "]" * 900 + "\n")
    code, _, err = run_cli(capsys, command, "--map-profile", "profile.toml")
    assert_one_line(code, err, "map profile profile.toml nests arrays or tables too deeply")
    assert_nothing_written(outside, "profile.toml")
