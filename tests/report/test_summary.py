"""The console summary and the formatting of metric values."""

from __future__ import annotations

import json
import math

from backtest.report import compute_metrics, format_summary
from backtest.report.summary import format_value


def test_format_value_follows_the_unit():
    assert format_value("# Trades", 1234) == "1,234"
    assert format_value("Return [%]", 12.3456) == "12.35"
    assert format_value("Fees [USDT]", 12345.678) == "12,345.68"
    assert format_value("Max. Drawdown Duration [h]", 250.333) == "250.3"
    assert format_value("Sharpe", math.nan) == "n/a"
    assert format_value("Sharpe", None) == "n/a"
    assert format_value("Start", "2025-10-01T00:05:00+00:00") == "2025-10-01 00:05 UTC"
    assert format_value("Strategy", "ClusterFade") == "ClusterFade"


def test_summary_lists_the_headline_numbers(sample_results):
    metrics = compute_metrics(sample_results)
    text = format_summary(metrics)
    lines = text.splitlines()
    assert lines[0] == "HandMade BTC/USDT:USDT 5m"
    assert lines[1] == "2025-10-01 00:00 → 2025-10-20 23:55"
    rows = {line.split("  ")[0]: line for line in lines[3:]}
    assert f"{metrics['Return [%]']:+.2f} %" in rows["Return"]
    assert f"{metrics['Buy & Hold Return [%]']:+.2f} %" in rows["Buy & hold"]
    assert f"{metrics['Max. Drawdown [%]']:+.2f} %" in rows["Max. drawdown"]
    assert f"{metrics['Sharpe']:.2f}" in rows["Sharpe"]
    assert rows["Trades"].split()[-1] == str(len(sample_results.trades))
    assert rows["Own liquidations"].split()[-1] == "1"
    assert rows["Funding PnL"].endswith(f"{metrics['Funding PnL [USDT]']:,.2f} USDT")
    assert rows["Fees"].endswith(f"{metrics['Fees [USDT]']:,.2f} USDT")
    widths = {len(line) for line in lines[3:] if not line.endswith(("USDT", "%", "x"))}
    assert len(widths) == 1  # unit-less values are right-aligned in one column


def test_summary_reads_metrics_json_with_nulls():
    metrics = json.loads(
        '{"Strategy": "Idle", "Return [%]": 0.0, "Sharpe": null, "# Trades": 0,'
        ' "Funding PnL [USDC]": -1.5}'
    )
    text = format_summary(metrics)
    assert "Sharpe" in text and "n/a" in text
    assert "-1.50 USDC" in text
    assert "Fees" not in text  # missing metrics are left out
    assert format_summary({}) == ""
