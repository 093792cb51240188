"""Array strategies: whole-array decisions run through the perpetual broker's account model.

A strategy's decisions over a whole run (:class:`Decisions`: target exposure per bar) are
executed by a simulator (:func:`simulate`: the compiled kernel ``backtest.arrays._simulate`` or
its pure-Python reference twin :mod:`backtest.arrays.reference`) that reproduces, bar by bar,
what :class:`backtest.engine.broker.PerpetualBroker` does for the same orders: funding, gap and
range liquidations with the clearance fee, fees, slippage, margin and tier refusals.  Single
symbol runs only (portfolios stay on the event engine).  Names are loaded lazily.
"""

from __future__ import annotations

from backtest._lazy import lazy_exports

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "Decisions": "backtest.arrays.decisions",
    "Account": "backtest.arrays.account",
    "account_for": "backtest.arrays.account",
    "MarketArrays": "backtest.arrays.market",
    "market_arrays": "backtest.arrays.market",
    "Simulation": "backtest.arrays.simulation",
    "simulate": "backtest.arrays.simulate",
    "simulate_reference": "backtest.arrays.reference",
    "ReplayDecisions": "backtest.arrays.replay",
    "Bars": "backtest.arrays.bars",
    "LinesCache": "backtest.arrays.bars",
    "run_arrays": "backtest.arrays.run",
    "has_array_form": "backtest.arrays.run",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

# ``simulate`` is both a submodule and its function: bind the function now, so that a later
# ``import backtest.arrays.simulate`` cannot leave the package attribute pointing at the module.
from backtest.arrays.simulate import simulate as simulate  # noqa: E402
