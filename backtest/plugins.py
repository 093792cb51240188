"""Finding, loading and describing strategy plugins.

Strategies are :class:`backtest.Strategy` subclasses found in:

1. the project's built-in ``strategies/`` folder;
2. a ``strategies/`` folder in the current working directory;
3. installed packages, through the entry-point group ``backtest.strategies``.

A plugin decides bar by bar (``next``), over whole arrays (a ``decide`` classmethod, see
:mod:`backtest.strategy`), or both; one with ``decide`` only runs on the event engine by
replaying its decisions.

Names are unique.  A user's strategy (2 or 3) that reuses a built-in's name replaces the
built-in, with a note (printed when it is run and by ``backtest strategies``); two user
strategies of the same name are ambiguous, and running that name is refused naming both files.
One broken file (a syntax error, a failing import, even ``sys.exit`` at import) is listed with
its error and leaves every other strategy usable.

A run may also name a class directly: ``path/to/file.py:ClassName`` or
``package.module:ClassName``.  Files are loaded by path under private module names, so a user's
``strategies/`` folder never shadows the built-in package.  A file that fails to import is named
with its real cause; strategy names and parameter keys that do not exist get "did you mean".
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib
import importlib.util
import inspect
import logging
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from backtest.errors import ConfigError, PluginError
from backtest.strategy import INTERFACE_VERSION, Strategy, strategy_form

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "backtest.strategies"
BUILTIN_FOLDER = Path(__file__).resolve().parent.parent / "strategies"


@dataclass(frozen=True)
class StrategyInfo:
    """A discovered strategy class and where it came from."""

    name: str
    cls: type[Strategy]
    source: str

    @property
    def summary(self) -> str:
        """First line of the class docstring."""
        doc = inspect.getdoc(self.cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameter names and their defaults."""
        return strategy_parameters(self.cls)

    @property
    def form(self) -> str:
        """``"event"`` (``next``), ``"array"`` (``decide`` only) or ``"both"``."""
        return strategy_form(self.cls)


@dataclass
class Catalogue:
    """Every strategy found, plus the files that could not be loaded.

    Attributes
    ----------
    strategies : dict
        Name -> :class:`StrategyInfo` of every usable strategy.
    errors : list of str
        One line per file or entry point that could not be loaded, or name clash.
    notes : dict
        Name -> one line, for a user's strategy that replaces a built-in of the same name.
    ambiguous : dict
        Name -> the sources of two or more user strategies sharing it (refused when run).
    """

    strategies: dict[str, StrategyInfo] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    def add(self, info: StrategyInfo, *, builtin: bool = False) -> None:
        """Register ``info``: a user's strategy replaces a built-in of its name, with a note.

        Two user strategies of one name make the name ambiguous (see :attr:`ambiguous`).
        """
        if info.name in self.ambiguous:
            self.ambiguous[info.name].append(info.source)
            return
        existing = self.strategies.get(info.name)
        if existing is None or existing.cls is info.cls:
            self.strategies[info.name] = info
            return
        if existing.source in self.builtin_sources and not builtin:
            self.notes[info.name] = (
                f"strategy {info.name} from {info.source} replaces the built-in one "
                f"({existing.source}); rename yours to keep both"
            )
            self.strategies[info.name] = info
            return
        self.ambiguous[info.name] = [existing.source, info.source]
        del self.strategies[info.name]
        self.notes.pop(info.name, None)
        self.errors.append(
            f"{info.source}: strategy {info.name} is also defined in {existing.source}; "
            "rename one of them (running that name is refused until then)"
        )

    @property
    def builtin_sources(self) -> set[str]:
        """Sources that are files of the built-in ``strategies/`` folder."""
        return {
            info.source
            for info in self.strategies.values()
            if Path(info.source).parent == BUILTIN_FOLDER
        }


def strategy_parameters(cls: type[Strategy]) -> dict[str, Any]:
    """Return a strategy's parameters and defaults, in declaration order."""
    return dict(cls.params._getpairs())


def _is_plugin(candidate: Any, module: ModuleType) -> bool:
    return (
        inspect.isclass(candidate)
        and issubclass(candidate, Strategy)
        and candidate is not Strategy
        and candidate.__module__ == module.__name__
        and not candidate.__name__.startswith("_")
    )


def _check_interface(cls: type[Strategy], source: str) -> None:
    version = getattr(cls, "INTERFACE_VERSION", INTERFACE_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise PluginError(
            f"{source}: {cls.__name__}.INTERFACE_VERSION must be an integer, got {version!r}"
        )
    if version > INTERFACE_VERSION:
        raise PluginError(
            f"{source}: {cls.__name__} was written for plugin interface {version}, this version "
            f"of backtest supports up to {INTERFACE_VERSION}: upgrade backtest"
        )


def load_file(path: str | Path) -> ModuleType:
    """Import a Python file as a private module.

    Raises
    ------
    PluginError
        Naming the file and keeping the real cause (chained).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise PluginError(f"strategy file {file} does not exist")
    digest = abs(hash(str(file.resolve()))) % 10**10
    module_name = f"_backtest_plugin_{file.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise PluginError(f"{file}: not a loadable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        del sys.modules[module_name]
        location = _error_location(error, file)
        cause = (
            f"called sys.exit({error.code!r})"
            if isinstance(error, SystemExit)
            else f"{type(error).__name__}: {error}"
        )
        raise PluginError(f"{file}{location}: failed to load: {cause}") from error
    return module


def _error_location(error: BaseException, file: Path) -> str:
    if isinstance(error, SyntaxError) and error.lineno:
        return f":{error.lineno}"
    traceback = error.__traceback__
    line = None
    while traceback is not None:
        if Path(traceback.tb_frame.f_code.co_filename) == file:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return f":{line}" if line else ""


def _plugins_in(module: ModuleType, source: str) -> Iterable[StrategyInfo]:
    for _, candidate in inspect.getmembers(module, inspect.isclass):
        if _is_plugin(candidate, module):
            yield StrategyInfo(candidate.__name__, candidate, source)


def _scan_folder(folder: Path, catalogue: Catalogue, *, builtin: bool = False) -> None:
    try:
        if not folder.is_dir():
            return
        files = sorted(folder.glob("*.py"))
    except OSError as error:
        catalogue.errors.append(f"{folder}: cannot be read: {error.strerror or error}")
        return
    for file in files:
        if file.name.startswith("_"):
            continue
        try:
            module = load_file(file)
            found = list(_plugins_in(module, str(file)))
        except PluginError as error:
            catalogue.errors.append(str(error))
            continue
        except Exception as error:  # a module whose members cannot even be listed
            catalogue.errors.append(f"{file}: failed to load: {type(error).__name__}: {error}")
            continue
        for info in found:
            try:
                _check_interface(info.cls, info.source)
            except PluginError as error:
                catalogue.errors.append(str(error))
                continue
            catalogue.add(info, builtin=builtin)


def _scan_entry_points(catalogue: Catalogue) -> None:
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {entry_point.name} = {entry_point.value}"
        try:
            loaded = entry_point.load()
        except Exception as error:
            catalogue.errors.append(f"{source}: failed to load: {type(error).__name__}: {error}")
            continue
        if not (inspect.isclass(loaded) and issubclass(loaded, Strategy)):
            catalogue.errors.append(f"{source}: is not a backtest.Strategy subclass")
            continue
        catalogue.add(StrategyInfo(loaded.__name__, loaded, source))


def discover(working_directory: str | Path | None = None) -> Catalogue:
    """Find every strategy in the built-in folder, ``./strategies`` and entry points."""
    catalogue = Catalogue()
    _scan_folder(BUILTIN_FOLDER, catalogue, builtin=True)
    local = Path(working_directory or Path.cwd()) / "strategies"
    if local.resolve() != BUILTIN_FOLDER:
        _scan_folder(local, catalogue)
    _scan_entry_points(catalogue)
    return catalogue


def resolve_strategy(spec: str, working_directory: str | Path | None = None) -> type[Strategy]:
    """Return the strategy class named by ``spec``.

    Parameters
    ----------
    spec : str
        A discovered strategy name (``"ClusterFade"``), ``path/to/file.py:ClassName`` or
        ``package.module:ClassName``.

    Raises
    ------
    PluginError
        When nothing matches (with close names), or loading fails (naming the file and cause).
    """
    if ":" in spec:
        return _resolve_qualified(spec)
    catalogue = discover(working_directory)
    info = catalogue.strategies.get(spec)
    if info is not None:
        if spec in catalogue.notes:
            logger.warning("note: %s", catalogue.notes[spec])
        return info.cls
    if spec in catalogue.ambiguous:
        sources = " and ".join(catalogue.ambiguous[spec])
        raise PluginError(
            f"strategy {spec} is defined in {sources}; rename one of them, or name the one "
            "you mean as path/to/file.py:ClassName"
        )
    names = sorted(catalogue.strategies)
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    broken = ""
    if catalogue.errors:
        broken = f" ({len(catalogue.errors)} plugin file(s) failed to load: {catalogue.errors[0]})"
    raise PluginError(
        f"unknown strategy {spec!r}: {hint}available: {', '.join(names) or 'none'}; "
        "see `python -m backtest strategies`" + broken
    )


def _resolve_qualified(spec: str) -> type[Strategy]:
    target, _, class_name = spec.rpartition(":")
    if not target or not class_name:
        raise PluginError(
            f"bad strategy reference {spec!r}: use path.py:ClassName or pkg.mod:Class"
        )
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = load_file(target)
        source = target
    else:
        try:
            module = importlib.import_module(target)
        except Exception as error:
            raise PluginError(
                f"module {target}: failed to import: {type(error).__name__}: {error}"
            ) from error
        source = getattr(module, "__file__", None) or target
    cls = getattr(module, class_name, None)
    if cls is None:
        available = [info.name for info in _plugins_in(module, source)]
        close = difflib.get_close_matches(class_name, available, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise PluginError(
            f"{source} has no class {class_name}: {hint}strategies there: "
            f"{', '.join(available) or 'none'}"
        )
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise PluginError(f"{source}:{class_name} is not a backtest.Strategy subclass")
    _check_interface(cls, source)
    return cls


# -- parameters ---------------------------------------------------------------------------


def coerce_values(
    owner: str, defaults: Mapping[str, Any], raw: Mapping[str, Any]
) -> dict[str, Any]:
    """Convert ``raw`` values to the types of ``defaults`` (see :func:`coerce_parameters`).

    Raises
    ------
    ConfigError
        For an unknown name (with "did you mean") or a value of the wrong type.
    """
    converted: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in defaults:
            close = difflib.get_close_matches(name, list(defaults), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(
                f"{owner} has no parameter {name!r}: {hint}"
                f"parameters: {', '.join(defaults) or 'none'}"
            )
        converted[name] = convert_value(f"{owner} parameter {name!r}", value, defaults[name])
    return converted


def coerce_parameters(cls: type[Strategy], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and convert parameter values for ``cls``.

    Strings (from ``-p name=value``) are converted to the type of the parameter's default;
    values already typed (from a TOML file) are checked against it.

    Parameters named in the class attribute ``positive_params`` (periods and bar counts, e.g.
    ``("fast", "slow")``) must be greater than zero.

    Raises
    ------
    ConfigError
        For an unknown name (with "did you mean"), a value of the wrong type, or a zero or
        negative value of a parameter in ``positive_params``.
    """
    values = coerce_values(cls.__name__, strategy_parameters(cls), raw)
    positive = getattr(cls, "positive_params", ())
    for name, value in values.items():
        if name in positive and isinstance(value, int | float) and not value > 0:
            raise ConfigError(
                f"{cls.__name__} parameter {name!r} must be greater than 0 (a period or count "
                f"of bars), got {value!r}"
            )
    return values


#: Largest magnitude of an integer parameter (what NumPy and the kernels can hold).
MAX_INTEGER = 2**63 - 1
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def convert_value(what: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of ``default`` (text from flags, numbers from TOML).

    Parameters
    ----------
    what : str
        How the value is named in messages, e.g. ``"ClusterFade parameter 'band'"``.
    value : object
        The raw value.
    default : object
        The default whose type the value must take (``None``: read a Python literal if
        possible, else keep the text).

    Raises
    ------
    ConfigError
        When the value cannot be read as that type.
    """
    expected = type(default)
    problem = f"{what} expects {expected.__name__} (default {default!r})"
    if default is None:
        parsed = _literal(value) if isinstance(value, str) else value
        if isinstance(parsed, int) and not isinstance(parsed, bool) and abs(parsed) > MAX_INTEGER:
            raise ConfigError(f"{what} {_short(parsed)} is out of range (at most ±2**63 - 1)")
        if isinstance(parsed, float) and not math.isfinite(parsed):
            raise ConfigError(f"{what} must be a finite number, got {parsed!r}")
        return parsed
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{problem}, got {value!r}: use true or false")
    if isinstance(default, int):
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = int(value.strip())
        if number is None:
            raise ConfigError(f"{problem}, got {_short(value)}")
        if abs(number) > MAX_INTEGER:
            raise ConfigError(f"{what} {_short(value)} is out of range (at most ±2**63 - 1)")
        return number
    if isinstance(default, float):
        number = None
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = float(value)
            elif isinstance(value, str):
                number = float(value.strip())
        except (ValueError, OverflowError):
            pass
        if number is None:
            raise ConfigError(f"{problem}, got {_short(value)}")
        if not math.isfinite(number):
            raise ConfigError(f"{what} must be a finite number, got {_short(value)}")
        return number
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ConfigError(f"{problem}, got {value!r}")
    if isinstance(default, (tuple, list)):
        parsed = _literal(value) if isinstance(value, str) else value
        if isinstance(parsed, (tuple, list)):
            return expected(parsed)
        raise ConfigError(f"{problem}, got {value!r}: write e.g. {default!r}")
    return value


def _short(value: Any) -> str:
    """``repr`` of a value, cut to 60 characters (a 400-digit number is not echoed whole)."""
    if isinstance(value, int) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)"


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignments(items: Iterable[str], flag: str = "-p") -> dict[str, str]:
    """Parse ``name=value`` strings from the command line.

    Raises
    ------
    ConfigError
        When an item has no ``=`` or an empty name.
    """
    parsed: dict[str, str] = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name.strip():
            example = f"{item.strip()}=true" if item.strip().isidentifier() else "band=0.03"
            raise ConfigError(f"{flag} {item!r}: expected name=value, e.g. {flag} {example}")
        parsed[name.strip()] = value
    return parsed
