"""The cascade simulator's public API: hand-checkable cascades, invariants and clear errors.

Every behavioural case runs on both the compiled kernel and its pure-Python reference.
"""

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.errors import ConfigError, DataError
from backtest.liquidation import cascade
from backtest.liquidation.cascade import CascadeParams, market_state
from backtest.liquidation.heatmap import DensitySnapshot, LiquidationMap, MapParams
from backtest.market.store import load_market

IMPLEMENTATIONS = [pytest.param("kernel", marks=pytest.mark.kernel), "reference"]

STEP = math.log1p(0.001)  # 0.1 % buckets, the map's default resolution
PRICE = 100.0
BUCKETS = 1000  # the grid spans about -39 % .. +65 % around PRICE
SIGMA = 0.04  # daily volatility
VOLUME = 1.0e9  # daily notional


@dataclass(frozen=True)
class Snapshot:
    """Any object with the snapshot's attributes works, also one carrying its market inputs."""

    price: float
    log_price_min: float
    log_step: float
    long_notional: np.ndarray
    short_notional: np.ndarray
    daily_volatility: float = SIGMA
    daily_notional: float = VOLUME


def grid_start(price: float = PRICE, below: int = BUCKETS // 2) -> float:
    """log_price_min that puts ``price`` at the lower edge of bucket ``below``."""
    return math.log(price) - below * STEP


def bucket_of(price: float, log_price_min: float) -> int:
    return math.floor((math.log(price) - log_price_min) / STEP)


def centre(index: int, log_price_min: float) -> float:
    return math.exp(log_price_min + (index + 0.5) * STEP)


def snapshot_with(
    longs: dict[float, float] | None = None, shorts: dict[float, float] | None = None
) -> DensitySnapshot:
    """A map snapshot with walls of notional at the buckets holding the given prices."""
    log_price_min = grid_start()
    long_notional = np.zeros(BUCKETS)
    short_notional = np.zeros(BUCKETS)
    for price, notional in (longs or {}).items():
        long_notional[bucket_of(price, log_price_min)] += notional
    for price, notional in (shorts or {}).items():
        short_notional[bucket_of(price, log_price_min)] += notional
    return DensitySnapshot(None, PRICE, log_price_min, STEP, long_notional, short_notional)


def with_market(function, sigma: float, volume: float):
    """Call a cascade function with the default daily volatility and notional."""

    def call(*args, **kwargs):
        kwargs.setdefault("daily_volatility", sigma)
        kwargs.setdefault("daily_notional", volume)
        return function(*args, **kwargs)

    return call


simulate_cascade = with_market(cascade.simulate_cascade, SIGMA, VOLUME)
cascade_risk = with_market(cascade.cascade_risk, SIGMA, VOLUME)
standard_cascade_risk = with_market(cascade.standard_cascade_risk, SIGMA, VOLUME)


def sqrt_impact(notional: float, coefficient: float = 1.0) -> float:
    return coefficient * SIGMA * math.sqrt(notional / VOLUME)


# ---------------------------------------------------------------------------------------------
# hand-checkable cascades
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("shock_pct", [-2.0, 2.0, -15.0])
def test_empty_density_is_no_cascade(implementation, shock_pct):
    result = simulate_cascade(snapshot_with(), shock_pct, implementation=implementation)
    assert result.amplification == 1.0
    assert result.end_price == pytest.approx(PRICE * (1 + shock_pct / 100), rel=1e-15)
    assert result.liquidated_notional == 0.0
    assert result.steps == 0
    assert not result.runaway
    assert result.stop_reason == "converged"


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_one_wall_crossed_by_the_shock_gives_one_impact_step(implementation):
    wall = 2.5e7  # 2.5 % of the daily notional
    result = simulate_cascade(
        snapshot_with(longs={99.0: wall}), -2.0, implementation=implementation
    )
    # sqrt law: I = 1.0 * 0.04 * sqrt(0.025) = 0.0063246, applied as a log-return to 98
    expected_end = 98.0 * math.exp(-0.04 * math.sqrt(0.025))
    assert result.end_price == pytest.approx(expected_end, rel=1e-12)
    assert result.end_price == pytest.approx(97.38215, abs=1e-5)
    assert result.liquidated_notional == wall
    assert result.steps == 1
    assert result.amplification == pytest.approx((100 - expected_end) / 2.0, rel=1e-12)
    assert not result.runaway


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_wall_just_past_the_shock_adds_one_more_step(implementation):
    first, second = 2.5e7, 4.0e7
    # 98 * exp(-0.0063) = 97.38: the impact of the first wall reaches the second at 97.6
    snapshot = snapshot_with(longs={99.0: first, 97.6: second})
    result = simulate_cascade(snapshot, -2.0, implementation=implementation)
    expected_end = 98.0 * math.exp(-sqrt_impact(first + second))
    assert result.end_price == pytest.approx(expected_end, rel=1e-12)
    assert result.liquidated_notional == first + second
    assert result.steps == 2
    assert result.amplification > 1.3


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_wall_out_of_reach_is_not_touched(implementation):
    # nothing between 100 and 98, a wall at 90: the shock liquidates nothing
    result = simulate_cascade(
        snapshot_with(longs={90.0: 1e12}), -2.0, implementation=implementation
    )
    assert result.amplification == 1.0
    assert result.liquidated_notional == 0.0
    assert result.steps == 0


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_up_shock_runs_through_the_shorts_only(implementation):
    wall = 1.0e8
    snapshot = snapshot_with(longs={99.0: 5e9}, shorts={101.0: wall})
    result = simulate_cascade(snapshot, 2.0, implementation=implementation)
    expected_end = 102.0 * math.exp(sqrt_impact(wall))
    assert result.end_price == pytest.approx(expected_end, rel=1e-12)
    assert result.liquidated_notional == wall
    assert result.amplification == pytest.approx((expected_end - 100) / 2.0, rel=1e-12)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_levels_on_the_far_side_of_the_price_are_not_crossed(implementation):
    # long levels above the price (left over in a snapshot) do not fall in a drop
    snapshot = snapshot_with(longs={100.5: 1e12}, shorts={99.5: 1e12})
    down = simulate_cascade(snapshot, -2.0, implementation=implementation)
    up = simulate_cascade(snapshot, 2.0, implementation=implementation)
    assert down.liquidated_notional == 0.0
    assert up.liquidated_notional == 0.0


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_dense_ladder_runs_away_off_the_grid(implementation):
    ladder = np.full(BUCKETS, 2.0e9)  # 2 x the daily notional in every 0.1 % bucket
    snapshot = DensitySnapshot(None, PRICE, grid_start(), STEP, ladder, ladder)
    result = simulate_cascade(snapshot, -2.0, implementation=implementation)
    assert result.runaway
    assert result.stop_reason == "grid_edge"
    assert result.end_price < math.exp(snapshot.log_price_min)
    assert result.amplification > 10


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_max_steps_ends_a_cascade_as_runaway(implementation):
    ladder = np.full(BUCKETS, 2.0e6)
    snapshot = DensitySnapshot(None, PRICE, grid_start(), STEP, ladder, ladder)
    free = simulate_cascade(snapshot, -2.0, implementation=implementation)
    assert free.steps > 2
    capped = simulate_cascade(
        snapshot, -2.0, CascadeParams(max_steps=2), implementation=implementation
    )
    assert capped.runaway
    assert capped.stop_reason == "max_steps"
    assert capped.steps == 2
    assert capped.end_price > free.end_price


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_depth_model_without_stress_is_linear(implementation):
    wall = 1.0e7
    params = CascadeParams(model="depth", depth_ratio=2.0, depth_stress=0.0)
    result = simulate_cascade(
        snapshot_with(longs={99.0: wall}), -2.0, params, implementation=implementation
    )
    # I = Q / (depth_ratio * V) = 1e7 / 2e9 = 0.5 %
    assert result.end_price == pytest.approx(98.0 * math.exp(-0.005), rel=1e-12)
    assert result.steps == 1


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_depth_model_under_stress_stops_at_its_fixed_point(implementation):
    wall = 1.0e7
    params = CascadeParams(model="depth", depth_ratio=1.0, depth_stress=5.0, tolerance=1e-12)
    result = simulate_cascade(
        snapshot_with(longs={99.0: wall}), -2.0, params, implementation=implementation
    )
    # the end price p solves log p = log 98 - Q / (V (1 - 5 (1 - p/100)))
    depth = VOLUME * (1 - 5.0 * (1 - result.end_price / PRICE))
    assert math.log(result.end_price) == pytest.approx(math.log(98.0) - wall / depth, abs=1e-10)
    unstressed = 98.0 * math.exp(-wall / VOLUME)
    assert result.end_price < unstressed  # a thinner book moves further
    assert result.steps > 2
    assert not result.runaway


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_depth_floor_ends_a_cascade_as_runaway(implementation):
    params = CascadeParams(model="depth", depth_stress=50.0, depth_floor=0.2)
    result = simulate_cascade(
        snapshot_with(longs={99.0: 3.0e7}), -2.0, params, implementation=implementation
    )
    # 1 - 50 * 2 % = 0 <= 0.2 already at the shock price
    assert result.runaway
    assert result.stop_reason == "depth_floor"
    assert result.end_price == pytest.approx(98.0 * math.exp(-3.0e7 / (VOLUME * 0.2)), rel=1e-12)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_zero_volatility_means_no_sqrt_impact(implementation):
    snapshot = snapshot_with(longs={99.0: 1e12})
    result = simulate_cascade(snapshot, -2.0, daily_volatility=0.0, implementation=implementation)
    assert result.amplification == 1.0
    assert result.liquidated_notional == 1e12


def carrying(snapshot: DensitySnapshot, **market: float) -> Snapshot:
    return Snapshot(
        snapshot.price,
        snapshot.log_price_min,
        snapshot.log_step,
        snapshot.long_notional,
        snapshot.short_notional,
        **market,
    )


def test_a_snapshot_may_carry_its_market_inputs():
    snapshot = carrying(snapshot_with(longs={99.0: 2.5e7}))
    result = cascade.simulate_cascade(snapshot, -2.0)
    assert result.end_price == pytest.approx(98.0 * math.exp(-sqrt_impact(2.5e7)), rel=1e-12)


def test_explicit_market_inputs_override_the_snapshot():
    snapshot = carrying(snapshot_with(longs={99.0: 2.5e7}), daily_volatility=0.5)
    result = cascade.simulate_cascade(snapshot, -2.0, daily_volatility=SIGMA)
    assert result.end_price == pytest.approx(98.0 * math.exp(-sqrt_impact(2.5e7)), rel=1e-12)


def test_result_reports_its_prices_and_move():
    result = simulate_cascade(snapshot_with(longs={99.0: 2.5e7}), -2.0)
    assert result.start_price == PRICE
    assert result.shock_price == pytest.approx(98.0)
    assert result.move_pct == pytest.approx((result.end_price / PRICE - 1) * 100)


# ---------------------------------------------------------------------------------------------
# invariants (hypothesis)
# ---------------------------------------------------------------------------------------------
walls = st.dictionaries(
    st.floats(min_value=80.0, max_value=99.99),
    st.floats(min_value=0.0, max_value=5e8),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    base=walls,
    extra=walls,
    shock_pct=st.floats(min_value=-15.0, max_value=-0.1),
    model=st.sampled_from(["sqrt", "depth"]),
)
def test_more_notional_never_moves_the_price_less(base, extra, shock_pct, model):
    params = CascadeParams(model=model, max_steps=10 * BUCKETS, depth_floor=0.01, depth_stress=2.0)
    merged = dict(base)
    for price, notional in extra.items():
        merged[price] = merged.get(price, 0.0) + notional
    small = simulate_cascade(snapshot_with(longs=base), shock_pct, params)
    large = simulate_cascade(snapshot_with(longs=merged), shock_pct, params)
    assert large.liquidated_notional >= small.liquidated_notional
    if small.runaway:
        assert large.runaway
    elif not large.runaway:
        tolerance = 1e-6 if model == "depth" else 0.0
        assert large.end_price <= small.end_price * (1 + tolerance)
        assert large.amplification >= small.amplification - 1e-6


@settings(max_examples=60, deadline=None)
@given(base=walls, shock_pct=st.floats(min_value=-10.0, max_value=-0.1))
def test_a_larger_shock_never_ends_higher(base, shock_pct):
    snapshot = snapshot_with(longs=base)
    mild = simulate_cascade(snapshot, shock_pct)
    harsh = simulate_cascade(snapshot, shock_pct * 1.5)
    if not (mild.runaway or harsh.runaway):
        assert harsh.end_price <= mild.end_price
    assert mild.amplification >= 1.0
    assert mild.end_price <= mild.shock_price


# ---------------------------------------------------------------------------------------------
# many snapshots at once, the cascade_risk line, the market state
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_cascade_risk_matches_single_cascades(implementation):
    snapshots = [
        snapshot_with(longs={99.0: 2.5e7}),
        snapshot_with(shorts={101.5: 8e7, 103.0: 1e8}),
        snapshot_with(),
    ]
    risk = cascade_risk(snapshots, (-2.0, 2.0, -5.0), implementation=implementation)
    assert risk.amplification.shape == (3, 3)
    for row, snapshot in enumerate(snapshots):
        for column, shock in enumerate((-2.0, 2.0, -5.0)):
            single = simulate_cascade(snapshot, shock, implementation=implementation)
            assert risk.end_price[row, column] == pytest.approx(single.end_price, rel=1e-14)
            assert risk.steps[row, column] == single.steps
            assert risk.runaway[row, column] == single.runaway


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_standard_cascade_risk_is_the_worse_side(implementation):
    snapshots = [
        snapshot_with(longs={99.0: 2.5e7}),  # downside cascade only
        snapshot_with(longs={99.0: 1e6}, shorts={101.0: 3e8}),  # upside is worse
        snapshot_with(),
    ]
    values = standard_cascade_risk(snapshots, implementation=implementation)
    down = [simulate_cascade(s, -2.0).amplification for s in snapshots]
    up = [simulate_cascade(s, 2.0).amplification for s in snapshots]
    np.testing.assert_allclose(values, np.maximum(down, up), rtol=1e-14)
    assert values[1] == pytest.approx(up[1])
    assert values[2] == 1.0


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_standard_cascade_risk_is_nan_without_market_inputs(implementation):
    snapshots = [snapshot_with(longs={99.0: 2.5e7}), snapshot_with(longs={99.0: 2.5e7})]
    values = standard_cascade_risk(
        snapshots, daily_volatility=[math.nan, SIGMA], implementation=implementation
    )
    assert math.isnan(values[0])
    assert values[1] > 1.0


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_market_state_by_hand(implementation):
    # returns alternate +r, -r: the EWMA of r^2 is r^2 exactly; notional is constant
    ratio = 1.01
    close = np.array([100.0, 100.0 * ratio, 100.0, 100.0 * ratio, 100.0])
    volume = 1_000.0 / close  # 1,000 quote per bar
    volatility, notional = market_state(
        close, volume, bar_seconds=300, implementation=implementation
    )
    assert math.isnan(volatility[0]) and math.isnan(notional[0])
    np.testing.assert_allclose(volatility[1:], math.log(ratio) * math.sqrt(288), rtol=1e-12)
    np.testing.assert_allclose(notional[1:], 1_000.0 * 288, rtol=1e-12)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_market_state_skips_nan_and_empty_bars(implementation):
    close = np.array([100.0, 101.0, math.nan, 250.0, 102.0])
    volume = np.array([1.0, 1.0, 1.0, 0.0, 1.0])
    volatility, notional = market_state(
        close, volume, bar_seconds=3600, implementation=implementation
    )
    params = CascadeParams()
    alpha = 1 - 0.5 ** (1 / params.halflife_hours)
    first = math.log(1.01) ** 2
    expected = first + alpha * (math.log(102 / 101) ** 2 - first)
    assert (
        volatility[2] == volatility[1] == volatility[3]
    )  # the NaN and the empty bar change nothing
    assert volatility[4] == pytest.approx(math.sqrt(expected * 24), rel=1e-12)
    assert np.isfinite(notional[1:]).all()


# ---------------------------------------------------------------------------------------------
# bad input: one clear error each
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "linear"}, "model must be one of 'sqrt', 'depth'"),
        ({"impact_coefficient": 0.0}, "impact_coefficient must be a positive number"),
        ({"impact_coefficient": math.nan}, "impact_coefficient"),
        ({"depth_ratio": -1.0}, "depth_ratio must be a positive number"),
        ({"depth_stress": -0.5}, "depth_stress must be a number >= 0"),
        ({"depth_floor": 1.0}, "depth_floor must lie strictly between 0 and 1"),
        ({"depth_floor": 0.0}, "depth_floor"),
        ({"tolerance": 0.0}, "tolerance must lie in"),
        ({"max_steps": 0}, "max_steps must be at least 1"),
        ({"max_steps": 2.5}, "max_steps must be an integer"),
        ({"standard_shock_pct": -2.0}, "standard_shock_pct must lie in"),
        ({"halflife_hours": 0.0}, "halflife_hours must be a positive number"),
    ],
)
def test_bad_params_are_rejected(fields, message):
    with pytest.raises(ConfigError, match=message):
        CascadeParams(**fields)


def test_params_are_frozen():
    params = CascadeParams()
    with pytest.raises(AttributeError):
        params.max_steps = 5  # type: ignore[misc]


@pytest.mark.parametrize("shock", [0.0, 1e-12, math.nan, -100.0, -120.0, 2000.0, "down"])
def test_bad_shock_is_rejected(shock):
    with pytest.raises(ConfigError, match="shock_pct"):
        simulate_cascade(snapshot_with(), shock)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"long_notional": np.full(BUCKETS, math.nan)}, "long_notional must hold finite"),
        ({"short_notional": -np.ones(BUCKETS)}, "short_notional must hold finite"),
        ({"short_notional": np.zeros(BUCKETS + 1)}, "differ in length"),
        ({"long_notional": np.zeros((2, 3))}, "one-dimensional"),
        ({"price": 0.0}, "price must be a positive number"),
        ({"log_step": 0.0}, "log_step must be a positive number"),
        ({"log_price_min": math.inf}, "log_price_min must be finite"),
    ],
)
def test_bad_snapshot_is_rejected(change, message):
    base = snapshot_with()
    fields = {
        "price": base.price,
        "log_price_min": base.log_price_min,
        "log_step": base.log_step,
        "long_notional": base.long_notional,
        "short_notional": base.short_notional,
    }
    fields.update(change)
    with pytest.raises(DataError, match=message):
        simulate_cascade(DensitySnapshot(None, **fields), -2.0)


def test_missing_market_inputs_say_what_to_pass():
    with pytest.raises(ConfigError, match=r"pass daily_volatility="):
        cascade.simulate_cascade(snapshot_with(), -2.0, daily_notional=VOLUME)
    with pytest.raises(ConfigError, match=r"pass daily_volatility="):
        simulate_cascade(snapshot_with(), -2.0, daily_volatility=math.nan)
    with pytest.raises(ConfigError, match=r"daily_notional must be a finite number > 0"):
        simulate_cascade(snapshot_with(), -2.0, daily_notional=0.0)


def test_depth_model_does_not_need_volatility():
    snapshot = snapshot_with(longs={99.0: 1e7})
    result = cascade.simulate_cascade(
        snapshot, -2.0, CascadeParams(model="depth"), daily_notional=VOLUME
    )
    assert result.amplification > 1.0


def test_cascade_risk_input_errors():
    with pytest.raises(ConfigError, match="no snapshots"):
        cascade_risk([])
    with pytest.raises(ConfigError, match="shocks_pct is empty"):
        cascade_risk([snapshot_with()], shocks_pct=[])
    with pytest.raises(DataError, match="different bucket counts"):
        other = DensitySnapshot(None, PRICE, grid_start(), STEP, np.zeros(10), np.zeros(10))
        cascade_risk([snapshot_with(), other])
    with pytest.raises(ConfigError, match="one value per snapshot"):
        cascade_risk([snapshot_with()], daily_volatility=[0.1, 0.2])


def test_market_state_input_errors():
    with pytest.raises(ConfigError, match="bar_seconds must be a positive number"):
        market_state([1.0], [1.0], bar_seconds=0)
    with pytest.raises(DataError, match="of one length"):
        market_state([1.0, 2.0], [1.0], bar_seconds=60)


def test_unknown_implementation_is_rejected():
    with pytest.raises(ConfigError, match="implementation must be"):
        simulate_cascade(snapshot_with(), -2.0, implementation="gpu")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# the map's cascade_risk line (computed inside the map kernel through the shared C core)
# ---------------------------------------------------------------------------------------------
@pytest.mark.kernel
def test_map_cascade_risk_line_equals_the_simulator_on_its_snapshots():
    frame = load_market("BTC/USDT:USDT", "5m")
    params = CascadeParams()
    positions = np.arange(199, len(frame), 400)
    result = LiquidationMap(MapParams(cascade=params)).run(frame, snapshot_at=list(positions))
    volatility, notional = market_state(
        frame["close"], frame["volume"], bar_seconds=300, params=params
    )
    expected = cascade.standard_cascade_risk(
        result.snapshots,
        params,
        daily_volatility=volatility[positions],
        # the map hands the cascade its traded notional divided by its liquidation multiplier
        daily_notional=notional[positions] / MapParams().cascade_liquidation_multiplier,
    )
    line = result.lines["cascade_risk"].to_numpy()[positions]
    np.testing.assert_allclose(line, expected, rtol=1e-9)
    assert (expected > 1.0).all()  # the real map always holds some levels within 2 %
