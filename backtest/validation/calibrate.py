"""Fit the liquidation map's parameters to recorded liquidations: :func:`calibrate`.

Method
------
1. **Training data only.**  The truth is cut to the bars that end by ``train_until`` before
   anything else happens, and the map runs over candles up to ``train_until`` only (from a
   warm-up before ``train_since``).  The test window's truth is read once, after the fit, to
   score the result.
2. **Objective** (maximised): the weighted mean of scorecard figures on the training bars,
   by default the mean of the Spearman rank correlations of long, short and total and the
   long-share correlation on the busiest quarter (:data:`DEFAULT_OBJECTIVE`).  Every figure is
   scale-free, so the search is about *when* and *which side*, not how much.  An undefined
   figure (a constant estimate) counts as -1.
3. **Search**: Optuna's TPE sampler, seeded, over the declared table
   :data:`backtest.validation.space.SEARCH_SPACE` (half-life, a two-number leverage mix, the
   long-share model, entry spread, round-level weight).  The starting parameters are scored
   too, and kept when no trial beats them.
4. **Scale in closed form**: the map is linear in ``participation``, so afterwards it is set to
   ``participation × truth total / estimated total`` over the training bars (scale 1 on
   training; the test window shows how well the scale carries over).
5. **Test**: the fitted map is scored on ``train_until .. test_until`` by
   :func:`backtest.validation.validate`, which states that the parameters were not fitted
   there.

Parallel trials.  With ``workers > 1`` (or a Dask ``scheduler`` / ``client``) trials run in
batches of one per worker on the Dask backend the sweeps use
(:func:`backtest.sweep.execute.open_client`): the evaluator (candles and bins) is sent to each
worker once, each batch is asked from the sampler, evaluated in parallel and told back in order.
Results are reproducible for the same seed, trials and batch size; a batch of several trials
is sampled from the same history, so the sequential run (one worker) and a parallel one find
different (comparably good) optima.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from backtest.errors import ConfigError
from backtest.liquidation.heatmap import MapParams
from backtest.validation import metrics
from backtest.validation.bins import as_time, bar_step, check_truth
from backtest.validation.evaluator import MapEvaluator, scoring_window
from backtest.validation.space import (
    SEARCH_SPACE,
    Dimension,
    check_space,
    params_from_values,
)
from backtest.validation.validate import (
    FittedWindow,
    ValidationResult,
    resolve_warmup_span,
    validate,
)

#: Figure keys ``figure.side`` and their weights (see the module docstring).
DEFAULT_OBJECTIVE: dict[str, float] = {
    "spearman.long": 1.0,
    "spearman.short": 1.0,
    "spearman.total": 1.0,
    "long_share_correlation.share": 1.0,
}
OBJECTIVE_FIGURES: tuple[str, ...] = (
    "spearman.long", "spearman.short", "spearman.total", "long_share_correlation.share",
    "top_decile_hit_rate.long", "top_decile_hit_rate.short", "top_decile_hit_rate.total",
)  # fmt: skip
#: The value a figure counts for when it is undefined.
UNDEFINED = -1.0


def check_objective(objective: Mapping[str, float] | None) -> dict[str, float]:
    """Validate an objective (``{"figure.side": weight}``); the default when None."""
    if objective is None:
        return dict(DEFAULT_OBJECTIVE)
    checked: dict[str, float] = {}
    for key, weight in objective.items():
        if key not in OBJECTIVE_FIGURES:
            raise ConfigError(
                f"objective figure {key!r} is not known; use {', '.join(OBJECTIVE_FIGURES)}"
            )
        number = float(weight)
        if not (math.isfinite(number) and number >= 0):
            raise ConfigError(f"objective weight of {key} must be a number >= 0, got {weight!r}")
        checked[key] = number
    if not any(checked.values()):
        raise ConfigError("the objective has no positive weight")
    return checked


def objective_value(
    long: np.ndarray,
    short: np.ndarray,
    truth_long: np.ndarray,
    truth_short: np.ndarray,
    objective: Mapping[str, float],
) -> float:
    """The weighted mean of the objective's figures (undefined figures count as -1)."""
    total = long + short
    truth_total = truth_long + truth_short
    sides = {"long": (long, truth_long), "short": (short, truth_short),
             "total": (total, truth_total)}  # fmt: skip
    value = 0.0
    weight_sum = 0.0
    for key, weight in objective.items():
        if weight == 0:
            continue
        figure, _, side = key.partition(".")
        if figure == "spearman":
            number = metrics.spearman(*sides[side])
        elif figure == "long_share_correlation":
            number = metrics.long_share_correlation(long, short, truth_long, truth_short)
        else:
            number = metrics.top_decile_hit_rate(*sides[side])
        value += weight * (number if math.isfinite(number) else UNDEFINED)
        weight_sum += weight
    return value / weight_sum


def evaluate_trial(
    evaluator: MapEvaluator,
    values: Mapping[str, Any],
    base: MapParams,
    truth: tuple[np.ndarray, np.ndarray],
    objective: Mapping[str, float],
) -> float | None:
    """Objective of one trial's values (None when they make invalid parameters)."""
    try:
        params = params_from_values(values, base)
    except ConfigError:
        return None
    long, short = evaluator.evaluate(params)
    return objective_value(long, short, truth[0], truth[1], objective)


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """What :func:`calibrate` returns.

    Attributes
    ----------
    params : MapParams
        The fitted parameters (participation set in closed form).
    start : MapParams
        The parameters the search started from.
    train, test : ValidationResult
        Scorecards on the training window (in-sample) and the test window (None when no
        bar follows the training window).
    objective : dict
        The objective's weights.
    objective_start, objective_best : float
        Objective on the training bars of the start and fitted parameters.
    trials : pandas.DataFrame
        One row per trial: its values and objective.
    settings : dict
        Windows, seed, trials, workers, search space (JSON-able).
    """

    params: MapParams
    start: MapParams
    train: ValidationResult
    test: ValidationResult | None
    objective: dict[str, float]
    objective_start: float
    objective_best: float
    trials: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def calibration_record(self) -> dict[str, Any]:
        """The ``[calibration]`` table of a map profile (JSON/TOML-able values)."""
        from backtest.liquidation.profiles import library_versions

        record: dict[str, Any] = {
            "written_by": "backtest calibrate",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **self.settings,
            "objective": {key: float(value) for key, value in self.objective.items()},
            "objective_start": float(self.objective_start),
            "objective_train": float(self.objective_best),
            "train_scores": _flat_scores(self.train),
            "versions": library_versions(),
        }
        if self.test is not None:
            record["test_scores"] = _flat_scores(self.test)
        return record

    def to_dict(self) -> dict[str, Any]:
        """Parameters, settings and both scorecards (JSON-able)."""
        return {
            "params": self.params.to_dict(),
            "calibration": self.calibration_record(),
            "train": self.train.to_dict(),
            "test": None if self.test is None else self.test.to_dict(),
        }


def _flat_scores(result: ValidationResult) -> dict[str, Any]:
    """``{"map": {"spearman_long": ..}, "naive": {..}, ...}`` with finite numbers only."""
    flat: dict[str, Any] = {
        "first_bar": result.window.first_bar.isoformat(),
        "last_bar": result.window.last_bar.isoformat(),
        "bars": result.window.bars,
    }
    for estimator, figures in result.scorecard.to_dict().items():
        row: dict[str, float] = {}
        for figure, sides in figures.items():
            for side, value in sides.items():
                if value is not None:
                    row[figure if side == "share" else f"{figure}_{side}"] = round(value, 6)
        flat[estimator] = row
    return flat


def calibrate(
    candles: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    train_until: Any,
    train_since: Any = None,
    test_until: Any = None,
    base: MapParams | Mapping[str, Any] | None = None,
    space: Sequence[Dimension] = SEARCH_SPACE,
    objective: Mapping[str, float] | None = None,
    trials: int = 200,
    seed: int = 0,
    warmup: Any = None,
    workers: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    progress: bool = True,
    tiers: Any = None,
    meta: Mapping[str, Any] | None = None,
) -> CalibrationResult:
    """Fit map parameters on a training window; score them on the following test window.

    Parameters
    ----------
    candles : pandas.DataFrame
        Candles (as :func:`backtest.market.store.load_market` returns them) covering the
        warm-up, the training and the test window.
    truth : pandas.DataFrame
        Recorded liquidations, columns ``long``/``short`` by bar open time (UTC).
    train_until : time
        End of the training window (exclusive); the test window starts here.
    train_since : time, optional
        Start of the training window (default: as early as the candles allow after a warm-up).
    test_until : time, optional
        End of the test window (default: the end of the data).
    base : MapParams or mapping, optional
        Starting parameters; fields outside the search space keep these values.
    space : sequence of Dimension
        What is searched (default :data:`SEARCH_SPACE`).
    objective : mapping, optional
        ``{"figure.side": weight}`` (default :data:`DEFAULT_OBJECTIVE`).
    trials : int
        Optuna trials (default 200).
    seed : int
        Seed of the TPE sampler.
    warmup : str or Timedelta, optional
        Warm-up before each window (default: the shared rule for the base parameters).
    workers : int
        Local Dask worker processes (1: trials run in this process).
    scheduler : str, optional
        Address of a Dask scheduler to run the trials on.
    client : distributed.Client, optional
        An open Dask client to use (tests, notebooks).
    progress : bool
        Show a progress bar.
    tiers : LeverageTiers, optional
        Binance tiers (bundled snapshot by default).
    meta : mapping, optional
        Recorded in the settings (symbol, truth source...).

    Returns
    -------
    CalibrationResult

    Raises
    ------
    ConfigError
        For bad windows, trials, space or objective.
    DataError
        When the training window holds nothing to score.
    """
    import optuna

    if base is None:
        base = MapParams()
    elif not isinstance(base, MapParams):
        base = MapParams.from_dict(base)
    space = check_space(space)
    weights = check_objective(objective)
    if isinstance(trials, bool) or not isinstance(trials, int | np.integer) or trials < 1:
        raise ConfigError(f"trials must be a whole number >= 1, got {trials!r}")
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}")
    truth = check_truth(truth)
    train_end = as_time(train_until, "train_until")
    if train_end is None:
        raise ConfigError("calibrate needs train_until (the end of the training window)")
    train_start = as_time(train_since, "train_since")
    test_end = as_time(test_until, "test_until")
    if train_start is not None and train_start >= train_end:
        raise ConfigError(f"train_since {train_start} is not before train_until {train_end}")
    if test_end is not None and test_end <= train_end:
        raise ConfigError(f"test_until {test_end} is not after train_until {train_end}")

    # 1. training data only, from here to the fit's end
    truth_step = bar_step(truth.index, "truth series")
    train_truth = truth[truth.index + truth_step <= train_end]
    if len(train_truth) < 2:
        raise ConfigError(
            f"the truth has fewer than 2 bars before train_until {train_end}; move it later"
        )
    timeframe = candles.attrs.get("timeframe")
    span = resolve_warmup_span(warmup, base, timeframe)
    cut, bins, window = scoring_window(
        candles, train_truth, since=train_start, until=train_end, warmup=span
    )
    evaluator = MapEvaluator(cut, bins, tiers=tiers)
    scored = train_truth.reindex(bins.index)
    truth_arrays = (scored["long"].to_numpy(), scored["short"].to_numpy())

    start_value = evaluate_trial(evaluator, {}, base, truth_arrays, weights)
    assert start_value is not None  # the base parameters are valid MapParams
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(seed))
    )
    records = _search(
        study, space, evaluator, base, truth_arrays, weights, int(trials), workers=int(workers),
        scheduler=scheduler, client=client, progress=progress,
    )  # fmt: skip

    # 3-4. best (or start), then the scale in closed form
    completed = [trial for trial in study.trials if trial.value is not None]
    if completed and study.best_value > start_value:
        best_values = dict(study.best_params)
        fitted = params_from_values(best_values, base)
        best_objective = float(study.best_value)
    else:
        best_values = {}
        fitted = base
        best_objective = float(start_value)
    long, short = evaluator.evaluate(fitted)
    estimated = float(long.sum() + short.sum())
    recorded = float(truth_arrays[0].sum() + truth_arrays[1].sum())
    if estimated > 0 and recorded > 0:
        fitted = replace(fitted, participation=fitted.participation * recorded / estimated)

    train_window = FittedWindow(window.scored_start, train_end)
    info = dict(meta or {})
    train_result = validate(
        candles, train_truth, fitted, since=window.scored_start, until=train_end, warmup=span,
        fitted=train_window, tiers=tiers, meta=info,
    )  # fmt: skip
    # 5. the test window's truth is read only now, after the fit
    test_result = None
    remaining = truth[truth.index >= train_end]
    if test_end is not None:
        remaining = remaining[remaining.index + truth_step <= test_end]
    candle_end = candles.index[-1]
    if len(remaining) >= 2 and remaining.index[0] + truth_step <= candle_end:
        test_result = validate(
            candles, remaining, fitted, since=train_end, until=test_end, warmup=span,
            fitted=train_window, tiers=tiers, meta=info,
        )  # fmt: skip
    settings: dict[str, Any] = {
        **{key: value for key, value in info.items() if value is not None},
        "train_since": train_result.window.first_bar.isoformat(),
        "train_until": train_end.isoformat(),
        "test_since": None if test_result is None else test_result.window.first_bar.isoformat(),
        "test_until": None if test_result is None else test_result.window.until.isoformat(),
        "warmup_hours": span.total_seconds() / 3600.0,
        "trials": int(trials),
        "seed": int(seed),
        "batch": _batch_size(workers, scheduler, client),
        "sampler": "optuna TPESampler",
        "search_space": [dimension.to_dict() for dimension in space],
        "best_values": {key: _plain(value) for key, value in best_values.items()},
        "participation_fit": "closed form: training estimate total = training truth total",
    }
    settings = {key: value for key, value in settings.items() if value is not None}
    return CalibrationResult(
        params=fitted, start=base, train=train_result, test=test_result, objective=weights,
        objective_start=float(start_value), objective_best=best_objective,
        trials=pd.DataFrame(records), settings=settings,
    )  # fmt: skip


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _batch_size(workers: int, scheduler: str | None, client: Any) -> int:
    if client is not None:
        return max(1, len(client.nthreads()))
    return int(workers) if scheduler is None else 0


def _search(
    study: Any,
    space: Sequence[Dimension],
    evaluator: MapEvaluator,
    base: MapParams,
    truth: tuple[np.ndarray, np.ndarray],
    objective: Mapping[str, float],
    trials: int,
    *,
    workers: int,
    scheduler: str | None,
    client: Any,
    progress: bool,
) -> list[dict[str, Any]]:
    """Run the trials (in this process or on Dask) and return one record per trial."""
    from tqdm.auto import tqdm

    records: list[dict[str, Any]] = []
    bar = tqdm(total=trials, desc="calibrate", unit="trial", disable=not progress, leave=True)

    def told(trial: Any, values: dict[str, Any], value: float | None) -> None:
        import optuna

        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
        records.append({"trial": trial.number, **values, "objective": value})
        completed = [item for item in study.trials if item.value is not None]
        if completed:
            bar.set_postfix(best=f"{study.best_value:.4f}")
        bar.update(1)

    try:
        if client is None and scheduler is None and workers == 1:
            for _ in range(trials):
                trial = study.ask()
                values = {dimension.name: dimension.suggest(trial) for dimension in space}
                told(trial, values, evaluate_trial(evaluator, values, base, truth, objective))
            return records
        if client is not None:
            _search_on(client, study, space, evaluator, base, truth, objective, trials, told)
        else:
            from backtest.sweep.execute import open_client

            with open_client(None if scheduler else workers, scheduler) as opened:
                _search_on(opened, study, space, evaluator, base, truth, objective, trials, told)
        return records
    finally:
        bar.close()


def _search_on(
    client: Any,
    study: Any,
    space: Sequence[Dimension],
    evaluator: MapEvaluator,
    base: MapParams,
    truth: tuple[np.ndarray, np.ndarray],
    objective: Mapping[str, float],
    trials: int,
    told: Any,
) -> None:
    """Batches of one trial per Dask worker; the evaluator travels to each worker once."""
    batch = max(1, len(client.nthreads()))
    shared = client.scatter(evaluator, broadcast=True)
    done = 0
    while done < trials:
        size = min(batch, trials - done)
        asked = [study.ask() for _ in range(size)]
        values = [{dimension.name: dimension.suggest(trial) for dimension in space}
                  for trial in asked]  # fmt: skip
        futures = [
            client.submit(evaluate_trial, shared, item, base, truth, dict(objective), pure=False)
            for item in values
        ]
        results = client.gather(futures)
        for trial, item, value in zip(asked, values, results, strict=True):
            told(trial, item, value)
        done += size


__all__ = [
    "DEFAULT_OBJECTIVE",
    "CalibrationResult",
    "calibrate",
    "check_objective",
    "evaluate_trial",
    "objective_value",
]
