"""ClusterRotation on the bundled BTC + ETH sample: it cuts exactly the symbol it should.

The expected cuts and re-entries are recomputed here from each symbol's own liquidation map
(run separately over that symbol's candles), not read back from the strategy.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest

from backtest.engine import RunConfig, run
from backtest.liquidation.heatmap import LiquidationMap, MapParams
from backtest.market.store import load_market

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
CUT_WITHIN, REENTER_BEYOND = 0.01, 0.03


@functools.cache
def rotation_run():
    """ClusterRotation over the whole bundled sample (2025-10-01..20, 5m), both symbols."""
    params = {"cut_within": CUT_WITHIN, "reenter_beyond": REENTER_BEYOND}
    return run(RunConfig(symbol=list(SYMBOLS), strategy="ClusterRotation", params=params))


def expected_decisions(distances: pd.DataFrame) -> list[tuple[pd.Timestamp, str, str]]:
    """The rule, bar by bar: cut the held symbol with the closest cluster if within the cut
    distance; buy back a cut symbol whose cluster is beyond the re-entry distance."""
    holding = dict.fromkeys(SYMBOLS, False)
    decisions = []
    values = distances[list(SYMBOLS)].to_numpy()
    for time, row in zip(distances.index, values, strict=True):
        closest = int(np.argmin(row))  # first of equals, as min() in the strategy
        for number, symbol in enumerate(SYMBOLS):
            if holding[symbol]:
                if number == closest and row[number] <= CUT_WITHIN:
                    holding[symbol] = False
                    decisions.append((time, symbol, "cut"))
            elif row[number] > REENTER_BEYOND:
                holding[symbol] = True
                decisions.append((time, symbol, "enter"))
    return decisions


@pytest.fixture(scope="module")
def distances() -> pd.DataFrame:
    """Each symbol's distance to its strongest long cluster (fraction; inf when none)."""
    columns = {}
    for symbol in SYMBOLS:
        lines = LiquidationMap(MapParams()).run(load_market(symbol, "5m")).lines
        columns[symbol] = (lines["long_cluster_distance_pct"] / 100.0).fillna(math.inf)
    return pd.DataFrame(columns)


def test_each_symbol_has_its_own_map(distances):
    clusters = rotation_run().clusters
    for symbol in SYMBOLS:
        own = clusters[clusters["symbol"] == symbol]["long_cluster_distance_pct"] / 100.0
        assert np.array_equal(own.fillna(math.inf).to_numpy(), distances[symbol].to_numpy())
    assert not np.array_equal(distances[SYMBOLS[0]], distances[SYMBOLS[1]])


def test_cluster_rotation_cuts_exactly_the_symbol_whose_long_cluster_is_closest(distances):
    results = rotation_run()
    assert results.complete and results.liquidations.empty
    decisions = expected_decisions(distances)
    cuts = [item for item in decisions if item[2] == "cut"]
    # The sample exercises the rule: both symbols are cut at least once and bought back.
    assert {symbol for _, symbol, _ in cuts} == set(SYMBOLS)
    assert len(decisions) - len(cuts) > len(SYMBOLS)
    for time, symbol, _ in cuts:  # the defining property, stated directly
        row = distances.loc[time]
        assert row[symbol] == row.min() and row[symbol] <= CUT_WITHIN
    # Each decision is a market order filled at the next bar's open, in symbol order.
    bars = distances.index
    following = {time: bars[number + 1] for number, time in enumerate(bars[:-1])}
    expected = [
        (following[time], symbol, "sell" if kind == "cut" else "buy")
        for time, symbol, kind in decisions
        if time in following
    ]
    orders = results.orders
    actual = list(zip(orders["time"], orders["symbol"], orders["side"], strict=True))
    assert actual == expected
    # A cut closes the whole position: the symbol is flat right after each sell.
    positions = results.positions
    for time, symbol, side in actual:
        if side == "sell":
            held = positions[(positions.index == time) & (positions["symbol"] == symbol)]
            assert held["position_size"].iloc[0] == 0.0
