from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LINES: tuple[str, ...]

def set_simd(level: int = 2) -> int: ...

class MapKernel:
    def __init__(
        self,
        long_offsets: Sequence[float],
        short_offsets: Sequence[float],
        leverage_weights: Sequence[float],
        powers_of_ten: Sequence[float],
        *,
        log_step: float,
        half_buckets: int,
        entry_points: int,
        entry_concentration: float,
        round_level_weight: float,
        long_share_base: float,
        funding_tilt: float,
        neutral_funding_rate: float,
        long_share_min: float,
        long_share_max: float,
        participation: float,
        decay_per_bar: float,
        band_buckets: int,
        smoothing_buckets: int,
        cascade_shock: float = ...,
        cascade_model: tuple[int, float, float, float, float, float, int] = ...,
        cascade_alpha: float = ...,
        bars_per_day: float = ...,
    ) -> None: ...
    def reset(self) -> None: ...
    @property
    def n_buckets(self) -> int: ...
    @property
    def initialized(self) -> bool: ...
    def density(self) -> tuple[float, FloatArray, FloatArray] | None: ...
    def step(
        self,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        funding_rate: float = ...,
        mark_high: float = ...,
        mark_low: float = ...,
        open_interest: float = ...,
    ) -> tuple[float, ...]: ...
    def process(
        self,
        open: FloatArray,
        high: FloatArray,
        low: FloatArray,
        close: FloatArray,
        volume: FloatArray,
        funding_rate: FloatArray | None,
        mark_high: FloatArray | None,
        mark_low: FloatArray | None,
        open_interest: FloatArray | None,
        out: Sequence[FloatArray],
        start: int,
        stop: int,
    ) -> None: ...
