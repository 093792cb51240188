"""Each built-in strategy does what its docstring says, checked on the real 2025-10 sample.

The expected signals are recomputed here from the data and the liquidation map directly, not
read back from the strategy, so a strategy that trades at the wrong bars fails.
"""

import pandas as pd
import pytest

from backtest.liquidation.cascade import CascadeParams
from backtest.liquidation.heatmap import LiquidationMap, MapParams
from backtest.plugins import discover

CRASH_START = pd.Timestamp("2025-10-10 20:50", tz="UTC")  # the 21:00-21:20 UTC cascade
CRASH_LOW = pd.Timestamp("2025-10-10 21:20", tz="UTC")


def bars_before(frame, time, count):
    position = frame.index.get_loc(time)
    return frame.index[max(0, position - count) : position + 1]


def test_all_builtins_are_discovered_with_docs():
    catalogue = discover()
    builtins = ("BuyAndHold", "SmaCross", "ClusterFade", "CascadeBreakout", "ClusterHedge")
    for name in (*builtins, "ClusterRotation"):
        info = catalogue.strategies[name]
        assert info.summary, name
        assert info.source.endswith(".py")
    assert not [error for error in catalogue.errors if "/strategies/" in error]


def test_buy_and_hold_holds_one_unit_of_exposure(run_builtin, frame):
    results = run_builtin("BuyAndHold")
    assert len(results.orders) == 1 and results.orders.side.iloc[0] == "buy"
    first_close = frame.close.iloc[0]
    # sized on the first close, filled at the second bar's open
    assert results.orders["size"].iloc[0] == pytest.approx(10_000.0 / first_close, rel=1e-9)
    exposure = results.equity.position_notional / results.equity.value
    assert exposure.iloc[-1] == pytest.approx(
        frame.close.iloc[-1] / first_close * 10_000.0 / results.equity.value.iloc[-1], rel=1e-6
    )
    assert results.liquidations.empty


def test_sma_cross_trades_exactly_on_crossings(run_builtin, frame):
    results = run_builtin("SmaCross")
    fast = frame.close.rolling(10).mean()
    slow = frame.close.rolling(30).mean()
    above = fast > slow
    crosses_up = above & ~above.shift(1, fill_value=False) & slow.shift(1).notna()
    crosses_down = ~above & above.shift(1, fill_value=False) & slow.notna()
    # orders are sent on the crossing bar and filled at the next bar's open
    next_bar = pd.Series(frame.index[1:], index=frame.index[:-1])
    expected_buys = set(next_bar.reindex(frame.index[crosses_up]).dropna())
    expected_sells = set(next_bar.reindex(frame.index[crosses_down]).dropna())
    buys = set(results.orders.loc[results.orders.side == "buy", "time"])
    sells = set(results.orders.loc[results.orders.side == "sell", "time"])
    assert buys == expected_buys
    # the first cross-down before any position sends nothing
    assert sells <= expected_sells and len(expected_sells - sells) <= 1
    assert len(buys) > 20


def map_lines(frame, **params):
    return LiquidationMap(MapParams(**params)).run(frame).lines


def test_cluster_fade_enters_only_after_sweeps_on_a_reversal_bar(run_builtin, frame):
    results = run_builtin("ClusterFade")
    lines = map_lines(frame, band=0.03)
    long_sweep = lines.liq_long >= 0.03 * lines.long_band_notional.shift(1)
    short_sweep = lines.liq_short >= 0.03 * lines.short_band_notional.shift(1)
    previous_bar = pd.Series(frame.index[:-1], index=frame.index[1:])
    entries = results.trades[["entry_time", "side"]]
    assert len(entries) >= 10
    for entry_time, side in entries.itertuples(index=False):
        signal_bar = previous_bar[entry_time]
        window = bars_before(frame, signal_bar, 12)
        sweeps = long_sweep if side == "long" else short_sweep
        assert sweeps.reindex(window).any(), (entry_time, side)
        body = frame.close[signal_bar] - frame.open[signal_bar]
        assert body > 0 if side == "long" else body < 0
    # it buys the 2025-10-10 flush once the cascade stalls
    crash_buys = entries[
        (entries.side == "long")
        & (entries.entry_time > CRASH_START)
        & (entries.entry_time < CRASH_START + pd.Timedelta("3h"))
    ]
    assert len(crash_buys) >= 1


def test_cascade_breakout_shorts_before_the_crash_toward_the_cascade(run_builtin, frame):
    results = run_builtin("CascadeBreakout")
    defaults = discover().strategies["CascadeBreakout"].parameters
    lines = map_lines(frame, cascade=CascadeParams())
    previous_bar = pd.Series(frame.index[:-1], index=frame.index[1:])
    trades = results.trades
    assert len(trades) >= 2
    for entry_time, side in trades[["entry_time", "side"]].itertuples(index=False):
        signal = lines.loc[previous_bar[entry_time]]
        assert signal.cascade_risk >= defaults["min_risk"]
        distance = (
            signal.long_cluster_distance_pct
            if side == "short"
            else signal.short_cluster_distance_pct
        )
        assert distance <= defaults["proximity"] * 100.0
    before_crash = trades[
        (trades.side == "short")
        & (trades.entry_time > CRASH_START - pd.Timedelta("4h"))
        & (trades.entry_time <= CRASH_START)
    ]
    assert len(before_crash) == 1
    assert before_crash.pnl_net.iloc[0] > 0
    assert before_crash.exit_time.iloc[0] <= CRASH_LOW


def drawdown(values):
    return float((values / values.cummax() - 1.0).min())


def test_cluster_hedge_is_hedged_before_the_cascade_and_loses_less(run_builtin):
    hedged = run_builtin("ClusterHedge")
    holding = run_builtin("BuyAndHold")
    exposure = hedged.equity.position_notional / hedged.equity.value
    assert exposure[CRASH_START] == pytest.approx(0.0, abs=1e-9)
    assert exposure[CRASH_LOW] == pytest.approx(0.0, abs=1e-9)
    assert exposure.max() == pytest.approx(1.0, rel=0.05)  # unhedged it holds one unit
    window = slice("2025-10-10", "2025-10-11")
    hedged_drawdown = drawdown(hedged.equity.value.loc[window])
    holding_drawdown = drawdown(holding.equity.value.loc[window])
    assert holding_drawdown < -0.10
    assert hedged_drawdown > holding_drawdown / 2
    # it re-risks after the cascade is over
    assert exposure.loc["2025-10-11"].max() == pytest.approx(1.0, rel=0.1)
