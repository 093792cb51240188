"""Fetch a venue's leverage tiers through ccxt and store them as a dated snapshot.

``backtest download`` calls :func:`download_tiers` after the candles, for the venues that serve
their tiers without an API key:

=============== ============================================== ===============================
venue           ccxt call (raw endpoint)                       brackets
=============== ============================================== ===============================
``bybit``       ``fetch_market_leverage_tiers``                USDT notional; ``mmDeduction``
                (``GET /v5/market/risk-limit``)                is the maintenance amount
``okx``         ``fetch_market_leverage_tiers``, isolated      contracts, converted to USDT at
                (``GET /api/v5/public/position-tiers``)        the ticker's last price
``hyperliquid`` the market list (``POST /info``                one bracket: the asset's
                ``metaAndAssetCtxs``)                          ``maxLeverage``, MMR 1/(2·max)
=============== ============================================== ===============================

The snapshot is ``<data_dir>/tiers/<exchange>-<UTC date>.json.gz`` in the compact format of
:mod:`backtest.liquidation.tiers`; every table passes the same checks as the bundled ones before
it is written (:func:`backtest.liquidation.tiers.write_snapshot`), and a second download on the
same day adds its symbols to that day's file.  Binance serves its brackets only with an API key;
its snapshots ship with the package (``data/tiers``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backtest.errors import ConfigError, ExchangeError
from backtest.market.exchange import Retrier, one_line
from backtest.market.timeframes import now_ms

#: Venues whose tiers ``download`` stores (ccxt ids), and the call each one uses.
TIER_SOURCES: dict[str, str] = {
    "bybit": "fetch_market_leverage_tiers",
    "okx": "fetch_market_leverage_tiers",
    "hyperliquid": "load_markets",
}
#: Venues whose tiers ship with the package instead (ccxt needs an API key for them).
BUNDLED_TIER_VENUES: tuple[str, ...] = ("binanceusdm",)
#: Cap of Hyperliquid's single bracket: the venue states no position cap (quote currency).
HYPERLIQUID_BRACKET_CAP = 1e15


@dataclass
class TierResult:
    """What the tier step of a download did."""

    exchange: str
    symbols: list[str] = field(default_factory=list)
    path: Path | None = None
    note: str = ""

    def describe(self) -> str:
        """Return one line for the console."""
        if self.path is None:
            return f"{self.exchange} leverage tiers: {self.note}"
        text = (
            f"{self.exchange} leverage tiers: {len(self.symbols)} symbol(s) "
            f"({', '.join(self.symbols)}) in {self.path}"
        )
        return f"{text}; {self.note}" if self.note else text


def _ccxt_version() -> str:
    import ccxt

    return str(ccxt.__version__)


def _utc_date(milliseconds: int) -> dt.date:
    return dt.datetime.fromtimestamp(milliseconds / 1000.0, dt.UTC).date()


def _bybit_rows(exchange: Any, symbol: str, retrier: Retrier) -> list[dict[str, Any]]:
    return list(
        retrier.call(
            f"fetching {symbol} leverage tiers", exchange.fetch_market_leverage_tiers, symbol
        )
    )


def _okx_rows(
    exchange: Any, symbol: str, retrier: Retrier
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """OKX tiers in USDT: contracts × contract size × the ticker's last price.

    OKX states a swap's position tiers as integer contract ranges ``[minSz, maxSz]``; the
    snapshot's brackets touch (each floor is the previous cap), as the checks require.
    """
    rows = retrier.call(
        f"fetching {symbol} leverage tiers",
        exchange.fetch_market_leverage_tiers,
        symbol,
        {"marginMode": "isolated"},
    )
    ticker = retrier.call(f"fetching the {symbol} ticker", exchange.fetch_ticker, symbol)
    market = exchange.market(symbol)
    price = ticker.get("last") or ticker.get("close")
    size = market.get("contractSize") or 1.0
    if not (isinstance(price, int | float) and price > 0):
        raise ExchangeError(
            f"okx returned no last price for {symbol} (needed to turn its contract tiers into "
            "USDT); try again later"
        )
    scale = float(size) * float(price)
    converted: list[dict[str, Any]] = []
    floor = 0.0
    for row in rows:
        cap = float(row["maxNotional"]) * scale
        converted.append({**row, "minNotional": floor, "maxNotional": cap, "info": {}})
        floor = cap
    note = {
        "unit": "contracts converted to USDT",
        "contract_size": float(size),
        "price": float(price),
        "price_time": ticker.get("datetime"),
    }
    return converted, note


def _hyperliquid_rows(exchange: Any, symbol: str) -> list[dict[str, Any]]:
    """One bracket from the asset's maximum leverage (maintenance rate 1/(2·max)).

    Source: Hyperliquid Docs, "Liquidations" (maintenance margin is half the initial margin
    at the asset's maximum leverage),
    https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations
    """
    market = exchange.market(symbol)
    maximum = ((market.get("limits") or {}).get("leverage") or {}).get("max")
    if not (isinstance(maximum, int | float) and maximum >= 1):
        raise ExchangeError(
            f"hyperliquid lists no maximum leverage for {symbol}; its tiers cannot be stored"
        )
    return [
        {
            "minNotional": 0.0,
            "maxNotional": HYPERLIQUID_BRACKET_CAP,
            "maintenanceMarginRate": 1.0 / (2.0 * float(maximum)),
            "maxLeverage": float(maximum),
            "info": {},
        }
    ]


def fetch_tier_tables(
    exchange: Any, symbols: Sequence[str], retrier: Retrier
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Fetch ``symbols``' tiers from a venue of :data:`TIER_SOURCES` (markets loaded).

    Returns
    -------
    (dict, dict)
        ``{symbol: ccxt tier rows}`` and per-symbol provenance notes (OKX's conversion).

    Raises
    ------
    ExchangeError
        When the venue refuses or fails (one line, translated by the retrier).
    """
    tables: dict[str, list[dict[str, Any]]] = {}
    notes: dict[str, Any] = {}
    for symbol in symbols:
        if exchange.id == "bybit":
            tables[symbol] = _bybit_rows(exchange, symbol, retrier)
        elif exchange.id == "okx":
            tables[symbol], notes[symbol] = _okx_rows(exchange, symbol, retrier)
        elif exchange.id == "hyperliquid":
            tables[symbol] = _hyperliquid_rows(exchange, symbol)
        else:
            raise ConfigError(
                f"{exchange.id} leverage tiers cannot be downloaded; supported: "
                f"{', '.join(TIER_SOURCES)}"
            )
        if not tables[symbol]:
            raise ExchangeError(f"{exchange.id} returned no leverage tiers for {symbol}")
    return tables, notes


def download_tiers(
    exchange: Any,
    symbols: Sequence[str],
    data_dir: str | os.PathLike[str],
    *,
    retrier: Retrier | None = None,
    clock: Callable[[], int] = now_ms,
) -> TierResult:
    """Store today's leverage tiers of ``symbols`` (a no-op note for other venues).

    Parameters
    ----------
    exchange : ccxt.Exchange
        With markets loaded.
    symbols : sequence of str
        ccxt unified symbols (already checked against the venue's markets).
    data_dir : path-like
        The store root; the snapshot goes to ``<data_dir>/tiers/``.
    retrier : Retrier, optional
        Retries transient errors and translates ccxt's.
    clock : callable
        Now in epoch ms (the snapshot's date is its UTC day).

    Raises
    ------
    ExchangeError
        When the venue fails; the message says the other series are saved.
    ConfigError
        When the venue serves an inconsistent table (nothing is written).
    """
    from backtest.liquidation.tiers import store_tiers_dir, write_snapshot

    if exchange.id not in TIER_SOURCES:
        if exchange.id in BUNDLED_TIER_VENUES:
            note = "not downloaded (the venue wants an API key); the bundled snapshots are used"
        else:
            note = (
                f"not downloaded (only {', '.join(TIER_SOURCES)} serve them without a key); "
                "runs need a snapshot in data/tiers"
            )
        return TierResult(exchange.id, note=note)
    retrier = retrier or Retrier(exchange.id)
    try:
        tables, notes = fetch_tier_tables(exchange, symbols, retrier)
        path = write_snapshot(
            store_tiers_dir(data_dir),
            tables,
            exchange=exchange.id,
            effective_date=_utc_date(clock()),
            source=f"ccxt {_ccxt_version()} {exchange.id} {TIER_SOURCES[exchange.id]}",
            notes=notes or None,
        )
    except (ExchangeError, ConfigError) as error:
        kind = type(error)
        raise kind(
            f"{one_line(error, 300)}; the other series are saved, run the same command again "
            "to store the leverage tiers"
        ) from error
    return TierResult(exchange.id, list(symbols), path)
