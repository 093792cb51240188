"""The liquidation model: exchange-exact liquidation prices, the liquidation map, cascades.

This subpackage knows nothing of backtrader; :mod:`backtest.engine` adapts it.
"""
