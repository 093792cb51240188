"""Map profiles: round trip, overrides, bad files, and their use by run, sweep and heatmap."""

from __future__ import annotations

import pytest

from backtest.errors import ConfigError
from backtest.liquidation.cascade import CascadeParams
from backtest.liquidation.heatmap import MapParams
from backtest.liquidation.profiles import (
    dumps_toml,
    load_profile,
    map_params_with_profile,
    read_profile,
    write_profile,
)


def test_round_trip(tmp_path) -> None:
    params = MapParams(
        half_life_hours=17.25,
        leverages=(2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0),
        leverage_weights=(0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05),
        participation=0.0123,
        cascade=CascadeParams(),
        entry_points=7,
    )
    record = {"symbols": ["BTC/USDT:USDT"], "train_since": "2025-01-01T00:00:00+00:00",
              "train_until": "2025-07-01T00:00:00+00:00",
              "train_scores": {"BTC/USDT:USDT": {"map": {"spearman_long": 0.9}}}}  # fmt: skip
    path = write_profile(tmp_path / "p.toml", params, record)
    loaded = read_profile(path)
    assert loaded.params == params
    assert loaded.fitted_window == ("2025-01-01T00:00:00+00:00", "2025-07-01T00:00:00+00:00")
    assert loaded.calibration["train_scores"]["BTC/USDT:USDT"]["map"]["spearman_long"] == 0.9


def test_overrides_win_and_missing_fields_keep_defaults(tmp_path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[map]\nhalf_life_hours = 10.0\nband = 0.04\n", encoding="utf-8")
    params = load_profile(path, overrides={"band": 0.08})
    assert params.half_life_hours == 10.0
    assert params.band == 0.08
    assert params.participation == MapParams().participation
    assert map_params_with_profile(path, {"band": 0.08}) == {"half_life_hours": 10.0,
                                                             "band": 0.08}  # fmt: skip
    assert map_params_with_profile(None, {"band": 0.08}) == {"band": 0.08}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[map\nband = 1", "not valid TOML"),
        ("band = 0.05\n", "no \\[map\\] table"),
        ("[map]\nbnad = 0.05\n", "did you mean 'band'"),
        ("[map]\nband = -1.0\n", "band"),
        ("map = 3\n", "no \\[map\\] table"),
        ("[map]\nband = 0.05\ncalibration = 1\n[calibration]\n", "calibration"),
    ],
)
def test_bad_profiles_are_one_line(tmp_path, text, message) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_profile(path)
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_profile_and_no_silent_overwrite(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile(tmp_path / "none.toml")
    mine = tmp_path / "notes.toml"
    mine.write_text("my own notes\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="already exists"):
        write_profile(mine, MapParams())
    assert mine.read_text(encoding="utf-8") == "my own notes\n"
    with pytest.raises(ConfigError, match="not one"):  # --force replaces only a profile
        write_profile(mine, MapParams(), overwrite=True)
    assert mine.read_text(encoding="utf-8") == "my own notes\n"
    earlier = write_profile(tmp_path / "earlier.toml", MapParams(band=0.04))
    write_profile(earlier, MapParams(), overwrite=True)
    assert load_profile(earlier) == MapParams()


def test_toml_writer_quotes_and_nests() -> None:
    import tomllib

    document = {"a": {"key with space": 1.5, "nested": {"x": [1, 2]}, "flag": True,
                      "text": 'say "hi"', "rows": [{"name": "b", "low": 0.0}]}}  # fmt: skip
    assert tomllib.loads(dumps_toml(document)) == document


def _profile(tmp_path):
    path = tmp_path / "profile.toml"
    write_profile(path, MapParams(half_life_hours=12.0, band=0.04))
    return path


def test_run_and_sweep_take_a_profile_and_map_flags_override_it(tmp_path) -> None:
    from backtest.cli import build_parser
    from backtest.commands.run import build_settings
    from backtest.runs import check_map_parameters

    path = _profile(tmp_path)
    parser = build_parser()
    for command in ("run", "sweep"):
        args = parser.parse_args([command, "--map-profile", str(path), "--map", "band=0.06"])
        settings = build_settings(args)
        checked = check_map_parameters(settings["map_params"])  # as the run converts them
        assert checked["half_life_hours"] == 12.0
        assert checked["band"] == 0.06
        assert MapParams.from_dict(checked) == MapParams(half_life_hours=12.0, band=0.06)


def test_run_file_names_a_profile_relative_to_itself(tmp_path) -> None:
    from backtest.config import read_toml

    _profile(tmp_path)
    run_file = tmp_path / "run.toml"
    run_file.write_text('map_profile = "profile.toml"\n[map]\nband = 0.07\n', encoding="utf-8")
    settings = read_toml(run_file)
    assert settings["map_params"]["half_life_hours"] == 12.0
    assert settings["map_params"]["band"] == 0.07  # the run file's own [map] tops the profile
    run_file.write_text('map_profile = "missing.toml"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="does not exist"):
        read_toml(run_file)


def test_heatmap_with_a_profile_equals_the_same_map_flags(tmp_path, capsys) -> None:
    from backtest.cli import main

    path = _profile(tmp_path)
    common = ["heatmap", "--at", "2025-10-10T20:00", "--window", "12h", "--warmup", "3d"]
    assert main([*common, "--map-profile", str(path), "--out", str(tmp_path / "a")]) == 0
    with_profile = capsys.readouterr().out
    flags = ["--map", "half_life_hours=12", "--map", "band=0.04"]
    assert main([*common, *flags, "--out", str(tmp_path / "b")]) == 0
    with_flags = capsys.readouterr().out
    default = main([*common, "--out", str(tmp_path / "c")])
    assert default == 0
    without = capsys.readouterr().out

    def strip(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("wrote")]

    assert strip(with_profile) == strip(with_flags)
    assert strip(with_profile) != strip(without)
    bad = tmp_path / "bad.toml"
    bad.write_text("[map]\nhalf_life_hours = 'x'\n", encoding="utf-8")
    assert main([*common, "--map-profile", str(bad), "--out", str(tmp_path / "d")]) == 2
    assert "half_life_hours" in capsys.readouterr().err


def test_profile_gets_the_usual_file_permissions(tmp_path) -> None:
    import os
    import stat

    previous = os.umask(0o022)
    try:
        path = write_profile(tmp_path / "shared.toml", MapParams())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [item.name for item in tmp_path.iterdir()] == ["shared.toml"]  # no temporary left
