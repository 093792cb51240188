"""Fixtures of the report tests: Results built from real BTC candles and a hand-made trade plan.

The engine is not needed: a small isolated-margin simulator below walks the real 5m candles of
2025-10-01..20 (Binance USDⓈ-M, copied into tests/report/data/), opens and closes the planned
trades at bar closes, charges taker fees and the real funding settlements, and liquidates a
position whose bar range crosses its liquidation price (``entry * (1 -/+ 1/leverage +/- mmr)``).
Its tables follow the column contract of backtest/results.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backtest.results import Results

DATA = Path(__file__).parent / "data"

#: (entry time, exit time, side, leverage, share of equity used as margin)
Plan = Sequence[tuple[str, str, str, float, float]]

DEFAULT_PLAN: Plan = (
    ("2025-10-01 02:00", "2025-10-02 18:00", "long", 3.0, 0.5),
    ("2025-10-03 06:00", "2025-10-03 20:30", "short", 3.0, 0.5),
    ("2025-10-05 00:00", "2025-10-06 12:00", "long", 5.0, 0.4),
    ("2025-10-07 09:00", "2025-10-08 16:00", "short", 4.0, 0.4),
    # 25x long into the 2025-10-10 crash: liquidated.
    ("2025-10-10 12:00", "2025-10-11 12:00", "long", 25.0, 0.2),
    ("2025-10-12 00:00", "2025-10-13 06:00", "long", 3.0, 0.5),
    ("2025-10-14 10:00", "2025-10-15 02:00", "short", 5.0, 0.3),
    ("2025-10-16 04:00", "2025-10-17 20:00", "short", 3.0, 0.5),
    ("2025-10-19 00:00", "2025-10-20 12:00", "long", 2.0, 0.5),
)


def load_market() -> pd.DataFrame:
    frame = pd.read_parquet(DATA / "BTC_USDT_USDT-5m.parquet")
    index = pd.to_datetime(frame.pop("timestamp_ms"), unit="ms", utc=True)
    frame.index = pd.DatetimeIndex(index, name="time")
    return frame.astype(np.float64)


def load_funding() -> pd.Series:
    frame = pd.read_parquet(DATA / "BTC_USDT_USDT-funding.parquet")
    index = pd.to_datetime(frame["timestamp_ms"], unit="ms", utc=True)
    return pd.Series(frame["funding_rate"].to_numpy(), index=index)


def synthetic_clusters(market: pd.DataFrame) -> pd.DataFrame:
    """Per-bar map outputs shaped like the map's: clusters 4-6 % beyond the daily range."""
    close = market["close"]
    day_high = market["high"].rolling(288, min_periods=1).max()
    day_low = market["low"].rolling(288, min_periods=1).min()
    dollar_volume = (market["volume"] * close).rolling(288, min_periods=1).sum()
    long_price = day_low * 0.96
    short_price = day_high * 1.04
    frame = pd.DataFrame(
        {
            "liq_long": np.where(market["low"] < long_price.shift(1), dollar_volume * 0.01, 0.0),
            "liq_short": np.where(market["high"] > short_price.shift(1), dollar_volume * 0.01, 0.0),
            "long_cluster_price": long_price,
            "long_cluster_notional": dollar_volume * 0.05,
            "long_cluster_distance_pct": (close - long_price) / close * 100,
            "short_cluster_price": short_price,
            "short_cluster_notional": dollar_volume * 0.04,
            "short_cluster_distance_pct": (short_price - close) / close * 100,
            "long_band_notional": dollar_volume * 0.08,
            "short_band_notional": dollar_volume * 0.07,
            "cascade_risk": np.clip((4.0 - (close - long_price) / close * 100) / 4.0, 0, 1),
        },
        index=market.index,
    )
    frame.iloc[:12] = np.nan  # warm-up
    return frame


def simulate(
    market: pd.DataFrame,
    plan: Plan = DEFAULT_PLAN,
    *,
    cash: float = 10_000.0,
    fee_rate: float = 0.0005,
    maintenance_margin_rate: float = 0.004,
    strategy: str = "HandMade",
    funding: pd.Series | None = None,
    clusters: pd.DataFrame | None = None,
    near_miss_pct: float = 2.0,
) -> Results:
    """Walk ``market`` bar by bar and return the Results of ``plan``."""
    times = market.index
    close = market["close"].to_numpy()
    high = market["high"].to_numpy()
    low = market["low"].to_numpy()
    rates = funding if funding is not None else load_funding()
    settlement_bars = set(times.get_indexer(rates.index[rates.index.isin(times)]))
    rate_at = dict(
        zip(
            times.get_indexer(rates.index[rates.index.isin(times)]),
            rates[rates.index.isin(times)],
            strict=True,
        )
    )
    entries = {
        times.get_loc(pd.Timestamp(e, tz="UTC")): (e, x, s, lev, share)
        for e, x, s, lev, share in plan
    }
    exits = {times.get_loc(pd.Timestamp(x, tz="UTC")) for _, x, _, _, _ in plan}

    wallet = cash
    size = 0.0  # signed
    entry_price = leverage = 0.0
    entry_time = None
    trade_fees = trade_funding = 0.0
    entry_bar = 0
    funding_cum = fees_cum = 0.0
    rows: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    liquidations: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    near: list[dict[str, Any]] = []

    def close_position(bar: int, price: float, liquidated: bool) -> None:
        nonlocal wallet, size, fees_cum
        fee = abs(size) * price * fee_rate
        gross = size * (price - entry_price)
        wallet += gross - fee
        fees_cum += fee
        side = "long" if size > 0 else "short"
        orders.append(
            {
                "time": times[bar],
                "side": "sell" if size > 0 else "buy",
                "size": abs(size),
                "price": price,
                "fee": fee,
                "reason": "liquidation" if liquidated else "strategy",
            }
        )
        trades.append(
            {
                "entry_time": entry_time,
                "exit_time": times[bar],
                "side": side,
                "size": abs(size),
                "entry_price": entry_price,
                "exit_price": price,
                "pnl_gross": gross,
                "fees": trade_fees + fee,
                "funding": trade_funding,
                "pnl_net": gross - trade_fees - fee - trade_funding,
                "liquidated": liquidated,
                "bars": bar - entry_bar,
            }
        )
        if liquidated:
            liquidations.append(
                {
                    "time": times[bar],
                    "side": side,
                    "size": abs(size),
                    "liquidation_price": price,
                    "fill_price": price,
                    "loss": -gross,
                    "fee": fee,
                    "gap": False,
                }
            )
        size = 0.0

    for bar in range(len(times)):
        liquidation_price = np.nan
        if size != 0:
            sign = 1.0 if size > 0 else -1.0
            liquidation_price = entry_price * (1 - sign / leverage + sign * maintenance_margin_rate)
            crossed = low[bar] <= liquidation_price if size > 0 else high[bar] >= liquidation_price
            if crossed:
                close_position(bar, liquidation_price, liquidated=True)
                liquidation_price = np.nan
            else:
                distance = (
                    (low[bar] - liquidation_price) / low[bar]
                    if size > 0
                    else (liquidation_price - high[bar]) / high[bar]
                ) * 100
                if distance < near_miss_pct:
                    near.append(
                        {
                            "time": times[bar],
                            "side": "long" if size > 0 else "short",
                            "price": low[bar] if size > 0 else high[bar],
                            "liquidation_price": liquidation_price,
                            "distance_pct": distance,
                        }
                    )
        if bar in settlement_bars and size != 0:
            payment = size * close[bar] * rate_at[bar]
            wallet -= payment
            funding_cum += payment
            trade_funding += payment
            payments.append(
                {
                    "time": times[bar],
                    "rate": rate_at[bar],
                    "mark_price": close[bar],
                    "position_size": size,
                    "payment": payment,
                }
            )
        if bar in exits and size != 0:
            close_position(bar, close[bar], liquidated=False)
            liquidation_price = np.nan
        if bar in entries and size == 0:
            _, _, side, leverage, share = entries[bar]
            equity_now = wallet
            quantity = equity_now * share * leverage / close[bar]
            size = quantity if side == "long" else -quantity
            entry_price = close[bar]
            entry_time = times[bar]
            entry_bar = bar
            fee = quantity * close[bar] * fee_rate
            wallet -= fee
            fees_cum += fee
            trade_fees = fee
            trade_funding = 0.0
            orders.append(
                {
                    "time": times[bar],
                    "side": "buy" if size > 0 else "sell",
                    "size": quantity,
                    "price": close[bar],
                    "fee": fee,
                    "reason": "strategy",
                }
            )
            sign = 1.0 if size > 0 else -1.0
            liquidation_price = entry_price * (1 - sign / leverage + sign * maintenance_margin_rate)
        unrealised = size * (close[bar] - entry_price) if size else 0.0
        value = wallet + unrealised
        notional = size * close[bar]
        rows.append(
            {
                "value": value,
                "cash": wallet,
                "position_size": size,
                "position_notional": notional,
                "margin_used": abs(size) * entry_price / leverage if size else 0.0,
                "effective_leverage": abs(notional) / value if value > 0 else np.nan,
                "liquidation_price": liquidation_price,
                "funding_cum": funding_cum,
                "fees_cum": fees_cum,
            }
        )

    def table(records: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
        return pd.DataFrame(records, columns=columns)

    equity = pd.DataFrame(rows, index=times)
    config = {
        "symbol": "BTC/USDT:USDT",
        "exchange": "binanceusdm",
        "timeframe": "5m",
        "since": str(times[0]),
        "until": None,
        "strategy": strategy,
        "params": {"note": "hand-made plan"},
        "cash": cash,
        "leverage": 3.0,
        "margin_mode": "isolated",
        "maker_fee": 0.0002,
        "taker_fee": fee_rate,
        "venue": "binance",
        "funding": True,
        "map_params": {},
        "near_miss_pct": near_miss_pct,
    }
    meta = {
        "run_id": "test-run",
        "strategy": strategy,
        "symbol": "BTC/USDT:USDT",
        "status": "complete",
        "started": "2025-11-21T00:00:00+00:00",
        "finished": "2025-11-21T00:00:05+00:00",
        "version": "0.1.0",
    }
    return Results(
        config=config,
        meta=meta,
        equity=equity,
        trades=table(
            trades,
            [
                "entry_time",
                "exit_time",
                "side",
                "size",
                "entry_price",
                "exit_price",
                "pnl_gross",
                "fees",
                "funding",
                "pnl_net",
                "liquidated",
                "bars",
            ],
        ),
        orders=table(orders, ["time", "side", "size", "price", "fee", "reason"]),
        liquidations=table(
            liquidations,
            ["time", "side", "size", "liquidation_price", "fill_price", "loss", "fee", "gap"],
        ),
        funding=table(payments, ["time", "rate", "mark_price", "position_size", "payment"]),
        near_misses=table(near, ["time", "side", "price", "liquidation_price", "distance_pct"]),
        market=market[["open", "high", "low", "close", "volume"]].copy(),
        clusters=synthetic_clusters(market) if clusters is None else clusters,
    )


@pytest.fixture(scope="session")
def market() -> pd.DataFrame:
    return load_market()


@pytest.fixture(scope="session")
def sample_results(market: pd.DataFrame) -> Results:
    return simulate(market)


@pytest.fixture(scope="session")
def simulate_run() -> Callable[..., Results]:
    return simulate
