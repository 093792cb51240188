import json
import subprocess
import sys

import pytest

from backtest.cli import main
from backtest.liquidation.prices import OtherPosition, liquidation_price
from backtest.liquidation.tiers import list_snapshots, load_tiers


def run_json(capsys, *args):
    assert main(["price", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_without_arguments_prints_an_example(capsys):
    assert main(["price"]) == 0
    out = capsys.readouterr().out
    latest = list_snapshots("binanceusdm")[-1]
    assert out.startswith("Example position")
    assert "BTC/USDT:USDT  long 0.5 @ 85,000.00  10x isolated" in out
    assert f"binanceusdm {latest.effective_date}" in out
    expected = liquidation_price("binance", "long", 85_000.0, 0.5, 10.0, tiers=load_tiers())
    assert f"{expected:,.2f} USDT" in out
    assert "% from entry" in out and "bracket" in out


def test_position_arguments_reach_the_library(capsys):
    result = run_json(
        capsys,
        *("--side", "short", "--entry", "2500", "--leverage", "20", "--quantity", "40"),
        *("--symbol", "ETH/USDT:USDT", "--at", "2025-10-10"),
    )
    tiers = load_tiers("ETH/USDT:USDT", at="2025-10-10")
    assert result["snapshot_date"] == "2025-10-07"  # freqtrade 2025.9.1's table
    assert result["liquidation_price"] == liquidation_price(
        "binance", "short", 2500.0, 40.0, 20.0, tiers=tiers
    )
    assert result["distance_pct"] == pytest.approx(
        (result["liquidation_price"] / 2500.0 - 1.0) * 100.0
    )
    bracket = tiers.tier_for_notional(40.0 * result["liquidation_price"])
    assert result["maintenance_margin_rate"] == bracket.maintenance_margin_rate
    assert result["bracket"] == tiers.tiers.index(bracket) + 1


def test_notional_instead_of_quantity(capsys):
    result = run_json(capsys, "--entry", "50000", "--notional", "1000000", "--leverage", "20")
    assert result["quantity"] == pytest.approx(20.0)
    assert result["notional"] == pytest.approx(1_000_000.0)


def test_inverse_round_trips(capsys):
    result = run_json(capsys, "--inverse-at", "80000", "--quantity", "1", "--leverage", "10")
    assert result["liquidation_price"] == pytest.approx(80_000.0, rel=1e-12)
    assert result["entry_price"] > 80_000.0
    assert main(["price", "--inverse-at", "80000"]) == 0
    assert "entry for liquidation at" in capsys.readouterr().out


def test_cross_mode_with_other_positions(capsys):
    args = ("--margin-mode", "cross", "--wallet-balance", "10000")
    alone = run_json(capsys, *args)
    other = run_json(capsys, *args, "--other", "10,3000,2800,0.005,50")
    expected = liquidation_price(
        "binance",
        "long",
        85_000.0,
        0.5,
        10.0,
        tiers=load_tiers(),
        margin_mode="cross",
        wallet_balance=10_000.0,
        other_positions=[OtherPosition(10.0, 3000.0, 2800.0, 0.005, 50.0)],
    )
    assert other["liquidation_price"] == expected
    assert other["liquidation_price"] > alone["liquidation_price"]


def test_other_venue_with_explicit_rate(capsys):
    result = run_json(
        capsys,
        *("--venue", "hyperliquid", "--entry", "66930", "--quantity", "0.0015"),
        *("--leverage", "5", "--wallet-balance", "20.043862", "--max-leverage", "50"),
    )
    assert result["liquidation_price"] == pytest.approx(54108.51043771, rel=1e-4)
    assert result["snapshot_date"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--venue", "binanse"], "did you mean 'binance'?"),
        (["--leverage", "200"], "allowed range is (0, 150]"),
        (["--side", "sideways"], "unknown side 'sideways'"),
        (["--quantity", "-1"], "quantity must be a finite number > 0"),
        (["--symbol", "BTC/USDT"], "did you mean 'BTC/USDT:USDT'?"),
        (["--other", "1,2,3"], "must be QTY,ENTRY,MARK,MMR,CUM[,SIDE]"),
        (["--venue", "okx"], "needs maintenance_margin_rate"),
        (["--notional", "0"], "--notional must be > 0"),
        (["--at", "someday"], "not a date"),
    ],
)
def test_user_errors_end_in_one_line(capsys, args, message):
    assert main(["price", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]


def test_module_entry_point():
    completed = subprocess.run(
        [sys.executable, "-m", "backtest", "price", "--side", "short", "--leverage", "25"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "liquidation price" in completed.stdout
    assert "(+" in completed.stdout  # a short's liquidation is above entry
