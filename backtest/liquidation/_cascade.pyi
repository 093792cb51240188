import numpy as np
import numpy.typing as npt

ModelParams = tuple[int, float, float, float, float, float, int]

def simulate(
    long_notional: npt.NDArray[np.float64],
    short_notional: npt.NDArray[np.float64],
    log_price_min: float,
    log_step: float,
    price: float,
    shock_fraction: float,
    daily_volatility: float,
    daily_notional: float,
    model_params: ModelParams,
) -> tuple[float, float, float, int, int]: ...
def cascade_grid(
    long_notional: npt.NDArray[np.float64],
    short_notional: npt.NDArray[np.float64],
    log_price_min: npt.NDArray[np.float64],
    log_step: npt.NDArray[np.float64],
    price: npt.NDArray[np.float64],
    daily_volatility: npt.NDArray[np.float64],
    daily_notional: npt.NDArray[np.float64],
    shock_fraction: npt.NDArray[np.float64],
    model_params: ModelParams,
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int8],
]: ...
def standard_risk(
    long_notional: npt.NDArray[np.float64],
    short_notional: npt.NDArray[np.float64],
    log_price_min: npt.NDArray[np.float64],
    log_step: npt.NDArray[np.float64],
    price: npt.NDArray[np.float64],
    daily_volatility: npt.NDArray[np.float64],
    daily_notional: npt.NDArray[np.float64],
    shock_fraction: float,
    model_params: ModelParams,
) -> npt.NDArray[np.float64]: ...
def market_state(
    close: npt.NDArray[np.float64],
    volume: npt.NDArray[np.float64],
    halflife_bars: float,
    bars_per_day: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
