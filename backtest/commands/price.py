"""``backtest price``: the exchange-exact liquidation price of one position (or its inverse)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from typing import Any

from backtest import strict_json
from backtest.errors import ConfigError

#: The position shown when the command is run without position arguments.
EXAMPLE = {"side": "long", "entry": 85_000.0, "leverage": 10.0, "quantity": 0.5}
#: Longest --symbol accepted (as the store's :data:`backtest.market.store.MAX_SYMBOL_LENGTH`).
MAX_SYMBOL_LENGTH = 100

VENUE_NAMES = {
    "binance": "Binance USDⓈ-M",
    "bybit": "Bybit USDT perpetual",
    "okx": "OKX USDT swap",
    "hyperliquid": "Hyperliquid perpetual",
}


def register(subparsers: Any) -> None:
    """Add the ``price`` subcommand."""
    parser = subparsers.add_parser(
        "price",
        help="liquidation price of a position (Binance, Bybit, OKX, Hyperliquid)",
        description=(
            "Print the exchange-exact liquidation price of one position, the maintenance "
            "bracket used, the distance from entry and the leverage-tier snapshot.  Without "
            "position arguments it prints an example (0.5 BTC long at 85,000, 10x, Binance).  "
            "With --inverse-at it prints the entry price that puts the liquidation there."
        ),
        epilog=(
            "example: backtest price --side short --entry 2500 --leverage 20 --quantity 40 "
            "--symbol ETH/USDT:USDT"
        ),
    )
    position = parser.add_argument_group("position")
    position.add_argument("--venue", default="binance", help="binance, bybit, okx, hyperliquid")
    position.add_argument("--symbol", default="BTC/USDT:USDT", help="ccxt symbol (tiers)")
    position.add_argument("--side", help="long or short (default long)")
    position.add_argument("--entry", type=float, help="entry price (default 85000)")
    position.add_argument("--leverage", type=float, help="leverage, e.g. 10 (default 10)")
    size = position.add_mutually_exclusive_group()
    size.add_argument("--quantity", type=float, help="size in base units (default 0.5)")
    size.add_argument("--notional", type=float, help="size in quote currency instead")
    margin = parser.add_argument_group("margin and maintenance")
    margin.add_argument("--margin-mode", default="isolated", help="isolated or cross (Binance)")
    margin.add_argument(
        "--wallet-balance",
        type=float,
        help="isolated margin / cross wallet balance (default quantity*entry/leverage)",
    )
    margin.add_argument(
        "--other",
        action="append",
        default=[],
        metavar="QTY,ENTRY,MARK,MMR,CUM[,SIDE]",
        help="another position in the cross wallet (repeatable; Binance cross mode)",
    )
    margin.add_argument("--mmr", type=float, help="explicit maintenance margin rate (fraction)")
    margin.add_argument("--maintenance-amount", type=float, help="Binance cum with --mmr")
    margin.add_argument("--taker-fee", type=float, help="OKX taker fee (default 0.0005)")
    margin.add_argument("--max-leverage", type=float, help="venue maximum (Hyperliquid: needed)")
    tiers = parser.add_argument_group("leverage tiers (Binance)")
    tiers.add_argument("--exchange", default="binanceusdm", help="tier snapshot exchange id")
    tiers.add_argument("--at", help="use the snapshot in force at this date (YYYY-MM-DD)")
    parser.add_argument(
        "--inverse-at",
        type=float,
        metavar="PRICE",
        help="print the entry price that puts the liquidation at PRICE",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Compute and print; user errors raise ConfigError (one line, exit status 2)."""
    from backtest.liquidation import prices
    from backtest.liquidation.tiers import load_tiers, snapshots_for

    example = all(
        getattr(args, name) is None
        for name in ("side", "entry", "leverage", "quantity", "notional", "inverse_at")
    )
    side = args.side or EXAMPLE["side"]
    entry = EXAMPLE["entry"] if args.entry is None else args.entry
    leverage = EXAMPLE["leverage"] if args.leverage is None else args.leverage
    venue = prices.canonical_venue(args.venue)
    if len(args.symbol) > MAX_SYMBOL_LENGTH:
        raise ConfigError(
            f"--symbol {args.symbol[:40]!r}... is {len(args.symbol):,} characters long; ccxt "
            f"symbols are short (BTC/USDT:USDT), at most {MAX_SYMBOL_LENGTH} characters here"
        )
    quantity = _quantity(args, entry)
    table = None
    if venue == "binance" and args.mmr is None:
        table = load_tiers(args.symbol, args.exchange, at=args.at)
    kwargs: dict[str, Any] = {
        "tiers": table,
        "maintenance_margin_rate": args.mmr,
        "maintenance_amount": args.maintenance_amount,
        "wallet_balance": args.wallet_balance,
        "margin_mode": args.margin_mode,
        "other_positions": [_other(text) for text in args.other],
        "taker_fee": args.taker_fee,
        "max_leverage": args.max_leverage,
    }
    if args.inverse_at is not None:
        entry = prices.entry_price_for_liquidation(
            venue, side, args.inverse_at, quantity, leverage, **kwargs
        )
    solution = prices.solve_liquidation(venue, side, entry, quantity, leverage, **kwargs)
    solution = dataclasses.replace(solution, price=solution.price + 0.0)  # no -0.0
    result = {
        "venue": venue,
        "symbol": args.symbol,
        "side": side.strip().lower(),
        "entry_price": entry,
        "quantity": quantity,
        "notional": quantity * entry,
        "leverage": leverage,
        "margin_mode": args.margin_mode.strip().lower(),
        "wallet_balance": solution.wallet_balance,
        "liquidation_price": solution.price,
        "distance_pct": (solution.price - entry) / entry * 100.0,
        "maintenance_margin_rate": solution.maintenance_margin_rate,
        "maintenance_amount": solution.maintenance_amount,
        "bracket": None if solution.tier_index is None else solution.tier_index + 1,
        "bracket_rounds": solution.rounds,
        "bracket_resolved_by": solution.resolved_by,
        "snapshot_date": None,
        "snapshot": None,
        "inverse_at": args.inverse_at,
    }
    if table is not None:
        result["snapshot_date"] = table.effective_date.isoformat()
        result["snapshot"] = table.source
    if args.json:
        print(strict_json.dumps(result, indent=2))
        return 0
    quote = args.symbol.split(":")[-1].split("/")[-1]
    if example:
        print("Example position (pass --side/--entry/--leverage/--quantity for your own):")
    print(
        f"{VENUE_NAMES[venue]}  {args.symbol}  {result['side']} {quantity:g} @ "
        f"{_price(entry)}  {leverage:g}x {result['margin_mode']}"
    )
    rows = [("notional", f"{quantity * entry:,.2f} {quote}")]
    rows.append(("margin / wallet balance", f"{solution.wallet_balance:,.2f} {quote}"))
    if args.inverse_at is not None:
        rows.append(("entry for liquidation at", f"{_price(args.inverse_at)} -> {_price(entry)}"))
    rows.append(
        (
            "liquidation price",
            f"{_price(solution.price)} {quote}  ({result['distance_pct']:+.2f} % from entry)",
        )
    )
    if solution.price <= 0.0:
        rows.append(("", "(not liquidated at any positive price)"))
    rows.extend(_maintenance(solution, table, quantity))
    if table is not None:
        first = snapshots_for(table.symbol, table.exchange)[0].effective_date
        note = ""
        if args.at is not None and table.effective_date == first and str(args.at) < str(first):
            note = "  (the date precedes every snapshot: earliest one used)"
        rows.append(("tier snapshot", f"{table.exchange} {table.effective_date}{note}"))
        rows.append(("", _relative(table.source)))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    return 0


def _quantity(args: argparse.Namespace, entry: float) -> float:
    if args.notional is not None:
        if not (args.notional > 0 and math.isfinite(args.notional)):
            raise ConfigError(f"--notional must be > 0 (quote currency), got {args.notional:g}")
        if not (entry > 0 and math.isfinite(entry)):
            raise ConfigError(f"--entry must be > 0 (quote currency), got {entry:g}")
        return args.notional / entry
    return EXAMPLE["quantity"] if args.quantity is None else args.quantity


def _other(text: str) -> Any:
    from backtest.liquidation.prices import OtherPosition

    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (5, 6):
        raise ConfigError(
            f"--other {text!r} must be QTY,ENTRY,MARK,MMR,CUM[,SIDE], e.g. 10,3000,2800,0.005,50"
        )
    try:
        numbers = [float(part) for part in parts[:5]]
    except ValueError:
        raise ConfigError(
            f"--other {text!r}: QTY, ENTRY, MARK, MMR and CUM must be numbers"
        ) from None
    return OtherPosition(*numbers, side=parts[5] if len(parts) == 6 else "long")


def _price(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1_000:
        return f"{value:,.2f}"
    if magnitude >= 1:
        return f"{value:,.4f}"
    return f"{value:.6g}"


def _maintenance(solution: Any, table: Any, quantity: float) -> list[tuple[str, str]]:
    rate = f"MMR {solution.maintenance_margin_rate * 100:.4g} %"
    if solution.tier_index is None:
        amount = solution.maintenance_amount
        return [("maintenance", f"{rate}" + (f", amount {amount:,.2f}" if amount else ""))]
    tier = table.tiers[solution.tier_index]
    at_liquidation = quantity * solution.price
    how = "stable" if solution.resolved_by == "iteration" else "envelope after ping-pong"
    rounds = f"{solution.rounds} round{'s' if solution.rounds != 1 else ''}"
    return [
        (
            "bracket",
            f"{solution.tier_index + 1} of {len(table.tiers)}: notional "
            f"{tier.min_notional:,.0f}-{tier.max_notional:,.0f}, {rate}, cum {tier.cum:,.2f}, "
            f"max {tier.max_leverage:g}x",
        ),
        ("", f"picked at the liquidation notional {at_liquidation:,.2f} ({how}, {rounds})"),
    ]


def _relative(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return relative if not relative.startswith("..") else path
