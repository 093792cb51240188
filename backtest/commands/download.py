"""``backtest download``: fetch candles, funding, mark price and open interest into the store."""

from __future__ import annotations

import argparse
import sys

#: ``--series`` names on the command line -> store series.
SERIES_CHOICES: dict[str, str] = {
    "ohlcv": "ohlcv",
    "mark": "mark",
    "funding": "funding",
    "oi": "open_interest",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``download`` subcommand."""
    parser = subparsers.add_parser(
        "download",
        help="download market history with ccxt into data/",
        description=(
            "Download candles and, for perpetuals, funding-rate history, mark-price candles and "
            "open interest (where the venue serves them) through ccxt into the Parquet store "
            "data/<exchange>/. Incremental: run it again to continue after the last stored "
            "bar; an interrupted download keeps what it wrote."
        ),
        epilog=(
            "example: python -m backtest download --exchange binanceusdm "
            "--symbol BTC/USDT:USDT --symbol ETH/USDT:USDT --timeframe 5m --since 2026-01-01"
        ),
    )
    parser.add_argument(
        "--exchange", default="binanceusdm", help="ccxt exchange id (default: binanceusdm)"
    )
    parser.add_argument(
        "--symbol",
        action="append",
        dest="symbols",
        metavar="SYMBOL",
        help="ccxt unified symbol, e.g. BTC/USDT:USDT; repeat for several",
    )
    parser.add_argument("--timeframe", default="5m", help="candle timeframe (default: 5m)")
    parser.add_argument(
        "--since",
        help="first date, UTC (YYYY-MM-DD or YYYY-MM-DDTHH:MM); optional when the store "
        "already holds the series",
    )
    parser.add_argument("--until", help="end date, UTC, exclusive (default: now)")
    parser.add_argument(
        "--series",
        default=",".join(SERIES_CHOICES),
        help="comma-separated subset of ohlcv,mark,funding,oi (default: all the venue offers)",
    )
    parser.add_argument("--data-dir", help="store folder (default: $BACKTEST_DATA or ./data)")
    parser.add_argument(
        "--retries", type=int, default=5, help="tries per request on network errors (default: 5)"
    )
    parser.add_argument(
        "--rate-limit-ms",
        type=float,
        help="milliseconds between requests for ccxt's rate limiter (default: the venue's)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument(
        "--no-tiers",
        action="store_true",
        help="do not store today's leverage tiers (bybit, okx, hyperliquid serve them)",
    )
    parser.add_argument(
        "--list", action="store_true", help="list what the store and the bundled sample hold"
    )
    parser.set_defaults(handler=handle)


def _series(text: str) -> list[str]:
    from backtest.errors import ConfigError

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERIES_CHOICES]
    if unknown or not names:
        what = f"unknown --series {','.join(unknown)}" if unknown else "--series is empty"
        raise ConfigError(f"{what}; use a comma-separated subset of {','.join(SERIES_CHOICES)}")
    return [SERIES_CHOICES[name] for name in names]


def handle(args: argparse.Namespace) -> int:
    """Run the download (or the listing) and print one line per series."""
    from backtest.market import store

    if args.list:
        items = store.list_available(args.data_dir)
        if not items:
            print(
                "the store is empty; download with: "
                + store.download_command("binanceusdm", "BTC/USDT:USDT", "5m")
            )
        for item in items:
            print(item.describe())
        return 0

    from backtest.errors import ConfigError
    from backtest.market.download import download
    from backtest.market.exchange import RetryPolicy

    if not args.symbols:
        raise ConfigError("no symbol given; add --symbol BTC/USDT:USDT (repeat for more)")
    if args.retries < 1:
        raise ConfigError(f"--retries must be at least 1, not {args.retries}")
    if args.rate_limit_ms is not None and args.rate_limit_ms < 0:
        raise ConfigError(f"--rate-limit-ms must be >= 0, not {args.rate_limit_ms:g}")
    results = download(
        args.exchange,
        args.symbols,
        args.timeframe,
        since=args.since,
        until=args.until,
        data_dir=args.data_dir,
        series=_series(args.series),
        rate_limit_ms=args.rate_limit_ms,
        retry_policy=RetryPolicy(tries=args.retries),
        progress=not args.no_progress and sys.stderr.isatty(),
        on_result=lambda result: print(result.describe(), flush=True),
        tiers=not args.no_tiers,
        on_tiers=lambda result: print(result.describe(), flush=True),
    )
    stored = sum(result.rows_added for result in results)
    print(f"done: {stored} new rows in {len(results)} series")
    return 0
