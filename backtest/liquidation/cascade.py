"""The liquidation-cascade simulator: how far a price shock runs through the liquidation map.

A shock moves the price by ``shock_pct`` (negative: down).  Every long level it crosses (down)
or short level (up) is force-closed; that forced selling (buying) moves the price further,
which crosses more levels, and so on until the move stops growing:

.. code-block:: text

    x  = log price,  x0 = log p0,  xs = log(p0 (1 + shock)),  d = sign(shock)
    Q(x) = notional of the buckets crossed between x0 and x        (levels at bucket centres)
    x_{k+1} = xs + d * I(Q(x_k), x_k),   starting from x_1 = xs

The impact ``I`` is a relative price move applied as a log-return (the continuous form of
``dP/P``, which keeps the price positive); two models are available:

``"sqrt"`` — the square-root law of market impact, ``I = Y * sigma * sqrt(Q / V)`` with
``sigma`` the daily volatility and ``V`` the daily traded notional.  The law holds for
metaorders across equities, futures and FX with ``Y`` of order one (Tóth et al., "Anomalous
price impact and the critical nature of liquidity in financial markets", Phys. Rev. X 1,
021006, 2011; Bouchaud, Bonart, Donier & Gould, *Trades, Quotes and Prices*, Cambridge
University Press, 2018, ch. 12) and on Bitcoin (Donier & Bonart, "A million metaorder
analysis of market impact on the Bitcoin", Market Microstructure and Liquidity 1(2), 2015,
arXiv:1412.4503).  The default ``Y = 1.0`` is the upper end of the usual 0.5-1 range because
liquidation engines send urgent market orders, not patient execution.

``"depth"`` — a linear order book that thins out under stress, ``I = Q / D`` with
``D = depth_ratio * V * max(1 - depth_stress * drawdown, depth_floor)`` and ``drawdown`` the
relative distance of the current price from ``p0``.  ``D`` is the notional that would move
the price by 100 % through a linear book, so ``depth_ratio = 1`` says that 1 % of a day's
volume moves the price by 1 % — the order of magnitude of the ±1 % order-book depth of the
large BTC perpetual books relative to their daily volume (a rough calibration: set it from
your venue's depth data).  ``depth_stress = 10`` halves the depth after a 5 % move, like
market makers pulling quotes in a crash; reaching ``depth_floor`` ends the cascade as a runaway.

Both models make ``x -> xs + d I`` monotone, so the iterates move one way and stop at the
first fixed point (the cascade's end).  It stops as a *runaway* when the price leaves the
density grid (the map knows nothing beyond it), when the depth reaches its floor, or after
``max_steps`` steps; the end price is then a lower bound of the move.

``amplification = (p0 - p_end) / (p0 - p_shock)``: 1 means the shock liquidated nothing that
moved the price; 3 means a 2 % shock became a 6 % move.  The per-bar ``cascade_risk`` line of
the liquidation map is the larger amplification of the standard shock (default 2 %) applied
down to the longs and up to the shorts.  The daily volatility and notional come from EWMAs of
the bars (:func:`market_state`).

The computation runs in the compiled kernel ``backtest.liquidation._cascade`` (C core
``ext/_cascade_core.pxi``, shared with the map kernel); its specification is the pure-Python
twin :mod:`backtest.liquidation.reference.cascade`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from backtest.errors import ConfigError, DataError
from backtest.liquidation._native import load_kernel

FloatArray = npt.NDArray[np.float64]

#: Impact models and their kernel codes.
IMPACT_MODELS: dict[str, int] = {"sqrt": 0, "depth": 1}

#: Kernel stop codes -> reasons; every reason but "converged" is a runaway.
STOP_REASONS: tuple[str, ...] = ("converged", "max_steps", "grid_edge", "depth_floor", "invalid")

#: Implementations :func:`simulate_cascade` can use.
Implementation = Literal["kernel", "reference"]


class DensityLike(Protocol):
    """What the simulator reads from a density snapshot (``DensitySnapshot`` of the map)."""

    @property
    def price(self) -> float: ...  # noqa: D102

    @property
    def log_price_min(self) -> float: ...  # noqa: D102

    @property
    def log_step(self) -> float: ...  # noqa: D102

    @property
    def long_notional(self) -> npt.ArrayLike: ...  # noqa: D102

    @property
    def short_notional(self) -> npt.ArrayLike: ...  # noqa: D102


def _positive_finite(name: str, value: float, hint: str) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"CascadeParams.{name} must be a positive number, got {value!r}; {hint}")


@dataclass(frozen=True, slots=True)
class CascadeParams:
    """Parameters of the cascade simulator (validated on construction).

    Parameters
    ----------
    model : {"sqrt", "depth"}
        Impact model: the square-root law (default) or the stress-shrinking linear depth.
    impact_coefficient : float
        ``Y`` of the square-root law ``I = Y sigma sqrt(Q / V)``; of order one (see the
        module docstring for the sources); default 1.0.
    depth_ratio : float
        Depth model: the notional that moves the price by 100 % through a linear book, as a
        multiple of the daily traded notional ``V``; default 1.0 (1 % of ``V`` moves 1 %).
    depth_stress : float
        Depth model: the depth shrinks by ``depth_stress * drawdown``; default 10 (half the
        depth after a 5 % move).  0 keeps the depth constant.
    depth_floor : float
        Depth model: the smallest fraction of the depth left, in (0, 1); reaching it ends the
        cascade as a runaway.  Default 0.1.
    tolerance : float
        Convergence threshold on the log price (a relative price change); default 1e-9.
    max_steps : int
        Most impact rounds before the cascade is declared a runaway; default 1000.
    standard_shock_pct : float
        Size in percent of the standard shock behind the per-bar ``cascade_risk`` line
        (applied down for the longs and up for the shorts); default 2.0.
    halflife_hours : float
        Half-life of the EWMAs that estimate the daily volatility and daily notional from the
        bars (:func:`market_state`); default 24 hours.
    """

    model: Literal["sqrt", "depth"] = "sqrt"
    impact_coefficient: float = 1.0
    depth_ratio: float = 1.0
    depth_stress: float = 10.0
    depth_floor: float = 0.1
    tolerance: float = 1e-9
    max_steps: int = 1000
    standard_shock_pct: float = 2.0
    halflife_hours: float = 24.0

    def __post_init__(self) -> None:
        if self.model not in IMPACT_MODELS:
            allowed = ", ".join(repr(name) for name in IMPACT_MODELS)
            raise ConfigError(f"CascadeParams.model must be one of {allowed}, got {self.model!r}")
        _positive_finite("impact_coefficient", self.impact_coefficient, "typical values 0.5-1")
        _positive_finite("depth_ratio", self.depth_ratio, "1.0 means 1 % of daily volume moves 1 %")
        if not (
            isinstance(self.depth_stress, int | float)
            and math.isfinite(self.depth_stress)
            and self.depth_stress >= 0
        ):
            raise ConfigError(
                f"CascadeParams.depth_stress must be a number >= 0, got {self.depth_stress!r}; "
                "0 keeps the depth constant"
            )
        if not (isinstance(self.depth_floor, int | float) and 0 < self.depth_floor < 1):
            raise ConfigError(
                f"CascadeParams.depth_floor must lie strictly between 0 and 1, got "
                f"{self.depth_floor!r}; it is the fraction of the depth left at worst"
            )
        if not (isinstance(self.tolerance, int | float) and 0 < self.tolerance < 0.01):
            raise ConfigError(
                f"CascadeParams.tolerance must lie in (0, 0.01), got {self.tolerance!r}; "
                "it is a relative price change, e.g. 1e-9"
            )
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int):
            raise ConfigError(f"CascadeParams.max_steps must be an integer, got {self.max_steps!r}")
        if self.max_steps < 1:
            raise ConfigError(f"CascadeParams.max_steps must be at least 1, got {self.max_steps}")
        if not (
            isinstance(self.standard_shock_pct, int | float) and 0 < self.standard_shock_pct < 100
        ):
            raise ConfigError(
                "CascadeParams.standard_shock_pct must lie in (0, 100), got "
                f"{self.standard_shock_pct!r}; it is a size in percent, e.g. 2.0"
            )
        _positive_finite("halflife_hours", self.halflife_hours, "e.g. 24 for one day")

    def kernel_args(self) -> tuple[int, float, float, float, float, float, int]:
        """Return the ``model_params`` tuple the kernel and its reference take."""
        return (
            IMPACT_MODELS[self.model],
            float(self.impact_coefficient),
            float(self.depth_ratio),
            float(self.depth_stress),
            float(self.depth_floor),
            float(self.tolerance),
            int(self.max_steps),
        )


@dataclass(frozen=True, slots=True)
class CascadeResult:
    """Outcome of one simulated cascade.

    Attributes
    ----------
    end_price : float
        Price where the cascade stops (a lower bound of the move when ``runaway``).
    liquidated_notional : float
        Notional (quote currency) liquidated, including what the shock itself crossed.
    amplification : float
        ``(p0 - end_price) / (p0 - shock_price)``; 1 when nothing moved the price further.
    steps : int
        Impact rounds that moved the price (0: the shock liquidated nothing).
    runaway : bool
        True when the cascade left the grid, exhausted the depth or hit ``max_steps``.
    stop_reason : str
        ``"converged"``, ``"max_steps"``, ``"grid_edge"`` or ``"depth_floor"``.
    start_price : float
        Price before the shock (the snapshot's price).
    shock_price : float
        Price right after the shock, ``start_price * (1 + shock_pct / 100)``.
    """

    end_price: float
    liquidated_notional: float
    amplification: float
    steps: int
    runaway: bool
    stop_reason: str = "converged"
    start_price: float = math.nan
    shock_price: float = math.nan

    @property
    def move_pct(self) -> float:
        """Total move from the start price to the end price, in percent (signed)."""
        return (self.end_price / self.start_price - 1.0) * 100.0


@dataclass(frozen=True)
class CascadeRisk:
    """Cascades of several shocks on several snapshots: arrays of shape (snapshots, shocks).

    Attributes
    ----------
    shocks_pct : ndarray
        The shocks, in percent (columns).
    end_price, liquidated_notional, amplification : ndarray
        As in :class:`CascadeResult`, float64.
    steps : ndarray
        int64 impact rounds.
    stop_code : ndarray
        int8 index into :data:`STOP_REASONS` (4, "invalid", where sigma or V is NaN).
    """

    shocks_pct: FloatArray
    end_price: FloatArray
    liquidated_notional: FloatArray
    amplification: FloatArray
    steps: npt.NDArray[np.int64]
    stop_code: npt.NDArray[np.int8] = field(repr=False)

    @property
    def runaway(self) -> npt.NDArray[np.bool_]:
        """True where the cascade stopped at max steps, the grid edge or the depth floor."""
        return (self.stop_code >= 1) & (self.stop_code <= 3)


def _implementation(name: str) -> ModuleType:
    if name == "kernel":
        return load_kernel("_cascade")
    if name == "reference":
        from backtest.liquidation.reference import cascade as reference

        return reference
    raise ConfigError(f"implementation must be 'kernel' or 'reference', got {name!r}")


def _density_array(values: Any, name: str) -> FloatArray:
    try:
        array = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"snapshot {name} is not numeric: {error}") from None
    if array.ndim != 1:
        raise DataError(f"snapshot {name} must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise DataError(
            f"snapshot {name} must hold finite notionals >= 0; found NaN, inf or negative values"
        )
    return array


def _grid(snapshot: DensityLike) -> tuple[FloatArray, FloatArray, float, float, float]:
    """Validate a snapshot and return (long, short, log_price_min, log_step, price)."""
    longs = _density_array(snapshot.long_notional, "long_notional")
    shorts = _density_array(snapshot.short_notional, "short_notional")
    if longs.shape != shorts.shape:
        raise DataError(
            f"snapshot long_notional and short_notional differ in length "
            f"({longs.shape[0]} vs {shorts.shape[0]})"
        )
    price = float(snapshot.price)
    log_price_min = float(snapshot.log_price_min)
    log_step = float(snapshot.log_step)
    if not (math.isfinite(price) and price > 0):
        raise DataError(f"snapshot price must be a positive number, got {price!r}")
    if not math.isfinite(log_price_min):
        raise DataError(f"snapshot log_price_min must be finite, got {log_price_min!r}")
    if not (math.isfinite(log_step) and log_step > 0):
        raise DataError(f"snapshot log_step must be a positive number, got {log_step!r}")
    return longs, shorts, log_price_min, log_step, price


def _market_input(value: float | None, snapshot: Any, name: str, *, allow_zero: bool) -> float:
    """Take ``value`` or the snapshot's attribute of that name; check it."""
    if value is None:
        value = getattr(snapshot, name, None)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ConfigError(
            f"{name} is needed for the cascade: pass {name}= (see cascade.market_state, which "
            "estimates it from the bars) or use a snapshot that carries it"
        )
    value = float(value)
    lowest_ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and lowest_ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def _check_shock(shock_pct: float) -> float:
    try:
        shock = float(shock_pct)
    except (TypeError, ValueError):
        raise ConfigError(f"shock_pct must be a number in percent, got {shock_pct!r}") from None
    if not (math.isfinite(shock) and abs(shock) >= 1e-10 and -100 < shock <= 1000):
        raise ConfigError(
            "shock_pct must be a non-zero percentage above -100 and at most 1000 "
            f"(e.g. -2 for a 2 % drop), got {shock_pct!r}"
        )
    return shock


def simulate_cascade(
    snapshot: DensityLike,
    shock_pct: float,
    params: CascadeParams | None = None,
    *,
    daily_volatility: float | None = None,
    daily_notional: float | None = None,
    implementation: Implementation = "kernel",
) -> CascadeResult:
    """Simulate the liquidation cascade a price shock sets off in a density snapshot.

    Parameters
    ----------
    snapshot : DensitySnapshot
        Density of liquidation levels (log-spaced buckets, notional in quote currency) and
        the price it was taken at.
    shock_pct : float
        The exogenous move in percent, signed: ``-2`` drops the price 2 % (cascade through
        the longs), ``+2`` lifts it 2 % (through the shorts).
    params : CascadeParams, optional
        Impact model and stopping rules; defaults when omitted.
    daily_volatility : float, optional
        Daily volatility as a fraction (0.03 for 3 %); the snapshot's own
        ``daily_volatility`` when omitted.  Used by the square-root model.
    daily_notional : float, optional
        Daily traded notional in quote currency; the snapshot's ``daily_notional`` when
        omitted.
    implementation : {"kernel", "reference"}
        The compiled kernel (default) or its pure-Python specification.

    Returns
    -------
    CascadeResult

    Raises
    ------
    ConfigError
        For a bad shock, parameter or missing/invalid market input.
    DataError
        For a malformed snapshot (NaN or negative notional, bad grid).
    """
    params = params if params is not None else CascadeParams()
    shock = _check_shock(shock_pct)
    longs, shorts, log_price_min, log_step, price = _grid(snapshot)
    volatility = (
        _market_input(daily_volatility, snapshot, "daily_volatility", allow_zero=True)
        if params.model == "sqrt"
        else (math.nan if daily_volatility is None else float(daily_volatility))
    )
    notional = _market_input(daily_notional, snapshot, "daily_notional", allow_zero=False)
    module = _implementation(implementation)
    end_price, liquidated, amplification, steps, stop = module.simulate(
        longs,
        shorts,
        log_price_min,
        log_step,
        price,
        shock / 100.0,
        volatility,
        notional,
        params.kernel_args(),
    )
    return CascadeResult(
        end_price=float(end_price),
        liquidated_notional=float(liquidated),
        amplification=float(amplification),
        steps=int(steps),
        runaway=1 <= int(stop) <= 3,
        stop_reason=STOP_REASONS[int(stop)],
        start_price=price,
        shock_price=price * (1.0 + shock / 100.0),
    )


def _stack(
    snapshots: Sequence[DensityLike],
    daily_volatility: npt.ArrayLike | None,
    daily_notional: npt.ArrayLike | None,
) -> dict[str, np.ndarray]:
    """Validate snapshots and market inputs and stack them into the kernel's arrays."""
    if len(snapshots) == 0:
        raise ConfigError("no snapshots given: pass at least one density snapshot")
    grids = [_grid(snapshot) for snapshot in snapshots]
    lengths = {grid[0].shape[0] for grid in grids}
    if len(lengths) != 1:
        raise DataError(
            f"snapshots have different bucket counts {sorted(lengths)}; run them separately"
        )

    def per_snapshot(values: npt.ArrayLike | None, name: str) -> FloatArray:
        if values is None:
            values = [getattr(snapshot, name, math.nan) for snapshot in snapshots]
        array = np.asarray(values, dtype=np.float64)
        if array.ndim == 0:  # one value for every snapshot
            array = np.full(len(snapshots), float(array))
        array = np.ascontiguousarray(array)
        if array.shape != (len(snapshots),):
            raise ConfigError(
                f"{name} must have one value per snapshot ({len(snapshots)}), got shape "
                f"{array.shape}"
            )
        return array

    return {
        "long_notional": np.stack([grid[0] for grid in grids]),
        "short_notional": np.stack([grid[1] for grid in grids]),
        "log_price_min": np.array([grid[2] for grid in grids]),
        "log_step": np.array([grid[3] for grid in grids]),
        "price": np.array([grid[4] for grid in grids]),
        "daily_volatility": per_snapshot(daily_volatility, "daily_volatility"),
        "daily_notional": per_snapshot(daily_notional, "daily_notional"),
    }


def cascade_risk(
    snapshots: Sequence[DensityLike],
    shocks_pct: Sequence[float] | None = None,
    params: CascadeParams | None = None,
    *,
    daily_volatility: npt.ArrayLike | None = None,
    daily_notional: npt.ArrayLike | None = None,
    implementation: Implementation = "kernel",
) -> CascadeRisk:
    """Run several shocks on many snapshots in one kernel call.

    Parameters
    ----------
    snapshots : sequence of DensitySnapshot
        Snapshots with the same number of buckets (their grids may differ).
    shocks_pct : sequence of float, optional
        Signed shocks in percent; default the standard pair ``(-s, +s)`` with
        ``s = params.standard_shock_pct``.
    params : CascadeParams, optional
    daily_volatility, daily_notional : array-like, optional
        One value per snapshot (or one for all); the snapshots' own attributes when omitted.
        A NaN (e.g. during the EWMA warm-up) gives NaN results for that snapshot.
    implementation : {"kernel", "reference"}

    Returns
    -------
    CascadeRisk
        Arrays of shape ``(len(snapshots), len(shocks_pct))``.
    """
    params = params if params is not None else CascadeParams()
    if shocks_pct is None:
        shocks_pct = (-params.standard_shock_pct, params.standard_shock_pct)
    shocks = np.array([_check_shock(shock) for shock in shocks_pct], dtype=np.float64)
    if shocks.size == 0:
        raise ConfigError("shocks_pct is empty: give at least one shock in percent, e.g. -2")
    arrays = _stack(snapshots, daily_volatility, daily_notional)
    module = _implementation(implementation)
    end, liquidated, amplification, steps, stop = module.cascade_grid(
        arrays["long_notional"],
        arrays["short_notional"],
        arrays["log_price_min"],
        arrays["log_step"],
        arrays["price"],
        arrays["daily_volatility"],
        arrays["daily_notional"],
        shocks / 100.0,
        params.kernel_args(),
    )
    return CascadeRisk(shocks, end, liquidated, amplification, steps, stop)


def standard_cascade_risk(
    snapshots: Sequence[DensityLike],
    params: CascadeParams | None = None,
    *,
    daily_volatility: npt.ArrayLike | None = None,
    daily_notional: npt.ArrayLike | None = None,
    implementation: Implementation = "kernel",
) -> FloatArray:
    """Return the ``cascade_risk`` value of each snapshot.

    ``cascade_risk = max(amplification of -s on the longs, amplification of +s on the
    shorts)`` with ``s = params.standard_shock_pct`` (default 2 %): 1.0 means a 2 % move sets
    off no cascade; NaN where the market inputs are NaN.  The liquidation map computes the
    same line inside its loop through the shared C core.
    """
    params = params if params is not None else CascadeParams()
    arrays = _stack(snapshots, daily_volatility, daily_notional)
    module = _implementation(implementation)
    return module.standard_risk(
        arrays["long_notional"],
        arrays["short_notional"],
        arrays["log_price_min"],
        arrays["log_step"],
        arrays["price"],
        arrays["daily_volatility"],
        arrays["daily_notional"],
        params.standard_shock_pct / 100.0,
        params.kernel_args(),
    )


def market_state(
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    *,
    bar_seconds: float,
    params: CascadeParams | None = None,
    implementation: Implementation = "kernel",
) -> tuple[FloatArray, FloatArray]:
    """Estimate, bar by bar, the daily volatility and daily traded notional the cascade needs.

    EWMAs with half-life ``params.halflife_hours``: of the squared close-to-close log return
    (scaled by the bars per day, square-rooted) and of ``close * volume`` (scaled by the bars
    per day; ``volume`` in base units, as ccxt's OHLCV gives it).  Bars with NaN or
    non-positive close or volume are skipped.

    Parameters
    ----------
    close, volume : array-like
        Bar closes and base-unit volumes, same length.
    bar_seconds : float
        Length of one bar in seconds (300 for 5m).
    params : CascadeParams, optional
    implementation : {"kernel", "reference"}

    Returns
    -------
    tuple of ndarray
        ``(daily_volatility, daily_notional)``, NaN until the first return.
    """
    params = params if params is not None else CascadeParams()
    if not (
        isinstance(bar_seconds, int | float) and math.isfinite(bar_seconds) and bar_seconds > 0
    ):
        raise ConfigError(f"bar_seconds must be a positive number, got {bar_seconds!r}")
    close_array = np.ascontiguousarray(close, dtype=np.float64)
    volume_array = np.ascontiguousarray(volume, dtype=np.float64)
    if close_array.shape != volume_array.shape or close_array.ndim != 1:
        raise DataError(
            f"close and volume must be 1-D and of one length, got shapes {close_array.shape} "
            f"and {volume_array.shape}"
        )
    bars_per_day = 86_400.0 / float(bar_seconds)
    halflife_bars = params.halflife_hours * 3_600.0 / float(bar_seconds)
    module = _implementation(implementation)
    return module.market_state(close_array, volume_array, halflife_bars, bars_per_day)
