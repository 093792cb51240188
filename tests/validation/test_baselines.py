"""The baselines by hand on three bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.validation.baselines import naive_proxy, range_split_proxy


@pytest.fixture
def candles() -> pd.DataFrame:
    index = pd.date_range("2025-01-01", periods=4, freq="5min", tz="UTC")
    return pd.DataFrame(
        {
            "open": [100.0, 100.0, 100.0, 100.0],
            "high": [110.0, 104.0, 100.0, 101.0],
            "low": [90.0, 98.0, 100.0, 99.0],
            "close": [95.0, 103.0, 100.0, 100.0],
            "volume": [2.0, 1.0, 5.0, np.nan],
        },
        index=index,
    )


def test_naive_proxy_by_hand(candles: pd.DataFrame) -> None:
    proxy = naive_proxy(candles)
    # bar 0: notional 2 * (110+90+95)/3 = 196.667; down-move 5 % -> long 9.8333, short 0
    assert proxy["long"].iloc[0] == pytest.approx(2 * 295 / 3 * 0.05)
    assert proxy["short"].iloc[0] == 0.0
    # bar 1: notional 1 * (104+98+103)/3 = 101.667; up-move 3 % -> short 3.05
    assert proxy["short"].iloc[1] == pytest.approx(305 / 3 * 0.03)
    assert proxy["long"].iloc[1] == 0.0
    # bar 2 has no move, bar 3 no volume: nothing
    assert proxy.iloc[2:].to_numpy().sum() == 0.0


def test_range_split_proxy_by_hand(candles: pd.DataFrame) -> None:
    proxy = range_split_proxy(candles)
    # bar 0: notional 196.667 x range 20 % = 39.333; close 95 lies 3/4 down from the high
    amount = 2 * 295 / 3 * 0.20
    assert proxy["long"].iloc[0] == pytest.approx(amount * 15 / 20)
    assert proxy["short"].iloc[0] == pytest.approx(amount * 5 / 20)
    # bar 1: range 6 %, close 103: long 1/6, short 5/6
    amount = 305 / 3 * 0.06
    assert proxy["long"].iloc[1] == pytest.approx(amount / 6)
    assert proxy["short"].iloc[1] == pytest.approx(amount * 5 / 6)
    # bar 2 has no range, bar 3 no volume
    assert proxy.iloc[2:].to_numpy().sum() == 0.0
