"""``backtest validate``: score the liquidation map against recorded liquidations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from backtest.errors import ConfigError

DEFAULT_OUT = Path("reports") / "validate"


def add_data_arguments(parser: argparse.ArgumentParser, *, several_symbols: bool = False) -> None:
    """The market, truth and map options shared by ``validate`` and ``calibrate``."""
    market = parser.add_argument_group("data")
    if several_symbols:
        market.add_argument(
            "--symbol",
            action="append",
            help="ccxt unified symbol (repeatable: one profile fitted to several; default "
            "BTC/USDT:USDT)",
        )
    else:
        market.add_argument("--symbol", default="BTC/USDT:USDT", help="ccxt unified symbol")
    market.add_argument("--exchange", default="binanceusdm", help="ccxt exchange id of the data")
    market.add_argument("--timeframe", default="5m", help="candle timeframe the map runs on")
    market.add_argument(
        "--truth",
        default="stored",
        metavar="stored|FILE",
        help="recorded liquidations: the stored series of the symbol (default; see `backtest "
        "import`) or a CSV/Parquet file (time, long, short or a CoinGlass/Coinalyze export)",
    )
    market.add_argument(
        "--truth-timeframe",
        default="4h",
        help="bar length of the stored truth series (default 4h)",
    )
    market.add_argument(
        "--warmup",
        metavar="SPAN",
        help="history the map runs over before a scored window: auto (default: 20 half-lives "
        "of its decay) or a span such as 30d; when the data starts later, scoring starts one "
        "warm-up after the first candle",
    )
    market.add_argument("--data-dir", help="data store folder (default ./data, then the sample)")
    model = parser.add_argument_group("map")
    model.add_argument(
        "--map-profile", metavar="FILE", help="map profile (TOML [map] table, from calibrate)"
    )
    model.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="map parameter (repeatable), overriding the profile, e.g. half_life_hours=24",
    )


def register(subparsers: Any) -> None:
    """Add the ``validate`` subcommand."""
    parser = subparsers.add_parser(
        "validate",
        help="score the liquidation map against recorded liquidations (vs naive baselines)",
        description=(
            "Run the liquidation map over stored candles (after a warm-up) and score its\n"
            "per-bar liquidations against recorded ones, side by side with naive baselines:\n"
            "Spearman rank correlation (long, short, total), long-share correlation on the\n"
            "busiest quarter of bars, explained variance of log(truth) added over the naive\n"
            "proxy, top-decile hit rate and scale.  Prints the table, writes scorecard.json,\n"
            "series.csv and a picture (validation.png) into --out."
        ),
        epilog=(
            "examples:\n"
            "  backtest validate --symbol BTC/USDT:USDT --since 2025-07-01 --until 2025-11-15\n"
            "  backtest validate --map-profile btc.toml --since 2025-01-01 --split 2025-07-01\n"
            "  backtest validate --truth my_liquidations.csv --map half_life_hours=24 --json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_arguments(parser)
    window = parser.add_argument_group("window")
    window.add_argument("--since", help="first scored bar (UTC date or time)")
    window.add_argument("--until", help="end of the scored window (exclusive)")
    window.add_argument(
        "--split",
        "--train-until",
        dest="split",
        metavar="DATE",
        help="score [since, DATE) and [DATE, until) separately as train and test windows",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--out", default=str(DEFAULT_OUT), metavar="DIR", help=f"folder (default {DEFAULT_OUT})"
    )
    output.add_argument("--json", action="store_true", help="print the scorecard as JSON")
    parser.set_defaults(handler=run_validate)


def _windows(since: Any, until: Any, split: Any) -> list[tuple[str, Any, Any]]:
    if split is None:
        return [("scored", since, until)]
    if since is not None and split <= since:
        raise ConfigError(f"--split {split} is not after --since {since}")
    if until is not None and split >= until:
        raise ConfigError(f"--split {split} is not before --until {until}")
    return [("train", since, split), ("test", split, until)]


def run_validate(args: argparse.Namespace) -> int:
    """Handle ``backtest validate``."""
    from backtest.commands.heatmap import map_overrides
    from backtest.validation.bins import as_time
    from backtest.validation.inputs import load_candles, load_truth, map_parameters
    from backtest.validation.scoring import resolve_warmup_span

    since = as_time(args.since, "--since")
    until = as_time(args.until, "--until")
    split = as_time(args.split, "--split")
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--since {args.since} is not before --until {args.until}")
    windows = _windows(since, until, split)
    params, fitted = map_parameters(args.map_profile, map_overrides(args.map))
    span = resolve_warmup_span(args.warmup, params, args.timeframe)
    from backtest.folders import check_writable_target

    check_writable_target(args.out, ("validate",), "--out")
    candles = load_candles(
        args.symbol, args.timeframe, exchange=args.exchange,
        since=None if since is None else since - span, until=until, data_dir=args.data_dir,
    )  # fmt: skip
    truth = load_truth(
        args.truth, args.symbol, timeframe=args.truth_timeframe, exchange=args.exchange,
        data_dir=args.data_dir,
    )  # fmt: skip
    results = validate_windows(candles, truth, params, windows, warmup=span, fitted=fitted,
                               meta={"truth": truth.attrs.get("source")})  # fmt: skip
    written = write_outputs(args.out, results)
    from backtest.strict_json import dumps

    if args.json:
        print(dumps({name: result.to_dict() for name, result in results.items()}, indent=2))
    else:
        for name, result in results.items():
            if len(results) > 1:
                print(f"== {name} window ==")
            print(result.format())
            print()
        print(f"wrote {', '.join(str(path) for path in written)}", file=sys.stderr)
    return 0


def validate_windows(
    candles: Any,
    truth: Any,
    params: Any,
    windows: list[tuple[str, Any, Any]],
    *,
    warmup: Any,
    fitted: Any,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """One :func:`validate` per named window."""
    from backtest.validation.scoring import validate

    return {
        name: validate(
            candles,
            truth,
            params,
            since=start,
            until=end,
            warmup=warmup,
            fitted=fitted,
            meta={**meta, "role": name},
        )
        for name, start, end in windows
    }


def write_outputs(out: str | Path, results: dict[str, Any]) -> list[Path]:
    """Write scorecard.json, series CSVs and pictures into ``out`` (replaced atomically)."""
    from backtest.folders import staged_folder
    from backtest.strict_json import dumps
    from backtest.validation.picture import render_validation_png

    single = len(results) == 1
    names: list[str] = []
    with staged_folder(out, kind="validate") as staging:
        document = {name: result.to_dict() for name, result in results.items()}
        (staging / "scorecard.json").write_text(
            dumps(next(iter(document.values())) if single else document, indent=2) + "\n",
            encoding="utf-8",
        )
        names.append("scorecard.json")
        for name, result in results.items():
            suffix = "" if single else f"-{name}"
            result.series.to_csv(staging / f"series{suffix}.csv", index_label="time")
            render_validation_png(result, staging / f"validation{suffix}.png")
            names.extend([f"series{suffix}.csv", f"validation{suffix}.png"])
    return [Path(out) / name for name in names]
