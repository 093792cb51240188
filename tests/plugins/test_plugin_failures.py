"""Plugins fail alone and clearly (issue 12, point 4).

A user strategy named like a built-in replaces it with a note; two user strategies of one name
are refused by name; one broken file never breaks the others; errors inside a strategy's
indicators and ``sys.exit`` end in one line naming strategy, file:line, bar and cause; periods
of zero or less are refused before the run.
"""

from __future__ import annotations

import logging
import re
import textwrap

import pytest

from backtest.cli import main
from backtest.errors import ConfigError, PluginError
from backtest.plugins import coerce_parameters, discover, resolve_strategy

SHORT = ["--since", "2025-10-05", "--until", "2025-10-06"]

MY_SMA = textwrap.dedent(
    '''
    import backtest


    class SmaCross(backtest.Strategy):
        """My own crossover."""

        uses_clusters = False
        params = (("fast", 3),)

        def next(self):
            pass
    '''
)

QUITTER = textwrap.dedent(
    '''
    import sys

    import backtest


    class Quitter(backtest.Strategy):
        """Leaves the program on the third bar."""

        uses_clusters = False

        def next(self):
            if len(self) == 3:
                sys.exit(4)
    '''
)

RAISER = textwrap.dedent(
    '''
    import backtest


    class Raiser(backtest.Strategy):
        """Divides by zero on the fifth bar."""

        uses_clusters = False

        def next(self):
            if len(self) == 5:
                return 1 / 0
    '''
)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "strategies").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plugin(workdir, name, text):
    path = workdir / "strategies" / name
    path.write_text(text)
    return path


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_user_strategy_with_a_builtin_name_wins_with_a_note(workdir, capsys, caplog):
    mine = plugin(workdir, "my_sma.py", MY_SMA)
    catalogue = discover(workdir)
    assert catalogue.strategies["SmaCross"].source == str(mine)
    assert "replaces the built-in one" in catalogue.notes["SmaCross"]
    with caplog.at_level(logging.WARNING, logger="backtest.plugins"):
        cls = resolve_strategy("SmaCross", workdir)
    assert cls.__doc__ == "My own crossover."
    assert any("replaces the built-in one" in record.getMessage() for record in caplog.records)

    code, out, err = run_cli(capsys, "strategies")
    assert code == 0
    assert f"from {mine}" in out and "(replaces the built-in strategy of this name)" in out
    assert "note: strategy SmaCross from" in err


def test_two_user_strategies_of_one_name_are_refused_by_name(workdir):
    first = plugin(workdir, "a.py", MY_SMA.replace("SmaCross", "Twin"))
    second = plugin(workdir, "b.py", MY_SMA.replace("SmaCross", "Twin"))
    with pytest.raises(PluginError) as caught:
        resolve_strategy("Twin", workdir)
    assert str(first) in str(caught.value) and str(second) in str(caught.value)
    # either one can still be named by file
    by_file = {resolve_strategy(f"{path}:Twin").__module__ for path in (first, second)}
    assert len(by_file) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("import sys\nsys.exit(3)\n", r"exiter\.py:2: failed to load: called sys\.exit\(3\)"),
        ("raise SystemExit\n", r"exiter\.py:1: failed to load: called sys\.exit\(None\)"),
        (
            "import backtest\nclass Odd(backtest.Strategy):\n    INTERFACE_VERSION = 'x'\n",
            r"Odd\.INTERFACE_VERSION must be an integer",
        ),
    ],
)
def test_a_broken_file_breaks_nothing_else(workdir, capsys, text, expected):
    plugin(workdir, "exiter.py", text)
    plugin(workdir, "quitter.py", QUITTER)
    catalogue = discover(workdir)
    assert "Quitter" in catalogue.strategies and "SmaCross" in catalogue.strategies
    assert len(catalogue.errors) == 1

    code, out, err = run_cli(capsys, "strategies")
    assert code == 0
    assert "Quitter" in out and "BuyAndHold" in out
    broken = [line for line in out.splitlines() if line.startswith("broken: ")]
    assert len(broken) == 1
    assert re.search(expected, broken[0]), broken[0]

    code, out, err = run_cli(capsys, "run", "-q", "--strategy", "BuyAndHold", *SHORT)
    assert code == 0, err


def test_sys_exit_inside_a_strategy_is_reported(workdir, capsys):
    path = plugin(workdir, "quitter.py", QUITTER)
    code, _out, err = run_cli(capsys, "run", "-q", "--strategy", "Quitter", *SHORT)
    assert code == 2
    error = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "Traceback" not in err
    assert f"strategy Quitter ({path}:14)" in error[0]
    assert "failed at bar 2025-10-05T00:10:00+00:00: called sys.exit(4)" in error[0]


def test_an_error_in_a_strategy_names_file_line_bar_and_cause(workdir, capsys):
    path = plugin(workdir, "raiser.py", RAISER)
    code, _out, err = run_cli(capsys, "run", "-q", "--strategy", "Raiser", *SHORT)
    assert code == 2
    assert f"strategy Raiser ({path}:12) failed at bar 2025-10-05T00:20:00+00:00" in err
    assert "ZeroDivisionError: division by zero" in err


def test_indicator_longer_than_the_data_is_one_line(workdir, capsys):
    code, _out, err = run_cli(
        capsys,
        "run",
        "-q",
        "--strategy",
        "SmaCross",
        "--since",
        "2025-10-05T00:00",
        "--until",
        "2025-10-05T02:00",
    )
    assert code == 2 and "Traceback" not in err
    error = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error) == 1
    line = error[0]
    assert "strategy SmaCross (" in line and "sma_cross.py:" in line
    assert "failed at bar start" in line and "IndexError" in line
    assert "need 31 bars" in line and "holds 24" in line


@pytest.mark.parametrize("assignment", ["fast=0", "slow=-3", "fast=-1"])
def test_zero_or_negative_periods_are_rejected_before_the_run(capsys, assignment):
    code, _out, err = run_cli(capsys, "run", "-q", "--strategy", "SmaCross", "-p", assignment)
    assert code == 2
    assert "must be greater than 0" in err and err.count("\n") == 1


def test_positive_params_of_every_builtin():
    expected = {
        "SmaCross": ("fast", "slow"),
        "ClusterFade": ("hold_bars", "confirm_bars"),
        "CascadeBreakout": ("hold_bars",),
        "ClusterHedge": ("settle_bars",),
    }
    for name, periods in expected.items():
        cls = resolve_strategy(name)
        for period in periods:
            with pytest.raises(ConfigError, match=f"{name} parameter '{period}' must be greater"):
                coerce_parameters(cls, {period: "0"})
        assert coerce_parameters(cls, {periods[0]: "2"}) == {periods[0]: 2}


def test_overflowing_parameter_values_are_one_line(capsys):
    huge = "9" * 400
    code, _out, err = run_cli(capsys, "run", "-q", "--strategy", "SmaCross", "-p", f"fast={huge}")
    assert code == 2 and "out of range" in err and err.count("\n") == 1
    assert len(err) < 300
    code, _out, err = run_cli(capsys, "run", "-q", "-p", "exposure=1e400")
    assert code == 2 and "must be a finite number" in err


TA_ZERO = textwrap.dedent(
    '''
    import backtest
    from backtest.engine import TaRSI


    class RsiZero(backtest.Strategy):
        """An RSI over zero bars."""

        uses_clusters = False
        params = (("window", 0),)

        def __init__(self):
            self.rsi = TaRSI(self.data, window=self.p.window)
    '''
)


def test_an_error_inside_a_ta_indicator_is_the_strategys(workdir, capsys):
    path = plugin(workdir, "rsi_zero.py", TA_ZERO)
    code, _out, err = run_cli(capsys, "run", "-q", "--strategy", "RsiZero", *SHORT)
    assert code == 2 and "Traceback" not in err
    assert f"strategy RsiZero ({path}:6) failed at bar start" in err
    assert "ZeroDivisionError" in err


def test_an_engine_failure_is_not_blamed_on_the_strategy(monkeypatch):
    from backtest.engine import RunConfig, run
    from backtest.engine.broker import PerpetualBroker

    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug in the broker")

    monkeypatch.setattr(PerpetualBroker, "_settle_funding", broken)
    with pytest.raises(RuntimeError, match="a bug in the broker"):
        run(RunConfig(strategy="BuyAndHold", since="2025-10-05", until="2025-10-06"))
