"""Fixtures of the engine-core tests: synthetic frames, a scripted strategy, leverage tiers.

Every price path here is written by hand so that expected numbers can be worked out on paper
in the tests' comments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from backtest.liquidation.tiers import LeverageTiers, Tier


@pytest.fixture
def btc_tiers() -> LeverageTiers:
    """Binance BTCUSDT brackets (freqtrade snapshot 2024-10-24), first four brackets."""
    return LeverageTiers(
        "BTC/USDT:USDT",
        "binanceusdm",
        None,
        (
            Tier(0.0, 50_000.0, 0.004, 125.0, 0.0),
            Tier(50_000.0, 600_000.0, 0.005, 100.0, 50.0),
            Tier(600_000.0, 3_000_000.0, 0.0065, 75.0, 950.0),
            Tier(3_000_000.0, 12_000_000.0, 0.01, 50.0, 11_450.0),
        ),
    )


def make_frame(
    closes: Sequence[float],
    *,
    opens: Sequence[float] | None = None,
    highs: Sequence[float] | None = None,
    lows: Sequence[float] | None = None,
    funding: Mapping[int, float] | None = None,
    marks: Mapping[str, Sequence[float]] | None = None,
    start: str = "2025-10-01",
    freq: str = "1h",
    index: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """A load_market-shaped frame; open defaults to the previous close, high/low to max/min."""
    closes = np.asarray(closes, dtype=np.float64)
    count = len(closes)
    if opens is None:
        opens = np.concatenate([[closes[0]], closes[:-1]])
    opens = np.asarray(opens, dtype=np.float64)
    highs = np.maximum(opens, closes) if highs is None else np.asarray(highs, dtype=np.float64)
    lows = np.minimum(opens, closes) if lows is None else np.asarray(lows, dtype=np.float64)
    if index is None:
        index = pd.date_range(start, periods=count, freq=freq, tz="UTC", name="time")
    rates = np.full(count, np.nan)
    for bar, rate in (funding or {}).items():
        rates[bar] = rate
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": np.full(count, 10.0),
            "funding_rate": rates,
        },
        index=index,
    )
    for name in ("mark_open", "mark_high", "mark_low", "mark_close"):
        values = (marks or {}).get(name)
        frame[name] = np.full(count, np.nan) if values is None else np.asarray(values, float)
    return frame


@pytest.fixture
def frame_factory() -> Callable[..., pd.DataFrame]:
    """Build a synthetic market frame (see :func:`make_frame`)."""
    return make_frame


class Scripted(bt.Strategy):
    """Place the orders of ``script`` (bar number -> list of (method, kwargs)) at those bars."""

    params = (("script", None),)

    def __init__(self) -> None:
        self.notified: list[Any] = []
        self.trades_closed: list[Any] = []

    def next(self) -> None:
        for method, kwargs in (self.p.script or {}).get(len(self) - 1, ()):
            getattr(self, method)(**kwargs)

    def notify_order(self, order: Any) -> None:
        self.notified.append(order)

    def notify_trade(self, trade: Any) -> None:
        if trade.isclosed:
            self.trades_closed.append(trade)


@pytest.fixture
def scripted() -> type[Scripted]:
    """The scripted strategy class."""
    return Scripted


@pytest.fixture
def run_script(btc_tiers: LeverageTiers) -> Callable[..., Any]:
    """Run :class:`Scripted` on a frame and return the Results.

    ``run_script(frame, script, tiers=..., **RunConfig fields)``; fees default to 0 and
    funding to on, the tiers to :func:`btc_tiers`.
    """
    from backtest.engine import RunConfig, run

    def runner(frame: pd.DataFrame, script: Mapping[int, Any], **fields: Any) -> Any:
        tiers = fields.pop("tiers", btc_tiers)
        settings = {"strategy": "Scripted", "maker_fee": 0.0, "taker_fee": 0.0, **fields}
        strategy_class = type("Scripted", (Scripted,), {"params": (("script", script),)})
        return run(
            RunConfig(**settings),
            data=frame,
            strategy_class=strategy_class,
            tiers=tiers,
        )

    return runner


@pytest.fixture
def run_cerebro(btc_tiers: LeverageTiers) -> Callable[..., Any]:
    """Run :class:`Scripted` through ``build_cerebro`` and return ``(strategy, broker)``."""
    from backtest.engine import RunConfig, build_cerebro

    def runner(frame: pd.DataFrame, script: Mapping[int, Any], **fields: Any) -> Any:
        tiers = fields.pop("tiers", btc_tiers)
        settings = {"strategy": "Scripted", "maker_fee": 0.0, "taker_fee": 0.0, **fields}
        strategy_class = type("Scripted", (Scripted,), {"params": (("script", script),)})
        cerebro = build_cerebro(
            RunConfig(**settings),
            frame,
            strategy_class,
            tiers=tiers,
        )
        strategy = cerebro.run()[0]
        return strategy, cerebro.broker

    return runner
