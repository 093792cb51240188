"""validate() on the real slice: the lean evaluation path equals the map's ordinary run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from backtest.errors import DataError
from backtest.liquidation.heatmap import LiquidationMap, MapParams
from backtest.validation import validate
from backtest.validation.baselines import naive_proxy

SINCE = "2025-10-01"
UNTIL = "2025-10-20"


@pytest.fixture(scope="module")
def result(candles: pd.DataFrame, truth: pd.DataFrame):
    return validate(candles, truth, since=SINCE, until=UNTIL, warmup="5d")


def test_window_and_warmup_are_stated(result) -> None:
    window = result.window
    assert window.first_bar == pd.Timestamp("2025-10-01", tz="UTC")
    assert window.last_bar == pd.Timestamp("2025-10-19 20:00", tz="UTC")
    assert window.bars == 19 * 6
    assert window.map_start == pd.Timestamp("2025-09-26", tz="UTC")
    assert window.warmup_used == pd.Timedelta(days=5)
    assert result.fitted_overlap == "unknown"
    text = result.format()
    assert "114 truth bars" in text and "warm-up 5 days" in text


def test_map_series_equal_the_ordinary_run_summed_per_4h(result, candles) -> None:
    frame = candles[(candles.index >= "2025-09-26") & (candles.index < UNTIL)]
    lines = LiquidationMap(MapParams()).run(frame).lines
    per_4h = lines[["liq_long", "liq_short"]].resample("4h").sum().reindex(result.series.index)
    np.testing.assert_allclose(result.series["map_long"], per_4h["liq_long"], rtol=1e-9)
    np.testing.assert_allclose(result.series["map_short"], per_4h["liq_short"], rtol=1e-9)
    naive = naive_proxy(frame).resample("4h").sum().reindex(result.series.index)
    np.testing.assert_allclose(result.series["naive_long"], naive["long"], rtol=1e-9)


def test_figures_recomputed_independently(result, truth) -> None:
    series = result.series
    scored = truth.reindex(series.index)
    np.testing.assert_allclose(series["truth_long"], scored["long"])
    card = result.scorecard
    for side in ("long", "short"):
        expected = spearmanr(series[f"map_{side}"], series[f"truth_{side}"])[0]
        assert card.value("spearman", side) == pytest.approx(expected)
    total = series["map_long"] + series["map_short"]
    truth_total = series["truth_long"] + series["truth_short"]
    assert card.value("scale", "total") == pytest.approx(total.sum() / truth_total.sum())
    assert card.value("spearman", "total", "naive") == pytest.approx(
        spearmanr(series["naive_long"] + series["naive_short"], truth_total)[0]
    )
    # the map's claim on this window (it contains the 2025-10-10 crash): it ranks long
    # liquidations better than the naive proxy
    assert card.value("spearman", "long") > card.value("spearman", "long", "naive")
    assert math.isnan(card.value("explained_variance_added", "long", "naive"))


def test_json_is_strict_and_complete(result) -> None:
    document = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(document["scorecard"]) == {"map", "naive", "range_split"}
    assert document["window"]["bars"] == 114
    assert document["scorecard"]["naive"]["explained_variance_added"]["long"] is None


def test_nothing_to_score_is_one_clear_error(candles, truth) -> None:
    with pytest.raises(DataError, match="nothing before"):
        validate(candles, truth, since="2025-09-25", until="2025-09-27", warmup="40d")
    with pytest.raises(DataError, match="empty"):
        validate(candles, truth, since="2025-10-05", until="2025-10-02", warmup="1d")
