"""Reports of portfolio runs: account metrics, a row per symbol, symbols in the trade list."""

from __future__ import annotations

import functools
import json
import logging

import pandas as pd
import pytest

from backtest.engine import RunConfig, run
from backtest.report import compute_metrics, write_report
from backtest.report.portfolio import symbol_metrics

SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]


@functools.cache
def portfolio_results():
    logging.getLogger("backtest.warmup").setLevel(logging.ERROR)
    config = RunConfig(
        symbol=SYMBOLS,
        strategy="ClusterRotation",
        since="2025-10-06",
        until="2025-10-13",
        leverage=5.0,
        margin_mode="cross",
        params={"exposure": 1.5},
    )
    return run(config)


def test_symbol_rows_add_up_to_the_account():
    results = portfolio_results()
    metrics = compute_metrics(results)
    table = symbol_metrics(results).set_index("symbol")
    assert list(table.index) == SYMBOLS
    assert metrics["Symbol"] == ", ".join(SYMBOLS)
    assert table["Trades"].sum() == metrics["# Trades"] == len(results.trades) > 0
    assert (table["Trades"] > 0).all(), "the window should trade both symbols"
    assert table["Fees"].sum() == pytest.approx(metrics["Fees [USDT]"])
    assert table["Funding PnL"].sum() == pytest.approx(metrics["Funding PnL [USDT]"])
    for symbol in SYMBOLS:
        own = results.trades[results.trades["symbol"] == symbol]
        assert table.loc[symbol, "Closed-Trade PnL"] == pytest.approx(own["pnl_net"].sum())
        market = results.market[results.market["symbol"] == symbol]["close"]
        assert table.loc[symbol, "Buy & Hold Return [%]"] == pytest.approx(
            (market.iloc[-1] / market.iloc[0] - 1.0) * 100.0
        )
    assert metrics["Buy & Hold Return [%]"] == pytest.approx(table["Buy & Hold Return [%]"].mean())
    closest = table["Closest Liquidation Distance [%]"].min()
    assert metrics["Closest Liquidation Distance [%]"] == pytest.approx(closest)
    # The account's equity is the run's, not one symbol's.
    assert metrics["Equity Final [USDT]"] == results.equity["value"].iloc[-1]


def test_the_report_shows_each_symbol(tmp_path):
    results = portfolio_results()
    page = write_report(results, tmp_path).read_text(encoding="utf-8")
    for number, symbol in enumerate(SYMBOLS):
        assert f'<h3 class="symbol">{symbol}</h3>' in page
        assert ('id="chart-main"' if number == 0 else f'id="chart-main-{number}"') in page
    assert 'id="symbols"' in page and "<th>Symbol</th>" in page
    trades = page.split('id="trades"', 1)[1]
    assert all(f"<td>{symbol}</td>" in trades for symbol in SYMBOLS)
    table = pd.read_csv(tmp_path / "symbols.csv")
    assert list(table["symbol"]) == SYMBOLS
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["# Trades"] == len(results.trades)
    assert set(pd.read_csv(tmp_path / "trades.csv")["symbol"]) == set(SYMBOLS)
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_one_symbols_view_is_a_single_market_run():
    results = portfolio_results()
    view = results.for_symbol(SYMBOLS[1])
    assert not view.portfolio and view.config["symbol"] == SYMBOLS[1]
    assert "symbol" not in view.trades.columns and len(view.market) == len(results.equity)
    eth = results.positions[results.positions["symbol"] == SYMBOLS[1]]
    assert (view.equity["position_size"].to_numpy() == eth["position_size"].to_numpy()).all()
    with pytest.raises(Exception, match="not 'SOL/USDT:USDT'"):
        results.for_symbol("SOL/USDT:USDT")


def test_the_portfolio_report_draws_every_chart_offline_in_chromium(tmp_path):
    import time

    from tests.report.test_browser import PAGE_STATE, TIMEOUT, DevTools, find_browser

    browser = find_browser()
    if browser is None:
        pytest.skip("Chromium not found: install it (`apt-get install -y chromium`)")
    results = portfolio_results()
    page = write_report(results, tmp_path / "run")
    tools = DevTools(browser, tmp_path / "profile")
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.send(f"{domain}.enable", session=session)
        tools.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            session,
        )
        tools.send("Page.navigate", {"url": page.resolve().as_uri()}, session)
        tools.wait_for("Page.loadEventFired")
        deadline = time.monotonic() + TIMEOUT
        state = tools.evaluate(session, PAGE_STATE)
        while time.monotonic() < deadline and not (
            len(state["charts"]) == 3 and all(chart["svgs"] >= 2 for chart in state["charts"])
        ):
            time.sleep(0.2)
            state = tools.evaluate(session, PAGE_STATE)
        symbol_rows = tools.evaluate(
            session, "document.querySelectorAll('#symbols tbody tr').length"
        )
    finally:
        tools.close()
    errors = [
        event
        for event in tools.events
        if event.get("method") == "Runtime.exceptionThrown"
        or (
            event.get("method") == "Runtime.consoleAPICalled"
            and event["params"].get("type") in ("error", "assert")
        )
    ]
    assert errors == []
    charts = {chart["id"]: chart for chart in state["charts"]}
    assert set(charts) == {"chart-main", "chart-main-1", "chart-trades"}
    for name in ("chart-main", "chart-main-1"):  # one price chart per symbol, each drawn
        assert charts[name]["svgs"] >= 2 and charts[name]["heatmaps"] >= 1
        assert charts[name]["candles"] > 100
    assert state["tradeRows"] == len(results.trades)
    assert symbol_rows == len(SYMBOLS)
    assert state["externals"] == []
