"""``python -m backtest download`` through backtest.cli.main: output, exit codes, bad input."""

from __future__ import annotations

import re
import shlex

import pytest
import recorded_venues as rv

from backtest import cli
from backtest.market import download as download_module
from backtest.market import store
from backtest.market.exchange import create_exchange

VENUES = {"binanceusdm": rv.binance_usdm_venue, "bybit": lambda: rv.Bybit(), "okx": rv.Okx}


@pytest.fixture
def offline(monkeypatch):
    """Make the command build real ccxt exchanges whose HTTP layer serves recorded data."""
    requests: dict[str, rv.RecordedHTTP] = {}

    def factory(exchange_id: str, **kwargs):
        if exchange_id not in VENUES:
            return create_exchange(exchange_id, **kwargs)  # the real error for unknown ids
        exchange, http = rv.offline_exchange(VENUES[exchange_id]())
        requests[exchange_id] = http
        return exchange

    monkeypatch.setattr(download_module, "create_exchange", factory)
    return requests


def test_download_command_then_load(tmp_path, offline, capsys):
    status = cli.main(
        [
            "download",
            "--exchange", "binanceusdm",
            "--symbol", "BTC/USDT:USDT",
            "--timeframe", "1h",
            "--since", "2025-10-09",
            "--until", "2025-10-12",
            "--series", "ohlcv,mark,funding",
            "--data-dir", str(tmp_path),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("binanceusdm BTC/USDT:USDT 1h candles: +72 rows, 72 stored")
    assert lines[1].startswith("binanceusdm BTC/USDT:USDT 1h mark: +72 rows")
    assert lines[2].startswith("binanceusdm BTC/USDT:USDT funding: +9 rows")
    assert lines[-1] == "done: 153 new rows in 3 series"
    frame = store.load_market("BTC/USDT:USDT", "1h", data_dir=tmp_path, since="2025-10-09")
    assert len(frame) == 72
    assert frame["mark_close"].notna().all() and frame["funding_rate"].notna().sum() == 9


def test_list_shows_the_bundled_sample(tmp_path, capsys):
    assert cli.main(["download", "--list", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # candles, mark, funding and the CoinGlass 4h truth and context (liquidations, oi, longshort)
    assert len(lines) == 13 and all(line.endswith("(bundled sample)") for line in lines)
    assert (
        "binanceusdm BTC/USDT:USDT 4h liquidations: 2195 rows, 2024-11-13 20:00 .. 2025-11-14 "
        "12:00 UTC (bundled sample)" in lines
    )
    assert lines[:4] == [
        "binanceusdm BTC/USDT:USDT funding: 366 rows, 2025-08-01 00:00 .. 2025-11-30 16:00 UTC "
        "(bundled sample)",
        "binanceusdm BTC/USDT:USDT 5m candles: 5760 rows, 2025-10-01 00:00 .. 2025-10-20 23:55 UTC "
        "(bundled sample)",
        "binanceusdm BTC/USDT:USDT 1h candles: 2928 rows, 2025-08-01 00:00 .. 2025-11-30 23:00 UTC "
        "(bundled sample)",
        "binanceusdm BTC/USDT:USDT 1h mark: 480 rows, 2025-10-01 00:00 .. 2025-10-20 23:00 UTC "
        "(bundled sample)",
    ]


def test_load_market_hint_is_a_valid_command(tmp_path):
    with pytest.raises(store.DataError) as caught:
        store.load_market("ETH/USDT:USDT", "15m", data_dir=tmp_path, since="2026-01-01")
    command = str(caught.value).split("download them with: ")[1]
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "backtest"]
    args = cli.build_parser().parse_args(words[3:])
    assert (args.exchange, args.symbols, args.timeframe, args.since) == (
        "binanceusdm",
        ["ETH/USDT:USDT"],
        "15m",
        "2026-01-01",
    )


BAD_INPUT = [
    (
        ["--exchange", "binanceusd"],
        r"unknown exchange 'binanceusd'; did you mean .*binanceusdm",
    ),
    (
        ["--symbol", "BTC/USDT:USD"],
        r"binanceusdm has no market 'BTC/USDT:USD'; did you mean BTC/USDT:USDT\?",
    ),
    (
        ["--symbol", "BTCUSDT"],
        r"use the ccxt unified symbol: BTC/USDT:USDT",
    ),
    (
        ["--exchange", "bybit", "--timeframe", "8h"],
        r"bybit has no '8h' candles; it offers 1m, 3m, 5m, .*, 1d, 1w, 1M$",
    ),
    (["--timeframe", "5min"], r"timeframe '5min' is not understood"),
    (
        ["--since", "2025-10-05", "--until", "2025-10-01"],
        r"--since 2025-10-05 00:00 is not before --until 2025-10-01 00:00; swap them",
    ),
    (["--since", "2200-01-01"], r"--since 2200-01-01 00:00 is in the future; pick a past date"),
    (
        ["--since", "2999-01-01"],
        r"--since 2999-01-01T00:00:00 lies outside 1970-01-01 .. 2262-04-11",
    ),
    (["--since", "01/10/2025"], r"--since '01/10/2025' is not a date; use YYYY-MM-DD"),
    (["--series", "ohlcv,trades"], r"unknown --series trades; use a comma-separated subset"),
    (["--retries", "0"], r"--retries must be at least 1"),
    (["--rate-limit-ms", "-5"], r"--rate-limit-ms must be >= 0, not -5"),
]


@pytest.mark.parametrize(("extra", "pattern"), BAD_INPUT, ids=lambda v: str(v)[:40])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, offline, capsys, extra, pattern):
    base = {"--exchange": "binanceusdm", "--symbol": "BTC/USDT:USDT", "--timeframe": "5m",
            "--since": "2025-10-09"}  # fmt: skip
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        base[flag] = value
    argv = ["download", "--data-dir", str(tmp_path / "data")]
    for flag, value in base.items():
        argv += [flag, value]
    status = cli.main(argv)
    _, err = capsys.readouterr()
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "Traceback" not in err
    assert re.search(pattern, err.strip()), err
    assert not (tmp_path / "data").exists()
    assert not any(http.calls("kline") for http in offline.values())


def test_missing_symbol(tmp_path, capsys):
    assert cli.main(["download", "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "error: no symbol given; add --symbol BTC/USDT:USDT (repeat for more)\n"
    )


def test_unwritable_data_folder(tmp_path, offline, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "data"
    status = cli.main(
        ["download", "--symbol", "BTC/USDT:USDT", "--since", "2025-10-09",
         "--data-dir", str(target)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert err == (
        f"error: cannot write to the data folder {target / 'binanceusdm'} (Not a directory); "
        "pick a writable folder with --data-dir\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_readonly_data_folder_when_not_root(tmp_path, offline, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        probe = folder / "probe"
        try:
            probe.mkdir()
            probe.rmdir()
            writable = True  # running as root: permissions do not stop us
        except PermissionError:
            writable = False
        status = cli.main(
            ["download", "--symbol", "BTC/USDT:USDT", "--since", "2025-10-09",
             "--until", "2025-10-10", "--series", "ohlcv", "--data-dir", str(folder)]
        )  # fmt: skip
        err = capsys.readouterr().err
        if writable:
            assert status == 0
        else:
            assert status == 2 and "cannot write to the data folder" in err
            assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_refused_request_is_one_line_with_exit_2(tmp_path, offline, capsys, monkeypatch):
    status_holder = {}

    def factory(exchange_id: str, **kwargs):
        exchange, http = rv.offline_exchange(rv.binance_usdm_venue())
        http.fail("refuse", "/fapi/v1/klines", times=9)
        status_holder["http"] = http
        return exchange

    monkeypatch.setattr(download_module, "create_exchange", factory)
    status = cli.main(
        ["download", "--symbol", "SOL/USDT:USDT", "--since", "2025-10-09",
         "--data-dir", str(tmp_path)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: binanceusdm fetching SOL/USDT:USDT candles failed: BadSymbol: ")
    assert err.count("\n") == 1
    assert len(status_holder["http"].calls("/fapi/v1/klines")) == 1
    assert not list(tmp_path.rglob("*.parquet"))
