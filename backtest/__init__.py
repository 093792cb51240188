"""Liquidation-aware backtesting of crypto perpetual futures.

The public API is re-exported here and loaded lazily (``import backtest`` stays light and
``python -m backtest --help`` fast).  Everything else is an implementation detail.
"""

from __future__ import annotations

from backtest._lazy import lazy_exports

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    # errors
    "BacktestError": "backtest.errors",
    "ConfigError": "backtest.errors",
    "DataError": "backtest.errors",
    "ExchangeError": "backtest.errors",
    "PluginError": "backtest.errors",
    # results
    "Results": "backtest.results",
    # liquidation prices and tiers
    "liquidation_price": "backtest.liquidation.prices",
    "liquidation_prices": "backtest.liquidation.prices",
    "entry_price_for_liquidation": "backtest.liquidation.prices",
    "liquidation_factor": "backtest.liquidation.prices",
    "load_tiers": "backtest.liquidation.tiers",
    "LeverageTiers": "backtest.liquidation.tiers",
    "write_snapshot": "backtest.liquidation.tiers",
    # liquidation map, cascades, round levels
    "LiquidationMap": "backtest.liquidation.heatmap",
    "MapParams": "backtest.liquidation.heatmap",
    "MapResult": "backtest.liquidation.heatmap",
    "DensitySnapshot": "backtest.liquidation.heatmap",
    "CascadeParams": "backtest.liquidation.cascade",
    "CascadeResult": "backtest.liquidation.cascade",
    "simulate_cascade": "backtest.liquidation.cascade",
    "warmup_duration": "backtest.liquidation.warmup",
    "warmup_start": "backtest.liquidation.warmup",
    "load_profile": "backtest.liquidation.profiles",
    "write_profile": "backtest.liquidation.profiles",
    # scoring and calibrating the map against recorded liquidations
    "validate": "backtest.validation.scoring",
    "calibrate": "backtest.validation.calibration",
    # market data
    "load_market": "backtest.market.store",
    "Downloader": "backtest.market.download",
    "list_available": "backtest.market.store",
    "import_series": "backtest.market.series",
    "load_liquidations": "backtest.market.series",
    "load_open_interest": "backtest.market.series",
    "load_long_short": "backtest.market.series",
    "align_as_of": "backtest.market.series",
    "load_context": "backtest.market.series",
    # engine
    "RunConfig": "backtest.engine.config",
    "run": "backtest.engine.runner",
    "PerpData": "backtest.engine.feeds",
    "PerpetualBroker": "backtest.engine.broker",
    "PerpetualCommission": "backtest.engine.commission",
    "LiquidationClusters": "backtest.engine.indicators",
    "RoundLevels": "backtest.engine.indicators",
    "TaIndicator": "backtest.engine.indicators",
    "ta_indicator": "backtest.engine.indicators",
    # reports
    "compute_metrics": "backtest.report",
    "write_report": "backtest.report",
    "format_summary": "backtest.report",
    # plugins
    "Strategy": "backtest.strategy",
    "INTERFACE_VERSION": "backtest.strategy",
    "discover": "backtest.plugins",
    "resolve_strategy": "backtest.plugins",
    # array strategies
    "Bars": "backtest.arrays.bars",
    "Decisions": "backtest.arrays.decisions",
    "run_arrays": "backtest.arrays.run",
    "has_array_form": "backtest.arrays.run",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
