"""Map leverages above a symbol's maximum are traded at the maximum, in the model itself.

Runs fold such leverages in ``backtest.engine.venues.map_defaults``; ``validate``/``calibrate``
and direct ``LiquidationMap`` users go straight to :meth:`LiquidationMap.liquidation_factors`,
which must cap them the same way instead of refusing the symbol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.engine.venues import _fold_leverages
from backtest.liquidation.heatmap import LINES, LiquidationMap, MapParams
from backtest.liquidation.prices import liquidation_factor
from backtest.liquidation.tiers import load_tiers

LOW_CAP_SYMBOL = "ACT/USDT:USDT"  # Binance caps it at 10x in the bundled snapshots


def _frame(bars: int = 600) -> pd.DataFrame:
    generator = np.random.default_rng(7)
    close = 0.2 * np.exp(np.cumsum(generator.normal(0.0, 0.004, bars)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(generator.normal(0.0, 0.002, bars))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + spread),
            "low": np.minimum(open_, close) * (1.0 - spread),
            "close": close,
            "volume": generator.uniform(1e5, 1e6, bars),
        },
        index=pd.date_range("2025-03-01", periods=bars, freq="5min", tz="UTC", name="time"),
    )


def test_the_symbol_really_caps_leverage_below_the_map_leverages():
    tiers = load_tiers(LOW_CAP_SYMBOL, "binanceusdm")
    cap = tiers.max_leverage_for_notional(min(MapParams().position_notional, tiers.max_notional))
    assert cap < max(MapParams().leverages)
    with pytest.raises(Exception, match="lever"):
        liquidation_factor("binance", "long", max(MapParams().leverages), notional=1e4, tiers=tiers)


def test_factors_above_the_cap_equal_the_cap_factor():
    tiers = load_tiers(LOW_CAP_SYMBOL, "binanceusdm")
    params = MapParams()
    cap = tiers.max_leverage_for_notional(min(params.position_notional, tiers.max_notional))
    longs, shorts = LiquidationMap(params, tiers=tiers, timeframe="5m").liquidation_factors()
    options = {"notional": params.position_notional, "tiers": tiers}
    capped = [leverage for leverage in params.leverages if leverage >= cap]
    assert capped and len(capped) < len(params.leverages)
    for leverage, long, short in zip(params.leverages, longs, shorts, strict=True):
        taken = min(leverage, cap)
        assert long == liquidation_factor("binance", "long", taken, **options)
        assert short == liquidation_factor("binance", "short", taken, **options)
        assert 0.0 < long < 1.0 < short
    # the capped leverages share one level per side, the others keep their own
    assert len(set(longs)) == len(params.leverages) - len(capped) + 1
    assert len(set(shorts)) == len(params.leverages) - len(capped) + 1


def test_capped_map_equals_the_map_runs_build_with_folded_leverages():
    tiers = load_tiers(LOW_CAP_SYMBOL, "binanceusdm")
    params = MapParams()
    cap = tiers.max_leverage_for_notional(min(params.position_notional, tiers.max_notional))
    leverages, weights = _fold_leverages(params.leverages, params.leverage_weights, float(cap))
    assert len(leverages) < len(params.leverages)
    folded = params.__class__(
        **{**params.to_dict(), "leverages": leverages, "leverage_weights": weights}
    )
    frame = _frame()
    capped_lines = LiquidationMap(params, tiers=tiers, timeframe="5m").run(frame).lines
    folded_lines = LiquidationMap(folded, tiers=tiers, timeframe="5m").run(frame).lines
    assert capped_lines["liq_long"].sum() > 0.0
    for name in LINES:
        np.testing.assert_allclose(
            capped_lines[name].to_numpy(),
            folded_lines[name].to_numpy(),
            rtol=1e-9,
            atol=1e-6,
            equal_nan=True,
            err_msg=name,
        )
