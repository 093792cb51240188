"""Pure-Python specification of the liquidation-map kernel (``ext/_heatmap.pyx``).

Same class, arguments and outputs as the compiled module, written for reading: plain loops
over Python floats, in the very order of operations the kernel uses, so both give the same
numbers (tests compare them with ``assert_allclose``).  The model and the reasons behind the
defaults are documented in :mod:`backtest.liquidation.heatmap`; this module is the exact
per-bar algorithm.

State
-----
A log-spaced grid of ``n = 2*half_buckets + 1`` buckets; bucket ``i`` spans
``edges[i] .. edges[i+1]`` with ``edges[i] = exp((k0 + i)*log_step)`` (``k0`` an integer, so
buckets of two maps with the same width line up).  A price's bucket is the ``i`` with
``edges[i] <= price < edges[i+1]`` (-1 below the grid, n at or above its top), and its position
in buckets is ``i + (price/edges[i] - 1)/expm1(log_step)`` (linear in price inside a bucket,
within 1.3e-4 bucket of the log position; off the grid the log position is used).
``long[i]``, ``short[i]`` hold notional divided by one global ``scale`` (lazy decay).
``hi_long`` is an upper bound of the highest non-empty long bucket, ``lo_short`` a lower bound
of the lowest non-empty short bucket.

Per valid bar (finite open/high/low/close/volume, volume > 0, 0 < low <= high, close > 0)
-----------------------------------------------------------------------------------------
0. Grid: on the first valid bar the grid is centred on the close.  When the close's bucket
   leaves the middle half of the grid, the grid is re-centred on it (shifted by whole buckets;
   levels that fall off the far edge, more than ``grid_span/2``-fold away, are dropped).
1. Consume: long buckets from the bucket holding the low upwards (the whole grid when the low
   is below it), short buckets from the bucket holding the high downwards; the mark-price
   low/high replace the traded ones when finite and positive.  Buckets at least
   ``touch_buckets`` beyond the extreme's bucket (long: ``i >= first + touch_buckets``; short:
   ``i <= last - touch_buckets``) are liquidated whole, walking from the far end towards the
   extreme; the ``touch_buckets`` buckets nearest the extreme, which the price only touched,
   lose ``touch_fraction`` of their notional (``take = d*fraction``, ``d = d - take``), walked
   the same way (with ``touch_fraction == 1`` every crossed bucket is liquidated whole).  What
   is taken is liq_long / liq_short.
2. Create: new = participation*volume*typical, or (open-interest mode: this bar's and an
   earlier bar's OI finite and >= 0) max(ΔOI, 0)*typical;
   long side 2*s*new, short side 2*(1-s)*new with the long share
   s = clamp(base + tilt*(funding - neutral), min, max) and funding the last finite rate.
   A fraction ``round_level_weight`` enters at the round levels inside [low, high] (major
   levels count double; the step of the close, floor/ceil of the positive quotients taken by
   truncation), the rest at ``entry_points`` points evenly spaced in position over
   [low, high] with weights 1 + concentration*(1 - |u - u_typical|); a bar spanning w buckets
   gets at most floor(w) + 2 points (no more than needed to be under a bucket apart).  Each
   entry's notional is split over the leverages and placed at bucket
   floor(x_entry + offset[side, leverage]), offset = log(liquidation factor)/log_step.
   Positions outside the grid are dropped.
3. Remove: open-interest mode: scale *= OI/OI_prev when OI fell (all cleared at OI <= 0);
   otherwise scale *= decay_per_bar.  When scale < 1e-30 the arrays are renormalised.
4. Report at the close: in the band of ``band_buckets`` buckets below (longs) / above (shorts)
   the close's bucket: the band notional, and the strongest peak of the triangular-smoothed
   density s(i) = sum_{|j|<=h} (h + 1 - |j|)*density[i + j] (a peak: s(i) > 0 and not below
   either neighbour; ties go to the one nearest the price).  s is summed as a box of boxes
   (h + 1 box sums of h + 1 buckets each, upwards), exactly as the kernel adds, so both pick
   the same peaks; the band sum may be added in another order by the kernel (rounding only).
   The peak's price is its bucket centre exp((k0 + i + 0.5)*log_step), its notional the raw
   notional within +-h buckets, its distance in % of the close.  No peak: price and distance
   NaN, notional 0.
5. cascade_risk: NaN unless a cascade shock is set (then the standard cascade risk over the
   density, with the EWMA daily volatility and traded notional of the bars, the notional
   divided by ``cascade_notional_divisor``).

Invalid bars (anything else) change nothing but the held funding rate; their liq_long and
liq_short are 0 and every other output repeats the previous bar's (NaN before the first valid
bar).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from backtest.liquidation.levels import LOG_HUNDRED, LOG_TEN, MAX_EXPONENT, MIN_EXPONENT

FloatArray = npt.NDArray[np.float64]

#: Output lines, in order.
LINES: tuple[str, ...] = (
    "liq_long",
    "liq_short",
    "long_cluster_price",
    "long_cluster_notional",
    "long_cluster_distance_pct",
    "short_cluster_price",
    "short_cluster_notional",
    "short_cluster_distance_pct",
    "long_band_notional",
    "short_band_notional",
    "cascade_risk",
)
N_LINES = len(LINES)
#: A bar with more round levels than this in its range uses only the major ones (and none if
#: there are still more).
MAX_ROUND_LEVELS = 16
#: The lazy decay scale is folded back into the arrays when it falls below this.
RENORMALISE_BELOW = 1e-30

_NAN = float("nan")
_SQRT_FIVE = math.sqrt(5.0)
_SQRT_FIFTY = math.sqrt(50.0)


def _finite(value: float) -> bool:
    return math.isfinite(value)


def _ceil_positive(value: float) -> int:
    """Round a positive float up, as the kernel does it (truncate, add one if not whole)."""
    whole = int(value)
    return whole + 1 if whole < value else whole


class MapKernel:
    """The liquidation map's state and per-bar update (pure-Python twin of the kernel).

    Parameters
    ----------
    long_offsets, short_offsets : sequence of float
        ``log(liquidation factor) / log_step`` per leverage (buckets, negative for longs).
    leverage_weights : sequence of float
        Share of new notional per leverage (sums to 1).
    powers_of_ten : sequence of float
        ``10.0**e`` for e in MIN_EXPONENT..MAX_EXPONENT (see :mod:`levels`).
    log_step : float
        Bucket width in log price.
    half_buckets : int
        The grid has ``2*half_buckets + 1`` buckets.
    entry_points : int
        Entry points spread over each bar's range (>= 1).
    entry_concentration : float
        Extra weight of entry points near the typical price (>= 0).
    round_level_weight : float
        Fraction of a bar's new notional entering at round levels in its range, in [0, 1).
    long_share_base, funding_tilt, neutral_funding_rate, long_share_min, long_share_max : float
        Long-share model ``clamp(base + tilt*(funding - neutral), min, max)``.
    participation : float
        New notional per traded notional (volume mode).
    decay_per_bar : float
        Survival factor per bar in (0, 1] (volume mode).
    touch_fraction : float
        Share of the notional of a bucket only touched (within ``touch_buckets`` of the bar's
        extreme) that is liquidated per bar, in (0, 1].
    touch_buckets : int
        Depth of the touched zone in buckets (>= 0; 0 liquidates every crossed bucket whole).
    band_buckets : int
        Search band in buckets on each side.
    smoothing_buckets : int
        Half-width h of the triangular smoothing (0 = none).
    cascade_shock : float
        Standard shock of the cascade_risk line as a positive fraction; NaN = off.
    cascade_model : sequence of float
        ``(model, impact_coefficient, depth_ratio, depth_stress, depth_floor, tolerance,
        max_steps)`` as in :mod:`backtest.liquidation.reference.cascade`.
    cascade_alpha : float
        EWMA weight of the newest bar for the cascade's volatility and traded notional.
    bars_per_day : float
        Bars in one day (to turn per-bar EWMAs into daily figures).
    cascade_notional_divisor : float
        The cascade sees the daily traded notional divided by this (> 0): the same as
        multiplying every liquidated notional of the density by it.
    """

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
        cascade_shock: float = _NAN,
        cascade_model: Sequence[float] = (0, 1.0, 1.0, 0.0, 0.1, 1e-6, 50),
        cascade_alpha: float = 0.01,
        bars_per_day: float = 288.0,
        touch_fraction: float = 1.0,
        touch_buckets: int = 0,
        cascade_notional_divisor: float = 1.0,
    ) -> None:
        self.long_offsets = [float(value) for value in long_offsets]
        self.short_offsets = [float(value) for value in short_offsets]
        self.leverage_weights = [float(value) for value in leverage_weights]
        self.powers_of_ten = [float(value) for value in powers_of_ten]
        if not (
            len(self.long_offsets) == len(self.short_offsets) == len(self.leverage_weights) > 0
        ):
            raise ValueError("long_offsets, short_offsets and leverage_weights need one value each")
        if len(self.powers_of_ten) != MAX_EXPONENT - MIN_EXPONENT + 1:
            raise ValueError("powers_of_ten must hold 10**e for every exponent of levels.py")
        self.log_step = float(log_step)
        self.inv_step = 1.0 / self.log_step
        self.inv_relative_step = 1.0 / math.expm1(self.log_step)
        self.half_buckets = int(half_buckets)
        self.n = 2 * self.half_buckets + 1
        self.quarter = self.half_buckets // 2
        self.entry_points = int(entry_points)
        self.entry_concentration = float(entry_concentration)
        self.round_level_weight = float(round_level_weight)
        self.long_share_base = float(long_share_base)
        self.funding_tilt = float(funding_tilt)
        self.neutral_funding_rate = float(neutral_funding_rate)
        self.long_share_min = float(long_share_min)
        self.long_share_max = float(long_share_max)
        self.participation = float(participation)
        self.decay_per_bar = float(decay_per_bar)
        self.touch_fraction = float(touch_fraction)
        self.touch_buckets = int(touch_buckets)
        self.cascade_notional_divisor = float(cascade_notional_divisor)
        if not self.cascade_notional_divisor > 0.0:
            raise ValueError("cascade_notional_divisor must be positive")
        self.band_buckets = int(band_buckets)
        self.smoothing_buckets = int(smoothing_buckets)
        self.cascade_shock = float(cascade_shock)
        self.cascade_model = tuple(float(value) for value in cascade_model)
        self.cascade_alpha = float(cascade_alpha)
        self.bars_per_day = float(bars_per_day)
        if self.entry_points < 1:
            raise ValueError("entry_points must be at least 1")
        if not 0.0 < self.touch_fraction <= 1.0 or self.touch_buckets < 0:
            raise ValueError("touch_fraction must be in (0, 1] and touch_buckets >= 0")
        if self.band_buckets < 1 or self.smoothing_buckets < 0:
            raise ValueError("band_buckets must be >= 1 and smoothing_buckets >= 0")
        if self.quarter <= self.band_buckets + self.smoothing_buckets + 16:
            raise ValueError("half_buckets is too small for the band and the smoothing")
        self.reset()

    # -- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: the next valid bar starts a fresh grid."""
        self.initialized = False
        self.k0 = 0
        self.edges: list[float] = []
        self.centres: list[float] = []
        self.long = [0.0] * self.n
        self.short = [0.0] * self.n
        self.scale = 1.0
        self.hi_long = -1
        self.lo_short = self.n
        self.funding = self.neutral_funding_rate
        self.prev_oi = _NAN
        self.last = [_NAN] * N_LINES
        self.last[0] = 0.0
        self.last[1] = 0.0
        self.cascade_last_close = _NAN
        self.cascade_variance = _NAN
        self.cascade_notional = _NAN
        self.cascade_has_close = False
        self.cascade_has_variance = False

    @property
    def n_buckets(self) -> int:
        """Number of buckets of the grid."""
        return self.n

    def density(self) -> tuple[float, FloatArray, FloatArray] | None:
        """``(log_price_min, long_notional, short_notional)`` now, or None before any bar."""
        if not self.initialized:
            return None
        long_notional = np.array([value * self.scale for value in self.long])
        short_notional = np.array([value * self.scale for value in self.short])
        return self.k0 * self.log_step, long_notional, short_notional

    # -- the bar ----------------------------------------------------------------------------
    def step(
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
    ) -> tuple[float, ...]:
        """Process one bar; return its outputs in :data:`LINES` order."""
        return self._bar(
            float(open),
            float(high),
            float(low),
            float(close),
            float(volume),
            float(funding_rate),
            float(mark_high),
            float(mark_low),
            float(open_interest),
        )

    def process(
        self,
        open: Any,
        high: Any,
        low: Any,
        close: Any,
        volume: Any,
        funding_rate: Any,
        mark_high: Any,
        mark_low: Any,
        open_interest: Any,
        out: Sequence[Any],
        start: int,
        stop: int,
    ) -> None:
        """Process bars ``start..stop-1`` of the arrays, writing row ``i`` of each ``out``.

        Optional inputs (funding_rate, mark_high, mark_low, open_interest) may be None.
        """
        _check_process_arguments(
            (open, high, low, close, volume),
            (funding_rate, mark_high, mark_low, open_interest),
            out,
            start,
            stop,
        )
        for i in range(start, stop):
            values = self._bar(
                float(open[i]),
                float(high[i]),
                float(low[i]),
                float(close[i]),
                float(volume[i]),
                _NAN if funding_rate is None else float(funding_rate[i]),
                _NAN if mark_high is None else float(mark_high[i]),
                _NAN if mark_low is None else float(mark_low[i]),
                _NAN if open_interest is None else float(open_interest[i]),
            )
            for line, value in zip(out, values, strict=True):
                line[i] = value

    def _bar(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        funding_rate: float,
        mark_high: float,
        mark_low: float,
        oi: float,
    ) -> tuple[float, ...]:
        if _finite(funding_rate):
            self.funding = funding_rate
        valid = (
            _finite(o)
            and _finite(h)
            and _finite(lo)
            and _finite(c)
            and _finite(v)
            and v > 0.0
            and lo > 0.0
            and c > 0.0
            and h >= lo
        )
        if not valid:
            result = list(self.last)
            result[0] = 0.0
            result[1] = 0.0
            return tuple(result)

        n = self.n
        # 0. grid
        if not self.initialized:
            self._set_grid(math.floor(math.log(c) * self.inv_step) - self.half_buckets)
            self.initialized = True
        centre = self._bucket(c)
        if centre < self.quarter or centre >= n - self.quarter:
            self._recentre(math.floor(math.log(c) * self.inv_step) - self.half_buckets)
            centre = self._bucket(c)

        # 1. consume
        low_bucket = self._bucket(lo)
        high_bucket = self._bucket(h)
        use_mark_low = _finite(mark_low) and mark_low > 0.0
        use_mark_high = _finite(mark_high) and mark_high > 0.0
        first_long = self._bucket(mark_low) if use_mark_low else low_bucket
        last_short = self._bucket(mark_high) if use_mark_high else high_bucket
        first_long = max(first_long, 0)
        last_short = min(last_short, n - 1)
        partial = self.touch_fraction < 1.0
        whole_long = first_long + self.touch_buckets if partial else first_long
        whole_short = last_short - self.touch_buckets if partial else last_short
        liq_long = 0.0
        while self.hi_long >= whole_long:
            liq_long += self.long[self.hi_long]
            self.long[self.hi_long] = 0.0
            self.hi_long -= 1
        for i in range(self.hi_long, first_long - 1, -1):
            take = self.long[i] * self.touch_fraction
            liq_long += take
            self.long[i] = self.long[i] - take
        liq_short = 0.0
        while self.lo_short <= whole_short:
            liq_short += self.short[self.lo_short]
            self.short[self.lo_short] = 0.0
            self.lo_short += 1
        for i in range(self.lo_short, last_short + 1):
            take = self.short[i] * self.touch_fraction
            liq_short += take
            self.short[i] = self.short[i] - take
        liq_long = liq_long * self.scale
        liq_short = liq_short * self.scale

        # 2. create
        has_oi = _finite(oi) and oi >= 0.0
        oi_mode = has_oi and _finite(self.prev_oi)
        typical = (h + lo + c) / 3.0
        if oi_mode:
            new = (oi - self.prev_oi) * typical if oi > self.prev_oi else 0.0
        else:
            new = self.participation * v * typical
        if new > 0.0:
            x_low = self._position(lo, low_bucket)
            x_high = self._position(h, high_bucket)
            self._create(new, typical, lo, h, c, x_low, x_high, low_bucket)

        # 3. remove
        if oi_mode:
            if oi < self.prev_oi:
                if oi > 0.0:
                    self.scale = self.scale * (oi / self.prev_oi)
                else:
                    self._clear()
        else:
            self.scale = self.scale * self.decay_per_bar
        if self.scale < RENORMALISE_BELOW:
            for i in range(n):
                self.long[i] = self.long[i] * self.scale
                self.short[i] = self.short[i] * self.scale
            self.scale = 1.0
        if has_oi:
            self.prev_oi = oi

        # 4. report
        (
            long_price,
            long_notional,
            long_distance,
            long_band,
        ) = self._report_side(self.long, centre, c, -1)
        (
            short_price,
            short_notional,
            short_distance,
            short_band,
        ) = self._report_side(self.short, centre, c, 1)

        # 5. cascade risk
        risk = self._cascade_risk(c, v)

        result = (
            liq_long,
            liq_short,
            long_price,
            long_notional,
            long_distance,
            short_price,
            short_notional,
            short_distance,
            long_band,
            short_band,
            risk,
        )
        self.last = list(result)
        return result

    # -- pieces -----------------------------------------------------------------------------
    def _set_grid(self, k0: int) -> None:
        """Origin k0 and the tables of bucket edges and centres."""
        self.k0 = k0
        self.edges = [math.exp((k0 + i) * self.log_step) for i in range(self.n + 1)]
        self.centres = [math.exp((k0 + i + 0.5) * self.log_step) for i in range(self.n)]

    def _bucket(self, price: float) -> int:
        """Bucket holding price: edges[i] <= price < edges[i+1]; -1 below the grid, n above."""
        return bisect.bisect_right(self.edges, price) - 1

    def _position(self, price: float, bucket: int) -> float:
        """Position in buckets: the bucket index plus a fraction linear in price inside it.

        Outside the grid the log position (possibly negative or beyond n) is used.
        """
        if 0 <= bucket < self.n:
            return bucket + (price / self.edges[bucket] - 1.0) * self.inv_relative_step
        return math.log(price) * self.inv_step - self.k0

    def _recentre(self, new_k0: int) -> None:
        delta = new_k0 - self.k0
        n = self.n
        for density in (self.long, self.short):
            moved = [0.0] * n
            for i in range(n):
                source = i + delta
                if 0 <= source < n:
                    moved[i] = density[source]
            density[:] = moved
        self._set_grid(new_k0)
        self.hi_long = min(self.hi_long - delta, n - 1)
        self.hi_long = max(self.hi_long, -1)
        self.lo_short = max(self.lo_short - delta, 0)
        self.lo_short = min(self.lo_short, n)

    def _clear(self) -> None:
        for i in range(self.n):
            self.long[i] = 0.0
            self.short[i] = 0.0
        self.scale = 1.0
        self.hi_long = -1
        self.lo_short = self.n

    def _round_levels(self, lo: float, h: float, c: float) -> list[float]:
        """Round levels in [lo, h] as alternating (price, weight) pairs, flattened.

        ``floor``/``ceil`` of the (positive) quotients are taken by truncation, as the kernel.
        """
        exponent = math.floor((math.log(c) - LOG_HUNDRED) / LOG_TEN)
        exponent = min(max(exponent, MIN_EXPONENT + 1), MAX_EXPONENT - 1)
        base = self.powers_of_ten[exponent - MIN_EXPONENT]
        mantissa = c / 100.0 / base
        if mantissa >= 10.0:
            exponent += 1
            base = self.powers_of_ten[exponent - MIN_EXPONENT]
            mantissa = mantissa / 10.0
        elif mantissa < 1.0:
            exponent -= 1
            base = self.powers_of_ten[exponent - MIN_EXPONENT]
            mantissa = mantissa * 10.0
        if mantissa < _SQRT_FIVE:
            step, major_every = base, 5
        elif mantissa < _SQRT_FIFTY:
            step, major_every = 5.0 * base, 10
        else:
            step, major_every = 10.0 * base, 5
        first = _ceil_positive(lo / step)
        last = int(h / step)
        if last < first:
            return []
        all_major = False
        if last - first + 1 > MAX_ROUND_LEVELS:
            step = step * major_every
            first = _ceil_positive(lo / step)
            last = int(h / step)
            all_major = True
            if last - first + 1 > MAX_ROUND_LEVELS:
                return []
        levels: list[float] = []
        for j in range(first, last + 1):
            weight = 2.0 if (all_major or j % major_every == 0) else 1.0
            levels.append(j * step)
            levels.append(weight)
        return levels

    def _place(self, x: float, long_amount: float, short_amount: float) -> None:
        n = self.n
        for m in range(len(self.leverage_weights)):
            weight = self.leverage_weights[m]
            position = x + self.long_offsets[m]
            if position >= 0.0 and position < n:
                i = int(position)
                self.long[i] += long_amount * weight
                if i > self.hi_long:
                    self.hi_long = i
            position = x + self.short_offsets[m]
            if position >= 0.0 and position < n:
                i = int(position)
                self.short[i] += short_amount * weight
                if i < self.lo_short:
                    self.lo_short = i

    def _create(
        self,
        new: float,
        typical: float,
        lo: float,
        h: float,
        c: float,
        x_low: float,
        x_high: float,
        low_bucket: int,
    ) -> None:
        share = self.long_share_base + self.funding_tilt * (
            self.funding - self.neutral_funding_rate
        )
        if share < self.long_share_min:
            share = self.long_share_min
        if share > self.long_share_max:
            share = self.long_share_max
        long_total = 2.0 * share * new / self.scale
        short_total = 2.0 * (1.0 - share) * new / self.scale

        round_share = 0.0
        if self.round_level_weight > 0.0:
            levels = self._round_levels(lo, h, c)
            if levels:
                round_share = self.round_level_weight
                total_weight = 0.0
                for j in range(1, len(levels), 2):
                    total_weight += levels[j]
                for j in range(0, len(levels), 2):
                    fraction = levels[j + 1] / total_weight
                    x = self._position(levels[j], self._bucket(levels[j]))
                    self._place(
                        x,
                        long_total * round_share * fraction,
                        short_total * round_share * fraction,
                    )
        spread_share = 1.0 - round_share

        width = x_high - x_low
        u_typical = (typical - lo) / (h - lo) if h > lo else 0.5
        points = self.entry_points
        if points > 1:
            # never more points than needed to space them at most one bucket apart
            points = min(points, int(width) + 2) if h > lo else 1
        if points == 1:
            self._place(
                x_low + u_typical * width, long_total * spread_share, short_total * spread_share
            )
            return
        total_weight = 0.0
        for k in range(points):
            u = k / (points - 1)
            total_weight += 1.0 + self.entry_concentration * (1.0 - abs(u - u_typical))
        for k in range(points):
            u = k / (points - 1)
            fraction = (1.0 + self.entry_concentration * (1.0 - abs(u - u_typical))) / total_weight
            self._place(
                x_low + u * width,
                long_total * spread_share * fraction,
                short_total * spread_share * fraction,
            )

    def _box(self, density: list[float], k: int) -> float:
        """Box sum of h + 1 buckets starting at k - h//2 (summed upwards)."""
        h = self.smoothing_buckets
        first = k - h // 2
        total = density[first]
        for j in range(1, h + 1):
            total += density[first + j]
        return total

    def _smoothed(self, density: list[float], i: int) -> float:
        """Triangular smoothing (weights h+1-|j|) as a box of boxes, summed upwards."""
        h = self.smoothing_buckets
        first = i - (h - h // 2)
        total = self._box(density, first)
        for j in range(1, h + 1):
            total += self._box(density, first + j)
        return total

    def _report_side(
        self, density: list[float], centre: int, close: float, direction: int
    ) -> tuple[float, float, float, float]:
        """Band notional and strongest peak on one side; direction -1 longs, +1 shorts."""
        best = 0.0
        best_index = -1
        previous = self._smoothed(density, centre)
        current = self._smoothed(density, centre + direction)
        for step in range(1, self.band_buckets + 1):
            i = centre + direction * step
            following = self._smoothed(density, i + direction)
            if current > 0.0 and current >= previous and current >= following and current > best:
                best = current
                best_index = i
            previous = current
            current = following
        # band notional: upwards from the lowest band bucket, alternating two partial sums
        first = centre - self.band_buckets if direction < 0 else centre + 1
        even = 0.0
        odd = 0.0
        for j in range(self.band_buckets):
            if j % 2 == 0:
                even += density[first + j]
            else:
                odd += density[first + j]
        band = even + odd
        band = band * self.scale
        if best_index < 0:
            return _NAN, 0.0, _NAN, band
        h = self.smoothing_buckets
        notional = 0.0
        for j in range(-h, h + 1):
            notional += density[best_index + j]
        notional = notional * self.scale
        price = self.centres[best_index]
        if direction < 0:
            distance = (close - price) / close * 100.0
        else:
            distance = (price - close) / close * 100.0
        return price, notional, distance, band

    def _cascade_risk(self, close: float, volume: float) -> float:
        if not _finite(self.cascade_shock):
            return _NAN
        from backtest.liquidation.reference import cascade as reference_cascade

        alpha = self.cascade_alpha
        notional = close * volume
        if self.cascade_has_close:
            log_return = math.log(close / self.cascade_last_close)
            if self.cascade_has_variance:
                self.cascade_variance = self.cascade_variance + alpha * (
                    log_return * log_return - self.cascade_variance
                )
            else:
                self.cascade_variance = log_return * log_return
                self.cascade_has_variance = True
            self.cascade_notional = self.cascade_notional + alpha * (
                notional - self.cascade_notional
            )
        else:
            self.cascade_notional = notional
            self.cascade_has_close = True
        self.cascade_last_close = close
        if not self.cascade_has_variance:
            return _NAN
        sigma = math.sqrt(self.cascade_variance * self.bars_per_day)
        daily_notional = (
            self.cascade_notional * self.bars_per_day / self.scale / self.cascade_notional_divisor
        )
        arguments = (
            self.long,
            self.short,
            self.k0 * self.log_step,
            self.log_step,
            close,
        )
        down = reference_cascade.simulate(
            *arguments, -self.cascade_shock, sigma, daily_notional, self.cascade_model
        )
        if down[4] == reference_cascade.INVALID:
            return _NAN
        up = reference_cascade.simulate(
            *arguments, self.cascade_shock, sigma, daily_notional, self.cascade_model
        )
        if up[4] == reference_cascade.INVALID:
            return _NAN
        return up[2] if up[2] > down[2] else down[2]


def _check_process_arguments(
    required: Sequence[Any],
    optional: Sequence[Any],
    out: Sequence[Any],
    start: int,
    stop: int,
) -> None:
    length = len(required[0])
    for values in required:
        if values is None or len(values) != length:
            raise ValueError("open, high, low, close and volume must have the same length")
    for values in optional:
        if values is not None and len(values) != length:
            raise ValueError("optional inputs must have the same length as the candles")
    if len(out) != N_LINES:
        raise ValueError(f"out must hold {N_LINES} arrays, one per line")
    for line in out:
        if len(line) != length:
            raise ValueError("every out array must have the length of the inputs")
    if not (0 <= start <= stop <= length):
        raise ValueError(f"need 0 <= start <= stop <= {length}, got start={start}, stop={stop}")
