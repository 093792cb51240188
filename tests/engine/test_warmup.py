"""The liquidation map's warm-up before ``since`` (issue 11, point 4), in the model and the engine.

Data: real Binance BTC/USDT:USDT perpetual 1h candles and funding, 2025-07-25 .. 2025-11-08
(``data/warmup_store``, a slice of Binance's public USD-M history).  The tests pin a 48 h
half-life (:data:`PARAMS`; the shipped default may be another), for which the rule asks for
40 days (960 bars) of warm-up; one test repeats the invariance with the shipped defaults.

The day checked is 2025-11-08.  Runs start 30 and 60 days before it; their maps start 40 days
earlier still (70 and 100 days before the day), so the older run's extra 30 days weigh at
most ``2**-35`` on that day.  Without the warm-up the maps would start 30 and 60 days before it
and differ by up to ``2**-15`` (3e-5; consumption by the price path removes part of it, 8e-6
is left on this data), which the tolerance of 1e-6 rejects: the tests below check that as
well, so they can fail.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import backtest
from backtest.engine import RunConfig, run
from backtest.engine.feeds import PerpData
from backtest.engine.indicators import CLUSTER_LINES, LiquidationClusters
from backtest.engine.warmup import join_warmup, split_warmup
from backtest.errors import ConfigError
from backtest.liquidation.heatmap import LINES, LiquidationMap, MapParams
from backtest.liquidation.warmup import warmup_start
from backtest.market.store import load_market

STORE = Path(__file__).parent / "data" / "warmup_store"
DAY = pd.Timestamp("2025-11-08", tz="UTC")
UNTIL = "2025-11-09"
RELATIVE = 1e-6
#: Map parameters of these tests: a 48 h half-life (20 half-lives = 40 days).
PARAMS = {"half_life_hours": 48.0}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load_market("BTC/USDT:USDT", "1h", data_dir=STORE)


def _since(days: int) -> str:
    return f"{DAY - pd.Timedelta(days=days):%Y-%m-%d}"


def assert_same_lines(first: pd.DataFrame, second: pd.DataFrame, *, rtol: float = RELATIVE):
    """Every line equal to ``rtol`` (NaN where the other is NaN), bar by bar."""
    assert list(first.index) == list(second.index)
    assert len(first) == 24
    for name in LINES:
        np.testing.assert_allclose(
            first[name].to_numpy(), second[name].to_numpy(), rtol=rtol, atol=0.0, err_msg=name
        )


def largest_difference(first: pd.DataFrame, second: pd.DataFrame) -> float:
    worst = 0.0
    for name in LINES:
        a, b = first[name].to_numpy(), second[name].to_numpy()
        both = np.isfinite(a) & np.isfinite(b) & (b != 0)
        if both.any():
            worst = max(worst, float(np.max(np.abs(a[both] - b[both]) / np.abs(b[both]))))
    return worst


# -- the model ---------------------------------------------------------------------------------
def map_lines(frame: pd.DataFrame, start: pd.Timestamp, params=None) -> pd.DataFrame:
    params = MapParams(**PARAMS) if params is None else params
    lines = LiquidationMap(params).run(frame.loc[start:]).lines
    return lines.loc[DAY:]


def test_map_lines_on_a_day_do_not_depend_on_the_start(frame):
    later = map_lines(frame, warmup_start(_since(30), MapParams(**PARAMS), "1h"))
    earlier = map_lines(frame, warmup_start(_since(60), MapParams(**PARAMS), "1h"))
    assert_same_lines(later, earlier)
    # the lines carry clusters on that day (the comparison is not between empty maps)
    assert (later["long_band_notional"] > 0).all() and later["long_cluster_price"].notna().all()


def test_the_same_holds_with_the_shipped_defaults(frame):
    defaults = MapParams()
    later = map_lines(frame, warmup_start(_since(30), defaults, "1h"), defaults)
    earlier = map_lines(frame, warmup_start(_since(60), defaults, "1h"), defaults)
    assert_same_lines(later, earlier)


def test_without_the_warm_up_the_start_shows(frame):
    # maps started 30 and 60 days before the day: 15 half-lives apart, beyond the tolerance
    later = map_lines(frame, pd.Timestamp(_since(30), tz="UTC"))
    earlier = map_lines(frame, pd.Timestamp(_since(60), tz="UTC"))
    assert largest_difference(later, earlier) > RELATIVE
    # and the closer the start, the larger the difference
    recent = map_lines(frame, pd.Timestamp(_since(10), tz="UTC"))
    assert largest_difference(recent, earlier) > 100 * largest_difference(later, earlier)


# -- the engine --------------------------------------------------------------------------------
class Recorder(backtest.Strategy):
    """Records the map's lines it sees on every bar; never trades."""

    seen: ClassVar[list] = []

    def next(self):
        moment = bt.num2date(self.datas[0].datetime[0])
        values = [getattr(self.clusters, name)[0] for name in CLUSTER_LINES]
        type(self).seen.append((pd.Timestamp(moment, tz="UTC"), values))


def seen_by_strategy(since: str, **settings) -> tuple[pd.DataFrame, backtest.Results]:
    Recorder.seen = []
    config = RunConfig(
        symbol="BTC/USDT:USDT",
        timeframe="1h",
        since=since,
        until=UNTIL,
        data_dir=str(STORE),
        **{"map_params": PARAMS, **settings},
    )
    results = run(config, strategy_class=Recorder)
    times = [moment for moment, _ in Recorder.seen]
    lines = pd.DataFrame([values for _, values in Recorder.seen], index=times, columns=LINES)
    return lines, results


def test_a_strategy_sees_the_same_lines_whatever_the_since(frame):
    later, later_results = seen_by_strategy(_since(30))
    earlier, _ = seen_by_strategy(_since(60))
    assert later.index[0] == pd.Timestamp(_since(30), tz="UTC")
    assert_same_lines(later.loc[DAY:], earlier.loc[DAY:])
    # and they are the model's lines over the loaded range, bar for bar
    start = warmup_start(_since(30), MapParams(**PARAMS), "1h")
    library = LiquidationMap(MapParams(**PARAMS)).run(frame.loc[start:]).lines
    assert_same_lines(later.loc[DAY:], library.loc[DAY:], rtol=1e-15)
    info = later_results.meta["warmup"]
    assert info == {
        "requested": "40d",
        "used": "40d",
        "start": start.isoformat(),
        "bars": 960,
        "shortened": False,
    }


def test_warm_up_zero_is_the_map_started_at_since(frame):
    later, results = seen_by_strategy(_since(30), warmup="0")
    earlier, _ = seen_by_strategy(_since(60), warmup="0")
    assert largest_difference(later.loc[DAY:], earlier.loc[DAY:]) > RELATIVE
    library = LiquidationMap(MapParams(**PARAMS)).run(frame.loc[_since(30) : UNTIL]).lines
    assert_same_lines(later.loc[DAY:], library.loc[DAY:], rtol=1e-15)
    assert results.meta["warmup"]["bars"] == 0 and results.config["warmup"] == "0"


def test_nothing_is_traded_or_recorded_before_since():
    since = _since(20)
    config = RunConfig(
        symbol="BTC/USDT:USDT",
        timeframe="1h",
        since=since,
        until=UNTIL,
        data_dir=str(STORE),
        map_params=PARAMS,
    )
    results = run(config)
    first = pd.Timestamp(since, tz="UTC")
    assert len(results.trades) > 0  # ClusterFade trades on this data
    assert (pd.DatetimeIndex(results.trades["entry_time"]) >= first).all()
    for table in (results.equity, results.market, results.clusters):
        assert table.index[0] == first
    assert pd.DatetimeIndex(results.heatmap["time"]).min() >= first
    assert len(results.funding) > 0  # settlements paid by the positions, from since on only
    assert pd.DatetimeIndex(results.funding["time"]).min() >= first
    assert results.meta["bars"] == len(results.market)
    assert results.meta["warmup"]["used"] == "40d"


def test_a_short_history_shortens_the_warm_up_with_one_warning(caplog):
    caplog.set_level(logging.WARNING, logger="backtest.warmup")
    _, results = seen_by_strategy("2025-08-15")
    info = results.meta["warmup"]
    # the store starts 2025-07-25: 21 of the 40 days exist
    assert info["shortened"] is True and info["used"] == "21d" and info["requested"] == "40d"
    assert info["start"] == "2025-07-25T00:00:00+00:00" and info["bars"] == 21 * 24
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "warm-up shortened" in messages[0] and "2025-07-25 00:00" in messages[0]
    caplog.clear()
    _, results = seen_by_strategy(_since(30))
    assert not caplog.records and results.meta["warmup"]["shortened"] is False


def test_a_caller_frame_before_since_is_warm_up_not_trading(frame):
    config = RunConfig(
        symbol="BTC/USDT:USDT", timeframe="1h", since=_since(30), until=UNTIL, map_params=PARAMS
    )
    split = split_warmup(config, frame)
    assert split.frame.index[0] == pd.Timestamp(_since(30), tz="UTC")
    assert split.warmup.index[0] == warmup_start(_since(30), MapParams(**PARAMS), "1h")
    # settlements placed on the warm-up bars are not the traded frame's
    traded_settlements = np.asarray(split.frame.attrs["funding_times"])
    assert traded_settlements.min() >= pd.Timestamp(_since(30), tz="UTC").value // 10**6
    Recorder.seen = []
    results = run(config, data=frame.loc[:UNTIL], strategy_class=Recorder)
    assert results.market.index[0] == split.frame.index[0]
    assert results.meta["warmup"]["bars"] == 960


def test_step_by_step_mode_primes_the_map_with_the_warm_up(frame):
    """``runonce=False`` steps the map over the warm-up bars first: same lines as runonce."""
    config = RunConfig(
        symbol="BTC/USDT:USDT", timeframe="1h", since=_since(3), until=UNTIL, map_params=PARAMS
    )
    split = split_warmup(config, frame.loc[:UNTIL])

    class Keep(bt.Strategy):
        def __init__(self):
            self.clusters = LiquidationClusters(self.datas[0], **PARAMS)

    outputs = {}
    for runonce in (True, False):
        cerebro = bt.Cerebro(stdstats=False, runonce=runonce, preload=True)
        cerebro.adddata(PerpData(dataname=split.frame, warmup=split.warmup))
        cerebro.addstrategy(Keep)
        strategy = cerebro.run()[0]
        outputs[runonce] = {
            name: np.asarray(getattr(strategy.clusters.lines, name).array[: len(split.frame)])
            for name in CLUSTER_LINES
        }
    library = LiquidationMap(MapParams(**PARAMS)).run(join_warmup(split.warmup, split.frame)).lines
    for name in CLUSTER_LINES:
        expected = library[name].to_numpy()[len(split.warmup) :]
        np.testing.assert_allclose(outputs[True][name], expected, rtol=1e-15, err_msg=name)
        np.testing.assert_allclose(outputs[False][name], expected, rtol=1e-12, err_msg=name)


def test_bad_warmup_setting_is_one_config_error():
    with pytest.raises(ConfigError, match="warmup '3x' is not understood"):
        RunConfig(warmup="3x")
    assert RunConfig(warmup="auto").warmup is None
    assert RunConfig(warmup="720h").warmup == "30d"


# -- the command line ----------------------------------------------------------------------
def backtest_cli(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backtest", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_run_command_warmup_flag_and_record(tmp_path):
    common = ["run", "--data-dir", str(STORE), "--timeframe", "1h", "--until", UNTIL, "-q"]
    done = backtest_cli(
        *common, "--since", "2025-08-15", "--warmup", "30d", "--report", "out", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    # 30 days before 2025-08-15 is before the stored 2025-07-25: one warning line
    warnings = [line for line in done.stderr.splitlines() if "warm-up shortened" in line]
    assert len(warnings) == 1 and "asks for 30d" in warnings[0]
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["config"]["warmup"] == "30d"
    assert document["meta"]["warmup"]["used"] == "21d"
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<th>warmup.used</th><td>21d</td>" in page  # the report shows it
    bad = backtest_cli(*common, "--warmup", "soon", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: warmup 'soon' is not understood; use auto (the default rule), 0 (none) or a "
        "span such as 30d, 12h or 2w"
    ]


# -- sweeps and the heatmap command ---------------------------------------------------------
def test_a_sweep_run_warms_up_like_a_plain_run():
    from backtest.sweep import worker
    from backtest.sweep.backends import prepare_settings, run_backtest

    settings = prepare_settings(
        {
            "timeframe": "1h",
            "since": _since(10),
            "until": UNTIL,
            "data_dir": str(STORE),
            "map_params": PARAMS,
        }
    )
    worker.clear_cache()
    try:
        frame = worker.market_for(settings)
        assert frame.index[0] == pd.Timestamp(_since(10), tz="UTC")  # the traded bars
        swept = run_backtest(settings, frame)
    finally:
        worker.clear_cache()
    plain = run(RunConfig.from_dict(settings))
    assert swept.meta["warmup"] == plain.meta["warmup"]
    assert swept.meta["warmup"]["bars"] == 960
    pd.testing.assert_frame_equal(swept.clusters, plain.clusters)
    pd.testing.assert_frame_equal(swept.trades, plain.trades)


def test_heatmap_command_uses_the_rule_and_warns_when_history_is_short(tmp_path, caplog):
    from backtest.commands.heatmap import make_heatmap

    caplog.set_level(logging.WARNING, logger="backtest.warmup")
    common = {"timeframe": "1h", "window": "1d", "after": "0m", "rows": 40, "map_params": PARAMS}
    make_heatmap(at="2025-11-08T12:00", data_dir=STORE, out=tmp_path, **common)
    assert not caplog.records  # 40 days before the window are stored
    make_heatmap(at="2025-08-20T12:00", data_dir=STORE, out=tmp_path, **common)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    assert "starts at 2025-07-25 00:00 UTC, 25d 12h before the window" in messages[0]


def test_split_records_the_open_interest_retention_and_a_missing_since(frame):
    with_interest = frame.copy()
    with_interest.attrs = dict(frame.attrs)
    interest = np.full(len(frame), 100.0)
    start = warmup_start(_since(30), MapParams(**PARAMS), "1h")
    inside = int(frame.index.searchsorted(start)) + 10
    interest[inside] = 80.0  # one fall of 20 % in the warm-up, recovered on the next bar
    interest[5] = 10.0  # a fall before the warm-up does not count
    with_interest["open_interest"] = interest
    config = RunConfig(symbol="BTC/USDT:USDT", timeframe="1h", since=_since(30), map_params=PARAMS)
    split = split_warmup(config, with_interest)
    assert split.info["open_interest_retention"] == pytest.approx(0.8)
    assert "open_interest_retention" not in split_warmup(config, frame).info
    no_since = split_warmup(RunConfig(symbol="BTC/USDT:USDT", timeframe="1h"), frame)
    assert no_since.warmup is None and no_since.frame is frame
    assert no_since.info["shortened"] is True and no_since.info["used"] == "0"
    assert no_since.warning(RunConfig()).startswith("warm-up shortened: no --since")
    assert split_warmup(RunConfig(timeframe="1h", warmup="0"), frame).warning(config) is None
