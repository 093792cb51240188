"""LiquidationClusters: zero-copy once(), stepped next(), identical lines in both modes."""

from __future__ import annotations

import math
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from backtest.engine.feeds import PerpData
from backtest.engine.indicators import CLUSTER_LINES, LiquidationClusters
from backtest.errors import ConfigError
from backtest.liquidation import heatmap

DATA = Path(__file__).parent / "data"


def load_fixture(name: str) -> pd.DataFrame:
    """A frame as load_market returns it (UTC index, candles, funding, mark columns)."""
    return pd.read_parquet(DATA / name)


# -- a small path-dependent stand-in for the liquidation map -------------------------------------
class ToyState:
    """A path-dependent toy with the map's per-bar outputs (not the real model)."""

    def __init__(self) -> None:
        self.long_open = 0.0
        self.short_open = 0.0
        self.previous_close = math.nan

    def step(self, o, h, lo, c, v, funding_rate, mark_high, mark_low) -> tuple[float, ...]:
        low = lo if math.isnan(mark_low) else mark_low
        high = h if math.isnan(mark_high) else mark_high
        lean = 0.0 if math.isnan(funding_rate) else funding_rate * 1000.0
        liq_long = liq_short = 0.0
        if not math.isnan(self.previous_close):
            liq_long = self.long_open * max(0.0, (self.previous_close - low) / self.previous_close)
            liq_short = self.short_open * max(
                0.0, (high - self.previous_close) / self.previous_close
            )
        self.long_open = 0.99 * (self.long_open - liq_long) + v * c * (0.5 + lean)
        self.short_open = 0.99 * (self.short_open - liq_short) + v * c * (0.5 - lean)
        self.previous_close = c
        long_price = c * 0.97
        short_price = c * 1.03
        risk = math.nan if math.isnan(mark_low) else low / c
        return (
            liq_long,
            liq_short,
            long_price,
            self.long_open,
            3.0,
            short_price,
            self.short_open,
            3.0,
            self.long_open / 2,
            self.short_open / 2,
            risk,
        )


class ToyStepper:
    def __init__(self) -> None:
        self.state = ToyState()

    def update(
        self,
        open,
        high,
        low,
        close,
        volume,
        funding_rate=math.nan,
        mark_high=math.nan,
        mark_low=math.nan,
        open_interest=math.nan,
    ):
        values = self.state.step(open, high, low, close, volume, funding_rate, mark_high, mark_low)
        return dict(zip(CLUSTER_LINES, values, strict=True))


class ToyMap:
    """Records how the indicator calls it."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.steppers = 0

    def stepper(self, **context) -> ToyStepper:
        self.steppers += 1
        self.stepper_context = context
        return ToyStepper()

    def run_arrays(
        self,
        open,
        high,
        low,
        close,
        volume,
        funding_rate=None,
        mark_high=None,
        mark_low=None,
        open_interest=None,
        out=None,
        **context,
    ):
        n = len(close)
        # Addresses only: keeping the views would pin the line buffers.
        self.calls.append(
            {
                "n": n,
                "close_address": close.__array_interface__["data"][0],
                "close_writeable": close.flags.writeable,
                "context": context,
                "out_addresses": {k: a.__array_interface__["data"][0] for k, a in out.items()},
                "optional_none": {
                    "funding_rate": funding_rate is None,
                    "mark_high": mark_high is None,
                    "mark_low": mark_low is None,
                    "open_interest": open_interest is None,
                },
            }
        )
        state = ToyState()
        nan = math.nan
        for i in range(n):
            values = state.step(
                open[i],
                high[i],
                low[i],
                close[i],
                volume[i],
                nan if funding_rate is None else funding_rate[i],
                nan if mark_high is None else mark_high[i],
                nan if mark_low is None else mark_low[i],
            )
            for name, value in zip(CLUSTER_LINES, values, strict=True):
                out[name][i] = value
        return out


class Probe(bt.Strategy):
    params = (("toy", None), ("map_params", None))

    def __init__(self) -> None:
        if self.p.toy is not None:
            self.clusters = LiquidationClusters(self.data, liquidation_map=self.p.toy)
        else:
            self.clusters = LiquidationClusters(self.data, **(self.p.map_params or {}))
        self.seen: list[float] = []

    def next(self) -> None:
        self.seen.append(self.clusters.liq_long[0])


def run(feed_frame, *, runonce, feed_class=PerpData, **strategy_kwargs):
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    cerebro.adddata(feed_class(dataname=feed_frame))
    cerebro.addstrategy(Probe, **strategy_kwargs)
    return cerebro.run()[0]


def lines_of(indicator) -> dict[str, np.ndarray]:
    return {name: np.array(getattr(indicator.lines, name).array) for name in CLUSTER_LINES}


def assert_same_lines(first: dict, second: dict) -> None:
    for name in CLUSTER_LINES:
        assert_allclose(first[name], second[name], rtol=1e-12, atol=0.0, equal_nan=True)
        assert np.array_equal(np.isnan(first[name]), np.isnan(second[name])), name


@pytest.fixture(scope="module")
def frame_with_mark() -> pd.DataFrame:
    return load_fixture("indicators_btc_1h_mark.parquet")


@pytest.fixture(scope="module")
def frame_5m() -> pd.DataFrame:
    return load_fixture("indicators_btc_5m.parquet")


# -- plumbing with the stand-in ------------------------------------------------------------------
def test_lines_are_the_contracted_map_outputs_in_stepper_order():
    contract = (  # CONTRACTS.md, backtest.liquidation.heatmap per-bar outputs
        "liq_long",
        "liq_short",
        "long_cluster_price",
        "long_cluster_notional",
        "long_cluster_distance_pct",
        "short_cluster_price",
        "short_cluster_notional",
        "short_cluster_distance_pct",
        "long_band_notional",
        "short_band_notional",
        "cascade_risk",
    )
    assert LiquidationClusters.lines.getlinealiases() == contract
    # next() zips the stepper's tuple onto the lines: the orders must agree
    assert heatmap.MapOutputs._fields == contract


def test_once_and_next_give_identical_lines(frame_with_mark):
    once = run(frame_with_mark, runonce=True, toy=ToyMap())
    stepped = run(frame_with_mark, runonce=False, toy=ToyMap())
    assert len(once.clusters.liq_long.array) == len(frame_with_mark)
    assert_same_lines(lines_of(once.clusters), lines_of(stepped.clusters))
    assert once.seen == stepped.seen
    # the lines carry something non-trivial (the toy consumed levels on down bars)
    assert np.nanmax(lines_of(once.clusters)["liq_long"]) > 0.0


def test_once_writes_in_place_into_the_line_buffers(frame_with_mark):
    toy = ToyMap()
    strategy = run(frame_with_mark, runonce=True, toy=toy)
    last = toy.calls[-1]
    assert last["n"] == len(frame_with_mark)
    assert last["close_address"] == strategy.data.close.array.buffer_info()[0]
    assert not last["close_writeable"]
    for name in CLUSTER_LINES:
        line = getattr(strategy.clusters.lines, name)
        assert last["out_addresses"][name] == line.array.buffer_info()[0], name
    # next mode steps instead of running the whole buffer
    toy_next = ToyMap()
    run(frame_with_mark, runonce=False, toy=toy_next)
    assert toy_next.calls == []
    assert toy_next.steppers == 1


def test_once_is_stateless_when_called_again(frame_with_mark):
    toy = ToyMap()
    strategy = run(frame_with_mark, runonce=True, toy=toy)
    # backtrader called it for oncestart (1 bar) and once (the rest), each from bar 0
    assert [call["n"] for call in toy.calls] == [1, len(frame_with_mark)]
    before = lines_of(strategy.clusters)
    strategy.clusters.once(1, strategy.clusters.buflen())
    assert_same_lines(before, lines_of(strategy.clusters))


def test_mark_and_funding_lines_reach_the_map(frame_with_mark):
    toy = ToyMap()
    run(frame_with_mark, runonce=True, toy=toy)
    assert toy.calls[-1]["optional_none"] == {
        "funding_rate": False,
        "mark_high": False,
        "mark_low": False,
        "open_interest": True,
    }
    # the toy's cascade_risk is low/close with the mark low, NaN without it
    strategy = run(frame_with_mark, runonce=True, toy=ToyMap())
    risk = np.array(strategy.clusters.cascade_risk.array)
    expected = frame_with_mark["mark_low"].to_numpy() / frame_with_mark["close"].to_numpy()
    assert_allclose(risk, expected, rtol=1e-12)


def test_all_nan_mark_lines_count_as_absent(frame_5m):
    assert frame_5m["mark_high"].isna().all()
    toy = ToyMap()
    once = run(frame_5m, runonce=True, toy=toy)
    assert toy.calls[-1]["optional_none"]["mark_high"]
    assert toy.calls[-1]["optional_none"]["mark_low"]
    assert not toy.calls[-1]["optional_none"]["funding_rate"]
    stepped = run(frame_5m, runonce=False, toy=ToyMap())
    assert_same_lines(lines_of(once.clusters), lines_of(stepped.clusters))


def test_plain_candle_feed_without_extra_lines(frame_5m):
    candles = frame_5m[["open", "high", "low", "close", "volume"]].tz_convert(None)
    toy = ToyMap()
    once = run(candles, runonce=True, feed_class=bt.feeds.PandasData, toy=toy)
    assert all(toy.calls[-1]["optional_none"].values())
    stepped = run(candles, runonce=False, feed_class=bt.feeds.PandasData, toy=ToyMap())
    assert_same_lines(lines_of(once.clusters), lines_of(stepped.clusters))


def test_a_single_line_as_input_is_refused(frame_5m):
    class OnClose(bt.Strategy):
        def __init__(self) -> None:
            LiquidationClusters(self.data.close, liquidation_map=ToyMap())

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(PerpData(dataname=frame_5m))
    cerebro.addstrategy(OnClose)
    with pytest.raises(ConfigError, match="needs a candle feed with lines") as caught:
        cerebro.run()
    assert "\n" not in str(caught.value)


# -- with the real liquidation map (compiled kernel) -------------------------------------------
@pytest.mark.kernel
@pytest.mark.parametrize("fixture", ["frame_with_mark", "frame_5m"])
def test_real_map_once_and_next_identical(fixture, request):
    frame = request.getfixturevalue(fixture)
    map_params = {"cascade": {}}  # default cascade parameters: the cascade_risk line too
    once = run(frame, runonce=True, map_params=map_params)
    stepped = run(frame, runonce=False, map_params=map_params)
    once_lines = lines_of(once.clusters)
    assert_same_lines(once_lines, lines_of(stepped.clusters))
    # every line carries values (nothing stayed NaN or zero throughout)
    for name in CLUSTER_LINES:
        values = once_lines[name]
        assert np.isfinite(values).sum() > len(frame) // 2, name
        assert np.nanmax(np.abs(values)) > 0.0, name


@pytest.mark.kernel
@pytest.mark.parametrize("fixture", ["frame_with_mark", "frame_5m"])
def test_real_map_lines_equal_the_map_run_on_the_frame(fixture, request):
    """Same timeframe, tiers, funding and mark inputs as LiquidationMap.run picks itself."""
    frame = request.getfixturevalue(fixture)
    frame = frame.copy()
    frame.attrs = {"symbol": "BTC/USDT:USDT", "timeframe": "1h" if len(frame) == 480 else "5m"}
    expected = heatmap.LiquidationMap(heatmap.MapParams(band=0.03)).run(frame).lines
    strategy = run(frame, runonce=True, map_params={"band": 0.03})
    assert_same_lines(lines_of(strategy.clusters), {n: expected[n].to_numpy() for n in expected})


@pytest.mark.kernel
def test_real_map_without_timeframe_attrs_infers_the_bar_length(frame_with_mark):
    bare = frame_with_mark.copy()
    bare.attrs = {}
    expected = heatmap.LiquidationMap(heatmap.MapParams(), timeframe="1h").run(bare).lines
    strategy = run(bare, runonce=True)
    assert_same_lines(lines_of(strategy.clusters), {n: expected[n].to_numpy() for n in expected})


@pytest.mark.kernel
def test_mark_prices_change_what_is_liquidated(frame_with_mark):
    with_mark = run(frame_with_mark, runonce=True)
    without = run(frame_with_mark.drop(columns=["mark_high", "mark_low"]), runonce=True)
    consumed_with = np.array(with_mark.clusters.liq_long.array)
    consumed_without = np.array(without.clusters.liq_long.array)
    assert not np.allclose(consumed_with, consumed_without)


@pytest.mark.kernel
def test_map_parameters_pass_through(frame_5m):
    narrow = run(frame_5m, runonce=True, map_params={"band": 0.01})
    wide = run(frame_5m, runonce=True, map_params={"band": 0.08})
    narrow_band = np.nansum(np.array(narrow.clusters.long_band_notional.array))
    wide_band = np.nansum(np.array(wide.clusters.long_band_notional.array))
    assert wide_band > narrow_band > 0.0


def test_a_bad_map_parameter_is_one_clear_line(frame_5m):
    with pytest.raises(ConfigError) as caught:
        run(frame_5m, runonce=True, map_params={"bandwidth": 0.03})
    assert "bandwidth" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.kernel
def test_explicit_timeframe_and_ready_map_are_honoured(frame_with_mark):
    frame = frame_with_mark.copy()
    frame.attrs = {"symbol": "BTC/USDT:USDT", "timeframe": "1h"}
    as_if_minutes = heatmap.LiquidationMap(heatmap.MapParams(), timeframe="1m").run(frame).lines
    expected = {name: as_if_minutes[name].to_numpy() for name in CLUSTER_LINES}

    class Explicit(bt.Strategy):
        def __init__(self) -> None:
            self.by_argument = LiquidationClusters(self.data, timeframe="1m")
            ready = heatmap.LiquidationMap(heatmap.MapParams(), timeframe="1m")
            self.by_map = LiquidationClusters(self.data, liquidation_map=ready)
            self.from_feed = LiquidationClusters(self.data)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(PerpData(dataname=frame))
    cerebro.addstrategy(Explicit)
    strategy = cerebro.run()[0]
    assert_same_lines(lines_of(strategy.by_argument), expected)
    assert_same_lines(lines_of(strategy.by_map), expected)
    # the feed says 1h: a 48 h half-life then decays 60 times faster per bar
    from_feed = lines_of(strategy.from_feed)["long_band_notional"]
    assert np.nanmean(from_feed) < np.nanmean(expected["long_band_notional"])


def test_a_ready_map_and_map_parameters_together_are_refused(frame_5m):
    class Both(bt.Strategy):
        def __init__(self) -> None:
            LiquidationClusters(self.data, liquidation_map=ToyMap(), band=0.02)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(PerpData(dataname=frame_5m))
    cerebro.addstrategy(Both)
    with pytest.raises(ConfigError, match="either liquidation_map or map parameters"):
        cerebro.run()
