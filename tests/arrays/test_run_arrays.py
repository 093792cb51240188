"""``run_arrays``: the same inputs, checks and errors as ``backtest.engine.run``, one symbol.

Covers the map lines an array strategy sees (bit for bit those of the event run: warm-up,
``map_overrides``, the run's map parameters, the cascade), their cache, the heatmap on
request, array-only plugins on both engines, the checks of ``decide``'s output, the refusals
(portfolio, no array form) and ``run --engine``.
"""

from __future__ import annotations

import json
import logging
import re
import textwrap

import numpy as np
import pandas as pd
import pytest

import backtest
from backtest.arrays.bars import LinesCache
from backtest.arrays.decisions import Decisions
from backtest.arrays.run import has_array_form, run_arrays
from backtest.cli import main
from backtest.engine import RunConfig, run
from backtest.errors import ConfigError, PluginError
from backtest.plugins import resolve_strategy
from tests.arrays.test_strategies_array import assert_same_results

SHORT = {"since": "2025-10-08", "until": "2025-10-12"}


@pytest.fixture(autouse=True)
def _quiet_warmup():
    logger = logging.getLogger("backtest.warmup")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


class ArrayOnly(backtest.Strategy):
    """Long after a bar whose long liquidations exceed a share of the band before it."""

    params = (("share", 0.02), ("exposure", 1.0))

    @classmethod
    def decide(cls, bars, params):
        lines = bars.lines
        before = np.concatenate([[np.nan], lines["long_band_notional"][:-1]])
        with np.errstate(invalid="ignore"):
            signal = lines["liq_long"] >= params.share * before
        target = np.full(len(bars), np.nan)
        target[signal] = params.exposure
        exits = np.flatnonzero(signal) + 12
        target[exits[exits < len(bars)]] = 0.0
        reason = np.zeros(len(bars), dtype=np.int16)
        reason[exits[exits < len(bars)]] = 1
        return Decisions.from_target(target, reason, ("strategy", "time"))


class CascadeReader(backtest.Strategy):
    """Array-only, reading the cascade line (``uses_cascade``) and overriding the map's band."""

    uses_cascade = True
    params = (("risk", 1.05), ("band", 0.05))

    def map_overrides(self):
        return {"band": float(self.p.band), "half_life_hours": 12.0}

    @classmethod
    def decide(cls, bars, params):
        risk = bars.lines["cascade_risk"]
        target = np.full(len(bars), np.nan)
        target[np.arange(len(bars)) % 48 == 0] = 0.0
        target[risk > params.risk] = -1.0
        return target


def test_meta_names_the_array_engine_and_tables_match_the_event_runs():
    config = RunConfig(strategy="ClusterFade", **SHORT)
    event, arrays = run(config), run_arrays(config)
    assert arrays.meta["engine"] == "array" and arrays.meta["status"] == "complete"
    assert arrays.meta["warmup"] == event.meta["warmup"] and arrays.meta["warmup"]["bars"] > 0
    assert arrays.meta["tiers"] == event.meta["tiers"]
    assert arrays.meta["bars"] == event.meta["bars"]
    assert_same_results(event, arrays)
    assert arrays.heatmap.empty
    pd.testing.assert_frame_equal(arrays.market, event.market)


def test_heatmap_only_when_asked_and_equal_to_the_event_runs():
    config = RunConfig(strategy="ClusterFade", params={"band": 0.04}, **SHORT)
    event = run(config)
    arrays = run_arrays(config, heatmap=True)
    assert not arrays.heatmap.empty
    pd.testing.assert_frame_equal(arrays.heatmap, event.heatmap)


def test_map_overrides_run_map_params_and_warmup_reach_the_lines_bit_for_bit():
    config = RunConfig(
        strategy="ClusterFade",
        params={"band": 0.05, "min_swept_share": 0.02},
        map_params={"half_life_hours": 18.0},
        **SHORT,
    )
    event, arrays = run(config), run_arrays(config)
    assert_same_results(event, arrays)
    default = run_arrays(RunConfig(strategy="ClusterFade", **SHORT))
    assert not np.array_equal(
        default.clusters["long_band_notional"], arrays.clusters["long_band_notional"]
    )


def test_an_array_only_plugin_runs_on_both_engines_alike():
    config = RunConfig(strategy="ArrayOnly", **SHORT)
    assert has_array_form(ArrayOnly)
    event = run(config, strategy_class=ArrayOnly)
    arrays = run_arrays(config, strategy_class=ArrayOnly)
    assert len(event.orders) > 4 and "time" in set(event.orders["reason"])
    assert_same_results(event, arrays)


def test_uses_cascade_and_map_overrides_of_an_array_only_plugin():
    config = RunConfig(strategy="CascadeReader", **SHORT)
    event = run(config, strategy_class=CascadeReader)
    arrays = run_arrays(config, strategy_class=CascadeReader)
    assert np.isfinite(arrays.clusters["cascade_risk"]).any()
    assert_same_results(event, arrays)


def test_lines_are_cached_per_market_and_map_not_per_strategy_parameter():
    cache = LinesCache(maxsize=2)
    base = RunConfig(strategy="ClusterFade", **SHORT)
    first = run_arrays(base, lines_cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)
    other = RunConfig(strategy="ClusterFade", params={"take_profit": 0.03}, **SHORT)
    second = run_arrays(other, lines_cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    pd.testing.assert_frame_equal(first.clusters, second.clusters)
    run_arrays(RunConfig(strategy="ClusterFade", params={"band": 0.04}, **SHORT), lines_cache=cache)
    run_arrays(
        RunConfig(strategy="ClusterFade", since="2025-10-09", until="2025-10-12"), lines_cache=cache
    )
    assert (cache.hits, cache.misses, len(cache)) == (1, 3, 2)
    run_arrays(base, lines_cache=cache)  # evicted: least recently used
    assert cache.misses == 4
    uncached = run_arrays(base, lines_cache=LinesCache(maxsize=0))
    pd.testing.assert_frame_equal(uncached.clusters, first.clusters)


def test_a_market_changed_inside_is_not_served_the_cached_lines():
    """The cache key holds only the inputs' ends; the stored inputs are compared bit for bit."""
    from backtest.engine.runner import load_run_frame

    cache = LinesCache(maxsize=4)
    config = RunConfig(strategy="ClusterFade", **SHORT)
    frame = load_run_frame(config)
    first = run_arrays(config, data=frame, lines_cache=cache)
    again = run_arrays(config, data=frame.copy(), lines_cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    changed = frame.copy()
    middle = changed.index[len(changed) // 2]
    changed.loc[middle, ["high", "close"]] = changed.loc[middle, "high"] * 1.03
    edited = run_arrays(config, data=changed, lines_cache=cache)
    assert (cache.hits, cache.misses) == (1, 2)
    pd.testing.assert_frame_equal(first.clusters, again.clusters)
    assert not first.clusters.equals(edited.clusters)
    fresh = run_arrays(config, data=changed, lines_cache=LinesCache(maxsize=0))
    pd.testing.assert_frame_equal(fresh.clusters, edited.clusters)


def test_cached_lines_cannot_be_written_by_a_strategy():
    class Vandal(backtest.Strategy):
        @classmethod
        def decide(cls, bars, params):
            bars.lines["liq_long"][:] = 0.0
            return np.zeros(len(bars))

    with pytest.raises(PluginError, match=r"strategy Vandal .*failed in decide: ValueError"):
        run_arrays(RunConfig(strategy="Vandal", **SHORT), strategy_class=Vandal)


# -- refusals ---------------------------------------------------------------------------------
def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_a_portfolio_runs_on_the_event_engine_only():
    config = RunConfig(strategy="SmaCross", symbol="BTC/USDT:USDT,ETH/USDT:USDT")
    with pytest.raises(ConfigError) as caught:
        run_arrays(config)
    assert "portfolios run on the event engine" in _one_line(caught.value)
    frame = pd.DataFrame({"close": [1.0]})
    with pytest.raises(ConfigError, match="portfolios run on the event engine"):
        run_arrays(RunConfig(strategy="SmaCross"), data={"BTC/USDT:USDT": frame})


def test_a_strategy_without_decide_and_other_bad_inputs_are_refused():
    with pytest.raises(ConfigError, match=r"ClusterHedge has no array form .*--engine event"):
        run_arrays(RunConfig(strategy="ClusterHedge"))
    with pytest.raises(ConfigError, match="needs a RunConfig"):
        run_arrays({"strategy": "SmaCross"})
    with pytest.raises(ConfigError, match="did you mean fast"):
        run_arrays(RunConfig(strategy="SmaCross", params={"fats": 3}))
    with pytest.raises(ConfigError, match="must be greater than 0"):
        run_arrays(RunConfig(strategy="SmaCross", params={"fast": 0}))
    with pytest.raises(ConfigError, match="leverage"):
        run_arrays(RunConfig(strategy="SmaCross", leverage=500.0))
    from backtest.engine.runner import load_run_frame
    from backtest.errors import DataError

    frame = load_run_frame(RunConfig(strategy="SmaCross"))
    early = frame.loc[frame.index < pd.Timestamp("2025-10-03", tz="UTC")]
    with pytest.raises(DataError, match="no bar at or after since"):
        run_arrays(RunConfig(strategy="SmaCross", since="2025-10-08"), data=early)


def _plugin(output):
    class Bad(backtest.Strategy):
        uses_clusters = False

        @classmethod
        def decide(cls, bars, params):
            return output(len(bars))

    return Bad


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (lambda n: np.zeros(n - 1), r"returned \d+ targets for \d+ bars"),
        (lambda n: np.full(n, np.inf), "infinite target at bar 0"),
        (lambda n: np.array(["1.0"] * n), "dtype <U3"),
        (lambda n: [1.0] * n, "got list"),
        (lambda n: np.zeros((n, 2)), "shape"),
        (lambda n: np.array([True] * n), "dtype bool"),
        (lambda n: Decisions.from_target(np.zeros(n), np.full(n, 3), ("strategy",)), "reason"),
        (lambda n: Decisions(np.zeros(n), None, ("strategy", "liquidation")), "liquidation"),
        (lambda n: 1 / 0, "failed in decide: ZeroDivisionError"),
    ],
)
def test_bad_decide_output_ends_in_one_line_naming_the_strategy(output, expected):
    with pytest.raises(PluginError) as caught:
        run_arrays(RunConfig(strategy="Bad", **SHORT), strategy_class=_plugin(output))
    text = _one_line(caught.value)
    assert text.startswith("strategy Bad")
    assert re.search(expected, text), text


def test_bad_decide_output_on_the_event_engine_names_the_strategy_too():
    with pytest.raises(PluginError, match="strategy Bad"):
        run(RunConfig(strategy="Bad", **SHORT), strategy_class=_plugin(lambda n: np.zeros(3)))


def test_map_overrides_that_need_more_than_params_are_refused_for_the_array_form():
    class Needy(backtest.Strategy):
        def map_overrides(self):
            return {"band": self.data.close[0] * 0.0 + 0.03}

        @classmethod
        def decide(cls, bars, params):
            return np.zeros(len(bars))

    with pytest.raises(PluginError, match=r"Needy: map_overrides failed .*only self\.p"):
        run_arrays(RunConfig(strategy="Needy", **SHORT), strategy_class=Needy)


# -- the command line -------------------------------------------------------------------------
def test_run_engine_array_says_so_and_writes_the_run(tmp_path, capsys):
    folder = tmp_path / "run"
    code = main(
        [
            "run",
            "--strategy",
            "SmaCross",
            "--since",
            "2025-10-08",
            "--engine",
            "array",
            "--report",
            str(folder),
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out)
    assert summary["engine"] == "array"
    saved = backtest.results.Results.load(folder)
    assert saved.meta["engine"] == "array" and not saved.heatmap.empty
    code = main(["run", "--strategy", "SmaCross", "--since", "2025-10-08", "--engine", "array",
                 "--report", str(tmp_path / "text")])  # fmt: skip
    assert "engine: array" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--strategy", "ClusterHedge", "--engine", "array"], "no array form"),
        (
            [
                "--symbol",
                "BTC/USDT:USDT,ETH/USDT:USDT",
                "--strategy",
                "SmaCross",
                "--engine",
                "array",
            ],
            "portfolios run on the event engine",
        ),
    ],
)
def test_run_engine_array_refusals_are_one_line(tmp_path, capsys, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    code = main(["run", *args])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert not (tmp_path / "reports").exists()


def test_strategies_lists_each_plugins_form(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "mine.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            import backtest

            class OnlyArrays(backtest.Strategy):
                '''Flat forever, over whole arrays.'''

                uses_clusters = False

                @classmethod
                def decide(cls, bars, params):
                    return np.zeros(len(bars))
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    assert main(["strategies", "--json"]) == 0
    listing = {item["name"]: item for item in json.loads(capsys.readouterr().out)}
    assert listing["OnlyArrays"]["form"] == "array"
    assert listing["SmaCross"]["form"] == "both"
    assert listing["ClusterHedge"]["form"] == "event"
    assert main(["strategies"]) == 0
    assert "form: array" in capsys.readouterr().out
    assert has_array_form(resolve_strategy("OnlyArrays", tmp_path))


def test_bar_date_numbers_equal_backtraders_date_numbers_bit_for_bit():
    from backtest.arrays.results import bar_date_numbers
    from backtest.engine.feeds import date_numbers

    rng = np.random.default_rng(11)
    minutes = np.sort(rng.choice(3_000_000, size=5_000, replace=False))
    on_minutes = pd.DatetimeIndex(
        pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(minutes, unit="min")
    )
    assert np.array_equal(bar_date_numbers(on_minutes), date_numbers(on_minutes))
    odd = on_minutes + pd.to_timedelta(rng.integers(0, 60_000, 5_000), unit="ms")
    assert np.array_equal(bar_date_numbers(odd), date_numbers(odd))
    naive = on_minutes.tz_localize(None)
    assert np.array_equal(bar_date_numbers(naive), date_numbers(on_minutes))


def test_an_array_run_that_saw_a_liquidation_warns_unless_decide_ignores_fills():
    from backtest.report.realism import run_warnings

    config = RunConfig(
        strategy="CascadeBreakout",
        params={"min_risk": 1.0, "proximity": 0.02, "exposure": 60.0},
        leverage=75.0,
        cash=1_000.0,
    )
    arrays = run_arrays(config)
    event = run(config)
    assert len(arrays.liquidations) > 0
    warning = [text for text in run_warnings(arrays) if text.startswith("array engine")]
    assert len(warning) == 1 and f"{len(arrays.liquidations)} liquidation" in warning[0]
    assert not any(text.startswith("array engine") for text in run_warnings(event))
    # the warning is not idle: here the forms really part ways after the liquidations
    assert not event.orders.equals(arrays.orders)
    # SmaCross decides on crossings whatever its position: equal forms, no warning
    liquidated = run_arrays(
        RunConfig(strategy="SmaCross", params={"exposure": 60.0}, leverage=75.0, cash=1_000.0)
    )
    assert len(liquidated.liquidations) > 0
    assert not any(text.startswith("array engine") for text in run_warnings(liquidated))
    # nothing refused or liquidated: nothing to say
    assert not any(
        text.startswith("array engine") for text in run_warnings(run_arrays(RunConfig()))
    )


def test_an_array_only_plugin_is_refused_for_a_portfolio_rather_than_trading_one_symbol():
    class LongOnly(backtest.Strategy):
        uses_clusters = False

        @classmethod
        def decide(cls, bars, params):
            target = np.full(len(bars), np.nan)
            target[0] = 1.0
            return target

    config = RunConfig(strategy="LongOnly", symbol=["BTC/USDT:USDT", "ETH/USDT:USDT"], **SHORT)
    with pytest.raises(ConfigError, match=r"only an array form .* a portfolio needs next"):
        run(config, strategy_class=LongOnly)
    # one symbol is fine on either engine
    single = RunConfig(strategy="LongOnly", **SHORT)
    assert len(run(single, strategy_class=LongOnly).orders) == 1
