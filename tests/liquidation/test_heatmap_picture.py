"""The liquidation-map picture: re-bucketing, clusters, and `backtest heatmap` on the sample."""

import math
import re
import struct

import numpy as np
import pandas as pd
import pytest

from backtest.cli import main
from backtest.liquidation.heatmap import DensitySnapshot
from backtest.liquidation.picture import (
    build_picture,
    find_clusters,
    format_notional,
    nice_step,
    quote_currency,
    rebucket,
)

AT = "2025-10-10T20:00"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("span", "rows", "step"),
    [(21_000.0, 220, 100.0), (900.0, 220, 5.0), (1.0, 100, 0.01), (3_000.0, 10, 500.0)],
)
def test_nice_step_is_a_round_width_near_the_target(span, rows, step):
    assert nice_step(span, rows) == pytest.approx(step)


@pytest.mark.parametrize(
    ("value", "text"),
    [(42_100_000.0, "42.1 M"), (1.25e9, "1.25 B"), (850_000.0, "850 k"), (123.4e6, "123 M")],
)
def test_format_notional(value, text):
    assert format_notional(value) == text


def test_quote_currency():
    assert quote_currency("BTC/USDT:USDT") == "USDT"
    assert quote_currency("ETH/USDC") == "USDC"


def snapshot(long_notional, short_notional, log_price_min, log_step, price=100.0, time=None):
    return DensitySnapshot(
        time,
        price,
        log_price_min,
        log_step,
        np.asarray(long_notional, dtype=np.float64),
        np.asarray(short_notional, dtype=np.float64),
    )


def test_rebucket_splits_a_bucket_between_bins_by_overlap():
    # one bucket spanning 100 .. 100.1 (log step log(1.001)) with 10 of notional
    log_step = math.log(1.001)
    single = snapshot([10.0], [4.0], math.log(100.0), log_step)
    longs, shorts = rebucket(single, np.array([99.9, 100.0, 100.025, 100.1, 100.2]))
    np.testing.assert_allclose(longs, [0.0, 2.5, 7.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(shorts, [0.0, 1.0, 3.0, 0.0], atol=1e-9)


def test_rebucket_keeps_the_total_inside_the_bins():
    rng = np.random.default_rng(5)
    log_step = math.log1p(0.001)
    density = rng.exponential(1e6, 500)
    snap = snapshot(density, density[::-1], math.log(90.0), log_step)
    edges = np.arange(80.0, 160.0, 0.25)  # covers the whole grid (90 .. 148)
    longs, shorts = rebucket(snap, edges)
    assert longs.sum() == pytest.approx(density.sum(), rel=1e-12)
    assert shorts.sum() == pytest.approx(density.sum(), rel=1e-12)
    # bins as wide as buckets: no empty stripes inside the grid
    inside = (edges[:-1] > 91.0) & (edges[1:] < 147.0)
    assert (longs[inside] > 0).all()


def test_find_clusters_ranks_peaks_inside_the_band_per_side():
    centres = np.arange(90.0, 110.0, 1.0) + 0.5
    longs = np.zeros_like(centres)
    shorts = np.zeros_like(centres)
    longs[[2, 5, 9]] = [50.0, 30.0, 20.0]  # 92.5 is outside a 5 % band around 100
    longs[6] = 5.0  # shoulder of the 95.5 peak
    shorts[[11, 14]] = [7.0, 9.0]  # single-bin spikes are peaks too
    shorts[8] = 100.0  # a short level below the price is not a short cluster
    clusters = find_clusters(centres, longs, shorts, 100.0, band_pct=5.0)
    assert [(c.side, c.price) for c in clusters] == [
        ("long", 95.5),
        ("long", 99.5),
        ("short", 104.5),
        ("short", 101.5),
    ]
    assert clusters[0].notional == pytest.approx(35.0)  # peak plus its neighbours
    assert clusters[0].distance_pct == pytest.approx(-4.5)


def test_find_clusters_keeps_the_count_and_finds_flat_tops():
    centres = np.arange(90.0, 110.0, 1.0) + 0.5
    longs = np.zeros_like(centres)
    longs[[1, 2]] = 4.0  # a flat top of two equal bins: one cluster
    longs[[5, 7, 9]] = [1.0, 2.0, 3.0]
    clusters = find_clusters(centres, longs, np.zeros_like(centres), 100.0, 20.0, count=2)
    assert [c.price for c in clusters] == [92.5, 99.5]


def test_profile_is_the_density_after_the_last_bar_closed_at_the_time():
    times = pd.date_range("2025-10-10 19:40", periods=6, freq="5min", tz="UTC")
    candles = pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0}, index=times)
    log_step = math.log1p(0.001)
    snapshots = [
        snapshot(np.full(400, float(k)), np.zeros(400), math.log(90.0), log_step, 100 + k, t)
        for k, t in enumerate(times)
    ]
    picture = build_picture(
        candles,
        snapshots,
        pd.Timestamp("2025-10-10 20:02", tz="UTC"),
        symbol="BTC/USDT:USDT",
        exchange="binanceusdm",
        timeframe="5m",
    )
    # the bar opening 19:55 closed at 20:00 <= 20:02; the 20:00 bar closes only at 20:05
    assert picture.price_at == 103.0
    assert picture.column_edges[0] == times[0] + pd.Timedelta("5min")
    assert len(picture.column_edges) == len(snapshots) + 1


# ---------------------------------------------------------------------------------------------
# the command on the bundled sample
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def command_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("heatmap")
    empty_store = tmp_path_factory.mktemp("store")  # falls back to the bundled sample
    arguments = [
        "heatmap",
        "--at",
        AT,
        "--window",
        "12h",
        "--after",
        "2h",
        "--out",
        str(out),
        "--data-dir",
        str(empty_store),
    ]
    return arguments, out


@pytest.fixture(scope="module")
def command_output(command_run):
    import contextlib
    import io

    arguments, out = command_run
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(arguments)
    return status, buffer.getvalue(), out


def test_command_writes_a_valid_png(command_output):
    status, _, out = command_output
    assert status == 0
    (png,) = out.glob("*.png")
    header = png.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", header[16:24])
    assert width >= 1200 and height >= 700
    assert png.name == "liquidation-map_BTC_USDT_USDT_5m_20251010T2000.png"


def test_command_writes_an_offline_html(command_output):
    _, _, out = command_output
    (html,) = out.glob("*.html")
    text = html.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?https?:", text, re.IGNORECASE)
    assert "Plotly.newPlot" in text  # the library and the figure are inline
    assert "Time (UTC)" in text


def test_printed_clusters_lie_in_the_band_on_their_side(command_output):
    _, stdout, _ = command_output
    price = float(re.search(r"price ([\d,]+\.\d+) USDT", stdout).group(1).replace(",", ""))
    band = float(re.search(r"within ±([\d.]+) %", stdout).group(1))
    rows = re.findall(
        r"^\s+(long|short)\s+([\d,]+)\s+([\d.]+) ([kMB]) USDT\s+([+-][\d.]+)%", stdout, re.M
    )
    assert {side for side, *_ in rows} == {"long", "short"}
    for side, level, _, _, distance in rows:
        level_price = float(level.replace(",", ""))
        assert abs(level_price / price - 1) * 100 <= band + 0.1
        assert float(distance) == pytest.approx((level_price / price - 1) * 100, abs=0.06)
        assert (level_price < price) if side == "long" else (level_price > price)
    # the sample's price at 20:00 UTC on 2025-10-10 (close of the 19:55 bar)
    assert 116_000 < price < 117_500
    assert "cascade: a -2.0 % shock ends at" in stdout
    assert "amplification" in stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--at", "2026-03-01T00:00"], "outside the stored BTC/USDT:USDT 5m data"),
        (["--at", "10/10/2025 20h"], "is not a date"),
        (["--symbol", "NOPE/USDT:USDT", "--at", AT], "python -m backtest download"),
        (["--at", AT, "--window", "two days"], "is not a time span"),
        (["--at", AT, "--map", "band"], "is not NAME=VALUE"),
        (["--at", AT, "--map", "bandd=0.1"], "did you mean 'band'"),
        (["--at", AT, "--band", "80"], "--band must be a percentage"),
    ],
)
def test_bad_input_ends_in_one_clear_line(arguments, message, tmp_path, capsys):
    status = main(["heatmap", *arguments, "--out", str(tmp_path), "--data-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert not list(tmp_path.glob("*.png"))
