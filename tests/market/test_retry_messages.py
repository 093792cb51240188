"""Issue 13: a download says that it is retrying while it retries (markets and candles alike)."""

from __future__ import annotations

import recorded_venues as rv

from backtest.market.download import download

BTC = "BTC/USDT:USDT"
NOW = 1760225400000  # 2025-10-11 23:30 UTC


def _venue():
    return rv.BinanceUsdm(
        candles={("BTCUSDT", "5m"): rv.candles_5m()},
        mark={},
        funding={"BTCUSDT": rv.funding()},
    )


def _download(exchange, folder, lines, sleeps):
    download(
        "binanceusdm",
        [BTC],
        "5m",
        since="2025-10-11",
        data_dir=folder,
        series=["ohlcv"],
        exchange=exchange,
        clock=lambda: NOW,
        sleep=sleeps.append,
        log=lines.append,
        tiers=False,
    )


def test_a_retried_market_list_is_announced(tmp_path):
    exchange, http = rv.offline_exchange(_venue(), ohlcv=200)
    http.fail("timeout", "/fapi/v1/exchangeInfo")
    lines: list[str] = []
    sleeps: list[float] = []
    _download(exchange, tmp_path, lines, sleeps)
    assert sleeps == [1.0]
    assert any("trying again in 1.0 s (retry 1)" in line for line in lines), lines


def test_a_retried_candle_page_is_announced(tmp_path):
    exchange, http = rv.offline_exchange(_venue(), ohlcv=200)
    http.fail("timeout", "/fapi/v1/klines", skip=1)
    lines: list[str] = []
    sleeps: list[float] = []
    _download(exchange, tmp_path, lines, sleeps)
    assert sleeps == [1.0]
    assert any("trying again" in line for line in lines), lines
