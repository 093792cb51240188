"""``simulate``: run Decisions over MarketArrays with an Account (kernel or reference twin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backtest.arrays.account import Account
from backtest.arrays.decisions import Decisions
from backtest.arrays.market import MarketArrays
from backtest.arrays.simulation import Simulation
from backtest.errors import ConfigError

#: Engines :func:`simulate` accepts.
ENGINES: tuple[str, ...] = ("auto", "cython", "python")


def load_simulator() -> Callable[..., tuple[Any, ...]]:
    """The compiled kernel's ``simulate`` (``backtest.arrays._simulate``).

    Raises
    ------
    ConfigError
        When the extension is not built, saying how to build it.
    """
    try:
        from backtest.arrays import _simulate  # type: ignore[attr-defined]
    except ImportError as error:
        raise ConfigError(
            f"the compiled array simulator backtest.arrays._simulate is missing ({error}); "
            "build it with `pip install -e .` in the checkout, or pass engine='python'"
        ) from None
    return _simulate.simulate


def raw_arguments(market: MarketArrays, decisions: Decisions, account: Account) -> tuple[Any, ...]:
    """The positional arguments of the raw simulators (see :mod:`backtest.arrays.reference`)."""
    return (
        *market.raw(),
        decisions.target,
        decisions.reason_codes(),
        *decisions.levels(),
        float(account.cash),
        float(account.leverage),
        float(account.taker_fee),
        float(account.maker_fee),
        float(account.liquidation_fee),
        float(account.mult),
        int(bool(account.funding)),
        float(account.slippage),
        account.tier_floor,
        account.tier_cap,
        account.tier_rate,
        account.tier_cum,
        account.tier_max_leverage,
        account.venue_code,
        account.margin_mode_code,
        account.slippage_model_code,
    )


def simulate(
    market: MarketArrays,
    decisions: Decisions,
    account: Account,
    *,
    engine: str = "auto",
) -> Simulation:
    """Execute ``decisions`` on ``market`` through the perpetual broker's account model.

    Parameters
    ----------
    market : MarketArrays
        The traded bars.
    decisions : Decisions
        Target exposure per bar (checked against the number of bars).
    account : Account
        Broker settings (:func:`backtest.arrays.account.account_for`).
    engine : {"auto", "cython", "python"}
        ``"auto"`` and ``"cython"``: the compiled kernel; ``"python"``: the reference twin
        (same results, about a hundred times slower).

    Returns
    -------
    Simulation

    Raises
    ------
    ConfigError
        Unknown engine, decisions that do not fit the market, bad account values, or (for
        ``"auto"``/``"cython"``) a missing compiled kernel.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is unknown; use one of {', '.join(ENGINES)}")
    decisions.check(len(market))
    account.check()
    arguments = raw_arguments(market, decisions, account)
    if engine == "python":
        from backtest.arrays.reference import simulate_reference

        raw = simulate_reference(*arguments)
    else:
        raw = load_simulator()(*arguments)
    return Simulation(*raw)
