"""``python -m backtest import``: what it prints, its exit codes and its help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backtest import cli
from backtest.market.series import load_liquidations

GT = Path(__file__).parent / "fixtures" / "groundtruth"
BTC = "BTC/USDT:USDT"


def test_import_prints_what_it_stored(tmp_path, capsys):
    status = cli.main(
        [
            "import",
            "liquidations",
            str(GT / "binance_BTC_liquidations_4h_merged.csv"),
            "--symbol",
            BTC,
            "--data-dir",
            str(tmp_path),
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert "binanceusdm BTC/USDT:USDT 4h liquidations (coinglass layout): 24 bars read" in out
    assert "(2025-10-09 00:00 .. 2025-10-12 20:00 UTC, bar open times)" in out
    assert "BTC_USDT_USDT-4h-liquidations.parquet" in out
    assert len(load_liquidations(BTC, "4h", data_dir=tmp_path)) == 24


def test_import_options_reach_the_reader(tmp_path, capsys):
    status = cli.main(
        [
            "import",
            "open-interest",
            str(GT / "perexchange_BTC_open_interest_usd_merged.csv"),
            "--symbol",
            BTC,
            "--exchange",
            "okx",
            "--venue",
            "BYBIT",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert status == 0
    assert (tmp_path / "okx" / "BTC_USDT_USDT-4h-oi.parquet").is_file()
    status = cli.main(
        [
            "import",
            "liquidations",
            str(GT / "binance_BTCUSDT_1h_coinalyze.csv"),
            "--symbol",
            BTC,
            "--utc-offset",
            "0",
            "--data-dir",
            str(tmp_path),
        ]
    )
    out, _ = capsys.readouterr()
    assert status == 0 and "(2024-06-20 03:00 .." in out  # labels kept as UTC


def test_a_bad_file_is_one_error_line_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,long,short\n2025-10-10 00:00,1,2\n2025-10-10 04:00,-1,2\n")
    status = cli.main(
        ["import", "liquidations", str(bad), "--symbol", BTC, "--data-dir", str(tmp_path / "d")]
    )
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "bad.csv" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "liquidations", "x.csv"],  # no --symbol
        ["import", "funding", "x.csv", "--symbol", BTC],  # unknown kind
        ["import", "liquidations", "x.csv", "--symbol", BTC, "--layout", "excel"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 2
    assert "usage: backtest import" in capsys.readouterr().err


def test_missing_file_exit_2(tmp_path, capsys):
    status = cli.main(["import", "liquidations", str(tmp_path / "nope.csv"), "--symbol", BTC])
    assert status == 2 and "nope.csv does not exist" in capsys.readouterr().err


def test_help_shows_every_default_and_layout():
    result = subprocess.run(
        [sys.executable, "-m", "backtest", "import", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = " ".join(result.stdout.split())
    for expected in (
        "(default: binanceusdm)",
        "(default: auto, recognised by the header)",
        "(default: $BACKTEST_DATA or ./data)",
        "(default: global_account)",
        "default: bar_close",
        "(default: inferred from the row spacing",
        "default: 0, or 6 for the coinalyze-ohlcv layout",
        "(default: off;",
        "(default: the layout's description)",
        "(default: from --exchange",
        "bar's OPEN time in UTC",
    ):
        assert expected in text, expected
    for layout in ("coinglass:", "coinglass-exchanges:", "coinglass-symbols:", "coinalyze:"):
        assert layout in text
    assert "coinalyze-ohlcv:" in text and "plain:" in text
