"""Console logging of the commands: the program's own steps, not its libraries' debug output."""

from __future__ import annotations

import logging
import sys


def configure_logging(*, verbose: bool = False, quiet: bool = False) -> None:
    """Send log lines to standard error: ``backtest.*`` at the chosen level, others at WARNING.

    ``-v`` shows this program's steps (loading, map, engine, report: DEBUG lines of the
    ``backtest`` loggers); third-party libraries (backtrader, ccxt, matplotlib, Dask …) stay at
    WARNING, so their debug chatter never floods the console.  ``-q`` keeps warnings and errors.
    """
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.getLogger("backtest").setLevel(level)
