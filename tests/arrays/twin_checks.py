"""Shared checks of the array simulator against the event engine (``backtest.engine.run``).

:func:`run_both` runs a :class:`~backtest.arrays.decisions.Decisions` through the event engine
(:class:`~backtest.arrays.replay.ReplayDecisions`) and through the simulator, and
:func:`assert_same` compares every table the equality promise covers: orders (time, side,
size, price, fee, reason), liquidations, funding, rejections (with the reason text), the
per-bar equity columns and the final value, to 1e-9 relative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from backtest.arrays.account import account_for
from backtest.arrays.decisions import Decisions
from backtest.arrays.market import market_arrays
from backtest.arrays.replay import ReplayDecisions
from backtest.arrays.simulate import simulate
from backtest.arrays.simulation import (
    FILL_LIQUIDATION,
    FILL_STOP,
    FILL_TAKE_PROFIT,
    Simulation,
    rejection_message,
)
from backtest.engine import RunConfig, run
from backtest.errors import ConfigError
from backtest.liquidation.tiers import LeverageTiers, Tier

RTOL = 1e-9
EQUITY = (
    "value",
    "cash",
    "position_size",
    "margin_used",
    "liquidation_price",
    "funding_cum",
    "fees_cum",
)

#: Binance BTCUSDT brackets (the engine tests' table, first four brackets).
BTC_TIERS = LeverageTiers(
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
#: A small table: positions cross brackets, meet the leverage limits and the notional cap.
SMALL_TIERS = LeverageTiers(
    "TEST/USDT:USDT",
    "binanceusdm",
    None,
    (
        Tier(0.0, 20_000.0, 0.01, 20.0, 0.0),
        Tier(20_000.0, 50_000.0, 0.025, 10.0, 300.0),
        Tier(50_000.0, 150_000.0, 0.05, 5.0, 1_550.0),
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
) -> pd.DataFrame:
    """An hourly load_market-shaped frame; open = previous close, high/low = max/min."""
    closes = np.asarray(closes, dtype=np.float64)
    count = len(closes)
    if opens is None:
        opens = np.concatenate([[closes[0]], closes[:-1]])
    opens = np.asarray(opens, dtype=np.float64)
    highs = np.maximum(opens, closes) if highs is None else np.asarray(highs, dtype=np.float64)
    lows = np.minimum(opens, closes) if lows is None else np.asarray(lows, dtype=np.float64)
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
        index=pd.date_range(start, periods=count, freq="1h", tz="UTC", name="time"),
    )
    for name in ("mark_open", "mark_high", "mark_low", "mark_close"):
        values = (marks or {}).get(name)
        frame[name] = np.full(count, np.nan) if values is None else np.asarray(values, float)
    return frame


def config(**fields: Any) -> RunConfig:
    """A RunConfig for these tests: hourly bars, no map warm-up, no fees unless given."""
    settings = {
        "strategy": "ReplayDecisions",
        "timeframe": "1h",
        "warmup": "0",
        "maker_fee": 0.0,
        "taker_fee": 0.0,
        **fields,
    }
    return RunConfig(**settings)


def run_both(
    frame: pd.DataFrame,
    decisions: Decisions,
    run_config: RunConfig,
    tiers: LeverageTiers = BTC_TIERS,
    *,
    engine: str = "python",
) -> tuple[Any, Simulation]:
    """``(event Results, Simulation)`` of the same decisions; both or neither raise.

    Raises
    ------
    ConfigError
        When both refuse the run the same way (the error of the event engine is re-raised).
    """
    event_error = simulation_error = None
    results = simulation = None
    try:
        results = run(
            run_config,
            data=frame,
            strategy_class=ReplayDecisions.with_decisions(decisions),
            tiers=tiers,
        )
    except ConfigError as error:
        event_error = error
    try:
        simulation = simulate(
            market_arrays(frame), decisions, account_for(run_config, tiers), engine=engine
        )
    except ConfigError as error:
        simulation_error = error
    assert (event_error is None) == (simulation_error is None), (event_error, simulation_error)
    if event_error is not None:
        raise event_error
    return results, simulation


def _close(name: str, expected: Any, actual: Any) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    assert expected.shape == actual.shape, f"{name}: {expected.shape} vs {actual.shape}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=1e-9, equal_nan=True, err_msg=name)


def assert_same(
    results: Any, simulation: Simulation, frame: pd.DataFrame, decisions: Decisions
) -> None:
    """Every table of the event run equals the simulation (1e-9 relative)."""
    times = frame.index
    leverage = float(results.config["leverage"])
    # per bar
    equity = results.equity
    assert len(equity) == len(frame)
    for name in EQUITY:
        _close(f"equity.{name}", equity[name].to_numpy(), getattr(simulation, name))
    _close("final value", equity["value"].iloc[-1], simulation.final_value)
    # orders
    orders = results.orders
    assert len(orders) == len(simulation.fill_bar), (len(orders), len(simulation.fill_bar))
    assert list(orders["time"]) == list(times[simulation.fill_bar])
    signed = np.where(orders["side"] == "buy", 1.0, -1.0) * orders["size"].to_numpy()
    _close("orders.size", signed, simulation.fill_size)
    _close("orders.price", orders["price"], simulation.fill_price)
    _close("orders.fee", orders["fee"], simulation.fill_fee)
    exits = {FILL_LIQUIDATION: "liquidation", FILL_STOP: "stop", FILL_TAKE_PROFIT: "take-profit"}
    labels = [
        exits.get(int(kind)) or decisions.reasons[code]
        for kind, code in zip(simulation.fill_kind, simulation.fill_reason, strict=True)
    ]
    assert list(orders["reason"]) == labels
    # liquidations
    table = results.liquidations
    assert len(table) == len(simulation.liq_bar)
    assert list(table["time"]) == list(times[simulation.liq_bar])
    assert list(table["side"]) == ["long" if side > 0 else "short" for side in simulation.liq_side]
    _close("liquidations.size", table["size"], simulation.liq_size)
    _close("liquidations.liquidation_price", table["liquidation_price"], simulation.liq_price)
    _close("liquidations.fill_price", table["fill_price"], simulation.liq_fill_price)
    _close("liquidations.loss", table["loss"], simulation.liq_loss)
    _close("liquidations.fee", table["fee"], simulation.liq_fee)
    assert list(table["gap"]) == list(simulation.liq_gap)
    # funding
    table = results.funding
    assert len(table) == len(simulation.funding_bar)
    assert list(table["time"]) == list(times[simulation.funding_bar])
    _close("funding.rate", table["rate"], simulation.funding_rate)
    _close("funding.mark_price", table["mark_price"], simulation.funding_mark)
    _close("funding.position_size", table["position_size"], simulation.funding_size)
    _close("funding.payment", table["payment"], simulation.funding_payment)
    # rejections, with the broker's reason text rebuilt from the numbers
    table = results.rejected
    assert len(table) == len(simulation.reject_bar)
    assert list(table["time"]) == list(times[simulation.reject_bar])
    signed = np.where(table["side"] == "buy", 1.0, -1.0) * table["size"].to_numpy()
    _close("rejected.size", signed, simulation.reject_size)
    _close("rejected.price", table["price"], simulation.reject_price)
    messages = [
        rejection_message(int(code), notional, leverage, needed, available)
        for code, notional, needed, available in zip(
            simulation.reject_code,
            simulation.reject_notional,
            simulation.reject_needed,
            simulation.reject_available,
            strict=True,
        )
    ]
    assert list(table["reason"]) == messages
