import pytest

from backtest.config import merge, read_toml
from backtest.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_reads_fields_and_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "backtest.config.run_config_fields",
        lambda: ["symbol", "since", "leverage", "params", "map_params"],
    )
    path = write(
        tmp_path,
        'symbol = "ETH/USDT:USDT"\nsince = 2025-10-02\nleverage = 5\n'
        "[params]\nband = 0.05\n[map]\nbucket_width = 0.002\n[sweep]\nband = [0.02, 0.03]\n",
    )
    settings = read_toml(path)
    assert settings == {
        "symbol": "ETH/USDT:USDT",
        "since": "2025-10-02",
        "leverage": 5,
        "params": {"band": 0.05},
        "map_params": {"bucket_width": 0.002},
        "sweep": {"band": [0.02, 0.03]},
    }


def test_flags_override_file_and_merge_tables():
    file_settings = {"leverage": 5, "cash": 1000.0, "params": {"band": 0.05, "hold_bars": 6}}
    flags = {"leverage": 3.0, "cash": None, "params": {"band": 0.02}}
    assert merge(file_settings, flags) == {
        "leverage": 3.0,
        "cash": 1000.0,
        "params": {"band": 0.02, "hold_bars": 6},
    }


def test_unknown_key_suggests_the_right_one(tmp_path, monkeypatch):
    monkeypatch.setattr("backtest.config.run_config_fields", lambda: ["leverage", "params"])
    path = write(tmp_path, "leverge = 5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'leverge' \(did you mean leverage\?\)"):
        read_toml(path)


def test_malformed_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(write(tmp_path, "symbol = \n"))
    with pytest.raises(ConfigError, match="does not exist"):
        read_toml(tmp_path / "nope.toml")
