"""Fit the liquidation map's parameters to recorded liquidations: :func:`calibrate`.

Method
------
1. **Training data only.**  The truth is cut to the bars that end by ``train_until`` before
   anything else happens, and the map runs over candles up to ``train_until`` only (from a
   warm-up before ``train_since``).  The test window's truth is read once, after the fit, to
   score the result.  The warm-up is the shared rule for the *starting* parameters (every
   trial scores the same bars); a trial with a longer half-life than the start keeps a little
   of its empty start on the first scored bars (``2**-(warm-up / half-life)``: 6 % for a 240 h
   half-life after the default 40 days), so pass a longer ``warmup`` when searching long
   half-lives.
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
from backtest.validation.scoring import (
    FittedWindow,
    ValidationResult,
    resolve_warmup_span,
    validate,
)
from backtest.validation.space import (
    SEARCH_SPACE,
    Dimension,
    check_space,
    params_from_values,
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


@dataclass(frozen=True, eq=False)
class TrainingProblem:
    """What a trial is scored on: one evaluator and truth per data set (symbol).

    Picklable; travels to each Dask worker once.
    """

    evaluators: tuple[MapEvaluator, ...]
    truths: tuple[tuple[np.ndarray, np.ndarray], ...]

    def evaluate(self, params: MapParams, objective: Mapping[str, float]) -> float:
        """The objective averaged over the data sets."""
        values = []
        for evaluator, (truth_long, truth_short) in zip(self.evaluators, self.truths, strict=True):
            long, short = evaluator.evaluate(params)
            values.append(objective_value(long, short, truth_long, truth_short, objective))
        return float(np.mean(values))


def evaluate_trial(
    problem: TrainingProblem,
    values: Mapping[str, Any],
    base: MapParams,
    objective: Mapping[str, float],
) -> float | None:
    """Objective of one trial's values (None when they make invalid parameters)."""
    try:
        params = params_from_values(values, base)
    except ConfigError:
        return None
    return problem.evaluate(params, objective)


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """What :func:`calibrate` returns.

    Attributes
    ----------
    params : MapParams
        The fitted parameters (participation set in closed form).
    start : MapParams
        The parameters the search started from.
    train, test : dict of str to ValidationResult
        Scorecards per data set (symbol) on the training window (in-sample) and on the test
        window (empty when no bar follows the training window).
    objective : dict
        The objective's weights.
    objective_start, objective_best : float
        Objective on the training bars of the start and fitted parameters.
    trials : pandas.DataFrame
        One row per trial: its values and objective.
    settings : dict
        Windows, seed, trials, batch, search space (JSON-able).
    """

    params: MapParams
    start: MapParams
    train: dict[str, ValidationResult]
    test: dict[str, ValidationResult]
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
            "train_scores": {name: _flat_scores(result) for name, result in self.train.items()},
            "versions": library_versions(),
        }
        if self.test:
            record["test_scores"] = {
                name: _flat_scores(result) for name, result in self.test.items()
            }
        return record

    def to_dict(self) -> dict[str, Any]:
        """Parameters, settings and every scorecard (JSON-able)."""
        return {
            "params": self.params.to_dict(),
            "calibration": self.calibration_record(),
            "train": {name: result.to_dict() for name, result in self.train.items()},
            "test": {name: result.to_dict() for name, result in self.test.items()},
        }

    def format(self) -> str:
        """Objective before/after, then each data set's train and test scorecards."""
        lines = [
            f"objective on the training bars: start {self.objective_start:.4f} -> fitted "
            f"{self.objective_best:.4f} ({len(self.trials)} trials)"
        ]
        for role, results in (("TRAIN (in-sample)", self.train), ("TEST", self.test)):
            for name, result in results.items():
                lines.append(f"\n== {role}: {name} ==")
                lines.append(result.format())
        return "\n".join(lines)


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


def _data_sets(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    truth: pd.DataFrame | Mapping[str, pd.DataFrame],
) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    if isinstance(candles, pd.DataFrame) != isinstance(truth, pd.DataFrame):
        raise ConfigError(
            "give candles and truth both as frames or both as mappings keyed by symbol"
        )
    if isinstance(candles, pd.DataFrame):
        assert isinstance(truth, pd.DataFrame)
        name = str(candles.attrs.get("symbol") or "data")
        return [(name, candles, check_truth(truth))]
    assert not isinstance(truth, pd.DataFrame)
    if set(candles) != set(truth) or not candles:
        raise ConfigError(
            "candles and truth must be keyed by the same symbols (at least one); got "
            f"{sorted(candles)} and {sorted(truth)}"
        )
    return [(str(name), candles[name], check_truth(truth[name])) for name in candles]


def calibrate(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    truth: pd.DataFrame | Mapping[str, pd.DataFrame],
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
    meta: Mapping[str, Any] | None = None,
) -> CalibrationResult:
    """Fit map parameters on a training window; score them on the following test window.

    Parameters
    ----------
    candles : pandas.DataFrame or mapping of str to DataFrame
        Candles (as :func:`backtest.market.store.load_market` returns them) covering the
        warm-up, the training and the test window; a mapping (symbol -> frame) fits one set
        of parameters to several symbols at once (the objective is their mean).
    truth : pandas.DataFrame or mapping of str to DataFrame
        Recorded liquidations, columns ``long``/``short`` by bar open time (UTC); keyed like
        ``candles``.
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
    meta : mapping, optional
        Recorded in the settings (truth source...).

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
    data_sets = _data_sets(candles, truth)
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
    evaluators: list[MapEvaluator] = []
    truths: list[tuple[np.ndarray, np.ndarray]] = []
    train_truths: dict[str, pd.DataFrame] = {}
    scored_starts: dict[str, pd.Timestamp] = {}
    span = resolve_warmup_span(warmup, base, data_sets[0][1].attrs.get("timeframe"))
    for name, frame, recorded in data_sets:
        truth_step = bar_step(recorded.index, f"truth series of {name}")
        train_truth = recorded[recorded.index + truth_step <= train_end]
        if len(train_truth) < 2:
            raise ConfigError(
                f"the truth of {name} has fewer than 2 bars before train_until {train_end}; "
                "move it later"
            )
        cut, bins, window = scoring_window(
            frame, train_truth, since=train_start, until=train_end, warmup=span
        )
        evaluators.append(MapEvaluator(cut, bins))
        scored = train_truth.reindex(bins.index)
        truths.append((scored["long"].to_numpy(), scored["short"].to_numpy()))
        train_truths[name] = train_truth
        scored_starts[name] = window.scored_start
    problem = TrainingProblem(tuple(evaluators), tuple(truths))

    start_value = evaluate_trial(problem, {}, base, weights)
    assert start_value is not None  # the base parameters are valid MapParams
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(seed))
    )
    records = _search(
        study, space, problem, base, weights, int(trials), workers=int(workers),
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
    fitted = _fit_participation(fitted, problem)

    info = dict(meta or {})
    train_results: dict[str, ValidationResult] = {}
    test_results: dict[str, ValidationResult] = {}
    for name, frame, _recorded in data_sets:
        train_window = FittedWindow(scored_starts[name], train_end)
        train_results[name] = validate(
            frame, train_truths[name], fitted, since=scored_starts[name], until=train_end,
            warmup=span, fitted=train_window, meta=info,
        )  # fmt: skip
    # 5. the test window's truth is read only now, after the fit
    for name, frame, recorded in data_sets:
        truth_step = bar_step(recorded.index, f"truth series of {name}")
        remaining = recorded[recorded.index >= train_end].dropna()
        if test_end is not None:
            remaining = remaining[remaining.index + truth_step <= test_end]
        if len(remaining) >= 2 and remaining.index[0] + truth_step <= frame.index[-1]:
            test_results[name] = validate(
                frame, remaining, fitted, since=train_end, until=test_end, warmup=span,
                fitted=FittedWindow(scored_starts[name], train_end), meta=info,
            )  # fmt: skip
    first_test = next(iter(test_results.values()), None)
    settings: dict[str, Any] = {
        **{key: value for key, value in info.items() if value is not None},
        "symbols": [name for name, _, _ in data_sets],
        "train_since": min(
            result.window.first_bar for result in train_results.values()
        ).isoformat(),
        "train_until": train_end.isoformat(),
        "test_since": None if first_test is None else train_end.isoformat(),
        "test_until": None if first_test is None else first_test.window.until.isoformat(),
        "warmup_hours": span.total_seconds() / 3600.0,
        "trials": int(trials),
        "seed": int(seed),
        "batch": _batch_size(workers, scheduler, client),
        "sampler": "optuna TPESampler",
        "search_space": [dimension.to_dict() for dimension in space],
        "best_values": {key: _plain(value) for key, value in best_values.items()},
        "participation_fit": (
            "closed form: geometric mean over the data sets of training truth total / "
            "estimate total"
        ),
    }
    settings = {key: value for key, value in settings.items() if value is not None}
    return CalibrationResult(
        params=fitted, start=base, train=train_results, test=test_results, objective=weights,
        objective_start=float(start_value), objective_best=best_objective,
        trials=pd.DataFrame(records), settings=settings,
    )  # fmt: skip


def _fit_participation(params: MapParams, problem: TrainingProblem) -> MapParams:
    """Scale participation so the training estimate matches the recorded total.

    The map is linear in participation, so one multiplication sets the scale; with several
    data sets the factor is the geometric mean of their ratios.
    """
    logs = []
    for evaluator, (truth_long, truth_short) in zip(
        problem.evaluators, problem.truths, strict=True
    ):
        long, short = evaluator.evaluate(params)
        estimated = float(long.sum() + short.sum())
        recorded = float(truth_long.sum() + truth_short.sum())
        if estimated > 0 and recorded > 0:
            logs.append(math.log(recorded / estimated))
    if not logs:
        return params
    return replace(params, participation=params.participation * math.exp(float(np.mean(logs))))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _batch_size(workers: int, scheduler: str | None, client: Any) -> int:
    if client is not None:
        return max(1, len(client.nthreads()))
    return int(workers) if scheduler is None else 0


def _search(
    study: Any,
    space: Sequence[Dimension],
    problem: TrainingProblem,
    base: MapParams,
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
        if any(item.value is not None for item in study.trials):
            bar.set_postfix(best=f"{study.best_value:.4f}")
        bar.update(1)

    try:
        if client is None and scheduler is None and workers == 1:
            for _ in range(trials):
                trial = study.ask()
                values = {dimension.name: dimension.suggest(trial) for dimension in space}
                told(trial, values, evaluate_trial(problem, values, base, objective))
            return records
        if client is not None:
            _search_on(client, study, space, problem, base, objective, trials, told)
        else:
            from backtest.sweep.execute import open_client

            with open_client(None if scheduler else workers, scheduler) as opened:
                _search_on(opened, study, space, problem, base, objective, trials, told)
        return records
    finally:
        bar.close()


def _search_on(
    client: Any,
    study: Any,
    space: Sequence[Dimension],
    problem: TrainingProblem,
    base: MapParams,
    objective: Mapping[str, float],
    trials: int,
    told: Any,
) -> None:
    """Batches of one trial per Dask worker; the training problem travels to each worker once."""
    batch = max(1, len(client.nthreads()))
    shared = client.scatter(problem, broadcast=True)
    done = 0
    while done < trials:
        size = min(batch, trials - done)
        asked = [study.ask() for _ in range(size)]
        values = [{dimension.name: dimension.suggest(trial) for dimension in space}
                  for trial in asked]  # fmt: skip
        futures = [
            client.submit(evaluate_trial, shared, item, base, dict(objective), pure=False)
            for item in values
        ]
        results = client.gather(futures)
        for trial, item, value in zip(asked, values, results, strict=True):
            told(trial, item, value)
        done += size


__all__ = [
    "DEFAULT_OBJECTIVE",
    "CalibrationResult",
    "TrainingProblem",
    "calibrate",
    "check_objective",
    "evaluate_trial",
    "objective_value",
]
