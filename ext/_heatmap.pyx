"""Compiled liquidation-map kernel: the per-bar consume / create / remove / report loop.

The specification is the pure-Python twin :mod:`backtest.liquidation.reference.heatmap` (same
class, arguments and outputs, same order of floating-point operations); read it first.  The
public API with validation, defaults and their reasons is :mod:`backtest.liquidation.heatmap`.

Layout: the state lives in a C struct (``MapState``) whose arrays are owned by NumPy arrays
kept on the Python object; :func:`map_bar` updates it for one bar without the GIL and without
Python objects.  ``MapKernel.process`` runs it over whole arrays (read-only inputs accepted,
outputs written in place), ``MapKernel.step`` over one bar (the stepper), so both paths
execute the very same C function.
"""

from libc.math cimport NAN, exp, expm1, fabs, floor, isfinite, log
from libc.string cimport memmove, memset

import numpy as np

# The cascade core (ext/_cascade_core.pxi) defines cascade_standard_risk and the EWMA market state used by
# the optional cascade_risk line, and cimports log, exp, floor, ceil, fabs, isfinite, sqrt, NAN.
include "_cascade_core.pxi"

cdef enum:
    N_LINES = 11
    MAX_ROUND_LEVELS = 16
    MAX_ENTRY_POINTS = 64
    MIN_EXPONENT = -12
    MAX_EXPONENT = 12
    N_POWERS = 25

cdef double RENORMALISE_BELOW = 1e-30

def set_simd(level=2):
    """Choose the report's instruction set: 2 AVX2, 1 SSE2, 0 plain C; returns the level used.

    The fastest the CPU supports is chosen at import; every level gives the same numbers (tests
    run each against the reference).
    """
    return hm_set_simd(level)


LINES = (
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


ctypedef struct MapState:
    # configuration
    Py_ssize_t n
    Py_ssize_t half
    Py_ssize_t quarter
    Py_ssize_t n_leverages
    Py_ssize_t points
    Py_ssize_t band
    Py_ssize_t smooth
    double log_step
    double inv_step
    double concentration
    double round_weight
    double share_base
    double funding_tilt
    double neutral_funding
    double share_min
    double share_max
    double participation
    double decay
    double touch_fraction
    Py_ssize_t touch_buckets
    double cascade_divisor
    double log_hundred
    double log_ten
    double sqrt_five
    double sqrt_fifty
    double* long_offsets
    double* short_offsets
    double min_long_offset
    double max_long_offset
    double min_short_offset
    double max_short_offset
    double* leverage_weights
    double* powers
    # cascade_risk line
    bint cascade_on
    double cascade_shock
    double cascade_alpha
    double bars_per_day
    CascadeModel cascade_model
    CascadeMarketState market
    # state
    bint initialized
    double k0
    double* dl
    double* ds
    double* box_buffer
    double* centres
    double* edges
    double inv_relative_step
    Py_ssize_t hint
    double* smooth_buffer
    double step_low
    double step_high
    double cached_step
    long long cached_major_every
    double scale
    Py_ssize_t hi_long
    Py_ssize_t lo_short
    double funding
    double prev_oi
    double last[N_LINES]


cdef inline void state_clear(MapState* st) noexcept nogil:
    memset(st.dl, 0, st.n * sizeof(double))
    memset(st.ds, 0, st.n * sizeof(double))
    st.scale = 1.0
    st.hi_long = -1
    st.lo_short = st.n


cdef inline void state_reset(MapState* st) noexcept nogil:
    cdef Py_ssize_t j
    state_clear(st)
    st.initialized = False
    st.k0 = 0.0
    st.funding = st.neutral_funding
    st.prev_oi = NAN
    for j in range(N_LINES):
        st.last[j] = NAN
    st.last[0] = 0.0
    st.last[1] = 0.0
    cascade_state_reset(&st.market)


cdef inline void shift_density(double* d, Py_ssize_t n, Py_ssize_t delta) noexcept nogil:
    """new[i] = old[i + delta] (zero where the source is outside the grid)."""
    if delta >= n or delta <= -n:
        memset(d, 0, n * sizeof(double))
    elif delta > 0:
        memmove(d, d + delta, (n - delta) * sizeof(double))
        memset(d + n - delta, 0, delta * sizeof(double))
    elif delta < 0:
        memmove(d - delta, d, (n + delta) * sizeof(double))
        memset(d, 0, -delta * sizeof(double))


cdef inline void set_grid(MapState* st, double k0) noexcept nogil:
    """Origin k0 and the tables of bucket edges and centres (as the reference computes them)."""
    cdef Py_ssize_t i
    st.k0 = k0
    for i in range(st.n + 1):
        st.edges[i] = exp((k0 + i) * st.log_step)
    for i in range(st.n):
        st.centres[i] = exp((k0 + i + 0.5) * st.log_step)
    st.hint = st.half


cdef inline Py_ssize_t bucket_of(MapState* st, double price) noexcept nogil:
    """i with edges[i] <= price < edges[i+1]; -1 below the grid, n at or above its top.

    Walks from the previous answer (st.hint), so it costs O(1) for prices near the last one.
    """
    cdef const double* edges = st.edges
    cdef Py_ssize_t i = st.hint
    if not (price >= edges[0]):
        return -1
    if price >= edges[st.n]:
        return st.n
    while price >= edges[i + 1]:
        i += 1
    while price < edges[i]:
        i -= 1
    st.hint = i
    return i


cdef inline double position_of(MapState* st, double price, Py_ssize_t bucket) noexcept nogil:
    """Bucket index plus a fraction linear in price inside it; the log position off the grid."""
    if bucket >= 0 and bucket < st.n:
        return bucket + (price / st.edges[bucket] - 1.0) * st.inv_relative_step
    return log(price) * st.inv_step - st.k0


cdef inline void recentre(MapState* st, double new_k0) noexcept nogil:
    cdef Py_ssize_t delta = <Py_ssize_t> (new_k0 - st.k0)
    shift_density(st.dl, st.n, delta)
    shift_density(st.ds, st.n, delta)
    set_grid(st, new_k0)
    st.hi_long = st.hi_long - delta
    if st.hi_long > st.n - 1:
        st.hi_long = st.n - 1
    if st.hi_long < -1:
        st.hi_long = -1
    st.lo_short = st.lo_short - delta
    if st.lo_short < 0:
        st.lo_short = 0
    if st.lo_short > st.n:
        st.lo_short = st.n


cdef inline void round_step(MapState* st, double c) noexcept nogil:
    """Set st.cached_step / cached_major_every for price c (levels.py's step_for).

    The result is kept for closes inside the region where it cannot change (shrunk by a
    relative 1e-9, far above rounding), so caching never alters it.
    """
    cdef long long exponent = <long long> floor((log(c) - st.log_hundred) / st.log_ten)
    cdef double base, mantissa, low, high
    cdef bint clamped = False
    if exponent < MIN_EXPONENT + 1:
        exponent = MIN_EXPONENT + 1
        clamped = True
    if exponent > MAX_EXPONENT - 1:
        exponent = MAX_EXPONENT - 1
        clamped = True
    base = st.powers[exponent - MIN_EXPONENT]
    mantissa = c / 100.0 / base
    if mantissa >= 10.0:
        exponent += 1
        base = st.powers[exponent - MIN_EXPONENT]
        mantissa = mantissa / 10.0
    elif mantissa < 1.0:
        exponent -= 1
        base = st.powers[exponent - MIN_EXPONENT]
        mantissa = mantissa * 10.0
    if mantissa < st.sqrt_five:
        st.cached_step = base
        st.cached_major_every = 5
        low = 1.0
        high = st.sqrt_five
    elif mantissa < st.sqrt_fifty:
        st.cached_step = 5.0 * base
        st.cached_major_every = 10
        low = st.sqrt_five
        high = st.sqrt_fifty
    else:
        st.cached_step = 10.0 * base
        st.cached_major_every = 5
        low = st.sqrt_fifty
        high = 10.0
    if clamped:
        st.step_low = 1.0
        st.step_high = 0.0
    else:
        st.step_low = 100.0 * base * low * (1.0 + 1e-9)
        st.step_high = 100.0 * base * high * (1.0 - 1e-9)


cdef inline long long ceil_positive(double value) noexcept nogil:
    """ceil of a positive float by truncation (the reference does the same)."""
    cdef long long whole = <long long> value
    if whole < value:
        return whole + 1
    return whole


cdef inline Py_ssize_t round_levels(MapState* st, double lo, double h, double c,
                                    double* prices, double* weights) noexcept nogil:
    """Round levels in [lo, h] (see levels.py); returns their count."""
    cdef double step
    cdef long long major_every, j, count, first, last
    cdef bint all_major = False
    if not (c >= st.step_low and c < st.step_high):
        round_step(st, c)
    step = st.cached_step
    major_every = st.cached_major_every
    first = ceil_positive(lo / step)
    last = <long long> (h / step)
    if last < first:
        return 0
    if last - first + 1 > MAX_ROUND_LEVELS:
        step = step * major_every
        first = ceil_positive(lo / step)
        last = <long long> (h / step)
        all_major = True
        if last - first + 1 > MAX_ROUND_LEVELS:
            return 0
    count = 0
    j = first
    while j <= last:
        prices[count] = j * step
        if all_major or j % major_every == 0:
            weights[count] = 2.0
        else:
            weights[count] = 1.0
        count += 1
        j += 1
    return <Py_ssize_t> count


cdef inline void place_all(MapState* st, Py_ssize_t count, const double* xs,
                           const double* long_amounts, const double* short_amounts) noexcept nogil:
    """Add every entry's notional at every leverage's liquidation bucket.

    Per bucket the additions come in the reference's order (entries, then leverages).  The
    grid check is made once for the whole bar when all positions are inside (the usual case),
    and hi_long / lo_short are moved once, to bounds of what was placed: the consumption loop
    only needs bounds (summing empty buckets changes nothing).
    """
    cdef Py_ssize_t e, m, i
    cdef Py_ssize_t leverages = st.n_leverages
    cdef const double* weights = st.leverage_weights
    cdef const double* long_offsets = st.long_offsets
    cdef const double* short_offsets = st.short_offsets
    cdef double* dl = st.dl
    cdef double* ds = st.ds
    cdef double nf = <double> st.n
    cdef double x_min = xs[0]
    cdef double x_max = xs[0]
    cdef double position, amount
    for e in range(1, count):
        if xs[e] < x_min:
            x_min = xs[e]
        if xs[e] > x_max:
            x_max = xs[e]
    # longs
    if x_min + st.min_long_offset >= 0.0 and x_max + st.max_long_offset < nf:
        for e in range(count):
            amount = long_amounts[e]
            for m in range(leverages):
                dl[<Py_ssize_t> (xs[e] + long_offsets[m])] += amount * weights[m]
    else:
        for e in range(count):
            amount = long_amounts[e]
            for m in range(leverages):
                position = xs[e] + long_offsets[m]
                if position >= 0.0 and position < nf:
                    dl[<Py_ssize_t> position] += amount * weights[m]
    position = x_max + st.max_long_offset
    if position >= 0.0:
        i = st.n - 1 if position >= nf else <Py_ssize_t> position
        if i > st.hi_long:
            st.hi_long = i
    # shorts
    if x_min + st.min_short_offset >= 0.0 and x_max + st.max_short_offset < nf:
        for e in range(count):
            amount = short_amounts[e]
            for m in range(leverages):
                ds[<Py_ssize_t> (xs[e] + short_offsets[m])] += amount * weights[m]
    else:
        for e in range(count):
            amount = short_amounts[e]
            for m in range(leverages):
                position = xs[e] + short_offsets[m]
                if position >= 0.0 and position < nf:
                    ds[<Py_ssize_t> position] += amount * weights[m]
    position = x_min + st.min_short_offset
    if position < nf:
        i = 0 if position < 0.0 else <Py_ssize_t> position
        if i < st.lo_short:
            st.lo_short = i


cdef inline void create(MapState* st, double new, double typical, double lo, double h,
                        double c, double x_low, double x_high,
                        Py_ssize_t low_bucket) noexcept nogil:
    cdef double share, long_total, short_total, round_share, spread_share, total_weight
    cdef double fraction, width, u, u_typical
    cdef double prices[MAX_ROUND_LEVELS]
    cdef double weights[MAX_ROUND_LEVELS]
    cdef double xs[MAX_ROUND_LEVELS + MAX_ENTRY_POINTS]
    cdef double long_amounts[MAX_ROUND_LEVELS + MAX_ENTRY_POINTS]
    cdef double short_amounts[MAX_ROUND_LEVELS + MAX_ENTRY_POINTS]
    cdef Py_ssize_t count, j, k, points, entries = 0
    share = st.share_base + st.funding_tilt * (st.funding - st.neutral_funding)
    if share < st.share_min:
        share = st.share_min
    if share > st.share_max:
        share = st.share_max
    long_total = 2.0 * share * new / st.scale
    short_total = 2.0 * (1.0 - share) * new / st.scale

    round_share = 0.0
    if st.round_weight > 0.0:
        count = round_levels(st, lo, h, c, prices, weights)
        if count > 0:
            round_share = st.round_weight
            total_weight = 0.0
            for j in range(count):
                total_weight += weights[j]
            for j in range(count):
                fraction = weights[j] / total_weight
                if low_bucket >= 0 and low_bucket < st.n:
                    st.hint = low_bucket
                xs[entries] = position_of(st, prices[j], bucket_of(st, prices[j]))
                long_amounts[entries] = long_total * round_share * fraction
                short_amounts[entries] = short_total * round_share * fraction
                entries += 1
    spread_share = 1.0 - round_share

    width = x_high - x_low
    if h > lo:
        u_typical = (typical - lo) / (h - lo)
    else:
        u_typical = 0.5
    points = st.points
    if points > 1:
        # never more points than needed to space them at most one bucket apart
        if h > lo:
            if points > <Py_ssize_t> width + 2:
                points = <Py_ssize_t> width + 2
        else:
            points = 1
    if points == 1:
        xs[entries] = x_low + u_typical * width
        long_amounts[entries] = long_total * spread_share
        short_amounts[entries] = short_total * spread_share
        entries += 1
    else:
        total_weight = 0.0
        for k in range(points):
            u = <double> k / <double> (points - 1)
            total_weight += 1.0 + st.concentration * (1.0 - fabs(u - u_typical))
        for k in range(points):
            u = <double> k / <double> (points - 1)
            fraction = (1.0 + st.concentration * (1.0 - fabs(u - u_typical))) / total_weight
            xs[entries] = x_low + u * width
            long_amounts[entries] = long_total * spread_share * fraction
            short_amounts[entries] = short_total * spread_share * fraction
            entries += 1
    place_all(st, entries, xs, long_amounts, short_amounts)


cdef extern from *:
    """
    /* One side of the report for the default smoothing half-width h = 2 (see the reference):
     *   B_q = (d[q-1] + d[q]) + d[q+1],   T_i = (B_{i-1} + B_i) + B_{i+1}
     * For the band buckets lo .. lo+count-1: peaks[j] = T_{lo+j} when it is a peak (T > 0 and
     * not below either neighbour) else 0; *band = their raw notional.  Returns the largest
     * peak value (0 when there is none).  Reads d[lo-4 .. lo+count+5].
     * The SSE2 path computes two buckets per instruction with exactly the same additions per
     * bucket as the plain loop (and max is exact), so both give the reference's numbers. */
    #include <stddef.h>
    #if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define HM_HAVE_SSE2 1
    #else
    #define HM_HAVE_SSE2 0
    #endif

    static double hm_scan_h2_plain(const double* d, Py_ssize_t lo, Py_ssize_t count,
                                   double* peaks, double* band) {
        double b_m1, b_0, b_p1, b_p2, t_l, t_c, t_r, value, best = 0.0, total = 0.0;
        Py_ssize_t j, i;
        b_m1 = (d[lo - 3] + d[lo - 2]) + d[lo - 1];
        b_0 = (d[lo - 2] + d[lo - 1]) + d[lo];
        b_p1 = (d[lo - 1] + d[lo]) + d[lo + 1];
        t_l = (b_m1 + b_0) + b_p1;               /* T at lo-1 */
        b_p2 = (d[lo] + d[lo + 1]) + d[lo + 2];
        t_c = (b_0 + b_p1) + b_p2;               /* T at lo */
        b_m1 = b_p1;
        b_0 = b_p2;
        for (j = 0; j < count; j++) {
            i = lo + j;
            b_p1 = (d[i + 1] + d[i + 2]) + d[i + 3];   /* B at i+2 */
            t_r = (b_m1 + b_0) + b_p1;           /* T at i+1 */
            value = (t_c > 0.0 && t_c >= t_l && t_c >= t_r) ? t_c : 0.0;
            peaks[j] = value;
            if (value > best) best = value;
            total += d[i];
            t_l = t_c;
            t_c = t_r;
            b_m1 = b_0;
            b_0 = b_p1;
        }
        *band = total;
        return best;
    }

    static double hm_scan_h2(const double* d, Py_ssize_t lo, Py_ssize_t count,
                             double* peaks, double* band) {
    #if HM_HAVE_SSE2
        __m128d b_prev, b_next, t_prev, t_cur, t_next, left, right, mask, peak;
        __m128d best = _mm_setzero_pd(), zero = _mm_setzero_pd();
        __m128d sum_a = _mm_setzero_pd(), sum_b = _mm_setzero_pd();
        __m128d tail = _mm_castsi128_pd(_mm_set_epi32(0, 0, -1, -1));
        double lanes[2];
        Py_ssize_t j, i;
        #define HM_D(m) _mm_loadu_pd(d + (m))
        #define HM_B(q) _mm_add_pd(_mm_add_pd(HM_D((q) - 1), HM_D(q)), HM_D((q) + 1))
        #define HM_T(bm, bp) _mm_add_pd(_mm_add_pd((bm), _mm_shuffle_pd((bm), (bp), 1)), (bp))
        b_prev = HM_B(lo - 3);
        b_next = HM_B(lo - 1);
        t_prev = HM_T(b_prev, b_next);           /* T at lo-2, lo-1 */
        b_prev = b_next;
        b_next = HM_B(lo + 1);
        t_cur = HM_T(b_prev, b_next);            /* T at lo, lo+1 */
        for (j = 0; j < count; j += 2) {
            i = lo + j;
            b_prev = b_next;
            b_next = HM_B(i + 3);
            t_next = HM_T(b_prev, b_next);       /* T at i+2, i+3 */
            left = _mm_shuffle_pd(t_prev, t_cur, 1);
            right = _mm_shuffle_pd(t_cur, t_next, 1);
            mask = _mm_and_pd(_mm_and_pd(_mm_cmpgt_pd(t_cur, zero), _mm_cmpge_pd(t_cur, left)),
                              _mm_cmpge_pd(t_cur, right));
            if (j + 1 < count) {
                peak = _mm_and_pd(mask, t_cur);
                _mm_storeu_pd(peaks + j, peak);
                if (j & 2) sum_b = _mm_add_pd(sum_b, HM_D(i));
                else sum_a = _mm_add_pd(sum_a, HM_D(i));
            } else {
                peak = _mm_and_pd(_mm_and_pd(mask, tail), t_cur);
                _mm_store_sd(peaks + j, peak);
                sum_a = _mm_add_pd(sum_a, _mm_and_pd(HM_D(i), tail));
            }
            best = _mm_max_pd(best, peak);
            t_prev = t_cur;
            t_cur = t_next;
        }
        #undef HM_D
        #undef HM_B
        #undef HM_T
        sum_a = _mm_add_pd(sum_a, sum_b);
        _mm_storeu_pd(lanes, sum_a);
        *band = lanes[0] + lanes[1];
        _mm_storeu_pd(lanes, best);
        return lanes[0] > lanes[1] ? lanes[0] : lanes[1];
    #else
        return hm_scan_h2_plain(d, lo, count, peaks, band);
    #endif
    }
    /* AVX2 variant (x86 with GCC/Clang; chosen at import when the CPU has AVX2): four buckets
     * per instruction, each smoothed value computed directly from unaligned loads with the
     * same additions as above, so the numbers are identical. */
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    #include <immintrin.h>
    #define HM_HAVE_AVX2 1
    __attribute__((target("avx2")))
    static double hm_scan_h2_avx2(const double* d, Py_ssize_t lo, Py_ssize_t count,
                                  double* peaks, double* band) {
        /* Box vectors at aligned offsets roll from one block of four to the next; shifted
         * ones come from lane shuffles, so a block costs 9 additions instead of 17. */
        __m256d b_prev, b_cur, b_next, b_m2, b_m1, b_p1, b_p2, t_m1, t_0, t_p1, mask, peak, x;
        __m256d best = _mm256_setzero_pd(), zero = _mm256_setzero_pd();
        __m256d sum_a = _mm256_setzero_pd(), sum_b = _mm256_setzero_pd();
        __m128d low, high;
        double lanes[2];
        Py_ssize_t j, i, left;
        static const long long tails[4][4] = {
            {0, 0, 0, 0}, {-1, 0, 0, 0}, {-1, -1, 0, 0}, {-1, -1, -1, 0}};
        #define HM_B4(q) _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(d + (q) - 1), \
                                                     _mm256_loadu_pd(d + (q))), \
                                       _mm256_loadu_pd(d + (q) + 1))
        b_prev = HM_B4(lo - 4);                  /* B at lo-4 .. lo-1 */
        b_cur = HM_B4(lo);                       /* B at lo .. lo+3 */
        for (j = 0; j < count; j += 4) {
            i = lo + j;
            b_next = HM_B4(i + 4);                                       /* B at i+4 .. i+7 */
            b_m2 = _mm256_permute2f128_pd(b_prev, b_cur, 0x21);          /* B at i-2 .. i+1 */
            b_m1 = _mm256_shuffle_pd(b_m2, b_cur, 0x5);                  /* B at i-1 .. i+2 */
            b_p2 = _mm256_permute2f128_pd(b_cur, b_next, 0x21);          /* B at i+2 .. i+5 */
            b_p1 = _mm256_shuffle_pd(b_cur, b_p2, 0x5);                  /* B at i+1 .. i+4 */
            t_m1 = _mm256_add_pd(_mm256_add_pd(b_m2, b_m1), b_cur);      /* T at i-1 .. i+2 */
            t_0 = _mm256_add_pd(_mm256_add_pd(b_m1, b_cur), b_p1);       /* T at i .. i+3 */
            t_p1 = _mm256_add_pd(_mm256_add_pd(b_cur, b_p1), b_p2);      /* T at i+1 .. i+4 */
            mask = _mm256_and_pd(
                _mm256_and_pd(_mm256_cmp_pd(t_0, zero, _CMP_GT_OQ),
                              _mm256_cmp_pd(t_0, t_m1, _CMP_GE_OQ)),
                _mm256_cmp_pd(t_0, t_p1, _CMP_GE_OQ));
            x = _mm256_loadu_pd(d + i);
            left = count - j;
            if (left < 4) {
                __m256d tail = _mm256_castsi256_pd(
                    _mm256_loadu_si256((const __m256i*) tails[left]));
                mask = _mm256_and_pd(mask, tail);
                x = _mm256_and_pd(x, tail);
            }
            peak = _mm256_and_pd(mask, t_0);
            _mm256_storeu_pd(peaks + j, peak);
            best = _mm256_max_pd(best, peak);
            if (j & 4) sum_b = _mm256_add_pd(sum_b, x);
            else sum_a = _mm256_add_pd(sum_a, x);
            b_prev = b_cur;
            b_cur = b_next;
        }
        #undef HM_B4
        sum_a = _mm256_add_pd(sum_a, sum_b);
        low = _mm256_castpd256_pd128(sum_a);
        high = _mm256_extractf128_pd(sum_a, 1);
        _mm_storeu_pd(lanes, _mm_add_pd(low, high));
        *band = lanes[0] + lanes[1];
        low = _mm_max_pd(_mm256_castpd256_pd128(best), _mm256_extractf128_pd(best, 1));
        _mm_storeu_pd(lanes, low);
        return lanes[0] > lanes[1] ? lanes[0] : lanes[1];
    }

    /* Index of the first (from_end = 0) or last (from_end = 1) of peaks[0..count) equal to
     * value, which must occur. */
    __attribute__((target("avx2")))
    static Py_ssize_t hm_find_avx2(const double* peaks, Py_ssize_t count, double value,
                                   int from_end) {
        __m256d target = _mm256_set1_pd(value);
        Py_ssize_t j, last = -1;
        int bits;
        if (!from_end) {
            for (j = 0; j + 4 <= count; j += 4) {
                bits = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(peaks + j), target,
                                                        _CMP_EQ_OQ));
                if (bits) return j + __builtin_ctz(bits);
            }
            for (; j < count; j++) if (peaks[j] == value) return j;
            return -1;
        }
        j = count;
        while (j % 4) {
            j--;
            if (peaks[j] == value) return j;
        }
        while (j > 0) {
            j -= 4;
            bits = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(peaks + j), target,
                                                    _CMP_EQ_OQ));
            if (bits) return j + 31 - __builtin_clz(bits);
        }
        return last;
    }
    /* Smoothed values T over buckets lo-1 .. lo+count (count + 2 of them) into t[0..count+1];
     * returns the largest T over the band (t[1..count]) and the band's raw sum.  Same additions
     * per bucket as hm_scan_h2; reads d[lo-6 .. lo+count+9]. */
    __attribute__((target("avx2")))
    static double hm_smooth_avx2(const double* d, Py_ssize_t lo, Py_ssize_t count, double* t,
                                 double* band) {
        __m256d b_prev, b_cur, b_next, b_m1, b_p1, t_0, x, mask;
        __m256d best = _mm256_setzero_pd(), sum = _mm256_setzero_pd();
        __m128d low, high;
        double lanes[2];
        Py_ssize_t j, p, left, total = count + 2;
        static const long long keep[5][4] = {
            {0, 0, 0, 0}, {-1, 0, 0, 0}, {-1, -1, 0, 0}, {-1, -1, -1, 0}, {-1, -1, -1, -1}};
        static const long long not_first[4] = {0, -1, -1, -1};
        #define HM_B4(q) _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(d + (q) - 1), \
                                                     _mm256_loadu_pd(d + (q))), \
                                       _mm256_loadu_pd(d + (q) + 1))
        p = lo - 1;
        b_prev = HM_B4(p - 4);
        b_cur = HM_B4(p);
        for (j = 0; j < total; j += 4, p += 4) {
            b_next = HM_B4(p + 4);
            b_m1 = _mm256_shuffle_pd(_mm256_permute2f128_pd(b_prev, b_cur, 0x21), b_cur, 0x5);
            b_p1 = _mm256_shuffle_pd(b_cur, _mm256_permute2f128_pd(b_cur, b_next, 0x21), 0x5);
            t_0 = _mm256_add_pd(_mm256_add_pd(b_m1, b_cur), b_p1);    /* T at p .. p+3 */
            _mm256_storeu_pd(t + j, t_0);
            x = _mm256_loadu_pd(d + p);
            left = count + 1 - j;              /* band buckets from this block's first on */
            if (j == 0 || left < 4) {
                mask = _mm256_castsi256_pd(_mm256_loadu_si256(
                    (const __m256i*) keep[left < 0 ? 0 : (left > 4 ? 4 : left)]));
                if (j == 0)
                    mask = _mm256_and_pd(mask, _mm256_castsi256_pd(
                        _mm256_loadu_si256((const __m256i*) not_first)));
                t_0 = _mm256_and_pd(t_0, mask);
                x = _mm256_and_pd(x, mask);
            }
            best = _mm256_max_pd(best, t_0);
            sum = _mm256_add_pd(sum, x);
            b_prev = b_cur;
            b_cur = b_next;
        }
        #undef HM_B4
        low = _mm256_castpd256_pd128(sum);
        high = _mm256_extractf128_pd(sum, 1);
        _mm_storeu_pd(lanes, _mm_add_pd(low, high));
        *band = lanes[0] + lanes[1];
        low = _mm_max_pd(_mm256_castpd256_pd128(best), _mm256_extractf128_pd(best, 1));
        _mm_storeu_pd(lanes, low);
        return lanes[0] > lanes[1] ? lanes[0] : lanes[1];
    }

    /* The strongest peak of the band from the smoothed values t (as hm_smooth_avx2 leaves
     * them): index into the band (0 .. count-1), or -1 when there is no peak. */
    __attribute__((target("avx2")))
    static Py_ssize_t hm_strongest_avx2(const double* t, Py_ssize_t count, double largest,
                                        int from_end, double* peaks, double* value) {
        Py_ssize_t k, found;
        double best = 0.0, current;
        if (!(largest > 0.0)) return -1;
        /* the band's largest smoothed value is the strongest peak when, at its occurrence
         * nearest the price, it is a peak (always so inside the band; at an end the bucket
         * beyond may be higher) */
        found = hm_find_avx2(t + 1, count, largest, from_end);
        k = found + 1;
        if (t[k] >= t[k - 1] && t[k] >= t[k + 1]) {
            *value = largest;
            return found;
        }
        /* otherwise the full peak scan over the stored values */
        for (k = 1; k <= count; k++) {
            current = t[k];
            peaks[k - 1] = (current > 0.0 && current >= t[k - 1] && current >= t[k + 1])
                           ? current : 0.0;
            if (peaks[k - 1] > best) best = peaks[k - 1];
        }
        if (!(best > 0.0)) return -1;
        *value = best;
        return hm_find_avx2(peaks, count, best, from_end);
    }

    static int hm_cpu_has_avx2(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    #else
    #define HM_HAVE_AVX2 0
    static double hm_scan_h2_avx2(const double* d, Py_ssize_t lo, Py_ssize_t count,
                                  double* peaks, double* band) {
        return hm_scan_h2(d, lo, count, peaks, band);
    }
    static Py_ssize_t hm_find_avx2(const double* peaks, Py_ssize_t count, double value,
                                   int from_end) {
        return -1;
    }
    static double hm_smooth_avx2(const double* d, Py_ssize_t lo, Py_ssize_t count, double* t,
                                 double* band) {
        return 0.0;
    }
    static Py_ssize_t hm_strongest_avx2(const double* t, Py_ssize_t count, double largest,
                                        int from_end, double* peaks, double* value) {
        return -1;
    }
    static int hm_cpu_has_avx2(void) { return 0; }
    #endif

    /* 2: AVX2, 1: SSE2 (or plain C when the target has no SSE2), 0: plain C. */
    static int hm_simd_level = 0;
    static int hm_set_simd(int level) {
        if (level >= 2 && hm_cpu_has_avx2()) hm_simd_level = 2;
        else if (level >= 1 && HM_HAVE_SSE2) hm_simd_level = 1;
        else hm_simd_level = 0;
        return hm_simd_level;
    }
    static double hm_scan(const double* d, Py_ssize_t lo, Py_ssize_t count, double* peaks,
                          double* band) {
        if (hm_simd_level == 2) return hm_scan_h2_avx2(d, lo, count, peaks, band);
        if (hm_simd_level == 1) return hm_scan_h2(d, lo, count, peaks, band);
        return hm_scan_h2_plain(d, lo, count, peaks, band);
    }
    /* One side of the report: index (into the band starting at lo) of the strongest peak,
     * -1 if none; *band gets the raw notional.  t and peaks are scratch of count + 8. */
    static Py_ssize_t hm_side(const double* d, Py_ssize_t lo, Py_ssize_t count, int from_end,
                              double* t, double* peaks, double* band);

    /* Nearest index of the strongest peak: from the end for longs (the close is above). */
    static Py_ssize_t hm_find(const double* peaks, Py_ssize_t count, double value,
                              int from_end) {
        Py_ssize_t j;
        if (hm_simd_level == 2) return hm_find_avx2(peaks, count, value, from_end);
        if (from_end) {
            for (j = count - 1; j >= 0; j--) if (peaks[j] == value) return j;
        } else {
            for (j = 0; j < count; j++) if (peaks[j] == value) return j;
        }
        return -1;
    }
    static Py_ssize_t hm_side(const double* d, Py_ssize_t lo, Py_ssize_t count, int from_end,
                              double* t, double* peaks, double* band) {
        double best, value = 0.0;
        if (hm_simd_level == 2) {
            best = hm_smooth_avx2(d, lo, count, t, band);
            return hm_strongest_avx2(t, count, best, from_end, peaks, &value);
        }
        best = hm_scan(d, lo, count, peaks, band);
        if (!(best > 0.0)) return -1;
        return hm_find(peaks, count, best, from_end);
    }
    """
    Py_ssize_t hm_side(const double* d, Py_ssize_t lo, Py_ssize_t count, int from_end,
                       double* t, double* peaks, double* band) noexcept nogil
    double hm_scan(const double* d, Py_ssize_t lo, Py_ssize_t count, double* peaks,
                   double* band) noexcept nogil
    Py_ssize_t hm_find(const double* peaks, Py_ssize_t count, double value,
                       int from_end) noexcept nogil
    int hm_set_simd(int level) noexcept nogil


cdef inline void smooth_range(MapState* st, const double* d, Py_ssize_t first,
                              Py_ssize_t count) noexcept nogil:
    """smooth_buffer[k] = triangular smoothing at bucket first + k, for k < count.

    A box of boxes summed upwards (see the reference): box(q) = d[q - a] + ... + d[q - a + h],
    smooth(i) = box(i - (h - a)) + ... + box(i - (h - a) + h), a = h // 2.  Plain loops over
    k, so the compiler vectorises them; every element is summed in the reference's order.
    """
    cdef Py_ssize_t h = st.smooth
    cdef Py_ssize_t a = h // 2
    cdef Py_ssize_t box_first = first - (h - a)
    cdef Py_ssize_t box_count = count + h
    cdef Py_ssize_t k, j
    cdef const double* source = d + box_first - a
    cdef double* boxes = st.box_buffer
    cdef double* out = st.smooth_buffer
    if h == 0:
        for k in range(count):
            out[k] = d[first + k]
        return
    if h == 2:
        for k in range(box_count):
            boxes[k] = (source[k] + source[k + 1]) + source[k + 2]
        for k in range(count):
            out[k] = (boxes[k] + boxes[k + 1]) + boxes[k + 2]
        return
    for k in range(box_count):
        boxes[k] = source[k]
    for j in range(1, h + 1):
        for k in range(box_count):
            boxes[k] = boxes[k] + source[k + j]
    for k in range(count):
        out[k] = boxes[k]
    for j in range(1, h + 1):
        for k in range(count):
            out[k] = out[k] + boxes[k + j]


cdef inline Py_ssize_t report_generic(MapState* st, const double* d, Py_ssize_t centre,
                                      Py_ssize_t direction, double* out) noexcept nogil:
    """Band notional (into out[3]) and strongest peak index for any smoothing width."""
    cdef Py_ssize_t band_count = st.band
    cdef Py_ssize_t first, k, best_index = -1
    cdef double current, best = 0.0
    cdef const double* smooth = st.smooth_buffer
    cdef double* peaks = st.box_buffer
    cdef double sum0, sum1, sum2, sum3
    # smoothed values of the band and one bucket beyond each end, upwards from `first`
    if direction < 0:
        first = centre - band_count - 1
    else:
        first = centre
    smooth_range(st, d, first, band_count + 2)
    for k in range(1, band_count + 1):
        current = smooth[k]
        peaks[k] = (current if ((current > 0.0) & (current >= smooth[k - 1])
                                & (current >= smooth[k + 1])) else 0.0)
        if peaks[k] > best:
            best = peaks[k]
    if best > 0.0:
        if direction < 0:
            k = band_count
            while peaks[k] != best:
                k -= 1
        else:
            k = 1
            while peaks[k] != best:
                k += 1
        best_index = first + k
    # band notional (the order only changes the rounding)
    if direction < 0:
        first = centre - band_count
    else:
        first = centre + 1
    sum0 = sum1 = sum2 = sum3 = 0.0
    k = 0
    while k + 4 <= band_count:
        sum0 = sum0 + d[first + k]
        sum1 = sum1 + d[first + k + 1]
        sum2 = sum2 + d[first + k + 2]
        sum3 = sum3 + d[first + k + 3]
        k += 4
    while k < band_count:
        sum0 = sum0 + d[first + k]
        k += 1
    out[3] = ((sum0 + sum1) + (sum2 + sum3)) * st.scale
    return best_index


cdef inline void report_side(MapState* st, const double* d, Py_ssize_t centre, double close,
                             Py_ssize_t direction, double* out) noexcept nogil:
    """out = (price, notional, distance_pct, band_notional) for one side."""
    cdef Py_ssize_t band_count = st.band
    cdef Py_ssize_t h = st.smooth
    cdef Py_ssize_t first, k, j, best_index = -1
    cdef double best = 0.0
    cdef double notional, price, band
    cdef double* peaks = st.box_buffer
    if h == 2:
        if direction < 0:
            first = centre - band_count
        else:
            first = centre + 1
        k = hm_side(d, first, band_count, direction < 0, st.smooth_buffer, peaks, &band)
        out[3] = band * st.scale
        if k >= 0:
            best_index = first + k
    else:
        best_index = report_generic(st, d, centre, direction, out)
    if best_index < 0:
        out[0] = NAN
        out[1] = 0.0
        out[2] = NAN
        return
    notional = 0.0
    for j in range(-h, h + 1):
        notional += d[best_index + j]
    notional = notional * st.scale
    price = st.centres[best_index]
    out[0] = price
    out[1] = notional
    if direction < 0:
        out[2] = (close - price) / close * 100.0
    else:
        out[2] = (price - close) / close * 100.0


cdef void map_bar(MapState* st, double o, double h, double lo, double c, double v,
                  double funding_rate, double mark_high, double mark_low, double oi,
                  ) noexcept nogil:
    """Process one bar (see the reference for the specification) into st.last[N_LINES].

    Skipped bars leave st.last as it is but for the liquidations (0): the carried outputs.
    """
    cdef double* result = st.last
    cdef Py_ssize_t n = st.n
    cdef double nf = <double> st.n
    cdef double x_low, x_high
    cdef double liq_long, liq_short, typical, new, sigma, daily_notional
    cdef Py_ssize_t first_long, last_short, i, j, centre, low_bucket, high_bucket
    cdef Py_ssize_t whole_long, whole_short
    cdef double take
    cdef bint partial
    cdef bint oi_mode, has_oi
    cdef double side[4]
    if isfinite(funding_rate):
        st.funding = funding_rate
    if not (isfinite(o) and isfinite(h) and isfinite(lo) and isfinite(c) and isfinite(v)
            and v > 0.0 and lo > 0.0 and c > 0.0 and h >= lo):
        result[0] = 0.0
        result[1] = 0.0
        return

    # 0. grid
    if not st.initialized:
        set_grid(st, floor(log(c) * st.inv_step) - st.half)
        st.initialized = True
    centre = bucket_of(st, c)
    if centre < st.quarter or centre >= n - st.quarter:
        recentre(st, floor(log(c) * st.inv_step) - st.half)
        centre = bucket_of(st, c)

    # 1. consume
    low_bucket = bucket_of(st, lo)
    high_bucket = bucket_of(st, h)
    if isfinite(mark_low) and mark_low > 0.0:
        first_long = bucket_of(st, mark_low)
    else:
        first_long = low_bucket
    if isfinite(mark_high) and mark_high > 0.0:
        last_short = bucket_of(st, mark_high)
    else:
        last_short = high_bucket
    if first_long < 0:
        first_long = 0
    if last_short > n - 1:
        last_short = n - 1
    partial = st.touch_fraction < 1.0
    whole_long = first_long
    whole_short = last_short
    if partial:
        whole_long = first_long + st.touch_buckets
        whole_short = last_short - st.touch_buckets
    liq_long = 0.0
    while st.hi_long >= whole_long:
        liq_long += st.dl[st.hi_long]
        st.dl[st.hi_long] = 0.0
        st.hi_long -= 1
    i = st.hi_long
    while i >= first_long:
        take = st.dl[i] * st.touch_fraction
        liq_long += take
        st.dl[i] = st.dl[i] - take
        i -= 1
    liq_short = 0.0
    while st.lo_short <= whole_short:
        liq_short += st.ds[st.lo_short]
        st.ds[st.lo_short] = 0.0
        st.lo_short += 1
    i = st.lo_short
    while i <= last_short:
        take = st.ds[i] * st.touch_fraction
        liq_short += take
        st.ds[i] = st.ds[i] - take
        i += 1
    liq_long = liq_long * st.scale
    liq_short = liq_short * st.scale

    # 2. create
    has_oi = isfinite(oi) and oi >= 0.0
    oi_mode = has_oi and isfinite(st.prev_oi)
    typical = (h + lo + c) / 3.0
    if oi_mode:
        if oi > st.prev_oi:
            new = (oi - st.prev_oi) * typical
        else:
            new = 0.0
    else:
        new = st.participation * v * typical
    if new > 0.0:
        x_low = position_of(st, lo, low_bucket)
        x_high = position_of(st, h, high_bucket)
        create(st, new, typical, lo, h, c, x_low, x_high, low_bucket)

    # 3. remove
    if oi_mode:
        if oi < st.prev_oi:
            if oi > 0.0:
                st.scale = st.scale * (oi / st.prev_oi)
            else:
                state_clear(st)
    else:
        st.scale = st.scale * st.decay
    if st.scale < RENORMALISE_BELOW:
        for i in range(n):
            st.dl[i] = st.dl[i] * st.scale
            st.ds[i] = st.ds[i] * st.scale
        st.scale = 1.0
    if has_oi:
        st.prev_oi = oi

    # 4. report
    report_side(st, st.dl, centre, c, -1, side)
    result[2] = side[0]
    result[3] = side[1]
    result[4] = side[2]
    result[8] = side[3]
    report_side(st, st.ds, centre, c, 1, side)
    result[5] = side[0]
    result[6] = side[1]
    result[7] = side[2]
    result[9] = side[3]
    result[0] = liq_long
    result[1] = liq_short

    # 5. cascade risk
    result[10] = NAN
    if st.cascade_on:
        cascade_state_update(&st.market, c, v, st.cascade_alpha)
        if st.market.has_variance:
            sigma = cascade_state_daily_volatility(&st.market, st.bars_per_day)
            daily_notional = (cascade_state_daily_notional(&st.market, st.bars_per_day)
                              / st.scale) / st.cascade_divisor
            result[10] = cascade_standard_risk(st.dl, st.ds, n, st.k0 * st.log_step,
                                               st.log_step, c, st.cascade_shock, sigma,
                                               daily_notional, &st.cascade_model)


cdef inline const double* optional_pointer(const double[::1] values, Py_ssize_t length,
                                           str name) except? NULL:
    if values is None:
        return NULL
    if values.shape[0] != length:
        raise ValueError(f"{name} has {values.shape[0]} values but the candles have {length}")
    if length == 0:
        return NULL
    return &values[0]


cdef inline double optional_value(const double* values, Py_ssize_t i) noexcept nogil:
    if values == NULL:
        return NAN
    return values[i]


cdef class MapKernel:
    """The liquidation map's state and per-bar update (compiled twin of the reference).

    See :class:`backtest.liquidation.reference.heatmap.MapKernel` for the parameters.
    """

    cdef MapState st
    cdef object _long
    cdef object _short
    cdef object _box_buffer
    cdef object _centres
    cdef object _edges
    cdef object _smooth_buffer
    cdef object _long_offsets
    cdef object _short_offsets
    cdef object _leverage_weights
    cdef object _powers

    def __init__(self, long_offsets, short_offsets, leverage_weights, powers_of_ten, *,
                 double log_step, Py_ssize_t half_buckets, Py_ssize_t entry_points,
                 double entry_concentration, double round_level_weight,
                 double long_share_base, double funding_tilt, double neutral_funding_rate,
                 double long_share_min, double long_share_max, double participation,
                 double decay_per_bar, Py_ssize_t band_buckets, Py_ssize_t smoothing_buckets,
                 double cascade_shock=NAN, tuple cascade_model=(0, 1.0, 1.0, 0.0, 0.1, 1e-6, 50),
                 double cascade_alpha=0.01, double bars_per_day=288.0,
                 double touch_fraction=1.0, Py_ssize_t touch_buckets=0,
                 double cascade_notional_divisor=1.0):
        from backtest.liquidation.levels import LOG_HUNDRED, LOG_TEN

        cdef double[::1] view
        self._long_offsets = np.ascontiguousarray(long_offsets, dtype=np.float64).copy()
        self._short_offsets = np.ascontiguousarray(short_offsets, dtype=np.float64).copy()
        self._leverage_weights = np.ascontiguousarray(leverage_weights, dtype=np.float64).copy()
        self._powers = np.ascontiguousarray(powers_of_ten, dtype=np.float64).copy()
        n_leverages = self._leverage_weights.shape[0]
        if not (self._long_offsets.shape[0] == self._short_offsets.shape[0] == n_leverages > 0):
            raise ValueError("long_offsets, short_offsets and leverage_weights need one value each")
        if self._powers.shape[0] != N_POWERS:
            raise ValueError("powers_of_ten must hold 10**e for every exponent of levels.py")
        if not (log_step > 0.0):
            raise ValueError(f"log_step must be positive, got {log_step}")
        if entry_points < 1 or entry_points > MAX_ENTRY_POINTS:
            raise ValueError(f"entry_points must be in 1..{MAX_ENTRY_POINTS}, got {entry_points}")
        if band_buckets < 1 or smoothing_buckets < 0:
            raise ValueError("band_buckets must be >= 1 and smoothing_buckets >= 0")
        if not (0.0 < touch_fraction <= 1.0) or touch_buckets < 0:
            raise ValueError("touch_fraction must be in (0, 1] and touch_buckets >= 0")
        if not (cascade_notional_divisor > 0.0):
            raise ValueError("cascade_notional_divisor must be positive")
        if half_buckets // 2 <= band_buckets + smoothing_buckets + 16:
            raise ValueError("half_buckets is too small for the band and the smoothing")
        n = 2 * half_buckets + 1
        self._long = np.zeros(n, dtype=np.float64)
        self._short = np.zeros(n, dtype=np.float64)
        self._box_buffer = np.zeros(band_buckets + smoothing_buckets + 8, dtype=np.float64)
        self._smooth_buffer = np.zeros(band_buckets + 8, dtype=np.float64)
        self._centres = np.zeros(n, dtype=np.float64)
        self._edges = np.zeros(n + 1, dtype=np.float64)

        self.st.n = n
        self.st.half = half_buckets
        self.st.quarter = half_buckets // 2
        self.st.n_leverages = n_leverages
        self.st.points = entry_points
        self.st.band = band_buckets
        self.st.smooth = smoothing_buckets
        self.st.log_step = log_step
        self.st.inv_step = 1.0 / log_step
        self.st.concentration = entry_concentration
        self.st.round_weight = round_level_weight
        self.st.share_base = long_share_base
        self.st.funding_tilt = funding_tilt
        self.st.neutral_funding = neutral_funding_rate
        self.st.share_min = long_share_min
        self.st.share_max = long_share_max
        self.st.participation = participation
        self.st.decay = decay_per_bar
        self.st.touch_fraction = touch_fraction
        self.st.touch_buckets = touch_buckets
        self.st.cascade_divisor = cascade_notional_divisor
        self.st.log_hundred = LOG_HUNDRED
        self.st.log_ten = LOG_TEN
        self.st.sqrt_five = 5.0 ** 0.5
        self.st.sqrt_fifty = 50.0 ** 0.5
        view = self._long_offsets
        self.st.long_offsets = &view[0]
        view = self._short_offsets
        self.st.short_offsets = &view[0]
        view = self._leverage_weights
        self.st.leverage_weights = &view[0]
        self.st.min_long_offset = float(self._long_offsets.min())
        self.st.max_long_offset = float(self._long_offsets.max())
        self.st.min_short_offset = float(self._short_offsets.min())
        self.st.max_short_offset = float(self._short_offsets.max())
        view = self._powers
        self.st.powers = &view[0]
        view = self._long
        self.st.dl = &view[0]
        view = self._short
        self.st.ds = &view[0]
        view = self._box_buffer
        self.st.box_buffer = &view[0]
        view = self._smooth_buffer
        self.st.smooth_buffer = &view[0]
        view = self._centres
        self.st.centres = &view[0]
        view = self._edges
        self.st.edges = &view[0]
        self.st.inv_relative_step = 1.0 / expm1(log_step)
        self.st.hint = half_buckets
        self.st.step_low = 1.0
        self.st.step_high = 0.0
        self.st.cascade_on = cascade_shock == cascade_shock
        self.st.cascade_shock = cascade_shock
        self.st.cascade_alpha = cascade_alpha
        self.st.bars_per_day = bars_per_day
        self.st.cascade_model = cascade_model_from(cascade_model, "cascade_model")
        state_reset(&self.st)

    def reset(self):
        """Forget everything: the next valid bar starts a fresh grid."""
        state_reset(&self.st)

    @property
    def n_buckets(self):
        """Number of buckets of the grid."""
        return self.st.n

    @property
    def initialized(self):
        """True once a valid bar was processed."""
        return bool(self.st.initialized)

    def density(self):
        """``(log_price_min, long_notional, short_notional)`` now, or None before any bar."""
        if not self.st.initialized:
            return None
        return (self.st.k0 * self.st.log_step, self._long * self.st.scale,
                self._short * self.st.scale)

    def step(self, double open, double high, double low, double close, double volume,
             double funding_rate=NAN, double mark_high=NAN, double mark_low=NAN,
             double open_interest=NAN):
        """Process one bar; return its outputs in ``LINES`` order."""
        cdef double* result = self.st.last
        map_bar(&self.st, open, high, low, close, volume, funding_rate, mark_high, mark_low,
                open_interest)
        return (result[0], result[1], result[2], result[3], result[4], result[5], result[6],
                result[7], result[8], result[9], result[10])

    def process(self, const double[::1] open, const double[::1] high, const double[::1] low,
                const double[::1] close, const double[::1] volume,
                const double[::1] funding_rate, const double[::1] mark_high,
                const double[::1] mark_low, const double[::1] open_interest,
                out, Py_ssize_t start, Py_ssize_t stop):
        """Process bars ``start..stop-1``, writing row ``i`` of each array in ``out``.

        Optional inputs (funding_rate, mark_high, mark_low, open_interest) may be None;
        ``out`` holds one writable float64 array per line, in ``LINES`` order.
        """
        cdef Py_ssize_t length = close.shape[0]
        cdef Py_ssize_t i, j
        cdef double* targets[N_LINES]
        cdef const double* funding_pointer
        cdef const double* mark_high_pointer
        cdef const double* mark_low_pointer
        cdef const double* oi_pointer
        cdef double[::1] target
        if (open.shape[0] != length or high.shape[0] != length or low.shape[0] != length
                or volume.shape[0] != length):
            raise ValueError("open, high, low, close and volume must have the same length")
        funding_pointer = optional_pointer(funding_rate, length, "funding_rate")
        mark_high_pointer = optional_pointer(mark_high, length, "mark_high")
        mark_low_pointer = optional_pointer(mark_low, length, "mark_low")
        oi_pointer = optional_pointer(open_interest, length, "open_interest")
        if len(out) != N_LINES:
            raise ValueError(f"out must hold {N_LINES} arrays, one per line")
        if not (0 <= start <= stop <= length):
            raise ValueError(
                f"need 0 <= start <= stop <= {length}, got start={start}, stop={stop}"
            )
        keep = []
        for j in range(N_LINES):
            target = out[j]
            if target.shape[0] != length:
                raise ValueError("every out array must have the length of the inputs")
            keep.append(target)
            targets[j] = &target[0] if length else NULL
        if start == stop:
            return
        with nogil:
            for i in range(start, stop):
                map_bar(&self.st, open[i], high[i], low[i], close[i], volume[i],
                        optional_value(funding_pointer, i),
                        optional_value(mark_high_pointer, i),
                        optional_value(mark_low_pointer, i),
                        optional_value(oi_pointer, i))
                for j in range(N_LINES):
                    targets[j][i] = self.st.last[j]


set_simd(2)
