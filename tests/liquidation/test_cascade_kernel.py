"""The compiled cascade kernel against its pure-Python reference (the specification)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from backtest.liquidation._native import load_kernel
from backtest.liquidation.reference import cascade as reference

pytestmark = pytest.mark.kernel

kernel = load_kernel("_cascade")

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "binanceusdm"


def read_only(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float64)
    array.flags.writeable = False
    return array


def assert_same(kernel_out, reference_out):
    """Floats to 1e-12 relative (NaN where NaN), integers exactly."""
    for kernel_value, reference_value in zip(kernel_out, reference_out, strict=True):
        kernel_array = np.asarray(kernel_value)
        reference_array = np.asarray(reference_value)
        if np.issubdtype(reference_array.dtype, np.floating):
            assert_allclose(kernel_array, reference_array, rtol=1e-12, atol=0, equal_nan=True)
        else:
            assert_array_equal(kernel_array, reference_array)


@st.composite
def densities(draw, max_buckets=400):
    """A grid around the price with sparse walls, zeros and an occasional ladder."""
    n = draw(st.integers(min_value=0, max_value=max_buckets))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1e5, 1e7, 1e9]))
    longs = rng.exponential(scale, n) * (rng.random(n) < draw(st.floats(0.0, 1.0)))
    shorts = rng.exponential(scale, n) * (rng.random(n) < draw(st.floats(0.0, 1.0)))
    step = draw(st.sampled_from([math.log1p(0.0005), math.log1p(0.001), math.log1p(0.005)]))
    price = draw(st.floats(min_value=0.5, max_value=150_000.0))
    # where the price sits in the grid: inside, at an edge or outside
    position = draw(st.floats(min_value=-0.2, max_value=1.2))
    log_price_min = math.log(price) - position * n * step
    return longs, shorts, log_price_min, step, price


model_parameters = st.tuples(
    st.sampled_from([0, 1]),
    st.floats(min_value=0.1, max_value=2.0),  # impact coefficient
    st.floats(min_value=0.05, max_value=5.0),  # depth ratio
    st.floats(min_value=0.0, max_value=40.0),  # depth stress
    st.floats(min_value=0.01, max_value=0.9),  # depth floor
    st.sampled_from([1e-12, 1e-9, 1e-6]),  # tolerance
    st.integers(min_value=1, max_value=2000),  # max steps
)


@settings(max_examples=150, deadline=None)
@given(
    density=densities(),
    shock=st.one_of(
        st.floats(min_value=-0.3, max_value=-1e-4), st.floats(min_value=1e-4, max_value=0.5)
    ),
    volatility=st.floats(min_value=0.0, max_value=0.2),
    notional=st.floats(min_value=1e6, max_value=1e11),
    model=model_parameters,
)
def test_simulate_matches_reference(density, shock, volatility, notional, model):
    longs, shorts, log_price_min, step, price = density
    args = (log_price_min, step, price, shock, volatility, notional, model)
    compiled = kernel.simulate(read_only(longs), read_only(shorts), *args)
    specified = reference.simulate(longs, shorts, *args)
    assert_same(compiled, specified)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(min_value=0, max_value=6),
    density=densities(max_buckets=200),
    shocks=st.lists(st.floats(min_value=-0.2, max_value=0.2).filter(bool), min_size=0, max_size=4),
    model=model_parameters,
    seed=st.integers(min_value=0, max_value=1000),
)
def test_grid_and_standard_risk_match_reference(rows, density, shocks, model, seed):
    longs, shorts, log_price_min, step, price = density
    rng = np.random.default_rng(seed)
    n = longs.shape[0]
    long_rows = np.array([rng.permutation(longs) for _ in range(rows)]).reshape(rows, n)
    short_rows = np.array([rng.permutation(shorts) for _ in range(rows)]).reshape(rows, n)
    volatility = rng.uniform(0.0, 0.1, rows)
    volatility[rng.random(rows) < 0.2] = math.nan  # warm-up rows
    per_row = (
        np.full(rows, log_price_min),
        np.full(rows, step),
        price * rng.uniform(0.98, 1.02, rows),
        volatility,
        rng.uniform(1e7, 1e10, rows),
    )
    grid_args = (*per_row, np.array(shocks, dtype=np.float64), model)
    assert_same(
        kernel.cascade_grid(read_only(long_rows), read_only(short_rows), *grid_args),
        reference.cascade_grid(long_rows, short_rows, *grid_args),
    )
    risk_args = (*per_row, 0.02, model)
    compiled = kernel.standard_risk(read_only(long_rows), read_only(short_rows), *risk_args)
    specified = reference.standard_risk(long_rows, short_rows, *risk_args)
    assert_allclose(compiled, specified, rtol=1e-12, equal_nan=True)
    if model[0] == 0:  # sqrt model: NaN volatility means no risk value
        assert np.array_equal(np.isnan(compiled), np.isnan(volatility))


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.one_of(st.floats(min_value=1.0, max_value=1e5), st.just(math.nan), st.just(0.0)),
            st.one_of(st.floats(min_value=0.0, max_value=1e4), st.just(math.nan)),
        ),
        max_size=60,
    ),
    halflife=st.floats(min_value=0.5, max_value=500.0),
    bars_per_day=st.sampled_from([1440.0, 288.0, 24.0, 1.0]),
)
def test_market_state_matches_reference(values, halflife, bars_per_day):
    close = np.array([value[0] for value in values], dtype=np.float64)
    volume = np.array([value[1] for value in values], dtype=np.float64)
    compiled = kernel.market_state(read_only(close), read_only(volume), halflife, bars_per_day)
    specified = reference.market_state(close, volume, halflife, bars_per_day)
    assert_same(compiled, specified)


def test_real_sample_market_state_and_risk_match_reference():
    frame = pd.read_parquet(SAMPLE / "BTC_USDT_USDT-5m.parquet")
    close = frame["close"].to_numpy(dtype=np.float64)
    volume = frame["volume"].to_numpy(dtype=np.float64)
    halflife, bars_per_day = 288.0, 288.0
    volatility, notional = kernel.market_state(read_only(close), read_only(volume), 288.0, 288.0)
    assert_same(
        (volatility, notional), reference.market_state(close, volume, halflife, bars_per_day)
    )
    # plausible magnitudes for BTC perpetuals in October 2025
    settled = slice(300, None)
    assert 0.005 < np.nanmedian(volatility[settled]) < 0.1
    assert 1e9 < np.nanmedian(notional[settled]) < 1e11

    # a synthetic density around every 50th close, risk with the real market state
    rows = np.arange(300, close.size, 50)
    step = math.log1p(0.001)
    n = 600
    rng = np.random.default_rng(7)
    longs = rng.exponential(3e6, (rows.size, n))
    shorts = rng.exponential(3e6, (rows.size, n))
    per_row = (
        np.log(close[rows]) - 300 * step,
        np.full(rows.size, step),
        close[rows],
        volatility[rows],
        notional[rows],
    )
    compiled = kernel.standard_risk(
        longs, shorts, *per_row, 0.02, (0, 1.0, 1.0, 10.0, 0.1, 1e-9, 1000)
    )
    specified = reference.standard_risk(
        longs, shorts, *per_row, 0.02, (0, 1.0, 1.0, 10.0, 0.1, 1e-9, 1000)
    )
    assert_allclose(compiled, specified, rtol=1e-12)
    assert (compiled >= 1.0).all()


def test_invalid_scalars_give_nan_and_stop_code_4():
    longs = np.ones(10)
    model = (0, 1.0, 1.0, 10.0, 0.1, 1e-9, 100)
    for bad in [
        dict(price=0.0),
        dict(shock=0.0),
        dict(shock=-1.0),
        dict(step=0.0),
        dict(volume=0.0),
        dict(volatility=math.nan),
    ]:
        values = dict(price=100.0, shock=-0.02, step=0.001, volume=1e9, volatility=0.03)
        values.update(bad)
        args = (
            math.log(90.0),
            values["step"],
            values["price"],
            values["shock"],
            values["volatility"],
            values["volume"],
            model,
        )
        for module in (kernel, reference):
            end, liquidated, amplification, steps, stop = module.simulate(longs, longs, *args)
            assert stop == 4, (module.__name__, bad)
            assert math.isnan(end) and math.isnan(liquidated) and math.isnan(amplification)
            assert steps == 0


def test_empty_grid_is_no_cascade():
    empty = np.empty(0)
    for module in (kernel, reference):
        outcome = module.simulate(
            empty, empty, 0.0, 0.001, 100.0, -0.05, 0.03, 1e9, (0, 1.0, 1.0, 10.0, 0.1, 1e-9, 10)
        )
        assert outcome[2] == 1.0 and outcome[3] == 0 and outcome[4] == 0


@pytest.mark.parametrize("module", [kernel, reference], ids=["kernel", "reference"])
def test_shape_and_parameter_errors(module):
    model = (0, 1.0, 1.0, 10.0, 0.1, 1e-9, 10)
    with pytest.raises(ValueError, match="differ in length"):
        module.simulate(np.ones(3), np.ones(4), 0.0, 0.001, 1.0, -0.02, 0.03, 1e9, model)
    with pytest.raises(ValueError, match="model_params must be"):
        module.simulate(np.ones(3), np.ones(3), 0.0, 0.001, 1.0, -0.02, 0.03, 1e9, (0, 1.0))
    with pytest.raises(ValueError, match="model must be 0"):
        module.simulate(np.ones(3), np.ones(3), 0.0, 0.001, 1.0, -0.02, 0.03, 1e9, (2, *model[1:]))
    with pytest.raises(ValueError, match="max_steps must be at least 1"):
        module.simulate(np.ones(3), np.ones(3), 0.0, 0.001, 1.0, -0.02, 0.03, 1e9, (*model[:6], 0))
    ones = np.ones((2, 3))
    with pytest.raises(ValueError, match="price has 1 values for 2 snapshots"):
        module.cascade_grid(
            ones,
            ones,
            np.zeros(2),
            np.ones(2),
            np.ones(1),
            np.ones(2),
            np.ones(2),
            np.array([-0.02]),
            model,
        )
    with pytest.raises(ValueError, match="differ in shape"):
        module.cascade_grid(
            ones,
            np.ones((3, 3)),
            np.zeros(2),
            np.ones(2),
            np.ones(2),
            np.ones(2),
            np.ones(2),
            np.array([-0.02]),
            model,
        )
    with pytest.raises(ValueError, match="shock_fraction must be positive"):
        module.standard_risk(
            ones, ones, np.zeros(2), np.ones(2), np.ones(2), np.ones(2), np.ones(2), -0.02, model
        )
    with pytest.raises(ValueError, match="halflife_bars must be positive"):
        module.market_state(np.ones(3), np.ones(3), 0.0, 288.0)
    with pytest.raises(ValueError, match="close has 3 values but volume has 2"):
        module.market_state(np.ones(3), np.ones(2), 10.0, 288.0)
