"""Market data: ccxt download into a Parquet store, and loading it for the engine.

``store.load_market`` returns candles joined with funding, mark price and open interest;
``download.download`` (the ``backtest download`` command) fills the store through ccxt;
``exchange`` keeps every direct ccxt call (factory, checks, retries, error translation).
Submodules are imported on use so ``import backtest.market`` does not load ccxt.
"""

from __future__ import annotations

from backtest._lazy import lazy_exports

#: Public name -> module that defines it (loaded on first use).
_EXPORTS: dict[str, str] = {
    "load_market": "backtest.market.store",
    "list_available": "backtest.market.store",
    "import_series": "backtest.market.series",
    "load_liquidations": "backtest.market.series",
    "load_open_interest": "backtest.market.series",
    "load_long_short": "backtest.market.series",
    "align_as_of": "backtest.market.series",
    "load_context": "backtest.market.series",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
