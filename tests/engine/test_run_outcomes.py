"""Issue 13: runs that say what happened (rejected orders, leverage, slippage, open positions).

Prices are written by hand so that each expected number can be checked on paper.
"""

from __future__ import annotations

import logging
import math

import numpy as np
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


# -- slippage ----------------------------------------------------------------------------------


def test_fixed_slippage_moves_market_fills_against_the_order(frame_factory, run_script):
    # Buy 10 at bar 1's open 100 with 0.001 slippage: 100.1; sell at bar 3's open 101: 100.899.
    frame = frame_factory([100.0, 100.0, 101.0, 101.0, 101.0])
    script = {0: [("buy", {"size": 10.0})], 2: [("close", {})]}
    results = run_script(frame, script, cash=1_000.0, slippage=0.001)
    assert results.orders["price"].tolist() == pytest.approx([100.1, 100.899], rel=1e-12)
    assert results.trades["pnl_gross"].iloc[0] == pytest.approx(10 * (100.899 - 100.1), rel=1e-12)


def test_volatility_slippage_scales_with_the_bar_range(frame_factory, run_script):
    # Bar 1: open 100, high 102, low 98 -> range / open = 0.04; slippage 0.5 -> 2 %: a buy
    # fills at 102.  Bar 3: open 101, high 101.5, low 100.5 -> 0.01 / 101 * 0.5 * 101 = 0.5
    # below the open: a sell at 100.5.
    closes = [100.0, 100.0, 101.0, 101.0, 101.0]
    highs = [100.0, 102.0, 101.0, 101.5, 101.0]
    lows = [100.0, 98.0, 100.0, 100.5, 101.0]
    frame = frame_factory(closes, highs=highs, lows=lows)
    script = {0: [("buy", {"size": 10.0})], 2: [("close", {})]}
    results = run_script(frame, script, cash=1_000.0, slippage=0.5, slippage_model="volatility")
    assert results.orders["price"].tolist() == pytest.approx([102.0, 100.5], rel=1e-12)


def test_stop_fills_slip_and_limit_fills_do_not(frame_factory, run_script):
    import backtrader as bt

    # Limit buy at 99 fills on bar 1 (low 98) at 99: no slippage.  A sell stop at 95 triggers
    # on bar 3 (open 97, low 94) and fills at 95, slipped by 0.001: 94.905.
    closes = [100.0, 99.5, 97.0, 96.0, 96.0]
    opens = [100.0, 100.0, 99.5, 97.0, 96.0]
    lows = [100.0, 98.0, 97.0, 94.0, 96.0]
    frame = frame_factory(closes, opens=opens, lows=lows)
    script = {
        0: [("buy", {"size": 10.0, "price": 99.0, "exectype": bt.Order.Limit})],
        2: [("sell", {"size": 10.0, "price": 95.0, "exectype": bt.Order.Stop})],
    }
    results = run_script(frame, script, cash=1_000.0, slippage=0.001)
    assert results.orders["price"].tolist() == pytest.approx([99.0, 94.905], rel=1e-12)


def test_liquidation_fills_slip(frame_factory, run_script):
    # A 10x long of 10 bought at bar 1's open 100 (slipped: 100.1) is liquidated on bar 2
    # (low 80); the forced sell fills 0.001 below its liquidation price, where without
    # slippage it fills at the liquidation price itself.
    closes = [100.0, 100.0, 85.0, 85.0]
    frame = frame_factory(closes, lows=[100.0, 100.0, 80.0, 85.0])
    script = {0: [("buy", {"size": 10.0, "leverage": 10})]}
    plain = run_script(frame, script, cash=1_000.0)
    slipped = run_script(frame, script, cash=1_000.0, slippage=0.001)
    assert slipped.orders["price"].iloc[0] == pytest.approx(100.1, rel=1e-12)
    plain_row, slipped_row = plain.liquidations.iloc[0], slipped.liquidations.iloc[0]
    assert plain_row["fill_price"] == plain_row["liquidation_price"]
    assert slipped_row["fill_price"] == pytest.approx(
        slipped_row["liquidation_price"] * 0.999, rel=1e-12
    )
    assert slipped.orders["price"].iloc[1] == pytest.approx(slipped_row["fill_price"], rel=1e-12)


def test_slippage_is_shown_in_the_report_configuration(frame_factory, run_script):
    from backtest.report.html import config_table

    frame = frame_factory([100.0] * 4)
    results = run_script(frame, {0: [("buy", {"size": 1.0})]}, cash=1_000.0, slippage=0.0005)
    table = config_table(results.config, results.meta)
    assert "slippage_model" in table and "0.0005" in table


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"slippage": -0.1}, "slippage -0.1 must be in [0, 1)"),
        ({"slippage": 0.001, "slippage_model": "linear"}, "slippage_model 'linear' is unknown"),
    ],
)
def test_bad_slippage_settings_are_refused(fields, message):
    from backtest.engine import RunConfig
    from backtest.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
        RunConfig(**fields)


# -- open positions at the end -----------------------------------------------------------------


def test_a_position_open_at_the_end_is_listed_marked_and_counted(
    frame_factory, run_script, tmp_path
):
    # Buy 10 at bar 1's open 100 and hold: the data ends at a close of 105, so the open trade
    # shows exit_price 105 and an unrealised PnL of 10 x 5 = 50 (no fees).
    frame = frame_factory([100.0, 100.0, 102.0, 104.0, 105.0])
    results = run_script(frame, {0: [("buy", {"size": 10.0})]}, cash=1_000.0)
    assert results.trades.empty
    assert len(results.open_trades) == 1
    row = results.open_trades.iloc[0]
    assert row["side"] == "long" and row["size"] == 10.0
    assert row["entry_price"] == 100.0 and row["exit_price"] == 105.0
    assert row["pnl_gross"] == pytest.approx(50.0) and row["pnl_net"] == pytest.approx(50.0)
    assert row["exit_time"] == frame.index[-1]
    metrics = compute_metrics(results)
    assert metrics["Open Trades"] == 1 and metrics["# Trades"] == 0
    assert metrics["Open Trades PnL [USDT]"] == pytest.approx(50.0)
    assert "Open at end" in format_summary(metrics)
    from backtest.report import write_report

    page = write_report(results, tmp_path / "report").read_text(encoding="utf-8")
    assert "Open at the end (1)" in page and "Open at end" in page  # table and chart marker
    csv = pd.read_csv(tmp_path / "report" / "trades.csv")
    assert csv["status"].tolist() == ["open"] and csv["pnl_net"].iloc[0] == pytest.approx(50.0)


def test_a_partly_closed_open_trade_adds_realised_and_unrealised(frame_factory, run_script):
    # Buy 10 at 100, sell 4 at bar 3's open 104 (realised 16), 6 left marked at 103: +18.
    frame = frame_factory([100.0, 100.0, 104.0, 104.0, 103.0])
    script = {0: [("buy", {"size": 10.0})], 2: [("sell", {"size": 4.0})]}
    results = run_script(frame, script, cash=1_000.0)
    row = results.open_trades.iloc[0]
    assert row["size"] == 6.0
    assert row["pnl_gross"] == pytest.approx(16.0 + 18.0)


def test_a_flat_end_has_no_open_trades(frame_factory, run_script):
    frame = frame_factory([100.0] * 5)
    script = {0: [("buy", {"size": 1.0})], 2: [("close", {})]}
    results = run_script(frame, script, cash=1_000.0)
    assert len(results.trades) == 1 and results.open_trades.empty
    assert compute_metrics(results)["Open Trades"] == 0


# -- realism warnings --------------------------------------------------------------------------


def test_a_run_without_a_funding_series_says_funding_was_not_charged(frame_factory, run_script):
    from backtest.report.realism import run_warnings

    script = {0: [("buy", {"size": 1.0})]}
    bare = run_script(frame_factory([100.0] * 5), script, cash=1_000.0)
    assert bare.meta["funding_settlements"] == 0
    metrics = compute_metrics(bare)
    assert math.isnan(metrics["Funding PnL [USDT]"])
    assert "funding was not charged" in " ".join(run_warnings(bare, metrics))
    assert "Funding PnL" in format_summary(metrics) and "n/a" in format_summary(metrics)
    # with a series (one settlement at bar 3) funding is charged and the warning is gone
    funded = run_script(frame_factory([100.0] * 5, funding={3: 0.0001}), script, cash=1_000.0)
    funded_metrics = compute_metrics(funded)
    assert funded_metrics["Funding PnL [USDT]"] == pytest.approx(-0.01)
    assert not any("funding" in text for text in run_warnings(funded, funded_metrics))


def test_until_past_the_data_names_the_range_used(frame_factory, run_script):
    from backtest.report.realism import run_warnings

    frame = frame_factory([100.0] * 5)  # 2025-10-01 00:00 .. 04:00, hourly
    results = run_script(frame, {}, cash=1_000.0, until="2025-11-01")
    (text,) = [item for item in run_warnings(results) if "--until" in item]
    assert "2025-10-01 00:00 UTC → 2025-10-01 04:00 UTC" in text
    inside = run_script(frame, {}, cash=1_000.0, until="2025-10-01T05:00")
    assert not any("--until" in item for item in run_warnings(inside))


def test_annualised_figures_of_a_short_run_are_na_with_a_note(frame_factory, run_script):
    from backtest.report.realism import run_warnings

    frame = frame_factory([100.0, 100.0, 101.0, 102.0, 103.0])
    results = run_script(frame, {0: [("buy", {"size": 1.0})]}, cash=1_000.0)
    metrics = compute_metrics(results)
    for name in ("Return (Ann.) [%]", "CAGR [%]", "Calmar"):
        assert math.isnan(metrics[name]), name
    assert metrics["Return [%]"] == pytest.approx(0.3)  # 3 on 1,000: not annualised, kept
    assert any("30-day minimum" in text for text in run_warnings(results, metrics))
    kept = compute_metrics(results, min_annualised_days=0)
    assert math.isfinite(kept["CAGR [%]"])


def test_the_report_shows_the_warnings(frame_factory, run_script):
    from backtest.report.html import render_html

    results = run_script(frame_factory([100.0] * 5), {0: [("buy", {"size": 1.0})]}, cash=1_000.0)
    page = render_html(results, compute_metrics(results))
    assert 'id="warnings"' in page and "funding was not charged" in page


# -- exit reasons ------------------------------------------------------------------------------


def test_exit_reasons_set_by_the_strategy_reach_orders_trades_and_the_report(
    frame_factory, run_script
):
    from backtest.report.html import pnl_by_reason, render_html

    # Trade 1: buy 10 at 100, closed at 102 with reason "take-profit" (+20).  Trade 2: buy 10
    # at 102, closed at 101 with no reason (-10, "strategy").  Trade 3: buy 10 at 101, still
    # open at the last close 103 ("end of data", +20 unrealised).
    # (an order sent on bar k fills at bar k+1's open, which is bar k's close)
    frame = frame_factory([100.0, 102.0, 102.0, 101.0, 101.0, 101.0, 103.0])
    script = {
        0: [("buy", {"size": 10.0, "reason": "entry-signal"})],
        1: [("close", {"reason": "take-profit"})],
        2: [("buy", {"size": 10.0})],
        3: [("close", {})],
        4: [("buy", {"size": 10.0})],
    }
    results = run_script(frame, script, cash=10_000.0)
    assert results.orders["reason"].tolist()[:3] == ["entry-signal", "take-profit", "strategy"]
    assert results.trades["exit_reason"].tolist() == ["take-profit", "strategy"]
    assert results.open_trades["exit_reason"].tolist() == ["end of data"]
    table = pnl_by_reason(results).set_index("exit_reason")
    assert table.loc["take-profit", "pnl_net"] == pytest.approx(20.0)
    assert table.loc["strategy", "pnl_net"] == pytest.approx(-10.0)
    assert table.loc["end of data", "pnl_net"] == pytest.approx(20.0)
    assert table["trades"].sum() == 3
    page = render_html(results, compute_metrics(results))
    assert "PnL by exit reason" in page and "take-profit" in page


def test_a_stop_order_without_a_reason_is_tagged_stop(frame_factory, run_script):
    import backtrader as bt

    closes = [100.0, 100.0, 97.0, 96.0, 96.0]
    lows = [100.0, 100.0, 97.0, 94.0, 96.0]
    frame = frame_factory(closes, lows=lows)
    script = {
        0: [("buy", {"size": 10.0})],
        1: [("sell", {"size": 10.0, "price": 95.0, "exectype": bt.Order.Stop})],
    }
    results = run_script(frame, script, cash=1_000.0)
    assert results.orders["reason"].tolist() == ["strategy", "stop"]
    assert results.trades["exit_reason"].tolist() == ["stop"]


def test_a_liquidated_trade_exits_with_reason_liquidation(frame_factory, run_script):
    closes = [100.0, 100.0, 85.0, 85.0]
    frame = frame_factory(closes, lows=[100.0, 100.0, 80.0, 85.0])
    results = run_script(frame, {0: [("buy", {"size": 10.0, "leverage": 10})]}, cash=1_000.0)
    assert results.trades["exit_reason"].tolist() == ["liquidation"]


def test_a_strategy_cannot_claim_the_liquidation_reason(frame_factory, run_script):
    from backtest.errors import PluginError

    frame = frame_factory([100.0] * 4)
    with pytest.raises(PluginError, match="'liquidation' is the broker's own"):
        run_script(frame, {0: [("buy", {"size": 1.0, "reason": "liquidation"})]}, cash=1_000.0)


# -- help shows every default ------------------------------------------------------------------


def _help_of(command):
    from backtest.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return subparsers.choices[command]


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_every_run_option_names_its_default_and_it_is_the_real_one(command):
    from backtest.engine import RunConfig

    defaults = RunConfig()
    parser = _help_of(command)
    helps = {
        option: action.help or "" for action in parser._actions for option in action.option_strings
    }
    expected = {
        "--symbol": defaults.symbol,
        "--exchange": defaults.exchange,
        "--timeframe": defaults.timeframe,
        "--strategy": defaults.strategy,
        "--cash": f"{defaults.cash:g}",
        "--leverage": f"{defaults.leverage:g}",
        "--margin-mode": defaults.margin_mode,
        "--fees": f"{defaults.maker_fee:g},{defaults.taker_fee:g}",
        "--slippage": f"default {defaults.slippage:g}",
        "--slippage-model": defaults.slippage_model,
    }
    for option, value in expected.items():
        assert value in helps[option], (option, helps[option])
    skipped = {"-h", "--help", "--json", "-q", "--quiet", "-v", "--verbose", "-g", "--grid"}
    for option, text in helps.items():
        if option.startswith("-") and option not in skipped and "repeatable" not in text:
            assert "default" in text, option


# -- signs -------------------------------------------------------------------------------------


def test_funding_paid_is_negative_in_console_json_csv_and_report(
    frame_factory, run_script, tmp_path
):
    from backtest.report import write_report
    from backtest.report.html import render_html

    # A long of 10 at 100 pays 10 x 100 x 0.001 = 1 at the settlement of bar 3.
    frame = frame_factory([100.0] * 6, funding={3: 0.001})
    script = {0: [("buy", {"size": 10.0})], 4: [("close", {})]}
    results = run_script(frame, script, cash=10_000.0)
    metrics = compute_metrics(results)
    assert metrics["Funding PnL [USDT]"] == pytest.approx(-1.0)
    assert "-1.00 USDT" in format_summary(metrics)
    write_report(results, tmp_path / "r")
    trades = pd.read_csv(tmp_path / "r" / "trades.csv")
    assert trades["funding_pnl"].tolist() == pytest.approx([-1.0])
    assert "funding" not in trades.columns
    equity = pd.read_csv(tmp_path / "r" / "equity.csv")
    assert equity["funding_pnl_cum"].iloc[-1] == pytest.approx(-1.0)
    page = render_html(results, metrics)
    assert "<th>Funding PnL</th>" in page and "<td>-1.00</td>" in page
    # Funding PnL 0.00 (not -0.00) when nothing was paid
    idle = compute_metrics(run_script(frame_factory([100.0] * 6, funding={3: 0.001}), {}))
    assert "-0.00" not in format_summary(idle)


# -- -v shows the program's steps --------------------------------------------------------------


def test_verbose_shows_the_programs_steps_and_no_library_debug(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "backtest", "run", "--strategy", "BuyAndHold"]
    command += ["--since", "2025-10-19", "--report", str(tmp_path / "run"), "-v"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    for step in ("settings:", "loading:", "map:", "engine:", "report: writing", "report: done"):
        assert step in done.stderr, step
    # matplotlib, PIL, asyncio ... log at DEBUG on import: none of it reaches the console
    for noise in ("matplotlib", "findfont", "PIL", "Using selector", "CONFIGDIR"):
        assert noise not in done.stderr, noise


# -- report: map lines as panels, own liquidation price inside the chart ----------------------


def test_the_own_liquidation_price_stays_inside_the_price_chart(frame_factory, run_script):
    from backtest.report.charts import main_figure

    # A 3x long of 10 at 100: its liquidation price (about 67) is far below the candles'
    # 99..104 range; the price axis must reach it.
    frame = frame_factory([100.0, 100.0, 101.0, 103.0, 104.0, 102.0])
    results = run_script(frame, {0: [("buy", {"size": 10.0, "leverage": 3})]}, cash=1_000.0)
    liquidation = results.equity["liquidation_price"].dropna()
    assert 60.0 < liquidation.min() < 70.0
    figure, _ = main_figure(results, "USDT")
    low, high = figure.layout.yaxis.range
    assert low <= liquidation.min() and high >= frame["high"].max()


def test_map_lines_are_drawn_as_panels_under_the_price(frame_factory, run_script, tmp_path):
    from backtest.errors import ConfigError
    from backtest.report import write_report
    from backtest.report.charts import main_figure

    frame = frame_factory([100.0] * 6)
    results = run_script(frame, {0: [("buy", {"size": 1.0})]}, cash=1_000.0)
    results.clusters = pd.DataFrame(
        {"cascade_risk": np.linspace(1.0, 1.5, 6), "long_band_notional": np.arange(6.0)},
        index=results.equity.index,
    )
    figure, _ = main_figure(results, "USDT", ["cascade_risk", "long_band_notional"])
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles[:3] == [
        "Price, trades and liquidation clusters",
        "Map: cascade_risk",
        "Map: long_band_notional",
    ]
    traces = {trace.name: trace for trace in figure.data}
    assert traces["cascade_risk"].yaxis == "y2" and traces["long_band_notional"].yaxis == "y3"
    assert traces["Equity"].yaxis == "y4"  # the account's panels move down
    plain, _ = main_figure(results, "USDT")
    assert {trace.name: trace for trace in plain.data}["Equity"].yaxis == "y2"
    with pytest.raises(ConfigError, match="not a line of this run's map; it has cascade_risk"):
        write_report(results, tmp_path / "bad", ["cascade"])
    assert not (tmp_path / "bad").exists()
