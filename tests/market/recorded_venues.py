"""Venues served offline: ccxt runs its own request building, signing-free public calls, error
mapping and parsing; only the HTTP transport under ``exchange.session`` is replaced.

A :class:`RecordedHTTP` adapter is mounted on the ccxt exchange's ``requests`` session, so
ccxt's ``fetch`` (status handling, ``handle_errors``, JSON decoding) runs unchanged.  Each venue
class answers the paths ccxt calls with bodies in that venue's raw JSON shape, built from real
Binance candles, mark prices and funding rates (``fixtures/*.csv``, copied verbatim from the
project's shared data) and minimal market lists (``fixtures/venue_markets.json``).  Faults are
injected at the same layer: timeouts, HTTP 429, refused symbols, empty pages, shuffled and
repeated rows, an interrupt or a hard kill after N pages.
"""

from __future__ import annotations

import csv
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from backtest.market.exchange import create_exchange

FIXTURES = Path(__file__).parent / "fixtures"
MARKETS = json.loads((FIXTURES / "venue_markets.json").read_text())
TIERS = json.loads((FIXTURES / "venue_tiers.json").read_text())
MINUTE = 60_000
HOUR = 3_600_000

Rows = list[list[str]]  # [timestamp text, value texts...] exactly as in the CSV


def read_rows(name: str) -> Rows:
    """Rows of a fixture CSV as text (no float round trip), header dropped."""
    with (FIXTURES / name).open() as handle:
        reader = csv.reader(handle)
        next(reader)
        return [row for row in reader]


def candles_5m() -> Rows:
    return read_rows("binance_usdm_BTCUSDT_5m_2025-10-09_2025-10-11.csv")


def candles_1h() -> Rows:
    return read_rows("binance_usdm_BTCUSDT_1h_2025-10-09_2025-10-11.csv")


def eth_5m() -> Rows:
    return read_rows("binance_usdm_ETHUSDT_5m_2025-10-10_2025-10-10.csv")


def mark_1h() -> Rows:
    return read_rows("binance_usdm_BTCUSDT_markprice_1h_2025-10-09_2025-10-11.csv")


def funding() -> Rows:
    return read_rows("binance_usdm_BTCUSDT_funding_2025-10-01_2025-10-20.csv")


def spot_1h_with_outage() -> Rows:
    return read_rows("binance_spot_BTCUSDT_1h_2021-08-12_2021-08-14.csv")


def as_floats(rows: Rows) -> list[list[float]]:
    return [[int(row[0]), *(float(value) for value in row[1:])] for row in rows]


# ---------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------
class Killed(BaseException):
    """Raised by an ``interrupt`` fault: like Ctrl-C, nothing in the code may swallow it."""


@dataclass
class Fault:
    """Something that goes wrong on requests whose path contains ``path``.

    ``skip`` matching requests pass first, then the fault fires ``times`` times.
    kind: "timeout" | "429" | "refuse" | "empty" | "shuffle" | "interrupt" | "kill".
    """

    kind: str
    path: str
    skip: int = 0
    times: int = 1
    seen: int = 0
    fired: int = 0

    def applies(self, path: str) -> bool:
        if self.path not in path or self.fired >= self.times:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.fired += 1
        return True


# ---------------------------------------------------------------------------------------------
# the transport
# ---------------------------------------------------------------------------------------------
@dataclass
class Request:
    path: str
    query: dict[str, str]


class RecordedHTTP(BaseAdapter):
    """A requests transport adapter answering from a :class:`Venue`."""

    def __init__(self, venue: Venue) -> None:
        super().__init__()
        self.venue = venue
        self.requests: list[Request] = []
        self.faults: list[Fault] = []

    def fail(self, kind: str, path: str, *, skip: int = 0, times: int = 1) -> Fault:
        fault = Fault(kind, path, skip, times)
        self.faults.append(fault)
        return fault

    def calls(self, fragment: str) -> list[Request]:
        return [request for request in self.requests if fragment in request.path]

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        query = dict(parse_qsl(parts.query))
        self.requests.append(Request(parts.path, query))
        transform: Callable[[list[Any]], list[Any]] | None = None
        for fault in self.faults:
            if not fault.applies(parts.path):
                continue
            if fault.kind == "timeout":
                raise requests.exceptions.ReadTimeout("read timed out (recorded fault)")
            if fault.kind == "429":
                return self._response(request, 429, json.dumps(self.venue.rate_limited()))
            if fault.kind == "refuse":
                status, body = self.venue.refusal()
                return self._response(request, status, json.dumps(body))
            if fault.kind == "interrupt":
                raise Killed("interrupted after the pages before")
            if fault.kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if fault.kind == "empty":
                transform = lambda rows: []  # noqa: E731
            if fault.kind == "shuffle":
                transform = shuffle_with_repeats
        status, body = self.venue.respond(parts.path, query, transform or (lambda rows: rows))
        return self._response(request, status, json.dumps(body))

    @staticmethod
    def _response(request, status: int, text: str) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 400: "Bad Request", 429: "Too Many Requests"}.get(
            status, "Error"
        )
        response._content = text.encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


def shuffle_with_repeats(rows: list[Any]) -> list[Any]:
    """Reverse a page, then repeat every third row (out of order and duplicated)."""
    backwards = list(reversed(rows))
    return backwards + backwards[::3]


# ---------------------------------------------------------------------------------------------
# venues
# ---------------------------------------------------------------------------------------------
def _within(rows: Rows, low: int | None, high: int | None) -> Rows:
    return [
        row
        for row in rows
        if (low is None or int(row[0]) >= low) and (high is None or int(row[0]) <= high)
    ]


def _int(query: dict[str, str], key: str) -> int | None:
    return int(query[key]) if key in query else None


@dataclass
class Venue:
    """Datasets of one venue: ``candles[(id, timeframe)]``, ``mark[...]``, ``funding[id]``."""

    candles: dict[tuple[str, str], Rows] = field(default_factory=dict)
    mark: dict[tuple[str, str], Rows] = field(default_factory=dict)
    funding: dict[str, Rows] = field(default_factory=dict)
    open_interest: dict[tuple[str, str], Rows] = field(default_factory=dict)
    exchange_id: ClassVar[str] = ""

    def respond(self, path: str, query: dict[str, str], transform) -> tuple[int, Any]:
        raise NotImplementedError

    def refusal(self) -> tuple[int, Any]:
        raise NotImplementedError

    def rate_limited(self) -> Any:
        """Body of the venue's HTTP 429 answer."""
        return {"msg": "Too Many Requests"}


class BinanceUsdm(Venue):
    """``fapi.binance.com``: exchangeInfo, klines, markPriceKlines, fundingRate, openInterestHist.

    Shapes from Binance's USDⓈ-M REST docs: klines are 12-element arrays (open time, OHLC,
    volume, close time, quote volume, trades, taker base, taker quote, ignore); with
    ``startTime`` the oldest ``limit`` rows in ``[startTime, endTime]`` come first.
    """

    exchange_id = "binanceusdm"
    intervals: ClassVar[dict[str, str]] = {"1m": "1m", "5m": "5m", "1h": "1h"}

    def refusal(self) -> tuple[int, Any]:
        return 400, {"code": -1121, "msg": "Invalid symbol."}

    def rate_limited(self) -> Any:
        return {"code": -1003, "msg": "Too many requests; current limit is 2400 per minute."}

    def _known(self, symbol: str | None) -> bool:
        return any(entry["symbol"] == symbol for entry in MARKETS["binance_fapi"]["symbols"])

    def _page(self, rows: Rows, query: dict[str, str], default: int, most: int) -> Rows:
        limit = min(int(query.get("limit", default)), most)
        start, end = _int(query, "startTime"), _int(query, "endTime")
        inside = _within(rows, start, end)
        return inside[:limit] if start is not None else inside[-limit:]

    def respond(self, path, query, transform):
        if path.endswith("/exchangeInfo"):
            return 200, MARKETS["binance_fapi"]
        symbol = query.get("symbol")
        if not self._known(symbol):
            return self.refusal()
        if path.endswith("/klines") or path.endswith("/markPriceKlines"):
            table = self.mark if path.endswith("/markPriceKlines") else self.candles
            rows = table.get((symbol, query["interval"]), [])
            page = self._page(rows, query, 500, 1500)
            step = _interval_ms(query["interval"])
            body = [
                [
                    int(row[0]),
                    *row[1:5],
                    row[5] if len(row) > 5 else "0",
                    int(row[0]) + step - 1,
                    "0",
                    0,
                    "0",
                    "0",
                    "0",
                ]
                for row in page
            ]
            return 200, transform(body)
        if path.endswith("/fundingRate"):
            page = self._page(self.funding.get(symbol, []), query, 100, 1000)
            body = [
                {"symbol": symbol, "fundingTime": int(row[0]), "fundingRate": row[1]}
                for row in page
            ]
            return 200, transform(body)
        if path.endswith("/openInterestHist"):
            rows = self.open_interest.get((symbol, query["period"]), [])
            page = self._page(rows, query, 30, 500)
            body = [
                {
                    "symbol": symbol,
                    "sumOpenInterest": row[1],
                    "sumOpenInterestValue": row[2],
                    "timestamp": int(row[0]),
                }
                for row in page
            ]
            return 200, transform(body)
        return 404, {"code": -1, "msg": f"no route {path}"}


class BinanceSpot(BinanceUsdm):
    """``api.binance.com`` spot klines (and the futures listings ``binance`` also loads)."""

    exchange_id = "binance"

    def _known(self, symbol: str | None) -> bool:
        return any(entry["symbol"] == symbol for entry in MARKETS["binance_spot"]["symbols"])

    def respond(self, path, query, transform):
        if path == "/api/v3/exchangeInfo":
            return 200, MARKETS["binance_spot"]
        if path == "/fapi/v1/exchangeInfo":
            return 200, MARKETS["binance_fapi"]
        if path == "/dapi/v1/exchangeInfo":
            return 200, MARKETS["binance_dapi"]
        return super().respond(path, query, transform)


class Bybit(Venue):
    """``api.bybit.com`` v5: instruments-info, kline, mark-price-kline, funding/history.

    Bybit answers newest first: the latest ``limit`` rows within ``[start, end]``.
    """

    exchange_id = "bybit"
    intervals: ClassVar[dict[str, str]] = {"1": "1m", "5": "5m", "60": "1h"}

    def refusal(self) -> tuple[int, Any]:
        return 200, {"retCode": 10001, "retMsg": "params error: Symbol Is Invalid", "result": {}}

    def rate_limited(self) -> Any:
        return {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}}

    @staticmethod
    def _ok(result: dict[str, Any]) -> dict[str, Any]:
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1}

    def respond(self, path, query, transform):
        category = query.get("category", "linear")
        if path.endswith("/instruments-info"):
            if category == "linear" and "status" not in query:
                return 200, MARKETS["bybit_linear"]
            return 200, self._ok({"category": category, "list": [], "nextPageCursor": ""})
        symbol = query.get("symbol")
        known = [entry["symbol"] for entry in MARKETS["bybit_linear"]["result"]["list"]]
        if symbol not in known:
            return self.refusal()
        if path.endswith("/kline") or path.endswith("/mark-price-kline"):
            table = self.mark if "mark-price" in path else self.candles
            rows = table.get((symbol, self.intervals.get(query["interval"], "?")), [])
            inside = _within(rows, _int(query, "start"), _int(query, "end"))
            page = list(reversed(inside))[: int(query.get("limit", 200))]
            if "mark-price" in path:
                body = [[row[0], *row[1:5]] for row in page]
            else:
                body = [[row[0], *row[1:6], "0"] for row in page]
            return 200, self._ok({"symbol": symbol, "category": category, "list": transform(body)})
        if path.endswith("/funding/history"):
            inside = _within(
                self.funding.get(symbol, []), _int(query, "startTime"), _int(query, "endTime")
            )
            page = list(reversed(inside))[: int(query.get("limit", 200))]
            body = [
                {"symbol": symbol, "fundingRate": row[1], "fundingRateTimestamp": row[0]}
                for row in page
            ]
            return 200, self._ok({"category": category, "list": transform(body)})
        if path.endswith("/open-interest"):
            return 200, self._ok(
                {"category": category, "symbol": symbol, "list": [], "nextPageCursor": ""}
            )
        if path.endswith("/risk-limit"):
            return 200, self._ok({"category": category, "list": TIERS["bybit_risk_limit"][symbol]})
        return 404, {"retCode": 404, "retMsg": f"no route {path}"}


class Okx(Venue):
    """``www.okx.com`` v5: instruments, (history-)candles, mark-price candles, funding history.

    OKX answers newest first: the latest ``limit`` rows with ``before < ts < after``.  Candle
    rows carry volume in contracts (``vol``) and in base currency (``volCcy``).
    """

    exchange_id = "okx"
    bars: ClassVar[dict[str, str]] = {"1m": "1m", "5m": "5m", "1H": "1h"}
    contract_size: ClassVar[dict[str, Decimal]] = {
        "BTC-USDT-SWAP": Decimal("0.01"),
        "ETH-USDT-SWAP": Decimal("0.1"),
    }

    def refusal(self) -> tuple[int, Any]:
        return 200, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}

    def rate_limited(self) -> Any:
        return {"code": "50011", "msg": "Too Many Requests", "data": []}

    def _newest(self, rows: Rows, query: dict[str, str], most: int) -> Rows:
        before, after = _int(query, "before"), _int(query, "after")
        inside = [
            row
            for row in rows
            if (before is None or int(row[0]) > before) and (after is None or int(row[0]) < after)
        ]
        return list(reversed(inside))[: min(int(query.get("limit", 100)), most)]

    def respond(self, path, query, transform):
        if path.endswith("/public/instruments"):
            if query.get("instType") == "SWAP":
                return 200, MARKETS["okx_swap"]
            return 200, {"code": "0", "msg": "", "data": []}
        if path.endswith("/public/position-tiers"):
            rows = TIERS["okx_position_tiers"].get(query.get("instFamily"))
            if rows is None or query.get("tdMode") != "isolated":
                return self.refusal()
            return 200, {"code": "0", "msg": "", "data": rows}
        inst = query.get("instId")
        if path.endswith("/market/ticker") and inst in self.contract_size:
            candles = self.candles.get((inst.replace("-SWAP", "").replace("-", ""), "5m"), [])
            last = candles[-1][4] if candles else "121450.0"
            body = {"instType": "SWAP", "instId": inst, "last": last, "ts": "1760140800000"}
            return 200, {"code": "0", "msg": "", "data": [body]}
        if inst not in self.contract_size:
            return self.refusal()
        symbol = inst.replace("-SWAP", "").replace("-", "")
        if "candles" in path:
            bar = self.bars.get(query["bar"], "?")
            if "mark-price" in path:
                page = self._newest(self.mark.get((symbol, bar), []), query, 100)
                body = [[row[0], *row[1:5], "1"] for row in page]
            else:
                page = self._newest(self.candles.get((symbol, bar), []), query, 300)
                size = self.contract_size[inst]
                body = [
                    [row[0], *row[1:5], str(Decimal(row[5]) / size), row[5], "0", "1"]
                    for row in page
                ]
            return 200, {"code": "0", "msg": "", "data": transform(body)}
        if path.endswith("/funding-rate-history"):
            page = self._newest(self.funding.get(symbol, []), query, 400)
            body = [
                {
                    "fundingRate": row[1],
                    "fundingTime": row[0],
                    "instId": inst,
                    "instType": "SWAP",
                    "method": "current_period",
                    "realizedRate": row[1],
                }
                for row in page
            ]
            return 200, {"code": "0", "msg": "", "data": transform(body)}
        if "open-interest" in path:
            return 200, {"code": "0", "msg": "", "data": []}
        return 404, {"code": "404", "msg": f"no route {path}"}


def _interval_ms(interval: str) -> int:
    units = {"m": MINUTE, "h": HOUR, "d": 24 * HOUR}
    return int(interval[:-1]) * units[interval[-1]]


# ---------------------------------------------------------------------------------------------
# building exchanges
# ---------------------------------------------------------------------------------------------
def offline_exchange(venue: Venue, **features: int):
    """A real ccxt exchange for ``venue.exchange_id`` whose HTTP layer is ``RecordedHTTP``.

    ccxt's rate limiter stays enabled with a 0 ms interval so tests never sleep.
    ``features`` overrides the page sizes ccxt's ``features`` table reports for linear swaps
    (``ohlcv=200``), to force several pages out of a small fixture.
    """
    exchange = create_exchange(venue.exchange_id, rate_limit_ms=0)
    http = RecordedHTTP(venue)
    exchange.session.mount("https://", http)
    exchange.session.mount("http://", http)
    section = exchange.features["swap"]["linear"]["fetchOHLCV"]
    if "ohlcv" in features:
        section["limit"] = features["ohlcv"]
    if "mark" in features:
        section["mark"] = features["mark"]
    return exchange, http


def binance_usdm_venue() -> BinanceUsdm:
    """BTC and ETH perpetuals with real 5m/1h candles, 1h mark prices and funding."""
    return BinanceUsdm(
        candles={
            ("BTCUSDT", "5m"): candles_5m(),
            ("BTCUSDT", "1h"): candles_1h(),
            ("ETHUSDT", "5m"): eth_5m(),
        },
        mark={("BTCUSDT", "1h"): mark_1h()},
        funding={"BTCUSDT": funding()},
    )
