"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package lists ``public name -> defining module`` and gets a module ``__getattr__`` and
``__dir__`` that import the defining module on first use, so ``import backtest`` (and the
command line's ``--help``) does not pay for backtrader, pandas, plotly or the kernels.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package`` re-exporting ``exports`` lazily.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping
        Public name -> module that defines it.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 (the PEP 562 hook's name)
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(exports)

    return __getattr__, __dir__
