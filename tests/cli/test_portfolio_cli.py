"""The run command with several symbols (flag or run file)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from backtest.cli import main
from backtest.results import Results

SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
SHORT = ["--since", "2025-10-08", "--until", "2025-10-09"]


def run_cli(capsys, *args):
    code = main(["run", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_symbol_list_flag_runs_a_portfolio_and_writes_its_report(tmp_path, capsys):
    folder = tmp_path / "pair"
    code, out, err = run_cli(
        capsys,
        "--symbol",
        ",".join(SYMBOLS),
        "--strategy",
        "ClusterRotation",
        *SHORT,
        "--json",
        "--report",
        str(folder),
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["symbol"] == ", ".join(SYMBOLS)
    assert "BTCUSDT_ETHUSDT" in summary["run_id"]
    rows = summary["symbols"]
    assert list(rows) == SYMBOLS
    assert sum(row["Trades"] for row in rows.values()) == summary["metrics"]["# Trades"]
    results = Results.load(folder)
    assert results.config["symbol"] == SYMBOLS and results.portfolio
    assert list(pd.read_csv(folder / "symbols.csv")["symbol"]) == SYMBOLS


def test_run_file_symbols_list(tmp_path, capsys):
    run_file = tmp_path / "pair.toml"
    run_file.write_text(
        'symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]\n'
        'strategy = "BuyAndHold"\nsince = "2025-10-08"\nuntil = "2025-10-09"\n'
    )
    code, _, err = run_cli(capsys, "--config", str(run_file), "-q", "--report", str(tmp_path / "r"))
    assert code == 0, err
    assert Results.load(tmp_path / "r").symbols == tuple(SYMBOLS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('symbol = "BTC/USDT:USDT"\nsymbols = ["ETH/USDT:USDT"]\n', "either symbol or symbols"),
        ('symbols = ["BTC/USDT:USDT", "BTC/USDT:USDT"]\n', "listed twice"),
        ("symbols = [1, 2]\n", "symbol must be a non-empty string"),
    ],
)
def test_bad_symbol_lists_end_in_one_line(tmp_path, capsys, text, expected):
    run_file = tmp_path / "bad.toml"
    run_file.write_text(text)
    code, out, err = run_cli(capsys, "--config", str(run_file), *SHORT)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0]
