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

#: Kept in step with backtest.sweep.search and backtest.sweep.engines (imported lazily: `sweep
#: --help` stays light); a test checks they agree.
SEARCH_METHODS = ("grid", "random", "tpe")
ENGINES = ("auto", "event", "array")
DEFAULT_TRIALS = 100
DEFAULT_BATCH = 16
DEFAULT_RANK_BY = "Sharpe"

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
        "-a",
        "--axis",
        dest="grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="an axis (repeatable): values V1,V2,... or, with --search, a range LOW:HIGH or "
        "log:LOW:HIGH; overrides the same name in [sweep] (-a/--axis is the same option)",
    )
    sweep.add_argument(
        "--rank-by",
        metavar="METRIC",
        help="metric to rank by; a unique part of its name is enough (default Sharpe)",
    )
    sweep.add_argument(
        "--ascending",
        action="store_true",
        help="rank smaller values of the metric first (default: larger first, smaller first "
        "for metrics where smaller is better, e.g. Volatility, Fees)",
    )
    sweep.add_argument(
        "--search",
        choices=SEARCH_METHODS,
        default="grid",
        help="grid: every combination; random or tpe: --trials parameter sets asked from "
        "Optuna over ranges (-g fast=5:50, -g x=0.005:0.05, -g x=log:1e-4:1e-1) and lists "
        "(default grid)",
    )
    sweep.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help=f"trials of a search (per training window with --walk-forward) (default "
        f"{DEFAULT_TRIALS})",
    )
    sweep.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="seed of a search; the same seed gives the same trials (default 0)",
    )
    sweep.add_argument(
        "--objective",
        metavar="METRIC",
        help="metric a search optimises and the table ranks by, maximised or minimised as "
        "the metric calls for (default: --rank-by, i.e. Sharpe)",
    )
    sweep.add_argument(
        "--search-batch",
        type=int,
        metavar="N",
        help=f"trials asked and run at a time; part of the search's identity, independent of "
        f"the workers (default {DEFAULT_BATCH})",
    )
    sweep.add_argument(
        "--min-trades",
        type=int,
        metavar="N",
        help="constraint: runs with fewer closed trades are flagged and never ranked "
        "(default: none)",
    )
    sweep.add_argument(
        "--max-drawdown",
        type=float,
        metavar="PCT",
        help="constraint: runs whose maximum drawdown is deeper than PCT %% are flagged and "
        "never ranked (default: none)",
    )
    sweep.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="auto: the array path when the strategy has an array form and runs trade one "
        "symbol, else the event engine; event or array to force one (default auto)",
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
    from backtest.sweep.constraints import Constraints
    from backtest.sweep.driver import SweepSpec
    from backtest.sweep.engines import choose_engine, sweep_portfolio, sweep_single
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
    search = _search_spec(args, grid, strategy_class)
    axes = [] if search is not None else build_axes(grid, strategy_class)
    walk_forward = parse_walk_forward(args.walk_forward) if args.walk_forward else None
    if search is None and not axes and walk_forward is None:
        raise ConfigError(
            "nothing to sweep: give axes with -g NAME=V1,V2 (e.g. -g band=0.02,0.03) or a "
            "[sweep] table in --config, or use `backtest run` for one run"
        )
    if args.reports_top < 0:
        raise ConfigError(f"--reports-top {args.reports_top}: give 0 or more")
    rank_by, ascending = _ranking(args, search is not None)
    constraints = Constraints(min_trades=args.min_trades, max_drawdown=args.max_drawdown)
    symbols = [
        value for axis in _axes_of(axes, search) if axis.field == "symbol" for value in axis.values
    ]
    engine = choose_engine(
        args.engine,
        strategy_class,
        portfolio=sweep_portfolio(settings, symbols),
        single=sweep_single(settings, symbols),
    )
    return SweepSpec(
        base=settings,
        axes=tuple(axes),
        rank_by=rank_by,
        ascending=ascending,
        walk_forward=walk_forward,
        allow_large_grid=args.allow_large_grid,
        constraints=constraints if constraints.active else None,
        search=search,
        engine=engine,
    )


def _axes_of(axes: Any, search: Any) -> list[Any]:
    return [item.axis for item in search.axes] if search is not None else list(axes)


def _search_spec(args: argparse.Namespace, grid: dict[str, Any], strategy_class: Any) -> Any:
    """The SearchSpec of ``--search random|tpe`` (None for a grid), checked before any run."""
    from backtest.sweep.search import SearchSpec, build_search_axes, range_axes

    if args.search == "grid":
        ranges = range_axes(grid)
        if ranges:
            raise ConfigError(
                f"sweep axis {ranges[0]}={grid[ranges[0]][0]} is a range, which a grid cannot "
                "run: add --search random or --search tpe (with --trials N), or list values "
                "(NAME=V1,V2)"
            )
        for option in ("trials", "seed", "search_batch", "objective"):
            if getattr(args, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise ConfigError(
                    f"{flag} belongs to a search: add --search random or --search tpe, or drop "
                    f"{flag} (a grid ranks by --rank-by)"
                )
        return None
    if not grid:
        raise ConfigError(
            f"--search {args.search}: nothing to search; give ranges or lists with -g, e.g. "
            "-g fast=5:50 -g band=0.02,0.03"
        )
    return SearchSpec(
        method=args.search,
        trials=DEFAULT_TRIALS if args.trials is None else args.trials,
        seed=0 if args.seed is None else args.seed,
        axes=tuple(build_search_axes(grid, strategy_class)),
        batch_size=DEFAULT_BATCH if args.search_batch is None else args.search_batch,
    )


def _ranking(args: argparse.Namespace, searching: bool) -> tuple[str, bool]:
    """The metric to rank by (a search's objective) and whether smaller is better.

    The name is checked against the report's metrics before any run (the runs' own names are
    used once they exist, so a currency other than USDT resolves the same way).
    """
    from backtest.sweep.ranking import minimised, resolve_metric

    if args.objective is not None and args.rank_by is not None and args.objective != args.rank_by:
        raise ConfigError(
            f"--objective {args.objective!r} and --rank-by {args.rank_by!r} disagree: a search "
            "ranks by its objective; give one of them"
        )
    requested = args.objective or args.rank_by or DEFAULT_RANK_BY
    option = "--objective" if searching else "--rank-by"
    known = report_metric_names()
    if known is None:
        return requested, bool(args.ascending)
    resolved = resolve_metric(requested, known, option=option)
    return requested, bool(args.ascending) or minimised(resolved)


def report_metric_names() -> list[str] | None:
    """The numeric metric names ``backtest run`` reports (from a flat two-bar run), or None."""
    try:
        import pandas as pd

        from backtest.report import compute_metrics
        from backtest.results import Results
        from backtest.sweep.ranking import numeric_metric_names

        index = pd.date_range("2025-01-01", periods=2, freq="5min", tz="UTC")
        results = Results(config={}, meta={}, equity=pd.DataFrame({"value": [1.0, 1.0]}, index))
        return numeric_metric_names(compute_metrics(results))
    except Exception:  # the check is a convenience: the runs' own names decide later
        return None


def default_folder(spec: Any) -> Path:
    """``sweeps/<strategy>-<hash of the grid>``: the same sweep lands in the same folder."""
    from backtest.sweep.store import run_key

    identity: dict[str, Any] = {
        "base": dict(spec.base),
        "axes": {axis.name: list(axis.values) for axis in spec.axes},
        "walk_forward": spec.walk_forward.text if spec.walk_forward else None,
    }
    if spec.search is not None:  # the objective and constraints steer which trials are asked
        identity["search"] = spec.manifest()["search"]
        identity["constraints"] = spec.constraints.manifest() if spec.constraints else None
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
    from backtest.sweep.backends import backend_for
    from backtest.sweep.driver import make_driver
    from backtest.sweep.execute import check_scheduler_address, open_client
    from backtest.sweep.outputs import write_outputs
    from backtest.sweep.store import SweepStore

    spec = build_spec(args)
    heatmap = _heatmap_option(spec, args.heatmap)
    scheduler = check_scheduler_address(args.scheduler) if args.scheduler else None
    folder = Path(args.out) if args.out else default_folder(spec)
    show_progress = not (args.quiet or args.json)
    backend = backend_for(spec.engine.engine if spec.engine and args.engine != "auto" else "auto")
    with SweepStore(folder) as store, open_client(args.workers, scheduler) as client:
        if not args.quiet and spec.engine is not None:  # once the sweep can start
            print(spec.engine.text, file=sys.stderr)
        driver = make_driver(spec, client, store, backend=backend, progress=show_progress)
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
    if spec.search is not None:
        raise ConfigError(
            f"--heatmap {text}: a search samples its settings, which make no grid to draw; "
            "drop --heatmap"
        )
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
        "engine": outcome.spec.engine.engine if outcome.spec.engine else None,
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
    columns += [name for name in ("trial", "phase", "window") if name in table]
    if outcome.metric and outcome.metric in table:
        columns.append(outcome.metric)
    columns.append("status")
    columns += [name for name in ("violations",) if name in table]
    lines = [
        f"{outcome.total} runs: {outcome.total - outcome.failed} complete, {outcome.failed} "
        f"failed ({outcome.executed} run now, {outcome.skipped} found done)"
    ]
    if outcome.windows is not None:
        windows = outcome.windows.drop(columns=["test_key"], errors="ignore")
        windows = windows.drop(columns=["train_until", "test_until"], errors="ignore")
        lines.append(_frame_text(windows))
    else:
        shown = table[columns].head(10)
        if "violations" in shown:  # runs breaking a constraint: no rank, the reason shown
            shown = shown.assign(
                rank=shown["rank"].astype(object).where(shown["rank"].notna(), "-"),
                violations=shown["violations"].fillna("").astype(str),
            )
        lines.append(_frame_text(shown))
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
