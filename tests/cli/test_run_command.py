"""``backtest run`` end to end on the bundled sample, including every bad-input path."""

import json
import textwrap

import pytest

from backtest.cli import main
from backtest.results import Results

SHORT = ["--since", "2025-10-09", "--until", "2025-10-12"]


def run_cli(capsys, *args):
    code = main(["run", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_default_run_prints_summary_and_writes_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "-q")
    assert code == 0 and out == "" and err == ""
    folders = list((tmp_path / "reports").iterdir())
    assert len(folders) == 1
    folder = folders[0]
    assert "ClusterFade" in folder.name and "BTCUSDT" in folder.name
    for name in ("report.html", "metrics.json", "results.json", "equity.parquet"):
        assert (folder / name).is_file(), name
    results = Results.load(folder)
    assert results.complete and results.meta["strategy"] == "ClusterFade"
    assert results.equity.index[0].strftime("%Y-%m-%d") == "2025-10-01"

    code, out, _ = run_cli(capsys, *SHORT, "--report", str(tmp_path / "short"))
    assert code == 0
    for label in (
        "Return",
        "Max. drawdown",
        "Sharpe",
        "Trades",
        "Own liquidations",
        "Funding",
        "Fees",
        "Buy & hold",
    ):
        assert label in out, label
    assert f"report: {tmp_path / 'short' / 'report.html'}" in out


def test_json_summary_and_flags_reach_the_run(tmp_path, capsys):
    code, out, err = run_cli(
        capsys,
        *SHORT,
        "--strategy",
        "SmaCross",
        "-p",
        "fast=5",
        "-p",
        "slow=20",
        "--cash",
        "2500",
        "--leverage",
        "2",
        "--fees",
        "0.0001,0.0004",
        "--margin-mode",
        "isolated",
        "--json",
        "--report",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["strategy"] == "SmaCross"
    results = Results.load(tmp_path / "r")
    assert results.config["cash"] == 2500.0 and results.config["leverage"] == 2.0
    assert results.config["params"] == {"fast": 5, "slow": 20}
    assert results.config["taker_fee"] == 0.0004
    assert results.equity.value.iloc[0] == pytest.approx(2500.0, rel=0.01)
    assert results.equity.index[-1] < results.equity.index[0] + __import__("pandas").Timedelta("3D")


def test_config_file_with_flags_overriding(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(
        textwrap.dedent(
            """
            strategy = "SmaCross"
            since = "2025-10-09"
            until = "2025-10-11"
            cash = 5000
            [params]
            fast = 8
            slow = 21
            """
        )
    )
    code, _, err = run_cli(
        capsys,
        "--config",
        str(config),
        "--cash",
        "7000",
        "-p",
        "slow=34",
        "-q",
        "--report",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    results = Results.load(tmp_path / "r")
    assert results.config["cash"] == 7000.0
    assert results.config["params"] == {"fast": 8, "slow": 34}


FAILING_PLUGIN = textwrap.dedent(
    """
    import backtest


    class Explodes(backtest.Strategy):
        '''Raises on its tenth bar.'''

        uses_clusters = False

        def next(self):
            if len(self) == 10:
                raise ZeroDivisionError("my bug")
    """
)


def one_line_error(code, out, err):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--strategy", "ClusterFad"], "did you mean ClusterFade"),
        (["--strategy", "SmaCross", "-p", "fats=3"], "did you mean fast"),
        (["--strategy", "SmaCross", "-p", "fast=quick"], "expects int"),
        (["--symbol", "DOGE/USDT:USDT"], "python -m backtest download"),
        (["--since", "2019-01-01", "--until", "2019-02-01"], "2025-10-01"),
        (["--since", "not-a-date"], "not-a-date"),
        (["--leverage", "500"], "leverage"),
        (["--cash", "0"], "cash"),
        (["--cash", "-10"], "cash"),
        (["--fees", "cheap"], "--fees"),
        (["-p", "nonsense"], "expected name=value"),
        (["--config", "missing.toml"], "does not exist"),
    ],
)
def test_bad_input_ends_in_one_line(tmp_path, capsys, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args)
    line = one_line_error(code, out, err)
    assert expected in line
    assert not (tmp_path / "reports").exists()


def test_strategy_error_names_strategy_bar_and_cause_and_writes_nothing(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    plugin = tmp_path / "explodes.py"
    plugin.write_text(FAILING_PLUGIN)
    code, out, err = run_cli(capsys, "--strategy", f"{plugin}:Explodes", *SHORT)
    line = one_line_error(code, out, err)
    assert "Explodes" in line and "ZeroDivisionError" in line and "my bug" in line
    assert "2025-10-09" in line
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--map", "bnad=0.03"], "MapParams has no parameter 'bnad': did you mean band"),
        (["--map", "half_life_hours=abc"], "'half_life_hours' expects float"),
        (["--map", "bucket_width=-1"], "bucket_width"),
    ],
)
def test_bad_map_parameters_are_caught_before_the_run(
    tmp_path, capsys, monkeypatch, args, expected
):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(*run_cli(capsys, *args))
    assert expected in line
    assert "failed at bar" not in line


def test_map_parameters_from_flags_reach_the_run_typed(tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        *SHORT,
        "--strategy",
        "SmaCross",
        "--map",
        "half_life_hours=24",
        "-q",
        "--report",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    assert Results.load(tmp_path / "r").config["map_params"] == {"half_life_hours": 24.0}
