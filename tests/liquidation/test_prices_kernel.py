import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from backtest.errors import ConfigError
from backtest.liquidation import prices
from backtest.liquidation._native import load_kernel
from backtest.liquidation.reference import prices as reference
from backtest.liquidation.tiers import load_tiers

pytestmark = pytest.mark.kernel

kernel = load_kernel("_prices")
TIERS = {
    "2026": load_tiers("BTC/USDT:USDT", at="2026-09-30"),
    "2024": load_tiers("ETH/USDT:USDT", at="2024-10-24"),
}


def tier_arrays(tiers):
    return tuple(
        np.array(values, dtype=np.float64)
        for values in (
            [tier.min_notional for tier in tiers.tiers],
            [tier.maintenance_margin_rate for tier in tiers.tiers],
            [tier.cum for tier in tiers.tiers],
        )
    )


def run_both(venue, side, entry, leverage, quantity, wallet, floors, rates, amounts, fee):
    arrays = [np.ascontiguousarray(value, dtype=np.float64) for value in (entry, leverage)]
    arrays += [np.ascontiguousarray(value, dtype=np.float64) for value in (quantity, wallet)]
    tables = [np.ascontiguousarray(value, dtype=np.float64) for value in (floors, rates, amounts)]
    compiled = kernel.liquidation_prices(
        venue, side, *arrays, *tables, fee, np.empty(len(arrays[0]))
    )
    twin = reference.liquidation_prices(
        venue, side, *arrays, *tables, fee, np.empty(len(arrays[0]))
    )
    return compiled, twin


@st.composite
def batches(draw):
    size = draw(st.integers(1, 40))
    venue = draw(st.sampled_from(sorted(prices.VENUE_CODES.values())))
    side = draw(st.sampled_from([1, -1]))
    floats = st.floats
    entry = draw(st.lists(floats(0.001, 1e6), min_size=size, max_size=size))
    leverage = draw(st.lists(floats(1.0, 125.0), min_size=size, max_size=size))
    notional = draw(st.lists(floats(1.0, 1.5e9), min_size=size, max_size=size))
    margin_scale = draw(
        st.lists(st.one_of(st.just(np.nan), floats(0.1, 3.0)), min_size=size, max_size=size)
    )
    entry, leverage = np.array(entry), np.array(leverage)
    quantity = np.array(notional) / entry
    wallet = quantity * entry / leverage * np.array(margin_scale)  # NaN: default margin
    if venue == prices.VENUE_CODES["binance"] and draw(st.booleans()):
        floors, rates, amounts = tier_arrays(TIERS[draw(st.sampled_from(sorted(TIERS)))])
    else:
        floors, rates, amounts = [0.0], [draw(floats(0.0, 0.05))], [draw(floats(0.0, 100.0))]
    fee = draw(floats(0.0, 0.001))
    return venue, side, entry, leverage, quantity, wallet, floors, rates, amounts, fee


@settings(max_examples=150, deadline=None)
@given(batches())
def test_kernel_matches_reference_on_random_batches(batch):
    compiled, twin = run_both(*batch)
    entry = batch[2]
    assert_allclose(compiled, twin, rtol=1e-12, atol=1e-9 * float(entry.max()))


@pytest.mark.parametrize("label", sorted(TIERS))
@pytest.mark.parametrize("side", ["long", "short"])
def test_public_vector_form_equals_scalar_across_every_bracket(label, side):
    tiers = TIERS[label]
    entries = np.geomspace(50.0, 150_000.0, 23)
    notionals = np.geomspace(20.0, tiers.max_notional * 0.99, 23)
    leverages = np.array([min(10.0, tiers.max_leverage_for_notional(n)) for n in notionals])
    vector = prices.liquidation_prices(
        "binance", side, entries, leverages, notional=notionals, tiers=tiers
    )
    scalar = [
        prices.liquidation_price("binance", side, e, n / e, lev, tiers=tiers)
        for e, n, lev in zip(entries, notionals, leverages, strict=True)
    ]
    assert_allclose(vector, scalar, rtol=1e-12)
    at_liquidation = notionals * vector / entries
    brackets = {tiers.index_for_notional(notional) for notional in at_liquidation}
    assert len(brackets) >= 8  # the scan really crosses brackets


@pytest.mark.parametrize(
    ("venue", "kwargs"),
    [
        ("binance", {"maintenance_margin_rate": 0.004, "maintenance_amount": 3.0}),
        ("bybit", {"maintenance_margin_rate": 0.005, "maintenance_amount": 2.0}),
        ("okx", {"maintenance_margin_rate": 0.004, "taker_fee": 0.0006}),
        ("hyperliquid", {"max_leverage": 40.0}),
    ],
)
def test_public_vector_form_equals_scalar_per_venue(venue, kwargs):
    entries = np.array([0.1, 25.0, 2_500.0, 85_000.0])
    leverages = np.array([2.0, 5.0, 20.0, 40.0])
    wallets = np.array([np.nan, 10.0, np.nan, 5_000.0])
    for side in ("long", "short"):
        vector = prices.liquidation_prices(
            venue, side, entries, leverages, quantity=0.7, wallet_balances=wallets, **kwargs
        )
        scalar = [
            prices.liquidation_price(
                venue,
                side,
                e,
                0.7,
                lev,
                wallet_balance=None if np.isnan(w) else w,
                **kwargs,
            )
            for e, lev, w in zip(entries, leverages, wallets, strict=True)
        ]
        assert_allclose(vector, scalar, rtol=1e-13)


def test_read_only_inputs_and_out_array():
    entries = np.linspace(1_000.0, 90_000.0, 50)
    leverages = np.full(50, 20.0)
    entries.flags.writeable = False
    leverages.flags.writeable = False
    out = np.full(50, np.nan)
    result = prices.liquidation_prices(
        "binance", "short", entries, leverages, notional=10_000.0, tiers=TIERS["2026"], out=out
    )
    assert result is out
    assert np.all(out > entries)


def test_kernel_takes_the_envelope_on_ping_pong():
    # Inconsistent table on purpose (see test_prices): iteration alternates between brackets.
    args = (np.array([60.0]), np.array([1.0]), np.array([1.7]), np.array([63.0]))
    table = (np.array([0.0, 100.0]), np.array([0.75, 0.25]), np.array([0.0, -25.0]))
    compiled, twin = run_both(0, 1, *args, *table, 0.0)
    expected = prices.solve_binance_brackets(1, 60.0, 1.7, 63.0, 0.0, *map(list, table))
    assert expected[3] == prices.RESOLVED_ENVELOPE
    assert compiled[0] == pytest.approx(expected[0], rel=1e-15)
    assert twin[0] == pytest.approx(expected[0], rel=1e-15)


@pytest.mark.parametrize("implementation", [kernel, reference], ids=["kernel", "reference"])
def test_wrapper_checks_shapes_and_codes(implementation):
    one = np.ones(3)
    table = (np.zeros(1), np.full(1, 0.01), np.zeros(1))
    with pytest.raises(ValueError, match="same length"):
        implementation.liquidation_prices(0, 1, one, np.ones(2), one, one, *table, 0.0, one.copy())
    with pytest.raises(ValueError, match="venue code 7"):
        implementation.liquidation_prices(7, 1, one, one, one, one, *table, 0.0, one.copy())
    with pytest.raises(ValueError, match=r"side 0 must be \+1"):
        implementation.liquidation_prices(0, 0, one, one, one, one, *table, 0.0, one.copy())
    with pytest.raises(ValueError, match="length >= 1"):
        implementation.liquidation_prices(
            0, 1, one, one, one, one, np.zeros(0), np.zeros(0), np.zeros(0), 0.0, one.copy()
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"leverages": [10.0, 0.0]}, r"leverages\[1\] = 0.0 must be a finite number > 0"),
        ({"leverages": [10.0, 200.0]}, r"leverages\[1\] = 200 is above the maximum 150x"),
        ({"entry_prices": [-1.0, 5.0]}, r"entry_prices\[0\] = -1.0 must be a finite number > 0"),
        ({"notional": [1.0, -2.0]}, r"notional\[1\] = -2.0 must be"),
        ({"notional": 5e9}, r"beyond the largest bracket"),
        ({"quantity": 1.0}, "exactly one of quantity"),
        ({"wallet_balances": [1.0, -1.0]}, r"wallet_balances\[1\] = -1.0 must be >= 0"),
        ({"out": np.empty(3)}, r"out must be a float64 array of shape \(2,\)"),
        ({"venue": "bitmex"}, "unknown venue 'bitmex'"),
    ],
)
def test_public_vector_form_rejects_bad_input(kwargs, message):
    call = {
        "venue": "binance",
        "side": "long",
        "entry_prices": [100.0, 200.0],
        "leverages": [10.0, 10.0],
        "notional": 1_000.0,
        "tiers": TIERS["2026"],
    }
    call.update(kwargs)
    venue, side = call.pop("venue"), call.pop("side")
    entries, leverages = call.pop("entry_prices"), call.pop("leverages")
    with pytest.raises(ConfigError, match=message):
        prices.liquidation_prices(venue, side, entries, leverages, **call)
