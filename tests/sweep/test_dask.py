"""The same sweep on real worker processes: one code path, data loaded once per worker, faults."""

import dask
import pandas as pd

from backtest.plugins import resolve_strategy
from backtest.sweep import worker
from backtest.sweep.driver import SweepSpec, run_sweep
from backtest.sweep.execute import open_client
from backtest.sweep.grid import build_axes
from backtest.sweep.store import SweepStore
from tests.sweep import fakes

GRID = {"fast": ["3", "6"], "leverage": ["2", "5"]}


def make_spec(base, grid=GRID):
    axes = build_axes(
        grid, resolve_strategy(fakes.STRATEGY), run_defaults=fakes.RUN_DEFAULTS, map_defaults={}
    )
    return SweepSpec(base=base, axes=tuple(axes))


def sweep_on(client, spec, folder):
    with SweepStore(folder) as store:
        return run_sweep(spec, client, store, backend=fakes.FAKE_BACKEND)


def test_same_metrics_on_one_worker_two_workers_and_a_cluster(
    base_settings, process_cluster, tmp_path
):
    """The real engine and report metrics, ClusterFade on 3 days of the bundled sample."""
    base = {**base_settings, "strategy": "ClusterFade"}
    axes = build_axes(
        {"band": ["0.02", "0.05"], "leverage": ["3", "5"]}, resolve_strategy("ClusterFade")
    )
    spec = SweepSpec(base=base, axes=tuple(axes), rank_by="Return")
    tables = {}
    with open_client(workers=1, processes=False) as client:  # a worker thread of this process
        tables["1 worker"] = run_real(client, spec, tmp_path / "one")
    with open_client(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        tables["2 workers"] = run_real(client, spec, tmp_path / "two")
    with open_client(scheduler=process_cluster.scheduler_address) as client:
        tables["cluster"] = run_real(client, spec, tmp_path / "cluster")
    reference = tables["1 worker"]
    assert (reference["status"] == "complete").all() and len(reference) == 4
    assert reference["Bars"].tolist() == [864] * 4
    assert reference["Return [%]"].nunique() > 1, "the band changes the trades"
    metrics = [name for name in reference.columns if name not in ("seconds", "worker")]
    for name in ("2 workers", "cluster"):
        pd.testing.assert_frame_equal(tables[name][metrics], reference[metrics], obj=name)
    assert tables["1 worker"]["worker"].nunique() == 1
    assert tables["1 worker"]["worker"].iloc[0] not in set(tables["2 workers"]["worker"])


def run_real(client, spec, folder):
    with SweepStore(folder) as store:
        return run_sweep(spec, client, store).table


def test_market_is_loaded_once_per_worker_not_per_run(base_settings, process_cluster, tmp_path):
    grid = {"fast": ["3", "4", "5", "6"], "slow": ["12", "24"]}
    with open_client(scheduler=process_cluster.scheduler_address) as client:
        table = sweep_on(client, make_spec(base_settings, grid), tmp_path / "out").table
        counts = client.run(worker.load_counts)
        pids = client.run(lambda: __import__("os").getpid())
    assert len(table) == 8 and (table["status"] == "complete").all()
    market = f"binanceusdm|BTC/USDT:USDT|5m|{base_settings['data_dir']}"
    used = set(table["worker"])
    by_pid = {f":{pid}": address for address, pid in pids.items()}
    for name in used:
        address = next(address for suffix, address in by_pid.items() if name.endswith(suffix))
        assert counts[address][market] == 1
    runs_per_worker = table["worker"].value_counts()
    assert runs_per_worker.sum() == 8 and runs_per_worker.max() > 1


def test_a_worker_that_dies_mid_sweep_has_its_run_redone(base_settings, process_cluster, tmp_path):
    import os

    marker = tmp_path / "kill-once"
    marker.write_text(str(os.getpid()))
    base = {**base_settings, "_kill": str(marker)}
    with open_client(scheduler=process_cluster.scheduler_address) as client:
        outcome = sweep_on(client, make_spec(base), tmp_path / "out")
        client.wait_for_workers(2, timeout=60)
    assert not marker.exists()
    assert len(list(tmp_path.glob("kill-once.claimed-*"))) == 1, "one worker process died"
    assert (outcome.table["status"] == "complete").all() and len(outcome.table) == 4


def test_a_run_that_keeps_killing_workers_is_reported(base_settings, tmp_path):
    import os

    marker = tmp_path / "kill-once"
    marker.write_text(str(os.getpid()))
    base = {**base_settings, "_kill": str(marker)}
    grid = {"fast": ["3"], "leverage": ["2"]}
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        open_client(workers=1) as client,
    ):
        outcome = sweep_on(client, make_spec(base, grid), tmp_path / "out")
    (row,) = outcome.table.to_dict("records")
    assert row["status"] == "failed"
    assert row["error"].startswith("KilledWorker: the worker process died while running")
    with SweepStore(tmp_path / "out") as store:
        assert store.completed(row["key"]) is None, "redone when the sweep is started again"
