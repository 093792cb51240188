"""``backtest report``: re-render a saved run's report without re-running it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="re-render the report of a saved run",
        description=(
            "Read a run folder written by `backtest run` (results.json and the Parquet tables) "
            "and write its report again: report.html (self-contained, opens offline), "
            "metrics.json, equity.csv, trades.csv and report.png. Nothing is re-run."
        ),
        epilog="example:\n  backtest report reports/20251010-ClusterFade-BTC",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", help="run folder (reports/<run-id>)")
    parser.add_argument(
        "--output", metavar="DIR", help="write the report files here instead of the run folder"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only the report's path, no summary"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Load the run, write its report files and print the summary and the page's path."""
    from backtest.errors import DataError
    from backtest.report import compute_metrics, format_summary, write_report
    from backtest.results import Results

    folder = Path(args.folder)
    if not folder.is_dir():
        raise DataError(
            f"{folder} is not a folder: pass a run folder written by `backtest run` "
            "(reports/<run-id>)"
        )
    results = Results.load(folder)
    page = write_report(results, Path(args.output) if args.output else folder)
    if not args.quiet:
        print(format_summary(compute_metrics(results)))
    print(f"report: {page}")
    return 0
