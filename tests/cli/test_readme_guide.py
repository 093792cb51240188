"""The README's plugin example is run as written, so the guide cannot rot."""

import re
from pathlib import Path

import pandas as pd

from backtest.cli import main
from backtest.liquidation.heatmap import LiquidationMap
from backtest.market.store import load_market
from backtest.results import Results

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(marker: str, language: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(marker)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"no {language} block after {marker}"
    return match.group(1)


def test_plugin_example_from_readme_runs_and_trades_as_described(tmp_path, capsys, monkeypatch):
    code = readme_block("<!-- plugin-example", "python")
    filename = code.splitlines()[0].removeprefix("# ").strip()
    assert filename == "strategies/flush_buyer.py"
    (tmp_path / "strategies").mkdir()
    (tmp_path / filename).write_text(code)
    monkeypatch.chdir(tmp_path)

    assert main(["strategies"]) == 0
    listing = capsys.readouterr().out
    assert "FlushBuyer" in listing and "-p min_liquidated=1000000.0" in listing

    commands = readme_block("<!-- plugin-example", "sh").splitlines()
    run_line = next(line for line in commands if " run " in line)
    arguments = run_line.split("#")[0].split()[3:]  # drop "python -m backtest"
    assert main(arguments) == 0, capsys.readouterr().err
    results = Results.load(tmp_path / "reports" / "flush")
    assert results.complete and results.config["leverage"] == 5.0
    assert len(results.trades) >= 1

    # every entry follows a bar whose estimated long liquidations reached 2.5e6 USDT
    frame = load_market("BTC/USDT:USDT", "5m")
    liq_long = LiquidationMap().run(frame).lines.liq_long
    previous_bar = dict(zip(frame.index[1:], frame.index[:-1], strict=True))
    for entry in results.trades.entry_time:
        assert liq_long[previous_bar[entry]] >= 2.5e6


def test_portfolio_example_from_readme_trades_both_symbols_on_closed_hours(
    tmp_path, capsys, monkeypatch
):
    from backtest.engine.resample import resample_frame

    code = readme_block("<!-- portfolio-example", "python")
    filename = code.splitlines()[0].removeprefix("# ").strip()
    assert filename == "strategies/hourly_pair.py"
    (tmp_path / "strategies").mkdir()
    (tmp_path / filename).write_text(code)
    monkeypatch.chdir(tmp_path)

    commands = readme_block("<!-- portfolio-example", "sh").splitlines()
    run_line = next(line for line in commands if " run " in line)
    arguments = run_line.split("#")[0].split()[3:]  # drop "python -m backtest"
    assert main(arguments) == 0, capsys.readouterr().err
    results = Results.load(tmp_path / "reports" / "pair")
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert results.complete and list(results.symbols) == symbols
    assert set(results.trades["symbol"]) == set(symbols)

    # Every buy follows a bar whose last *closed* hour was up and whose own map showed no long
    # cluster within 1 % (the order fills on the next bar's open).
    for symbol in symbols:
        frame = load_market(symbol, "5m")
        hours = resample_frame(frame, "1h", "5m")
        previous_bar = dict(zip(frame.index[1:], frame.index[:-1], strict=True))
        lines = results.clusters[results.clusters["symbol"] == symbol]
        buys = results.orders[
            (results.orders["symbol"] == symbol) & (results.orders["side"] == "buy")
        ]
        assert len(buys) >= 1
        for time in buys["time"]:
            decided = previous_bar[time]
            hour = hours[hours.index <= decided].iloc[-1]  # stamped at its last 5m bar
            assert hour["period_start"] + pd.Timedelta("1h") <= decided + pd.Timedelta("5min")
            assert hour["close"] > hour["open"]
            assert lines.loc[decided, "long_cluster_distance_pct"] >= 1.0
