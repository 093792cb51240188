"""The NumPy trade table for runs whose fills alternate entry and whole exit.

:func:`backtest.arrays.results._paired_trades` must give the tables :func:`_walk_trades` gives,
bit for bit, and step aside for any other shape of fills.
"""

from __future__ import annotations

import pandas as pd
import pytest

from backtest.arrays import results as array_results
from backtest.arrays.run import run_arrays
from backtest.engine import RunConfig

SHORT = {"since": "2025-10-03", "until": "2025-10-20"}


def _walked(monkeypatch: pytest.MonkeyPatch, config: RunConfig):
    with monkeypatch.context() as patch:
        patch.setattr(array_results, "_paired_trades", lambda *arguments: None)
        return run_arrays(config)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    taken: list[bool] = []
    original = array_results._paired_trades

    def spy(*arguments):
        result = original(*arguments)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(array_results, "_paired_trades", spy)
    return taken


@pytest.mark.parametrize(
    ("strategy", "params", "paired"),
    [
        ("ClusterFade", {}, True),
        ("ClusterFade", {"take_profit": 0.005, "stop_loss": 0.004, "hold_bars": 6}, True),
        ("SmaCross", {}, True),  # long/flat: entries and exits alternate
        ("BuyAndHold", {}, True),  # one entry, open at the end
        ("SmaCross", {"allow_short": True}, False),  # flips: one order closes and opens
    ],
)
def test_the_numpy_trades_equal_the_walked_trades(monkeypatch, strategy, params, paired):
    config = RunConfig(strategy=strategy, params=params, **SHORT)
    walked = _walked(monkeypatch, config)
    taken = _spy(monkeypatch)
    fast = run_arrays(config)
    assert taken == [paired]
    assert len(walked.trades) + len(walked.open_trades) > 0
    pd.testing.assert_frame_equal(fast.trades, walked.trades, check_exact=True)
    pd.testing.assert_frame_equal(fast.open_trades, walked.open_trades, check_exact=True)


def test_a_liquidated_trade_is_paired_too(monkeypatch):
    config = RunConfig(
        strategy="SmaCross", params={"exposure": 60.0}, leverage=75.0, cash=1_000.0, **SHORT
    )
    walked = _walked(monkeypatch, config)
    taken = _spy(monkeypatch)
    fast = run_arrays(config)
    assert walked.trades["liquidated"].any()
    assert taken == [True]
    pd.testing.assert_frame_equal(fast.trades, walked.trades, check_exact=True)
