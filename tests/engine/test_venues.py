"""Runs on every venue: liquidation formula, tier snapshot, funding schedule, map defaults.

The broker tests work each liquidation price out by hand from the venue's documented formula
(the comments give the arithmetic; :mod:`backtest.liquidation.prices` cites the pages).  The
end-to-end runs use a small store built under ``tmp_path`` with **synthetic** SOL candles (a
seeded random walk around 200 USDT): the bundled sample holds only real BTC and ETH, and its rows
renamed would not be SOL.
"""

from __future__ import annotations

import datetime as dt
import json

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from backtest.cli import main
from backtest.engine import RunConfig, build_cerebro
from backtest.engine.commission import LIQUIDATION_FEE_RATES
from backtest.engine.venues import (
    funding_interval_hours,
    map_defaults,
    venue_for_exchange,
)
from backtest.errors import ConfigError
from backtest.liquidation.heatmap import MapParams
from backtest.liquidation.tiers import LeverageTiers, Tier, load_tiers, write_snapshot
from backtest.market import store
from backtest.results import Results

# Tier tables of the hand checks (first brackets as the venues publish them).
BYBIT = LeverageTiers(
    "SOL/USDT:USDT",
    "bybit",
    None,
    (Tier(0.0, 2_000_000.0, 0.005, 100.0), Tier(2_000_000.0, 2_600_000.0, 0.0056, 89.28, 1200.0)),
)
OKX = LeverageTiers("SOL/USDT:USDT", "okx", None, (Tier(0.0, 600_000.0, 0.004, 125.0),))
# Hyperliquid SOL: max leverage 20, maintenance rate 1 / (2 * 20) = 0.025
HYPERLIQUID = LeverageTiers("SOL/USDC:USDC", "hyperliquid", None, (Tier(0.0, 1e15, 0.025, 20.0),))
BINANCE = load_tiers("SOL/USDT:USDT", at="2025-10-10")  # first bracket 0.5 %, cum 0

# Entry 100, 5 SOL (500 USDT notional) at 10x: margin 50 USDT.
EXPECTED = {
    # Bybit: LP = EP - (IM - MM)/Q = 100 - (50 - 500*0.005)/5 = 100 - 9.5
    # (the help centre's EP*(1 - 1/L + MMR) = 100*(1 - 0.1 + 0.005))
    "bybit": (BYBIT, 90.5),
    # OKX: LP = (EP - margin/Q) / (1 - (MMR + taker fee)) = 90 / (1 - 0.0045)
    "okx": (OKX, 90.0 / 0.9955),
    # Hyperliquid: LP = EP - (margin - Q*EP*l)/Q/(1 - l), l = 0.025: 100 - 7.5/0.975
    "hyperliquid": (HYPERLIQUID, 100.0 - 7.5 / 0.975),
    # Binance: LP = (WB + cum - Q*EP)/(Q*MMR - Q) = (50 - 500)/(0.025 - 5) = 450/4.975
    "binanceusdm": (BINANCE, 450.0 / 4.975),
}


@pytest.mark.parametrize("exchange", list(EXPECTED))
def test_broker_liquidates_at_the_hand_computed_price(exchange, frame_factory, run_cerebro):
    tiers, expected = EXPECTED[exchange]
    venue = venue_for_exchange(exchange)
    # bar 1 fills the long at its open (100); bar 2 dips to just above the liquidation price,
    # bar 3 crosses it.
    lows = [100.0, 99.0, expected + 0.01, expected - 1.0, 95.0]
    frame = frame_factory([100.0] * 5, lows=lows)
    _, broker = run_cerebro(
        frame,
        {0: [("buy", {"size": 5.0})]},
        exchange=exchange,
        leverage=10.0,
        cash=1_000.0,
        taker_fee=0.0005,
        funding=False,
        tiers=tiers,
    )
    assert broker.p.venue == venue
    (event,) = broker.liquidation_events
    assert event["liquidation_price"] == pytest.approx(expected, rel=1e-12)
    assert event["fill_price"] == pytest.approx(expected, rel=1e-12)  # the bar crossed it
    assert event["entry_price"] == 100.0 and event["margin"] == pytest.approx(50.0)
    assert bt.num2date(event["time"]) == frame.index[3].tz_convert(None).to_pydatetime()
    # the venue's clearance fee (Binance 1.25 %, none on the others), capped at the margin left
    price_loss = (100.0 - expected) * 5.0
    nominal = LIQUIDATION_FEE_RATES[venue] * 5.0 * expected
    assert event["fee"] == pytest.approx(min(nominal, 50.0 - price_loss), abs=1e-9)
    assert event["loss"] == pytest.approx(price_loss + event["fee"])


def test_hyperliquid_funding_is_charged_every_hour(frame_factory, run_cerebro):
    # hourly settlements on bars 1..4: 5 SOL long pays 5 * 100 * rate at each
    rates = {1: 0.0001, 2: -0.00005, 3: 0.0002, 4: 0.0001}
    frame = frame_factory([100.0] * 6, funding=rates)
    _, broker = run_cerebro(
        frame,
        {0: [("buy", {"size": 5.0})]},
        exchange="hyperliquid",
        leverage=5.0,
        tiers=HYPERLIQUID,
    )
    payments = [event[-1] for event in broker.funding_events]
    assert payments == pytest.approx([5.0 * 100.0 * rate for rate in list(rates.values())[1:]])


def test_funding_interval_and_map_defaults_follow_the_series():
    hourly = pd.DataFrame(index=pd.date_range("2025-10-01", periods=3, freq="1h", tz="UTC"))
    hourly.attrs["funding_times"] = np.arange(5, dtype=np.int64) * 3_600_000
    assert funding_interval_hours(hourly, "binance") == 1.0
    assert funding_interval_hours(pd.DataFrame(), "hyperliquid") == 1.0
    assert funding_interval_hours(pd.DataFrame(), "bybit") == 8.0
    base = MapParams()
    defaults = map_defaults("hyperliquid", HYPERLIQUID, {}, funding_hours=1.0)
    assert defaults["venue"] == "hyperliquid"
    assert defaults["maintenance_margin_rate"] == 0.025
    # an hourly rate is an eighth of an 8-hour one: same premium, same lean of the long share
    assert defaults["neutral_funding_rate"] == pytest.approx(base.neutral_funding_rate / 8)
    assert defaults["long_share_funding_tilt"] == pytest.approx(base.long_share_funding_tilt * 8)
    # leverages at or above SOL's 20x are folded into 20x, with their weights
    pairs = list(zip(base.leverages, base.leverage_weights, strict=True))
    assert defaults["leverages"] == [lev for lev, _ in pairs if lev < 20.0] + [20.0]
    assert defaults["leverage_weights"][-1] == pytest.approx(
        sum(weight for lev, weight in pairs if lev >= 20.0)
    )
    assert sum(defaults["leverage_weights"]) == pytest.approx(1.0)
    # 8-hour venue: the venue fields, and leverages only beyond Bybit's 100x folded
    bybit = map_defaults("bybit", BYBIT, {}, funding_hours=8.0)
    assert bybit["venue"] == "bybit" and bybit["maintenance_margin_rate"] == 0.005
    assert max(bybit.get("leverages", base.leverages)) <= 100.0
    assert "neutral_funding_rate" not in bybit and "long_share_funding_tilt" not in bybit
    # a user's venue or rate keeps all venue fields out; other fields they set are kept
    user = {"maintenance_margin_rate": 0.01, "neutral_funding_rate": 0.0}
    assert "venue" not in map_defaults("okx", OKX, user, funding_hours=1.0)
    assert "neutral_funding_rate" not in map_defaults("okx", OKX, user, funding_hours=1.0)


def test_map_places_levels_with_the_runs_venue(frame_factory):
    from backtest.strategy import Strategy

    probe = type("Probe", (Strategy,), {"next": lambda self: None})
    frame = frame_factory([100.0 + (i % 7) for i in range(60)], freq="5min")
    frame.attrs["timeframe"] = "5m"
    config = RunConfig(exchange="bybit", symbol="SOL/USDT:USDT", strategy="Probe")
    cerebro = build_cerebro(config, frame, probe, tiers=BYBIT)
    strategy = cerebro.run()[0]
    params = strategy.clusters.liquidation_map.params
    assert params.venue == "bybit" and params.maintenance_margin_rate == 0.005
    # a --map setting wins over the venue default
    config = config.replace(map_params={"venue": "binance", "maintenance_margin_rate": 0.004})
    strategy = build_cerebro(config, frame, probe, tiers=BYBIT).run()[0]
    assert strategy.clusters.liquidation_map.params.venue == "binance"


# --------------------------------------------------------------------------------------------
# end to end on a synthetic store
# --------------------------------------------------------------------------------------------
SYMBOLS = {"bybit": "SOL/USDT:USDT", "okx": "SOL/USDT:USDT", "hyperliquid": "SOL/USDC:USDC"}
TIER_ROWS = {
    "bybit": [
        {
            "minNotional": 0.0,
            "maxNotional": 400_000.0,
            "maintenanceMarginRate": 0.01,
            "maxLeverage": 50.0,
            "info": {"mmDeduction": ""},
        },
        {
            "minNotional": 400_000.0,
            "maxNotional": 800_000.0,
            "maintenanceMarginRate": 0.015,
            "maxLeverage": 33.33,
            "info": {"mmDeduction": "2000"},
        },
    ],
    "okx": [
        {
            "minNotional": 0.0,
            "maxNotional": 500_000.0,
            "maintenanceMarginRate": 0.01,
            "maxLeverage": 50.0,
            "info": {},
        }
    ],
    "hyperliquid": [
        {
            "minNotional": 0.0,
            "maxNotional": 1e15,
            "maintenanceMarginRate": 0.025,
            "maxLeverage": 20.0,
            "info": {},
        }
    ],
}


def synthetic_store(root, exchange: str, *, tiers: bool = True) -> str:
    """Write SYNTHETIC 5m SOL candles (seeded random walk) and funding, and a tier snapshot."""
    symbol = SYMBOLS.get(exchange, "SOL/USDT:USDT")
    rng = np.random.default_rng(7)
    count = 3 * 288
    start = int(pd.Timestamp("2025-10-08", tz="UTC").timestamp() * 1000)
    times = start + np.arange(count, dtype=np.int64) * 300_000
    closes = 200.0 * np.exp(np.cumsum(rng.normal(0.0, 0.003, count)))
    opens = np.concatenate([[200.0], closes[:-1]])
    spread = np.abs(rng.normal(0.0, 0.002, count)) * closes
    candles = pd.DataFrame(
        {
            store.TIMESTAMP: times,
            "open": opens,
            "high": np.maximum(opens, closes) + spread,
            "low": np.minimum(opens, closes) - spread,
            "close": closes,
            "volume": rng.uniform(5_000.0, 20_000.0, count),
        }
    )
    hours = 1 if exchange == "hyperliquid" else 8
    settle = np.arange(start, times[-1], hours * 3_600_000, dtype=np.int64)
    funding = pd.DataFrame(
        {store.TIMESTAMP: settle, "funding_rate": rng.normal(1e-4 * hours / 8, 2e-5, settle.size)}
    )
    for series, frame, timeframe in (("ohlcv", candles, "5m"), ("funding", funding, None)):
        path = store.series_path(root, exchange, symbol, series, timeframe)
        store.write_series(
            path,
            frame,
            series=series,
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            source="synthetic test data",
        )
    if tiers:
        write_snapshot(
            root / "tiers",
            {symbol: TIER_ROWS[exchange]},
            exchange=exchange,
            effective_date=dt.date(2025, 10, 1),
            source="constructed for tests",
        )
    return symbol


@pytest.mark.parametrize("exchange", list(SYMBOLS))
def test_cli_run_on_each_venue_uses_its_tiers_and_names_the_snapshot(tmp_path, capsys, exchange):
    symbol = synthetic_store(tmp_path / "data", exchange)
    folder = tmp_path / "report"
    code = main(
        [
            "run",
            *("--exchange", exchange, "--symbol", symbol),
            *("--data-dir", str(tmp_path / "data"), "--report", str(folder)),
            *("--leverage", "5", "--json"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = Results.load(folder)
    assert results.complete
    assert results.config["exchange"] == exchange
    assert results.config["venue"] == exchange
    name = results.meta["tiers"][symbol]
    assert name.startswith(f"{exchange} 2025-10-01 (") and "tiers" in name
    assert name in (folder / "report.html").read_text(encoding="utf-8")
    assert json.loads(captured.out)["symbol"] == symbol


def test_binance_run_names_the_bundled_snapshot(tmp_path, capsys):
    folder = tmp_path / "report"
    code = main(["run", "--since", "2025-10-09", "--until", "2025-10-10", "--report", str(folder)])
    assert code == 0, capsys.readouterr().err
    name = Results.load(folder).meta["tiers"]["BTC/USDT:USDT"]
    assert name == "binanceusdm 2025-10-07 (bundled binanceusdm-2025-10-07.json.gz)"


def test_binance_sol_run_uses_sols_bundled_tiers(tmp_path, capsys):
    symbol = synthetic_store(tmp_path / "data", "binanceusdm", tiers=False)
    data = ["--symbol", symbol, "--data-dir", str(tmp_path / "data")]
    folder = tmp_path / "report"
    assert main(["run", *data, "--report", str(folder), "-q"]) == 0, capsys.readouterr().err
    name = Results.load(folder).meta["tiers"][symbol]
    assert name == "binanceusdm 2025-10-07 (bundled binanceusdm-2025-10-07.json.gz)"
    # SOL's own brackets bound the leverage: 100x on 10,000 USDT is a 1,000,000 position,
    # where SOL's table allows 50x (BTC's would allow 100x)
    sol = load_tiers(symbol, at="2025-10-08")
    allowed = sol.max_leverage_for_notional(1_000_000.0)
    assert allowed < load_tiers(at="2025-10-08").max_leverage_for_notional(1_000_000.0)
    code = main(["run", *data, "--leverage", "100", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and f"exceeds the {allowed:g}x maximum of {symbol} tiers" in err


def test_venue_without_tiers_is_one_line_naming_the_download(tmp_path, capsys):
    symbol = synthetic_store(tmp_path / "data", "bybit", tiers=False)
    code = main(
        ["run", "--exchange", "bybit", "--symbol", symbol, "--data-dir", str(tmp_path / "data")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "no bybit leverage-tier snapshot holds SOL/USDT:USDT" in err
    assert "python -m backtest download --exchange bybit --symbol SOL/USDT:USDT" in err


@pytest.mark.parametrize(
    ("exchange", "hint"),
    [("bybt", "did you mean 'bybit'?"), ("binance", "did you mean 'binanceusdm'?")],
)
def test_unknown_exchange_is_one_line_with_did_you_mean(capsys, exchange, hint):
    code = main(["run", "--exchange", exchange])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and hint in err


def test_cross_margin_off_binance_is_refused():
    with pytest.raises(ConfigError, match="cross margin is modelled with Binance's formula only"):
        RunConfig(exchange="okx", margin_mode="cross")


@pytest.mark.parametrize("symbol", ["SOL/USDT:USDT", "DOGE/USDT:USDT", "XRP/USDT:USDT"])
def test_binance_altcoin_map_folds_leverages_it_cannot_use(symbol):
    tiers = load_tiers(symbol, at="2024-11-01")
    defaults = map_defaults("binance", tiers, {})
    allowed = tiers.max_leverage_for_notional(10_000.0)
    assert max(defaults.get("leverages", [100.0])) <= allowed


@pytest.mark.parametrize("exchange", ["binanceusdm", "hyperliquid"])
def test_heatmap_command_uses_the_venue_defaults(tmp_path, capsys, exchange):
    # SOL allows 100x on Binance and 20x on Hyperliquid; the map's default leverages reach 125x
    symbol = synthetic_store(tmp_path / "data", exchange, tiers=exchange != "binanceusdm")
    code = main(
        [
            "heatmap",
            *("--exchange", exchange, "--symbol", symbol, "--window", "1d"),
            *("--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("*.html"))) == 1
