"""Portfolio runs: several symbols in one account on one clock (backtest.engine.portfolio)."""

from __future__ import annotations

import logging

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from backtest.engine import RunConfig, run
from backtest.engine.portfolio import align_frames
from backtest.engine.runner import load_run_frame
from backtest.errors import ConfigError, DataError, PluginError
from backtest.liquidation.tiers import LeverageTiers, Tier
from backtest.report.metrics import compute_metrics
from backtest.results import Results
from tests.engine.conftest import make_frame

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def one_tier(symbol: str) -> LeverageTiers:
    """One bracket: maintenance rate 1 %, cum 0, up to 50x (keeps the arithmetic by hand)."""
    return LeverageTiers(symbol, "binanceusdm", None, (Tier(0.0, 1e6, 0.01, 50.0, 0.0),))


class _OpenBoth(bt.Strategy):
    """Bar 0: buy 0.5 of the first feed and 2 of the second (filled at bar 1's open)."""

    params = (("sizes", (0.5, 2.0)),)

    def next(self):
        if len(self) == 1:
            for data, size in zip(self.datas, self.p.sizes, strict=False):
                self.buy(data=data, size=size)


def _two_markets() -> dict[str, pd.DataFrame]:
    # BTC: 10,000 for two bars, then 9,500, 9,000 and a bar that falls to 8,000 (low 8,000);
    # ETH: flat at 1,000 on every bar (open = high = low = close).
    btc = make_frame([10_000, 10_000, 9_500, 9_000, 8_000, 8_000])
    eth = make_frame([1_000] * 6)
    return {BTC: btc, ETH: eth}


def _run_pair(margin_mode: str) -> Results:
    config = RunConfig(
        symbol=[BTC, ETH],
        strategy="OpenBoth",
        cash=1_000.0,
        leverage=10.0,
        margin_mode=margin_mode,
        maker_fee=0.0,
        taker_fee=0.0,
    )
    return run(
        config,
        data=_two_markets(),
        strategy_class=_OpenBoth,
        tiers={BTC: one_tier(BTC), ETH: one_tier(ETH)},
    )


def test_cross_margin_loss_on_one_symbol_liquidates_the_whole_account():
    # Wallet WB = 1,000 (no fees).  Long 0.5 BTC @ 10,000 (margin 500) and 2 ETH @ 1,000.
    # Binance cross, one-way: LP = (WB − TMM₁ + UPNL₁ + cum − side·Q·EP) / (Q·MMR − side·Q).
    # For BTC the other position is ETH at mark 1,000: UPNL₁ = 0, TMM₁ = 2 × 1,000 × 1 % = 20.
    #   LP = (1,000 − 20 + 0 + 0 − 0.5 × 10,000) / (0.5 × 0.01 − 0.5) = −4,020 / −0.495
    #      = 8,121.2121…
    # (check: at LP the equity 1,000 + 0.5 × (LP − 10,000) = 60.606 equals the maintenance
    # 0.5 × LP × 1 % + 20 = 60.606).  Bar 4 falls to 8,000 from an open of 9,000, so BTC is
    # liquidated at LP, and with it the whole account: ETH is closed at its close, 1,000.
    # BTC: price loss 0.5 × (10,000 − LP) = 939.394; clearance fee 0.5 × LP × 1.25 % = 50.758
    # (less than what is left).  Wallet 1,000 − 939.394 − 50.758 = 9.848.  ETH: no price loss;
    # its fee 2 × 1,000 × 1.25 % = 25 is capped at the 9.848 left: the account ends at 0.
    results = _run_pair("cross")
    expected_price = (1_000.0 - 20.0 - 0.5 * 10_000.0) / (0.5 * 0.01 - 0.5)
    liquidations = results.liquidations
    assert list(liquidations["symbol"]) == [BTC, ETH]
    assert (liquidations["time"] == results.market.index[4]).all()
    btc, eth = liquidations.iloc[0], liquidations.iloc[1]
    assert btc["fill_price"] == pytest.approx(expected_price, rel=1e-12)
    assert btc["liquidation_price"] == pytest.approx(8_121.212121212121, rel=1e-12)
    assert btc["fee"] == pytest.approx(0.5 * expected_price * 0.0125, rel=1e-12)
    assert btc["loss"] == pytest.approx(0.5 * (10_000.0 - expected_price) + btc["fee"])
    assert eth["fill_price"] == 1_000.0
    assert eth["fee"] == pytest.approx(1_000.0 - btc["loss"], rel=1e-9)
    assert results.equity["value"].iloc[-1] == pytest.approx(0.0, abs=1e-9)
    positions = results.positions.loc[results.market.index[-1].tz_convert("UTC")]
    assert (positions["position_size"] == 0.0).all()
    assert results.trades["liquidated"].all() and len(results.trades) == 2


def test_isolated_margin_liquidation_of_one_position_leaves_the_other_untouched():
    # Isolated: BTC's wallet is its own margin 500.  LP = (500 − 0.5 × 10,000) / (0.005 − 0.5)
    # = 9,090.909…; bar 3 (open 9,500, low 9,000) reaches it: liquidated at LP.  Price loss
    # 0.5 × (10,000 − LP) = 454.545, fee min(0.5 × LP × 1.25 % = 56.8, 500 − 454.545) = 45.455:
    # the loss is the whole margin, 500.  ETH keeps its 2 units, its margin (200) and its own
    # liquidation price (200 − 2,000) / (0.02 − 2) = 909.09…; the account ends at 500.
    results = _run_pair("isolated")
    assert list(results.liquidations["symbol"]) == [BTC]
    btc = results.liquidations.iloc[0]
    assert not btc["gap"] and btc["time"] == results.market.index[3]
    assert btc["fill_price"] == pytest.approx(4_500.0 / 0.495, rel=1e-12)
    assert btc["loss"] == pytest.approx(500.0)
    eth = results.positions[results.positions["symbol"] == ETH]
    assert (eth["position_size"].iloc[1:] == 2.0).all()
    expected = (200.0 - 2_000.0) / (0.02 - 2.0)
    assert eth["liquidation_price"].iloc[1:].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert results.equity["value"].iloc[-1] == pytest.approx(500.0)
    assert results.equity["margin_used"].iloc[-1] == pytest.approx(200.0)
    assert set(results.orders["symbol"]) == {BTC, ETH}


# -- a portfolio of one symbol is today's single-symbol run --------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        # the map-driven default strategy
        {"strategy": "ClusterFade", "since": "2025-10-08", "until": "2025-10-13", "leverage": 10},
        # a levered hold through the crash: liquidations, funding, near misses
        {
            "strategy": "BuyAndHold",
            "since": "2025-10-09",
            "until": "2025-10-12",
            "leverage": 50,
            "params": {"exposure": 30.0},
        },
    ],
)
def test_a_one_symbol_portfolio_run_equals_the_single_symbol_run(settings):
    logging.getLogger("backtest.warmup").setLevel(logging.ERROR)
    config = RunConfig(**settings)
    frame = load_run_frame(config)
    single = run(config, data=frame)
    portfolio = run(config, data={config.symbol: frame})  # through the portfolio runner
    assert "positions" not in single.meta and single.positions.empty
    assert portfolio.meta["symbols"] == [config.symbol]
    for name in ("orders", "trades", "liquidations", "funding", "near_misses", "market"):
        table = getattr(portfolio, name)
        assert (table["symbol"] == config.symbol).all()
        assert_frame_equal(table.drop(columns="symbol"), getattr(single, name), check_exact=True)
    for name in ("clusters", "heatmap"):  # no map lines for BuyAndHold: both empty
        table = getattr(portfolio, name)
        bare = table.drop(columns="symbol") if "symbol" in table.columns else table
        assert_frame_equal(bare, getattr(single, name), check_exact=True)
    assert (len(single.clusters) > 0) == (settings["strategy"] == "ClusterFade")
    view = portfolio.for_symbol(config.symbol)
    assert_frame_equal(view.equity, single.equity, check_exact=True)
    assert compute_metrics(view) == pytest.approx(compute_metrics(single), nan_ok=True)
    if settings["strategy"] == "BuyAndHold":
        assert len(single.liquidations) > 0 and len(single.funding) > 0


# -- the clock ---------------------------------------------------------------------------------
def test_bars_missing_from_one_market_are_dropped_from_all_and_funding_moves_on():
    btc = make_frame([100.0] * 6, funding={2: 0.001, 5: 0.002})
    eth = make_frame([10.0] * 6).drop(index=make_frame([10.0] * 6).index[[2, 5]])
    aligned = align_frames({BTC: btc, ETH: eth})
    assert list(aligned[BTC].index) == list(eth.index)
    assert aligned[ETH] is eth
    # Bar 2's settlement (dropped) is paid on the next common bar, 3; bar 5 has no next bar.
    rates = aligned[BTC]["funding_rate"].to_numpy()
    assert rates[2] == 0.001 and np.isnan(rates[[0, 1, 3]]).all()


def test_markets_without_a_common_bar_are_refused():
    btc = make_frame([100.0] * 3, start="2025-10-01")
    eth = make_frame([10.0] * 3, start="2025-11-01")
    with pytest.raises(DataError, match="share no bar time"):
        align_frames({BTC: btc, ETH: eth})


def test_symbol_lists_from_flags_and_files():
    assert RunConfig(symbol="BTC/USDT:USDT, ETH/USDT:USDT").symbols == (BTC, ETH)
    assert RunConfig(symbol=[BTC]).symbol == BTC and not RunConfig(symbol=[BTC]).portfolio
    config = RunConfig.from_dict({"symbols": [BTC, ETH]})
    assert config.portfolio and config.to_dict()["symbol"] == [BTC, ETH]
    assert RunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="twice"):
        RunConfig(symbol=[BTC, BTC])
    with pytest.raises(ConfigError, match="either symbol or symbols"):
        RunConfig.from_dict({"symbol": BTC, "symbols": [ETH]})
    with pytest.raises(ConfigError, match="one frame per symbol"):
        run(RunConfig(symbol=[BTC, ETH]), data={BTC: make_frame([1.0, 2.0])})


def test_each_feed_has_its_own_map_and_a_strategy_error_is_reported():
    seen = {}

    class Probe(__import__("backtest").Strategy):
        def next(self):
            seen["maps"] = sorted(self.maps)
            seen["second"] = self.clusters_for(ETH) is self.maps[ETH]
            seen["first"] = self.clusters is self.clusters_for(self.datas[0])
            raise RuntimeError("boom")

    logging.getLogger("backtest.warmup").setLevel(logging.ERROR)
    config = RunConfig(symbol=[BTC, ETH], since="2025-10-08", until="2025-10-09")
    with pytest.raises(PluginError, match=r"strategy Probe .* failed at bar") as caught:
        run(config, strategy_class=Probe)
    assert seen == {"maps": [BTC, ETH], "second": True, "first": True}
    assert caught.value.results.meta["status"] == "failed"


def test_a_real_two_symbol_run_keeps_each_symbols_funding_map_and_candles(tmp_path):
    logging.getLogger("backtest.warmup").setLevel(logging.ERROR)
    config = RunConfig(
        symbol=[BTC, ETH],
        strategy="BuyAndHold",
        since="2025-10-09",
        until="2025-10-12",
        leverage=3.0,
        margin_mode="cross",
    )
    results = run(config)
    assert results.complete and results.meta["bars_dropped"] == {BTC: 0, ETH: 0}
    assert results.market.groupby("symbol").size().to_dict() == {BTC: 864, ETH: 864}
    assert set(results.heatmap["symbol"]) == {BTC, ETH}
    heatmap = results.heatmap
    for symbol in (BTC, ETH):  # each heatmap on its own symbol's price grid
        market = results.market[results.market["symbol"] == symbol]
        prices = heatmap[heatmap["symbol"] == symbol]["price"]
        assert market["low"].min() * 0.85 < prices.min() < market["low"].min()
        assert market["high"].max() < prices.max() < market["high"].max() * 1.15
    assert results.meta["tiers"].keys() == {BTC, ETH}
    assert "BTCUSDT_ETHUSDT" in results.meta["run_id"]
    loaded = Results.load(results.save(tmp_path / "run"))
    assert loaded.symbols == (BTC, ETH) and loaded.portfolio
    assert_frame_equal(loaded.positions, results.positions)


def test_each_symbol_pays_funding_at_its_own_settlements():
    # BTC settles +0.1 % on bar 3, ETH −0.2 % on bar 2 (flat prices: mark = open).
    # BTC pays 0.5 × 10,000 × 0.001 = 5; ETH receives 2 × 1,000 × 0.002 = 4.
    markets = {
        BTC: make_frame([10_000] * 6, funding={3: 0.001}),
        ETH: make_frame([1_000] * 6, funding={2: -0.002}),
    }
    config = RunConfig(symbol=[BTC, ETH], cash=1_000.0, leverage=10.0, taker_fee=0.0)
    results = run(
        config,
        data=markets,
        strategy_class=_OpenBoth,
        tiers={BTC: one_tier(BTC), ETH: one_tier(ETH)},
    )
    funding = results.funding
    assert list(funding["symbol"]) == [ETH, BTC]
    assert list(funding["time"]) == [results.market.index[2], results.market.index[3]]
    assert funding["payment"].tolist() == pytest.approx([-4.0, 5.0])
    assert results.equity["funding_cum"].iloc[-1] == pytest.approx(1.0)
    assert results.equity["value"].iloc[-1] == pytest.approx(999.0)


def test_a_bar_missing_from_one_market_is_skipped_by_all_and_its_funding_paid_next():
    # ETH has no bar 2; BTC settles +0.1 % on bar 2, so it is paid on bar 3 (BTC's open there,
    # 10,100): 0.5 × 10,100 × 0.001 = 5.05.
    btc = make_frame([10_000, 10_000, 10_100, 10_100, 10_100], funding={2: 0.001})
    eth = make_frame([1_000] * 5)
    eth = eth.drop(index=eth.index[2])
    config = RunConfig(symbol=[BTC, ETH], cash=1_000.0, leverage=10.0, taker_fee=0.0)
    results = run(
        config,
        data={BTC: btc, ETH: eth},
        strategy_class=_OpenBoth,
        tiers={BTC: one_tier(BTC), ETH: one_tier(ETH)},
    )
    assert results.meta["bars_dropped"] == {BTC: 1, ETH: 0}
    assert len(results.equity) == 4 and btc.index[2] not in results.equity.index
    assert list(results.funding["time"]) == [btc.index[3]]
    assert results.funding["payment"].iloc[0] == pytest.approx(5.05)


def test_a_portfolio_symbol_without_funding_is_named_in_the_warnings():
    from backtest.report.realism import run_warnings

    markets = _two_markets()
    markets[BTC] = markets[BTC].assign(
        funding_rate=[float("nan")] * 3 + [0.0001] + [float("nan")] * 2
    )
    config = RunConfig(symbol=[BTC, ETH], strategy="OpenBoth", cash=1_000.0, leverage=10.0)
    results = run(
        config,
        data=markets,
        strategy_class=_OpenBoth,
        tiers={BTC: one_tier(BTC), ETH: one_tier(ETH)},
    )
    assert results.meta["funding_settlements_by_symbol"] == {BTC: 1, ETH: 0}
    assert results.meta["funding_settlements"] == 1
    warnings = " ".join(run_warnings(results))
    assert f"no funding series covers {ETH}" in warnings and BTC not in warnings
    # with both symbols unfunded the account-wide sentence is given, once
    bare = run(
        config,
        data=_two_markets(),
        strategy_class=_OpenBoth,
        tiers={BTC: one_tier(BTC), ETH: one_tier(ETH)},
    )
    assert bare.meta["funding_settlements"] == 0
    texts = run_warnings(bare)
    assert sum("funding was not charged" in text for text in texts) == 1
