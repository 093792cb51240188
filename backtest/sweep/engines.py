"""Which engine a sweep's runs use: the array path when the strategy has one, else the event engine.

``backtest sweep --engine auto|event|array`` (auto by default):

``auto``
    the array path (:func:`backtest.arrays.run_arrays`) when the strategy has an array form
    (:func:`backtest.arrays.has_array_form`) and every run trades one symbol; the event
    engine (:func:`backtest.engine.run`) otherwise;
``event``
    always the event engine;
``array``
    always the array path; refused (one line, before anything runs) for a strategy without
    an array form or a portfolio sweep.

Both give the same orders, fills and metrics (the array path is checked against the event
broker), so a sweep's table does not depend on the engine, only its speed does.  The choice is
printed once and recorded in ``sweep.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backtest.errors import ConfigError

AUTO, EVENT, ARRAY = "auto", "event", "array"
ENGINES: tuple[str, ...] = (AUTO, EVENT, ARRAY)


@dataclass(frozen=True)
class EngineChoice:
    """The engine a sweep's runs use and why."""

    engine: str
    reason: str

    @property
    def text(self) -> str:
        """``engine: array (ClusterFade has an array form and every run trades one symbol)``."""
        return f"engine: {self.engine} ({self.reason})"

    def manifest(self) -> dict[str, str]:
        """A JSON-friendly description for ``sweep.json``."""
        return {"engine": self.engine, "reason": self.reason}


def array_functions() -> tuple[Callable[[type], bool], Callable[..., Any]] | None:
    """``(has_array_form, run_arrays)`` of :mod:`backtest.arrays`, or None when not installed."""
    try:
        from backtest.arrays import has_array_form, run_arrays
    except ImportError:
        return None
    return has_array_form, run_arrays


def has_array_form(strategy_class: type | None) -> bool:
    """Whether ``strategy_class`` can run on the array path."""
    functions = array_functions()
    if functions is None or strategy_class is None:
        return False
    try:
        return bool(functions[0](strategy_class))
    except Exception:  # a strategy the check cannot read runs on the event engine
        return False


def is_portfolio(symbol: Any) -> bool:
    """Whether a ``symbol`` setting names several symbols (a list, or text with commas)."""
    if isinstance(symbol, str):
        return len([part for part in symbol.split(",") if part.strip()]) > 1
    if isinstance(symbol, list | tuple):
        return len(symbol) > 1
    return False


def sweep_portfolio(base: Mapping[str, Any], symbol_values: Sequence[Any] = ()) -> bool:
    """Whether any run of a sweep is a portfolio (the ``symbol`` axis, else the base symbol)."""
    return any(is_portfolio(value) for value in (symbol_values or [base.get("symbol")]))


def sweep_single(base: Mapping[str, Any], symbol_values: Sequence[Any] = ()) -> bool:
    """Whether any run of a sweep trades one symbol (the ``symbol`` axis, else the base)."""
    return any(not is_portfolio(value) for value in (symbol_values or [base.get("symbol")]))


def choose_engine(
    requested: str,
    strategy_class: type | None,
    *,
    portfolio: bool = False,
    single: bool | None = None,
) -> EngineChoice:
    """The engine for a sweep of ``strategy_class`` (see the module docstring).

    ``portfolio``/``single``: whether some runs trade several symbols / one symbol (``single``
    defaults to ``not portfolio``); with both and an array form, ``auto`` uses each engine
    where it can.

    Raises
    ------
    ConfigError
        For an unknown ``requested`` engine, or ``array`` when the array path cannot run it.
    """
    if requested not in ENGINES:
        raise ConfigError(f"--engine {requested!r}: choose one of {', '.join(ENGINES)}")
    name = getattr(strategy_class, "__name__", "the strategy")
    if requested == EVENT:
        return EngineChoice(EVENT, "--engine event")
    available = array_functions() is not None
    array_form = has_array_form(strategy_class)
    if array_form and not portfolio:
        why = "--engine array" if requested == ARRAY else "auto"
        return EngineChoice(
            ARRAY, f"{why}: {name} has an array form and every run trades one symbol"
        )
    if single is None:
        single = not portfolio
    if array_form and single and requested == AUTO:  # a symbol axis mixing both kinds
        return EngineChoice(
            f"{ARRAY} and {EVENT}",
            f"auto: {name} has an array form: array for the one-symbol runs, event for the "
            "portfolio runs",
        )
    if not available:
        reason = "the array path (backtest.arrays.run_arrays) is not installed"
    elif not array_form:
        reason = f"{name} has no array form (no decide classmethod)"
    else:
        reason = "portfolio runs (several symbols) run on the event engine only"
    if requested == ARRAY:
        raise ConfigError(f"--engine array: {reason}; use --engine auto or event")
    return EngineChoice(EVENT, f"auto: {reason}")
