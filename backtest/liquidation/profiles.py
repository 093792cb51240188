"""Map profiles: a TOML file of liquidation-map parameters, as ``calibrate`` writes them.

A profile has a ``[map]`` table of :class:`~backtest.liquidation.heatmap.MapParams` fields
and, when it came from ``backtest calibrate``, a ``[calibration]`` table recording how
(symbols, training and test windows, objective, scores, date, library versions)::

    [map]
    half_life_hours = 31.5
    leverage_weights = [0.05, 0.1, 0.2, 0.3, 0.2, 0.05, 0.05, 0.05]
    participation = 0.0071

    [calibration]
    symbol = "BTC/USDT:USDT"
    train_since = "2025-02-09T00:00:00+00:00"
    train_until = "2025-07-01T00:00:00+00:00"

Fields missing from ``[map]`` keep their defaults.  Every command that runs the map takes
``--map-profile FILE`` (``map_profile = "FILE"`` in a run's TOML), and ``--map NAME=VALUE``
flags override the profile's values.

Examples
--------
>>> from backtest.liquidation.profiles import load_profile
>>> params = load_profile("btc.toml", overrides={"band": 0.08})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from backtest.errors import ConfigError
from backtest.liquidation.heatmap import MapParams

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Profile:
    """A profile as read from its file.

    Attributes
    ----------
    params : MapParams
        The ``[map]`` table (plus overrides) as parameters.
    values : dict
        The ``[map]`` table as written.
    calibration : dict
        The ``[calibration]`` table (empty when the profile was written by hand).
    path : pathlib.Path
        Where it was read from.
    """

    params: MapParams
    values: dict[str, Any]
    calibration: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def fitted_window(self) -> tuple[str, str] | None:
        """``(train_since, train_until)`` of the calibration, when recorded."""
        since = self.calibration.get("train_since")
        until = self.calibration.get("train_until")
        if isinstance(since, str) and isinstance(until, str):
            return since, until
        return None


def read_profile(
    path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> Profile:
    """Read a map profile; ``overrides`` (``--map`` flags) win over its values.

    Raises
    ------
    ConfigError
        When the file is missing, not TOML, has no ``[map]`` table or holds a bad parameter
        (one line naming the file).
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            f"map profile {file} does not exist; write one with `backtest calibrate --profile "
            f"{file}` or give the right path"
        )
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"map profile {file} is not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read map profile {file}: {error}") from None
    except RecursionError:
        raise ConfigError(
            f"map profile {file} nests arrays or tables too deeply to read; a profile holds a "
            "[map] table of MapParams fields"
        ) from None
    values = data.get("map")
    if not isinstance(values, dict):
        raise ConfigError(
            f"map profile {file} has no [map] table; it needs [map] with MapParams fields, "
            "e.g. half_life_hours = 24"
        )
    calibration = data.get("calibration", {})
    if not isinstance(calibration, dict):
        raise ConfigError(f"map profile {file}: calibration must be a table ([calibration])")
    merged = {**values, **dict(overrides or {})}
    try:
        params = MapParams.from_dict(merged)
    except ConfigError as error:
        raise ConfigError(f"map profile {file}: {error}") from None
    except TypeError as error:  # e.g. a table where a number belongs
        raise ConfigError(f"map profile {file}: {error}") from None
    return Profile(params=params, values=dict(values), calibration=calibration, path=file)


def load_profile(
    path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> MapParams:
    """The MapParams of a profile file, ``overrides`` applied on top (see :func:`read_profile`)."""
    return read_profile(path, overrides).params


def map_params_with_profile(
    profile: str | os.PathLike[str] | None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``[map]`` values of ``profile`` (when given) updated with ``overrides``, as a dict.

    For commands that pass a dict of map parameters on (``--map-profile`` then ``--map``).
    The profile is checked on its own; the overrides are left as given (the command checks
    and converts the merged values as it does its ``--map`` flags).
    """
    overrides = dict(overrides or {})
    if profile is None:
        return overrides
    loaded = read_profile(profile)
    return {**loaded.values, **overrides}


def profile_values(params: MapParams) -> dict[str, Any]:
    """The ``[map]`` table for ``params``: every field, None ones left out (TOML has no null)."""
    values: dict[str, Any] = {}
    for item in fields(MapParams):
        value = params.to_dict()[item.name]
        if value is None:
            continue
        if isinstance(value, dict):
            value = {key: part for key, part in value.items() if part is not None}
        values[item.name] = value
    return values


def library_versions() -> dict[str, str]:
    """Versions of the libraries a calibration depends on."""
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("backtest", "numpy", "pandas", "scipy", "optuna"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "backtest":
                from backtest import __version__

                versions[name] = __version__
    return versions


def check_profile_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check that a profile may be written at ``path``; return it as a Path.

    A missing path may be written.  An existing one only with ``overwrite`` (``--force``) and
    only when it is itself a map profile (a TOML file with a ``[map]`` table that
    :func:`read_profile` accepts): ``--force`` replaces an earlier profile, never a user's
    other file that happens to sit at that path.

    Raises
    ------
    ConfigError
        One line naming the path and what to do; nothing is changed.
    """
    file = Path(path)
    if not file.exists() and not file.is_symlink():
        return file
    if not overwrite:
        raise ConfigError(
            f"{file} already exists; choose another --profile path or pass --force to replace it"
        )
    if file.is_symlink() or not file.is_file():
        raise ConfigError(f"{file} is not a regular file; choose another --profile path")
    try:
        read_profile(file)
    except ConfigError as error:
        raise ConfigError(
            f"--force replaces only an earlier map profile, and {file} is not one ({error}); "
            "nothing was changed: choose another --profile path"
        ) from None
    return file


def write_profile(
    path: str | os.PathLike[str],
    params: MapParams,
    calibration: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a profile atomically (temporary file + rename) and return its path.

    Raises
    ------
    ConfigError
        When the file exists and ``overwrite`` is false (nothing is replaced silently), or
        its folder cannot be written.
    """
    file = check_profile_target(path, overwrite=overwrite)
    text = "# Liquidation-map profile (backtest --map-profile FILE)\n\n"
    text += dumps_toml({"map": profile_values(params)})
    if calibration:
        text += "\n" + dumps_toml({"calibration": dict(calibration)})
    from backtest.folders import write_atomic

    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(file, text)  # temporary sibling + rename; the umask's permissions
    except OSError as error:
        raise ConfigError(f"cannot write the profile {file}: {error}") from None
    return file


# -- a small TOML writer (tomllib only reads) -----------------------------------------------
def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        parts = [f"{_key(str(key))} = {_value(item)}" for key, item in value.items()
                 if item is not None]  # fmt: skip
        return "{ " + ", ".join(parts) + " }" if parts else "{}"
    if hasattr(value, "item"):  # numpy scalars
        return _value(value.item())
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def dumps_toml(document: Mapping[str, Any], prefix: str = "") -> str:
    """TOML text of nested mappings: scalars and lists as keys, mappings as [tables]."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for name, value in document.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append((name, value))
        else:
            lines.append(f"{_key(str(name))} = {_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for name, table in tables:
        header = f"{prefix}.{_key(str(name))}" if prefix else _key(str(name))
        if text:
            text += "\n"
        text += f"[{header}]\n" + dumps_toml(table, header)
    return text


__all__ = [
    "Profile",
    "check_profile_target",
    "dumps_toml",
    "library_versions",
    "load_profile",
    "map_params_with_profile",
    "profile_values",
    "read_profile",
    "write_profile",
]
