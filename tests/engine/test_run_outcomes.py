"""Issue 13: runs that say what happened (rejected orders, leverage, slippage, open positions).

Prices are written by hand so that each expected number can be checked on paper.
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from backtest import Strategy
from backtest.report import compute_metrics, format_summary
from backtest.results import Results
from backtest.runs import warn_rejected


def test_an_order_refused_for_margin_is_recorded_with_its_reason(frame_factory, run_script):
    # 1,000 cash at 3x covers at most 3,000 of notional; buying 50 at 100 (5,000) needs
    # 5,000 / 3 = 1,666.67 of margin: refused, and nothing is traded.
    frame = frame_factory([100.0] * 5)
    results = run_script(frame, {0: [("buy", {"size": 50.0})]}, cash=1_000.0, leverage=3.0)
    assert results.orders.empty and results.trades.empty
    assert len(results.rejected) == 1
    row = results.rejected.iloc[0]
    assert row["side"] == "buy" and row["size"] == 50.0
    assert "insufficient margin" in row["reason"]
    assert "1,666.67" in row["reason"] and "1,000.00 available" in row["reason"]
    metrics = compute_metrics(results)
    assert metrics["Rejected Orders"] == 1
    assert "Rejected orders" in format_summary(metrics)


def test_an_order_over_the_tier_limit_says_so(frame_factory, run_script):
    # 100,000 notional at 125x breaks the 100x maximum of the 50k-600k bracket.
    frame = frame_factory([100.0] * 5)
    script = {0: [("buy", {"size": 1_000.0, "leverage": 125})]}
    results = run_script(frame, script, cash=10_000.0, leverage=3.0)
    assert results.orders.empty
    assert "exceeds the 100x maximum" in results.rejected.iloc[0]["reason"]


def test_the_first_refusal_is_logged_once(frame_factory, run_script, caplog):
    frame = frame_factory([100.0] * 5)
    script = {0: [("buy", {"size": 50.0})], 2: [("buy", {"size": 60.0})]}
    results = run_script(frame, script, cash=1_000.0, leverage=3.0)
    assert len(results.rejected) == 2
    with caplog.at_level(logging.WARNING, logger="backtest.run"):
        message = warn_rejected(results)
    assert message is not None and "refused 2 order(s)" in message
    assert "of 50 " in message  # the first one
    assert [record.name for record in caplog.records].count("backtest.run") == 1


def test_rejected_orders_survive_save_and_load(frame_factory, run_script, tmp_path):
    frame = frame_factory([100.0] * 5)
    results = run_script(frame, {0: [("buy", {"size": 50.0})]}, cash=1_000.0)
    loaded = Results.load(results.save(tmp_path / "run"))
    assert loaded.rejected["reason"].tolist() == results.rejected["reason"].tolist()


def test_a_run_without_refusals_has_an_empty_table(frame_factory, run_script):
    frame = frame_factory([100.0] * 5)
    results = run_script(frame, {0: [("buy", {"size": 5.0})]}, cash=1_000.0)
    assert len(results.orders) == 1 and results.rejected.empty
    assert warn_rejected(results) is None
    assert compute_metrics(results)["Rejected Orders"] == 0


def test_the_report_lists_rejected_orders(frame_factory, run_script):
    from backtest.report.html import render_html

    frame = frame_factory([100.0] * 5)
    results = run_script(frame, {0: [("buy", {"size": 50.0})]}, cash=1_000.0)
    page = render_html(results, compute_metrics(results))
    assert "Rejected orders (1)" in page and "insufficient margin" in page


class _HoldExposure(Strategy):
    """Hold ``exposure`` × equity from the first bar (no map)."""

    uses_clusters = False
    params = (("exposure", 1.0),)

    def next(self):
        if not self.position:
            self.target_exposure(self.p.exposure)


def _exposure_run(frame, tiers, leverage):
    from backtest.engine import RunConfig, run

    config = RunConfig(strategy="Hold", leverage=leverage, maker_fee=0.0, taker_fee=0.0)
    return run(config, data=frame, strategy_class=_HoldExposure, tiers=tiers)


def test_leverage_setting_and_exposure_are_two_numbers(frame_factory, btc_tiers):
    # Equity 10,000 held at exposure 1 from bar 1's open (100): 100 units whatever the
    # setting.  The setting changes only the margin locked: 10,000 / 5 = 2,000 (20 % of equity)
    # against 10,000 / 2 = 5,000 (50 %).
    frame = frame_factory([100.0, 100.0, 104.0, 102.0, 103.0])
    low, high = _exposure_run(frame, btc_tiers, 2.0), _exposure_run(frame, btc_tiers, 5.0)
    low_metrics, high_metrics = compute_metrics(low), compute_metrics(high)
    assert low.orders["size"].tolist() == high.orders["size"].tolist() == [100.0]
    assert low_metrics["Return [%]"] == high_metrics["Return [%]"]
    assert (
        low_metrics["Leverage Setting [x]"] == 2.0 and high_metrics["Leverage Setting [x]"] == 5.0
    )
    # bar 1: notional 10,000 on equity 10,000 -> exposure 1 (then it moves with the price)
    assert high_metrics["Max. Exposure [x]"] == pytest.approx(10_300.0 / 10_300.0)
    assert high.equity["margin_used"].iloc[-1] == pytest.approx(2_000.0)
    assert low.equity["margin_used"].iloc[-1] == pytest.approx(5_000.0)
    summary = format_summary(high_metrics)
    assert "Leverage setting" in summary and "Max. exposure" in summary
    assert "Max. leverage" not in summary


def test_sweep_warns_when_an_axis_changes_no_result():
    from backtest.commands.sweep import axis_warnings
    from backtest.sweep.ranking import unchanged_axes

    rows = []
    for band, ret in ((0.02, 1.5), (0.03, -0.5)):
        for leverage in (3, 5, 10):
            rows.append(
                {
                    "band": band,
                    "leverage": leverage,
                    "status": "complete",
                    "Return [%]": ret,
                    "# Trades": 4,
                    "Sharpe": float("nan"),
                    "Max. Margin Use [%]": 100.0 / leverage,  # moves, but is no result
                }
            )
    table = pd.DataFrame(rows)
    assert unchanged_axes(table, ["band", "leverage"]) == ["leverage"]
    (message,) = axis_warnings(table, ["band", "leverage"])
    assert "axis leverage left every result metric unchanged" in message
    assert "-g exposure=" in message
    table.loc[0, "Return [%]"] = 2.0  # one group now differs: no warning
    assert unchanged_axes(table, ["band", "leverage"]) == []
