"""`download` and the imported series: open interest of another scope is never mixed in.

Liquidation history is not downloaded: none of the venues the downloader supports (Binance
USD-M, Bybit, OKX) serves it through a public ccxt method (``has['fetchLiquidations']``), which
the last test pins so a ccxt upgrade that adds it is noticed.
"""

from __future__ import annotations

import recorded_venues as rv
from test_download import BTC, run, venue_with_btc

from backtest.market import store
from backtest.market.exchange import create_exchange
from backtest.market.series import import_series


def test_download_leaves_an_imported_open_interest_file_alone(tmp_path):
    venue = venue_with_btc(rv.BinanceUsdm)
    hours = [int(row[0]) for row in rv.candles_1h()]
    venue.open_interest = {
        ("BTCUSDT", "1h"): [[str(t), "80000.5", "8800000000"] for t in hours]  # constructed
    }
    export = tmp_path / "oi.csv"
    export.write_text(
        "time,open_interest\n" + "".join(f"{t},{1e10 + i}\n" for i, t in enumerate(hours[:5]))
    )
    imported = import_series(export, kind="open-interest", symbol=BTC, data_dir=tmp_path)
    before = imported.path.read_bytes()
    results, http, _ = run(venue, tmp_path, timeframe="1h", series=("ohlcv", "open_interest"))
    interest = results[1]
    assert interest.series == "open_interest" and interest.rows_added == 0
    assert "holds an imported series" in interest.describe()
    assert imported.path.read_bytes() == before
    assert http.calls("openInterestHist") == []
    assert store.read_series(imported.path, "open_interest").attrs["layout"] == "plain"


def test_no_supported_venue_serves_public_liquidation_history():
    for exchange_id in ("binanceusdm", "bybit", "okx"):
        exchange = create_exchange(exchange_id)
        assert not exchange.has.get("fetchLiquidations"), exchange_id
        assert exchange.has.get("fetchOpenInterestHistory"), exchange_id
