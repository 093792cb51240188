"""Random exposure paths: the simulator's reference twin equals the event broker.

Hypothesis draws markets (random walks with gaps, mark candles with holes or none, funding
settlements; or windows of the bundled BTC 5m and 1h-with-mark-price slices), exposure paths
(NaN = no decision, flips, exposures far beyond the margin that are refused or liquidated) and
accounts (every venue, isolated and cross margin, both slippage models, fees, two tier
tables).  The same Decisions run through ``backtest.engine.run`` with ReplayDecisions and
through :func:`backtest.arrays.simulate` (engine ``"python"``); every order, liquidation,
funding payment, rejection, per-bar equity column and the final value must agree to 1e-9
relative (:func:`tests.arrays.twin_checks.assert_same`), or both must refuse the run.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.arrays.decisions import Decisions
from backtest.errors import ConfigError
from tests.arrays.twin_checks import BTC_TIERS, SMALL_TIERS, assert_same, config, run_both

DATA = Path(__file__).resolve().parent.parent / "engine" / "data"
REASONS = ("strategy", "entry", "exit")
EXPOSURES = (0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 10.0, -10.0, 40.0, -40.0, 400.0)
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@functools.cache
def sample(name: str) -> pd.DataFrame:
    return pd.read_parquet(DATA / name)


@st.composite
def random_markets(draw: st.DrawFn) -> tuple[pd.DataFrame, str]:
    """An hourly random walk with gaps, optional mark candles (with holes) and funding."""
    count = draw(st.integers(3, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    volatility = draw(st.sampled_from([0.005, 0.03, 0.1]))
    rng = np.random.default_rng(seed)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, count)))
    gaps = np.where(rng.random(count) < 0.15, rng.normal(0.0, 3 * volatility, count), 0.0)
    opens = np.concatenate([[100.0], closes[:-1]]) * np.exp(gaps)
    highs = np.maximum(opens, closes) * np.exp(np.abs(rng.normal(0.0, volatility / 2, count)))
    lows = np.minimum(opens, closes) * np.exp(-np.abs(rng.normal(0.0, volatility / 2, count)))
    index = pd.date_range("2025-10-01", periods=count, freq="1h", tz="UTC", name="time")
    frame = pd.DataFrame(
        {"open": opens, "high": highs, "low": lows, "close": closes, "volume": 1.0}, index=index
    )
    every = draw(st.sampled_from([0, 1, 3, 8]))
    if every:
        rates = np.full(count, np.nan)
        rates[::every] = rng.normal(0.0, 0.002, len(rates[::every]))
        frame["funding_rate"] = rates
    marks = draw(st.sampled_from(["none", "full", "holes"]))
    if marks != "none":
        basis = np.exp(rng.normal(0.0, volatility / 3, count))
        holes = rng.random(count) < (0.4 if marks == "holes" else 0.0)
        for name in ("open", "high", "low", "close"):
            frame[f"mark_{name}"] = np.where(holes, np.nan, frame[name].to_numpy() * basis)
    return frame, "1h"


@st.composite
def sample_markets(draw: st.DrawFn) -> tuple[pd.DataFrame, str]:
    """A window of the bundled BTC slices (5m with funding; 1h with the mark candle)."""
    name, timeframe = draw(
        st.sampled_from(
            [("indicators_btc_5m.parquet", "5m"), ("indicators_btc_1h_mark.parquet", "1h")]
        )
    )
    frame = sample(name)
    count = draw(st.integers(3, 60))
    start = draw(st.integers(0, len(frame) - count))
    return frame.iloc[start : start + count].copy(), timeframe


@st.composite
def exposure_paths(draw: st.DrawFn, count: int) -> Decisions:
    """NaN (no decision), listed exposures and free floats, with reason codes."""
    values = draw(
        st.lists(
            st.one_of(
                st.just(np.nan),
                st.sampled_from(EXPOSURES),
                st.floats(-60.0, 60.0, allow_nan=False),
            ),
            min_size=count,
            max_size=count,
        )
    )
    codes = draw(st.lists(st.integers(0, len(REASONS) - 1), min_size=count, max_size=count))
    return Decisions.from_target(values, codes, REASONS)


@st.composite
def accounts(draw: st.DrawFn) -> dict:
    venue = draw(st.sampled_from(["binance", "bybit", "okx", "hyperliquid"]))
    margin_mode = draw(st.sampled_from(["isolated", "cross"])) if venue == "binance" else "isolated"
    slippage, model = draw(
        st.sampled_from([(0.0, "fixed"), (0.0005, "fixed"), (0.3, "volatility")])
    )
    return {
        "venue": venue,
        "margin_mode": margin_mode,
        "slippage": slippage,
        "slippage_model": model,
        "leverage": draw(st.sampled_from([1.0, 2.0, 5.0, 10.0, 20.0])),
        "cash": draw(st.sampled_from([1_000.0, 5_000.0])),
        "taker_fee": draw(st.sampled_from([0.0, 0.0005])),
        "funding": draw(st.booleans()),
        "liquidation_fee": draw(st.sampled_from([None, 0.002])),
        "tiers": draw(st.sampled_from([BTC_TIERS, SMALL_TIERS])),
    }


def check(data: st.DataObject, market: tuple[pd.DataFrame, str]) -> None:
    frame, timeframe = market
    decisions = data.draw(exposure_paths(len(frame)))
    fields = data.draw(accounts())
    tiers = fields.pop("tiers")
    run_config = config(timeframe=timeframe, **fields)
    try:
        results, simulation = run_both(frame, decisions, run_config, tiers)
    except ConfigError:
        return  # both refused the same run (asserted inside run_both)
    assert_same(results, simulation, frame, decisions)


@SETTINGS
@given(data=st.data(), market=random_markets())
def test_random_markets(data: st.DataObject, market: tuple[pd.DataFrame, str]) -> None:
    check(data, market)


@SETTINGS
@given(data=st.data(), market=sample_markets())
def test_sample_windows(data: st.DataObject, market: tuple[pd.DataFrame, str]) -> None:
    check(data, market)


def test_the_paths_reach_every_outcome() -> None:
    """The drawn paths are not all trivial: a fixed draw liquidates, refuses and pays funding."""
    frame = sample("indicators_btc_5m.parquet")
    rng = np.random.default_rng(7)
    target = np.where(rng.random(len(frame)) < 0.2, rng.choice(EXPOSURES, len(frame)), np.nan)
    decisions = Decisions.from_target(target)
    results, simulation = run_both(
        frame, decisions, config(timeframe="5m", leverage=20.0, cash=5_000.0), BTC_TIERS
    )
    assert_same(results, simulation, frame, decisions)
    assert len(simulation.liq_bar) > 0
    assert len(simulation.reject_bar) > 0
    assert len(simulation.funding_bar) > 0
    assert len(simulation.fill_bar) > 20


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx", "hyperliquid"])
def test_every_venue_on_the_whole_mark_slice(venue: str) -> None:
    frame = sample("indicators_btc_1h_mark.parquet")
    rng = np.random.default_rng(11)
    target = np.where(rng.random(len(frame)) < 0.3, rng.normal(0.0, 8.0, len(frame)), np.nan)
    decisions = Decisions.from_target(target)
    results, simulation = run_both(
        frame, decisions, config(timeframe="1h", venue=venue, leverage=10.0, slippage=0.0003)
    )
    assert_same(results, simulation, frame, decisions)
