"""Run configuration from a TOML file and command-line flags (flags override the file).

A run file holds the :class:`backtest.engine.RunConfig` fields at the top level, strategy
parameters in ``[params]``, liquidation-map parameters in ``[map]`` and, for sweeps, a grid in
``[sweep]``::

    symbol = "BTC/USDT:USDT"
    timeframe = "5m"
    since = "2025-10-01"
    strategy = "ClusterFade"
    leverage = 5

    [params]
    band = 0.03

    [sweep]
    band = [0.02, 0.03, 0.05]
    leverage = [3, 5]

Unknown keys are rejected with "did you mean", so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backtest.errors import ConfigError

#: Tables of a run file and the RunConfig field each one fills.
TABLES: dict[str, str] = {"params": "params", "map": "map_params"}
SWEEP_TABLE = "sweep"
#: Key naming a liquidation-map profile whose ``[map]`` values the run's ``[map]`` table tops.
PROFILE = "map_profile"


def run_config_fields() -> list[str]:
    """Names of :class:`backtest.engine.RunConfig`'s fields."""
    from backtest.engine import RunConfig

    return [item.name for item in dataclasses.fields(RunConfig)]


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read and check a run file.

    Returns
    -------
    dict
        RunConfig fields (``params`` and ``map_params`` as dicts) plus ``"sweep"`` when present.

    Raises
    ------
    ConfigError
        When the file is missing, is not TOML, or has unknown keys.
    """
    file = Path(path)
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except OSError as error:
        raise ConfigError(
            f"config file {file} cannot be read: {error.strerror or error}"
        ) from error
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {file} is not UTF-8 text (byte {error.object[error.start]:#04x} at "
            f"offset {error.start}); save it as UTF-8"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"config file {file} nests arrays or tables too deeply to read; a run file needs "
            "at most two levels ([params], [map], [sweep])"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {file} is not valid TOML: {error}") from error
    fields = set(run_config_fields())
    allowed = (fields - set(TABLES.values())) | set(TABLES) | {SWEEP_TABLE, "symbols", PROFILE}
    settings: dict[str, Any] = {}
    for key, value in document.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                f"config file {file}: unknown key {key!r}{hint}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        if key in TABLES or key == SWEEP_TABLE:
            if not isinstance(value, Mapping):
                raise ConfigError(f"config file {file}: {key} must be a table ([{key}])")
            settings[TABLES.get(key, key)] = dict(value)
        else:
            settings[key] = _plain(value)
    if "symbols" in settings:  # a portfolio's markets: ``symbols = [...]`` is ``symbol = [...]``
        if "symbol" in settings:
            raise ConfigError(f"config file {file}: give either symbol or symbols, not both")
        settings["symbol"] = settings.pop("symbols")
    if PROFILE in settings:
        settings["map_params"] = _with_profile(file, settings.pop(PROFILE), settings)
    return settings


def _with_profile(file: Path, profile: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The profile's ``[map]`` values under the run file's own ``[map]`` table.

    A relative ``map_profile`` path is taken from the run file's folder.
    """
    from backtest.liquidation.profiles import read_profile

    if not isinstance(profile, str) or not profile.strip():
        raise ConfigError(f"config file {file}: map_profile must be a file path (text)")
    path = Path(profile)
    if not path.is_absolute():
        path = file.parent / path
    own = dict(settings.get("map_params") or {})
    return {**read_profile(path).values, **own}


def _plain(value: Any) -> Any:
    """TOML dates and times become ISO strings, as flags give them."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def merge(file_settings: Mapping[str, Any], flag_settings: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay flags on a file's settings; ``None`` flags leave the file's value.

    The ``params`` and ``map_params`` tables are merged key by key.
    """
    merged = dict(file_settings)
    for key, value in flag_settings.items():
        if value is None:
            continue
        if key in TABLES.values() and isinstance(value, Mapping):
            merged[key] = {**dict(merged.get(key) or {}), **dict(value)}
        else:
            merged[key] = value
    return merged
