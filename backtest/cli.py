"""The command line: ``python -m backtest <command>`` (or the ``backtest`` console script).

Each subcommand lives in its own module under :mod:`backtest.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function taking the
parsed arguments and returning an exit status.  Handlers import the heavy libraries lazily, so
``--help`` stays fast.  Errors the user can fix (:class:`backtest.errors.BacktestError`) end in
one line on standard error and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from backtest import __version__
from backtest.errors import BacktestError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "run",
    "download",
    "import_series",
    "heatmap",
    "strategies",
    "report",
    "sweep",
    "price",
    "validate",
    "calibrate",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="backtest",
        description=(
            "Liquidation-aware backtesting of crypto perpetual futures: estimate where leveraged "
            "positions would be liquidated, trade around those clusters in backtrader, and "
            "read the report."
        ),
        epilog="Run `backtest <command> --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"backtest.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"backtest.commands.{name}":
                continue  # command not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        Exit status: 0 on success, 2 on a user error, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return int(handler(args) or 0)
    except BacktestError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `backtest strategies | head`): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
