"""The compiled simulator (``backtest.arrays._simulate``) equals its pure-Python twin.

Same raw arguments in, the same tuple out: every per-bar array, every fill, funding,
liquidation and rejection row and the final value, on hypothesis-drawn markets (random walks
with gaps, mark candles with holes, funding settlements), exposure paths (NaN = no decision,
flips, amounts beyond the margin) and accounts (every venue, isolated and cross margin, both
slippage models, real and hand-made tier tables).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.arrays.account import Account, tier_arrays
from backtest.arrays.decisions import Decisions
from backtest.arrays.market import MarketArrays
from backtest.arrays.reference import simulate_reference
from backtest.arrays.simulate import raw_arguments, simulate
from backtest.arrays.simulation import Simulation
from backtest.liquidation.tiers import LeverageTiers, Tier, load_tiers

kernel = pytest.importorskip("backtest.arrays._simulate")

pytestmark = pytest.mark.kernel

DEBUG_REQUESTED = os.environ.get("BACKTEST_DEBUG", "0").lower() not in ("", "0", "false", "no")
FIELDS = Simulation.field_names()
REASONS = ("strategy", "take-profit", "stop")

TABLES = {
    "binance": {
        "btc-2026": load_tiers("BTC/USDT:USDT", at="2026-09-30"),
        "sol-2025": load_tiers("SOL/USDT:USDT", at="2025-10-10"),
        # a table with a small first cap: positions cross brackets and hit the notional cap
        "tiny": LeverageTiers(
            "TEST/USDT:USDT",
            "binanceusdm",
            None,
            (
                Tier(0.0, 5_000.0, 0.01, 50.0),
                Tier(5_000.0, 25_000.0, 0.025, 20.0, 75.0),
                Tier(25_000.0, 100_000.0, 0.05, 10.0, 700.0),
            ),
        ),
    },
    "bybit": {
        "sol": LeverageTiers(
            "SOL/USDT:USDT",
            "bybit",
            None,
            (
                Tier(0.0, 20_000.0, 0.005, 100.0),
                Tier(20_000.0, 60_000.0, 0.0056, 50.0, 12.0),
            ),
        ),
    },
    "okx": {
        "sol": LeverageTiers(
            "SOL/USDT:USDT",
            "okx",
            None,
            (Tier(0.0, 30_000.0, 0.004, 75.0), Tier(30_000.0, 90_000.0, 0.01, 20.0, 180.0)),
        ),
    },
    "hyperliquid": {
        "sol": LeverageTiers("SOL/USDC:USDC", "hyperliquid", None, (Tier(0.0, 1e15, 0.025, 20.0),)),
        "btc": LeverageTiers(
            "BTC/USDC:USDC", "hyperliquid", None, (Tier(0.0, 1e15, 0.0125, 40.0),)
        ),
    },
}


def make_market(seed: int, bars: int, volatility: float, jumps: float, marks: str, funding: str):
    """A random walk with gaps; optional mark candle (with holes) and funding settlements."""
    rng = np.random.default_rng(seed)
    start = float(rng.uniform(0.5, 50_000.0))
    steps = rng.normal(0.0, volatility, bars)
    steps += np.where(rng.random(bars) < jumps, rng.normal(0.0, 12.0 * volatility, bars), 0.0)
    close = start * np.exp(np.cumsum(steps))
    gaps = rng.normal(0.0, volatility / 2.0, bars)
    gaps += np.where(rng.random(bars) < jumps, rng.normal(0.0, 10.0 * volatility, bars), 0.0)
    open_ = np.concatenate([[start], close[:-1]]) * np.exp(gaps)
    wick = np.abs(rng.normal(0.0, volatility, (2, bars)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - np.minimum(wick[1], 0.5))
    mark = {name: None for name in ("mark_open", "mark_high", "mark_low", "mark_close")}
    if marks != "none":
        noise = 1.0 + rng.normal(0.0, volatility / 3.0, (4, bars))
        values = [open_ * noise[0], high * noise[1], low * noise[2], close * noise[3]]
        if marks == "holes":
            holes = rng.random(bars) < 0.3
            for value in values:
                value[holes] = np.nan
        mark = dict(zip(mark, values, strict=True))
    rate = None
    if funding != "none":
        every = int(rng.integers(1, 9))
        rate = np.full(bars, np.nan)
        settles = np.arange(int(rng.integers(0, every)), bars, every)
        rate[settles] = rng.normal(0.0, 0.003, settles.size)
    return MarketArrays(
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.ones(bars),
        time=np.arange(bars, dtype=np.int64) * 60_000_000_000,
        funding_rate=rate,
        **mark,
    )


def make_decisions(
    seed: int,
    bars: int,
    scale: float,
    sparsity: float,
    reasons: bool,
    close: np.ndarray | None = None,
    levels: float = 0.0,
):
    """Random exposures; with ``levels`` > 0, stop and take-profit levels about the close.

    The levels sit ``levels`` × a random fraction away from the close on the side the target
    asks for (stop below a long's close, take-profit above), some on the wrong side (they fill
    at once), some bars give only one of them or none.
    """
    rng = np.random.default_rng(seed + 1)
    target = rng.uniform(-scale, scale, bars)
    target[rng.random(bars) < 0.15] = 0.0
    repeat = rng.random(bars) < 0.2  # same target again: re-sized to the equity, or skipped
    target[1:][repeat[1:]] = target[:-1][repeat[1:]]
    target[rng.random(bars) < sparsity] = np.nan
    codes = rng.integers(0, len(REASONS), bars).astype(np.int16) if reasons else None
    stop = take_profit = None
    if levels > 0.0 and close is not None:
        side = np.where(np.nan_to_num(target) >= 0.0, 1.0, -1.0)
        side[rng.random(bars) < 0.1] *= -1.0  # levels on the wrong side
        stop = close * (1.0 - side * levels * rng.random(bars))
        take_profit = close * (1.0 + side * levels * rng.random(bars))
        stop[rng.random(bars) < 0.5] = np.nan
        take_profit[rng.random(bars) < 0.5] = np.nan
    return Decisions.from_target(
        target, reason=codes, reasons=REASONS, stop=stop, take_profit=take_profit
    )


def make_account(draw, venue: str, margin_mode: str) -> Account:
    tables = TABLES[venue]
    tiers = tables[draw(st.sampled_from(sorted(tables)))]
    cash = draw(st.sampled_from([100.0, 1_000.0, 10_000.0, 100_000.0]))
    leverage = draw(st.sampled_from([1.0, 2.0, 5.0, 10.0, 20.0, 50.0]))
    while leverage > 1.0 and (
        cash * leverage > tiers.max_notional
        or leverage > tiers.max_leverage_for_notional(cash * leverage)
    ):
        leverage /= 2.0
    floor, cap, rate, cum, max_leverage = tier_arrays(tiers)
    return Account(
        cash=cash,
        leverage=max(leverage, 1.0),
        taker_fee=draw(st.sampled_from([0.0, 0.0005, 0.004])),
        maker_fee=0.0002,
        liquidation_fee=draw(st.sampled_from([0.0, 0.0125, 0.05])),
        mult=1.0,
        venue=venue,
        margin_mode=margin_mode,
        funding=draw(st.booleans()),
        slippage=draw(st.sampled_from([0.0, 0.0005, 0.2])),
        slippage_model=draw(st.sampled_from(["fixed", "volatility"])),
        tier_floor=floor,
        tier_cap=cap,
        tier_rate=rate,
        tier_cum=cum,
        tier_max_leverage=max_leverage,
        label=tiers.label,
    ).check()


@st.composite
def scenarios(draw, venue: str, margin_mode: str):
    seed = draw(st.integers(0, 2**32 - 1))
    bars = draw(st.integers(2, 150))
    market = make_market(
        seed,
        bars,
        volatility=draw(st.sampled_from([0.001, 0.01, 0.05])),
        jumps=draw(st.sampled_from([0.0, 0.05])),
        marks=draw(st.sampled_from(["none", "full", "holes"])),
        funding=draw(st.sampled_from(["none", "settlements"])),
    )
    account = make_account(draw, venue, margin_mode)
    decisions = make_decisions(
        seed,
        bars,
        scale=draw(st.sampled_from([0.5, 1.0, 1.5])) * account.leverage,
        sparsity=draw(st.sampled_from([0.0, 0.5, 0.9])),
        reasons=draw(st.booleans()),
        close=market.close,
        levels=draw(st.sampled_from([0.0, 0.005, 0.03])),
    )
    return market, decisions, account


def assert_same(compiled: tuple, twin: tuple, cash: float) -> None:
    """Every output equal, bit for bit: the kernel does the twin's float operations in order."""
    assert len(compiled) == len(twin) == len(FIELDS)
    for name, got, expected in zip(FIELDS, compiled, twin, strict=True):
        if name == "final_value":
            assert isinstance(got, float), name
            assert got == expected or (got != got and expected != expected), name
            continue
        assert isinstance(got, np.ndarray), name
        assert got.dtype == np.asarray(expected).dtype, name
        assert got.shape == np.asarray(expected).shape, name
        np.testing.assert_array_equal(got, expected, err_msg=name)  # NaN equals NaN here


def run_both(market: MarketArrays, decisions: Decisions, account: Account):
    arguments = raw_arguments(market, decisions, account)
    return kernel.simulate(*arguments), simulate_reference(*arguments)


CASES = [
    ("binance", "isolated"),
    ("binance", "cross"),
    ("bybit", "isolated"),
    ("okx", "isolated"),
    ("hyperliquid", "isolated"),
]


@pytest.mark.parametrize(("venue", "margin_mode"), CASES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_kernel_equals_twin(venue, margin_mode, data):
    market, decisions, account = data.draw(scenarios(venue, margin_mode))
    compiled, twin = run_both(market, decisions, account)
    assert_same(compiled, twin, account.cash)


def test_scenarios_reach_every_event():
    """The scenarios liquidate, settle funding, refuse orders and fill stops and take-profits."""
    totals = dict.fromkeys(("fills", "funding", "liquidations", "gaps", "rejections"), 0)
    codes: set[int] = set()
    kinds: set[int] = set()
    for seed in range(40):
        market = make_market(seed, 300, 0.01, 0.05, "holes", "settlements")
        for venue, margin_mode, tiers in [
            *((venue, mode, TABLES[venue][sorted(TABLES[venue])[0]]) for venue, mode in CASES),
            ("binance", "isolated", TABLES["binance"]["tiny"]),  # brackets refuse leverage
        ]:
            floor, cap, rate, cum, max_leverage = tier_arrays(tiers)
            account = Account(
                cash=1_000.0,
                leverage=20.0,
                taker_fee=0.0005,
                maker_fee=0.0002,
                liquidation_fee=0.0125,
                mult=1.0,
                venue=venue,
                margin_mode=margin_mode,
                funding=True,
                slippage=0.0005,
                slippage_model="fixed",
                tier_floor=floor,
                tier_cap=cap,
                tier_rate=rate,
                tier_cum=cum,
                tier_max_leverage=max_leverage,
            ).check()
            levels = 0.02 if seed % 2 else 0.0
            decisions = make_decisions(seed, 300, 30.0, 0.7, True, market.close, levels)
            compiled, twin = run_both(market, decisions, account)
            assert_same(compiled, twin, account.cash)
            result = Simulation(*compiled)
            totals["fills"] += result.fill_bar.size
            totals["funding"] += result.funding_bar.size
            totals["liquidations"] += result.liq_bar.size
            totals["gaps"] += int(result.liq_gap.sum())
            totals["rejections"] += result.reject_bar.size
            codes.update(int(code) for code in result.reject_code)
            kinds.update(int(kind) for kind in result.fill_kind)
    assert all(count > 0 for count in totals.values()), totals
    assert {1, 2, 3, 4} <= codes, codes  # margin (submission, fill), notional cap, tier
    assert kinds == {0, 1, 2, 3}, kinds  # market, stop, take-profit, liquidation


def test_long_run_grows_the_event_buffers():
    """Thousands of fills and settlements: the kernel's buffers grow past their first size."""
    bars = 20_000
    market = make_market(7, bars, 0.002, 0.0, "none", "settlements")
    target = np.where(np.arange(bars) % 2 == 0, 1.0, -1.0)
    decisions = Decisions.from_target(target)
    tiers = TABLES["binance"]["btc-2026"]
    floor, cap, rate, cum, max_leverage = tier_arrays(tiers)
    account = Account(
        cash=100_000.0,
        leverage=2.0,
        taker_fee=0.0,
        maker_fee=0.0,
        liquidation_fee=0.0125,
        mult=1.0,
        venue="binance",
        margin_mode="isolated",
        funding=True,
        slippage=0.0,
        slippage_model="fixed",
        tier_floor=floor,
        tier_cap=cap,
        tier_rate=rate,
        tier_cum=cum,
        tier_max_leverage=max_leverage,
    ).check()
    compiled, twin = run_both(market, decisions, account)
    assert_same(compiled, twin, account.cash)
    result = Simulation(*compiled)
    assert result.fill_bar.size >= bars - 2
    assert result.funding_bar.size > bars // 10


def test_public_simulate_uses_the_kernel_and_the_twin():
    market = make_market(3, 200, 0.01, 0.05, "full", "settlements")
    decisions = make_decisions(3, 200, 5.0, 0.5, True, market.close, 0.01)
    tiers = TABLES["binance"]["btc-2026"]
    floor, cap, rate, cum, max_leverage = tier_arrays(tiers)
    account = Account(
        cash=10_000.0,
        leverage=10.0,
        taker_fee=0.0005,
        maker_fee=0.0002,
        liquidation_fee=0.0125,
        mult=1.0,
        venue="binance",
        margin_mode="isolated",
        funding=True,
        slippage=0.0,
        slippage_model="fixed",
        tier_floor=floor,
        tier_cap=cap,
        tier_rate=rate,
        tier_cum=cum,
        tier_max_leverage=max_leverage,
    ).check()
    compiled = simulate(market, decisions, account, engine="cython")
    twin = simulate(market, decisions, account, engine="python")
    assert_same(
        tuple(getattr(compiled, name) for name in FIELDS),
        tuple(getattr(twin, name) for name in FIELDS),
        account.cash,
    )


def test_read_only_inputs():
    market = make_market(5, 50, 0.01, 0.0, "full", "settlements")
    decisions = make_decisions(5, 50, 3.0, 0.3, False)
    tiers = TABLES["okx"]["sol"]
    floor, cap, rate, cum, max_leverage = tier_arrays(tiers)
    account = Account(
        cash=1_000.0,
        leverage=5.0,
        taker_fee=0.0005,
        maker_fee=0.0002,
        liquidation_fee=0.0,
        mult=1.0,
        venue="okx",
        margin_mode="isolated",
        funding=True,
        slippage=0.0,
        slippage_model="fixed",
        tier_floor=floor,
        tier_cap=cap,
        tier_rate=rate,
        tier_cum=cum,
        tier_max_leverage=max_leverage,
    )
    arguments = raw_arguments(market, decisions, account)
    for argument in arguments:
        if isinstance(argument, np.ndarray):
            argument.flags.writeable = False
    assert_same(kernel.simulate(*arguments), simulate_reference(*arguments), account.cash)


def test_mismatched_lengths_are_refused():
    market = make_market(1, 10, 0.01, 0.0, "none", "none")
    decisions = make_decisions(1, 10, 1.0, 0.0, False)
    tiers = TABLES["okx"]["sol"]
    floor, cap, rate, cum, max_leverage = tier_arrays(tiers)
    account = Account(
        cash=1_000.0,
        leverage=5.0,
        taker_fee=0.0005,
        maker_fee=0.0002,
        liquidation_fee=0.0,
        mult=1.0,
        venue="okx",
        margin_mode="isolated",
        funding=True,
        slippage=0.0,
        slippage_model="fixed",
        tier_floor=floor,
        tier_cap=cap,
        tier_rate=rate,
        tier_cum=cum,
        tier_max_leverage=max_leverage,
    )
    arguments = list(raw_arguments(market, decisions, account))
    arguments[3] = arguments[3][:-1]  # close one bar short
    with pytest.raises(ValueError, match="same length"):
        kernel.simulate(*arguments)
    arguments = list(raw_arguments(market, decisions, account))
    arguments[22] = arguments[22][:-1]  # tier_cap one bracket short
    with pytest.raises(ValueError, match="tier"):
        kernel.simulate(*arguments)
    arguments = list(raw_arguments(market, decisions, account))
    arguments[26] = 7  # venue code
    with pytest.raises(ValueError, match="venue"):
        kernel.simulate(*arguments)


def test_build_matches_debug_switch():
    assert kernel.debug_build() is DEBUG_REQUESTED


@pytest.mark.skipif(not DEBUG_REQUESTED, reason="bounds checks exist only in the debug build")
def test_debug_build_checks_bounds():
    with pytest.raises(IndexError):
        kernel.read_element(np.arange(3.0), 3)


def test_funding_beyond_the_cross_wallet_liquidates_in_both():
    """Funding far beyond the cross wallet: both count the wallet as 0 and liquidate."""
    bars = 6
    close = np.full(bars, 100.0)
    rate = np.full(bars, np.nan)
    rate[3] = 50.0  # a settlement that takes fifty times the notional
    market = MarketArrays(
        open=close.copy(),
        high=close * 1.001,
        low=close * 0.999,
        close=close,
        volume=np.ones(bars),
        time=np.arange(bars, dtype=np.int64),
        funding_rate=rate,
    )
    decisions = Decisions.from_target(np.full(bars, 1.0))
    floor, cap, rates, cum, max_leverage = tier_arrays(TABLES["binance"]["btc-2026"])
    account = Account(
        cash=1_000.0,
        leverage=1.0,
        taker_fee=0.0,
        maker_fee=0.0,
        liquidation_fee=0.0125,
        mult=1.0,
        venue="binance",
        margin_mode="cross",
        funding=True,
        slippage=0.0,
        slippage_model="fixed",
        tier_floor=floor,
        tier_cap=cap,
        tier_rate=rates,
        tier_cum=cum,
        tier_max_leverage=max_leverage,
    ).check()
    arguments = raw_arguments(market, decisions, account)
    twin = Simulation(*simulate_reference(*arguments))
    compiled = Simulation(*kernel.simulate(*arguments))
    assert twin.liq_bar.tolist() == compiled.liq_bar.tolist() == [3]
    assert bool(twin.liq_gap[0]) and twin.liq_loss[0] == 0.0
    for name in ("value", "cash", "position_size", "liquidation_price", "funding_cum"):
        np.testing.assert_array_equal(getattr(compiled, name), getattr(twin, name), err_msg=name)
