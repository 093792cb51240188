"""RunConfig validation and round trip, run() on real data, failures, Results save/load."""

from __future__ import annotations

import json
import math
import pickle

import backtrader as bt
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from backtest.engine import RunConfig, run
from backtest.engine.runner import check_leverage
from backtest.errors import ConfigError, PluginError
from backtest.results import Results


# -- RunConfig ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cash": 0.0}, "cash must be > 0"),
        ({"cash": -5}, "cash must be > 0"),
        ({"cash": "lots"}, "cash must be a number"),
        ({"leverage": 0}, "leverage must be > 0"),
        ({"leverage": -2.0}, "leverage must be > 0"),
        ({"leverage": math.inf}, "finite"),
        ({"margin_mode": "portfolio"}, "margin_mode 'portfolio' is unknown"),
        ({"maker_fee": -0.0001}, "maker_fee"),
        ({"taker_fee": 0.5}, "taker_fee"),
        ({"venue": "binanse"}, "did you mean 'binance'"),
        ({"timeframe": "5 minutes"}, "timeframe"),
        ({"since": "2025-10-10", "until": "2025-10-01"}, "is not before"),
        ({"since": "yesterday-ish"}, "since"),
        ({"near_miss_pct": 0.0}, "near_miss_pct"),
        ({"funding": "yes"}, "funding must be true or false"),
        ({"params": {"band": object()}}, "params must hold"),
        ({"params": [1, 2]}, "params must be a mapping"),
        ({"symbol": ""}, "symbol must be a non-empty string"),
        ({"liquidation_fee": 1.5}, "liquidation_fee"),
    ],
)
def test_invalid_settings_raise_one_clear_config_error(changes, message):
    with pytest.raises(ConfigError, match=message) as caught:
        RunConfig(**changes)
    assert "\n" not in str(caught.value)


def test_to_dict_is_json_safe_and_from_dict_reads_it_back():
    config = RunConfig(
        since="2025-10-01",
        until="2025-10-05T12:00",
        params={"band": 0.03, "sides": ["long", "short"]},
        map_params={"half_life_bars": 288},
        leverage=5,
        data_dir=None,
    )
    document = json.loads(json.dumps(config.to_dict()))
    assert document["params"] == {"band": 0.03, "sides": ["long", "short"]}
    assert document["leverage"] == 5.0 and document["until"] == "2025-10-05T12:00"
    assert RunConfig.from_dict(document) == config
    assert pickle.loads(pickle.dumps(config)) == config


def test_config_is_frozen_and_its_mappings_read_only():
    config = RunConfig(params={"band": 0.03})
    with pytest.raises(AttributeError):
        config.cash = 5.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.params["band"] = 0.05  # type: ignore[index]


def test_from_dict_names_unknown_keys_and_ignores_unset_values():
    with pytest.raises(ConfigError, match="did you mean leverage"):
        RunConfig.from_dict({"leverag": 3})
    assert RunConfig.from_dict({"cash": None, "leverage": 4}).cash == RunConfig().cash


def test_dates_are_normalised_to_utc_text():
    config = RunConfig(since=pd.Timestamp("2025-10-01 02:00", tz="Europe/Paris"))
    assert config.since == "2025-10-01"


def test_leverage_above_the_tier_maximum_for_the_initial_notional(btc_tiers):
    # cash 1,000 × 150 = 150,000 notional: the 50,000–600,000 bracket allows 100x.
    with pytest.raises(ConfigError, match="exceeds the 100x maximum"):
        check_leverage(RunConfig(cash=1_000.0, leverage=150.0), btc_tiers)
    check_leverage(RunConfig(cash=1_000.0, leverage=100.0), btc_tiers)


def test_run_refuses_leverage_above_the_maximum_before_running(frame_factory, btc_tiers):
    frame = frame_factory([100.0] * 3)
    with pytest.raises(ConfigError, match="leverage 150"):
        run(
            RunConfig(cash=1_000.0, leverage=150.0),
            data=frame,
            strategy_class=bt.Strategy,
            tiers=btc_tiers,
        )


# -- running on the bundled real sample --------------------------------------------------------
class _HoldLong(bt.Strategy):
    def next(self):
        if len(self) == 1:
            self.buy(
                size=self.broker.getcommissioninfo(self.data).getsize(self.data.close[0], 900.0)
            )


def test_real_crash_liquidates_a_10x_long_but_not_a_3x_long(tmp_path):
    # BTC/USDT:USDT 5m, 2025-10-09..11 (the 2025-10-10 crash: 123,157 → 101,517, −17.6 %).
    # Tiers: the snapshot in force, loaded by run(); funding: the real 8-hourly settlements.
    settings = {"timeframe": "5m", "since": "2025-10-09", "until": "2025-10-12", "cash": 1_000.0}
    ten = run(RunConfig(leverage=10.0, **settings), strategy_class=_HoldLong)
    three = run(RunConfig(leverage=3.0, **settings), strategy_class=_HoldLong)
    assert ten.complete and three.complete
    assert len(ten.equity) == len(ten.market) == 864
    assert len(ten.liquidations) == 1 and three.liquidations.empty
    row = ten.liquidations.iloc[0]
    margin = ten.equity["margin_used"].iloc[5]
    assert 0.0 < row["loss"] <= margin * (1 + 1e-12)
    assert ten.liquidations["time"].iloc[0] < pd.Timestamp("2025-10-11", tz="UTC")
    assert three.funding["time"].dt.hour.isin([0, 8, 16]).all() and len(three.funding) == 8
    assert three.equity["funding_cum"].iloc[-1] == pytest.approx(three.funding["payment"].sum())
    assert ten.meta["status"] == "complete" and ten.meta["symbol"] == "BTC/USDT:USDT"
    loaded = Results.load(ten.save(tmp_path / "ten"))
    assert_frame_equal(loaded.liquidations, ten.liquidations)


def test_results_round_trip_through_save_and_load(tmp_path, frame_factory, run_script):
    closes = [100, 100, 100, 95, 88, 88]
    frame = frame_factory(
        closes, opens=closes, funding={3: 0.0001}, lows=[100, 100, 100, 91, 88, 88]
    )
    results = run_script(frame, {0: [("buy", {"size": 10.0})]}, cash=1_000.0, leverage=10.0)
    assert len(results.liquidations) == 1 and len(results.funding) == 1
    loaded = Results.load(results.save(tmp_path / "run"))
    assert loaded.meta == results.meta and loaded.config == results.config
    for name in ("equity", "trades", "orders", "liquidations", "funding", "near_misses", "market"):
        assert_frame_equal(getattr(loaded, name), getattr(results, name), check_freq=False)
    assert loaded.complete


# -- failures ----------------------------------------------------------------------------------
class _Explodes(bt.Strategy):
    def next(self):
        if len(self) == 3:
            raise ZeroDivisionError("bad ratio")


def test_a_strategy_error_becomes_a_plugin_error_with_bar_time_and_cause(frame_factory, btc_tiers):
    frame = frame_factory([100.0] * 6)
    with pytest.raises(PluginError) as caught:
        run(RunConfig(cash=1_000.0), data=frame, strategy_class=_Explodes, tiers=btc_tiers)
    error = caught.value
    message = str(error)
    assert "_Explodes" in message and "2025-10-01T02:00:00+00:00" in message
    assert "ZeroDivisionError: bad ratio" in message
    assert isinstance(error.__cause__, ZeroDivisionError)
    partial = error.results
    assert partial.meta["status"] == "failed" and not partial.complete
    assert partial.meta["error"] == message
    assert len(partial.equity) == 2  # the bars before the failing one


def test_strategy_class_is_resolved_from_the_config_by_the_plugin_loader(
    tmp_path, frame_factory, btc_tiers
):
    plugin = tmp_path / "hold.py"
    plugin.write_text(
        "import backtest\n\n"
        "class Hold(backtest.Strategy):\n"
        "    '''Buy once.'''\n"
        "    uses_clusters = False\n"
        "    params = (('size', 1.0),)\n\n"
        "    def next(self):\n"
        "        if not self.position:\n"
        "            self.buy(size=self.p.size)\n",
        encoding="utf-8",
    )
    config = RunConfig(strategy=f"{plugin}:Hold", params={"size": 2.0}, cash=1_000.0, leverage=5.0)
    results = run(config, data=frame_factory([100.0] * 5), tiers=btc_tiers)
    assert results.meta["strategy"] == "Hold"
    assert results.equity["position_size"].iloc[-1] == 2.0


def test_progress_bar_runs(frame_factory, btc_tiers, capsys):
    results = run(
        RunConfig(cash=1_000.0),
        data=frame_factory([100.0] * 50),
        strategy_class=bt.Strategy,
        tiers=btc_tiers,
        progress=True,
    )
    assert results.complete and len(results.equity) == 50


def test_tiers_are_the_snapshot_in_force_at_the_first_bar(frame_factory):
    # cash 1,000 × 150 = 150,000 notional.  Binance's 2024-10-24 brackets allow 100x there
    # (bracket 50,000–600,000); the 2026-09-30 snapshot's first bracket (to 300,000) allows 150x.
    config = RunConfig(cash=1_000.0, leverage=150.0)
    with pytest.raises(ConfigError, match="100x maximum"):
        run(config, data=frame_factory([100.0] * 3, start="2025-10-01"), strategy_class=bt.Strategy)
    results = run(
        config, data=frame_factory([100.0] * 3, start="2026-10-01"), strategy_class=bt.Strategy
    )
    assert results.complete
