from typing import Any

import numpy as np
import numpy.typing as npt

def simulate(
    open_: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    mark_open: npt.NDArray[np.float64],
    mark_high: npt.NDArray[np.float64],
    mark_low: npt.NDArray[np.float64],
    mark_close: npt.NDArray[np.float64],
    funding_rate: npt.NDArray[np.float64],
    target: npt.NDArray[np.float64],
    reason: npt.NDArray[np.int16],
    stop: npt.NDArray[np.float64],
    take_profit: npt.NDArray[np.float64],
    cash: float,
    leverage: float,
    taker_fee: float,
    maker_fee: float,
    liquidation_fee: float,
    mult: float,
    funding_on: int,
    slippage: float,
    tier_floor: npt.NDArray[np.float64],
    tier_cap: npt.NDArray[np.float64],
    tier_rate: npt.NDArray[np.float64],
    tier_cum: npt.NDArray[np.float64],
    tier_max_leverage: npt.NDArray[np.float64],
    venue_code: int,
    margin_mode_code: int,
    slippage_model_code: int,
) -> tuple[Any, ...]: ...
def liquidation_price(
    venue: int,
    side: int,
    entry: float,
    quantity: float,
    wallet: float,
    tier_floors: npt.NDArray[np.float64],
    tier_rates: npt.NDArray[np.float64],
    tier_amounts: npt.NDArray[np.float64],
    taker_fee: float,
) -> float: ...
def debug_build() -> bool: ...
def read_element(values: npt.NDArray[np.float64], index: int) -> float: ...
