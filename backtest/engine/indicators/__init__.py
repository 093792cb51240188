"""backtrader indicators of the engine: the liquidation map, round levels and `ta` adapters.

``once`` paths work on zero-copy NumPy views of the line buffers; ``next`` paths give the same
lines bar by bar (runs with ``runonce=True`` and ``runonce=False`` agree).
"""

from backtest.engine.indicators.clusters import CLUSTER_LINES, LiquidationClusters
from backtest.engine.indicators.round_levels import (
    ROUND_LEVEL_LINES,
    RoundLevels,
    round_levels_array,
    round_levels_at,
)
from backtest.engine.indicators.ta_adapter import (
    TaATR,
    TaBollingerBands,
    TaEMA,
    TaIndicator,
    TaMACD,
    TaRSI,
    ta_indicator,
)

__all__ = [
    "CLUSTER_LINES",
    "ROUND_LEVEL_LINES",
    "LiquidationClusters",
    "RoundLevels",
    "TaATR",
    "TaBollingerBands",
    "TaEMA",
    "TaIndicator",
    "TaMACD",
    "TaRSI",
    "round_levels_array",
    "round_levels_at",
    "ta_indicator",
]
