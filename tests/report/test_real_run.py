"""The report on a real engine run: 20x buy-and-hold through the 2025-10-10 crash.

The engine (backtest.engine.run) fills Results from the bundled BTC sample; the report must read
it as it is and its metrics must agree with the engine's own tables.
"""

from __future__ import annotations

import json

import pytest

from backtest.engine import RunConfig, run
from backtest.report import compute_metrics, format_summary, write_report
from backtest.results import Results

from .test_html import plotly_figures


@pytest.fixture(scope="module")
def crash_run() -> Results:
    config = RunConfig(strategy="BuyAndHold", leverage=20.0, since="2025-10-08", until="2025-10-13")
    return run(config)


def test_metrics_agree_with_the_engines_tables(crash_run):
    results = crash_run
    metrics = compute_metrics(results)
    value = results.equity["value"]
    assert metrics["Return [%]"] == pytest.approx((value.iloc[-1] / value.iloc[0] - 1) * 100)
    assert metrics["Liquidations"] == len(results.liquidations) >= 1
    assert metrics["Liquidation Loss [USDT]"] == pytest.approx(results.liquidations["loss"].sum())
    assert metrics["Fees [USDT]"] == pytest.approx(results.orders["fee"].sum())
    assert metrics["Funding PnL [USDT]"] == pytest.approx(-results.funding["payment"].sum())
    assert metrics["# Trades"] == len(results.trades)
    assert metrics["Net PnL [USDT]"] == pytest.approx(
        metrics["Trading PnL [USDT]"] + metrics["Funding PnL [USDT]"] - metrics["Fees [USDT]"]
    )
    assert metrics["Bars"] == len(results.market)
    assert "Own liquidations" in format_summary(metrics)


def test_saved_real_run_re_renders_with_its_liquidations_marked(crash_run, tmp_path):
    folder = crash_run.save(tmp_path / "crash")
    page = write_report(Results.load(folder), folder)
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["Liquidations"] == len(crash_run.liquidations)
    traces = {trace.get("name"): trace for trace in plotly_figures(page.read_text())["chart-main"]}
    liquidation_marks = traces["Own liquidation"]["x"]
    assert len(liquidation_marks) == len(crash_run.liquidations)
