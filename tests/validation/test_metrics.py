"""Each scorecard figure against a value worked out by hand on tiny data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from backtest.validation import metrics


def test_spearman_by_the_textbook_formula() -> None:
    # ranks x = 1 2 3 4, y = 1 3 2 4: d = 0 -1 1 0, rho = 1 - 6*2 / (4*15) = 0.8
    assert metrics.spearman([10.0, 20.0, 30.0, 40.0], [5.0, 7.0, 6.0, 9.0]) == pytest.approx(0.8)


def test_spearman_with_ties_uses_average_ranks() -> None:
    estimate = np.array([1.0, 1.0, 2.0, 3.0, 3.0, 5.0])
    truth = np.array([2.0, 1.0, 1.0, 4.0, 6.0, 5.0])
    assert metrics.spearman(estimate, truth) == pytest.approx(spearmanr(estimate, truth)[0])


def test_spearman_of_a_constant_series_is_undefined() -> None:
    assert math.isnan(metrics.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_long_share_correlation_uses_the_busiest_quarter_only() -> None:
    # totals of the truth: 10, 20, ..., 80; the 75th percentile is 62.5 -> bars 7 and 8 only
    # would leave two points, so use 12 bars: totals 10..120, 75th pct 92.5 -> bars 10, 11, 12
    truth_total = np.arange(1, 13) * 10.0
    truth_share = np.array([0.9] * 9 + [0.2, 0.5, 0.8])
    truth_long = truth_total * truth_share
    truth_short = truth_total - truth_long
    estimate_total = np.full(12, 100.0)
    # on the busy bars the estimate's shares are 0.3, 0.4, 0.8: correlation with 0.2, 0.5, 0.8
    estimate_share = np.array([0.1] * 9 + [0.3, 0.4, 0.8])
    estimate_long = estimate_total * estimate_share
    estimate_short = estimate_total - estimate_long
    x = np.array([0.3, 0.4, 0.8])
    y = np.array([0.2, 0.5, 0.8])
    expected = ((x - x.mean()) @ (y - y.mean())) / math.sqrt(
        ((x - x.mean()) ** 2).sum() * ((y - y.mean()) ** 2).sum()
    )
    value = metrics.long_share_correlation(estimate_long, estimate_short, truth_long, truth_short)
    assert value == pytest.approx(expected)
    # the quiet bars' shares (0.1 vs 0.9, anti-aligned) did not count
    assert value > 0.9


def _from_log(values: np.ndarray) -> np.ndarray:
    return np.expm1(values)


def test_explained_variance_added_on_orthogonal_parts() -> None:
    # log(1+truth) = a + b + c with a, b, c centred, orthogonal, equal variance;
    # naive = a, estimate = b: R²(a) = 1/3, R²(a, b) = 2/3, partial = (1/3)/(2/3) = 0.5
    a = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    b = np.array([1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
    c = np.array([1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0])
    offset = 10.0  # keep every value positive
    truth = _from_log(offset + a + b + c)
    naive = _from_log(offset + a)
    estimate = _from_log(offset + b)
    assert metrics.explained_variance_added(estimate, naive, truth) == pytest.approx(0.5)
    # the estimate explaining all that is left scores 1, the naive proxy itself 0
    assert metrics.explained_variance_added(
        _from_log(offset + b + c), naive, truth
    ) == pytest.approx(1.0)
    assert metrics.explained_variance_added(naive, naive, truth) == pytest.approx(0.0, abs=1e-12)


def test_top_decile_hit_rate() -> None:
    truth = np.arange(20, dtype=float)  # top 10 %: bars 19 and 18
    estimate = np.zeros(20)
    estimate[19] = 5.0  # in the estimate's top 2 with bar 0 (ties: earlier bar first)
    assert metrics.top_decile_hit_rate(estimate, truth) == pytest.approx(0.5)
    assert metrics.top_decile_hit_rate(truth, truth) == pytest.approx(1.0)
    # 25 bars: ceil(2.5) = 3 bars in the top decile
    truth = np.arange(25, dtype=float)
    estimate = -truth
    assert metrics.top_decile_hit_rate(estimate, truth) == pytest.approx(0.0)


def test_scale() -> None:
    assert metrics.scale([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == pytest.approx(1.0)
    assert metrics.scale([30.0, 0.0], [1.0, 1.0]) == pytest.approx(15.0)
    assert math.isnan(metrics.scale([1.0], [0.0]))
