"""The liquidation map: where open leveraged positions would be liquidated, bar by bar.

An estimate, from candles (and funding, mark price and open interest when loaded), of the
notional of open leveraged positions whose liquidation price lies in each price bucket, long
and short separately.  Every bar, in this order:

1. **Consume** (path dependent): long levels at or above the bar's low and short levels at or
   below its high are liquidated; their notional is the bar's ``liq_long`` / ``liq_short``.
   The mark-price low/high are used when given (exchanges liquidate on the mark price).
   Levels the extreme only touched (within ``touch_depth``) lose ``touch_fraction`` of their
   notional per bar; the rest waits for the next bar that reaches them.
2. **Create**: new positions are ``participation × volume × typical price`` or, when open
   interest is loaded, ``ΔOI⁺ × typical price``.  Every new contract has a long and a short
   holder; a long share that leans with funding splits which side is leveraged.  Entries are
   spread over the bar's range (more weight near the typical price, extra weight at round
   levels, :mod:`backtest.liquidation.levels`), and for each leverage of a distribution the
   notional is placed at the venue's exact liquidation price for that leverage
   (:func:`backtest.liquidation.prices.liquidation_factor`), not at ``EP·(1 ∓ 1/L)``.
3. **Remove** voluntarily closed positions: an exponential decay with a half-life (one lazy
   global scale factor), or, with open interest, a proportional haircut when OI falls.
4. **Report**: the strongest long cluster below and short cluster above the close within a
   search band (a cluster is a peak of the smoothed density), its notional and distance in %,
   and the notional within the band on each side; snapshots of the density on request.

Grid.  Buckets are log-spaced (``bucket_width`` relative, 0.1 % by default) so BTC and ETH share
one resolution.  The grid is centred on the first valid close and spans ``grid_span``-fold
either way (÷4 .. ×4 by default).  When the close leaves the middle half of the grid, the grid
is re-centred on it by whole buckets, so price never leaves the grid in a stream; levels that
then fall off the far edge (more than ``grid_span/2``-fold away from the price, far beyond any
band) are dropped, as are new positions whose liquidation price lies outside the grid.

Bars with a NaN price or volume, zero volume, or ``high < low`` are skipped: they change
nothing (except that a finite funding rate on them is remembered), their ``liq_long`` and
``liq_short`` are 0 and every other output repeats the previous bar's (NaN before the first
valid bar).  NaN never reaches the state.

The per-bar loop is the compiled kernel ``ext/_heatmap.pyx``; its pure-Python twin
:mod:`backtest.liquidation.reference.heatmap` is the specification (``backend="reference"``
runs it).

Examples
--------
>>> from backtest.liquidation.heatmap import LiquidationMap, MapParams
>>> from backtest.market.store import load_market
>>> frame = load_market("BTC/USDT:USDT", "5m")                        # doctest: +SKIP
>>> result = LiquidationMap(MapParams()).run(frame, snapshot_every=288)  # doctest: +SKIP
>>> result.lines[["liq_long", "long_cluster_price"]].tail()           # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from backtest.errors import ConfigError, DataError
from backtest.liquidation._native import load_kernel
from backtest.liquidation.cascade import CascadeParams
from backtest.liquidation.levels import POWERS_OF_TEN
from backtest.liquidation.reference.heatmap import LINES as REFERENCE_LINES

FloatArray = npt.NDArray[np.float64]

#: Per-bar outputs, in order (also the columns of :attr:`MapResult.lines`); the reference
#: twin is the specification, so the names are defined there once.
LINES: tuple[str, ...] = REFERENCE_LINES
#: Venues whose formula can place the levels (see :mod:`backtest.liquidation.prices`).
VENUES: tuple[str, ...] = ("binance", "bybit", "okx", "hyperliquid")
#: Optional per-bar inputs, in the kernel's order.
OPTIONAL_INPUTS: tuple[str, ...] = ("funding_rate", "mark_high", "mark_low", "open_interest")
CANDLE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")

_NAN = float("nan")


class MapOutputs(NamedTuple):
    """One bar's outputs (a tuple in :data:`LINES` order, with names)."""

    liq_long: float
    liq_short: float
    long_cluster_price: float
    long_cluster_notional: float
    long_cluster_distance_pct: float
    short_cluster_price: float
    short_cluster_notional: float
    short_cluster_distance_pct: float
    long_band_notional: float
    short_band_notional: float
    cascade_risk: float


# -- parameters ----------------------------------------------------------------------------------
def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"MapParams.{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"MapParams.{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"MapParams.{name} must be finite, got {value!r}")
    return number


def _in_range(
    name: str, value: Any, low: float, high: float, *, low_open: bool, high_open: bool, hint: str
) -> float:
    number = _number(name, value)
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if below or above:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ConfigError(
            f"MapParams.{name} = {number:g} is outside {left}{low:g}, {high:g}{right}; {hint}"
        )
    return number


def _number_tuple(name: str, values: Any) -> tuple[float, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ConfigError(f"MapParams.{name} must be a sequence of numbers, got {values!r}")
    numbers = tuple(_number(name, value) for value in values)
    if not numbers:
        raise ConfigError(f"MapParams.{name} is empty; give at least one value")
    return numbers


@dataclass(frozen=True)
class MapParams:
    """Parameters of the liquidation map (frozen, validated on construction).

    How the defaults were chosen
    ----------------------------
    The model's shape (leverages, long share, entries, touched levels, half-life and
    participation) is **calibrated**: ``python -m backtest calibrate`` (Optuna TPE, seed 0,
    300 trials) fitted one set for BTC and ETH jointly against CoinGlass's Binance 4 h
    liquidation totals on the training window 2025-01-08 .. 2025-06-30 (5 m Binance USDⓈ-M
    candles and funding, map started 7 days earlier), maximising the mean over both symbols
    of the Spearman rank correlations of long, short and total liquidations and the
    long-share correlation on the busiest quarter of bars; participation then in closed form
    (estimated total = recorded total on the training bars).  Fitted values are rounded to
    about three digits here; the fit with its record is ``data/profiles/binance-btc-eth-5m.toml``.
    The test window 2025-07-01 .. 2025-11-14 was not used (README, "How good is the map?").
    Grid and report settings (bucket width, band, smoothing, span) and the venue are not
    fitted; they are argued below.

    Leverage distribution
    ---------------------
    leverages, leverage_weights : tuple of float
        Leverages of new positions and the share of new notional at each (weights >= 0,
        summing to 1; leverages > 1).  No exchange publishes the leverage mix of its open
        interest.  The default grid spans Binance's range for BTC and ETH, 2x .. 125x (the
        maximum), and its weights are calibrated (a log-normal bump, centre 19.9x, width 1.54
        in log leverage): 2x 4.7 %, 3x 6.8 %, 5x 9.6 %, 10x 13 %, 20x 14.4 %, 25x 14.2 %,
        50x 12 %, 75x 9.9 %, 100x 8.3 %, 125x 7.1 %.  This is the mix of the positions that
        *get liquidated*, not of open interest: large low-leverage accounts hold most open
        interest but are rarely reached, and a mix weighted that way (the previous default,
        67 % at <= 10x, everything else as now) ranks the recorded 4 h totals worse (training
        window, mean of BTC and ETH: Spearman short 0.865 against 0.875, total 0.876 against
        0.884).

    Long share
    ----------
    long_share_base : float
        Share of the leveraged side of new contracts that is long, before the funding tilt.
        Every contract has a long and a short holder, but the leveraged side leans long:
        calibrated 0.563.
    long_share_funding_tilt : float
        Change of the long share per unit of funding rate above ``neutral_funding_rate``
        (calibrated 980: +0.098 per +0.01 % funding, within the clamp below).  Positive
        funding means longs pay, i.e. the long side is crowded (the perpetual trades above the
        index).
    neutral_funding_rate : float
        Funding of a balanced market: Binance's interest component, 0.01 % per 8 h (default
        0.0001); below it shorts lean in.
    long_share_min, long_share_max : float
        Clamp of the long share (calibrated 0.533..0.593: funding moves the share only a few
        points; the recorded split between longs and shorts follows where the price goes,
        which the levels already carry, much more than funding).

    Entries
    -------
    entry_points : int
        Points spread evenly in log price over each bar's low..high (calibrated 3: low, middle,
        high; 1 puts every entry at the typical price).  A bar's volume trades across its
        range, not at one price.
    entry_concentration : float
        Extra weight near the typical price (high+low+close)/3: a point's weight is
        ``1 + concentration·(1 − |u − u_typical|)`` with u its position in the range
        (calibrated 3.24: the point at the typical price weighs 4.2 times the far extreme).
    round_level_weight : float
        Fraction of a bar's new notional that enters at the round levels inside its range
        (major levels count double; see :mod:`backtest.liquidation.levels`), in [0, 1).
        Calibrated 0.17: resting orders cluster at round numbers (Osler 2003) but most volume
        trades elsewhere.

    Grid and clusters
    -----------------
    bucket_width : float
        Relative width of a price bucket (default 0.001 = 0.1 %, finer than any cluster a
        trader acts on, coarse enough for a fast report).
    band : float
        Search band for clusters and band notional, relative to the close, on each side
        (default 0.05 = 5 %, about the largest daily move of BTC in a normal week).
    smoothing : float
        Half-width (relative) of the triangular smoothing before peaks are found; a cluster's
        notional is the notional within this half-width around the peak (default 0.002 =
        +-0.2 %, two buckets).
    grid_span : float
        The grid covers ``price/grid_span .. price·grid_span`` around its centre (default 4).

    Consumption
    -----------
    touch_fraction : float
        Share of the notional at a level the bar's extreme only *touched* (within
        ``touch_depth`` of the low for longs, of the high for shorts) that is liquidated, in
        (0, 1]; levels crossed by more are liquidated whole.  The rest stays and is touched
        again by the next bar that reaches it.  Not every position at a level dies when the
        traded price first reaches it: exchanges liquidate on the mark price, which does not
        follow every tick of the traded one; cross-margined positions draw on the account's
        other balance; Binance reduces large positions in steps.  1 liquidates every crossed
        level whole.  Calibrated 0.66 (training window, mean of BTC and ETH, everything else
        as now: with 1 the explained variance of log liquidations added over the naive proxy
        falls from 0.28 to 0.23 per side and the long-share correlation from 0.867 to 0.863).
    touch_depth : float
        Depth of the touched zone, relative to the extreme (calibrated 0.0066 = 0.66 %, seven
        buckets at the default width; rounded to whole buckets, 0 disables the zone).

    Removal
    -------
    half_life_hours : float
        Half-life of open positions in the decay model (calibrated 7.3 h).  BTC and ETH perps
        trade one to two times their open interest a day, so the average position lasts well
        under a day once scalping is counted; the recorded liquidations follow the recent
        positions: longer half-lives rank them worse on the training window (mean of BTC and
        ETH, everything else as now: Spearman short 0.863 at 24 h and 0.856 at 48 h against
        0.875, total 0.876 and 0.869 against 0.884).  Converted to bars with the timeframe.
    half_life_bars : float, optional
        Half-life in bars; overrides ``half_life_hours`` and needs no timeframe.
    participation : float
        New notional per traded notional when open interest is not loaded (calibrated
        0.00279, in closed form: the training window's estimated liquidations equal the
        recorded CoinGlass Binance totals, geometric mean of BTC's and ETH's ratios).  The
        model is linear in this number (it scales every notional output and nothing else),
        so it sets the scale of ``liq_long``/``liq_short`` and of the cluster notionals:
        they estimate what Binance *records*, itself a lower bound (Binance publishes at most
        one liquidation order per symbol per second).  With open interest loaded,
        ``ΔOI⁺ × typical`` replaces it and the proportional haircut ``OI/OI_prev`` (when OI
        falls) replaces the decay.

    Venue
    -----
    venue : {"binance", "bybit", "okx", "hyperliquid"}
        Whose liquidation formula places the levels (default "binance").
    position_notional : float
        Representative position notional in quote currency (default 10,000 USDT, a typical
        retail position; it picks the maintenance tier of the exact formula).
    maintenance_margin_rate : float, optional
        Rate for venues without a tier table here (required for bybit and okx, e.g. 0.005).
    venue_max_leverage : float, optional
        Hyperliquid: the asset's maximum leverage (its maintenance rate is 1/(2·max)).

    Cascade
    -------
    cascade : CascadeParams, optional
        When given, the map computes the per-bar ``cascade_risk`` line (the larger
        amplification of the standard shock down on the longs and up on the shorts,
        :mod:`backtest.liquidation.cascade`); default None: the line is NaN and costs nothing.
    cascade_liquidation_multiplier : float
        How many times the map's notional is really force-sold when its levels are crossed, for
        the cascade simulator (> 0; the ``cascade_risk`` line and the snapshots' market inputs).
        The map's notional is calibrated to the liquidations Binance *records*, a lower bound
        (at most one liquidation order per symbol per second is published; on 2025-10-10
        Binance recorded about 1 B USD for BTC and ETH of the ≈ 19 B reported market wide),
        while a cascade is driven by everything that is force-sold.  Default 36, the map's
        scale before its calibration (participation 0.1 against 0.00279), with which the
        cascade's impact parameters were set: the cascade's numbers did not move with the
        recalibration.  Applied by dividing the daily traded notional the cascade sees, which
        is the same as multiplying every liquidated notional by it.
    """

    leverages: tuple[float, ...] = (2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0, 125.0)
    leverage_weights: tuple[float, ...] = (
        0.047, 0.068, 0.096, 0.130, 0.144, 0.142, 0.120, 0.099, 0.083, 0.071,
    )  # fmt: skip
    long_share_base: float = 0.563
    long_share_funding_tilt: float = 980.0
    neutral_funding_rate: float = 0.0001
    long_share_min: float = 0.533
    long_share_max: float = 0.593
    entry_points: int = 3
    entry_concentration: float = 3.24
    round_level_weight: float = 0.17
    bucket_width: float = 0.001
    band: float = 0.05
    smoothing: float = 0.002
    grid_span: float = 4.0
    touch_fraction: float = 0.66
    touch_depth: float = 0.0066
    half_life_hours: float = 7.3
    half_life_bars: float | None = None
    participation: float = 0.00279
    venue: str = "binance"
    position_notional: float = 10_000.0
    maintenance_margin_rate: float | None = None
    venue_max_leverage: float | None = None
    cascade: CascadeParams | None = field(default=None)
    cascade_liquidation_multiplier: float = 36.0

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        leverages = _number_tuple("leverages", self.leverages)
        weights = _number_tuple("leverage_weights", self.leverage_weights)
        if len(leverages) != len(weights):
            raise ConfigError(
                f"MapParams.leverages has {len(leverages)} values but leverage_weights has "
                f"{len(weights)}; give one weight per leverage"
            )
        for leverage in leverages:
            if leverage <= 1.0:
                raise ConfigError(
                    f"MapParams.leverages contains {leverage:g}; every leverage must be above 1 "
                    "(a 1x long cannot be liquidated)"
                )
        if any(weight < 0.0 for weight in weights):
            raise ConfigError("MapParams.leverage_weights must not be negative")
        total = math.fsum(weights)
        if abs(total - 1.0) > 1e-9:
            raise ConfigError(
                f"MapParams.leverage_weights sum to {total:.6g}; they must sum to 1 "
                "(they are shares of new notional)"
            )
        set_field(self, "leverages", leverages)
        set_field(self, "leverage_weights", weights)
        share_hint = "a long share is a fraction of new notional"
        base = _in_range(
            "long_share_base", self.long_share_base, 0, 1, low_open=True, high_open=True,
            hint=share_hint,
        )  # fmt: skip
        low = _in_range(
            "long_share_min", self.long_share_min, 0, 1, low_open=True, high_open=True,
            hint=share_hint,
        )  # fmt: skip
        high = _in_range(
            "long_share_max", self.long_share_max, 0, 1, low_open=True, high_open=True,
            hint=share_hint,
        )  # fmt: skip
        if not low <= base <= high:
            raise ConfigError(
                f"MapParams needs long_share_min <= long_share_base <= long_share_max, got "
                f"{low:g} <= {base:g} <= {high:g}"
            )
        _number("long_share_funding_tilt", self.long_share_funding_tilt)
        _number("neutral_funding_rate", self.neutral_funding_rate)
        if isinstance(self.entry_points, bool) or not isinstance(self.entry_points, int):
            raise ConfigError(
                f"MapParams.entry_points must be an integer, got {self.entry_points!r}"
            )
        if not 1 <= self.entry_points <= 64:
            raise ConfigError(f"MapParams.entry_points = {self.entry_points} is outside 1..64")
        _in_range(
            "entry_concentration", self.entry_concentration, 0, 100, low_open=False,
            high_open=False, hint="0 spreads entries evenly over the range",
        )  # fmt: skip
        _in_range(
            "round_level_weight", self.round_level_weight, 0, 1, low_open=False, high_open=True,
            hint="it is the fraction of new notional entering at round levels",
        )  # fmt: skip
        width = _number("bucket_width", self.bucket_width)
        if width <= 0.0:
            raise ConfigError(
                f"MapParams.bucket_width = {width:g} must be positive (a relative width, "
                "0.001 = 0.1 %)"
            )
        _in_range(
            "bucket_width", width, 0, 0.05, low_open=True, high_open=False,
            hint="a relative width, 0.001 = 0.1 %",
        )  # fmt: skip
        band = _in_range(
            "band", self.band, 0, 0.5, low_open=True, high_open=False,
            hint="a relative distance, 0.05 = 5 %",
        )  # fmt: skip
        smoothing = _in_range(
            "smoothing", self.smoothing, 0, 0.05, low_open=False, high_open=False,
            hint="a relative half-width, 0.002 = 0.2 %",
        )  # fmt: skip
        span = _in_range(
            "grid_span", self.grid_span, 1, 1000, low_open=True, high_open=False,
            hint="the grid covers price/grid_span .. price*grid_span",
        )  # fmt: skip
        _in_range(
            "touch_fraction", self.touch_fraction, 0, 1, low_open=True, high_open=False,
            hint="it is the share of a touched level's notional liquidated per bar",
        )  # fmt: skip
        _in_range(
            "touch_depth", self.touch_depth, 0, 0.05, low_open=False, high_open=False,
            hint="a relative depth, 0.003 = 0.3 %",
        )  # fmt: skip
        geometry = self.geometry()
        needed = geometry.band_buckets + geometry.smoothing_buckets + 17
        if geometry.half_buckets // 2 < needed:
            # the report reads a few buckets beyond the band, which must stay inside the grid's
            # middle half
            smallest = math.exp(2 * needed * self.log_step) * 1.001
            raise ConfigError(
                f"MapParams.grid_span = {span:g} is too small for band {band:g}, smoothing "
                f"{smoothing:g} and bucket_width {width:g}; use grid_span >= {smallest:.3g}"
            )
        if geometry.half_buckets > 2_000_000:
            raise ConfigError(
                f"MapParams.grid_span {span:g} with bucket_width {width:g} needs "
                f"{2 * geometry.half_buckets + 1:,} buckets; widen the buckets or shrink the span"
            )
        half_life = _number("half_life_hours", self.half_life_hours)
        if half_life <= 0.0:
            raise ConfigError(f"MapParams.half_life_hours = {half_life:g} must be positive")
        if self.half_life_bars is not None:
            bars = _number("half_life_bars", self.half_life_bars)
            if bars <= 0.0:
                raise ConfigError(f"MapParams.half_life_bars = {bars:g} must be positive")
        participation = _number("participation", self.participation)
        if participation <= 0.0:
            raise ConfigError(
                f"MapParams.participation = {participation:g} must be positive (new notional "
                "per traded notional)"
            )
        venue = str(self.venue).lower()
        if venue == "binanceusdm":
            venue = "binance"
        if venue not in VENUES:
            close = difflib.get_close_matches(venue, VENUES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"MapParams.venue {self.venue!r} is not supported{hint}; use one of "
                f"{', '.join(VENUES)}"
            )
        set_field(self, "venue", venue)
        if _number("position_notional", self.position_notional) <= 0.0:
            raise ConfigError("MapParams.position_notional must be positive (quote currency)")
        if self.maintenance_margin_rate is not None:
            _in_range(
                "maintenance_margin_rate", self.maintenance_margin_rate, 0, 1, low_open=False,
                high_open=True, hint="a fraction, 0.005 = 0.5 %",
            )  # fmt: skip
        if self.venue_max_leverage is not None and (
            _number("venue_max_leverage", self.venue_max_leverage) <= 1.0
        ):
            raise ConfigError("MapParams.venue_max_leverage must be above 1")
        if _number("cascade_liquidation_multiplier", self.cascade_liquidation_multiplier) <= 0:
            raise ConfigError(
                "MapParams.cascade_liquidation_multiplier must be positive (force-sold notional "
                "per map notional, e.g. 36)"
            )
        if self.cascade is not None and not isinstance(self.cascade, CascadeParams):
            if isinstance(self.cascade, Mapping):
                set_field(self, "cascade", CascadeParams(**dict(self.cascade)))
            else:
                raise ConfigError(
                    f"MapParams.cascade must be a CascadeParams (or a mapping of its fields), "
                    f"got {type(self.cascade).__name__}"
                )

    # -- derived ----------------------------------------------------------------------------
    @property
    def log_step(self) -> float:
        """Bucket width in log price, ``log(1 + bucket_width)``."""
        return math.log1p(self.bucket_width)

    def geometry(self) -> _Geometry:
        """Grid sizes in buckets: half the grid, the band and the smoothing half-width."""
        step = self.log_step
        return _Geometry(
            half_buckets=math.ceil(math.log(self.grid_span) / step),
            band_buckets=max(1, round(math.log1p(self.band) / step)),
            smoothing_buckets=round(math.log1p(self.smoothing) / step),
            touch_buckets=round(math.log1p(self.touch_depth) / step),
        )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> MapParams:
        """Build from a mapping (a TOML table, ``--map`` flags, indicator keywords).

        Raises
        ------
        ConfigError
            For an unknown name (with "did you mean") or a bad value, in one line.
        """
        values = dict(values or {})
        known = [item.name for item in fields(cls)]
        for name in values:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(
                    f"MapParams has no parameter {name!r}; {hint}known: {', '.join(known)}"
                )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain Python values (tuples as lists, cascade as a dict)."""
        result: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, CascadeParams):
                value = {part.name: getattr(value, part.name) for part in fields(value)}
            result[item.name] = value
        return result


@dataclass(frozen=True)
class _Geometry:
    half_buckets: int
    band_buckets: int
    smoothing_buckets: int
    touch_buckets: int = 0


# -- snapshots and results -----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DensitySnapshot:
    """The map's density at the close of one bar.

    Bucket ``i`` spans ``exp(log_price_min + i·log_step) .. exp(log_price_min + (i+1)·log_step)``;
    ``long_notional[i]`` / ``short_notional[i]`` is the notional (quote currency) of long /
    short positions whose liquidation price lies in it.

    Attributes
    ----------
    time : pandas.Timestamp or None
        Open time of the bar (the density is as of that bar's close); None from arrays.
    price : float
        The bar's close.
    log_price_min, log_step : float
        Grid origin and bucket width in log price.
    long_notional, short_notional : numpy.ndarray
        Density per bucket.
    daily_volatility, daily_notional : float
        The cascade simulator's market inputs at that bar (EWMA daily volatility and traded
        notional, :func:`backtest.liquidation.cascade.market_state`, the notional divided by
        ``MapParams.cascade_liquidation_multiplier``); NaN when unknown.
    """

    time: pd.Timestamp | None
    price: float
    log_price_min: float
    log_step: float
    long_notional: FloatArray
    short_notional: FloatArray
    daily_volatility: float = math.nan
    daily_notional: float = math.nan

    @property
    def n_buckets(self) -> int:
        """Number of buckets."""
        return int(self.long_notional.shape[0])

    @property
    def bucket_prices(self) -> FloatArray:
        """Bucket centres (geometric: the exp of the log-centre)."""
        return np.exp(self.log_price_min + (np.arange(self.n_buckets) + 0.5) * self.log_step)

    @property
    def bucket_edges(self) -> FloatArray:
        """The ``n_buckets + 1`` bucket boundaries."""
        return np.exp(self.log_price_min + np.arange(self.n_buckets + 1) * self.log_step)

    def between(self, low: float, high: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Bucket centres and densities of the buckets whose centre lies in ``[low, high]``."""
        prices = self.bucket_prices
        keep = (prices >= low) & (prices <= high)
        return prices[keep], self.long_notional[keep], self.short_notional[keep]

    def rebucket(self, price_step: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Re-bucket to round price steps (for pictures).

        Each log bucket's notional goes to the step ``[k·price_step, (k+1)·price_step)``
        holding its centre.

        Returns
        -------
        tuple of numpy.ndarray
            Lower edges of the non-empty-range steps, long and short notional per step.
        """
        step = float(price_step)
        if not (math.isfinite(step) and step > 0.0):
            raise ConfigError(f"price_step must be a positive number, got {price_step!r}")
        index = np.floor(self.bucket_prices / step).astype(np.int64)
        first = int(index[0])
        count = int(index[-1]) - first + 1
        long_sum = np.bincount(index - first, weights=self.long_notional, minlength=count)
        short_sum = np.bincount(index - first, weights=self.short_notional, minlength=count)
        return (np.arange(first, first + count) * step, long_sum, short_sum)


@dataclass(frozen=True, eq=False)
class MapResult:
    """What :meth:`LiquidationMap.run` returns.

    Attributes
    ----------
    lines : pandas.DataFrame
        One row per bar (the frame's index), one column per name in :data:`LINES`.
    snapshots : tuple of DensitySnapshot
        Densities at the requested bars, in time order.
    final : DensitySnapshot or None
        The density after the last bar (None when no bar was valid).
    params : MapParams
        The parameters used.
    """

    lines: pd.DataFrame
    snapshots: tuple[DensitySnapshot, ...]
    final: DensitySnapshot | None
    params: MapParams

    def snapshot(self, time: Any) -> DensitySnapshot:
        """The last snapshot taken at or before ``time``."""
        moment = _timestamp(time)
        chosen = None
        for snapshot in self.snapshots:
            if snapshot.time is not None and snapshot.time <= moment:
                chosen = snapshot
        if chosen is None:
            raise ConfigError(
                f"no snapshot at or before {moment}; run with snapshot_at=[...] or snapshot_every"
            )
        return chosen


# -- the map -------------------------------------------------------------------------------------
def bar_hours(timeframe: str | float | pd.Timedelta) -> float:
    """Length of one bar in hours, from a ccxt timeframe, seconds or a Timedelta."""
    if isinstance(timeframe, pd.Timedelta):
        seconds = timeframe.total_seconds()
    elif isinstance(timeframe, str):
        from backtest.timeframes import timeframe_to_ms

        seconds = timeframe_to_ms(timeframe) / 1000.0
    elif isinstance(timeframe, int | float) and not isinstance(timeframe, bool):
        seconds = float(timeframe)
    else:
        raise ConfigError(
            f"timeframe {timeframe!r} is not understood; pass a ccxt timeframe such as '5m' "
            "or the bar length in seconds"
        )
    if not (math.isfinite(seconds) and seconds > 0.0):
        raise ConfigError(f"timeframe {timeframe!r} must be a positive bar length")
    return seconds / 3600.0


def _timestamp(value: Any) -> pd.Timestamp:
    moment = pd.Timestamp(value)
    if moment.tzinfo is None:
        moment = moment.tz_localize("UTC")
    return moment


class LiquidationMap:
    """Estimate liquidation clusters bar by bar (see the module docstring).

    Parameters
    ----------
    params : MapParams, optional
        Model parameters (defaults when None).
    tiers : LeverageTiers, optional
        Binance leverage tiers for the exact formula; default: the bundled snapshot of the
        frame's symbol in force at its first bar (BTC's latest when running on arrays).
    timeframe : str or float, optional
        Bar length (ccxt timeframe such as "5m", or seconds): turns ``half_life_hours`` (and
        the cascade's EWMA half-life) into bars.  :meth:`run` reads it from the frame when
        omitted; :meth:`run_arrays` and :meth:`stepper` need it unless
        ``params.half_life_bars`` is set (and no cascade is asked for).
    backend : {"kernel", "reference"}
        The compiled kernel (default) or its pure-Python twin (slow; the specification).
    """

    def __init__(
        self,
        params: MapParams | None = None,
        *,
        tiers: Any = None,
        timeframe: str | float | None = None,
        backend: Literal["kernel", "reference"] = "kernel",
    ) -> None:
        if params is None:
            params = MapParams()
        elif isinstance(params, Mapping):
            params = MapParams.from_dict(params)
        elif not isinstance(params, MapParams):
            raise ConfigError(
                f"params must be a MapParams or a mapping, got {type(params).__name__}"
            )
        if backend not in ("kernel", "reference"):
            raise ConfigError(f"backend must be 'kernel' or 'reference', got {backend!r}")
        self.params = params
        self.tiers = tiers
        self.timeframe = timeframe
        self.backend = backend
        if timeframe is not None:
            bar_hours(timeframe)
        self._factors: dict[int, tuple[Any, tuple[tuple[float, ...], tuple[float, ...]]]] = {}

    # -- levels -----------------------------------------------------------------------------
    def liquidation_factors(self, tiers: Any = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Exact ``LP/EP`` per leverage for longs and shorts (from :mod:`prices`).

        A leverage above what the venue allows at ``position_notional`` (``venue_max_leverage``,
        else the Binance bracket's maximum) is taken at that maximum, so a map with the default
        leverages runs on a symbol capped at, say, 20x.
        """
        from backtest.liquidation.prices import liquidation_factor

        tiers = tiers if tiers is not None else self.tiers
        params = self.params
        if params.venue == "binance" and tiers is None and params.maintenance_margin_rate is None:
            from backtest.liquidation.tiers import load_tiers

            tiers = load_tiers()
        cached = self._factors.get(id(tiers))
        if cached is not None and cached[0] is tiers:
            return cached[1]
        options: dict[str, Any] = {"notional": params.position_notional}
        if params.maintenance_margin_rate is not None:
            options["maintenance_margin_rate"] = params.maintenance_margin_rate
        elif params.venue == "binance":
            options["tiers"] = tiers
        maximum = math.inf
        if params.venue_max_leverage is not None:
            options["max_leverage"] = params.venue_max_leverage
            maximum = float(params.venue_max_leverage)
        elif options.get("tiers") is not None:
            bracket_notional = min(params.position_notional, tiers.max_notional)
            maximum = float(tiers.max_leverage_for_notional(bracket_notional))
        # A leverage the venue does not allow for this notional (a 100x map leverage on an
        # altcoin capped at 20x) is traded at the cap: its weight moves to the cap's factor,
        # as backtest.engine.venues.map_defaults folds it for runs.
        effective = tuple(min(float(leverage), maximum) for leverage in params.leverages)
        try:
            longs = tuple(
                liquidation_factor(params.venue, "long", leverage, **options)
                for leverage in effective
            )
            shorts = tuple(
                liquidation_factor(params.venue, "short", leverage, **options)
                for leverage in effective
            )
        except ConfigError as error:
            raise ConfigError(f"MapParams(venue={params.venue!r}): {error}") from None
        for leverage, factor in zip(params.leverages, longs, strict=True):
            if not 0.0 < factor < 1.0:
                raise ConfigError(
                    f"MapParams: a {leverage:g}x long on {params.venue} has no liquidation "
                    f"price below entry (factor {factor:g}); use leverages above 1"
                )
        # the cache keeps the tiers object alive, so its id cannot be reused meanwhile
        self._factors[id(tiers)] = (tiers, (longs, shorts))
        return longs, shorts

    # -- kernels ----------------------------------------------------------------------------
    def _bar_hours(self, timeframe: str | float | None) -> float | None:
        chosen = timeframe if timeframe is not None else self.timeframe
        return None if chosen is None else bar_hours(chosen)

    def new_kernel(self, *, timeframe: str | float | None = None, tiers: Any = None) -> Any:
        """A fresh kernel (compiled or reference) configured from the parameters."""
        params = self.params
        hours = self._bar_hours(timeframe)
        if params.half_life_bars is not None:
            decay = 0.5 ** (1.0 / params.half_life_bars)
        elif hours is not None:
            decay = 0.5 ** (hours / params.half_life_hours)
        else:
            raise ConfigError(
                "the map needs the bar length to turn half_life_hours into bars: pass "
                "LiquidationMap(..., timeframe='5m') (or timeframe= to run_arrays/stepper), "
                "or set MapParams(half_life_bars=...)"
            )
        longs, shorts = self.liquidation_factors(tiers)
        step = params.log_step
        geometry = params.geometry()
        options: dict[str, Any] = {
            "log_step": step,
            "half_buckets": geometry.half_buckets,
            "entry_points": params.entry_points,
            "entry_concentration": float(params.entry_concentration),
            "round_level_weight": float(params.round_level_weight),
            "long_share_base": float(params.long_share_base),
            "funding_tilt": float(params.long_share_funding_tilt),
            "neutral_funding_rate": float(params.neutral_funding_rate),
            "long_share_min": float(params.long_share_min),
            "long_share_max": float(params.long_share_max),
            "participation": float(params.participation),
            "decay_per_bar": decay,
            "touch_fraction": float(params.touch_fraction),
            "touch_buckets": geometry.touch_buckets,
            "band_buckets": geometry.band_buckets,
            "smoothing_buckets": geometry.smoothing_buckets,
        }
        if params.cascade is not None:
            if hours is None:
                raise ConfigError(
                    "the cascade_risk line needs the bar length: pass "
                    "LiquidationMap(..., timeframe='5m')"
                )
            cascade = params.cascade
            options["cascade_shock"] = cascade.standard_shock_pct / 100.0
            options["cascade_model"] = cascade.kernel_args()
            options["cascade_alpha"] = -math.expm1(
                -math.log(2.0) / (cascade.halflife_hours / hours)
            )
            options["bars_per_day"] = 24.0 / hours
            options["cascade_notional_divisor"] = float(params.cascade_liquidation_multiplier)
        long_offsets = [math.log(factor) / step for factor in longs]
        short_offsets = [math.log(factor) / step for factor in shorts]
        if self.backend == "reference":
            from backtest.liquidation.reference.heatmap import MapKernel as ReferenceKernel

            kernel_class: Any = ReferenceKernel
        else:
            kernel_class = load_kernel("_heatmap").MapKernel
        return kernel_class(
            long_offsets, short_offsets, list(params.leverage_weights), POWERS_OF_TEN, **options
        )

    # -- whole arrays -----------------------------------------------------------------------
    def run_arrays(
        self,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        funding_rate: npt.ArrayLike | None = None,
        mark_high: npt.ArrayLike | None = None,
        mark_low: npt.ArrayLike | None = None,
        open_interest: npt.ArrayLike | None = None,
        out: Mapping[str, FloatArray] | None = None,
        *,
        timeframe: str | float | None = None,
        tiers: Any = None,
    ) -> dict[str, FloatArray]:
        """Run the map over whole arrays; return the per-bar outputs by name.

        Parameters
        ----------
        open, high, low, close, volume : array-like of float
            Candles, equal lengths; float64 C-contiguous arrays (also read-only views, e.g.
            of backtrader line buffers) are used without a copy.
        funding_rate, mark_high, mark_low, open_interest : array-like, optional
            Funding rate per settlement (NaN between settlements; the last rate is held), the
            mark-price candle's high/low (NaN where unknown), open interest in base units.
        out : mapping of str to numpy.ndarray, optional
            Arrays to write the outputs into (every name of :data:`LINES`, each a writable
            C-contiguous float64 array of the input length); new arrays when omitted.
        timeframe : str or float, optional
            Bar length, overriding the map's.
        tiers : LeverageTiers, optional
            Tiers overriding the map's.

        Returns
        -------
        dict of str to numpy.ndarray
            The output arrays (``out``'s own arrays when given).
        """
        candles = [_input_array(name, values) for name, values in zip(
            CANDLE_COLUMNS, (open, high, low, close, volume), strict=True
        )]  # fmt: skip
        length = candles[0].shape[0]
        if length == 0:
            raise DataError("the liquidation map got no bars (empty input); pass some candles")
        for name, values in zip(CANDLE_COLUMNS, candles, strict=True):
            if values.shape[0] != length:
                raise DataError(
                    f"{name} has {values.shape[0]} values but open has {length}; the candle "
                    "arrays must have the same length"
                )
        optional: list[FloatArray | None] = []
        for name, values in zip(
            OPTIONAL_INPUTS, (funding_rate, mark_high, mark_low, open_interest), strict=True
        ):
            if values is None:
                optional.append(None)
                continue
            array = _input_array(name, values)
            if array.shape[0] != length:
                raise DataError(
                    f"{name} has {array.shape[0]} values but the candles have {length}; "
                    "align it with the candles (NaN where unknown)"
                )
            optional.append(array)
        targets = _output_arrays(out, length)
        kernel = self.new_kernel(timeframe=timeframe, tiers=tiers)
        kernel.process(*candles, *optional, [targets[name] for name in LINES], 0, length)
        return targets

    # -- frames -----------------------------------------------------------------------------
    def run(
        self,
        frame: pd.DataFrame,
        snapshot_at: Any = None,
        snapshot_every: int | None = None,
    ) -> MapResult:
        """Run the map over a candle frame (as from :func:`backtest.market.store.load_market`).

        Parameters
        ----------
        frame : pandas.DataFrame
            Columns open, high, low, close, volume; funding_rate, mark_high, mark_low and
            open_interest are used when present and not all NaN.  A DatetimeIndex (UTC) is
            expected for snapshots by time and to infer the timeframe.
        snapshot_at : time, bar position or sequence of them, optional
            Bars after which to copy the density: timestamps (the last bar opening at or
            before each) or integer positions.
        snapshot_every : int, optional
            Also copy the density every k bars (after bars k-1, 2k-1, ...).

        Returns
        -------
        MapResult
        """
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"run() needs a pandas DataFrame of candles, got {type(frame).__name__}"
            )
        missing = [name for name in CANDLE_COLUMNS if name not in frame.columns]
        if missing:
            raise DataError(
                f"the candle frame lacks column(s) {', '.join(missing)}; load it with "
                "backtest.market.store.load_market or name the columns open/high/low/close/volume"
            )
        length = len(frame)
        if length == 0:
            raise DataError("the liquidation map got an empty frame; pass some candles")
        timeframe = self.timeframe
        if timeframe is None:
            timeframe = _frame_timeframe(frame)
        tiers = self.tiers
        if tiers is None and self.params.venue == "binance":
            tiers = _frame_tiers(frame, self.params)
        candles = [_input_array(name, frame[name].to_numpy(dtype=np.float64)) for name in
                   CANDLE_COLUMNS]  # fmt: skip
        optional: list[FloatArray | None] = []
        for name in OPTIONAL_INPUTS:
            if name in frame.columns:
                values = _input_array(name, frame[name].to_numpy(dtype=np.float64))
                optional.append(None if np.isnan(values).all() else values)
            else:
                optional.append(None)
        positions = _snapshot_positions(frame, snapshot_at, snapshot_every)
        targets = _output_arrays(None, length)
        out_list = [targets[name] for name in LINES]
        kernel = self.new_kernel(timeframe=timeframe, tiers=tiers)
        index = frame.index
        times = index if isinstance(index, pd.DatetimeIndex) else None
        market = _market_state(candles[3], candles[4], timeframe, self.params)
        snapshots: list[DensitySnapshot] = []
        start = 0
        for position in positions:
            kernel.process(*candles, *optional, out_list, start, position + 1)
            start = position + 1
            snapshot = _snapshot(kernel, times, position, candles[3], self.params, market)
            if snapshot is not None:
                snapshots.append(snapshot)
        kernel.process(*candles, *optional, out_list, start, length)
        final = _snapshot(kernel, times, length - 1, candles[3], self.params, market)
        lines = pd.DataFrame(targets, index=frame.index, columns=list(LINES))
        return MapResult(lines=lines, snapshots=tuple(snapshots), final=final, params=self.params)

    # -- bar by bar -------------------------------------------------------------------------
    def stepper(self, *, timeframe: str | float | None = None, tiers: Any = None) -> MapStepper:
        """A bar-by-bar runner giving exactly what :meth:`run_arrays` gives."""
        return MapStepper(self.new_kernel(timeframe=timeframe, tiers=tiers), self.params)


class MapStepper:
    """Steps the map one bar at a time (live feeds, backtrader's ``next``).

    Created by :meth:`LiquidationMap.stepper`; runs the same kernel function as
    :meth:`LiquidationMap.run_arrays`, so a stepped series equals the whole-array one.
    """

    def __init__(self, kernel: Any, params: MapParams) -> None:
        self._kernel = kernel
        self.params = params
        self._last_close = _NAN

    def update(
        self,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        funding_rate: float = _NAN,
        mark_high: float = _NAN,
        mark_low: float = _NAN,
        open_interest: float = _NAN,
    ) -> MapOutputs:
        """Process the next bar; return its outputs (a named tuple in :data:`LINES` order)."""
        values = (open, high, low, close, volume, funding_rate, mark_high, mark_low, open_interest)
        numbers = [_NAN if value is None else float(value) for value in values]
        result = MapOutputs(*self._kernel.step(*numbers))
        if math.isfinite(numbers[3]) and numbers[3] > 0.0:
            self._last_close = numbers[3]
        return result

    def snapshot(self, time: Any = None) -> DensitySnapshot | None:
        """The density now (after the last bar), or None before the first valid bar."""
        state = self._kernel.density()
        if state is None:
            return None
        log_price_min, long_notional, short_notional = state
        return DensitySnapshot(
            time=None if time is None else _timestamp(time),
            price=self._last_close,
            log_price_min=log_price_min,
            log_step=self.params.log_step,
            long_notional=long_notional,
            short_notional=short_notional,
        )

    def reset(self) -> None:
        """Start over, as if no bar had been seen."""
        self._kernel.reset()
        self._last_close = _NAN


# -- helpers -------------------------------------------------------------------------------------
def _input_array(name: str, values: Any) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must hold numbers (float64)") from None
    if array.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {array.shape}")
    return np.ascontiguousarray(array)


def _output_arrays(out: Mapping[str, FloatArray] | None, length: int) -> dict[str, FloatArray]:
    if out is None:
        return {name: np.empty(length, dtype=np.float64) for name in LINES}
    if not isinstance(out, Mapping):
        raise ConfigError("out must map each output name to an array (a dict)")
    missing = [name for name in LINES if name not in out]
    if missing:
        raise ConfigError(f"out lacks array(s) for {', '.join(missing)}; give one per line")
    targets: dict[str, FloatArray] = {}
    for name in LINES:
        array = out[name]
        if not (
            isinstance(array, np.ndarray)
            and array.dtype == np.float64
            and array.ndim == 1
            and array.flags.c_contiguous
            and array.flags.writeable
            and array.shape[0] == length
        ):
            raise ConfigError(
                f"out[{name!r}] must be a writable C-contiguous float64 array of length {length}"
            )
        targets[name] = array
    return targets


def _frame_timeframe(frame: pd.DataFrame) -> str | float:
    timeframe = frame.attrs.get("timeframe")
    if timeframe:
        return str(timeframe)
    index = frame.index
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        steps = np.diff(index.asi8)
        steps = steps[steps > 0]
        if steps.size:
            return float(np.median(steps)) / 1e9
    raise ConfigError(
        "cannot tell the bar length of this frame (no attrs['timeframe'] and no DatetimeIndex"
        "); pass LiquidationMap(..., timeframe='5m')"
    )


def _frame_tiers(frame: pd.DataFrame, params: MapParams) -> Any:
    if params.maintenance_margin_rate is not None:
        return None
    from backtest.liquidation.tiers import load_tiers

    symbol = frame.attrs.get("symbol") or "BTC/USDT:USDT"
    at = None
    if isinstance(frame.index, pd.DatetimeIndex) and len(frame.index):
        at = frame.index[0].to_pydatetime()
    try:
        return load_tiers(symbol, at=at)
    except ConfigError:
        return load_tiers(at=at)


def _snapshot_positions(
    frame: pd.DataFrame, snapshot_at: Any, snapshot_every: int | None
) -> list[int]:
    length = len(frame)
    positions: set[int] = set()
    if snapshot_every is not None:
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int | np.integer):
            raise ConfigError(
                f"snapshot_every must be a whole number of bars, got {snapshot_every!r}"
            )
        if snapshot_every < 1:
            raise ConfigError(f"snapshot_every must be at least 1, got {snapshot_every}")
        positions.update(range(int(snapshot_every) - 1, length, int(snapshot_every)))
    if snapshot_at is not None:
        items = (
            list(snapshot_at)
            if isinstance(snapshot_at, list | tuple | np.ndarray | pd.Index)
            else [snapshot_at]
        )
        for item in items:
            positions.add(_position_of(frame, item))
    return sorted(positions)


def _position_of(frame: pd.DataFrame, item: Any) -> int:
    length = len(frame)
    if isinstance(item, int | np.integer) and not isinstance(item, bool):
        position = int(item)
        if position < 0:
            position += length
        if not 0 <= position < length:
            raise ConfigError(f"snapshot bar {item} is outside the frame's 0..{length - 1}")
        return position
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise ConfigError("snapshots by time need a DatetimeIndex; pass bar positions instead")
    try:
        moment = _timestamp(item)
    except (TypeError, ValueError):
        raise ConfigError(f"snapshot time {item!r} is not a date or a bar position") from None
    if index.tz is None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    position = int(index.searchsorted(moment, side="right")) - 1
    if position < 0:
        raise ConfigError(
            f"snapshot time {moment} is before the first bar {index[0]}; pick a later time"
        )
    return position


def _market_state(
    close: FloatArray, volume: FloatArray, timeframe: Any, params: MapParams
) -> tuple[FloatArray, FloatArray] | None:
    """Daily volatility and notional per bar for the snapshots (None if unavailable)."""
    from backtest.liquidation.cascade import market_state

    try:
        seconds = bar_hours(timeframe) * 3600.0
        volatility, notional = market_state(
            close, volume, bar_seconds=seconds, params=params.cascade
        )
    except (ConfigError, DataError, ImportError):
        return None
    return volatility, notional / params.cascade_liquidation_multiplier


def _snapshot(
    kernel: Any,
    times: pd.DatetimeIndex | None,
    position: int,
    close: FloatArray,
    params: MapParams,
    market: tuple[FloatArray, FloatArray] | None = None,
) -> DensitySnapshot | None:
    state = kernel.density()
    if state is None:
        return None
    log_price_min, long_notional, short_notional = state
    time = None
    if times is not None:
        time = times[position]
        if time.tzinfo is None:
            time = time.tz_localize("UTC")
    return DensitySnapshot(
        time=time,
        price=float(close[position]),
        log_price_min=float(log_price_min),
        log_step=params.log_step,
        long_notional=np.asarray(long_notional, dtype=np.float64),
        short_notional=np.asarray(short_notional, dtype=np.float64),
        daily_volatility=math.nan if market is None else float(market[0][position]),
        daily_notional=math.nan if market is None else float(market[1][position]),
    )


__all__ = [
    "LINES",
    "DensitySnapshot",
    "LiquidationMap",
    "MapOutputs",
    "MapParams",
    "MapResult",
    "MapStepper",
    "bar_hours",
]
