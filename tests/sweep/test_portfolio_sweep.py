"""Sweeps and walk-forward of portfolio runs (several symbols per run), with the real engine."""

from __future__ import annotations

import logging

import pytest

from backtest.engine import run
from backtest.plugins import resolve_strategy
from backtest.report import compute_metrics
from backtest.runs import prepare
from backtest.sweep import worker
from backtest.sweep.backends import DEFAULT_BACKEND
from backtest.sweep.driver import SweepSpec, run_sweep
from backtest.sweep.grid import build_axes, expand
from backtest.sweep.store import SweepStore
from backtest.sweep.walkforward import parse_walk_forward

SYMBOLS = "BTC/USDT:USDT,ETH/USDT:USDT"


@pytest.fixture
def portfolio_settings(store_dir):
    logging.getLogger("backtest.warmup").setLevel(logging.ERROR)
    return {
        "strategy": "ClusterRotation",
        "symbol": SYMBOLS,
        "since": "2025-10-07",
        "until": "2025-10-11",
        "data_dir": store_dir,
    }


def _spec(base, grid, **options):
    axes = build_axes(grid, resolve_strategy("ClusterRotation"), run_defaults={}, map_defaults={})
    return SweepSpec(base=base, axes=tuple(axes), **options)


def test_the_worker_caches_each_symbol_once_and_hands_out_a_mapping(portfolio_settings):
    worker.clear_cache()
    market = worker.market_for(portfolio_settings)
    assert list(market) == SYMBOLS.split(",")
    worker.market_for({**portfolio_settings, "since": "2025-10-08"})
    counts = worker.load_counts()
    assert sorted(key.split("|")[1] for key in counts) == sorted(SYMBOLS.split(","))
    assert set(counts.values()) == {1}
    first, last, step = worker.market_span(portfolio_settings)
    assert step == 300_000 and last > first


def test_a_portfolio_sweep_row_equals_the_run_done_by_hand(
    portfolio_settings, thread_client, tmp_path
):
    spec = _spec(portfolio_settings, {"cut_within": ["0.005", "0.01"]}, rank_by="Return")
    with SweepStore(tmp_path / "out") as store:
        outcome = run_sweep(spec, thread_client, store, backend=DEFAULT_BACKEND)
    table = outcome.table
    assert len(table) == 2 and (table["status"] == "complete").all()
    for point in expand(portfolio_settings, spec.axes):
        config, strategy_class = prepare(point.settings)
        expected = compute_metrics(run(config, strategy_class=strategy_class))
        row = table[table["cut_within"] == point.values["cut_within"]]
        for name in ("Return [%]", "# Trades", "Fees [USDT]", "Max. Drawdown [%]"):
            assert row[name].iloc[0] == pytest.approx(expected[name], rel=1e-12), name
    assert len(set(table["# Trades"])) == 2, "each combination gave its own numbers"


def test_walk_forward_accepts_a_portfolio(store_dir, thread_client, tmp_path):
    logging.getLogger("backtest.warmup").setLevel(logging.ERROR)
    base = {
        "strategy": "ClusterRotation",
        "symbol": SYMBOLS,
        "since": "2025-10-01",
        "until": "2025-10-09",
        "data_dir": store_dir,
    }
    spec = _spec(
        base,
        {"cut_within": ["0.005", "0.01"]},
        rank_by="Return",
        walk_forward=parse_walk_forward("3d:2d"),
    )
    with SweepStore(tmp_path / "wf") as store:
        outcome = run_sweep(spec, thread_client, store, backend=DEFAULT_BACKEND)
    assert len(outcome.windows) == 2
    assert outcome.failed == 0 and len(outcome.oos_equity) > 0
