"""The report folder: self-contained page, escaped user text, files beside it, light large runs."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from backtest.report import compute_metrics, write_report
from backtest.report.html import render_html
from backtest.report.metrics import monthly_returns
from backtest.results import Results

from .conftest import synthetic_clusters

BENCH_MONTH = Path(__file__).parents[1] / "bench" / "data" / "binance_BTC_USDT-1m-2025-07.parquet"
EVIL = "<script>alert(1)</script>"


def plotly_figures(page: str) -> dict[str, list[dict]]:
    """Return each figure's traces, decoded from the page's Plotly.newPlot calls."""
    figures = {}
    decoder = json.JSONDecoder()
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        traces, _ = decoder.raw_decode(page[match.end() :])
        figures[match.group(1)] = traces
    return figures


def without_plotly_js(page: str) -> str:
    """Return the page minus the inlined plotly.js bundle (whose strings mention map tiles)."""
    start = page.index("<script>")
    end = page.index("</script>", start)
    assert "plotly.js v" in page[start:end]
    return page[:start] + page[end:]


def drawn_length(values) -> int:
    if isinstance(values, dict):  # plotly's binary array encoding
        return int(np.prod(values.get("shape", [len(values["bdata"])])))
    return len(values)


@pytest.fixture(scope="module")
def report(sample_results, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    page = write_report(sample_results, folder)
    return folder, page, page.read_text(encoding="utf-8")


def test_write_report_writes_every_file(report, sample_results):
    folder, page, _ = report
    assert page == folder / "report.html"
    for name in ("report.html", "metrics.json", "equity.csv", "trades.csv", "report.png"):
        assert (folder / name).stat().st_size > 0, name
    assert not list(folder.glob("*.tmp"))


def test_metrics_json_holds_every_metric_with_nan_as_null(report, sample_results):
    folder, _, _ = report

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    saved = json.loads((folder / "metrics.json").read_text(), parse_constant=refuse)
    computed = compute_metrics(sample_results)
    assert list(saved) == list(computed)
    for key, value in computed.items():
        if isinstance(value, float) and math.isnan(value):
            assert saved[key] is None, key
        else:
            assert saved[key] == value, key


def test_csv_files_round_trip(report, sample_results):
    folder, _, _ = report
    equity = pd.read_csv(folder / "equity.csv", parse_dates=["time"], index_col="time")
    assert len(equity) == len(sample_results.equity)
    np.testing.assert_allclose(equity["value"], sample_results.equity["value"])
    assert equity.index[0] == sample_results.equity.index[0]
    trades = pd.read_csv(folder / "trades.csv")
    assert len(trades) == len(sample_results.trades)
    np.testing.assert_allclose(trades["pnl_net"], sample_results.trades["pnl_net"])
    assert trades["liquidated"].sum() == 1


def test_png_is_a_readable_picture(report):
    folder, _, _ = report
    pixels = imread(folder / "report.png")
    assert pixels.shape[:2] == (900, 1400)
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_page_is_self_contained(report):
    _, page, text = report
    assert text.startswith("<!DOCTYPE html>")
    # Outside the plotly.js bundle nothing loads or links anything: no src=, href=, URL.
    own = without_plotly_js(text)
    assert re.search(r"<[^>]+\s(src|href)\s*=", own) is None
    assert "http://" not in own and "https://" not in own and "<link" not in own
    # plotly.js is inlined exactly once and both figures are drawn by it.
    assert text.count("plotly.js v") == 1
    assert set(plotly_figures(text)) == {"chart-main", "chart-trades"}
    assert page.stat().st_size < 7_000_000


def test_page_shows_the_runs_numbers(report, sample_results):
    folder, _, text = report
    metrics = json.loads((folder / "metrics.json").read_text())
    row = re.search(r'<tr data-key="Return \[%\]"><th>[^<]*</th><td>([^<]*)</td>', text)
    assert row is not None
    assert float(row.group(1)) == pytest.approx(metrics["Return [%]"], abs=0.005)
    trade_list = text[text.index('id="trades"') :]
    assert trade_list.count(">LIQUIDATED<") == 1  # the liquidated trade is marked
    assert text.count("<tr><td>") >= len(sample_results.trades)
    for key in ("margin_mode", "taker_fee", "params.note"):
        assert f"<th>{key}</th>" in text


def test_monthly_table_matches_the_monthly_returns(report, sample_results):
    _, _, text = report
    october = monthly_returns(sample_results.equity["value"]).loc[2025, "Oct"]
    table = text[text.index('id="monthly"') :]
    assert f"{october:+.2f}" in table[: table.index("</table>")]


def test_main_chart_draws_prices_trades_liquidations_and_clusters(report, sample_results):
    _, _, text = report
    traces = {trace.get("name"): trace for trace in plotly_figures(text)["chart-main"]}
    assert traces["Liquidation clusters"]["type"] == "heatmap"
    assert traces["Price"]["type"] == "candlestick"
    assert drawn_length(traces["Own liquidation"]["x"]) == 1
    entries = drawn_length(traces["Long entry"]["x"]) + drawn_length(traces["Short entry"]["x"])
    assert entries == len(sample_results.trades)
    for name in ("Equity", "Buy & hold", "Drawdown", "Funding PnL", "Fees", "Trading PnL"):
        assert name in traces, name
    assert "Exposure" in traces and "Margin use" in traces
    assert "saved without density snapshots" in text


def test_user_text_is_escaped_everywhere(simulate_run, market, tmp_path):
    results = simulate_run(market, strategy=EVIL)
    results.config["params"] = {EVIL: EVIL}
    results.meta.update(status="failed", error=f"strategy raised {EVIL}")
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    assert EVIL not in text
    assert "alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'id="failed"' in text  # the failed run is announced


def test_a_run_without_trades_map_or_market_still_renders(tmp_path):
    index = pd.date_range("2025-10-01", periods=50, freq="1h", tz="UTC")
    results = Results(
        config={"symbol": "BTC/USDT:USDT"},
        meta={"strategy": "Idle", "status": "complete"},
        equity=pd.DataFrame({"value": 1000.0, "position_size": 0.0}, index=index),
    )
    text = write_report(results, tmp_path / "idle").read_text(encoding="utf-8")
    assert "No trades." in text
    assert "chart-trades" not in text
    assert "No candles were saved" in text
    render_html(Results(), compute_metrics(Results()))  # nothing at all: no exception


def test_a_year_of_one_minute_bars_stays_light(tmp_path):
    month = pd.read_parquet(BENCH_MONTH).drop(columns="timestamp_ms")
    count = 525_600
    market = pd.concat([month] * (count // len(month) + 1), ignore_index=True).iloc[:count]
    market.index = pd.date_range("2025-01-01", periods=count, freq="min", tz="UTC")
    rng = np.random.default_rng(3)
    value = 10_000 * np.exp(np.cumsum(rng.normal(0, 4e-4, count)))
    size = np.where((np.arange(count) // 7_000) % 2 == 0, 0.05, 0.0)
    close = market["close"].to_numpy()
    equity = pd.DataFrame(
        {
            "value": value,
            "position_size": size,
            "effective_leverage": size * close / value,
            "margin_used": size * close / 3,
            "liquidation_price": np.where(size > 0, close * 0.7, np.nan),
            "funding_cum": np.cumsum(rng.normal(0, 0.01, count)),
            "fees_cum": np.arange(count) * 1e-3,
        },
        index=market.index,
    )
    results = Results(
        config={"symbol": "BTC/USDT:USDT", "timeframe": "1m"},
        meta={"strategy": "Year", "status": "complete"},
        equity=equity,
        market=market,
        clusters=synthetic_clusters(market),
    )
    page = write_report(results, tmp_path / "year")
    assert page.stat().st_size < 7_000_000
    saved = json.loads((tmp_path / "year" / "metrics.json").read_text())
    assert saved["Bars"] == count  # computed on every bar ...
    text = page.read_text(encoding="utf-8")
    for trace in plotly_figures(text)["chart-main"]:  # ... drawn on a few thousand
        assert drawn_length(trace["x"]) <= 2400, trace.get("name")
    assert "Candles are merged by" in text
