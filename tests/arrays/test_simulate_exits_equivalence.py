"""Random exposure paths with random stop and take-profit levels: the twin equals the event broker.

The markets, exposure paths and accounts of ``test_simulate_equivalence`` plus, per bar, a stop
and a take-profit level or NaN, drawn around the bar's close (0.85 … 1.15 × close, so levels
on the wrong side of the price occur too: they fill at the next bar's open).  Everything the
equality promise covers must agree (:func:`tests.arrays.twin_checks.assert_same`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from backtest.arrays.decisions import Decisions
from backtest.arrays.simulation import FILL_STOP, FILL_TAKE_PROFIT
from backtest.errors import ConfigError
from tests.arrays.test_simulate_equivalence import (
    SETTINGS,
    accounts,
    exposure_paths,
    random_markets,
    sample,
    sample_markets,
)
from tests.arrays.twin_checks import BTC_TIERS, assert_same, config, run_both


def levels(draw: st.DrawFn, close: np.ndarray) -> np.ndarray:
    """A level per bar, ``close × factor`` with factor in [0.85, 1.15], or NaN."""
    count = len(close)
    factors = draw(
        st.lists(st.one_of(st.just(np.nan), st.floats(0.85, 1.15)), min_size=count, max_size=count)
    )
    return close * np.asarray(factors, dtype=np.float64)


def check(data: st.DataObject, market: tuple[pd.DataFrame, str]) -> None:
    frame, timeframe = market
    path = data.draw(exposure_paths(len(frame)))
    close = frame["close"].to_numpy()
    stop = levels(data.draw, close) if data.draw(st.booleans()) else None
    take_profit = levels(data.draw, close) if data.draw(st.booleans()) else None
    decisions = Decisions(path.target, path.reason, path.reasons, stop, take_profit)
    fields = data.draw(accounts())
    tiers = fields.pop("tiers")
    try:
        results, simulation = run_both(
            frame, decisions, config(timeframe=timeframe, **fields), tiers
        )
    except ConfigError:
        return  # both refused the same run (asserted inside run_both)
    assert_same(results, simulation, frame, decisions)


@SETTINGS
@given(data=st.data(), market=random_markets())
def test_random_markets_with_levels(data: st.DataObject, market: tuple[pd.DataFrame, str]) -> None:
    check(data, market)


@SETTINGS
@given(data=st.data(), market=sample_markets())
def test_sample_windows_with_levels(data: st.DataObject, market: tuple[pd.DataFrame, str]) -> None:
    check(data, market)


def test_a_fixed_path_reaches_both_exits_and_liquidations() -> None:
    """Not all trivial: a fixed draw on the 5m sample fills stops and take-profits."""
    frame = sample("indicators_btc_5m.parquet")
    rng = np.random.default_rng(5)
    count = len(frame)
    close = frame["close"].to_numpy()
    decide = rng.random(count) < 0.05
    target = np.where(decide, rng.choice([1.0, -1.0, 3.0, -3.0, 0.0, 18.0, -18.0], count), np.nan)
    side = np.sign(np.nan_to_num(target))
    # the 18x entries get no stop: they are liquidated, and their take-profit cancelled
    stop = np.where(
        decide & (side != 0) & (np.abs(target) != 18.0), close * (1.0 - side * 0.004), np.nan
    )
    take_profit = np.where(decide & (side != 0), close * (1.0 + side * 0.006), np.nan)
    decisions = Decisions.from_target(target, stop=stop, take_profit=take_profit)
    results, simulation = run_both(
        frame, decisions, config(timeframe="5m", leverage=20.0, slippage=0.0002), BTC_TIERS
    )
    assert_same(results, simulation, frame, decisions)
    kinds = simulation.fill_kind.tolist()
    assert kinds.count(FILL_STOP) > 3
    assert kinds.count(FILL_TAKE_PROFIT) > 3
    assert len(simulation.liq_bar) > 0
