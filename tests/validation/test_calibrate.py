"""calibrate: reproducible with a seed, improves the training objective, closed-form scale,
runs on a local Dask cluster; the search space table."""

from __future__ import annotations

import math

import pytest

from backtest.errors import ConfigError
from backtest.liquidation.heatmap import MapParams
from backtest.validation import calibrate
from backtest.validation.space import (
    SEARCH_SPACE,
    Dimension,
    check_space,
    params_from_values,
    parse_dimension,
)

NAME = "BTC/USDT:USDT"
OPTIONS = dict(
    train_since="2025-09-29", train_until="2025-10-08", test_until="2025-10-20", warmup="5d",
    progress=False,
)  # fmt: skip


@pytest.fixture(scope="module")
def fitted(candles, truth):
    # a poor start (a 2-hour half-life) leaves room to improve on
    return calibrate(
        candles, truth, base=MapParams(half_life_hours=2.0), trials=12, seed=5, **OPTIONS
    )


def test_improves_the_training_objective(fitted) -> None:
    assert fitted.objective_best > fitted.objective_start
    assert len(fitted.trials) == 12
    assert fitted.params != fitted.start
    assert fitted.settings["best_values"]


def test_reproducible_with_a_seed(candles, truth, fitted) -> None:
    again = calibrate(
        candles, truth, base=MapParams(half_life_hours=2.0), trials=12, seed=5, **OPTIONS
    )
    assert again.params == fitted.params
    other = calibrate(
        candles, truth, base=MapParams(half_life_hours=2.0), trials=12, seed=6, **OPTIONS
    )
    assert other.params != fitted.params


def test_participation_fitted_in_closed_form(fitted) -> None:
    # scale 1 on the training bars, by construction
    assert fitted.train[NAME].scorecard.value("scale", "total") == pytest.approx(1.0, rel=1e-9)
    assert fitted.test[NAME].fitted_overlap == "none"
    assert fitted.train[NAME].fitted_overlap == "all"


def test_the_calibration_record(fitted) -> None:
    record = fitted.calibration_record()
    assert record["symbols"] == [NAME]
    assert record["train_until"].startswith("2025-10-08")
    assert record["test_until"].startswith("2025-10-20")
    assert record["seed"] == 5 and record["trials"] == 12
    assert set(record["versions"]) >= {"python", "numpy", "optuna"}
    assert math.isfinite(record["test_scores"][NAME]["map"]["spearman_long"])


def test_on_a_local_dask_cluster(candles, truth) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                     dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        first = calibrate(candles, truth, trials=4, seed=2, client=client, **OPTIONS)
        second = calibrate(candles, truth, trials=4, seed=2, client=client, **OPTIONS)
    assert first.settings["batch"] == 2
    assert first.params == second.params
    assert len(first.trials) == 4


def test_several_symbols_share_one_profile(candles, truth) -> None:
    # the same data twice under two names: the objective is their mean, so it equals one's
    single = calibrate(candles, truth, trials=3, seed=1, **OPTIONS)
    double = calibrate(
        {"a": candles, "b": candles}, {"a": truth, "b": truth}, trials=3, seed=1, **OPTIONS
    )
    assert double.objective_best == pytest.approx(single.objective_best)
    assert set(double.train) == {"a", "b"}


def test_bad_arguments_are_config_errors(candles, truth) -> None:
    with pytest.raises(ConfigError, match="trials"):
        calibrate(candles, truth, trials=0, **OPTIONS)
    with pytest.raises(ConfigError, match="not after"):
        calibrate(candles, truth, **{**OPTIONS, "test_until": "2025-10-01"})
    with pytest.raises(ConfigError, match="objective figure"):
        calibrate(candles, truth, objective={"sharpe.long": 1.0}, **OPTIONS)


def test_search_space_table() -> None:
    base = MapParams(leverages=(2.0, 5.0, 10.0, 25.0, 50.0), leverage_weights=(0.2,) * 5)
    params = params_from_values(
        {"leverage_center": 10.0, "leverage_width": 0.5, "long_share_spread": 0.1,
         "long_share_base": 0.5, "half_life_hours": 12.0},
        base,
    )  # fmt: skip
    assert params.half_life_hours == 12.0
    assert math.fsum(params.leverage_weights) == pytest.approx(1.0)
    # w ∝ exp(-(ln L - ln 10)² / (2·0.5²)): 10x weighs most, 5x and 25x by that formula
    raw = [math.exp(-((math.log(lev) - math.log(10.0)) ** 2) / 0.5) for lev in base.leverages]
    expected = [value / math.fsum(raw) for value in raw]
    assert params.leverage_weights == pytest.approx(expected)
    assert params.long_share_min == pytest.approx(0.4)
    assert params.long_share_max == pytest.approx(0.6)
    assert parse_dimension("half_life_hours=6:120:log") == Dimension(
        "half_life_hours", 6.0, 120.0, log=True
    )
    with pytest.raises(ConfigError, match="neither a MapParams field"):
        check_space((*SEARCH_SPACE, Dimension("no_such_thing", 0.0, 1.0)))
    with pytest.raises(ConfigError, match="closed form"):
        check_space((Dimension("participation", 0.01, 1.0),))
    with pytest.raises(ConfigError, match="LOW:HIGH"):
        parse_dimension("half_life_hours=6")
