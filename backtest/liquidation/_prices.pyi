import numpy as np
import numpy.typing as npt

def liquidation_prices(
    venue: int,
    side: int,
    entry_prices: npt.NDArray[np.float64],
    leverages: npt.NDArray[np.float64],
    quantities: npt.NDArray[np.float64],
    wallet_balances: npt.NDArray[np.float64],
    tier_floors: npt.NDArray[np.float64],
    tier_rates: npt.NDArray[np.float64],
    tier_amounts: npt.NDArray[np.float64],
    taker_fee: float,
    out: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]: ...
