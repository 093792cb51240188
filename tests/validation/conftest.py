"""A real slice: Binance BTC/USDT:USDT 5m candles and funding 2025-09-24 .. 2025-10-21 (store
layout under data/store) and CoinGlass's Binance BTC 4h liquidation totals over the same days
(data/coinglass_binance_BTC_liquidations_4h.csv, the shared ground-truth file cut to them).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parent / "data"
STORE = DATA / "store"
TRUTH_CSV = DATA / "coinglass_binance_BTC_liquidations_4h.csv"
SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="session")
def candles() -> pd.DataFrame:
    from backtest.market.store import load_market

    return load_market(SYMBOL, "5m", data_dir=STORE)


@pytest.fixture(scope="session")
def truth() -> pd.DataFrame:
    from backtest.validation.inputs import load_truth

    return load_truth(TRUTH_CSV, SYMBOL)
