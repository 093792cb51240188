import csv
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.errors import ConfigError
from backtest.liquidation.prices import (
    RESOLVED_ENVELOPE,
    OtherPosition,
    binance_envelope_price,
    binance_formula,
    bracket_index,
    entry_price_for_liquidation,
    liquidation_factor,
    liquidation_price,
    solve_binance_brackets,
    solve_liquidation,
)
from backtest.liquidation.tiers import LeverageTiers, Tier, load_tiers

VECTORS = Path(__file__).parent / "data" / "liquidation_price_vectors.csv"
TIERS_NEW = load_tiers("BTC/USDT:USDT", at="2026-09-30")
TIERS_OLD = load_tiers("ETH/USDT:USDT", at="2024-10-24")
assert TIERS_NEW.effective_date != TIERS_OLD.effective_date


def number(row: dict[str, str], key: str) -> float | None:
    return float(row[key]) if row[key] else None


def load_vectors() -> list:
    with VECTORS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    params = []
    for number_in_file, row in enumerate(rows, start=1):
        ident = f"{row['venue']}-{row['mode']}-{row['side']}-row{number_in_file}"
        params.append(pytest.param(row, id=ident))
    return params


@pytest.mark.parametrize("row", load_vectors())
def test_published_vector(row):
    others = [
        OtherPosition(
            quantity=other["qty"],
            entry_price=other["entry"],
            mark_price=other["mark"],
            maintenance_margin_rate=other["mmr"],
            maintenance_amount=other["cum"],
        )
        for other in (json.loads(row["other"]) if row["other"] else [])
    ]
    price = liquidation_price(
        row["venue"],
        row["side"],
        number(row, "entry"),
        number(row, "qty"),
        number(row, "leverage"),
        maintenance_margin_rate=number(row, "mmr"),
        maintenance_amount=number(row, "cum"),
        wallet_balance=number(row, "wallet_balance"),
        margin_mode=row["mode"],
        other_positions=others,
        taker_fee=number(row, "taker_fee"),
        max_leverage=number(row, "max_leverage"),
    )
    assert price == pytest.approx(number(row, "expected"), rel=number(row, "rel_tol"))


def test_vectors_cover_every_venue_and_cross_mode():
    rows = [param.values[0] for param in load_vectors()]
    assert {row["venue"] for row in rows} == {"binance", "bybit", "okx", "hyperliquid"}
    assert any(row["mode"] == "cross" and row["other"] for row in rows)


# ---------------------------------------------------------------- properties a trader relies on

VENUE_SETTINGS = {
    "binance": {"tiers": TIERS_NEW},
    "binance-old": {"tiers": TIERS_OLD},
    "binance-fixed": {
        "maintenance_margin_rate": 0.01,
        "maintenance_amount": 5.0,
        "max_leverage": 50.0,
    },
    "bybit": {"maintenance_margin_rate": 0.005, "max_leverage": 100.0},
    "okx": {"maintenance_margin_rate": 0.004, "taker_fee": 0.0005, "max_leverage": 100.0},
    "hyperliquid": {"max_leverage": 40.0},
}


def venue_of(key: str) -> str:
    return key.split("-")[0]


def max_leverage_of(key: str, notional: float) -> float:
    settings_ = VENUE_SETTINGS[key]
    if "tiers" in settings_:
        return settings_["tiers"].max_leverage_for_notional(notional)
    return settings_["max_leverage"]


positions = st.fixed_dictionaries(
    {
        "key": st.sampled_from(sorted(VENUE_SETTINGS)),
        "side": st.sampled_from(["long", "short"]),
        "entry": st.floats(0.01, 500_000.0),
        "notional": st.floats(10.0, 200_000_000.0),
        "fraction_low": st.floats(0.01, 0.98),
        "fraction_high": st.floats(0.02, 1.0),
    }
)


def leverages_for(position: dict) -> tuple[float, float]:
    """Two leverages 1 < low < high <= max allowed for the position."""
    cap = max_leverage_of(position["key"], position["notional"])
    low, high = sorted((position["fraction_low"], position["fraction_high"]))
    if high - low < 1e-3:
        high = min(1.0, low + 0.01)
    return 1.0 + (cap - 1.0) * low, 1.0 + (cap - 1.0) * high


@settings(max_examples=150, deadline=None)
@given(positions)
def test_price_is_beyond_entry_and_moves_towards_it_with_leverage(position):
    key, side, entry = position["key"], position["side"], position["entry"]
    quantity = position["notional"] / entry
    low, high = leverages_for(position)
    at_low = liquidation_price(venue_of(key), side, entry, quantity, low, **VENUE_SETTINGS[key])
    at_high = liquidation_price(venue_of(key), side, entry, quantity, high, **VENUE_SETTINGS[key])
    if side == "long":
        assert at_low < at_high < entry
    else:
        assert entry < at_high < at_low


@settings(max_examples=150, deadline=None)
@given(positions, st.floats(0.001, 5.0))
def test_more_margin_moves_the_price_away(position, extra_fraction):
    key, side, entry = position["key"], position["side"], position["entry"]
    quantity = position["notional"] / entry
    leverage = leverages_for(position)[1]
    margin = quantity * entry / leverage
    kwargs = VENUE_SETTINGS[key]
    base = liquidation_price(venue_of(key), side, entry, quantity, leverage, **kwargs)
    default_margin = liquidation_price(
        venue_of(key), side, entry, quantity, leverage, wallet_balance=margin, **kwargs
    )
    more = liquidation_price(
        venue_of(key),
        side,
        entry,
        quantity,
        leverage,
        wallet_balance=margin * (1.0 + extra_fraction),
        **kwargs,
    )
    assert default_margin == pytest.approx(base, rel=1e-12, abs=1e-9 * entry)
    if side == "long":
        assert more < base
    else:
        assert more > base


@settings(max_examples=150, deadline=None)
@given(positions, st.booleans(), st.floats(0.5, 3.0))
def test_inverse_round_trips(position, explicit_margin, margin_scale):
    key, side, entry = position["key"], position["side"], position["entry"]
    quantity = position["notional"] / entry
    leverage = leverages_for(position)[1]
    kwargs = dict(VENUE_SETTINGS[key])
    if explicit_margin:
        kwargs["wallet_balance"] = quantity * entry / leverage * margin_scale
    target = liquidation_price(venue_of(key), side, entry, quantity, leverage, **kwargs)
    if not target > 0.0:
        return  # long with margin beyond the notional: no positive liquidation price to invert
    found = entry_price_for_liquidation(venue_of(key), side, target, quantity, leverage, **kwargs)
    assert found == pytest.approx(entry, rel=1e-8)


@pytest.mark.parametrize("tiers", [TIERS_NEW, TIERS_OLD], ids=["2026", "2024"])
@pytest.mark.parametrize("notional", [10.0, 49_999.0, 300_000.0, 5e6, 9e7, 1.1e9, 1.2e9])
def test_one_x_long_on_binance_is_never_liquidated_at_a_positive_price(tiers, notional):
    for entry in (0.5, 2_500.0, 85_000.0):
        price = liquidation_price("binance", "long", entry, notional / entry, 1.0, tiers=tiers)
        assert price <= 1e-12 * entry


@settings(max_examples=150, deadline=None)
@given(positions)
def test_binance_bracket_is_the_one_at_the_liquidation_notional(position):
    if venue_of(position["key"]) != "binance" or "tiers" not in VENUE_SETTINGS[position["key"]]:
        return
    tiers = VENUE_SETTINGS[position["key"]]["tiers"]
    side, entry = position["side"], position["entry"]
    quantity = position["notional"] / entry
    leverage = leverages_for(position)[0]
    solution = solve_liquidation("binance", side, entry, quantity, leverage, tiers=tiers)
    bracket = tiers.tiers[tiers.index_for_notional(quantity * solution.price)]
    # Self-consistent: the formula with the bracket of Q*LP gives back LP.
    again = binance_formula(
        1 if side == "long" else -1,
        entry,
        quantity,
        quantity * entry / leverage,
        bracket.maintenance_margin_rate,
        bracket.cum,
    )
    assert again == pytest.approx(solution.price, rel=1e-12, abs=1e-9 * entry)
    assert solution.maintenance_margin_rate == bracket.maintenance_margin_rate
    # And the closed-form envelope agrees with the iteration.
    envelope = binance_envelope_price(
        1 if side == "long" else -1,
        entry,
        quantity,
        quantity * entry / leverage,
        0.0,
        [tier.maintenance_margin_rate for tier in tiers.tiers],
        [tier.cum for tier in tiers.tiers],
    )
    assert envelope == pytest.approx(solution.price, rel=1e-12, abs=1e-9 * entry)


def test_bracket_is_picked_at_the_liquidation_price_not_the_entry():
    # Short of 299,000 USDT at 100x: entry notional is in bracket 1 (up to 300,000) but the
    # notional at the liquidation price is above 300,000, in bracket 2.
    entry, quantity = 100_000.0, 2.99
    solution = solve_liquidation("binance", "short", entry, quantity, 100.0, tiers=TIERS_NEW)
    assert bracket_index([t.min_notional for t in TIERS_NEW.tiers], quantity * entry) == 0
    assert solution.tier_index == 1
    assert quantity * solution.price > 300_000.0
    with_bracket_one = binance_formula(-1, entry, quantity, quantity * entry / 100.0, 0.004, 0.0)
    assert solution.price != pytest.approx(with_bracket_one, rel=1e-9)


def test_ping_pong_between_brackets_resolves_by_the_envelope():
    # An inconsistent (discontinuous) table makes the iteration alternate between two
    # brackets; the solver must stop after the revisit and return the envelope price.
    floors, rates, amounts = [0.0, 100.0], [0.75, 0.25], [0.0, -25.0]
    first = binance_formula(1, 60.0, 1.7, 63.0, rates[0], amounts[0])
    second = binance_formula(1, 60.0, 1.7, 63.0, rates[1], amounts[1])
    assert bracket_index(floors, 1.7 * first) == 1 and bracket_index(floors, 1.7 * second) == 0
    result = solve_binance_brackets(1, 60.0, 1.7, 63.0, 0.0, floors, rates, amounts)
    assert result[3] == RESOLVED_ENVELOPE
    assert result[2] <= len(floors)
    assert result[0] == max(first, second)
    assert solve_binance_brackets(1, 60.0, 1.7, 63.0, 0.0, floors, rates, amounts) == result


@settings(max_examples=100, deadline=None)
@given(positions, st.floats(0.01, 1_000_000.0))
def test_liquidation_factor_is_scale_free(position, other_entry):
    key, side = position["key"], position["side"]
    notional = position["notional"]
    leverage = leverages_for(position)[0]
    kwargs = VENUE_SETTINGS[key]
    factor = liquidation_factor(venue_of(key), side, leverage, notional=notional, **kwargs)
    for entry in (position["entry"], other_entry):
        price = liquidation_price(venue_of(key), side, entry, notional / entry, leverage, **kwargs)
        assert price / entry == pytest.approx(factor, rel=1e-9, abs=1e-12)


def test_cross_losses_elsewhere_pull_the_price_in():
    kwargs = {"tiers": TIERS_NEW, "margin_mode": "cross", "wallet_balance": 20_000.0}
    alone = liquidation_price("binance", "long", 85_000.0, 1.0, 10.0, **kwargs)
    isolated = liquidation_price(
        "binance", "long", 85_000.0, 1.0, 10.0, tiers=TIERS_NEW, wallet_balance=20_000.0
    )
    assert alone == pytest.approx(isolated, rel=1e-15)
    losing = OtherPosition(10.0, 3_000.0, 2_800.0, 0.005, 50.0, side="long")
    winning = {
        "quantity": 10.0,
        "entry_price": 3_000.0,
        "mark_price": 2_800.0,
        "maintenance_margin_rate": 0.005,
        "maintenance_amount": 50.0,
        "side": "short",
    }
    with_loss = liquidation_price(
        "binance", "long", 85_000.0, 1.0, 10.0, **kwargs, other_positions=[losing]
    )
    with_gain = liquidation_price(
        "binance", "long", 85_000.0, 1.0, 10.0, **kwargs, other_positions=[winning]
    )
    assert with_gain < alone < with_loss
    # Both carry the same maintenance margin (same size at the same mark): the PnL difference
    # (2 x 2,000 USDT) over the position's (1 - MMR) * Q shifts the price by a known amount.
    rate = solve_liquidation(
        "binance", "long", 85_000.0, 1.0, 10.0, **kwargs, other_positions=[losing]
    ).maintenance_margin_rate
    assert with_loss - with_gain == pytest.approx(4_000.0 / (1.0 - rate), rel=1e-9)


# ------------------------------------------------------------------------------- bad input


def call(**overrides):
    kwargs = {
        "venue": "binance",
        "side": "long",
        "entry_price": 85_000.0,
        "quantity": 0.5,
        "leverage": 10.0,
        "tiers": TIERS_NEW,
    }
    kwargs.update(overrides)
    return liquidation_price(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"leverage": 0.0}, r"leverage must be a finite number > 0"),
        ({"leverage": -3.0}, r"leverage must be a finite number > 0"),
        ({"leverage": math.nan}, r"leverage must be a finite number > 0"),
        ({"leverage": 151.0}, r"leverage 151 is above the maximum 150x .* range is \(0, 150\]"),
        (
            {"quantity": 5.0, "leverage": 120.0},
            r"maximum 100x allowed for a position of 425,000.00 .* range is \(0, 100\].*300,000",
        ),
        ({"quantity": 30_000.0}, r"notional 2,550,000,000.00 exceeds the largest bracket"),
        ({"quantity": -0.5}, r"quantity must be a finite number > 0 \(base units"),
        ({"quantity": 0.0}, r"quantity must be a finite number > 0"),
        ({"entry_price": -85_000.0}, r"entry_price must be a finite number > 0"),
        ({"entry_price": "abc"}, r"entry_price must be a number > 0"),
        ({"venue": "binanse"}, r"unknown venue 'binanse': did you mean 'binance'\? allowed"),
        ({"venue": "kraken"}, r"unknown venue 'kraken': allowed venues are binance, bybit"),
        ({"side": "buy"}, r"unknown side 'buy'.*allowed sides are 'long' and 'short'"),
        ({"side": "shrt"}, r"did you mean 'short'"),
        ({"margin_mode": "portfolio"}, r"unknown margin_mode 'portfolio'"),
        ({"wallet_balance": -1.0}, r"wallet_balance must be a finite number >= 0"),
        ({"tiers": None}, r"venue 'binance' needs tiers"),
        ({"maintenance_margin_rate": 1.5}, r"maintenance_margin_rate 1.5 is outside .*\[0, 1\)"),
        ({"max_leverage": 5.0}, r"leverage 10 is above max_leverage 5; allowed range is \(0, 5\]"),
        (
            {"other_positions": [OtherPosition(1.0, 10.0, 10.0, 0.01)]},
            r"other_positions only apply to margin_mode='cross'",
        ),
        (
            {"venue": "bybit", "tiers": None, "margin_mode": "cross"},
            r"'cross' is implemented for venue 'binance' only",
        ),
        ({"venue": "bybit", "tiers": None}, r"venue 'bybit' needs maintenance_margin_rate"),
        ({"venue": "okx"}, r"tiers are Binance .* apply to venue 'binance' only"),
        ({"venue": "hyperliquid", "tiers": None}, r"'hyperliquid' needs the asset's max_leverage"),
        (
            {
                "venue": "okx",
                "tiers": None,
                "maintenance_margin_rate": 0.01,
                "maintenance_amount": 3.0,
            },
            r"maintenance_amount does not enter the okx formula",
        ),
        (
            {"margin_mode": "cross", "other_positions": [{"qty": 1.0}]},
            r"other position .* is malformed",
        ),
        (
            {"margin_mode": "cross", "other_positions": [OtherPosition(-1.0, 10.0, 10.0, 0.01)]},
            r"other position quantity must be a finite number > 0",
        ),
    ],
)
def test_bad_input_raises_one_clear_line(overrides, message):
    with pytest.raises(ValueError, match=message) as caught:
        call(**overrides)
    assert isinstance(caught.value, ConfigError)
    assert "\n" not in str(caught.value)


def test_bad_tier_table_is_a_value_error():
    with pytest.raises(ValueError, match="gap between bracket 1"):
        LeverageTiers(
            "X",
            "binanceusdm",
            None,
            (Tier(0.0, 100.0, 0.01, 50.0, 0.0), Tier(200.0, 300.0, 0.02, 20.0, 2.0)),
        )


def test_inverse_without_a_unique_answer_says_why():
    with pytest.raises(ConfigError, match="does not depend on the entry price at leverage 1"):
        entry_price_for_liquidation("binance", "long", 1_000.0, 1.0, 1.0, tiers=TIERS_NEW)
    with pytest.raises(ConfigError, match="no positive entry price puts a long's liquidation"):
        entry_price_for_liquidation("binance", "long", -5_000.0, 1.0, 10.0, tiers=TIERS_NEW)
    with pytest.raises(ConfigError, match="liquidation_price must be a finite number"):
        entry_price_for_liquidation(
            "bybit", "short", math.inf, 1.0, 10.0, maintenance_margin_rate=0.005
        )
    with pytest.raises(ConfigError, match=r"above the maximum 75x"):
        # 10 BTC liquidated at 95,000 need an entry near 94.5k: 945k notional allows 75x.
        entry_price_for_liquidation("binance", "short", 95_000.0, 10.0, 100.0, tiers=TIERS_NEW)


def test_liquidation_factor_rejects_bad_notional():
    with pytest.raises(ConfigError, match="notional must be a finite number > 0"):
        liquidation_factor("binance", "long", 10.0, notional=0.0, tiers=TIERS_NEW)
