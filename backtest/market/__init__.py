"""Market data: ccxt download into a Parquet store, and loading it for the engine.

``store.load_market`` returns candles joined with funding, mark price and open interest;
``download.download`` (the ``backtest download`` command) fills the store through ccxt;
``exchange`` keeps every direct ccxt call (factory, checks, retries, error translation).
Submodules are imported on use so ``import backtest.market`` does not load ccxt.
"""
