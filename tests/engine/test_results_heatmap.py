"""The runner's density table (``Results.heatmap``) and its save/load round trip."""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from backtest.engine import RunConfig, run
from backtest.engine.runner import HEATMAP_BINS, HEATMAP_COLUMNS, heatmap_table
from backtest.liquidation.heatmap import LiquidationMap, MapParams
from backtest.market.store import load_market
from backtest.results import Results


class _Idle(bt.Strategy):
    def next(self):
        pass


@pytest.fixture(scope="module")
def frame():
    return load_market("BTC/USDT:USDT", "5m")


@pytest.fixture(scope="module")
def results(frame):
    return run(RunConfig(timeframe="5m", cash=1_000.0), data=frame, strategy_class=_Idle)


def test_the_table_has_the_documented_shape(results, frame):
    table = results.heatmap
    assert tuple(table.columns) == HEATMAP_COLUMNS
    times = pd.DatetimeIndex(table["time"])
    assert str(times.tz) == "UTC"
    assert 250 <= times.nunique() <= 300
    assert len(table) == times.nunique() * HEATMAP_BINS
    low, high = 0.85 * frame["low"].min(), 1.15 * frame["high"].max()
    assert table["price"].between(low, high).all()
    assert table["price"].nunique() == HEATMAP_BINS
    assert (table[["long_notional", "short_notional"]] >= 0).all().all()
    assert table["long_notional"].sum() > 0 and table["short_notional"].sum() > 0
    assert set(times) <= set(frame.index)


def test_a_snapshot_keeps_the_maps_notional_within_the_grid(results, frame):
    table = results.heatmap
    moment = pd.Timestamp(table["time"].unique()[len(table["time"].unique()) // 2])
    rows = table[table["time"] == moment]
    snapshot = LiquidationMap(MapParams()).run(frame, snapshot_at=[moment]).snapshot(moment)
    assert snapshot.time == moment
    prices = rows["price"].to_numpy()
    step = prices[1] - prices[0]
    low, high = prices[0] - step / 2, prices[-1] + step / 2
    _, longs, shorts = snapshot.between(low, high)
    # The two buckets straddling the grid's edges are split by overlap: they may differ.
    straddling = np.searchsorted(snapshot.bucket_edges, [low, high]) - 1
    straddling = straddling[(straddling >= 0) & (straddling < snapshot.n_buckets)]
    for column, inside, density in (
        ("long_notional", longs, snapshot.long_notional),
        ("short_notional", shorts, snapshot.short_notional),
    ):
        edge = density[straddling].sum() + 1e-6
        assert rows[column].sum() == pytest.approx(inside.sum(), abs=edge)
        assert rows[column].sum() == pytest.approx(inside.sum(), rel=0.01)


def test_the_table_round_trips_and_older_folders_still_load(results, tmp_path):
    folder = results.save(tmp_path / "run")
    loaded = Results.load(folder)
    assert_frame_equal(loaded.heatmap, results.heatmap)
    (folder / "heatmap.parquet").unlink()
    old = Results.load(folder)
    assert old.heatmap.empty and not old.equity.empty


def test_snapshots_are_capped_and_a_tiny_frame_gives_a_table(frame):
    assert heatmap_table(frame, {}, max_snapshots=50)["time"].nunique() <= 50
    small = heatmap_table(frame.iloc[:40], {})
    assert small["time"].nunique() == 40
    assert heatmap_table(frame.iloc[:0], {}).empty
