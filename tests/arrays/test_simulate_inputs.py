"""Inputs of the array simulator: Decisions, Account, MarketArrays, the engine switch, replay."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtest.arrays.account import account_for
from backtest.arrays.decisions import Decisions
from backtest.arrays.market import market_arrays
from backtest.arrays.replay import ReplayDecisions
from backtest.arrays.simulate import simulate
from backtest.arrays.simulation import Simulation
from backtest.engine import RunConfig, run
from backtest.errors import ConfigError, DataError, PluginError
from tests.arrays.twin_checks import BTC_TIERS, SMALL_TIERS, config, make_frame

NAN = math.nan


@pytest.mark.parametrize(
    ("decisions", "bars", "message"),
    [
        (Decisions.from_target([1.0, NAN]), 3, "target has 2 values for 3 bars"),
        (Decisions.from_target([1.0, math.inf, 0.0]), 3, "target[1] is inf"),
        (Decisions.from_target([1.0, 0.0], [0, 2], ("strategy", "x")), 2, "reason[1] = 2"),
        (Decisions.from_target([1.0, 0.0], [0, -1], ("strategy", "x")), 2, "reason[1] = -1"),
        (Decisions.from_target([1.0], [0, 0]), 1, "reason has 2 values for 1 bars"),
        (Decisions.from_target([1.0], None, ("entry",)), 1, "reasons[0] must be 'strategy'"),
        (Decisions.from_target([1.0], None, ("strategy", "liquidation")), 1, "'liquidation'"),
        (Decisions(np.array([1, 2])), 2, "float64 array"),
    ],
)
def test_decisions_that_do_not_fit_say_what_is_wrong(decisions, bars, message):
    with pytest.raises(ConfigError, match="decisions: ") as caught:
        decisions.check(bars)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("target", "reason", "message"),
    [
        ([[1.0, 2.0]], None, "one-dimensional"),
        (["a", "b"], None, "must be numbers"),
        ([1.0, 2.0], [0.5, 1.0], "integer codes"),
        ([1.0], [40_000], "int16"),
    ],
)
def test_from_target_refuses_what_is_not_an_exposure_path(target, reason, message):
    with pytest.raises(ConfigError, match=message):
        Decisions.from_target(target, reason)


def test_from_target_copies_and_reason_codes_default_to_zero():
    source = np.array([1.0, NAN, -0.5])
    decisions = Decisions.from_target(source)
    source[0] = 9.0
    assert decisions.target[0] == 1.0
    assert decisions.reason_codes().tolist() == [0, 0, 0]
    assert decisions.reason_codes().dtype == np.int16
    assert decisions.reason_label(0) is None
    assert len(decisions) == 3


def test_account_for_takes_the_runs_broker_settings():
    run_config = RunConfig(
        cash=2_500.0,
        leverage=4.0,
        taker_fee=0.0004,
        maker_fee=0.0001,
        venue="bybit",
        funding=False,
        slippage=0.001,
        slippage_model="volatility",
    )
    account = account_for(run_config, SMALL_TIERS)
    assert (account.cash, account.leverage, account.taker_fee, account.maker_fee) == (
        2_500.0,
        4.0,
        0.0004,
        0.0001,
    )
    assert account.liquidation_fee == 0.0  # Bybit charges no separate clearance fee
    assert (account.venue_code, account.margin_mode_code, account.slippage_model_code) == (1, 0, 1)
    assert account.funding is False
    assert account.tier_cap.tolist() == [20_000.0, 50_000.0, 150_000.0]
    assert account.tier_cum.tolist() == [0.0, 300.0, 1_550.0]
    assert account.tier_max_leverage.tolist() == [20.0, 10.0, 5.0]
    assert account_for(RunConfig(), BTC_TIERS).liquidation_fee == 0.0125


@pytest.mark.parametrize(
    ("run_config", "tiers", "message"),
    [
        (RunConfig(), None, "needs the leverage tiers"),
        (RunConfig(symbol=("BTC/USDT:USDT", "ETH/USDT:USDT")), BTC_TIERS, "runs one symbol"),
        (RunConfig(cash=10_000.0, leverage=20.0), SMALL_TIERS, "beyond the largest bracket"),
        ("not a config", BTC_TIERS, "needs a RunConfig"),
    ],
)
def test_account_for_refuses_what_the_simulator_cannot_run(run_config, tiers, message):
    with pytest.raises(ConfigError, match=message):
        account_for(run_config, tiers)


def test_market_arrays_hold_what_the_event_feed_holds():
    frame = make_frame([100.0, 101.0, 102.0], funding={1: 0.0001})
    frame = frame.drop(columns=["mark_high"])
    market = market_arrays(frame)
    assert len(market) == 3
    assert market.open.tolist() == [100.0, 100.0, 101.0]
    assert market.mark_high is None
    assert np.isnan(market.mark_open).all()
    assert np.isnan(market.funding_rate[[0, 2]]).all() and market.funding_rate[1] == 0.0001
    assert market.time.dtype == np.int64
    assert list(market.times) == list(frame.index)
    raw = market.raw()
    assert len(raw) == 9 and np.isnan(raw[5]).all()  # mark_high filled with NaN
    bare = market_arrays(frame[["open", "high", "low", "close"]])
    assert bare.funding_rate is None and bare.mark_open is None and np.isnan(bare.volume).all()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"open": [1.0]}), "DatetimeIndex"),
        (make_frame([1.0, 2.0]).drop(columns=["low"]), "lacks column"),
    ],
)
def test_market_arrays_refuse_a_frame_without_candles(frame, message):
    with pytest.raises(DataError, match=message):
        market_arrays(frame)


def test_simulate_checks_its_inputs_and_the_engine_name():
    frame = make_frame([100.0, 101.0])
    market = market_arrays(frame)
    account = account_for(config(), BTC_TIERS)
    with pytest.raises(ConfigError, match="engine 'fast' is unknown"):
        simulate(market, Decisions.from_target([1.0, NAN]), account, engine="fast")
    with pytest.raises(ConfigError, match="target has 3 values for 2 bars"):
        simulate(market, Decisions.from_target([1.0, NAN, NAN]), account, engine="python")


def test_simulation_fields_are_the_raw_tuple_and_the_package_exports_the_function():
    names = Simulation.field_names()
    assert names[:7] == (
        "value",
        "cash",
        "position_size",
        "margin_used",
        "liquidation_price",
        "funding_cum",
        "fees_cum",
    )
    assert names[-1] == "final_value"
    # the package attribute is the function even though a submodule has the same name
    import backtest.arrays.simulate

    assert callable(backtest.arrays.simulate)
    simulation = backtest.arrays.simulate(
        market_arrays(make_frame([100.0, 100.0, 100.0])),
        Decisions.from_target([1.0, NAN, NAN]),
        account_for(config(leverage=2.0), BTC_TIERS),
        engine="python",
    )
    assert simulation.position_size.tolist() == [0.0, 100.0, 100.0]
    assert simulation.final_value == 10_000.0


def test_an_empty_run_has_empty_tables():
    from backtest.arrays.reference import simulate_reference
    from backtest.arrays.simulate import raw_arguments

    market = market_arrays(make_frame([100.0]).iloc[:0])
    account = account_for(config(), BTC_TIERS)
    raw = simulate_reference(*raw_arguments(market, Decisions.from_target([]), account))
    simulation = Simulation(*raw)
    assert simulation.final_value == 10_000.0
    assert len(simulation.value) == 0 and len(simulation.fill_bar) == 0


def test_replay_without_fitting_decisions_fails_in_one_line():
    frame = make_frame([100.0] * 5)
    short = ReplayDecisions.with_decisions(Decisions.from_target([1.0] * 4))
    with pytest.raises(PluginError, match="target has 4 values for 5 bars") as caught:
        run(config(), data=frame, strategy_class=short, tiers=BTC_TIERS)
    assert "\n" not in str(caught.value)
    with pytest.raises(PluginError, match="needs decisions=Decisions"):
        run(config(), data=frame, strategy_class=ReplayDecisions, tiers=BTC_TIERS)


def test_replay_executes_target_exposure_with_the_reason():
    frame = make_frame([100.0, 100.0, 100.0, 100.0])
    decisions = Decisions.from_target([0.5, NAN, 0.0, NAN], [2, 0, 1, 0], ("strategy", "x", "y"))
    results = run(
        config(leverage=2.0),
        data=frame,
        strategy_class=ReplayDecisions.with_decisions(decisions),
        tiers=BTC_TIERS,
    )
    orders = results.orders
    assert list(orders["reason"]) == ["y", "x"]
    assert list(orders["side"]) == ["buy", "sell"]
    assert orders["size"].tolist() == [50.0, 50.0]
    assert list(orders["time"]) == [frame.index[1], frame.index[3]]
