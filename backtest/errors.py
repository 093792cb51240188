"""Exceptions a user can cause, each carrying one line that says what was wrong and what to do.

The command line prints ``error: <message>`` for any :class:`BacktestError` and exits with
status 2; it never shows a traceback for them.  Library callers can catch the specific classes.
Input errors also derive from :class:`ValueError` so that plain validation code keeps working.
"""

from __future__ import annotations


class BacktestError(Exception):
    """Base class of every error caused by the user's input or environment."""

    exit_code: int = 2


class ConfigError(BacktestError, ValueError):
    """A bad argument, parameter, option or configuration file."""


class DataError(BacktestError, ValueError):
    """Missing, malformed, corrupt or out-of-range market data."""


class ExchangeError(BacktestError):
    """An exchange refused a request or could not be reached (after retries)."""


class PluginError(BacktestError):
    """A strategy plugin could not be found, loaded or run."""


class BuildError(BacktestError, ImportError):
    """A compiled kernel is missing: the package was not built."""
