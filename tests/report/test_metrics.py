"""Each metric against a value computed by hand from a small series."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from backtest.report.metrics import (
    NOT_RECOVERED,
    annualised_return,
    annualised_volatility,
    bar_returns,
    cagr,
    calmar_ratio,
    closest_liquidation_distance,
    compute_metrics,
    drawdown,
    drawdown_periods,
    infer_bar_seconds,
    monthly_returns,
    periods_per_year,
    quote_currency,
    sharpe_ratio,
    sortino_ratio,
    time_in_clusters,
    total_return,
    trade_statistics,
)
from backtest.results import Results

HOURS_PER_YEAR = 365 * 24


def hourly(count: int, start: str = "2025-03-01") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=count, freq="h", tz="UTC")


# ----------------------------------------------------------------------------- calendar


def test_bar_length_is_the_median_spacing_of_the_index():
    five_minutes = pd.date_range("2025-10-01", periods=10, freq="5min", tz="UTC")
    assert infer_bar_seconds(five_minutes) == 300.0
    with_gap = five_minutes.delete([4, 5, 6])  # one 20-minute hole among 5-minute steps
    assert infer_bar_seconds(with_gap) == 300.0
    assert math.isnan(infer_bar_seconds(five_minutes[:1]))
    assert math.isnan(infer_bar_seconds(pd.RangeIndex(5)))


def test_a_crypto_year_has_365_days_of_24_hours():
    assert periods_per_year(3600) == 8760
    assert periods_per_year(300) == 105_120
    assert periods_per_year(86_400) == 365
    assert math.isnan(periods_per_year(math.nan))


# ----------------------------------------------------------------------------- returns

VALUES = np.array([100.0, 110.0, 99.0, 99.0, 108.9])  # returns +10 %, -10 %, 0, +10 %


def test_bar_returns_and_total_return():
    np.testing.assert_allclose(bar_returns(VALUES), [0.1, -0.1, 0.0, 0.1])
    assert total_return(VALUES) == pytest.approx(0.089)
    # A wiped-out account: no return is computed from a zero value.
    np.testing.assert_allclose(bar_returns(np.array([100.0, 0.0, 0.0])), [-1.0])


def test_annualised_return_and_volatility_by_hand():
    returns = bar_returns(VALUES)
    # mean = (0.1 - 0.1 + 0 + 0.1) / 4 = 0.025
    assert annualised_return(returns, HOURS_PER_YEAR) == pytest.approx(0.025 * 8760)
    # deviations from the mean: .075, -.125, -.025, .075 -> squares sum to .0275; ddof = 1
    hourly_std = math.sqrt(0.0275 / 3)
    assert annualised_volatility(returns, HOURS_PER_YEAR) == pytest.approx(
        hourly_std * math.sqrt(8760)
    )


def test_sharpe_and_sortino_by_hand():
    returns = bar_returns(VALUES)
    assert sharpe_ratio(returns, HOURS_PER_YEAR) == pytest.approx(
        0.025 / math.sqrt(0.0275 / 3) * math.sqrt(8760)
    )
    # downside deviation: sqrt((0 + 0.01 + 0 + 0) / 4) = 0.05
    assert sortino_ratio(returns, HOURS_PER_YEAR) == pytest.approx(0.025 / 0.05 * math.sqrt(8760))


def test_cagr_over_two_crypto_years():
    days = pd.date_range("2024-01-01", periods=731, freq="D", tz="UTC")  # 730 days apart
    values = 100.0 * 1.21 ** (np.arange(731) / 730)
    assert (days[-1] - days[0]).days == 730
    assert cagr(values, years=730 / 365) == pytest.approx(0.10)
    assert math.isnan(cagr(values, years=0.0))


def test_cagr_of_a_tiny_run_that_overflows_is_nan_not_inf():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(cagr(np.array([100.0, 150.0]), years=300 / (365 * 86400)))


def test_calmar_is_cagr_over_the_depth_of_the_worst_drawdown():
    assert calmar_ratio(0.30, -0.15) == pytest.approx(2.0)
    assert math.isnan(calmar_ratio(0.30, 0.0))
    assert math.isnan(calmar_ratio(math.nan, -0.1))


def test_ratios_are_nan_on_flat_and_constant_growth_curves():
    flat = np.zeros(10)
    assert math.isnan(sharpe_ratio(flat, 8760))
    assert math.isnan(sortino_ratio(flat, 8760))
    assert annualised_volatility(flat, 8760) == 0.0
    growth = bar_returns(100.0 * 1.001 ** np.arange(50))  # equal returns up to rounding
    assert math.isnan(sharpe_ratio(growth, 8760))
    assert math.isnan(sortino_ratio(growth, 8760))  # no losing bar
    assert math.isnan(sharpe_ratio(np.array([0.01]), 8760))  # one return


# ----------------------------------------------------------------------------- drawdowns


def test_drawdown_series_and_periods_by_hand():
    values = np.array([100.0, 110.0, 99.0, 99.0, 108.9, 121.0, 115.0])
    np.testing.assert_allclose(
        drawdown(values), [0, 0, -0.1, -0.1, 108.9 / 110 - 1, 0, 115 / 121 - 1]
    )
    first, second = drawdown_periods(values)
    assert (first.peak, first.trough, first.end, first.recovered) == (1, 2, 5, True)
    assert first.depth == pytest.approx(-0.1)
    assert (second.peak, second.trough, second.end, second.recovered) == (5, 6, 6, False)
    assert second.depth == pytest.approx(115 / 121 - 1)
    assert drawdown_periods(np.array([1.0, 2.0, 3.0])) == []


# ----------------------------------------------------------------------------- trades


def test_trade_statistics_by_hand():
    stats = trade_statistics(np.array([100.0, -50.0, 30.0, -20.0, 0.0]))
    assert stats["win_rate"] == pytest.approx(2 / 5)
    assert stats["profit_factor"] == pytest.approx(130 / 70)
    assert stats["expectancy"] == pytest.approx(60 / 5)
    assert stats["average_win"] == pytest.approx(65.0)
    assert stats["average_loss"] == pytest.approx(-35.0)
    assert (stats["best"], stats["worst"]) == (100.0, -50.0)


def test_trade_statistics_without_losses_or_trades_are_nan():
    assert math.isnan(trade_statistics(np.array([5.0, 7.0]))["profit_factor"])
    assert all(math.isnan(value) for value in trade_statistics(np.empty(0)).values())


# ----------------------------------------------------------------------------- tables


def test_monthly_returns_by_hand():
    days = pd.date_range("2025-01-01", "2025-03-15", freq="D", tz="UTC")
    values = pd.Series(100.0, index=days)
    values[days >= "2025-01-10"] = 110.0  # January ends at +10 %
    values[days >= "2025-02-10"] = 99.0  # February ends at -10 %
    values[days >= "2025-03-10"] = 108.9  # March (partial) ends at +10 %
    table = monthly_returns(values)
    assert list(table.index) == [2025]
    row = table.loc[2025]
    assert row["Jan"] == pytest.approx(10.0)
    assert row["Feb"] == pytest.approx(-10.0)
    assert row["Mar"] == pytest.approx(10.0)
    assert math.isnan(row["Apr"])
    assert row["Year"] == pytest.approx(8.9)


def test_monthly_returns_span_years():
    index = pd.DatetimeIndex(["2024-12-01", "2024-12-31", "2025-01-31"], tz="UTC")
    table = monthly_returns(pd.Series([100.0, 120.0, 90.0], index=index))
    assert table.loc[2024, "Dec"] == pytest.approx(20.0)
    assert table.loc[2025, "Jan"] == pytest.approx(-25.0)
    assert table.loc[2024, "Year"] == pytest.approx(20.0)


# ----------------------------------------------------------------------------- perpetuals


def test_time_in_clusters_counts_bars_whose_range_meets_the_previous_prediction():
    index = hourly(5)
    market = pd.DataFrame(
        {"high": [101.0, 101.0, 99.0, 103.0, 100.0], "low": [99.0, 99.0, 97.0, 100.5, 98.0]},
        index=index,
    )
    clusters = pd.DataFrame(
        {
            "long_cluster_price": [95.0, 96.0, 96.0, 90.0, np.nan],
            "short_cluster_price": [np.nan, 110.0, 104.0, 110.0, 110.0],
        },
        index=index,
    )
    # bar 0: no prediction yet; bar 1: 95 +/- 0.475 and 99..101 -> no;
    # bar 2: 96 band [95.52, 96.48] vs 97..99 -> no (1 % band: [95.04, 96.96] -> no);
    # bar 3: short 104 band [103.48, 104.52] vs 100.5..103 -> no; with 1 %: [102.96, ..] -> yes
    # bar 4: long 90 / short 110 vs 98..100 -> no
    assert time_in_clusters(market, clusters, band_pct=0.5) == 0.0
    assert time_in_clusters(market, clusters, band_pct=1.0) == pytest.approx(20.0)
    # bar 2 with a 1.1 % band: long 96 -> [94.944, 97.056] meets low 97 -> yes
    assert time_in_clusters(market, clusters, band_pct=1.1) == pytest.approx(40.0)
    assert math.isnan(time_in_clusters(market, pd.DataFrame(), band_pct=1.0))


def test_closest_liquidation_distance_uses_the_adverse_extreme():
    index = hourly(4)
    market = pd.DataFrame(
        {"high": [101.0, 102.0, 105.0, 100.0], "low": [99.0, 95.0, 100.0, 99.0]}, index=index
    )
    equity = pd.DataFrame(
        {
            "position_size": [0.0, 1.0, -1.0, 0.0],
            "liquidation_price": [np.nan, 90.0, 110.0, np.nan],
        },
        index=index,
    )
    # long: (95 - 90) / 95 = 5.263 %; short: (110 - 105) / 105 = 4.762 %
    assert closest_liquidation_distance(equity, market) == pytest.approx(5 / 105 * 100)


def test_quote_currency_is_the_settlement_currency():
    assert quote_currency({"symbol": "BTC/USDT:USDT"}) == "USDT"
    assert quote_currency({"symbol": "ETH/USDC:USDC"}) == "USDC"
    assert quote_currency({"symbol": "BTC/USD:BTC"}) == "BTC"
    assert quote_currency({}, {"symbol": "SOL/USDT"}) == "USDT"
    assert quote_currency({}) == "USDT"


# ----------------------------------------------------------------------------- compute_metrics


def tiny_results() -> Results:
    """Five hourly bars, two trades, funding, fees and one own liquidation, all by hand."""
    index = hourly(5, "2025-10-10 00:00")
    equity = pd.DataFrame(
        {
            "value": [1000.0, 1010.0, 990.0, 1005.0, 1020.0],
            "cash": [1000.0, 999.0, 998.0, 1005.0, 998.0],
            "position_size": [0.0, 1.0, 1.0, 0.0, -0.5],
            "position_notional": [0.0, 2000.0, 1960.0, 0.0, -1000.0],
            "margin_used": [0.0, 500.0, 500.0, 0.0, 250.0],
            "effective_leverage": [0.0, 2.0, 1.98, 0.0, 1000.0 / 1020.0],
            "liquidation_price": [np.nan, 1600.0, 1600.0, np.nan, 2500.0],
            "funding_cum": [0.0, 0.0, 1.0, 1.0, 2.0],
            "fees_cum": [0.0, 1.0, 1.0, 2.0, 2.0],
        },
        index=index,
    )
    market = pd.DataFrame(
        {
            "open": [2000.0, 2000.0, 2010.0, 1960.0, 2005.0],
            "high": [2010.0, 2015.0, 2012.0, 2010.0, 2050.0],
            "low": [1990.0, 1995.0, 1950.0, 1955.0, 2000.0],
            "close": [2000.0, 2010.0, 1960.0, 2005.0, 2030.0],
            "volume": [1.0] * 5,
        },
        index=index,
    )
    trades = pd.DataFrame(
        {
            "entry_time": [index[0], index[3]],
            "exit_time": [index[3], index[4]],
            "side": ["long", "short"],
            "size": [1.0, 0.5],
            "entry_price": [2000.0, 2005.0],
            "exit_price": [2005.0, 2100.0],
            "pnl_gross": [5.0, -47.5],
            "fees": [2.0, 1.0],
            "funding": [1.0, 1.0],
            "pnl_net": [2.0, -49.5],
            "liquidated": [False, True],
            "bars": [3, 1],
        }
    )
    liquidations = pd.DataFrame(
        {
            "time": [index[4]],
            "side": ["short"],
            "size": [0.5],
            "liquidation_price": [2100.0],
            "fill_price": [2100.0],
            "loss": [47.5],
            "fee": [0.5],
            "gap": [False],
        }
    )
    funding = pd.DataFrame(
        {
            "time": [index[2], index[4]],
            "rate": [0.0005, -0.001],
            "mark_price": [1960.0, 2030.0],
            "position_size": [1.0, -0.5],
            "payment": [1.0, 1.0],
        }
    )
    near = pd.DataFrame(
        {
            "time": [index[2]],
            "side": ["long"],
            "price": [1950.0],
            "liquidation_price": [1600.0],
            "distance_pct": [17.9],
        }
    )
    clusters = pd.DataFrame(
        {"long_cluster_price": [1950.0] * 5, "short_cluster_price": [2100.0] * 5}, index=index
    )
    return Results(
        config={"symbol": "ETH/USDC:USDC", "timeframe": "1h", "strategy": "Tiny"},
        meta={"strategy": "Tiny", "symbol": "ETH/USDC:USDC", "status": "complete"},
        equity=equity,
        trades=trades,
        liquidations=liquidations,
        funding=funding,
        near_misses=near,
        market=market,
        clusters=clusters,
    )


def test_compute_metrics_on_a_hand_made_run():
    metrics = compute_metrics(tiny_results(), min_annualised_days=0)
    assert metrics["Strategy"] == "Tiny"
    assert metrics["Start"] == "2025-10-10T00:00:00+00:00"
    assert metrics["End"] == "2025-10-10T04:00:00+00:00"
    assert metrics["Duration [d]"] == pytest.approx(4 / 24)
    assert metrics["Bars"] == 5
    assert metrics["Equity Final [USDC]"] == 1020.0
    assert metrics["Equity Peak [USDC]"] == 1020.0
    assert metrics["Return [%]"] == pytest.approx(2.0)
    assert metrics["Buy & Hold Return [%]"] == pytest.approx(1.5)  # 2000 -> 2030
    returns = [0.01, 990 / 1010 - 1, 1005 / 990 - 1, 1020 / 1005 - 1]
    assert metrics["Return (Ann.) [%]"] == pytest.approx(np.mean(returns) * 8760 * 100)
    assert metrics["Volatility (Ann.) [%]"] == pytest.approx(
        np.std(returns, ddof=1) * math.sqrt(8760) * 100
    )
    assert metrics["CAGR [%]"] == pytest.approx((1.02 ** (8760 / 4) - 1) * 100)
    # Drawdown: peak 1010 at 01:00, trough 990 at 02:00, regained at 04:00 (1020).
    assert metrics["Max. Drawdown [%]"] == pytest.approx((990 / 1010 - 1) * 100)
    assert metrics["Max. Drawdown Start"] == "2025-10-10T01:00:00+00:00"
    assert metrics["Max. Drawdown Trough"] == "2025-10-10T02:00:00+00:00"
    assert metrics["Max. Drawdown End"] == "2025-10-10T04:00:00+00:00"
    assert metrics["Max. Drawdown Duration [h]"] == 3.0
    assert metrics["Longest Drawdown Duration [h]"] == 3.0
    assert metrics["Exposure Time [%]"] == pytest.approx(60.0)
    # Trades.
    assert metrics["# Trades"] == 2
    assert (metrics["Long Trades"], metrics["Short Trades"]) == (1, 1)
    assert metrics["Win Rate [%]"] == pytest.approx(50.0)
    assert metrics["Profit Factor"] == pytest.approx(2.0 / 49.5)
    assert metrics["Expectancy [USDC]"] == pytest.approx(-23.75)
    assert metrics["Best Trade [%]"] == pytest.approx(2.0 / 2000 * 100)
    assert metrics["Worst Trade [%]"] == pytest.approx(-49.5 / (0.5 * 2005) * 100)
    assert metrics["Avg. Trade Duration [h]"] == pytest.approx(2.0)
    assert metrics["Max. Trade Duration [h]"] == 3.0
    # Perpetuals: net 20 = trading 24 + funding -2 - fees 2.
    assert metrics["Net PnL [USDC]"] == pytest.approx(20.0)
    assert metrics["Funding PnL [USDC]"] == pytest.approx(-2.0)
    assert metrics["Fees [USDC]"] == pytest.approx(2.0)
    assert metrics["Trading PnL [USDC]"] == pytest.approx(24.0)
    assert metrics["Funding Payments"] == 2
    assert metrics["Liquidations"] == 1
    assert metrics["Liquidation Loss [USDC]"] == pytest.approx(47.5)
    assert metrics["Near Misses"] == 1
    # long bars: (1995-1600)/1995, (1950-1600)/1950; short bar: (2500-2050)/2050
    assert metrics["Closest Liquidation Distance [%]"] == pytest.approx(350 / 1950 * 100)
    assert metrics["Avg. Exposure [x]"] == pytest.approx((2.0 + 1.98 + 1000 / 1020) / 3)
    assert metrics["Max. Exposure [x]"] == pytest.approx(2.0)
    assert metrics["Max. Margin Use [%]"] == pytest.approx(500 / 990 * 100)
    # Clusters 1950 / 2100 (0.5 % bands [1940.25, 1959.75], [2089.5, 2110.5]): bars 2 (low
    # 1950) and 3 (low 1955) meet the long band; bar 0 has no previous prediction.
    assert metrics["Time in Clusters [%]"] == pytest.approx(40.0)


def test_metric_keys_carry_units_and_values_are_never_infinite(sample_results):
    metrics = compute_metrics(sample_results)
    unitless = {
        "Strategy", "Symbol", "Timeframe", "Start", "End", "Bars", "Sharpe", "Sortino",
        "Calmar", "Profit Factor", "# Trades", "Long Trades", "Short Trades",
        "Funding Payments", "Liquidations", "Near Misses", "Rejected Orders", "Open Trades",
        "Max. Drawdown Start",
        "Max. Drawdown Trough", "Max. Drawdown End",
    }  # fmt: skip
    for key, value in metrics.items():
        assert key in unitless or key.endswith(("[%]", "[USDT]", "[h]", "[d]", "[x]")), key
        if isinstance(value, float):
            assert not math.isinf(value), key
    assert "Funding PnL [USDT]" in metrics
    assert metrics["Max. Drawdown End"] == NOT_RECOVERED  # the sample ends under water
    assert metrics["Liquidations"] == len(sample_results.liquidations) == 1


def test_no_trades_flat_equity():
    index = hourly(24)
    results = Results(
        config={"symbol": "BTC/USDT:USDT"},
        equity=pd.DataFrame(
            {"value": 500.0, "position_size": 0.0, "effective_leverage": 0.0}, index=index
        ),
        market=pd.DataFrame({"close": np.linspace(100, 110, 24)}, index=index),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = compute_metrics(results, min_annualised_days=0)
    assert metrics["Return [%]"] == 0.0
    assert metrics["CAGR [%]"] == 0.0
    assert metrics["Volatility (Ann.) [%]"] == 0.0
    for key in ("Sharpe", "Sortino", "Calmar", "Win Rate [%]", "Profit Factor"):
        assert math.isnan(metrics[key]), key
    assert metrics["Max. Drawdown [%]"] == 0.0
    assert metrics["Max. Drawdown Duration [h]"] == 0.0
    assert metrics["Max. Drawdown End"] == ""
    assert metrics["# Trades"] == 0
    assert metrics["Exposure Time [%]"] == 0.0
    assert metrics["Avg. Exposure [x]"] == 0.0
    assert metrics["Liquidations"] == 0
    assert metrics["Buy & Hold Return [%]"] == pytest.approx(10.0)
    assert math.isnan(metrics["Time in Clusters [%]"])


def test_a_single_bar():
    results = Results(
        equity=pd.DataFrame({"value": [1000.0]}, index=hourly(1)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = compute_metrics(results)
    assert metrics["Bars"] == 1
    assert metrics["Return [%]"] == 0.0
    assert metrics["Duration [d]"] == 0.0
    for key in ("CAGR [%]", "Return (Ann.) [%]", "Volatility (Ann.) [%]", "Sharpe", "Sortino"):
        assert math.isnan(metrics[key]), key


def test_an_empty_run_gives_nan_not_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = compute_metrics(Results())
    assert metrics["Bars"] == 0
    assert math.isnan(metrics["Return [%]"])
    assert metrics["# Trades"] == 0
