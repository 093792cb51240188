"""backtrader integration: perpetual-futures feed, broker, analyzers and the run driver.

The public names are loaded lazily, so ``import backtest.engine`` does not import backtrader,
pandas or the kernels until one of them is used.
"""

from __future__ import annotations

from backtest._lazy import lazy_exports

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    # feed, commission scheme, broker, analyzers, configuration and runner
    "PerpData": "backtest.engine.feeds",
    "PerpetualCommission": "backtest.engine.commission",
    "LIQUIDATION_FEE_RATES": "backtest.engine.commission",
    "PerpetualBroker": "backtest.engine.broker",
    "AccountAnalyzer": "backtest.engine.analyzers",
    "OrdersAnalyzer": "backtest.engine.analyzers",
    "TradesAnalyzer": "backtest.engine.analyzers",
    "LiquidationsAnalyzer": "backtest.engine.analyzers",
    "FundingAnalyzer": "backtest.engine.analyzers",
    "NearMissAnalyzer": "backtest.engine.analyzers",
    "ResultsAnalyzer": "backtest.engine.analyzers",
    "RunConfig": "backtest.engine.config",
    "PerpCerebro": "backtest.engine.runner",
    "build_cerebro": "backtest.engine.runner",
    "run": "backtest.engine.runner",
    # portfolios and slower timeframes
    "run_portfolio": "backtest.engine.portfolio",
    "align_frames": "backtest.engine.portfolio",
    "resample_frame": "backtest.engine.resample",
    # indicators: the liquidation map, round levels, ta adapters
    "LiquidationClusters": "backtest.engine.indicators",
    "CLUSTER_LINES": "backtest.engine.indicators",
    "RoundLevels": "backtest.engine.indicators",
    "TaIndicator": "backtest.engine.indicators",
    "TaRSI": "backtest.engine.indicators",
    "TaATR": "backtest.engine.indicators",
    "TaBollingerBands": "backtest.engine.indicators",
    "TaMACD": "backtest.engine.indicators",
    "TaEMA": "backtest.engine.indicators",
    "ta_indicator": "backtest.engine.indicators",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
