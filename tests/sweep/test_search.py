"""Optuna search in sweeps: seeds, samplers, constraints, workers, resume and bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from backtest.cli import main
from backtest.errors import ConfigError
from backtest.plugins import resolve_strategy
from backtest.sweep.constraints import Constraints
from backtest.sweep.driver import SweepSpec, run_sweep
from backtest.sweep.execute import open_client
from backtest.sweep.ranking import rank_table
from backtest.sweep.search import (
    SearchSpec,
    Told,
    ask_batch,
    batch_seed,
    build_search_axes,
)
from backtest.sweep.store import SweepStore
from backtest.sweep.walkforward import parse_walk_forward
from tests.sweep import fakes

BACKEND = fakes.FAKE_BACKEND
#: Columns that say where and how fast a run ran, not what it gave.
PLACE = ["seconds", "worker"]


def search_axes(grid):
    return tuple(
        build_search_axes(
            grid,
            resolve_strategy(fakes.STRATEGY),
            run_defaults=fakes.RUN_DEFAULTS,
            map_defaults={},
        )
    )


def search_spec(base, grid=None, *, method="tpe", trials=14, seed=0, batch=4, **options):
    grid = grid or {"fast": ["2:12"], "slow": ["15:40"], "fraction": ["0.25", "0.5", "1"]}
    search = SearchSpec(
        method=method, trials=trials, seed=seed, axes=search_axes(grid), batch_size=batch
    )
    return SweepSpec(base=base, axes=(), rank_by="sharpe", search=search, **options)


def run_search(spec, client, folder):
    with SweepStore(folder) as store:
        return run_sweep(spec, client, store, backend=BACKEND)


def results(outcome):
    return outcome.table.drop(columns=PLACE)


# --------------------------------------------------------------------------------------------
# the search space
# --------------------------------------------------------------------------------------------
def test_ranges_and_lists_become_optuna_distributions():
    axes = {
        axis.name: axis
        for axis in search_axes(
            {
                "fast": ["5:50"],
                "fraction": ["0.1:0.9"],
                "slow": ["log:10:200"],
                "leverage": ["log:1e-1:5"],
                "explode_after": ["0", "7"],
            }
        )
    }
    assert (axes["fast"].kind, axes["fast"].low, axes["fast"].high) == ("int", 5, 50)
    assert (axes["fraction"].kind, axes["fraction"].low) == ("float", 0.1)
    assert axes["slow"].kind == "int" and axes["slow"].log
    assert axes["leverage"].kind == "float" and axes["leverage"].low == pytest.approx(0.1)
    assert axes["explode_after"].kind == "choice"
    assert axes["explode_after"].axis.values == (0, 7)
    assert axes["explode_after"].value(1) == 7, "a choice is sampled by its position"


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"fast": ["9:3"]}, "the range needs LOW < HIGH"),
        ({"fast": ["4:4"]}, "the range needs LOW < HIGH"),
        ({"fast": ["0.5:3"]}, "fast"),
        ({"fraction": ["log:0:1"]}, "a log range must stay above 0"),
        ({"nonsense": ["1:2"]}, "neither a run setting nor"),
        ({"since": ["1:2"]}, "since=1:2: dates cannot be a range"),
        ({"until": ["log:1:9"]}, "dates cannot be a range"),
    ],
)
def test_bad_ranges_are_refused(grid, message):
    with pytest.raises(ConfigError, match=message):
        search_axes(grid)


def test_batch_seeds_differ_by_batch_window_and_seed():
    seeds = {batch_seed(0, 0), batch_seed(0, 1), batch_seed(1, 0), batch_seed(0, 0, 1)}
    assert len(seeds) == 4
    assert batch_seed(5, 3) == batch_seed(5, 3)


# --------------------------------------------------------------------------------------------
# samplers
# --------------------------------------------------------------------------------------------
def history_of(spec, values, constraints=None):
    """Told trials on a grid of ``fast`` with the given objective function."""
    told = []
    for number, fast in enumerate(range(2, 50)):
        told.append(
            Told(
                number=number,
                sampled={"fast": fast},
                value=float(values(fast)),
                constraints=constraints(fast) if constraints else {},
            )
        )
    return told


def fast_spec(method):
    return SearchSpec(method=method, trials=20, axes=search_axes({"fast": ["2:49"]}))


def test_tpe_learns_from_the_history_and_random_does_not():
    history = history_of(fast_spec("tpe"), lambda fast: -fast)  # small fast is best
    tpe = [trial["fast"] for trial in ask_batch(fast_spec("tpe"), history, 20, 7)]
    uniform = [trial["fast"] for trial in ask_batch(fast_spec("random"), history, 20, 7)]
    assert np.mean(tpe) < 15 < np.mean(uniform)
    assert tpe == [trial["fast"] for trial in ask_batch(fast_spec("tpe"), history, 20, 7)]
    assert tpe != [trial["fast"] for trial in ask_batch(fast_spec("tpe"), history, 20, 8)]


def test_tpe_avoids_trials_that_break_a_constraint():
    spec = fast_spec("tpe")
    rising = history_of(spec, lambda fast: fast)  # large fast is best ...
    free = [trial["fast"] for trial in ask_batch(spec, rising, 20, 3)]
    limited = history_of(spec, lambda fast: fast, lambda fast: {"min_trades": fast - 20.0})
    kept = [trial["fast"] for trial in ask_batch(spec, limited, 20, 3)]  # ... but > 20 is out
    assert np.mean(free) > 35
    assert np.mean(kept) < 25


def test_minimised_objective_turns_tpe_around():
    spec = fast_spec("tpe")
    history = history_of(spec, lambda fast: fast)
    asked = [trial["fast"] for trial in ask_batch(spec, history, 20, 3, minimise=True)]
    assert np.mean(asked) < 15


# --------------------------------------------------------------------------------------------
# whole searches
# --------------------------------------------------------------------------------------------
def test_search_is_reproducible_with_its_seed(base_settings, thread_client, tmp_path):
    first = run_search(search_spec(base_settings), thread_client, tmp_path / "a")
    again = run_search(search_spec(base_settings), thread_client, tmp_path / "b")
    other = run_search(search_spec(base_settings, seed=1), thread_client, tmp_path / "c")
    table = first.table
    assert len(table) == 14 and (table["status"] == "complete").all()
    assert sorted(table["trial"]) == list(range(14))
    assert table["fast"].between(2, 12).all() and table["slow"].between(15, 40).all()
    assert set(table["fraction"]) <= {0.25, 0.5, 1.0}
    pd.testing.assert_frame_equal(results(first), results(again))
    assert not results(first).equals(results(other))
    manifest = json.loads((tmp_path / "a" / "sweep.json").read_text())
    assert manifest["search"]["seed"] == 0 and manifest["search"]["method"] == "tpe"
    assert manifest["search"]["objective"] == "sharpe"
    assert manifest["search"]["space"]["fast"] == {
        "kind": "int",
        "low": 2,
        "high": 12,
        "log": False,
    }
    from backtest.sweep.page import render_page

    page = render_page(first)
    assert "tpe, 14 trials, seed 0, batches of 4" in page and "fast = int 2..12" in page


def test_each_trial_is_recorded_with_its_own_metrics(base_settings, thread_client, tmp_path):
    outcome = run_search(search_spec(base_settings, trials=6), thread_client, tmp_path / "out")
    with SweepStore(tmp_path / "out") as store:
        for row in outcome.table.to_dict("records"):
            record = store.records[row["key"]]
            assert record.settings["params"]["fast"] == row["fast"]
            assert record.metrics["Sharpe Ratio"] == pytest.approx(row["Sharpe Ratio"])
    sharpe = outcome.table["Sharpe Ratio"].to_numpy()
    assert np.all(np.diff(sharpe) <= 0)
    assert outcome.table["rank"].tolist() == list(range(1, 7))


def test_random_and_tpe_ask_different_trials_after_the_startup(
    base_settings, thread_client, tmp_path
):
    grid = {"fast": ["2:12"], "slow": ["15:40"]}
    tpe = run_search(
        search_spec(base_settings, grid, trials=24, batch=8), thread_client, tmp_path / "tpe"
    )
    uniform = run_search(
        search_spec(base_settings, grid, method="random", trials=24, batch=8),
        thread_client,
        tmp_path / "random",
    )
    by_trial = {
        name: outcome.table.sort_values("trial").set_index("trial")[["fast", "slow"]]
        for name, outcome in (("tpe", tpe), ("random", uniform))
    }
    # TPE starts with 10 random trials (Optuna's n_startup_trials), then models the results
    assert not by_trial["tpe"].loc[16:].equals(by_trial["random"].loc[16:])


def test_constraints_flag_runs_and_never_rank_them_first(base_settings, thread_client, tmp_path):
    constraints = Constraints(min_trades=20)
    spec = search_spec(base_settings, trials=12, constraints=constraints)
    table = run_search(spec, thread_client, tmp_path / "out").table
    flagged = table[~table["feasible"].astype(bool)]
    kept = table[table["feasible"].astype(bool)]
    assert len(flagged) and len(kept), "the range gives both kinds of runs"
    assert (flagged["# Trades"] < 20).all() and (kept["# Trades"] >= 20).all()
    assert flagged["rank"].isna().all() and kept["rank"].notna().all()
    assert flagged["violations"].str.startswith("trades ").all()
    assert table.index[table["feasible"].astype(bool)].max() < flagged.index.min()
    best_overall = table["Sharpe Ratio"].max()
    assert flagged["Sharpe Ratio"].max() == best_overall, "the best run breaks the constraint"
    assert table["Sharpe Ratio"].iloc[0] < best_overall, "... and is not ranked first"


def test_rank_table_orders_infeasible_after_feasible():
    rows = [
        {"fast": 1, "status": "complete", "Sharpe": 3.0, "feasible": False},
        {"fast": 2, "status": "complete", "Sharpe": 1.0, "feasible": True},
        {"fast": 3, "status": "failed", "feasible": None},
        {"fast": 4, "status": "complete", "Sharpe": 2.0, "feasible": True},
    ]
    table = rank_table(rows, "Sharpe", axis_names=["fast"])
    assert table["fast"].tolist() == [4, 2, 1, 3]
    assert table["rank"].tolist()[:2] == [1, 2] and table["rank"].isna().tolist()[2:] == [True] * 2


def test_grid_sweeps_take_constraints_too(base_settings, thread_client, tmp_path):
    from backtest.sweep.grid import build_axes

    axes = build_axes(
        {"fast": ["2", "8"], "fraction": ["0.1", "1"]},
        resolve_strategy(fakes.STRATEGY),
        run_defaults=fakes.RUN_DEFAULTS,
        map_defaults={},
    )
    spec = SweepSpec(
        base=base_settings, axes=tuple(axes), constraints=Constraints(max_drawdown=3.0)
    )
    table = run_search(spec, thread_client, tmp_path / "out").table
    deep = table["Max. Drawdown [%]"].abs() > 3.0
    assert deep.any() and not deep.all()
    assert (table["feasible"] == ~deep).all()
    assert table.loc[deep, "rank"].isna().all() and table.loc[~deep, "rank"].notna().all()


def test_same_table_on_one_worker_two_workers_and_a_cluster(
    base_settings, process_cluster, tmp_path
):
    spec = search_spec(base_settings, constraints=Constraints(min_trades=3))
    tables = {}
    with open_client(workers=1, processes=False) as client:
        tables["1 worker"] = results(run_search(spec, client, tmp_path / "one"))
    with open_client(workers=2) as client:
        tables["2 workers"] = results(run_search(spec, client, tmp_path / "two"))
    with open_client(scheduler=process_cluster.scheduler_address) as client:
        tables["cluster"] = results(run_search(spec, client, tmp_path / "cluster"))
    assert len(tables["1 worker"]) == 14
    for name in ("2 workers", "cluster"):
        pd.testing.assert_frame_equal(tables[name], tables["1 worker"], obj=name)


class StopSearchError(Exception):
    """Stands for a Ctrl-C in the middle of a batch."""


def test_an_interrupted_search_resumes_to_the_uninterrupted_result(
    base_settings, thread_client, tmp_path, monkeypatch
):
    from backtest.sweep.search_driver import SearchDriver

    spec = search_spec(base_settings, trials=14, batch=4)
    whole = run_search(spec, thread_client, tmp_path / "whole")

    original = SearchDriver._on_search_record
    seen = []

    def stop_in_the_third_batch(self, record):
        seen.append(record.key)
        if len(seen) == 10:
            raise StopSearchError
        return original(self, record)

    monkeypatch.setattr(SearchDriver, "_on_search_record", stop_in_the_third_batch)
    with pytest.raises(StopSearchError):
        run_search(spec, thread_client, tmp_path / "resumed")
    monkeypatch.setattr(SearchDriver, "_on_search_record", original)
    with SweepStore(tmp_path / "resumed") as store:
        assert len(store.records) == 9
    resumed = run_search(spec, thread_client, tmp_path / "resumed")
    assert resumed.skipped == 9 and resumed.executed == len(set(whole.table["key"])) - 9
    pd.testing.assert_frame_equal(results(resumed), results(whole))


def test_walk_forward_searches_each_training_window(base_settings, thread_client, tmp_path):
    spec = search_spec(
        base_settings,
        trials=6,
        batch=3,
        walk_forward=parse_walk_forward("1d:1d"),
        constraints=Constraints(min_trades=1),
    )
    outcome = run_search(spec, thread_client, tmp_path / "out")
    windows = outcome.windows
    assert len(windows) == 2 and (windows["test_status"] == "complete").all()
    table = outcome.table
    for window in windows.to_dict("records"):
        train = table[(table["phase"] == "train") & (table["window"] == window["window"])]
        assert len(train) == 6 and sorted(train["trial"]) == list(range(6))
        best = train[train["rank"].notna()].sort_values("Sharpe Ratio").iloc[-1]
        assert (window["fast"], window["slow"]) == (best["fast"], best["slow"])
    first, second = (
        table[(table["phase"] == "train") & (table["window"] == index)].sort_values("trial")
        for index in (0, 1)
    )
    assert first["fast"].tolist() != second["fast"].tolist(), "each window has its own seed"
    assert len(outcome.oos_equity) > 0


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--search", "tpe", "-g", "band=0.01:0.05", "--objective", "Nonsense"], "--objective"),
        (["--search", "tpe", "-g", "band=0.05:0.01"], "LOW < HIGH"),
        (["--search", "random", "-g", "band=0.01:0.05", "--trials", "0"], "--trials 0"),
        (["-g", "band=0.01:0.05"], "is a range, which a grid cannot run"),
        (["-g", "band=0.01,0.05", "--trials", "5"], "--trials belongs to a search"),
        (["--search", "tpe", "-g", "band=log:0:1"], "log range must stay above 0"),
        (["--search", "tpe", "-g", "band=0.01:0.05", "--max-drawdown", "0"], "--max-drawdown"),
        (["--search", "tpe", "-g", "band=0.01:0.05", "--heatmap", "band"], "--heatmap"),
        (["--search", "tpe"], "nothing to search"),
        (["--search", "random", "-g", "since=1:2"], "dates cannot be a range"),
        (
            [
                "-g",
                "band=0.01,0.05",
                "--engine",
                "array",
                "--symbol",
                "BTC/USDT:USDT,ETH/USDT:USDT",
            ],
            "--engine array",
        ),
    ],
)
def test_bad_search_options_end_in_one_line(capsys, store_dir, tmp_path, options, message):
    out = tmp_path / "out"
    argv = ["sweep", "--strategy", "ClusterFade", *options, "--data-dir", store_dir]
    status = main([*argv, "--out", str(out)])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert len(error.splitlines()) == 1 and error.startswith("error: ") and message in error
    assert not out.exists(), "nothing was written"


def test_minimised_metrics_rank_smaller_first():
    from backtest.commands.sweep import _ranking
    from backtest.sweep.ranking import minimised

    assert minimised("Volatility (Ann.) [%]") and minimised("Fees [USDT]")
    assert not minimised("Sharpe") and not minimised("Max. Drawdown [%]")

    class Args:
        objective = "volatility"
        rank_by = None
        ascending = False

    assert _ranking(Args, True) == ("volatility", True)
    Args.objective = "sharpe"
    assert _ranking(Args, True) == ("sharpe", False)


def test_the_command_runs_a_search(capsys, store_dir, tmp_path):
    out = tmp_path / "out"
    argv = ["sweep", "--strategy", fakes.STRATEGY, "--search", "random", "--trials", "4"]
    argv += ["--search-batch", "2", "--seed", "3", "-a", "fast=2:8", "-g", "slow=20,30"]
    argv += ["--min-trades", "1", "--since", "2025-10-09", "--until", "2025-10-10"]
    argv += ["--data-dir", store_dir, "--workers", "1", "--out", str(out), "--json"]
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    summary = json.loads(captured.out)
    assert (summary["runs"], summary["engine"]) == (4, "event")
    table = pd.read_csv(out / "results.csv")
    assert sorted(table["trial"]) == [0, 1, 2, 3] and table["fast"].between(2, 8).all()
    assert set(table["slow"]) <= {20, 30} and "feasible" in table
    manifest = json.loads((out / "sweep.json").read_text())
    assert (manifest["search"]["seed"], manifest["search"]["batch_size"]) == (3, 2)
    assert manifest["constraints"] == {"min_trades": 1, "max_drawdown": None}
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["executed"], again["skipped"]) == (0, len(set(table["key"])))


def test_the_console_table_shows_broken_constraints_without_a_rank(capsys, store_dir, tmp_path):
    argv = ["sweep", "--strategy", fakes.STRATEGY, "--search", "random", "--trials", "4"]
    argv += ["--search-batch", "2", "--seed", "3", "-a", "fast=2:8", "-g", "slow=20,30"]
    argv += ["--since", "2025-10-09", "--until", "2025-10-10", "--data-dir", store_dir]
    argv += ["--workers", "1", "--out", str(tmp_path / "out")]
    table = None
    for minimum in (0, 10_000):
        assert main([*argv, "--min-trades", str(minimum)]) == 0
        text = capsys.readouterr().out
        rows = [line.split() for line in text.splitlines() if "complete" in line.split()]
        assert len(rows) == 4, text
        assert "None" not in text and "<NA>" not in text
        table = pd.read_csv(tmp_path / "out" / "results.csv")
        if minimum == 0:
            assert [row[0] for row in rows] == ["1", "2", "3", "4"]
        else:  # nothing keeps 10,000 trades: no rank, the reason shown
            assert all(row[0] == "-" and "10000" in row[-1] for row in rows), text
        (tmp_path / "out").rename(tmp_path / f"done-{minimum}")
    assert table is not None and not table["feasible"].any()
