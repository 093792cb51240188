"""The liquidation map: parameters, the per-bar model's accounting, API contracts.

Most tests run the pure-Python reference (``backend="reference"``, the specification) on small
synthetic series, so they read as statements about the model; the ones that need the compiled
kernel are marked ``kernel``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.errors import ConfigError, DataError
from backtest.liquidation.heatmap import (
    LINES,
    DensitySnapshot,
    LiquidationMap,
    MapOutputs,
    MapParams,
)
from backtest.liquidation.prices import liquidation_factor
from backtest.liquidation.profiles import read_profile
from backtest.liquidation.tiers import load_tiers
from backtest.market.store import load_market

NAN = math.nan
PROFILES = Path(__file__).resolve().parents[2] / "data" / "profiles"


def candles(closes, *, spread=0.001, volume=10.0):
    """Bars around the given closes: open = previous close, high/low `spread` beyond."""
    close = np.asarray(closes, dtype=float)
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    return open_, high, low, close, np.full(close.shape, float(volume))


def reference_map(**params):
    return LiquidationMap(MapParams(**params), timeframe="5m", backend="reference")


def density(chosen, *arrays, **optional):
    """Final (log_price_min, long, short) after running the arrays through a fresh kernel."""
    kernel = chosen.new_kernel()
    n = len(arrays[0])
    out = [np.empty(n) for _ in LINES]
    names = ("funding_rate", "mark_high", "mark_low", "open_interest")
    kernel.process(*arrays, *(optional.get(name) for name in names), out, 0, n)
    return kernel.density(), dict(zip(LINES, out, strict=True))


# -- parameters ----------------------------------------------------------------------------------
def test_defaults_are_the_shipped_calibration_fitted_before_the_test_window():
    params = MapParams()
    assert math.fsum(params.leverage_weights) == pytest.approx(1.0)
    assert max(params.leverages) == 125.0  # Binance's maximum for BTC and ETH
    assert params.bucket_width == 0.001
    assert 0.05 <= params.band <= 0.10
    assert params.cascade is None
    profile = read_profile(PROFILES / "binance-btc-eth-5m.toml")
    assert profile.params == params
    since, until = profile.fitted_window
    assert pd.Timestamp(until) <= pd.Timestamp("2025-07-01", tz="UTC")  # the test window
    assert pd.Timestamp(since) >= pd.Timestamp("2025-01-01", tz="UTC")
    assert profile.calibration["symbols"] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    # the rounded defaults stay within 2 % of the fitted participation
    assert params.participation == pytest.approx(
        profile.calibration["fitted_participation"], rel=0.02
    )


def test_params_are_frozen_and_lists_become_tuples():
    params = MapParams(leverages=[2, 10], leverage_weights=[0.5, 0.5])
    assert params.leverages == (2.0, 10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.band = 0.1  # type: ignore[misc]
    assert MapParams.from_dict(params.to_dict()) == params


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"leverages": (2.0,) * 8, "leverage_weights": (0.1,) * 8}, "sum to 0.8"),
        ({"leverages": (1.0, 10.0), "leverage_weights": (0.5, 0.5)}, "above 1"),
        ({"leverages": (0.5,), "leverage_weights": (1.0,)}, "above 1"),
        ({"leverages": (2.0, 10.0), "leverage_weights": (1.0,)}, "one weight per leverage"),
        ({"leverages": (), "leverage_weights": ()}, "empty"),
        ({"leverages": (2.0, 3.0, 5.0), "leverage_weights": (1.1, -0.1, 0)}, "negative"),
        ({"bucket_width": 0.0}, "must be positive"),
        ({"bucket_width": -0.001}, "must be positive"),
        ({"band": 0.0}, "band"),
        ({"long_share_base": 0.8}, "long_share_min <= long_share_base"),
        ({"half_life_hours": 0.0}, "positive"),
        ({"participation": -1.0}, "positive"),
        ({"entry_points": 0}, "entry_points"),
        ({"venue": "binanse"}, "did you mean 'binance'"),
        ({"grid_span": 1.05}, "too small"),
        ({"grid_span": 1.1, "bucket_width": 0.001}, "use grid_span >= 1.15"),
        ({"band": "wide"}, "must be a number"),
    ],
)
def test_bad_params_end_in_one_clear_error(changes, message):
    with pytest.raises(ConfigError, match=message) as caught:
        MapParams(**changes)
    assert "\n" not in str(caught.value)


def test_unknown_parameter_name_suggests_the_right_one():
    with pytest.raises(ConfigError, match="did you mean 'half_life_hours'"):
        MapParams.from_dict({"half_life_hour": 24})


def test_venue_without_its_rate_says_which_field_to_set():
    chosen = LiquidationMap(MapParams(venue="bybit"), timeframe="5m")
    with pytest.raises(ConfigError, match="maintenance_margin_rate"):
        chosen.liquidation_factors()
    bybit = LiquidationMap(MapParams(venue="bybit", maintenance_margin_rate=0.005))
    longs, _ = bybit.liquidation_factors()
    assert longs[3] == pytest.approx(1 - 1 / 10 + 0.005)  # Bybit: EP·(1 − 1/L + MMR)


# -- bad input -----------------------------------------------------------------------------------
def test_empty_and_mismatched_input_raise_data_errors():
    chosen = reference_map()
    with pytest.raises(DataError, match="empty"):
        chosen.run_arrays(*(np.empty(0),) * 5)
    arrays = list(candles([100.0, 101.0, 102.0]))
    arrays[4] = arrays[4][:2]
    with pytest.raises(DataError, match="volume has 2 values"):
        chosen.run_arrays(*arrays)
    with pytest.raises(DataError, match="funding_rate has 1 values"):
        chosen.run_arrays(*candles([100.0, 101.0]), funding_rate=np.zeros(1))


@pytest.mark.kernel
def test_missing_bar_length_is_a_clear_error():
    with pytest.raises(ConfigError, match="timeframe"):
        LiquidationMap(MapParams()).run_arrays(*candles([100.0, 101.0]))
    # half_life_bars needs no timeframe
    result = LiquidationMap(MapParams(half_life_bars=100)).run_arrays(*candles([100.0, 101.0]))
    assert result["liq_long"].shape == (2,)


def test_bad_out_arrays_are_rejected():
    chosen = reference_map()
    out = {name: np.empty(3) for name in LINES}
    out["liq_long"] = np.empty(3, dtype=np.float32)
    with pytest.raises(ConfigError, match="liq_long"):
        chosen.run_arrays(*candles([100.0, 101.0, 102.0]), out=out)
    with pytest.raises(ConfigError, match="lacks"):
        chosen.run_arrays(*candles([100.0, 101.0, 102.0]), out={"liq_long": np.empty(3)})


# -- the model's accounting ----------------------------------------------------------------------
def test_crash_bar_liquidates_exactly_the_longs_above_its_low():
    chosen = reference_map(touch_fraction=1.0)  # every crossed level whole
    calm = candles(100.0 + np.sin(np.arange(60) / 5.0))
    (log_min, long_before, short_before), _ = density(chosen, *calm)
    step = chosen.params.log_step
    crash_low = 92.0
    crash = [
        np.append(a, b) for a, b in zip(calm, (100.0, 100.2, crash_low, 93.0, 10.0), strict=True)
    ]
    _, lines = density(chosen, *crash)
    first = math.floor((math.log(crash_low) - log_min) / step)
    decay = 0.5 ** (5 / 60 / chosen.params.half_life_hours)
    # bucket boundaries are exp((k0 + i)·step): the crash bar consumes buckets >= first
    expected = long_before[first:].sum()
    assert expected > 0.0
    assert lines["liq_long"][-1] == pytest.approx(expected, rel=1e-9)
    assert lines["liq_short"][-1] == pytest.approx(short_before[: math.floor(
        (math.log(100.2) - log_min) / step) + 1].sum(), rel=1e-9)  # fmt: skip
    # what is left above the low was opened in the crash bar itself (consume comes first)
    (_, long_after, _), _ = density(chosen, *crash)
    opened = chosen.params.participation * 10.0 * (100.0 + 100.2 + 92.0) / 3.0 * decay
    assert 0.0 < long_after[first + 1 :].sum() < opened


def test_touched_levels_lose_only_the_touch_fraction():
    """A low that only touches a level takes touch_fraction of it; a deeper low takes it all."""
    params = {
        "leverages": (10.0,), "leverage_weights": (1.0,), "entry_points": 1,
        "round_level_weight": 0.0, "touch_fraction": 0.25, "touch_depth": 0.003,
    }  # fmt: skip
    chosen = reference_map(**params)
    step = chosen.params.log_step
    assert chosen.params.geometry().touch_buckets == 3
    # one flat bar at 100 opens a 10x long at one level (and a short far above); the density
    # is read after each bar's decay, liquidations are taken before it
    seed = [np.array([x]) for x in (100.0, 100.0, 100.0, 100.0, 4.0)]
    (log_min, long0, _), _ = density(chosen, *seed)
    (level,) = np.nonzero(long0)[0]
    notional = long0[level]
    edge = math.exp(log_min + level * step)  # the level bucket's lower edge
    decay = 0.5 ** (5 / 60 / chosen.params.half_life_hours)

    def bar_to(low):  # a bar whose low reaches `low` (its own new levels lie far below)
        return (100.0, 100.0, low, 100.0, 1e-12)

    def run(*lows):
        bars = [seed] + [[np.array([x]) for x in bar_to(low)] for low in lows]
        arrays = [np.concatenate([bar[k] for bar in bars]) for k in range(5)]
        return density(chosen, *arrays)

    # the low lands in the level's own bucket: touched (depth 0 < 3 buckets)
    (_, long1, _), lines = run(edge * 1.0001)
    assert lines["liq_long"][1] == pytest.approx(0.25 * notional, rel=1e-9)
    assert long1[level] == pytest.approx(0.75 * notional * decay, rel=1e-9)
    # touched again by the next bar: another quarter of what is left
    _, lines = run(edge * 1.0001, edge * 1.0001)
    assert lines["liq_long"][2] == pytest.approx(0.25 * 0.75 * notional * decay, rel=1e-9)
    # a low three buckets or more below the level's bucket liquidates it whole
    deep = math.exp(log_min + (level - 3) * step) * 1.0001
    (_, long2, _), lines = run(deep)
    assert lines["liq_long"][1] == pytest.approx(notional, rel=1e-9)
    assert long2[level] < 1e-9 * notional  # only the tiny bar's own new positions
    # two buckets below: still touched
    _, lines = run(math.exp(log_min + (level - 2) * step) * 1.0001)
    assert lines["liq_long"][1] == pytest.approx(0.25 * notional, rel=1e-9)
    # touch_fraction = 1 is the whole-level rule
    whole = LiquidationMap(
        MapParams(**{**params, "touch_fraction": 1.0}), timeframe="5m", backend="reference"
    )
    bars = [seed, [np.array([x]) for x in bar_to(edge * 1.0001)]]
    arrays = [np.concatenate([bar[k] for bar in bars]) for k in range(5)]
    _, lines = density(whole, *arrays)
    assert lines["liq_long"][1] == pytest.approx(notional, rel=1e-9)


def test_mark_price_low_decides_the_liquidations():
    chosen = reference_map()
    calm = candles(100.0 + np.sin(np.arange(60) / 5.0))
    crash = [np.append(a, b) for a, b in zip(calm, (100.0, 100.2, 92.0, 93.0, 10.0), strict=True)]
    n = len(crash[0])
    mark_low = np.full(n, NAN)
    mark_low[-1] = 96.0  # the mark price fell less than the last trade
    _, traded = density(chosen, *crash)
    _, marked = density(chosen, *crash, mark_low=mark_low)
    assert 0.0 < marked["liq_long"][-1] < traded["liq_long"][-1]
    np.testing.assert_allclose(marked["liq_long"][:-1], traded["liq_long"][:-1])


def test_created_notional_and_decay_add_up():
    """Total after a bar = (total before − liquidated + created) × decay."""
    params = {"grid_span": 8.0}
    chosen = reference_map(**params)
    series = candles(100.0 + 2.0 * np.sin(np.arange(40) / 3.0), volume=7.0)
    decay = 0.5 ** (5 / 60 / chosen.params.half_life_hours)
    participation = chosen.params.participation
    for bars in (20, 30, 39):
        (_, long0, short0), _ = density(chosen, *(a[:bars] for a in series))
        (_, long1, short1), lines = density(chosen, *(a[: bars + 1] for a in series))
        _, h, lo, c, v = (a[bars] for a in series)
        created = 2.0 * participation * v * (h + lo + c) / 3.0
        liquidated = lines["liq_long"][bars] + lines["liq_short"][bars]
        before = long0.sum() + short0.sum()
        assert long1.sum() + short1.sum() == pytest.approx(
            (before - liquidated + created) * decay, rel=1e-9
        )


@pytest.mark.parametrize(("funding", "share"), [(0.0001, 0.5), (0.0003, 0.55), (0.01, 0.65)])
def test_long_share_leans_with_funding(funding, share):
    chosen = reference_map(
        round_level_weight=0.0, long_share_base=0.5, long_share_funding_tilt=250.0,
        long_share_min=0.35, long_share_max=0.65,
    )  # fmt: skip
    bar = [np.array([x]) for x in (100.0, 100.1, 99.9, 100.0, 5.0)]
    (_, long_notional, short_notional), _ = density(chosen, *bar, funding_rate=np.array([funding]))
    assert long_notional.sum() / short_notional.sum() == pytest.approx(share / (1 - share))


def test_levels_sit_at_the_exact_liquidation_prices():
    params = MapParams(
        leverages=(10.0,), leverage_weights=(1.0,), entry_points=1, round_level_weight=0.0
    )
    chosen = LiquidationMap(params, timeframe="5m", backend="reference")
    entry = 1234.56
    bar = [np.array([x]) for x in (entry, entry, entry, entry, 3.0)]
    (log_min, long_notional, short_notional), _ = density(chosen, *bar)
    tiers = load_tiers()
    snapshot = DensitySnapshot(None, entry, log_min, params.log_step, long_notional, short_notional)
    centres = snapshot.bucket_prices
    for side, values in (("long", long_notional), ("short", short_notional)):
        (filled,) = np.nonzero(values)
        assert filled.size == 1
        exact = entry * liquidation_factor("binance", side, 10.0, notional=10_000, tiers=tiers)
        assert abs(centres[filled[0]] / exact - 1.0) <= params.bucket_width  # in that bucket
        # and not at the textbook EP·(1 ∓ 1/L): Binance keeps maintenance margin back
    textbook_long = entry * 0.9
    assert abs(centres[np.nonzero(long_notional)[0][0]] / textbook_long - 1) > 0.003


def test_open_interest_drives_creation_and_removal():
    chosen = reference_map(round_level_weight=0.0, grid_span=8.0)
    closes = np.full(6, 50.0)
    series = candles(closes, spread=0.0)
    oi = np.array([1000.0, 1010.0, 1010.0, 1005.0, NAN, 1020.0])
    totals = []
    for bars in range(1, 7):
        (_, long_notional, short_notional), _ = density(
            chosen, *(a[:bars] for a in series), open_interest=oi[:bars]
        )
        totals.append(long_notional.sum() + short_notional.sum())
    decay = 0.5 ** (5 / 60 / chosen.params.half_life_hours)
    # bar 0: no previous OI -> volume model (participation) and decay
    # bar 1: OI +10 contracts at 50 -> 2 × 500 of new positions, no decay
    assert totals[1] == pytest.approx(totals[0] + 2 * 10 * 50.0)
    assert totals[2] == pytest.approx(totals[1])  # OI flat: nothing created or removed
    assert totals[3] == pytest.approx(totals[2] * 1005 / 1010)  # proportional haircut
    # NaN OI: that bar falls back to the volume model with decay
    created = 2 * chosen.params.participation * 10.0 * 50.0
    assert totals[4] == pytest.approx((totals[3] + created) * decay)
    assert totals[5] == pytest.approx(totals[4] + 2 * 15 * 50.0)
    # a negative open interest is garbage: treated as missing, like NaN
    negative = oi.copy()
    negative[4] = -5.0
    (_, long_notional, short_notional), _ = density(chosen, *series, open_interest=negative)
    assert long_notional.sum() + short_notional.sum() == pytest.approx(totals[5])


def test_skipped_bars_change_nothing_and_carry_the_report():
    chosen = reference_map()
    series = [list(a) for a in candles(100.0 + np.cos(np.arange(30) / 4.0))]
    bad = {5: ("volume", 0.0), 11: ("close", NAN), 12: ("high", NAN), 20: ("volume", NAN)}
    names = ("open", "high", "low", "close", "volume")
    total = len(series[0]) + len(bad)
    with_gaps: list[list[float]] = [[] for _ in names]
    source = 0
    for position in range(total):
        for index, column in enumerate(with_gaps):
            value = series[index][min(source, len(series[0]) - 1)]
            if position in bad and bad[position][0] == names[index]:
                value = bad[position][1]
            column.append(value)
        if position not in bad:
            source += 1
    gappy = [np.array(a) for a in with_gaps]
    clean = [np.array(a) for a in series]
    result = chosen.run_arrays(*gappy)
    expected = chosen.run_arrays(*clean)
    skipped = np.zeros(len(gappy[0]), dtype=bool)
    skipped[list(bad)] = True
    for name in LINES:
        np.testing.assert_allclose(result[name][~skipped], expected[name], equal_nan=True)
    for position in bad:
        assert result["liq_long"][position] == 0.0 and result["liq_short"][position] == 0.0
        for name in LINES[2:]:
            np.testing.assert_equal(result[name][position], result[name][position - 1])
    for name in ("liq_long", "liq_short", "long_band_notional", "short_band_notional"):
        assert np.isfinite(result[name]).all()


def test_leading_invalid_bars_give_nan_report_and_zero_liquidations():
    chosen = reference_map()
    o, h, lo, c, v = candles([100.0, 100.5, 101.0, 100.0])
    c = c.copy()
    c[0] = NAN
    result = chosen.run_arrays(o, h, lo, c, v)
    assert result["liq_long"][0] == 0.0
    assert np.isnan(result["long_band_notional"][0])
    assert np.isfinite(result["long_band_notional"][1:]).all()


def test_price_leaving_the_grid_recentres_it():
    """A tenfold rally: the grid follows the price and the report stays sensible."""
    chosen = reference_map(grid_span=2.0, bucket_width=0.005)
    closes = 100.0 * np.exp(np.linspace(0.0, math.log(10.0), 200))
    series = candles(closes)
    (log_min, long_notional, short_notional), lines = density(chosen, *series)
    n = long_notional.size
    centre = (math.log(closes[-1]) - log_min) / chosen.params.log_step
    assert n // 4 <= centre < n - n // 4
    assert np.isfinite(lines["long_band_notional"]).all()
    below = lines["long_cluster_price"][-1]
    assert below < closes[-1] and below > closes[-1] * (1 - chosen.params.band) * 0.999
    # levels more than grid_span/2-fold below were dropped, so nothing sits near the start
    snapshot = DensitySnapshot(None, closes[-1], log_min, chosen.params.log_step,
                               long_notional, short_notional)  # fmt: skip
    assert snapshot.bucket_prices[0] > 200.0


def test_a_bar_far_outside_the_grid_is_handled():
    chosen = reference_map(grid_span=2.0, bucket_width=0.005)
    o, h, lo, c, v = candles(np.full(20, 100.0))
    lo = lo.copy()
    lo[10] = 1.0  # a bad tick: 99 % below
    result = chosen.run_arrays(o, h, lo, c, v)
    assert result["liq_long"][10] > 0.0
    assert np.isfinite(result["long_band_notional"]).all()


def test_report_matches_the_snapshot():
    chosen = reference_map()
    frame = load_market("ETH/USDT:USDT", "5m", until="2025-10-03")
    result = LiquidationMap(chosen.params, backend="reference").run(frame, snapshot_every=97)
    assert len(result.snapshots) == len(frame) // 97
    params = chosen.params
    for snapshot in result.snapshots[-3:]:
        row = result.lines.loc[snapshot.time]
        prices = snapshot.bucket_prices
        edges = snapshot.bucket_edges
        centre = np.searchsorted(edges, snapshot.price, side="right") - 1
        band = params.geometry().band_buckets
        assert row["long_band_notional"] == pytest.approx(
            snapshot.long_notional[centre - band : centre].sum(), rel=1e-9
        )
        assert row["short_band_notional"] == pytest.approx(
            snapshot.short_notional[centre + 1 : centre + band + 1].sum(), rel=1e-9
        )
        assert np.isclose(
            prices[centre - band : centre], row["long_cluster_price"], rtol=1e-12
        ).any()
        assert np.isclose(
            prices[centre + 1 : centre + band + 1], row["short_cluster_price"], rtol=1e-12
        ).any()
        assert row["long_cluster_distance_pct"] == pytest.approx(
            (snapshot.price - row["long_cluster_price"]) / snapshot.price * 100
        )


# -- the API -------------------------------------------------------------------------------------
@pytest.mark.kernel
def test_run_frame_columns_snapshots_and_final():
    frame = load_market("BTC/USDT:USDT", "5m", until="2025-10-02")
    chosen = LiquidationMap()
    result = chosen.run(frame, snapshot_at=["2025-10-01T12:02", 5], snapshot_every=100)
    assert list(result.lines.columns) == list(LINES)
    assert result.lines.index.equals(frame.index)
    times = [snapshot.time for snapshot in result.snapshots]
    assert pd.Timestamp("2025-10-01T12:00", tz="UTC") in times  # the bar holding 12:02
    assert times == sorted(times) and len(times) == 2 + len(frame) // 100
    assert result.snapshot("2025-10-01T12:03").time == pd.Timestamp("2025-10-01T12:00", tz="UTC")
    assert result.final is not None
    assert result.final.price == frame["close"].iloc[-1]
    with pytest.raises(ConfigError, match="before the first bar"):
        chosen.run(frame, snapshot_at="2025-09-01")


@pytest.mark.kernel
def test_snapshot_geometry():
    frame = load_market("BTC/USDT:USDT", "5m", until="2025-10-02")
    snapshot = LiquidationMap().run(frame).final
    assert snapshot is not None
    edges = snapshot.bucket_edges
    assert edges.size == snapshot.n_buckets + 1
    np.testing.assert_allclose(np.diff(np.log(edges)), snapshot.log_step)
    assert edges[0] < snapshot.price < edges[-1]
    lower, long_sum, short_sum = snapshot.rebucket(1000.0)
    assert long_sum.sum() == pytest.approx(snapshot.long_notional.sum())
    assert short_sum.sum() == pytest.approx(snapshot.short_notional.sum())
    assert np.all(lower % 1000.0 == 0)


@pytest.mark.kernel
def test_outputs_land_in_the_given_arrays_and_read_only_inputs_work():
    frame = load_market("BTC/USDT:USDT", "5m", until="2025-10-03")
    arrays = [frame[name].to_numpy().copy() for name in ("open", "high", "low", "close", "volume")]
    for array in arrays:
        array.flags.writeable = False
    out = {name: np.full(len(frame), -1.0) for name in LINES}
    chosen = LiquidationMap(timeframe="5m")
    returned = chosen.run_arrays(*arrays, funding_rate=frame["funding_rate"].to_numpy(), out=out)
    for name in LINES:
        assert returned[name] is out[name]
    assert (out["liq_long"] >= 0).all()
    # same answer as writable copies
    again = chosen.run_arrays(*(a.copy() for a in arrays), funding_rate=frame["funding_rate"])
    for name in LINES:
        np.testing.assert_array_equal(again[name], out[name])


@pytest.mark.kernel
def test_stepper_gives_exactly_what_run_gives():
    frame = load_market("ETH/USDT:USDT", "5m", since="2025-10-09", until="2025-10-12")
    frame = frame.copy()
    frame.iloc[50, frame.columns.get_loc("volume")] = 0.0
    frame.iloc[51, frame.columns.get_loc("close")] = NAN
    mark_low = frame["low"].to_numpy() * 1.0005
    mark_low[::7] = NAN
    frame["mark_low"] = mark_low
    chosen = LiquidationMap()
    result = chosen.run(frame)
    stepper = chosen.stepper(timeframe="5m")
    rows = []
    for row in frame.itertuples():
        rows.append(
            stepper.update(
                row.open, row.high, row.low, row.close, row.volume,
                funding_rate=row.funding_rate, mark_high=row.mark_high, mark_low=row.mark_low,
            )
        )  # fmt: skip
    assert isinstance(rows[0], MapOutputs)
    stepped = pd.DataFrame(rows, index=frame.index, columns=list(LINES))
    pd.testing.assert_frame_equal(stepped, result.lines, check_exact=True)
    final = stepper.snapshot()
    assert final is not None and result.final is not None
    np.testing.assert_array_equal(final.long_notional, result.final.long_notional)
    assert final.log_price_min == result.final.log_price_min
    stepper.reset()
    assert stepper.snapshot() is None


def test_stepper_accepts_none_as_missing():
    stepper = reference_map().stepper()
    values = stepper.update(100.0, 100.5, 99.5, 100.2, 3.0, funding_rate=None, mark_low=None)
    assert values.liq_long == 0.0
    assert math.isnan(values.cascade_risk)
