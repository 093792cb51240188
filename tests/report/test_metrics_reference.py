"""The return and risk metrics against well-kept libraries computing them the same way.

empyrical-reloaded (a test extra) defines Sharpe, Sortino, annual volatility, max drawdown,
CAGR and Calmar with the conventions of backtest.report.metrics (simple returns, zero risk-free
rate and target, sample standard deviation, downside deviation over all bars); pandas gives the
volatility.  The series is the equity of a hand-made run on the real BTC 5m sample, annualised
with 365 x 24 x 12 bars.
"""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pytest

from backtest.report.metrics import compute_metrics

BARS_PER_YEAR = 365 * 24 * 12


@pytest.fixture(scope="module")
def run(sample_results):
    values = sample_results.equity["value"]
    return compute_metrics(sample_results, min_annualised_days=0), values.pct_change().dropna()


def test_bar_frequency_of_the_sample_has_no_gaps(sample_results):
    spacing = np.diff(sample_results.equity.index.asi8)
    assert (spacing == spacing[0]).all()  # so span-based and count-based years agree


def test_volatility_matches_pandas_and_empyrical(run):
    metrics, returns = run
    by_pandas = returns.std() * math.sqrt(BARS_PER_YEAR) * 100
    assert metrics["Volatility (Ann.) [%]"] == pytest.approx(by_pandas, rel=1e-10)
    by_empyrical = empyrical.annual_volatility(returns, annualization=BARS_PER_YEAR) * 100
    assert metrics["Volatility (Ann.) [%]"] == pytest.approx(by_empyrical, rel=1e-10)


def test_sharpe_and_sortino_match_empyrical(run):
    metrics, returns = run
    assert metrics["Sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(returns, annualization=BARS_PER_YEAR), rel=1e-10
    )
    assert metrics["Sortino"] == pytest.approx(
        empyrical.sortino_ratio(returns, annualization=BARS_PER_YEAR), rel=1e-10
    )


def test_drawdown_cagr_and_calmar_match_empyrical(run):
    metrics, returns = run
    assert metrics["Max. Drawdown [%]"] == pytest.approx(
        empyrical.max_drawdown(returns) * 100, rel=1e-10
    )
    assert metrics["CAGR [%]"] == pytest.approx(
        empyrical.cagr(returns, annualization=BARS_PER_YEAR) * 100, rel=1e-9
    )
    assert metrics["Calmar"] == pytest.approx(
        empyrical.calmar_ratio(returns, annualization=BARS_PER_YEAR), rel=1e-9
    )


def test_total_return_matches_empyrical(run):
    metrics, returns = run
    assert metrics["Return [%]"] == pytest.approx(
        empyrical.cum_returns_final(returns) * 100, rel=1e-10
    )
