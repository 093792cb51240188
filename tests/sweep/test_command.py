"""``backtest sweep`` from the command line, with the real engine and report."""

import json
from pathlib import Path

import pandas as pd
import pytest

from backtest.cli import build_parser, main
from backtest.commands.sweep import build_spec, default_folder
from tests.sweep import fakes

SLICE = ["--since", "2025-10-08", "--until", "2025-10-11"]


def run_cli(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_sweep_writes_its_folder_and_resumes(capsys, store_dir, tmp_path, process_cluster):
    out = tmp_path / "out"
    common = ["sweep", "--strategy", "ClusterFade", "-g", "band=0.02,0.05", *SLICE]
    common += ["--data-dir", store_dir, "--out", str(out), "--json"]
    status, stdout, _ = run_cli(capsys, *common, "--workers", "1", "--reports-top", "1")
    assert status == 0
    summary = json.loads(stdout)
    assert (summary["runs"], summary["executed"], summary["skipped"]) == (2, 2, 0)
    assert summary["metric"] == "Sharpe"
    table = pd.read_csv(out / "results.csv")
    assert sorted(table["band"]) == [0.02, 0.05]
    assert table["rank"].tolist() == [1, 2]
    assert table["Sharpe"].iloc[0] >= table["Sharpe"].iloc[1]
    assert summary["best"]["band"] == table["band"].iloc[0]
    (report,) = summary["reports"]
    assert report.endswith(f"01-{table['key'].iloc[0]}")
    metrics = json.loads((out / "reports" / Path(report).name / "metrics.json").read_text())
    assert metrics["Sharpe"] == pytest.approx(table["Sharpe"].iloc[0])
    assert (out / "reports" / Path(report).name / "report.html").is_file()
    assert (out / "sweep.html").stat().st_size > 1_000_000, "plotly.js is embedded"

    # the same sweep again, this time on a cluster: nothing is redone
    status, stdout, _ = run_cli(capsys, *common, "--scheduler", process_cluster.scheduler_address)
    again = json.loads(stdout)
    assert (status, again["executed"], again["skipped"]) == (0, 0, 2)


def test_failing_combination_is_reported_and_the_rest_complete(
    capsys, store_dir, tmp_path, process_cluster
):
    status, stdout, _ = run_cli(
        capsys,
        "sweep",
        "--strategy",
        fakes.STRATEGY,
        "-g",
        "explode_after=0,40",
        "-g",
        "fast=3,6",
        *SLICE,
        "--data-dir",
        store_dir,
        "--scheduler",
        process_cluster.scheduler_address,
        "--out",
        str(tmp_path / "out"),
    )
    assert status == 0
    assert "4 runs: 2 complete, 2 failed" in stdout
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    failed = table[table["status"] == "failed"]
    assert set(failed["explode_after"]) == {40}
    for error in failed["error"]:
        assert "\n" not in error and "explode_after=40: deliberate failure" in error
    assert (table.loc[table["status"] == "complete", "explode_after"] == 0).all()
    assert "failed: explode_after=40, fast=3:" in stdout


def test_all_runs_failing_exits_non_zero(capsys, store_dir, tmp_path, process_cluster):
    status, _, stderr = run_cli(
        capsys,
        "sweep",
        "--strategy",
        fakes.STRATEGY,
        "-g",
        "explode_after=10,20",
        *SLICE,
        "--data-dir",
        store_dir,
        "--scheduler",
        process_cluster.scheduler_address,
        "--out",
        str(tmp_path / "out"),
        "-q",
    )
    assert status == 1
    assert stderr.strip().startswith("error: all 2 runs failed; first error: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to sweep"),
        (["-g", "bnad=0.02"], "did you mean band"),
        (["-g", "band"], "expected name=value1,value2"),
        (["-g", "band=0.02,0.03", "--heatmap", "leverage"], "--heatmap leverage"),
        (["-g", "band=0.02", "--walk-forward", "5d"], "--walk-forward '5d'"),
        (["-g", "band=0.02", "--workers", "0"], "--workers 0: give at least 1"),
        (["-g", "band=0.02", "--reports-top", "-1"], "--reports-top -1"),
        (
            [
                "-g",
                "band=0.02,0.03",
                "-g",
                "period=2025-10-01..2025-10-03",
                "--walk-forward",
                "1d:1d",
            ],
            "--walk-forward chooses",
        ),
    ],
)
def test_bad_input_ends_in_one_line(capsys, tmp_path, argv, message):
    status, _, stderr = run_cli(
        capsys, "sweep", "--strategy", "ClusterFade", "--out", str(tmp_path / "o"), *argv
    )
    assert status == 2
    assert stderr.count("\n") == 1 and stderr.startswith("error: ")
    assert message in stderr


def test_workers_and_scheduler_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "-g", "band=0.02", "--workers", "2", "--scheduler", "tcp://h:8786"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_unreachable_scheduler_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("backtest.sweep.execute.CONNECT_TIMEOUT", 1)
    status, _, stderr = run_cli(
        capsys,
        "sweep",
        "-g",
        "band=0.02,0.03",
        "--scheduler",
        "127.0.0.1:9",
        "--out",
        str(tmp_path / "o"),
    )
    assert status == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in stderr
    assert stderr.count("\n") == 1


def test_run_file_sweep_table_and_flags_make_the_grid(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(
        'strategy = "ClusterFade"\nsince = 2025-10-02\nleverage = 4\n'
        "[params]\nhold_bars = 24\n"
        "[sweep]\nband = [0.02, 0.03]\nleverage = [3, 5]\n[sweep.map]\n"
    )
    args = build_parser().parse_args(
        ["sweep", "--config", str(config), "-g", "leverage=2,10", "--cash", "500"]
    )
    spec = build_spec(args)
    axes = {axis.name: axis.values for axis in spec.axes}
    assert axes == {"band": (0.02, 0.03), "leverage": (2.0, 10.0)}, "-g overrides [sweep]"
    assert spec.base["params"] == {"hold_bars": 24}
    assert (spec.base["cash"], spec.base["since"]) == (500.0, "2025-10-02")
    assert "sweep" not in spec.base


def test_default_folder_is_the_same_for_the_same_sweep():
    def spec_for(*grid):
        return build_spec(build_parser().parse_args(["sweep", "--strategy", "ClusterFade", *grid]))

    first = default_folder(spec_for("-g", "band=0.02,0.03"))
    assert first == default_folder(spec_for("-g", "band=0.02, 0.03"))
    assert first != default_folder(spec_for("-g", "band=0.02,0.04"))
    assert first.parent.name == "sweeps" and first.name.startswith("ClusterFade-")


def test_the_commands_option_lists_agree_with_the_sweep_modules():
    """The command keeps its own copies (so `sweep --help` imports little): they must agree."""
    from backtest.commands import sweep as command
    from backtest.sweep import engines, search

    assert command.SEARCH_METHODS == (search.GRID, search.RANDOM, search.TPE)
    assert command.ENGINES == (engines.AUTO, engines.EVENT, engines.ARRAY)
    assert command.DEFAULT_BATCH == search.DEFAULT_BATCH
    assert set(engines.ENGINES) == set(command.ENGINES)
