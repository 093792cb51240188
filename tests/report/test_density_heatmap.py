"""The report draws the stored liquidation-map density (``Results.heatmap``) behind the candles."""

from __future__ import annotations

import base64
import dataclasses

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from backtest.engine.runner import heatmap_table
from backtest.report import write_report
from backtest.report.charts import density_heatmap, main_figure

from .test_html import plotly_figures


def values_of(data) -> np.ndarray:
    """A trace's array, decoded from plotly's binary encoding when it uses it."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
    return np.asarray(data)


@pytest.fixture(scope="module")
def dense_results(sample_results):
    return dataclasses.replace(
        sample_results, heatmap=heatmap_table(sample_results.market, {"venue": "binance"})
    )


@pytest.fixture(scope="module")
def dense_report(dense_results, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dense")
    page = write_report(dense_results, folder)
    return folder, page.read_text(encoding="utf-8")


def test_the_page_draws_the_density_behind_the_candles(dense_results, dense_report):
    _, text = dense_report
    traces = plotly_figures(text)["chart-main"]
    names = [trace.get("name") for trace in traces]
    density = traces[names.index("Liquidation density")]
    assert density["type"] == "heatmap"
    assert names.index("Liquidation density") < names.index("Price")  # drawn first: behind
    assert "Liquidation clusters" not in names  # the density replaces the nearest clusters
    snapshots = dense_results.heatmap["time"].nunique()
    assert len(values_of(density["x"])) == snapshots + 1  # column edges
    assert len(values_of(density["y"])) == dense_results.heatmap["price"].nunique()
    assert "M USDT" in density["colorbar"]["title"]["text"]
    assert "regularly spaced snapshot bars" in text
    assert "saved without density snapshots" not in text


def test_the_grid_sums_long_and_short_in_millions(dense_results):
    x, y, z, width = density_heatmap(dense_results.heatmap, dense_results.market.index)
    table = dense_results.heatmap
    assert z.shape == (table["price"].nunique(), table["time"].nunique())
    total = (table["long_notional"] + table["short_notional"]).sum() / 1e6
    assert np.nansum(z) == pytest.approx(total, rel=1e-5)
    assert width == pytest.approx(y[1] - y[0])
    first = pd.Timestamp(table["time"].min()) + pd.Timedelta(minutes=5)
    assert x[0] == first.strftime("%Y-%m-%d %H:%M")  # a column starts at its bar's close


def test_the_png_draws_the_density(dense_report):
    folder, _ = dense_report
    picture = imread(folder / "report.png")
    assert picture.shape[0] > 500 and picture.shape[1] > 1000


def test_an_empty_heatmap_falls_back_to_the_nearest_clusters(sample_results):
    figure, notes = main_figure(sample_results, "USDT")
    names = [trace.name for trace in figure.data]
    assert "Liquidation clusters" in names and "Liquidation density" not in names
    assert any("saved without density snapshots" in note for note in notes)
