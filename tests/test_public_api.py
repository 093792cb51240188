import subprocess
import sys

import backtest


def test_every_public_name_resolves():
    missing = [name for name in backtest.__all__ if not hasattr(backtest, name)]
    assert missing == []


def test_import_is_light_and_help_works():
    code = (
        "import sys, backtest; "
        "assert 'backtrader' not in sys.modules and 'pandas' not in sys.modules, sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run(
        [sys.executable, "-m", "backtest", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("run", "download", "heatmap", "strategies", "report", "sweep", "price"):
        assert command in result.stdout


def test_unknown_attribute_is_an_attribute_error():
    try:
        backtest.not_a_thing  # noqa: B018
    except AttributeError as error:
        assert "not_a_thing" in str(error)
    else:
        raise AssertionError("expected AttributeError")
