"""Random and Bayesian (TPE) search over a sweep's parameters, with Optuna, reproducibly.

``backtest sweep --search random|tpe --trials N`` asks Optuna for parameter sets instead of
expanding a grid.  The axes are the grid's (``-g`` flags or ``[sweep]``, same names and value
conversion, :func:`backtest.sweep.grid.build_axes`), and an axis may also be a range:

``fast=5:50``
    integers 5 to 50 (both ends included) when both ends are integers and the setting is one;
``take_profit=0.005:0.05``
    a float range;
``x=log:1e-4:1e-1``
    a float range sampled on a log scale (integers when both ends are integers);
``band=0.02,0.03,0.05``
    a list stays a list: a categorical choice.

Determinism
    Trials are asked in batches of a fixed size (:data:`DEFAULT_BATCH`, independent of the
    number of workers).  Batch ``b`` is asked from a fresh in-memory study that holds every
    earlier trial with its result, through a sampler seeded with :func:`batch_seed` of
    ``(seed, b)`` (and the walk-forward window); the batch is then run in parallel and its
    results are told in trial order.  The trials therefore depend only on the seed and on the
    results of earlier batches, never on which worker finished first, so 1 worker, 2 workers
    and a Dask cluster give the same trials and table.  Resuming replays the batches: each
    batch's trials are asked again (the same ones, since the history is the same), and the
    runs already in the folder's ``runs.jsonl`` are read instead of run.

Constraints
    ``--min-trades`` and ``--max-drawdown`` (:mod:`backtest.sweep.constraints`) are given to
    Optuna as the trial's constraint values (the ``constraints:NAME`` system attributes that
    ``Trial.set_constraint`` writes, Optuna >= 5.0): the TPE sampler ranks infeasible trials
    below every feasible one when it splits good from bad trials.  The random sampler ignores
    them (it does not learn), but the table still flags those runs and never ranks them first.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backtest.errors import ConfigError
from backtest.sweep.constraints import Constraints
from backtest.sweep.grid import Axis, build_axes

GRID, RANDOM, TPE = "grid", "random", "tpe"
SEARCH_METHODS: tuple[str, ...] = (GRID, RANDOM, TPE)
#: Trials asked (and run in parallel) at a time; part of a search's identity.
DEFAULT_BATCH = 16
#: Largest ``--trials``: a search is recorded run by run like a grid.
MAX_TRIALS = 100_000
#: The system attribute prefix Optuna's samplers read constraint values from.
CONSTRAINT_PREFIX = "constraints:"
#: Settings that hold dates: a list of them can be searched, a numeric range cannot.
_DATE_SETTINGS = frozenset({"period", "since", "until"})

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*(?:(log)\s*:\s*)?({_NUMBER})\s*:\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class SearchAxis:
    """One searched setting: an integer or float range, or a list of choices.

    Attributes
    ----------
    axis : Axis
        Where the value goes (the grid's axis; its ``values`` are the range's two ends or the
        choices, converted like a grid's values).
    kind : str
        ``"int"``, ``"float"`` or ``"choice"``.
    log : bool
        Sample the range on a log scale.
    """

    axis: Axis
    kind: str
    log: bool = False

    @property
    def name(self) -> str:
        """The axis name (the table column)."""
        return self.axis.name

    @property
    def low(self) -> Any:
        """The range's lower end."""
        return self.axis.values[0]

    @property
    def high(self) -> Any:
        """The range's upper end."""
        return self.axis.values[-1]

    def distribution(self) -> Any:
        """The Optuna distribution (choices are sampled by their position in the list)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        if self.kind == "float":
            return FloatDistribution(float(self.low), float(self.high), log=self.log)
        return CategoricalDistribution(list(range(len(self.axis.values))))

    def value(self, sampled: Any) -> Any:
        """The setting's value for what Optuna sampled."""
        if self.kind == "int":
            return int(sampled)
        if self.kind == "float":
            return float(sampled)
        return self.axis.values[int(sampled)]

    def describe(self) -> str:
        """``fast = int 5..50``, ``x = float 0.0001..0.1 (log)``, ``band = [0.02, 0.03]``."""
        if self.kind == "choice":
            return f"{self.name} = {list(self.axis.values)}"
        scale = " (log)" if self.log else ""
        return f"{self.name} = {self.kind} {self.low}..{self.high}{scale}"

    def manifest(self) -> Any:
        """A JSON-friendly description for ``sweep.json``."""
        if self.kind == "choice":
            return list(self.axis.values)
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class SearchSpec:
    """How to search.

    Attributes
    ----------
    method : str
        ``"random"`` or ``"tpe"``.
    trials : int
        Trials in all (per training window with a walk-forward).
    seed : int
        Seeds every batch's sampler (see :func:`batch_seed`).
    axes : tuple of SearchAxis
        The searched settings.
    batch_size : int
        Trials asked and run at a time (:data:`DEFAULT_BATCH`).
    """

    method: str
    trials: int
    seed: int = 0
    axes: tuple[SearchAxis, ...] = field(default_factory=tuple)
    batch_size: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if self.method not in (RANDOM, TPE):
            raise ConfigError(
                f"--search {self.method!r}: choose one of {', '.join(SEARCH_METHODS)}"
            )
        if isinstance(self.trials, bool) or not 1 <= int(self.trials) <= MAX_TRIALS:
            raise ConfigError(f"--trials {self.trials}: give 1 to {MAX_TRIALS:,} trials")
        if isinstance(self.seed, bool) or not 0 <= int(self.seed) < 2**63:
            raise ConfigError(f"--seed {self.seed}: give a whole number from 0 to 2**63 - 1")
        if not 1 <= int(self.batch_size) <= 10_000:
            raise ConfigError(f"search batch size {self.batch_size}: give 1 to 10,000")
        if not self.axes:
            raise ConfigError(
                "nothing to search: give ranges or lists with -g NAME=LOW:HIGH or "
                "-g NAME=V1,V2 (e.g. -g fast=5:50)"
            )

    @property
    def axis_names(self) -> list[str]:
        """Searched settings in order."""
        return [axis.name for axis in self.axes]

    def batch_counts(self) -> list[int]:
        """Trials in each batch (the last one may be smaller)."""
        counts = [self.batch_size] * (self.trials // self.batch_size)
        if self.trials % self.batch_size:
            counts.append(self.trials % self.batch_size)
        return counts

    def manifest(self) -> dict[str, Any]:
        """A JSON-friendly description for ``sweep.json``."""
        return {
            "method": self.method,
            "trials": self.trials,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "space": {axis.name: axis.manifest() for axis in self.axes},
        }


# --------------------------------------------------------------------------------------------
# axes
# --------------------------------------------------------------------------------------------
def is_range(values: Sequence[Any]) -> bool:
    """Whether an axis' values are one ``LOW:HIGH`` or ``log:LOW:HIGH`` range."""
    return len(values) == 1 and isinstance(values[0], str) and bool(_RANGE.match(values[0]))


def range_axes(grid: Mapping[str, Sequence[Any]]) -> list[str]:
    """Names of the axes of ``grid`` written as ranges."""
    return [name for name, values in grid.items() if is_range(list(values))]


def build_search_axes(
    grid: Mapping[str, Sequence[Any]],
    strategy_class: type | None,
    *,
    run_defaults: Mapping[str, Any] | None = None,
    map_defaults: Mapping[str, Any] | None = None,
) -> list[SearchAxis]:
    """Classify and convert the searched settings (ranges and lists).

    Names and values are checked by :func:`backtest.sweep.grid.build_axes` (a range's two ends
    are converted like two grid values, so an integer parameter refuses ``0.5:2``).

    Raises
    ------
    ConfigError
        For an unknown name, a range whose ends are not numbers or not in order, a log range
        that does not stay above zero, or a range over dates (``period``).
    """
    ranges: dict[str, tuple[bool, str, str]] = {}
    for name, values in grid.items():
        match = _RANGE.match(values[0]) if is_range(list(values)) else None
        if match is None:
            continue
        if name in _DATE_SETTINGS:  # refused here, before the ends are read as dates
            raise ConfigError(f"sweep axis {name}={values[0]}: dates cannot be a range")
        ranges[name] = (match.group(1) is not None, match.group(2), match.group(3))
    to_convert = {
        name: [ranges[name][1], ranges[name][2]] if name in ranges else values
        for name, values in grid.items()
    }
    converted = build_axes(
        to_convert,
        strategy_class,
        run_defaults=run_defaults,
        map_defaults=map_defaults,
    )
    axes: list[SearchAxis] = []
    for axis in converted:
        if axis.name not in ranges:
            axes.append(SearchAxis(axis=axis, kind="choice"))
            continue
        log, low_text, high_text = ranges[axis.name]
        written = f"{'log:' if log else ''}{low_text}:{high_text}"
        values = axis.values if len(axis.values) == 2 else (axis.values[0], axis.values[0])
        low, high = values
        if any(isinstance(end, bool) or not isinstance(end, int | float) for end in values):
            raise ConfigError(
                f"sweep axis {axis.name}={written}: {axis.name} is not a number setting; "
                "give a list of values instead (NAME=V1,V2)"
            )
        if not (math.isfinite(float(low)) and math.isfinite(float(high))) or low >= high:
            raise ConfigError(
                f"sweep axis {axis.name}={written}: the range needs LOW < HIGH, e.g. "
                f"{axis.name}=5:50"
            )
        if log and low <= 0:
            raise ConfigError(
                f"sweep axis {axis.name}={written}: a log range must stay above 0, e.g. "
                f"{axis.name}=log:1e-4:1e-1"
            )
        kind = "int" if isinstance(low, int) and isinstance(high, int) else "float"
        bounds = (low, high) if kind == "int" else (float(low), float(high))
        axes.append(
            SearchAxis(
                axis=Axis(name=axis.name, target=axis.target, field=axis.field, values=bounds),
                kind=kind,
                log=log,
            )
        )
    return axes


# --------------------------------------------------------------------------------------------
# asking and telling
# --------------------------------------------------------------------------------------------
def batch_seed(seed: int, *path: int) -> int:
    """A 32-bit sampler seed for one batch, derived from the search seed and the batch's place.

    ``path`` is ``(batch,)`` or ``(window, batch)``; NumPy's SeedSequence mixes them, so
    neighbouring batches get unrelated seeds.
    """
    return int(
        np.random.SeedSequence([int(seed), *[int(part) for part in path]]).generate_state(1)[0]
    )


def make_sampler(method: str, seed: int) -> Any:
    """A seeded Optuna sampler: ``RandomSampler`` or ``TPESampler``."""
    import optuna

    if method == RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


@dataclass(frozen=True)
class Told:
    """The result of one earlier trial, as the next batches' study holds it.

    Attributes
    ----------
    number : int
        The trial number (its position in the search).
    sampled : dict
        What Optuna sampled for each axis (positions for choices).
    value : float or None
        The objective; None when the run failed or has no finite objective.
    constraints : dict
        Constraint values (``<= 0`` feasible).
    """

    number: int
    sampled: dict[str, Any]
    value: float | None
    constraints: dict[str, float] = field(default_factory=dict)


def ask_batch(
    spec: SearchSpec,
    history: Sequence[Told],
    count: int,
    seed: int,
    *,
    minimise: bool = False,
) -> list[dict[str, Any]]:
    """Ask ``count`` trials after ``history``; returns what was sampled for each, in order.

    A fresh in-memory study is filled with ``history`` (complete trials with their objective
    and constraint values, failed ones as FAIL) and asked through a sampler seeded with
    ``seed``: the same history and seed give the same trials.  A random search's draws do not
    depend on the history, so its study is left empty (filling it would cost time growing with
    the square of the trial count).
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per study created
    distributions = {axis.name: axis.distribution() for axis in spec.axes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            direction="minimize" if minimise else "maximize",
            sampler=make_sampler(spec.method, seed),
        )
        trials = [
            create_trial(
                state=TrialState.COMPLETE if told.value is not None else TrialState.FAIL,
                value=told.value,
                params=dict(told.sampled),
                distributions=distributions,
                system_attrs={
                    f"{CONSTRAINT_PREFIX}{name}": float(value)
                    for name, value in told.constraints.items()
                },
            )
            for told in history
        ]
        if trials and spec.method != RANDOM:  # random draws do not depend on the history
            study.add_trials(trials)
        asked: list[dict[str, Any]] = []
        for _ in range(count):
            trial = study.ask(distributions)
            asked.append(dict(trial.params))
    return asked


def values_of(spec: SearchSpec, sampled: Mapping[str, Any]) -> dict[str, Any]:
    """The settings' values of a trial (choices looked up by position)."""
    return {axis.name: axis.value(sampled[axis.name]) for axis in spec.axes}


def objective_value(metrics: Mapping[str, Any], metric: str | None) -> float | None:
    """A run's objective as a float, None when missing or not finite."""
    if metric is None:
        return None
    value = metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def constraint_values(constraints: Constraints | None, metrics: Mapping[str, Any]) -> dict:
    """The constraint values Optuna is told (empty without constraints)."""
    if constraints is None or not constraints.active:
        return {}
    return constraints.values(metrics)
