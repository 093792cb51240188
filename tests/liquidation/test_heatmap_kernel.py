"""The compiled map kernel against its pure-Python reference (the specification)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from backtest.errors import ConfigError
from backtest.liquidation._native import load_kernel
from backtest.liquidation.cascade import CascadeParams
from backtest.liquidation.heatmap import LINES, LiquidationMap, MapParams
from backtest.market.store import load_market

pytestmark = pytest.mark.kernel

NAN = math.nan
KERNEL = load_kernel("_heatmap")
SIMD_LEVELS = (0, 1, 2)


@pytest.fixture(autouse=True)
def _restore_simd():
    yield
    KERNEL.set_simd(2)


def run_both(params, arrays, optional=None, *, timeframe="5m", simd=2):
    """Run kernel and reference; return both outputs and final densities."""
    optional = optional or {}
    KERNEL.set_simd(simd)
    results = []
    for backend in ("kernel", "reference"):
        chosen = LiquidationMap(params, timeframe=timeframe, backend=backend)
        kernel = chosen.new_kernel()
        n = len(arrays[0])
        out = [np.full(n, -7.0) for _ in LINES]
        names = ("funding_rate", "mark_high", "mark_low", "open_interest")
        kernel.process(*arrays, *(optional.get(name) for name in names), out, 0, n)
        results.append((dict(zip(LINES, out, strict=True)), kernel.density()))
    return results


def assert_same(kernel_result, reference_result):
    (kernel_lines, kernel_density), (reference_lines, reference_density) = (
        kernel_result,
        reference_result,
    )
    for name in LINES:
        assert_allclose(
            kernel_lines[name], reference_lines[name], rtol=1e-9, atol=1e-9, equal_nan=True,
            err_msg=name,
        )  # fmt: skip
    if reference_density is None:
        assert kernel_density is None
        return
    assert kernel_density[0] == reference_density[0]
    assert_allclose(kernel_density[1], reference_density[1], rtol=1e-9, atol=1e-9)
    assert_allclose(kernel_density[2], reference_density[2], rtol=1e-9, atol=1e-9)


# -- random data ---------------------------------------------------------------------------------
@st.composite
def bar_series(draw):
    n = draw(st.integers(min_value=1, max_value=40))
    start = draw(st.floats(min_value=0.05, max_value=5e4))
    steps = draw(st.lists(st.floats(-0.08, 0.08), min_size=n, max_size=n))
    close = start * np.exp(np.cumsum(steps))
    open_ = np.concatenate([[start], close[:-1]])
    up = np.array(draw(st.lists(st.floats(0.0, 0.05), min_size=n, max_size=n)))
    down = np.array(draw(st.lists(st.floats(0.0, 0.05), min_size=n, max_size=n)))
    high = np.maximum(open_, close) * (1 + up)
    low = np.minimum(open_, close) * (1 - down)
    volume = np.array(draw(st.lists(st.floats(0.0, 1e4), min_size=n, max_size=n)))
    # holes: NaN prices or volume, zero volume, an inverted bar
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, n - 1))
        choice = draw(st.sampled_from(["close", "volume", "zero", "inverted"]))
        if choice == "close":
            close[position] = NAN
        elif choice == "volume":
            volume[position] = NAN
        elif choice == "zero":
            volume[position] = 0.0
        else:
            high[position], low[position] = low[position] * 0.99, high[position]
    funding = np.full(n, NAN)
    for position in draw(st.lists(st.integers(0, n - 1), max_size=3)):
        funding[position] = draw(st.floats(-0.003, 0.003))
    optional = {"funding_rate": funding}
    if draw(st.booleans()):
        mark = draw(st.lists(st.floats(-0.01, 0.01), min_size=n, max_size=n))
        optional["mark_low"] = low * (1 + np.abs(mark))
        optional["mark_high"] = high * (1 - np.abs(mark))
        optional["mark_low"][:: max(2, n // 3)] = NAN
    if draw(st.booleans()):
        oi = 1e3 * np.exp(np.cumsum(draw(st.lists(st.floats(-0.1, 0.1), min_size=n, max_size=n))))
        if n > 2:
            oi[1] = NAN
        optional["open_interest"] = oi
    return [open_, high, low, close, volume], optional


@st.composite
def small_params(draw):
    count = draw(st.integers(1, 4))
    leverages = sorted(draw(st.lists(st.sampled_from([2, 3, 5, 10, 20, 25, 50, 75, 100]),
                                     min_size=count, max_size=count, unique=True)))  # fmt: skip
    raw = draw(st.lists(st.floats(0.05, 1.0), min_size=len(leverages), max_size=len(leverages)))
    weights = [value / math.fsum(raw) for value in raw]
    weights[-1] = 1.0 - math.fsum(weights[:-1])
    return MapParams(
        leverages=tuple(float(x) for x in leverages),
        leverage_weights=tuple(weights),
        bucket_width=draw(st.sampled_from([0.002, 0.005, 0.01])),
        grid_span=draw(st.sampled_from([2.0, 3.0])),
        band=draw(st.sampled_from([0.02, 0.05, 0.1])),
        smoothing=draw(st.sampled_from([0.0, 0.005, 0.01, 0.02])),
        entry_points=draw(st.integers(1, 6)),
        entry_concentration=draw(st.floats(0.0, 4.0)),
        round_level_weight=draw(st.sampled_from([0.0, 0.15, 0.6])),
        half_life_hours=draw(st.floats(0.5, 100.0)),
        touch_fraction=draw(st.sampled_from([1.0, 0.7, 0.3])),
        touch_depth=draw(st.sampled_from([0.0, 0.005, 0.02])),
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=bar_series(), params=small_params(), simd=st.sampled_from(SIMD_LEVELS))
def test_kernel_matches_reference_on_random_bars(data, params, simd):
    arrays, optional = data
    kernel_result, reference_result = run_both(params, arrays, optional, simd=simd)
    assert_same(kernel_result, reference_result)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=bar_series(), simd=st.sampled_from(SIMD_LEVELS))
def test_kernel_matches_reference_with_default_smoothing(data, simd):
    # the default smoothing (two buckets) has its own vectorised scan
    arrays, optional = data
    params = MapParams(bucket_width=0.004, grid_span=2.0, band=0.1, smoothing=0.008)
    assert params.geometry().smoothing_buckets == 2
    kernel_result, reference_result = run_both(params, arrays, optional, simd=simd)
    assert_same(kernel_result, reference_result)


# -- real data -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def crash_slice():
    frame = load_market("BTC/USDT:USDT", "5m", since="2025-10-09T12:00", until="2025-10-11")
    arrays = [frame[name].to_numpy() for name in ("open", "high", "low", "close", "volume")]
    return arrays, {"funding_rate": frame["funding_rate"].to_numpy()}


@pytest.mark.parametrize("simd", SIMD_LEVELS)
def test_kernel_matches_reference_on_the_real_crash(crash_slice, simd):
    arrays, optional = crash_slice
    kernel_result, reference_result = run_both(MapParams(), arrays, optional, simd=simd)
    assert_same(kernel_result, reference_result)
    # something actually happened in this slice: the crash bar dwarfs the typical one
    liq_long = kernel_result[0]["liq_long"]
    assert liq_long.max() > 1_000 * np.median(liq_long[liq_long > 0])


@pytest.mark.parametrize("touch", [(0.4, 0.003), (0.8, 0.01), (1.0, 0.003)])
def test_kernel_matches_reference_with_touched_levels_on_the_real_crash(crash_slice, touch):
    arrays, optional = crash_slice
    fraction, depth = touch
    params = MapParams(touch_fraction=fraction, touch_depth=depth)
    kernel_result, reference_result = run_both(params, arrays, optional)
    assert_same(kernel_result, reference_result)


def test_kernel_matches_reference_with_the_cascade_line(crash_slice):
    arrays, optional = crash_slice
    params = MapParams(cascade=CascadeParams(standard_shock_pct=2.0))
    cut = [array[:150] for array in arrays]
    kernel_result, reference_result = run_both(
        params, cut, {"funding_rate": optional["funding_rate"][:150]}
    )
    assert_same(kernel_result, reference_result)
    risk = kernel_result[0]["cascade_risk"]
    assert np.isnan(risk[0]) and np.isfinite(risk[1:]).all() and (risk[1:] >= 1.0).all()


def test_simd_levels_give_identical_numbers(crash_slice):
    arrays, optional = crash_slice
    outputs = []
    for level in SIMD_LEVELS:
        KERNEL.set_simd(level)
        outputs.append(LiquidationMap(timeframe="5m").run_arrays(*arrays, **optional))
    for name in LINES:
        if name.endswith("band_notional"):  # summed in another order per level: rounding only
            assert_allclose(outputs[0][name], outputs[2][name], rtol=1e-12, equal_nan=True)
            continue
        for other in outputs[1:]:
            np.testing.assert_array_equal(outputs[0][name], other[name], err_msg=name)


# -- the wrapper ---------------------------------------------------------------------------------
def test_process_in_chunks_equals_one_pass_and_step(crash_slice):
    arrays, optional = crash_slice
    chosen = LiquidationMap(timeframe="5m")
    whole = chosen.run_arrays(*arrays, **optional)
    kernel = chosen.new_kernel()
    n = len(arrays[0])
    out = [np.empty(n) for _ in LINES]
    for start in range(0, n, 37):
        kernel.process(*arrays, optional["funding_rate"], None, None, None, out, start,
                       min(n, start + 37))  # fmt: skip
    stepper = chosen.new_kernel()
    stepped = np.array(
        [stepper.step(*(a[i] for a in arrays), optional["funding_rate"][i]) for i in range(n)]
    )
    for column, name in enumerate(LINES):
        np.testing.assert_array_equal(out[column], whole[name])
        np.testing.assert_array_equal(stepped[:, column], whole[name])


def test_process_checks_its_arguments():
    kernel = LiquidationMap(timeframe="5m").new_kernel()
    good = [np.ones(3) for _ in range(5)]
    out = [np.empty(3) for _ in LINES]
    with pytest.raises(ValueError, match="same length"):
        kernel.process(*good[:4], np.ones(2), None, None, None, None, out, 0, 3)
    with pytest.raises(ValueError, match="mark_low has 2 values"):
        kernel.process(*good, None, None, np.ones(2), None, out, 0, 3)
    with pytest.raises(ValueError, match="one per line"):
        kernel.process(*good, None, None, None, None, out[:3], 0, 3)
    with pytest.raises(ValueError, match="start <= stop"):
        kernel.process(*good, None, None, None, None, out, 2, 1)
    with pytest.raises(ValueError, match=r"read-only|writable"):
        frozen = [np.empty(3) for _ in LINES]
        frozen[4].flags.writeable = False
        kernel.process(*good, None, None, None, None, frozen, 0, 3)
    with pytest.raises(ValueError, match="band"):
        KERNEL.MapKernel([-1.0], [1.0], [1.0], [1.0] * 25, log_step=0.01, half_buckets=10,
                         entry_points=1, entry_concentration=0.0, round_level_weight=0.0,
                         long_share_base=0.5, funding_tilt=0.0, neutral_funding_rate=0.0,
                         long_share_min=0.4, long_share_max=0.6, participation=0.1,
                         decay_per_bar=0.99, band_buckets=5, smoothing_buckets=2)  # fmt: skip


def test_kernel_lines_are_the_public_lines():
    assert tuple(KERNEL.LINES) == LINES


def test_cascade_multiplier_equals_scaling_the_map(crash_slice):
    """Dividing the cascade's traded notional by k is the same as k times every level."""
    arrays, optional = crash_slice
    cascade = CascadeParams(standard_shock_pct=2.0)
    lines = {}
    for name, participation, multiplier in (("divided", 0.001, 20.0), ("scaled", 0.02, 1.0)):
        params = MapParams(
            cascade=cascade, participation=participation, cascade_liquidation_multiplier=multiplier
        )
        lines[name] = LiquidationMap(params, timeframe="5m").run_arrays(*arrays, **optional)
    risk = lines["divided"]["cascade_risk"]
    assert np.isfinite(risk).sum() > 100 and np.nanmax(risk) > 1.05
    assert_allclose(risk, lines["scaled"]["cascade_risk"], rtol=1e-9, equal_nan=True)
    # and the multiplier matters: without it the same map sees a weaker cascade
    plain = MapParams(cascade=cascade, participation=0.001, cascade_liquidation_multiplier=1.0)
    weaker = LiquidationMap(plain, timeframe="5m").run_arrays(*arrays, **optional)
    assert np.nanmax(weaker["cascade_risk"]) < np.nanmax(risk)


def test_bad_cascade_multiplier_is_one_clear_error():
    with pytest.raises(ConfigError, match="cascade_liquidation_multiplier must be positive"):
        MapParams(cascade_liquidation_multiplier=0.0)
