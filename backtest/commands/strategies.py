"""``backtest strategies``: list the discovered strategy plugins."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from backtest import strict_json


def register(subparsers: Any) -> None:
    """Add the ``strategies`` subcommand."""
    parser = subparsers.add_parser(
        "strategies",
        help="list strategy plugins with their parameters",
        description=(
            "List the strategies found in the built-in strategies/ folder, ./strategies and the "
            "'backtest.strategies' entry-point group, with each parameter's default and the "
            "first line of the docstring."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Print the catalogue; files that failed to load are listed as broken with their error.

    They are also repeated as warnings on standard error, where notes about user strategies
    that replace a built-in of the same name go too.
    """
    from backtest.plugins import discover

    catalogue = discover()
    if args.json:
        listing = [
            {
                "name": info.name,
                "summary": info.summary,
                "source": info.source,
                "form": info.form,
                "parameters": {k: _jsonable(v) for k, v in info.parameters.items()},
            }
            for info in catalogue.strategies.values()
        ]
        print(strict_json.dumps(listing, indent=2))
    else:
        for info in sorted(catalogue.strategies.values(), key=lambda item: item.name):
            print(f"{info.name}  —  {info.summary or '(no docstring)'}")
            print(f"    from {info.source}")
            print(f"    form: {_FORMS[info.form]}")
            if info.name in catalogue.notes:
                print("    (replaces the built-in strategy of this name)")
            for name, default in info.parameters.items():
                print(f"    -p {name}={default!r}")
            print()
        for error in catalogue.errors:
            print(f"broken: {error}")
    for note in catalogue.notes.values():
        print(f"note: {note}", file=sys.stderr)
    for error in catalogue.errors:
        print(f"warning: {error}", file=sys.stderr)
    return 1 if catalogue.errors and not catalogue.strategies else 0


#: How ``strategies`` describes each decision form.
_FORMS = {
    "event": "event (next, bar by bar)",
    "array": "array (decide over whole arrays; replayed on the event engine)",
    "both": "both (next and decide: sweeps and --engine array use decide)",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return repr(value)
