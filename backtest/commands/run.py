"""``backtest run``: backtest one strategy on one market and write its report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from backtest.errors import ConfigError

DEFAULT_REPORTS = Path("reports")


def register(subparsers: Any) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="backtest a strategy (default: the bundled BTC sample)",
        description=(
            "Backtest a strategy plugin on stored candles with a perpetual-futures broker\n"
            "(leverage, margin tiers, funding, liquidation of the strategy's own positions).\n"
            "With no arguments: the bundled real BTC/USDT:USDT 5m sample around the 2025-10-10\n"
            "crash, the ClusterFade strategy and default broker settings. Prints a summary and\n"
            "writes reports/<run-id>/ (report.html, metrics.json, equity.csv, trades.csv)."
        ),
        epilog=(
            "examples:\n"
            "  backtest run\n"
            "  backtest run --strategy ClusterFade --leverage 5 -p band=0.03\n"
            "  backtest run --strategy my_strategies.py:MyIdea --since 2025-10-05 --json\n"
            "  backtest run --symbol BTC/USDT:USDT,ETH/USDT:USDT --strategy ClusterRotation\n"
            "  backtest run --config run.toml --cash 5000"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser)

    output = parser.add_argument_group("output")
    output.add_argument("--config", help="TOML run file; flags override it (default: none)")
    output.add_argument(
        "--report",
        metavar="DIR",
        help="write the run here (default reports/<run-id>); DIR must be new, empty or an "
        "earlier run folder, which is replaced atomically",
    )
    output.add_argument(
        "--map-lines",
        metavar="NAMES",
        help="map lines to draw as panels under the report's price chart, comma-separated, "
        "e.g. long_band_notional,short_band_notional,cascade_risk (default: none)",
    )
    output.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    output.add_argument(
        "--engine",
        choices=("event", "array", "auto"),
        default="event",
        help="event (default): backtrader bar by bar; array: the strategy's decide over whole "
        "arrays through the array simulator (one symbol); auto: array when the strategy has a "
        "decide and the run is single-symbol",
    )
    verbosity = output.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    verbosity.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print the program's steps (loading, map, engine, report)",
    )
    parser.set_defaults(handler=handle)


def add_run_arguments(parser: argparse.ArgumentParser, *, swept: bool = False) -> None:
    """Add the market, strategy and broker options shared by ``run`` and ``sweep``.

    Parameters
    ----------
    parser : ArgumentParser
        The subcommand's parser.
    swept : bool
        Word the help for a sweep, where these values are shared by every run unless an axis
        of the grid varies them.
    """
    fixed = "fixed " if swept else ""
    market_title = "market (shared by every run unless swept)" if swept else "market"
    market = parser.add_argument_group(market_title)
    market.add_argument(
        "--symbol",
        help="ccxt unified symbol (default BTC/USDT:USDT); several separated by commas make a "
        "portfolio: one account, one clock",
    )
    market.add_argument(
        "--exchange",
        help="ccxt id: binanceusdm (default), bybit, okx or hyperliquid; sets the venue's "
        "liquidation formula, leverage tiers and funding",
    )
    market.add_argument("--timeframe", help="candle timeframe, e.g. 5m, 1h (default 5m)")
    market.add_argument(
        "--since",
        help="first bar, UTC date or time (2025-10-01, 2025-10-01T12:00; default: the first "
        "stored bar)",
    )
    market.add_argument(
        "--until",
        help="last bar (exclusive), UTC date or time (default: after the last stored bar)",
    )
    market.add_argument(
        "--warmup",
        metavar="SPAN",
        help=(
            "history before --since the liquidation map runs over, untraded: auto (default: "
            "20 half-lives of the map's decay), 0 (none) or a span such as 30d"
        ),
    )
    market.add_argument("--data-dir", help="data store folder (default ./data, then the sample)")

    strategy = parser.add_argument_group("strategy")
    strategy.add_argument(
        "--strategy",
        help="name from `backtest strategies`, file.py:Class or module:Class (default ClusterFade)",
    )
    strategy.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"{fixed}strategy parameter (repeatable; defaults: `backtest strategies`)",
    )
    strategy.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"{fixed}liquidation-map parameter (repeatable; default: the calibrated map)",
    )
    strategy.add_argument(
        "--map-profile",
        metavar="FILE",
        help="liquidation-map profile (TOML [map] table, e.g. from `backtest calibrate`); "
        "--map values override it (default: the built-in calibrated parameters)",
    )

    broker = parser.add_argument_group("broker")
    broker.add_argument(
        "--cash", type=float, help="starting wallet balance, quote currency (default 10000)"
    )
    broker.add_argument(
        "--leverage",
        type=float,
        help="leverage setting of new positions (default 3): sets the margin locked, notional / "
        "leverage, not the position's size, which the strategy decides",
    )
    broker.add_argument(
        "--margin-mode", choices=("isolated", "cross"), help="margin mode (default isolated)"
    )
    broker.add_argument(
        "--fees",
        metavar="MAKER[,TAKER]",
        help="fees as fractions (default 0.0002,0.0005: maker 0.02 %%, taker 0.05 %%)",
    )
    broker.add_argument(
        "--no-funding",
        action="store_true",
        help="do not charge or pay funding (default: charged at the stored settlements)",
    )
    broker.add_argument(
        "--slippage",
        type=float,
        metavar="VALUE",
        help="slippage of market, stop and liquidation fills (default 0: none): a fraction of "
        "the price (fixed model, 0.0005 = 5 bp) or of the bar's range (volatility model)",
    )
    broker.add_argument(
        "--slippage-model",
        choices=("fixed", "volatility"),
        help="fixed (default): VALUE x price; volatility: VALUE x (high - low) / open of the bar",
    )


def _fees(text: str | None) -> dict[str, float]:
    if text is None:
        return {}
    parts = [part.strip() for part in text.split(",")]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise ConfigError(
            f"--fees {text!r}: expected MAKER[,TAKER] as fractions, e.g. 0.0002,0.0005"
        ) from None
    if len(values) not in (1, 2):
        raise ConfigError(f"--fees {text!r}: give one value or MAKER,TAKER")
    maker, taker = (values[0], values[0]) if len(values) == 1 else values
    return {"maker_fee": maker, "taker_fee": taker}


def _map_values(args: argparse.Namespace) -> dict[str, Any]:
    """``--map-profile`` values (when given) updated with the ``--map`` flags."""
    from backtest.liquidation.profiles import map_params_with_profile
    from backtest.plugins import parse_assignments

    overrides = parse_assignments(args.map, "--map") or {}
    return map_params_with_profile(getattr(args, "map_profile", None), overrides)


def build_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the run file (if any) and the flags into RunConfig fields."""
    from backtest.config import merge, read_toml
    from backtest.plugins import parse_assignments

    file_settings = read_toml(args.config) if args.config else {}
    flags: dict[str, Any] = {
        "symbol": args.symbol,
        "exchange": args.exchange,
        "timeframe": args.timeframe,
        "since": args.since,
        "until": args.until,
        "warmup": getattr(args, "warmup", None),
        "data_dir": args.data_dir,
        "strategy": args.strategy,
        "cash": args.cash,
        "leverage": args.leverage,
        "margin_mode": args.margin_mode,
        "funding": False if args.no_funding else None,
        "slippage": getattr(args, "slippage", None),
        "slippage_model": getattr(args, "slippage_model", None),
        "params": parse_assignments(args.param, "-p") or None,
        "map_params": _map_values(args) or None,
        **_fees(args.fees),
    }
    settings = merge(file_settings, flags)
    settings.pop("sweep", None)
    return settings


def handle(args: argparse.Namespace) -> int:
    """Run the backtest, print the summary and write the report folder."""
    from backtest.commands.logs import configure_logging

    configure_logging(verbose=args.verbose, quiet=args.quiet)
    from backtest.runs import execute_run
    from backtest.strict_json import dumps

    settings = build_settings(args)
    outcome = execute_run(
        settings,
        report_folder=Path(args.report) if args.report else None,
        reports_root=DEFAULT_REPORTS,
        progress=not (args.quiet or args.json),
        map_lines=tuple(name for name in (args.map_lines or "").split(",") if name.strip()),
        engine=args.engine,
    )
    if args.json:
        print(dumps(outcome.summary(), indent=2))
    elif not args.quiet:
        print(outcome.console_text())
    return 0
