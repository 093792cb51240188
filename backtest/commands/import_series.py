"""``backtest import``: liquidation totals, open interest or long/short ratios from a file."""

from __future__ import annotations

import argparse

#: Kinds on the command line.
KIND_CHOICES: tuple[str, ...] = ("liquidations", "open-interest", "long-short")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import`` subcommand."""
    from backtest.market.layouts import LAYOUT_HELP, LAYOUTS, MEASURES

    parser = subparsers.add_parser(
        "import",
        help="import liquidations, open interest or long/short ratios from CSV into data/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Import per-bar liquidation totals (long/short, quote currency), open interest or "
            "long/short ratios from a CSV (or CoinGlass API Parquet) export into the store, next "
            "to the candles: data/<exchange>/<SYMBOL>-<tf>-liquidations.parquet, -oi.parquet, "
            "-longshort.parquet.\n\n"
            "Conventions: a row's time is its bar's OPEN time in UTC (epoch milliseconds or ISO "
            "8601 text; epoch seconds are refused); the timeframe comes from the row spacing. "
            "Liquidation totals are summed onto coarser bars when loaded (whole bars only), "
            "never split onto finer ones. Open interest and ratios are bar-close values, known "
            "from the next bar's open. Bad files are refused with one line and nothing is "
            "written.\n\nlayouts (auto-detected by header):\n  "
            + "\n  ".join(f"{name}: {text}" for name, text in LAYOUT_HELP.items())
        ),
        epilog=(
            "example: python -m backtest import liquidations "
            "binance_BTC_liquidations_4h_merged.csv --symbol BTC/USDT:USDT"
        ),
    )
    parser.add_argument("kind", choices=KIND_CHOICES, help="what the file holds")
    parser.add_argument("file", help="the CSV (UTF-8, header row) or Parquet file")
    parser.add_argument(
        "--symbol", required=True, help="ccxt unified symbol it belongs to, e.g. BTC/USDT:USDT"
    )
    parser.add_argument(
        "--exchange",
        default="binanceusdm",
        help="ccxt exchange id of the store folder (default: binanceusdm)",
    )
    parser.add_argument(
        "--layout",
        default="auto",
        choices=("auto", *LAYOUTS),
        help="file layout (default: auto, recognised by the header)",
    )
    parser.add_argument("--data-dir", help="store folder (default: $BACKTEST_DATA or ./data)")
    parser.add_argument(
        "--timeframe",
        help="bar length, e.g. 4h (default: inferred from the row spacing; must agree)",
    )
    parser.add_argument(
        "--utc-offset",
        type=float,
        metavar="HOURS",
        help="the file's times are local time this many hours ahead of UTC (UTC = time - "
        "HOURS; default: 0, or 6 for the coinalyze-ohlcv layout, whose known export was "
        "written at UTC+6)",
    )
    parser.add_argument(
        "--venue",
        help="column of a per-exchange open-interest file (default: from --exchange, e.g. BINANCE)",
    )
    parser.add_argument(
        "--measure",
        default="global_account",
        choices=tuple(MEASURES),
        help="which long/short ratio a plain file holds (default: global_account)",
    )
    parser.add_argument(
        "--known-at",
        choices=("bar_close", "time"),
        help="when a plain file's open interest/ratio is known: at the bar's close (default: "
        "bar_close) or at the row's time",
    )
    parser.add_argument(
        "--skip-blank",
        action="store_true",
        help="leave out rows with blank values inside the file instead of refusing it "
        "(default: off; blank rows at the start or end are always left out)",
    )
    parser.add_argument(
        "--scope",
        help="what the numbers cover, recorded in the file (default: the layout's description)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Import the file and print what was stored."""
    from backtest.market.series import import_series

    result = import_series(
        args.file,
        kind=args.kind,
        symbol=args.symbol,
        exchange=args.exchange,
        layout=args.layout,
        data_dir=args.data_dir,
        timeframe=args.timeframe,
        utc_offset_hours=args.utc_offset,
        venue=args.venue,
        measure=args.measure,
        known_at=args.known_at,
        skip_blank=args.skip_blank,
        scope=args.scope,
    )
    print(result.describe())
    return 0
