"""The 2025-10-10 crash in the bundled Binance USDⓈ-M sample, with the map's DEFAULT parameters.

Reported market-wide that day: about 19 B USD liquidated, about 84 % of it longs, the peak minute
at 21:15 UTC.  Binance's own record (CoinGlass, all of the coin's Binance contracts) is less
one-sided: 71 % longs for BTC and 46 % for ETH that day (ETH's shorts were flushed on the
rebound).  The map, fed only 5-minute candles and funding, must see the shape: at least two
thirds of the day's estimated liquidations are longs, and the bar with the largest estimated
long liquidation lies between 20:30 and 22:00 UTC.

The share threshold was 80 % (the market-wide figure) until the defaults were calibrated on
Binance's record of 2025-01..06; the calibrated map says 70 % (BTC) and 71 % (ETH), so the check
now asks for two thirds.  The calibration never saw this day (it is in the test window).
"""

from __future__ import annotations

import pandas as pd
import pytest

from backtest.liquidation.heatmap import LiquidationMap, MapParams
from backtest.market.store import load_market


@pytest.fixture(scope="module", params=["BTC/USDT:USDT", "ETH/USDT:USDT"])
def crash_day(request):
    frame = load_market(request.param, "5m", since="2025-10-01", until="2025-10-21")
    assert frame.index[0] == pd.Timestamp("2025-10-01", tz="UTC")
    result = LiquidationMap(MapParams()).run(frame)
    return request.param, result.lines.loc["2025-10-10"]


@pytest.mark.kernel
def test_most_of_the_days_liquidations_are_longs(crash_day):
    symbol, day = crash_day
    longs, shorts = day["liq_long"].sum(), day["liq_short"].sum()
    assert longs > 0.0
    assert longs / (longs + shorts) >= 2 / 3, symbol


@pytest.mark.kernel
def test_the_long_liquidation_peak_is_in_the_crash(crash_day):
    symbol, day = crash_day
    peak = day["liq_long"].idxmax()
    assert (
        pd.Timestamp("2025-10-10 20:30", tz="UTC")
        <= peak
        <= pd.Timestamp("2025-10-10 22:00", tz="UTC")
    ), symbol
    # and it stands out: the crash bar dwarfs the day's typical bar
    assert day["liq_long"].max() > 20 * day["liq_long"].median()


@pytest.mark.kernel
def test_calm_days_are_not_one_sided(crash_day):
    """The share is not built into the model: a quiet day before the crash is mixed."""
    symbol, _ = crash_day
    frame = load_market(symbol, "5m", since="2025-10-01", until="2025-10-21")
    lines = LiquidationMap().run(frame).lines
    daily = lines[["liq_long", "liq_short"]].resample("1D").sum()
    share = daily["liq_long"] / daily.sum(axis=1)
    assert share.min() < 0.35 and share.max() > 0.65
