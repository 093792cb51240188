"""The simulator kernel's liquidation price of one position equals the broker's.

``PerpetualBroker._update_liquidation_price`` calls
:func:`backtest.liquidation.prices.liquidation_price` with the tiers (Binance: its solver picks
the bracket by the notional at the liquidation price) or with the rate and amount of the bracket
holding the position's notional (Bybit, OKX, Hyperliquid:
:func:`backtest.engine.venues.position_maintenance`), the position's margin (isolated) or the
wallet (cross, one symbol) as the wallet balance, the taker fee and the maximum leverage, and
floors a long's price at 0.  The kernel's C function must give the same number.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.engine.venues import position_maintenance
from backtest.liquidation.prices import VENUE_CODES, liquidation_price
from backtest.liquidation.tiers import LeverageTiers, Tier, load_tiers

kernel = pytest.importorskip("backtest.arrays._simulate")

pytestmark = pytest.mark.kernel

VECTORS = Path(__file__).parents[1] / "liquidation" / "data" / "liquidation_price_vectors.csv"


def relabelled(tiers: LeverageTiers, exchange: str) -> LeverageTiers:
    return LeverageTiers(tiers.symbol, exchange, tiers.effective_date, tiers.tiers)


BINANCE_TABLES = {
    "btc-2026": load_tiers("BTC/USDT:USDT", at="2026-09-30"),
    "eth-2024": load_tiers("ETH/USDT:USDT", at="2024-10-24"),
    "sol-2025": load_tiers("SOL/USDT:USDT", at="2025-10-10"),
}
# Tables of the other venues: the venues' own first brackets (as tests/engine/test_venues.py
# quotes them) and, for many brackets, the Binance tables under another venue's name.
OTHER_TABLES = {
    "bybit-sol": LeverageTiers(
        "SOL/USDT:USDT",
        "bybit",
        None,
        (
            Tier(0.0, 2_000_000.0, 0.005, 100.0),
            Tier(2_000_000.0, 2_600_000.0, 0.0056, 89.28, 1200.0),
        ),
    ),
    "okx-sol": LeverageTiers("SOL/USDT:USDT", "okx", None, (Tier(0.0, 600_000.0, 0.004, 125.0),)),
    "hyperliquid-sol": LeverageTiers(
        "SOL/USDC:USDC", "hyperliquid", None, (Tier(0.0, 1e15, 0.025, 20.0),)
    ),
    "hyperliquid-btc": LeverageTiers(
        "BTC/USDC:USDC", "hyperliquid", None, (Tier(0.0, 1e15, 1.0 / 80.0, 40.0),)
    ),
    **{f"binance-{name}": table for name, table in BINANCE_TABLES.items()},
}
VENUE_OF_EXCHANGE = {"binanceusdm": "binance"}


def table_arrays(tiers: LeverageTiers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array(tiers.floors, dtype=np.float64),
        np.array(tiers.maintenance_margin_rates, dtype=np.float64),
        np.array(tiers.maintenance_amounts, dtype=np.float64),
    )


def broker_price(
    venue: str,
    side: int,
    entry: float,
    quantity: float,
    leverage: float,
    wallet: float,
    tiers: LeverageTiers,
    margin_mode: str,
    taker_fee: float,
) -> float:
    """The liquidation price as ``PerpetualBroker._update_liquidation_price`` computes it."""
    rate = amount = None
    max_leverage = tiers.max_leverage
    table: LeverageTiers | None = tiers
    if venue != "binance":
        rate, amount, max_leverage = position_maintenance(venue, tiers, quantity * entry)
        table = None
    price = liquidation_price(
        venue,
        "long" if side > 0 else "short",
        entry,
        quantity,
        leverage,
        tiers=table,
        maintenance_margin_rate=rate,
        maintenance_amount=amount,
        wallet_balance=wallet,
        margin_mode=margin_mode,
        taker_fee=taker_fee,
        max_leverage=max_leverage,
    )
    return max(price, 0.0) if side > 0 else price


def kernel_price(venue, side, entry, quantity, wallet, tiers, taker_fee):
    return kernel.liquidation_price(
        VENUE_CODES[venue], side, entry, quantity, wallet, *table_arrays(tiers), taker_fee
    )


@st.composite
def positions(draw, venue: str, margin_mode: str):
    tables = BINANCE_TABLES if venue == "binance" else OTHER_TABLES
    tiers = tables[draw(st.sampled_from(sorted(tables)))]
    side = draw(st.sampled_from([1, -1]))
    entry = draw(st.floats(0.001, 1e6))
    cap = min(tiers.max_notional, 5e9)
    notional = draw(st.floats(1.0, cap))
    allowed = tiers.max_leverage_for_notional(notional)
    leverage = draw(st.floats(1.0, max(1.0, allowed))) if allowed >= 1.0 else allowed
    quantity = notional / entry
    margin = quantity * entry / leverage
    if margin_mode == "isolated":
        # the posted margin, or more (add_margin) or less (a later fill re-margined it)
        wallet = margin * draw(st.one_of(st.just(1.0), st.floats(0.3, 3.0)))
    else:
        wallet = draw(st.floats(0.2 * margin, 30.0 * notional))
    taker_fee = draw(st.floats(0.0, 0.001))
    return side, entry, quantity, leverage, wallet, tiers, taker_fee


CASES = [
    ("binance", "isolated"),
    ("binance", "cross"),
    ("bybit", "isolated"),
    ("okx", "isolated"),
    ("hyperliquid", "isolated"),
]


@pytest.mark.parametrize(("venue", "margin_mode"), CASES)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_kernel_price_equals_broker_price(venue, margin_mode, data):
    side, entry, quantity, leverage, wallet, tiers, fee = data.draw(positions(venue, margin_mode))
    expected = broker_price(venue, side, entry, quantity, leverage, wallet, tiers, margin_mode, fee)
    got = kernel_price(venue, side, entry, quantity, wallet, tiers, fee)
    # same arithmetic in the same order: equal up to the last bits, zero for a floored long
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12 * entry)
    if side > 0:
        assert got >= 0.0


@pytest.mark.parametrize("label", sorted(BINANCE_TABLES))
@pytest.mark.parametrize("side", [1, -1])
def test_binance_bracket_scan_crosses_brackets(label, side):
    """Every bracket of a real table is reached: the solver is exercised, not one formula."""
    tiers = BINANCE_TABLES[label]
    brackets = set()
    for notional in np.geomspace(50.0, tiers.max_notional * 0.999, 61):
        leverage = min(10.0, tiers.max_leverage_for_notional(notional))
        entry = 1_234.5
        quantity = notional / entry
        wallet = notional / leverage
        expected = broker_price(
            "binance", side, entry, quantity, leverage, wallet, tiers, "isolated", 0.0
        )
        got = kernel_price("binance", side, entry, quantity, wallet, tiers, 0.0)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12 * entry)
        brackets.add(tiers.index_for_notional(quantity * got))
    assert len(brackets) >= 5


def test_kernel_takes_the_envelope_on_ping_pong():
    # Inconsistent table on purpose (tests/liquidation/test_prices_kernel.py): the iteration
    # alternates between two brackets and the solver answers with the envelope.
    floors, rates, amounts = np.array([0.0, 100.0]), np.array([0.75, 0.25]), np.array([0.0, -25.0])
    from backtest.liquidation.prices import RESOLVED_ENVELOPE, solve_binance_brackets

    expected = solve_binance_brackets(1, 60.0, 1.7, 63.0, 0.0, *map(list, (floors, rates, amounts)))
    assert expected[3] == RESOLVED_ENVELOPE
    got = kernel.liquidation_price(0, 1, 60.0, 1.7, 63.0, floors, rates, amounts, 0.0)
    assert got == pytest.approx(max(expected[0], 0.0), rel=1e-15)


def test_long_price_is_floored_at_zero():
    # Binance 1x long with the whole notional as margin: the formula gives a price <= 0
    floors, rates, amounts = np.array([0.0]), np.array([0.004]), np.array([0.0])
    raw = (100.0 - 100.0) / (0.004 - 1.0)  # (WB + cum - Q*EP)/(Q*MMR - Q) with WB = Q*EP
    assert raw <= 0.0
    assert kernel.liquidation_price(0, 1, 100.0, 1.0, 100.0, floors, rates, amounts, 0.0) == 0.0
    assert kernel.liquidation_price(0, 1, 100.0, 1.0, 150.0, floors, rates, amounts, 0.0) == 0.0
    short = kernel.liquidation_price(0, -1, 100.0, 1.0, 100.0, floors, rates, amounts, 0.0)
    assert short == pytest.approx(200.0 / 1.004)


def vector_rows() -> list:
    with VECTORS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # rows with other positions in the cross wallet do not apply to a single-symbol simulator
    return [
        pytest.param(row, id=f"{row['venue']}-{row['mode']}-{row['side']}-row{number}")
        for number, row in enumerate(rows, start=1)
        if not row["other"]
    ]


def number(row: dict[str, str], key: str) -> float | None:
    return float(row[key]) if row[key] else None


@pytest.mark.parametrize("row", vector_rows())
def test_published_vector(row):
    venue = row["venue"]
    rate = number(row, "mmr")
    if rate is None:  # Hyperliquid: maintenance rate 1 / (2 * max leverage)
        rate = 1.0 / (2.0 * number(row, "max_leverage"))
    amount = number(row, "cum") or 0.0
    fee = number(row, "taker_fee") or 0.0
    side = 1 if row["side"] == "long" else -1
    got = kernel.liquidation_price(
        VENUE_CODES[venue],
        side,
        number(row, "entry"),
        number(row, "qty"),
        number(row, "wallet_balance"),
        np.array([0.0]),
        np.array([rate]),
        np.array([amount]),
        fee,
    )
    assert got == pytest.approx(number(row, "expected"), rel=number(row, "rel_tol"))


def test_vectors_cover_every_venue():
    venues = {row.values[0]["venue"] for row in vector_rows()}
    assert venues == set(VENUE_CODES)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((4, 1), "venue code 4"),
        ((0, 0), "side 0"),
    ],
)
def test_bad_codes_are_refused(arguments, message):
    table = (np.array([0.0]), np.array([0.004]), np.array([0.0]))
    with pytest.raises(ValueError, match=message):
        kernel.liquidation_price(*arguments, 100.0, 1.0, 10.0, *table, 0.0)


def test_tier_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        kernel.liquidation_price(
            0, 1, 100.0, 1.0, 10.0, np.array([0.0, 5.0]), np.array([0.004]), np.array([0.0]), 0.0
        )


def test_hyperliquid_rate_of_the_vectors_is_the_tables_rate():
    # the broker passes the tier's own rate; a downloaded Hyperliquid table holds 1/(2*max)
    tiers = OTHER_TABLES["hyperliquid-btc"]
    rate, amount, maximum = position_maintenance("hyperliquid", tiers, 5_000.0)
    assert amount is None
    assert math.isclose(rate, 1.0 / (2.0 * maximum))
