"""The calibration's search space: a declared table of dimensions, easy to extend.

Each :class:`Dimension` is one number Optuna proposes.  A dimension whose name is a field of
:class:`~backtest.liquidation.heatmap.MapParams` sets that field directly, so a parameter
added to the model is searched by adding one row here (or by passing ``space=`` to
:func:`backtest.validation.calibrate`).  A few dimensions are *derived*: they set several fields
through a small parametric family instead of many free numbers (see :data:`DERIVED`).

Derived dimensions
------------------
``leverage_center``, ``leverage_width``
    The leverage mix over the base parameters' leverages ``L_i`` as a log-normal bump:
    ``w_i ∝ exp(−(ln L_i − ln center)² / (2·width²))``, normalised to sum to 1.  Two numbers
    instead of eight free weights: where most open interest sits and how spread out it is.
``long_share_spread``
    The clamp of the long share around its base: ``long_share_min = base − spread`` and
    ``long_share_max = base + spread`` (kept inside (0.01, 0.99)).

``participation`` is not searched: the map is linear in it (it scales every notional output
and nothing else), so the calibration sets it in closed form afterwards, making the training
window's estimated total equal the recorded total.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from backtest.errors import ConfigError
from backtest.liquidation.heatmap import MapParams


@dataclass(frozen=True)
class Dimension:
    """One searched number.

    Attributes
    ----------
    name : str
        A MapParams field or a derived name (:data:`DERIVED`).
    low, high : float
        Bounds (inclusive).
    log : bool
        Search on a log scale (for spans over orders of magnitude; needs ``low > 0``).
    integer : bool
        Whole numbers only.
    """

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ConfigError(
                f"search dimension {self.name}: bounds {self.low:g}..{self.high:g} must be "
                "finite with low < high"
            )
        if self.log and self.low <= 0:
            raise ConfigError(f"search dimension {self.name}: a log scale needs low > 0")

    def suggest(self, trial: Any) -> float | int:
        """Ask an Optuna trial for a value."""
        if self.integer:
            return int(trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log))
        return float(trial.suggest_float(self.name, self.low, self.high, log=self.log))

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for the profile's record of the search)."""
        return {
            "name": self.name, "low": self.low, "high": self.high,
            "log": self.log, "integer": self.integer,
        }  # fmt: skip


def _leverage_mix(values: Mapping[str, Any], base: MapParams) -> dict[str, Any]:
    center = float(values.get("leverage_center", 8.0))
    width = float(values.get("leverage_width", 1.0))
    raw = [
        math.exp(-((math.log(leverage) - math.log(center)) ** 2) / (2.0 * width * width))
        for leverage in base.leverages
    ]
    total = math.fsum(raw)
    if total <= 0.0:
        raw = [1.0] * len(raw)
        total = float(len(raw))
    weights = [value / total for value in raw]
    weights[-1] = 1.0 - math.fsum(weights[:-1])  # exact sum for MapParams' check
    return {"leverage_weights": tuple(max(weight, 0.0) for weight in weights)}


def _long_share_clamp(values: Mapping[str, Any], base: MapParams) -> dict[str, Any]:
    centre = float(values.get("long_share_base", base.long_share_base))
    spread = float(values["long_share_spread"])
    return {
        "long_share_min": max(0.01, centre - spread),
        "long_share_max": min(0.99, centre + spread),
    }


#: Derived dimensions: (names it reads, function of (values, base) -> MapParams fields).
DERIVED: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any], MapParams], dict]]] = {
    "leverage_mix": (("leverage_center", "leverage_width"), _leverage_mix),
    "long_share_clamp": (("long_share_spread",), _long_share_clamp),
}

#: The default search space (participation is fitted in closed form, see the module docstring).
SEARCH_SPACE: tuple[Dimension, ...] = (
    Dimension("half_life_hours", 4.0, 240.0, log=True),
    Dimension("leverage_center", 2.0, 60.0, log=True),
    Dimension("leverage_width", 0.3, 2.5),
    Dimension("long_share_base", 0.40, 0.60),
    Dimension("long_share_spread", 0.02, 0.45),
    Dimension("long_share_funding_tilt", 0.0, 2000.0),
    Dimension("entry_points", 1, 9, integer=True),
    Dimension("entry_concentration", 0.0, 10.0),
    Dimension("round_level_weight", 0.0, 0.6),
)


def check_space(space: Sequence[Dimension]) -> tuple[Dimension, ...]:
    """Check every dimension names a MapParams field or a derived input; no duplicates."""
    known = {item.name for item in fields(MapParams)}
    derived = {name for names, _ in DERIVED.values() for name in names}
    seen: set[str] = set()
    for dimension in space:
        if not isinstance(dimension, Dimension):
            raise ConfigError(f"the search space holds {dimension!r}, not a Dimension")
        if dimension.name in seen:
            raise ConfigError(f"the search space names {dimension.name!r} twice")
        seen.add(dimension.name)
        if dimension.name == "participation":
            raise ConfigError(
                "participation is fitted in closed form (the map is linear in it); leave it out "
                "of the search space"
            )
        if dimension.name not in known and dimension.name not in derived:
            raise ConfigError(
                f"search dimension {dimension.name!r} is neither a MapParams field nor one of "
                f"the derived {', '.join(sorted(derived))}"
            )
    if not space:
        raise ConfigError("the search space is empty; give at least one dimension")
    return tuple(space)


def params_from_values(values: Mapping[str, Any], base: MapParams) -> MapParams:
    """MapParams from a trial's values: fields set directly, derived ones through their family."""
    known = {item.name for item in fields(MapParams)}
    changes: dict[str, Any] = {name: value for name, value in values.items() if name in known}
    for names, function in DERIVED.values():
        if any(name in values for name in names):
            changes.update(function({**changes, **values}, base))
    return replace(base, **changes)


def parse_dimension(text: str) -> Dimension:
    """Read ``NAME=LOW:HIGH[:log][:int]`` (the ``--space`` option)."""
    name, separator, rest = text.partition("=")
    parts = rest.split(":")
    if not separator or not name.strip() or len(parts) < 2:
        raise ConfigError(
            f"--space {text!r} is not NAME=LOW:HIGH[:log][:int]; e.g. half_life_hours=6:200:log"
        )
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(f"--space {text!r}: LOW and HIGH must be numbers") from None
    flags = {flag.strip().lower() for flag in parts[2:]}
    unknown = flags - {"log", "int"}
    if unknown:
        raise ConfigError(f"--space {text!r}: unknown flag(s) {', '.join(sorted(unknown))}")
    return Dimension(name.strip(), low, high, log="log" in flags, integer="int" in flags)


__all__ = [
    "DERIVED",
    "SEARCH_SPACE",
    "Dimension",
    "check_space",
    "params_from_values",
    "parse_dimension",
]
