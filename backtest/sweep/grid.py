"""Parameter grids: from ``-g name=v1,v2`` flags and the run file's ``[sweep]`` table to runs.

An axis name says what it varies:

``band``, ``params.band``
    a strategy parameter (checked against the strategy's ``params``, values converted to the
    type of its default);
``leverage``, ``symbol``, ``timeframe``, ``since``, ``until``, ``cash``, ``run.leverage`` ...
    a field of :class:`backtest.engine.RunConfig`;
``map.bucket_width``
    a liquidation-map parameter (``RunConfig.map_params``);
``period``
    a date range ``SINCE..UNTIL`` (either side may be left empty), setting both ``since`` and
    ``until``.

A bare name that is both a run field and a strategy parameter must be written with its prefix.
Values from flags are text and are converted here; values from TOML keep their type (a scalar
is a one-value axis).  :func:`expand` takes the Cartesian product in axis order, so the runs of
a sweep always come out in the same order.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backtest.errors import ConfigError
from backtest.plugins import convert_value
from backtest.sweep.limits import MAX_GRID_RUNS

#: Where an axis writes its value.
RUN, PARAMS, MAP, PERIOD = "run", "params", "map", "period"
_PREFIXES: dict[str, str] = {"run.": RUN, "params.": PARAMS, "map.": MAP}
PERIOD_AXIS = "period"
PERIOD_SEPARATOR = ".."

#: RunConfig fields an axis may not vary (they are not single-run settings).
_NOT_SWEEPABLE = frozenset({"strategy", "params", "map_params"})


@dataclass(frozen=True)
class Axis:
    """One varied setting of a sweep.

    Attributes
    ----------
    name : str
        As the user wrote it (the column name in the results table).
    target : str
        ``"run"``, ``"params"``, ``"map"`` or ``"period"``.
    field : str
        The RunConfig field, strategy parameter or map parameter it sets.
    values : tuple
        Converted values, in the user's order, without repeats.
    """

    name: str
    target: str
    field: str
    values: tuple[Any, ...]

    def apply(self, settings: dict[str, Any], value: Any) -> None:
        """Write ``value`` of this axis into run ``settings`` (in place)."""
        if self.target == RUN:
            settings[self.field] = value
        elif self.target == PARAMS:
            settings["params"] = {**dict(settings.get("params") or {}), self.field: value}
        elif self.target == MAP:
            settings["map_params"] = {**dict(settings.get("map_params") or {}), self.field: value}
        else:
            since, until = split_period(value)
            settings["since"], settings["until"] = since, until


@dataclass(frozen=True)
class GridPoint:
    """One combination of axis values and the run settings it makes."""

    values: dict[str, Any]
    settings: dict[str, Any]


# --------------------------------------------------------------------------------------------
# reading the user's grid
# --------------------------------------------------------------------------------------------
def parse_grid_options(items: Iterable[str]) -> dict[str, list[str]]:
    """Parse repeatable ``-g name=v1,v2,...`` flags.

    Raises
    ------
    ConfigError
        When an item has no ``=``, no name or no value.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        name, separator, text = item.partition("=")
        name = name.strip()
        values = [part.strip() for part in text.split(",") if part.strip()]
        if not separator or not name or not values:
            raise ConfigError(
                f"-g {item!r}: expected name=value1,value2,..., e.g. -g band=0.02,0.03,0.05"
            )
        grid[name] = values
    return grid


def grid_from_table(table: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Flatten a run file's ``[sweep]`` table into axis names and value lists.

    ``[sweep.map]`` and ``[sweep.params]`` sub-tables become ``map.NAME`` / ``params.NAME``;
    a scalar becomes a one-value axis; TOML dates become ISO text.
    """
    grid: dict[str, list[Any]] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            for inner, inner_value in grid_from_table(value).items():
                grid[f"{key}.{inner}"] = inner_value
        elif isinstance(value, list | tuple):
            grid[key] = [_plain(item) for item in value]
        else:
            grid[key] = [_plain(value)]
    return grid


def _plain(value: Any) -> Any:
    """TOML dates and times become ISO text, as flags give them."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def run_field_defaults() -> dict[str, Any]:
    """Return RunConfig's field names and defaults (``None`` for fields without a default)."""
    from backtest.engine import RunConfig

    defaults: dict[str, Any] = {}
    for item in dataclasses.fields(RunConfig):
        if item.default is not dataclasses.MISSING:
            defaults[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            defaults[item.name] = item.default_factory()
        else:
            defaults[item.name] = None
    return defaults


def map_parameter_defaults() -> dict[str, Any] | None:
    """Return MapParams' fields and defaults, or None when the map is not installed."""
    try:
        from backtest.liquidation.heatmap import MapParams
    except ImportError:
        return None
    return {
        item.name: item.default if item.default is not dataclasses.MISSING else None
        for item in dataclasses.fields(MapParams)
    }


def build_axes(
    grid: Mapping[str, Sequence[Any]],
    strategy_class: type | None,
    *,
    run_defaults: Mapping[str, Any] | None = None,
    map_defaults: Mapping[str, Any] | None = None,
) -> list[Axis]:
    """Classify and convert every axis of ``grid``.

    Parameters
    ----------
    grid : mapping
        Axis name -> values (text from flags or typed values from TOML).
    strategy_class : type, optional
        The swept strategy; its parameters are the bare names that are not run fields.
    run_defaults, map_defaults : mapping, optional
        Field defaults (read from RunConfig and MapParams when omitted).

    Raises
    ------
    ConfigError
        For unknown or ambiguous names, unconvertible values, or clashing axes.
    """
    from backtest.plugins import coerce_parameters, strategy_parameters

    run_defaults = dict(run_field_defaults() if run_defaults is None else run_defaults)
    map_defaults = map_parameter_defaults() if map_defaults is None else dict(map_defaults)
    strategy_defaults = strategy_parameters(strategy_class) if strategy_class else {}
    owner = strategy_class.__name__ if strategy_class else "the strategy"
    axes: list[Axis] = []
    for name, raw_values in grid.items():
        target, field = _classify(name, run_defaults, strategy_defaults, map_defaults, owner)
        if not raw_values:
            raise ConfigError(f"sweep axis {name!r} has no values; give at least one")
        values: list[Any] = []
        for raw in raw_values:
            if target == PARAMS:
                if strategy_class is None:
                    value = _literal(raw)
                else:
                    value = coerce_parameters(strategy_class, {field: raw})[field]
            elif target == RUN:
                value = convert_value(f"run setting {field!r}", raw, run_defaults.get(field))
            elif target == MAP:
                default = (map_defaults or {}).get(field)
                value = convert_value(f"map parameter {field!r}", raw, default)
            else:
                split_period(raw)
                value = str(raw)
            if value not in values:
                values.append(value)
        axes.append(Axis(name=name, target=target, field=field, values=tuple(values)))
    _check_clashes(axes)
    return axes


def _classify(
    name: str,
    run_defaults: Mapping[str, Any],
    strategy_defaults: Mapping[str, Any],
    map_defaults: Mapping[str, Any] | None,
    owner: str,
) -> tuple[str, str]:
    run_fields = [field for field in run_defaults if field not in _NOT_SWEEPABLE]
    if name == PERIOD_AXIS:
        return PERIOD, PERIOD_AXIS
    for prefix, target in _PREFIXES.items():
        if name.startswith(prefix):
            field = name[len(prefix) :]
            known: Iterable[str] | None = {
                RUN: run_fields,
                PARAMS: strategy_defaults,
                MAP: map_defaults,
            }[target]
            if known is not None and field not in known:
                what = {RUN: "run setting", PARAMS: f"{owner} parameter", MAP: "map parameter"}
                raise ConfigError(
                    f"sweep axis {name!r}: no {what[target]} {field!r}{_hint(field, known)}"
                )
            return target, field
    if name in _NOT_SWEEPABLE:
        raise ConfigError(
            f"sweep axis {name!r} cannot vary: sweep one strategy at a time and name its "
            "parameters directly (band=...) or as params.NAME / map.NAME"
        )
    in_run, in_strategy = name in run_fields, name in strategy_defaults
    if in_run and in_strategy:
        raise ConfigError(
            f"sweep axis {name!r} is both a run setting and a {owner} parameter: "
            f"write run.{name} or params.{name}"
        )
    if in_run:
        return RUN, name
    if in_strategy:
        return PARAMS, name
    candidates = [*run_fields, *strategy_defaults, PERIOD_AXIS]
    candidates += [f"map.{field}" for field in map_defaults or ()]
    raise ConfigError(
        f"sweep axis {name!r} is neither a run setting nor a {owner} parameter"
        f"{_hint(name, candidates)}; map parameters are written map.NAME"
    )


def _hint(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _check_clashes(axes: Sequence[Axis]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for axis in axes:
        keys = (
            [(RUN, "since"), (RUN, "until")]
            if axis.target == PERIOD
            else [(axis.target, axis.field)]
        )
        for key in keys:
            if key in seen:
                raise ConfigError(
                    f"sweep axes {seen[key]!r} and {axis.name!r} both set {key[1]}; keep one"
                )
            seen[key] = axis.name


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
def _literal(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def split_period(value: Any) -> tuple[str | None, str | None]:
    """Split ``"SINCE..UNTIL"`` into its two dates (an empty side is None).

    Raises
    ------
    ConfigError
        When the separator is missing or a date is not understood.
    """
    from backtest.market.timeframes import parse_time

    text = str(value)
    since, separator, until = text.partition(PERIOD_SEPARATOR)
    if not separator:
        raise ConfigError(
            f"period {text!r}: write SINCE..UNTIL, e.g. period=2025-10-01..2025-10-05"
        )
    since_ms = parse_time(since, "period start")
    until_ms = parse_time(until, "period end")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise ConfigError(f"period {text!r}: the start is not before the end")
    return since.strip() or None, until.strip() or None


# --------------------------------------------------------------------------------------------
# expansion
# --------------------------------------------------------------------------------------------
def expand(base: Mapping[str, Any], axes: Sequence[Axis]) -> list[GridPoint]:
    """Return every combination of the axes applied over ``base`` settings, in axis order."""
    points: list[GridPoint] = []
    for combination in itertools.product(*(axis.values for axis in axes)):
        settings = _copy_settings(base)
        values: dict[str, Any] = {}
        for axis, value in zip(axes, combination, strict=True):
            axis.apply(settings, value)
            values[axis.name] = value
        points.append(GridPoint(values=values, settings=settings))
    return points


def _copy_settings(base: Mapping[str, Any]) -> dict[str, Any]:
    settings = dict(base)
    for table in ("params", "map_params"):
        if table in settings and settings[table] is not None:
            settings[table] = dict(settings[table])
    return settings


def grid_size(axes: Sequence[Axis]) -> int:
    """Number of combinations of ``axes`` (the product of their lengths; nothing is built)."""
    return math.prod(len(axis.values) for axis in axes)


def check_grid_size(axes: Sequence[Axis], *, allow_large: bool = False) -> int:
    """Return the number of combinations, refusing more than :data:`MAX_GRID_RUNS`.

    A grid grows as the product of its axes (five axes of ten values are 100,000 runs), and
    it is expanded, validated and recorded run by run, so an accidental one would hold the
    machine for hours.  The check runs before anything is built.

    Raises
    ------
    ConfigError
        When the grid is larger than the limit and ``allow_large`` is false.
    """
    size = grid_size(axes)
    if size > MAX_GRID_RUNS and not allow_large:
        shape = " x ".join(f"{len(axis.values)} {axis.name}" for axis in axes)
        raise ConfigError(
            f"the grid has {size:,} combinations ({shape}), more than the limit of "
            f"{MAX_GRID_RUNS:,}: use fewer values, or pass --allow-large-grid to run it anyway"
        )
    return size
