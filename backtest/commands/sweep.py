"""``backtest sweep``: run a strategy over a parameter grid, optionally walk-forward, on Dask."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Any

from backtest.commands.run import add_run_arguments
from backtest.errors import ConfigError
from backtest.sweep.limits import MAX_GRID_RUNS

DEFAULT_SWEEPS = Path("sweeps")


def register(subparsers: Any) -> None:
    """Add the ``sweep`` subcommand."""
    parser = subparsers.add_parser(
        "sweep",
        help="run a strategy over a parameter grid (local cores or a Dask cluster)",
        description=(
            "Backtest every combination of a parameter grid (-g name=v1,v2 or a [sweep] table\n"
            "in --config) over strategy parameters, map parameters (map.NAME), run settings\n"
            "(leverage, symbol, timeframe, ...) and periods (period=SINCE..UNTIL), on local\n"
            "worker processes (--workers, default one per core) or a Dask cluster (--scheduler).\n"
            "Writes a ranked table (results.csv/.parquet), a sweep page (sweep.html) and, on\n"
            "request, the best runs' full reports. Starting the same sweep again resumes it:\n"
            "finished runs are not redone."
        ),
        epilog=(
            "examples:\n"
            "  backtest sweep --strategy ClusterFade -g band=0.02,0.03,0.05 -g exposure=0.5,1,2\n"
            "  backtest sweep -g band=0.02,0.03 -g map.bucket_width=0.002,0.004 --workers 2\n"
            "  backtest sweep -g band=0.02,0.03 --walk-forward 5d:2d --rank-by Sharpe\n"
            "  backtest sweep --config sweep.toml --scheduler tcp://10.0.0.5:8786 "
            "--reports-top 3"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument(
        "-g",
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="an axis of the grid (repeatable); overrides the same name in [sweep]",
    )
    sweep.add_argument(
        "--rank-by",
        default="Sharpe",
        metavar="METRIC",
        help="metric to rank by; a unique part of its name is enough (default Sharpe)",
    )
    sweep.add_argument(
        "--ascending",
        action="store_true",
        help="rank smaller values of the metric first (default: larger first)",
    )
    sweep.add_argument(
        "--walk-forward",
        metavar="TRAIN:TEST",
        help="rolling windows, e.g. 5d:2d: the best parameters of each train span run on the "
        "next test span; the test spans' equity is stitched (default: no walk-forward)",
    )
    sweep.add_argument(
        "--allow-large-grid",
        action="store_true",
        help=f"run a grid of more than {MAX_GRID_RUNS:,} combinations (default: refused)",
    )
    where = sweep.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local worker processes (default and maximum: one per core)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster, e.g. tcp://10.0.0.5:8786 (its workers need this "
        "package and the data; default: local workers)",
    )

    add_run_arguments(parser, swept=True)

    output = parser.add_argument_group("output")
    output.add_argument(
        "--config", help="TOML run file with an optional [sweep] table (default: none)"
    )
    output.add_argument(
        "--out",
        metavar="DIR",
        help="sweep folder (default sweeps/<strategy>-<grid hash>; the same folder resumes)",
    )
    output.add_argument(
        "--reports-top",
        type=int,
        default=0,
        metavar="K",
        help="write full reports of the K best (default 0)",
    )
    output.add_argument(
        "--heatmap",
        metavar="X,Y",
        help="two axes for the page's heatmap (default: the first two that vary)",
    )
    output.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    verbosity = output.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="print debug logging")
    parser.set_defaults(handler=handle)


def build_spec(args: argparse.Namespace) -> Any:
    """Turn the parsed arguments into a :class:`~backtest.sweep.driver.SweepSpec`."""
    from backtest.commands.run import build_settings
    from backtest.config import SWEEP_TABLE, read_toml
    from backtest.plugins import resolve_strategy
    from backtest.sweep.driver import SweepSpec
    from backtest.sweep.grid import (
        build_axes,
        grid_from_table,
        parse_grid_options,
        run_field_defaults,
    )
    from backtest.sweep.walkforward import parse_walk_forward

    settings = build_settings(args)
    table = read_toml(args.config).get(SWEEP_TABLE, {}) if args.config else {}
    grid = {**grid_from_table(table), **parse_grid_options(args.grid)}
    if "data_dir" not in grid:  # refused once here, not by every run of the grid
        from backtest.market.store import check_data_dir

        check_data_dir(settings.get("data_dir"))
    strategy_name = settings.get("strategy") or run_field_defaults()["strategy"]
    strategy_class = resolve_strategy(str(strategy_name))
    axes = build_axes(grid, strategy_class)
    walk_forward = parse_walk_forward(args.walk_forward) if args.walk_forward else None
    if not axes and walk_forward is None:
        raise ConfigError(
            "nothing to sweep: give axes with -g NAME=V1,V2 (e.g. -g band=0.02,0.03) or a "
            "[sweep] table in --config, or use `backtest run` for one run"
        )
    if args.reports_top < 0:
        raise ConfigError(f"--reports-top {args.reports_top}: give 0 or more")
    return SweepSpec(
        base=settings,
        axes=tuple(axes),
        rank_by=args.rank_by,
        ascending=args.ascending,
        walk_forward=walk_forward,
        allow_large_grid=args.allow_large_grid,
    )


def default_folder(spec: Any) -> Path:
    """``sweeps/<strategy>-<hash of the grid>``: the same sweep lands in the same folder."""
    from backtest.sweep.store import run_key

    identity = {
        "base": dict(spec.base),
        "axes": {axis.name: list(axis.values) for axis in spec.axes},
        "walk_forward": spec.walk_forward.text if spec.walk_forward else None,
    }
    name = str(spec.base.get("strategy") or "default").rpartition(":")[2]
    name = re.sub(r"[^0-9A-Za-z_-]+", "_", name).strip("_") or "sweep"
    return DEFAULT_SWEEPS / f"{name}-{run_key(identity)[:10]}"


def handle(args: argparse.Namespace) -> int:
    """Run the sweep, write its folder and print the best runs."""
    from backtest.commands.logs import configure_logging

    configure_logging(verbose=args.verbose, quiet=args.quiet)
    if not args.verbose:  # Dask's start/stop chatter; its errors (a lost worker) still show
        import distributed  # noqa: F401  (configures its loggers on import: quieten after)

        logging.getLogger("distributed").setLevel(logging.ERROR)
    from backtest.strict_json import dumps
    from backtest.sweep.driver import SweepDriver
    from backtest.sweep.execute import check_scheduler_address, open_client
    from backtest.sweep.outputs import write_outputs
    from backtest.sweep.store import SweepStore

    spec = build_spec(args)
    heatmap = _heatmap_option(spec, args.heatmap)
    scheduler = check_scheduler_address(args.scheduler) if args.scheduler else None
    folder = Path(args.out) if args.out else default_folder(spec)
    show_progress = not (args.quiet or args.json)
    with SweepStore(folder) as store, open_client(args.workers, scheduler) as client:
        driver = SweepDriver(spec, client, store, progress=show_progress)
        outcome = driver.run()
        files = write_outputs(
            outcome, store, driver.runner, reports_top=args.reports_top, heatmap=heatmap
        )
    warnings = axis_warnings(outcome.table, outcome.spec.axis_names)
    for warning in warnings:
        logging.getLogger("backtest.sweep").warning(warning)
    if args.json:
        print(dumps({**_summary(outcome, files), "warnings": warnings}, indent=2))
    elif not args.quiet:
        print(_console_text(outcome, files))
    if outcome.total and outcome.failed == outcome.total:
        errors = outcome.table["error"].dropna()
        first = errors.iloc[0] if len(errors) else "unknown"
        print(f"error: all {outcome.total} runs failed; first error: {first}", file=sys.stderr)
        return 1
    return 0


def axis_warnings(table: Any, axis_names: list[str]) -> list[str]:
    """One warning per axis that left every result metric unchanged (see ``unchanged_axes``)."""
    from backtest.sweep.ranking import RESULT_METRICS, unchanged_axes

    messages = []
    for axis in unchanged_axes(table, axis_names):
        hint = (
            ": the leverage setting only sets the margin locked (and the liquidation price); "
            "the strategy sizes its positions, so sweep its exposure (e.g. -g exposure=0.5,1,2) "
            "to change their size"
            if axis == "leverage"
            else ": the strategy may not read it, or it never made a difference in this period"
        )
        shown = ", ".join(name for name in RESULT_METRICS if name in table.columns)
        messages.append(f"warning: axis {axis} left every result metric unchanged ({shown}){hint}")
    return messages


def _heatmap_option(spec: Any, text: str | None) -> list[str] | None:
    """Check ``--heatmap X,Y`` against the sweep's axes before anything runs."""
    if not text:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in spec.axis_names]
    if unknown or not 1 <= len(names) <= 2:
        raise ConfigError(
            f"--heatmap {text}: give one or two of the sweep's axes "
            f"({', '.join(spec.axis_names) or 'none'})"
        )
    return names


def _summary(outcome: Any, files: Any) -> dict[str, Any]:
    table = outcome.table
    best = table.iloc[0].to_dict() if len(table) and table["rank"].notna().any() else None
    return {
        "folder": str(outcome.folder),
        "page": str(files.page),
        "table": str(files.table),
        "metric": outcome.metric,
        "runs": outcome.total,
        "executed": outcome.executed,
        "skipped": outcome.skipped,
        "failed": outcome.failed,
        "best": best,
        "oos_return_pct": outcome.oos_return_pct if outcome.windows is not None else None,
        "reports": [str(entry.folder) for entry in files.reports if entry.folder is not None],
    }


def _console_text(outcome: Any, files: Any) -> str:
    table = outcome.table
    columns = ["rank", *outcome.spec.axis_names]
    columns += [name for name in ("phase", "window") if name in table]
    if outcome.metric and outcome.metric in table:
        columns.append(outcome.metric)
    columns.append("status")
    lines = [
        f"{outcome.total} runs: {outcome.total - outcome.failed} complete, {outcome.failed} "
        f"failed ({outcome.executed} run now, {outcome.skipped} found done)"
    ]
    if outcome.windows is not None:
        windows = outcome.windows.drop(columns=["test_key"], errors="ignore")
        windows = windows.drop(columns=["train_until", "test_until"], errors="ignore")
        lines.append(_frame_text(windows))
    else:
        lines.append(_frame_text(table[columns].head(10)))
    failed = table[table["status"] != "complete"]
    for _, row in failed.head(3).iterrows():
        values = ", ".join(f"{name}={row[name]}" for name in outcome.spec.axis_names)
        lines.append(f"failed: {values}: {row.get('error')}")
    if outcome.windows is not None:
        lines.append(f"walk-forward out-of-sample return: {outcome.oos_return_pct:+.2f} %")
    for entry in files.reports:
        lines.append(
            f"report {entry.position}: {entry.folder / 'report.html'}"
            if entry.folder is not None
            else f"report {entry.position} failed: {entry.error}"
        )
    lines.append(f"table: {files.table}")
    lines.append(f"page: {files.page}")
    return "\n".join(lines)


def _frame_text(frame: Any) -> str:
    return frame.to_string(index=False, na_rep="-", float_format=lambda value: f"{value:.4g}")
