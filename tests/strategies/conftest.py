import functools

import pytest

from backtest.engine import RunConfig, run
from backtest.market.store import load_market
from backtest.plugins import resolve_strategy


@functools.cache
def sample_frame():
    return load_market("BTC/USDT:USDT", "5m")


@functools.cache
def _run(name: str, params: tuple = ()):
    config = RunConfig(strategy=name, params=dict(params))
    return run(config, data=sample_frame(), strategy_class=resolve_strategy(name))


@pytest.fixture(scope="session")
def run_builtin():
    """Run a built-in strategy on the bundled BTC sample (cached per name and params)."""

    def runner(name, **params):
        return _run(name, tuple(sorted(params.items())))

    return runner


@pytest.fixture(scope="session")
def frame():
    return sample_frame()
