"""``backtest report``: re-render a saved run's report without re-running it."""

from __future__ import annotations

import argparse
import os
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
        "--map-lines",
        metavar="NAMES",
        help="map lines to draw as panels under the price chart, comma-separated, e.g. "
        "long_band_notional,short_band_notional,cascade_risk (default: none)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only errors (no summary, no path)"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Load the run, write its report files and print the summary and the page's path."""
    from backtest.errors import ConfigError, DataError
    from backtest.folders import REPORT, check_writable_target, clean_temporaries, write_marker
    from backtest.report import compute_metrics, format_summary, write_report

    folder = Path(args.folder)
    results = load_run_folder(folder)
    output, elsewhere = folder, False
    if args.output and Path(os.path.abspath(args.output)) != Path(os.path.abspath(folder)):
        output, elsewhere = check_writable_target(args.output, (REPORT,), "--output"), True
    clean_temporaries(output)
    try:
        lines = [name for name in (args.map_lines or "").split(",") if name.strip()]
        page = write_report(results, output, lines)
        if elsewhere:
            write_marker(output, REPORT)
    except OSError as error:
        raise ConfigError(
            f"cannot write the report to {output}: {error.strerror or error}; "
            "pass --output DIR with a writable folder"
        ) from error
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise DataError(
            f"{folder} is a damaged run folder ({type(error).__name__}: {error}): re-run the "
            "backtest to write it again"
        ) from error
    if not args.quiet:
        print(format_summary(compute_metrics(results)))
        print(f"report: {page}")
    return 0


def load_run_folder(folder: Path) -> Any:
    """Read a complete run folder written by ``backtest run`` (marker, results, tables).

    Raises
    ------
    DataError
        One line naming what is missing or damaged and what to do.
    """
    from backtest.errors import DataError
    from backtest.folders import MARKER_FILE, RUN, marker_kind
    from backtest.results import REQUIRED_TABLES, Results

    if not folder.is_dir():
        raise DataError(
            f"{folder} is not a folder: pass a run folder written by `backtest run` "
            "(reports/<run-id>)"
        )
    if not (folder / "results.json").is_file():
        raise DataError(
            f"{folder} holds no saved run (no results.json): pass a folder written by "
            "`backtest run` (reports/<run-id>)"
        )
    missing = [name for name in REQUIRED_TABLES if not (folder / f"{name}.parquet").is_file()]
    if missing:
        raise DataError(
            f"{folder} is an incomplete run folder ({', '.join(missing)} missing): re-run the "
            "backtest to write it again"
        )
    if marker_kind(folder) != RUN:
        raise DataError(
            f"{folder} is an incomplete run folder (no {MARKER_FILE} marker: the run was "
            "interrupted while saving, or the folder predates markers): re-run the backtest"
        )
    try:
        return Results.load(folder)
    except OSError as error:
        raise DataError(f"cannot read {folder}: {error.strerror or error}") from error
