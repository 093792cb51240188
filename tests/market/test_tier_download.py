"""``download`` stores the venues' leverage tiers (Bybit, OKX, Hyperliquid) as dated snapshots.

ccxt's own request building and parsing run; only the HTTP transport answers from
``fixtures/venue_tiers.json`` (constructed in each venue's documented response shape, see its
``_note``).  Failures are injected at the same layer.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from typing import Any

import pytest

from backtest import cli
from backtest.errors import ConfigError, ExchangeError
from backtest.liquidation.tiers import load_tiers, store_tiers_dir
from backtest.market.download import download
from backtest.market.exchange import RetryPolicy
from backtest.market.tier_download import HYPERLIQUID_BRACKET_CAP, download_tiers
from tests.market import recorded_venues as rv

NOW = 1_760_140_800_000  # 2025-10-11 00:00 UTC
TODAY = "2025-10-11"
BTC = "BTC/USDT:USDT"


class HyperliquidVenue(rv.Venue):
    """``api.hyperliquid.xyz/info`` (POST, JSON body): market lists, nothing else needed."""

    exchange_id = "hyperliquid"

    def refusal(self) -> tuple[int, Any]:
        return 422, {"error": "Failed to deserialize the JSON body"}

    def respond(self, path, body, transform):
        kind = body.get("type")
        if kind == "metaAndAssetCtxs":
            meta = {"universe": rv.TIERS["hyperliquid_universe"], "marginTables": []}
            return 200, [meta, rv.TIERS["hyperliquid_asset_ctxs"]]
        if kind in ("spotMetaAndAssetCtxs",):
            return 200, [{"universe": [], "tokens": []}, []]
        if kind == "spotMeta":
            return 200, {"universe": [], "tokens": []}
        if kind == "perpDexs":
            return 200, [None]
        return self.refusal()


class PostHTTP(rv.RecordedHTTP):
    """The recorded transport, passing a POST's JSON body to the venue as its query."""

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        from urllib.parse import urlsplit

        path = urlsplit(request.url).path
        body = json.loads(request.body or b"{}")
        self.requests.append(rv.Request(path, body))
        for fault in self.faults:
            if fault.applies(path) and fault.kind == "refuse":
                status, answer = self.venue.refusal()
                return self._response(request, status, json.dumps(answer))
        status, answer = self.venue.respond(path, body, lambda rows: rows)
        return self._response(request, status, json.dumps(answer))


def hyperliquid_exchange():
    from backtest.market.exchange import create_exchange

    exchange = create_exchange("hyperliquid", rate_limit_ms=0)
    http = PostHTTP(HyperliquidVenue())
    exchange.session.mount("https://", http)
    return exchange, http


def loaded(venue: rv.Venue):
    exchange, http = rv.offline_exchange(venue)
    exchange.load_markets()
    return exchange, http


def read_document(path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def test_bybit_risk_limits_become_a_checked_snapshot(tmp_path):
    exchange, http = loaded(rv.Bybit())
    result = download_tiers(exchange, [BTC, "ETH/USDT:USDT"], tmp_path, clock=lambda: NOW)
    assert result.path == store_tiers_dir(tmp_path) / f"bybit-{TODAY}.json.gz"
    assert [call.query["symbol"] for call in http.calls("/v5/market/risk-limit")] == [
        "BTCUSDT",
        "ETHUSDT",
    ]
    tiers = load_tiers(BTC, "bybit", at=TODAY, directory=store_tiers_dir(tmp_path))
    raw = rv.TIERS["bybit_risk_limit"]["BTCUSDT"]
    assert [tier.max_notional for tier in tiers.tiers] == [float(r["riskLimitValue"]) for r in raw]
    assert [tier.min_notional for tier in tiers.tiers] == [0.0, 2_000_000.0, 2_600_000.0]
    assert [tier.maintenance_margin_rate for tier in tiers.tiers] == [0.005, 0.0056, 0.0062]
    assert [tier.max_leverage for tier in tiers.tiers] == [100.0, 89.28, 80.64]
    # mmDeduction is Bybit's maintenance amount: stored and checked against the recomputed cum
    assert [tier.cum for tier in tiers.tiers] == [0.0, 1200.0, 2760.0]
    assert read_document(result.path)["tiers"][BTC][1][4] == 1200.0
    assert "ccxt" in read_document(result.path)["source"]


def test_okx_contract_tiers_are_converted_to_usdt_at_the_last_price(tmp_path):
    venue = rv.Okx(candles={("BTCUSDT", "5m"): rv.candles_5m()})
    exchange, http = loaded(venue)
    result = download_tiers(exchange, [BTC], tmp_path, clock=lambda: NOW)
    last = float(rv.candles_5m()[-1][4])
    tiers = load_tiers(BTC, "okx", directory=store_tiers_dir(tmp_path))
    # 5,000 contracts of 0.01 BTC at the last price, then 10,000 and 20,000 contracts
    assert [tier.max_notional for tier in tiers.tiers] == pytest.approx(
        [5_000 * 0.01 * last, 10_000 * 0.01 * last, 20_000 * 0.01 * last]
    )
    assert tiers.tiers[1].min_notional == tiers.tiers[0].max_notional  # the brackets touch
    assert [tier.maintenance_margin_rate for tier in tiers.tiers] == [0.004, 0.005, 0.0075]
    assert http.calls("/public/position-tiers")[0].query["tdMode"] == "isolated"
    notes = read_document(result.path)["notes"][BTC]
    assert notes["contract_size"] == 0.01 and notes["price"] == last


def test_hyperliquid_max_leverage_gives_one_bracket(tmp_path):
    exchange, _ = hyperliquid_exchange()
    exchange.load_markets()
    symbol = "SOL/USDC:USDC"
    download_tiers(exchange, [symbol, "BTC/USDC:USDC"], tmp_path, clock=lambda: NOW)
    tiers = load_tiers(symbol, "hyperliquid", directory=store_tiers_dir(tmp_path))
    (tier,) = tiers.tiers
    assert tier.max_leverage == 20.0 and tier.maintenance_margin_rate == 1.0 / 40.0
    assert tier.max_notional == HYPERLIQUID_BRACKET_CAP
    btc = load_tiers("BTC/USDC:USDC", "hyperliquid", directory=store_tiers_dir(tmp_path))
    assert btc.tiers[0].maintenance_margin_rate == 1.0 / 80.0  # 40x max


def test_a_second_download_on_the_same_day_adds_symbols(tmp_path):
    exchange, _ = loaded(rv.Bybit())
    download_tiers(exchange, [BTC], tmp_path, clock=lambda: NOW)
    download_tiers(exchange, ["ETH/USDT:USDT"], tmp_path, clock=lambda: NOW)
    files = sorted(store_tiers_dir(tmp_path).iterdir())
    assert [path.name for path in files] == [f"bybit-{TODAY}.json.gz"]
    assert sorted(read_document(files[0])["tiers"]) == [BTC, "ETH/USDT:USDT"]
    next_day = NOW + 86_400_000
    download_tiers(exchange, [BTC], tmp_path, clock=lambda: next_day)
    assert len(list(store_tiers_dir(tmp_path).iterdir())) == 2
    day = dt.date(2025, 10, 11)
    chosen = load_tiers(BTC, "bybit", at=day, directory=store_tiers_dir(tmp_path))
    assert chosen.effective_date == day


def test_download_command_stores_candles_then_tiers(tmp_path, monkeypatch, capsys):
    venue = rv.Bybit(candles={("BTCUSDT", "1h"): rv.candles_1h()})
    exchange, _ = rv.offline_exchange(venue)
    results = []
    download(
        "bybit",
        [BTC],
        "1h",
        since="2025-10-10",
        data_dir=tmp_path,
        series=["ohlcv"],
        exchange=exchange,
        clock=lambda: NOW,
        on_tiers=results.append,
    )
    (result,) = results
    assert (tmp_path / "bybit" / "BTC_USDT_USDT-1h.parquet").is_file()
    assert result.path is not None and result.path.is_file()
    assert "1 symbol(s)" in result.describe() and str(result.path) in result.describe()


def test_binance_tiers_are_not_downloaded_but_named(tmp_path):
    exchange, http = loaded(rv.binance_usdm_venue())
    result = download_tiers(exchange, [BTC], tmp_path, clock=lambda: NOW)
    assert result.path is None and "bundled" in result.describe()
    assert not store_tiers_dir(tmp_path).exists()
    assert not http.calls("leverageBracket")


def test_refused_tier_request_is_one_line_and_keeps_the_candles(tmp_path):
    venue = rv.Bybit(candles={("BTCUSDT", "1h"): rv.candles_1h()})
    exchange, http = rv.offline_exchange(venue)
    http.fail("refuse", "/risk-limit", times=5)
    with pytest.raises(ExchangeError) as caught:
        download(
            "bybit",
            [BTC],
            "1h",
            since="2025-10-10",
            data_dir=tmp_path,
            series=["ohlcv"],
            exchange=exchange,
            clock=lambda: NOW,
        )
    message = str(caught.value)
    assert "\n" not in message and message.startswith("bybit")
    assert "other series are saved" in message and "run the same command again" in message
    assert (tmp_path / "bybit" / "BTC_USDT_USDT-1h.parquet").is_file()
    assert not store_tiers_dir(tmp_path).exists()


def test_timeouts_on_tiers_are_retried(tmp_path):
    exchange, http = loaded(rv.Bybit())
    http.fail("timeout", "/risk-limit", times=2)
    waits: list[float] = []
    from backtest.market.exchange import Retrier

    retrier = Retrier("bybit", RetryPolicy(tries=3, base_delay=0.5), sleep=waits.append)
    result = download_tiers(exchange, [BTC], tmp_path, retrier=retrier, clock=lambda: NOW)
    assert result.path is not None and waits == [0.5, 1.0]


def test_inconsistent_venue_table_writes_nothing(tmp_path, monkeypatch):
    broken = json.loads(json.dumps(rv.TIERS["bybit_risk_limit"]))
    broken["BTCUSDT"][2]["mmDeduction"] = "2761"  # one dollar off the recomputed 2,760
    monkeypatch.setitem(rv.TIERS, "bybit_risk_limit", broken)
    exchange, _ = loaded(rv.Bybit())
    with pytest.raises(ConfigError, match=r"bracket 3 cum 2761 disagrees .* 2760"):
        download_tiers(exchange, [BTC], tmp_path, clock=lambda: NOW)
    assert not list(store_tiers_dir(tmp_path).glob("*.gz"))


def test_corrupted_downloaded_snapshot_is_one_line(tmp_path):
    folder = store_tiers_dir(tmp_path)
    folder.mkdir()
    (folder / f"bybit-{TODAY}.json.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(Exception) as caught:
        load_tiers(BTC, "bybit", directory=folder)
    assert "cannot read tier snapshot" in str(caught.value) and "\n" not in str(caught.value)


def test_no_tiers_flag_is_accepted(tmp_path):
    # argument parsing only: --no-tiers exists and --list needs no network
    assert cli.main(["download", "--list", "--no-tiers", "--data-dir", str(tmp_path)]) == 0
