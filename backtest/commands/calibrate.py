"""``backtest calibrate``: fit the liquidation map to recorded liquidations, write a profile."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from backtest.commands.validate import add_data_arguments
from backtest.errors import ConfigError

DEFAULT_OUT = Path("reports") / "calibrate"


def register(subparsers: Any) -> None:
    """Add the ``calibrate`` subcommand."""
    parser = subparsers.add_parser(
        "calibrate",
        help="fit the liquidation map's parameters to recorded liquidations (Optuna)",
        description=(
            "Fit the map's parameters (half-life, leverage mix, long-share model, entry\n"
            "spread, round-level weight; participation in closed form) on a training window\n"
            "against recorded liquidations with Optuna's seeded TPE sampler, then score the\n"
            "result on the following test window.  Objective: mean of the Spearman rank\n"
            "correlations (long, short, total) and the long-share correlation on the busiest\n"
            "quarter of bars.  Writes a map profile (--profile) that run, sweep, heatmap and\n"
            "validate accept with --map-profile, and the scorecards into --out."
        ),
        epilog=(
            "examples:\n"
            "  backtest calibrate --symbol BTC/USDT:USDT --symbol ETH/USDT:USDT \\\n"
            "      --train-since 2025-01-01 --train-until 2025-07-01 --test-until 2025-11-15 \\\n"
            "      --trials 300 --profile profiles/binance.toml\n"
            "  backtest calibrate --train-until 2025-07-01 --workers 2 --space "
            "half_life_hours=6:120:log"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_arguments(parser, several_symbols=True)
    fit = parser.add_argument_group("fit")
    fit.add_argument(
        "--train-since", help="start of the training window (default: data start + warm-up)"
    )
    fit.add_argument(
        "--train-until", required=True, help="end of the training window = start of the test"
    )
    fit.add_argument("--test-until", help="end of the test window (default: end of the data)")
    fit.add_argument("--trials", type=int, default=200, help="Optuna trials (default 200)")
    fit.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    fit.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH[:log][:int]",
        help="add or replace a searched dimension (repeatable), e.g. half_life_hours=6:120:log",
    )
    fit.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="NAME",
        help="leave a default dimension out of the search (repeatable)",
    )
    fit.add_argument(
        "--objective",
        action="append",
        default=[],
        metavar="FIGURE.SIDE=WEIGHT",
        help="objective weights (repeatable; replaces the default), e.g. spearman.long=2",
    )
    where = fit.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=1, metavar="N", help="local Dask worker processes"
    )
    where.add_argument("--scheduler", metavar="ADDRESS", help="run trials on a Dask cluster")
    output = parser.add_argument_group("output")
    output.add_argument(
        "--profile", metavar="FILE", help="write the fitted map profile here (TOML)"
    )
    output.add_argument("--force", action="store_true", help="replace an existing --profile file")
    output.add_argument(
        "--out", default=str(DEFAULT_OUT), metavar="DIR", help=f"folder (default {DEFAULT_OUT})"
    )
    output.add_argument("--json", action="store_true", help="print the result as JSON")
    output.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=run_calibrate)


def search_space(space: list[str], fixed: list[str]) -> tuple[Any, ...]:
    """The default space with ``--fix`` names removed and ``--space`` rows added/replaced."""
    from backtest.validation.space import SEARCH_SPACE, check_space, parse_dimension

    rows = {dimension.name: dimension for dimension in SEARCH_SPACE}
    for name in fixed:
        if name not in rows:
            raise ConfigError(
                f"--fix {name}: not a searched dimension; searched: {', '.join(rows)}"
            )
        del rows[name]
    for text in space:
        dimension = parse_dimension(text)
        rows[dimension.name] = dimension
    return check_space(tuple(rows.values()))


def objective_weights(pairs: list[str]) -> dict[str, float] | None:
    """``FIGURE.SIDE=WEIGHT`` flags as a dict (None: the default objective)."""
    from backtest.validation.calibration import check_objective

    if not pairs:
        return None
    weights: dict[str, Any] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            separator = ""
        if not separator:
            raise ConfigError(f"--objective {pair!r} is not FIGURE.SIDE=WEIGHT")
    return check_objective(weights)


def run_calibrate(args: argparse.Namespace) -> int:
    """Handle ``backtest calibrate``."""
    from backtest.commands.heatmap import map_overrides
    from backtest.commands.validate import write_outputs
    from backtest.liquidation.profiles import write_profile
    from backtest.validation.bins import as_time
    from backtest.validation.calibration import calibrate
    from backtest.validation.inputs import load_candles, load_truth, map_parameters
    from backtest.validation.scoring import resolve_warmup_span

    symbols = list(dict.fromkeys(args.symbol or ["BTC/USDT:USDT"]))
    train_since = as_time(args.train_since, "--train-since")
    train_until = as_time(args.train_until, "--train-until")
    test_until = as_time(args.test_until, "--test-until")
    if train_since is not None and train_until is not None and train_since >= train_until:
        raise ConfigError(f"--train-since {args.train_since} is not before --train-until")
    if test_until is not None and train_until is not None and test_until <= train_until:
        raise ConfigError(f"--test-until {args.test_until} is not after --train-until")
    if args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: give at least 1")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give at least 1")
    if args.truth not in (None, "stored") and len(symbols) > 1:
        raise ConfigError("--truth FILE holds one symbol's liquidations; give one --symbol")
    space = search_space(args.space, args.fix)
    weights = objective_weights(args.objective)
    base, _ = map_parameters(args.map_profile, map_overrides(args.map))
    span = resolve_warmup_span(args.warmup, base, args.timeframe)
    from backtest.folders import check_writable_target

    check_writable_target(args.out, ("validate",), "--out")
    if args.profile:
        from backtest.liquidation.profiles import check_profile_target

        check_profile_target(args.profile, overwrite=args.force)
    candles: dict[str, Any] = {}
    truths: dict[str, Any] = {}
    for symbol in symbols:
        candles[symbol] = load_candles(
            symbol, args.timeframe, exchange=args.exchange,
            since=None if train_since is None else train_since - span, until=test_until,
            data_dir=args.data_dir,
        )  # fmt: skip
        truths[symbol] = load_truth(
            args.truth, symbol, timeframe=args.truth_timeframe, exchange=args.exchange,
            data_dir=args.data_dir,
        )  # fmt: skip
    result = calibrate(
        candles, truths, train_until=train_until, train_since=train_since,
        test_until=test_until, base=base, space=space, objective=weights,
        trials=args.trials, seed=args.seed, warmup=span,
        workers=1 if args.scheduler else args.workers, scheduler=args.scheduler,
        progress=not args.no_progress and not args.json,
        meta={"exchange": args.exchange, "timeframe": args.timeframe,
              "truth": str(args.truth)},
    )  # fmt: skip
    written: list[Path] = []
    if args.profile:
        written.append(
            write_profile(
                args.profile, result.params, result.calibration_record(), overwrite=args.force
            )
        )
    outputs = {f"train {name}": item for name, item in result.train.items()}
    outputs.update({f"test {name}": item for name, item in result.test.items()})
    written.extend(write_outputs(args.out, _file_names(outputs)))
    from backtest.strict_json import dumps

    if args.json:
        print(dumps(result.to_dict(), indent=2))
    else:
        print(result.format())
        if not args.profile:
            print("no --profile given: the fitted parameters are in the scorecard.json only")
        print(f"wrote {', '.join(str(path) for path in written)}", file=sys.stderr)
    return 0


def _file_names(results: dict[str, Any]) -> dict[str, Any]:
    """Window names safe for file names (``train BTC/USDT:USDT`` -> ``train-BTC_USDT_USDT``)."""
    return {
        "".join(ch if ch.isalnum() else "_" for ch in name).replace("__", "_").strip("_")
        .replace("train_", "train-", 1).replace("test_", "test-", 1): result
        for name, result in results.items()
    }  # fmt: skip
