"""Pure-Python reference twin of the array simulator (``ext/_simulate.pyx``).

Interface changes (newest first): none since the first version (2026-12-03 04:30 UTC).

Raw interface (shared with the compiled kernel ``backtest.arrays._simulate.simulate``)
-------------------------------------------------------------------------------------
Plain float64/int arrays and scalars only; nothing inside the loop is a Python object::

    simulate_reference(
        open, high, low, close,                       # float64[n] traded candle
        mark_open, mark_high, mark_low, mark_close,   # float64[n], NaN where no mark candle
        funding_rate,                                 # float64[n], NaN where no settlement
        target,                                       # float64[n], NaN = no decision
        reason,                                       # int16[n], reason code per bar
        cash, leverage, taker_fee, maker_fee,         # float
        liquidation_fee, mult,                        # float
        funding_on,                                   # int 0/1
        slippage,                                     # float
        tier_floor, tier_cap, tier_rate,              # float64[k] bracket floor, cap, MMR
        tier_cum, tier_max_leverage,                  # float64[k] cum, max leverage
        venue_code,                                   # int: 0 binance, 1 bybit, 2 okx,
                                                      #      3 hyperliquid
        margin_mode_code,                             # int: 0 isolated, 1 cross
        slippage_model_code,                          # int: 0 fixed, 1 volatility
    ) -> tuple

The result is the tuple of :class:`backtest.arrays.simulation.Simulation`'s fields in
declaration order (per-bar arrays, fills, funding, liquidations, rejections, final value), so
``Simulation(*raw)`` builds the result.  Dtypes: bars int64, sizes/prices/money float64,
``fill_kind``/``liq_side``/``reject_code`` int8, reason codes int16, ``liq_gap`` bool.

Semantics: those of :class:`backtest.engine.broker.PerpetualBroker` on top of backtrader's
``BackBroker`` for the market orders :meth:`backtest.Strategy.target_exposure` sends, bar by
bar (the twin documents each step where it happens).
"""

from __future__ import annotations

from typing import Any


def simulate_reference(*arguments: Any) -> tuple[Any, ...]:
    """Run the raw simulation (see the module docstring for the arguments)."""
    raise NotImplementedError("the reference twin is being written (helper H1, issue 15)")
