"""Sweeps and walk-forward use the array path when the strategy has one, else the event engine."""

import json

import pandas as pd
import pytest

from backtest.cli import main
from backtest.errors import ConfigError
from backtest.plugins import resolve_strategy
from backtest.sweep import engines, worker
from backtest.sweep.backends import DEFAULT_BACKEND, backend_for
from backtest.sweep.driver import SweepSpec, run_sweep
from backtest.sweep.grid import build_axes
from backtest.sweep.store import SweepStore
from backtest.sweep.walkforward import parse_walk_forward
from tests.sweep import fakes

TOY = resolve_strategy(fakes.STRATEGY)


class FakeArrays:
    """Stands for backtest.arrays: says which classes have an array form, records the runs."""

    def __init__(self, array_classes):
        self.array_classes = set(array_classes)
        self.calls = []

    def has_array_form(self, strategy_class):
        return strategy_class.__name__ in self.array_classes

    def run_arrays(self, config, *, data=None, strategy_class=None, tiers=None, lines_cache=None):
        from backtest.engine import run

        self.calls.append({"config": config, "lines_cache": lines_cache, "bars": len(data)})
        results = run(config, data=data, strategy_class=strategy_class)
        results.meta["engine"] = "array"
        return results


@pytest.fixture
def fake_arrays(monkeypatch):
    def install(*array_classes):
        fake = FakeArrays(array_classes)
        monkeypatch.setattr(
            engines, "array_functions", lambda: (fake.has_array_form, fake.run_arrays)
        )
        return fake

    return install


def test_choose_engine_auto_event_and_array(fake_arrays):
    fake_arrays("ToyCross")
    auto = engines.choose_engine("auto", TOY)
    assert auto.engine == "array" and "ToyCross has an array form" in auto.reason
    assert engines.choose_engine("array", TOY).engine == "array"
    assert engines.choose_engine("event", TOY).engine == "event"
    portfolio = engines.choose_engine("auto", TOY, portfolio=True)
    assert portfolio.engine == "event" and "portfolio" in portfolio.reason
    with pytest.raises(ConfigError, match="--engine array: portfolio"):
        engines.choose_engine("array", TOY, portfolio=True)
    fake_arrays()
    plain = engines.choose_engine("auto", TOY)
    assert plain.engine == "event" and "ToyCross has no array form" in plain.reason
    with pytest.raises(ConfigError, match="--engine array: ToyCross has no array form"):
        engines.choose_engine("array", TOY)
    with pytest.raises(ConfigError, match="--engine 'fast'"):
        engines.choose_engine("fast", TOY)


def test_without_the_array_package_sweeps_use_the_event_engine(monkeypatch):
    monkeypatch.setattr(engines, "array_functions", lambda: None)
    choice = engines.choose_engine("auto", TOY)
    assert choice.engine == "event" and "not installed" in choice.reason


def test_a_symbol_axis_mixing_one_symbol_and_portfolios_says_both_engines(fake_arrays):
    fake_arrays("ToyCross")
    values = ["BTC/USDT:USDT", "BTC/USDT:USDT,ETH/USDT:USDT"]
    base = {"symbol": "BTC/USDT:USDT,ETH/USDT:USDT"}
    assert engines.sweep_portfolio(base, values) and engines.sweep_single(base, values)
    assert not engines.sweep_single(base)  # the axis overrides the base symbol
    mixed = engines.choose_engine("auto", TOY, portfolio=True, single=True)
    assert mixed.engine == "array and event" and "event for the portfolio runs" in mixed.reason
    only = engines.choose_engine("auto", TOY, portfolio=True, single=False)
    assert only.engine == "event"
    with pytest.raises(ConfigError, match="--engine array: portfolio"):
        engines.choose_engine("array", TOY, portfolio=True, single=True)


def test_portfolio_detection():
    assert engines.sweep_portfolio({"symbol": "BTC/USDT:USDT,ETH/USDT:USDT"})
    assert engines.sweep_portfolio({"symbol": "BTC/USDT:USDT"}, ["BTC/USDT:USDT", ["A", "B"]])
    assert not engines.sweep_portfolio({"symbol": "BTC/USDT:USDT"}, ["ETH/USDT:USDT"])


def toy_spec(base, **options):
    axes = build_axes({"fast": ["3", "6"]}, TOY)
    return SweepSpec(base=base, axes=tuple(axes), rank_by="Return", **options)


def sweep(spec, client, folder, backend=DEFAULT_BACKEND):
    with SweepStore(folder) as store:
        return run_sweep(spec, client, store, backend=backend)


def test_workers_call_run_arrays_with_one_lines_cache(
    fake_arrays, base_settings, thread_client, tmp_path
):
    fake = fake_arrays("ToyCross")
    table = sweep(toy_spec(base_settings), thread_client, tmp_path / "out").table
    assert (table["status"] == "complete").all() and (table["engine"] == "array").all()
    assert len(fake.calls) == 2
    caches = {id(call["lines_cache"]) for call in fake.calls}
    assert caches == {id(worker.lines_cache())}, "one cache per worker process"
    assert all(call["bars"] >= 864 for call in fake.calls), "the map's warm-up bars included"


def test_strategies_without_array_form_run_on_the_event_engine(
    fake_arrays, base_settings, thread_client, tmp_path
):
    fake = fake_arrays()
    table = sweep(toy_spec(base_settings), thread_client, tmp_path / "out").table
    assert (table["status"] == "complete").all() and (table["engine"] == "event").all()
    assert fake.calls == []


def test_engine_event_overrides_an_array_form(fake_arrays, base_settings, thread_client, tmp_path):
    fake = fake_arrays("ToyCross")
    outcome = sweep(toy_spec(base_settings), thread_client, tmp_path / "out", backend_for("event"))
    assert (outcome.table["engine"] == "event").all() and fake.calls == []


def test_walk_forward_runs_use_the_array_path(fake_arrays, base_settings, thread_client, tmp_path):
    fake = fake_arrays("ToyCross")
    spec = toy_spec(base_settings, walk_forward=parse_walk_forward("1d:1d"))
    outcome = sweep(spec, thread_client, tmp_path / "out")
    assert (outcome.table["engine"] == "array").all()
    assert len(outcome.table) == 2 * 2 + 2
    assert len(fake.calls) == outcome.table["key"].nunique(), "a test span may repeat a train"
    assert (outcome.windows["test_status"] == "complete").all()


def test_the_command_says_once_which_engine_it_uses(capsys, store_dir, tmp_path):
    out = tmp_path / "out"
    status = main(
        [
            "sweep",
            "--strategy",
            fakes.STRATEGY,
            "-g",
            "fast=3,6",
            "--since",
            "2025-10-09",
            "--until",
            "2025-10-10",
            "--data-dir",
            store_dir,
            "--workers",
            "1",
            "--out",
            str(out),
            "--json",
        ]
    )
    error = capsys.readouterr().err
    assert status == 0
    lines = [line for line in error.splitlines() if line.startswith("engine:")]
    assert lines == ["engine: event (auto: ToyCross has no array form (no decide classmethod))"]
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["engine"]["engine"] == "event"
    assert pd.read_csv(out / "results.csv")["engine"].eq("event").all()


# --------------------------------------------------------------------------------------------
# the real array path against the event engine
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("strategy", "grid"),
    [
        ("ClusterFade", {"band": ["0.02", "0.05"], "leverage": ["3", "5"]}),
        ("SmaCross", {"fast": ["5", "10"], "slow": ["20", "40"]}),
    ],
)
def test_array_sweep_table_equals_event_sweep_table(
    strategy, grid, base_settings, thread_client, tmp_path
):
    strategy_class = resolve_strategy(strategy)
    assert engines.choose_engine("auto", strategy_class).engine == "array"
    spec = SweepSpec(
        base={**base_settings, "strategy": strategy},
        axes=tuple(build_axes(grid, strategy_class)),
        rank_by="Return",
    )
    tables = {
        engine: sweep(spec, thread_client, tmp_path / engine, backend_for(engine)).table
        for engine in ("event", "array")
    }
    for engine, table in tables.items():
        assert (table["status"] == "complete").all(), table["error"].tolist()
        assert (table["engine"] == engine).all()
    assert tables["event"]["# Trades"].sum() > 0
    event, array = (
        table.drop(columns=["engine", "seconds", "worker"]) for table in tables.values()
    )
    pd.testing.assert_frame_equal(array, event, rtol=1e-9, check_dtype=False)


def test_a_sweep_run_equals_the_run_loaded_by_the_engine(store_dir):
    """The worker's slice of its cached history (warm-up included) gives `backtest run`'s result."""
    from backtest.engine import run
    from backtest.runs import prepare
    from backtest.sweep.backends import (
        compute_metrics,
        prepare_settings,
        run_backtest_array,
        run_backtest_event,
    )

    settings = prepare_settings(
        {
            "strategy": "ClusterFade",
            "since": "2025-10-08",
            "until": "2025-10-11",
            "data_dir": store_dir,
        }
    )
    config, strategy_class = prepare(settings)
    direct = compute_metrics(run(config, strategy_class=strategy_class))
    assert direct["# Trades"] > 0
    for function in (run_backtest_event, run_backtest_array):
        swept = compute_metrics(function(settings, worker.market_for(settings)))
        assert swept.keys() == direct.keys()
        for name, value in direct.items():
            assert swept[name] == value or (value != value and swept[name] != swept[name]), name


def test_best_runs_rerun_for_reports_get_the_map_heatmap(store_dir):
    """A sweep's array runs leave the heatmap table out; a report's rerun builds it."""
    from backtest.sweep.backends import prepare_settings
    from backtest.sweep.store import run_key
    from backtest.sweep.worker import RunTask, full_results

    settings = prepare_settings(
        {
            "strategy": "ClusterFade",
            "since": "2025-10-08",
            "until": "2025-10-11",
            "data_dir": store_dir,
        }
    )
    swept = backend_for("array").run(settings, worker.market_for(settings))
    assert swept.meta["engine"] == "array" and len(swept.heatmap) == 0
    task = RunTask(run_key(settings), settings)
    event, array = (full_results(task, backend_for(name)) for name in ("event", "array"))
    assert array.meta["engine"] == "array" and len(event.heatmap) > 0
    pd.testing.assert_frame_equal(array.heatmap, event.heatmap, check_dtype=False)


def test_local_workers_keep_the_adaptive_malloc_thresholds(monkeypatch):
    """Dask's nanny would start workers with MALLOC_TRIM_THRESHOLD_=65536 (twice the run time)."""
    import os

    from backtest.sweep.execute import open_client

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with open_client(workers=1) as client:
        values = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert list(values.values()) == [None]
