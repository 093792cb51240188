"""The sweep driver end to end with the stand-in backend, on in-process Dask workers."""

import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from backtest.errors import ConfigError
from backtest.market.store import load_market
from backtest.plugins import resolve_strategy
from backtest.sweep.driver import SweepSpec, run_sweep
from backtest.sweep.execute import TaskRunner
from backtest.sweep.grid import build_axes, expand
from backtest.sweep.outputs import write_outputs
from backtest.sweep.page import metric_grid, render_page
from backtest.sweep.store import SweepStore
from backtest.sweep.walkforward import parse_walk_forward
from tests.sweep import fakes

BACKEND = fakes.FAKE_BACKEND


def make_spec(base, grid, **options):
    axes = build_axes(
        grid,
        resolve_strategy(fakes.STRATEGY),
        run_defaults=fakes.RUN_DEFAULTS,
        map_defaults={},
    )
    return SweepSpec(base=base, axes=tuple(axes), **options)


def sweep(spec, client, folder, store_class=SweepStore):
    with store_class(folder) as store:
        return run_sweep(spec, client, store, backend=BACKEND)


def direct_metrics(settings):
    """What one run gives when done by hand, without the sweep machinery."""
    full = fakes.fake_prepare(settings)
    frame = load_market(
        full["symbol"],
        full["timeframe"],
        since=full["since"],
        until=full["until"],
        data_dir=full["data_dir"],
    )
    return fakes.fake_metrics(fakes.fake_run(full, frame))


class _ResourceFinder(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith(("reports/", "#")):
                self.found.append((tag, value))


def external_resources(page):
    """Files or URLs the page would fetch (script contents are not parsed as tags)."""
    finder = _ResourceFinder()
    finder.feed(page)
    return finder.found


def executions(log_path):
    return len(log_path.read_text().splitlines()) if log_path.exists() else 0


GRID = {"fast": ["3", "6"], "leverage": ["2", "5"]}


def test_every_row_holds_its_own_runs_metrics_ranked(base_settings, thread_client, tmp_path):
    spec = make_spec(base_settings, GRID, rank_by="sharpe")
    outcome = sweep(spec, thread_client, tmp_path / "out")
    table = outcome.table
    assert outcome.metric == "Sharpe Ratio"
    assert len(table) == 4 and (table["status"] == "complete").all()
    assert (outcome.executed, outcome.skipped, outcome.failed) == (4, 0, 0)
    for point in expand(base_settings, spec.axes):
        row = table[
            (table["fast"] == point.values["fast"])
            & (table["leverage"] == point.values["leverage"])
        ]
        assert len(row) == 1
        expected = direct_metrics(point.settings)
        for name in ("Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "# Trades", "Bars"):
            assert row[name].iloc[0] == pytest.approx(expected[name], rel=1e-12)
    sharpe = table["Sharpe Ratio"].to_numpy()
    assert np.all(np.diff(sharpe) <= 0), "best first"
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert len(set(table["Return [%]"])) == 4, "each combination gave its own numbers"


def test_failing_combination_is_recorded_and_the_rest_complete(
    base_settings, thread_client, tmp_path
):
    grid = {"explode_after": ["0", "5"], "fast": ["3", "6"]}
    outcome = sweep(make_spec(base_settings, grid), thread_client, tmp_path / "out")
    table = outcome.table
    failed = table[table["status"] == "failed"]
    assert outcome.failed == 2 and len(failed) == 2
    assert set(failed["explode_after"]) == {5}
    assert set(failed["error"]) == {"RuntimeError: explode_after=5: deliberate failure"}
    assert failed["rank"].isna().all()
    complete = table[table["status"] == "complete"]
    assert set(complete["fast"]) == {3, 6} and complete["rank"].notna().all()
    assert table["status"].tolist()[-2:] == ["failed", "failed"], "failures sort last"


def test_a_combination_that_cannot_be_configured_is_not_sent(
    base_settings, thread_client, tmp_path
):
    log = tmp_path / "log"
    base = {**base_settings, "_log": str(log)}
    outcome = sweep(make_spec(base, {"leverage": ["-1", "2"]}), thread_client, tmp_path / "out")
    bad = outcome.table[outcome.table["leverage"] == -1.0]
    assert bad["status"].iloc[0] == "failed"
    assert bad["error"].iloc[0] == "ConfigError: leverage -1.0 must be positive"
    assert executions(log) == 1


def test_a_sweep_where_nothing_can_be_configured_stops_with_the_reason(
    base_settings, thread_client, tmp_path
):
    with pytest.raises(ConfigError, match=r"no run of the sweep can be configured: .*positive"):
        sweep(make_spec(base_settings, {"leverage": ["-1", "-2"]}), thread_client, tmp_path)


def test_resume_skips_finished_runs(base_settings, thread_client, tmp_path):
    log = tmp_path / "log"
    base = {**base_settings, "_log": str(log)}
    first = sweep(make_spec(base, GRID), thread_client, tmp_path / "out")
    assert executions(log) == 4
    again = sweep(make_spec(base, GRID), thread_client, tmp_path / "out")
    assert executions(log) == 4, "nothing was run again"
    assert (again.executed, again.skipped) == (0, 4)
    pd.testing.assert_frame_equal(first.table, again.table)
    wider = sweep(
        make_spec(base, {**GRID, "fast": ["3", "6", "9"]}), thread_client, tmp_path / "out"
    )
    assert executions(log) == 6, "only the two new combinations ran"
    assert (wider.executed, wider.skipped, len(wider.table)) == (2, 4, 6)


class InterruptedStore(SweepStore):
    """Behaves like Ctrl-C arriving just after the second run was recorded."""

    def append(self, record):
        super().append(record)
        if len(self.records) == 2:
            raise KeyboardInterrupt


def test_an_interrupted_sweep_resumes_without_redoing_recorded_runs(
    base_settings, thread_client, tmp_path
):
    log = tmp_path / "log"
    base = {**base_settings, "_log": str(log)}
    with pytest.raises(KeyboardInterrupt):
        sweep(make_spec(base, GRID), thread_client, tmp_path / "out", InterruptedStore)
    recorded = len((tmp_path / "out" / "runs.jsonl").read_text().splitlines())
    assert recorded == 2
    before = executions(log)
    resumed = sweep(make_spec(base, GRID), thread_client, tmp_path / "out")
    assert executions(log) - before == 4 - recorded
    assert (resumed.executed, resumed.skipped) == (2, 2)
    clean = sweep(make_spec(base_settings, GRID), thread_client, tmp_path / "clean")
    columns = ["fast", "leverage", "Return [%]", "Sharpe Ratio", "rank"]
    pd.testing.assert_frame_equal(resumed.table[columns], clean.table[columns])


def test_unknown_ranking_metric_stops_early_and_lists_the_metrics(
    base_settings, thread_client, tmp_path
):
    with pytest.raises(ConfigError, match=r"--rank-by 'Calmar' is not a metric.*'Sharpe Ratio'"):
        sweep(make_spec(base_settings, GRID, rank_by="Calmar"), thread_client, tmp_path / "out")


def test_outputs_table_page_and_best_reports(base_settings, thread_client, tmp_path):
    spec = make_spec(base_settings, {**GRID, "slow": ["12", "24"]}, rank_by="Return")
    with SweepStore(tmp_path / "out") as store:
        outcome = run_sweep(spec, thread_client, store, backend=BACKEND)
        files = write_outputs(
            outcome, store, TaskRunner(thread_client, BACKEND), reports_top=2, heatmap=None
        )
    table = pd.read_csv(files.table)
    assert len(table) == 8 and table["rank"].tolist() == list(range(1, 9))
    parquet = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert parquet["key"].tolist() == table["key"].tolist()
    assert [entry.key for entry in files.reports] == table["key"].tolist()[:2]
    for entry in files.reports:
        assert entry.folder.name.startswith(f"{entry.position:02d}-")
        written = pd.read_parquet(entry.folder / "equity.parquet")["value"]
        expected_return = table.loc[table["key"] == entry.key, "Return [%]"].iloc[0]
        assert (written.iloc[-1] / written.iloc[0] - 1) * 100 == pytest.approx(expected_return)
    page = files.page.read_text()
    assert external_resources(page) == []
    assert "Plotly.newPlot" in page and "plotly.js v" in page.lower()
    assert "Return [%] by fast and leverage (best over slow)" in page
    assert f'href="reports/{files.reports[0].folder.name}/report.html"' in page


def test_heatmap_cells_are_the_best_run_over_the_other_axes(base_settings, thread_client, tmp_path):
    spec = make_spec(base_settings, {**GRID, "slow": ["12", "24"]}, rank_by="Return")
    outcome = sweep(spec, thread_client, tmp_path / "out")
    grid = metric_grid(outcome, "fast", "leverage")
    table = outcome.table
    for fast in (3, 6):
        for leverage in (2.0, 5.0):
            cell = table[(table["fast"] == fast) & (table["leverage"] == leverage)]
            assert grid.loc[leverage, fast] == cell["Return [%]"].max()


def test_walk_forward_picks_the_best_training_run_and_stitches_its_tests(
    store_dir, thread_client, tmp_path
):
    log = tmp_path / "log"
    base = {
        "strategy": fakes.STRATEGY,
        "data_dir": store_dir,
        "since": "2025-10-01",
        "until": "2025-10-11",
        "_log": str(log),
    }
    grid = {"fast": ["3", "6"], "slow": ["12", "30"]}
    spec = make_spec(base, grid, rank_by="Sharpe", walk_forward=parse_walk_forward("3d:2d"))
    outcome = sweep(spec, thread_client, tmp_path / "out")
    windows = outcome.windows
    assert windows["test_since"].tolist() == [
        "2025-10-04T00:00:00",
        "2025-10-06T00:00:00",
        "2025-10-08T00:00:00",
    ]
    assert executions(log) == 3 * 4 + 3
    again = sweep(spec, thread_client, tmp_path / "out")
    assert executions(log) == 15, "a finished walk-forward resumes without running anything"
    pd.testing.assert_series_equal(again.oos_equity, outcome.oos_equity)
    base.pop("_log")
    curves, cash = [], []
    for _, window in windows.iterrows():
        train_scores = {}
        for point in expand(base, spec.axes):
            settings = {
                **point.settings,
                "since": window["train_since"],
                "until": window["train_until"],
            }
            train_scores[(point.values["fast"], point.values["slow"])] = direct_metrics(settings)[
                "Sharpe Ratio"
            ]
        best = max(train_scores, key=train_scores.get)
        assert (window["fast"], window["slow"]) == best
        assert window["train Sharpe Ratio"] == pytest.approx(train_scores[best])
        test_settings = {
            **base,
            "params": {"fast": best[0], "slow": best[1]},
            "since": window["test_since"],
            "until": window["test_until"],
        }
        assert window["test Sharpe Ratio"] == pytest.approx(
            direct_metrics(test_settings)["Sharpe Ratio"]
        )
        full = fakes.fake_prepare(test_settings)
        frame = load_market("BTC/USDT:USDT", "5m", since=full["since"], until=full["until"])
        curves.append(fakes.fake_run(full, frame).equity["value"])
        cash.append(full["cash"])
    level, expected = cash[0], []
    for curve, money in zip(curves, cash, strict=True):
        scaled = curve * (level / money)
        expected.append(scaled)
        level = scaled.iloc[-1]
    expected = pd.concat(expected)
    np.testing.assert_allclose(outcome.oos_equity.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert outcome.oos_equity.index[0] == pd.Timestamp("2025-10-04", tz="UTC")
    assert outcome.oos_equity.index[-1] == pd.Timestamp("2025-10-09T23:55", tz="UTC")
    table = outcome.table
    assert sorted(table["phase"].value_counts().items()) == [("test", 3), ("train", 12)]
    page = render_page(outcome)
    assert f"Walk-forward out-of-sample equity ({outcome.oos_return_pct:+.2f} %)" in page
    assert "Sharpe Ratio by fast and slow (mean over training windows)" in page
    assert external_resources(page) == []


def test_walk_forward_refuses_date_axes(base_settings):
    with pytest.raises(ConfigError, match="--walk-forward chooses"):
        make_spec(
            base_settings,
            {"period": ["2025-10-01..2025-10-03"]},
            walk_forward=parse_walk_forward("1d:1d"),
        )


def test_manifest_describes_the_sweep(base_settings, thread_client, tmp_path):
    sweep(make_spec(base_settings, GRID), thread_client, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert manifest["axes"] == {"fast": [3, 6], "leverage": [2.0, 5.0]}
    assert manifest["runs"] == 4


def test_a_large_grid_travels_in_chunks_and_gives_the_same_table(
    base_settings, thread_client, tmp_path, monkeypatch
):
    """Several runs per Dask task on a larger grid; each run still gets its own record."""
    from backtest.sweep import execute

    grid = {"fast": [str(value) for value in range(2, 18)], "leverage": ["2", "3", "4", "5"]}
    spec = make_spec(base_settings, grid, rank_by="sharpe")
    submitted: list[int] = []
    original = TaskRunner._submit

    def counting(self, chunk):
        submitted.append(len(chunk))
        return original(self, chunk)

    monkeypatch.setattr(TaskRunner, "_submit", counting)
    chunked = sweep(spec, thread_client, tmp_path / "chunked")
    assert sum(submitted) == 64 and max(submitted) == 4  # 64 runs // (8 x 2 threads)
    monkeypatch.setattr(execute, "MAX_CHUNK", 1)
    submitted.clear()
    single = sweep(spec, thread_client, tmp_path / "single")
    assert submitted == [1] * 64
    assert (chunked.executed, chunked.failed) == (64, 0)
    columns = [name for name in chunked.table.columns if name not in ("seconds", "worker")]
    pd.testing.assert_frame_equal(
        chunked.table[columns].reset_index(drop=True), single.table[columns].reset_index(drop=True)
    )


def test_chunks_keep_the_order_and_never_mix_priorities(thread_client):
    from backtest.sweep.worker import RunTask

    runner = TaskRunner(thread_client, BACKEND)
    tasks = [RunTask(str(index), {}, priority=0 if index < 150 else -1) for index in range(200)]
    chunks = runner._chunks(tasks)
    assert [task.key for chunk in chunks for task in chunk] == [task.key for task in tasks]
    assert all(len({task.priority for task in chunk}) == 1 for chunk in chunks)
    assert max(len(chunk) for chunk in chunks) == 12  # 200 runs // (8 x 2 threads)
    assert runner._chunks(tasks[:10]) == [[task] for task in tasks[:10]]
