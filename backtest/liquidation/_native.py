"""Import of the compiled kernels, with a message that says how to build them when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from backtest.errors import BuildError

BUILD_HINT = (
    "run `pip install -e .` in the project folder (it cythonizes ext/*.pyx; needs a C compiler); "
    "set BACKTEST_DEBUG=1 for a build with bounds checks"
)


def load_kernel(name: str) -> ModuleType:
    """Import the compiled module ``backtest.liquidation.<name>``.

    Parameters
    ----------
    name : str
        Module name inside ``backtest.liquidation``, e.g. ``"_prices"``.

    Returns
    -------
    module
        The compiled extension module.

    Raises
    ------
    BuildError
        When the extension was not built, with the command that builds it.
    """
    qualified = f"backtest.liquidation.{name}"
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as error:
        if error.name != qualified:
            raise
        raise BuildError(f"compiled kernel {qualified} is missing: {BUILD_HINT}") from None
