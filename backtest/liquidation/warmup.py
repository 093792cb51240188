"""How much history before ``--since`` the liquidation map runs over (its warm-up).

The map is path dependent: its density at a bar holds every position created since the map
started, less what was consumed and what the removal took away.  A map started empty at
``--since`` therefore shows thin clusters for days, and two runs that start on different dates
see different maps on the same day.  Every command that runs the map over a period (``run``,
``sweep`` and walk-forward, ``heatmap``, ``validate``, ``calibrate``) starts it earlier, at
:func:`warmup_start`, and only reports or trades from ``--since`` on.

The rule
--------
In the volume model a position's weight halves every half-life (``half_life_hours``, or
``half_life_bars`` bars).  After ``n`` half-lives what the map held at its start weighs
``2**-n`` of what it weighed then, so the warm-up is the smallest whole number of half-lives
with ``2**-n <= tolerance``:

    ``n = ceil(log2(1 / tolerance))``, warm-up ``= n × half-life``

With the default tolerance 1e-6 that is 20 half-lives: 40 days for a 48 h half-life (960
bars of 1h, 11,520 bars of 5m), about 6 days for a 7.3 h one.  When the cascade line is asked
for, the longer of the map's half-life and the cascade's EWMA half-life
(``CascadeParams.halflife_hours``) counts.  The warm-up is capped at :data:`MAX_WARMUP` (365
days): a half-life beyond 18 days would need more.

Open-interest mode.  When open interest is loaded, positions are not removed by a time decay but
by a proportional haircut whenever open interest falls (and by consumption when price crosses
them); the map then forgets its start only as open interest turns over, which no timeframe rule
can promise.  The same time rule is used, as a duration to load, and
:func:`open_interest_retention` measures afterwards how much of the start survived the warm-up's
haircuts (an upper bound: consumption removes more).  Lengthen the warm-up (``--warmup 90d``)
when that figure is not small.

When the stored data starts later than ``since - warm-up``, the map runs over what exists and
the commands say so in one warning line; the warm-up actually used is recorded with the results.

Examples
--------
>>> from backtest.liquidation.heatmap import MapParams
>>> from backtest.liquidation.warmup import warmup_duration
>>> warmup_duration(MapParams(half_life_hours=48), "1h")
Timedelta('40 days 00:00:00')
>>> warmup_duration(MapParams(half_life_hours=12), "5m")
Timedelta('10 days 00:00:00')
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from backtest.errors import ConfigError

#: Weight the start of the map may keep after the warm-up, by default.
DEFAULT_TOLERANCE = 1e-6
#: The longest warm-up the rule asks for.
MAX_WARMUP = pd.Timedelta(days=365)

_SPAN = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([mhdw])$")
_UNIT_HOURS = {"m": 1.0 / 60.0, "h": 1.0, "d": 24.0, "w": 168.0}
_AUTO = ("", "auto", "default")


def warmup_half_lives(tolerance: float = DEFAULT_TOLERANCE) -> int:
    """Half-lives after which the map's start weighs at most ``tolerance``: ``ceil(log2(1/tol))``.

    Parameters
    ----------
    tolerance : float
        Remaining weight allowed, in (0, 1).

    Returns
    -------
    int
        20 for the default 1e-6.

    Raises
    ------
    ConfigError
        When ``tolerance`` is not in (0, 1).
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise ConfigError(f"warm-up tolerance must be a number in (0, 1), got {tolerance!r}")
    if not 0.0 < float(tolerance) < 1.0:
        raise ConfigError(f"warm-up tolerance must lie in (0, 1), got {tolerance!r}; e.g. 1e-6")
    # round() guards against log2(1e-6) landing a hair above a whole number
    return math.ceil(round(-math.log2(float(tolerance)), 9))


def _params(params: Any) -> Any:
    from backtest.liquidation.heatmap import MapParams

    if params is None:
        return MapParams()
    if isinstance(params, MapParams):
        return params
    if isinstance(params, Mapping):
        return MapParams.from_dict(dict(params))
    raise ConfigError(
        f"the warm-up needs MapParams (or a mapping of its fields), got {type(params).__name__}"
    )


def _bar(timeframe: Any) -> pd.Timedelta | None:
    if timeframe is None:
        return None
    from backtest.liquidation.heatmap import bar_hours

    return pd.Timedelta(hours=bar_hours(timeframe))


def memory_half_life(params: Any = None, timeframe: Any = None) -> pd.Timedelta:
    """The longest half-life of the map's state: the decay's, or the cascade EWMA's when longer.

    Parameters
    ----------
    params : MapParams or mapping, optional
        The map's parameters (defaults when None).
    timeframe : str, float or Timedelta, optional
        Bar length (ccxt timeframe, seconds or a Timedelta); needed when
        ``params.half_life_bars`` is set.

    Returns
    -------
    pandas.Timedelta

    Raises
    ------
    ConfigError
        For bad parameters, or ``half_life_bars`` without a timeframe.
    """
    params = _params(params)
    if params.half_life_bars is not None:
        bar = _bar(timeframe)
        if bar is None:
            raise ConfigError(
                "MapParams.half_life_bars needs the bar length to size the warm-up; pass the "
                "timeframe (e.g. '5m')"
            )
        half_life = bar * float(params.half_life_bars)
    else:
        half_life = pd.Timedelta(hours=float(params.half_life_hours))
    cascade = params.cascade
    if cascade is not None:
        half_life = max(half_life, pd.Timedelta(hours=float(cascade.halflife_hours)))
    return half_life


def warmup_duration(
    params: Any = None,
    timeframe: Any = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    maximum: pd.Timedelta = MAX_WARMUP,
) -> pd.Timedelta:
    """How long before ``--since`` the map starts (the rule of the module docstring).

    Parameters
    ----------
    params : MapParams or mapping, optional
        The map's parameters (defaults when None).
    timeframe : str, float or Timedelta, optional
        Bar length; needed for ``half_life_bars``.  When given, the warm-up is rounded up to
        whole bars.
    tolerance : float
        Weight the start may keep (default 1e-6: 20 half-lives).
    maximum : Timedelta
        Cap (default 365 days).

    Returns
    -------
    pandas.Timedelta
        ``ceil(log2(1/tolerance)) × half-life``, capped at ``maximum`` (40 days for a 48 h
        half-life).
    """
    duration = memory_half_life(params, timeframe) * warmup_half_lives(tolerance)
    duration = min(duration, pd.Timedelta(maximum))
    bar = _bar(timeframe)
    if bar is not None:
        duration = bar * math.ceil(duration / bar - 1e-9)
    return duration


def warmup_bars(
    params: Any = None,
    timeframe: Any = "5m",
    *,
    warmup: Any = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    """The warm-up in bars of ``timeframe`` (the rule, or the ``warmup`` override).

    Returns
    -------
    int
        960 on 1h bars and 11,520 on 5m bars for a 48 h half-life.
    """
    bar = _bar(timeframe)
    if bar is None:
        raise ConfigError("warmup_bars needs a timeframe, e.g. '5m'")
    duration = resolve_warmup(warmup, params, timeframe, tolerance=tolerance)
    return math.ceil(duration / bar - 1e-9)


def parse_warmup(value: Any) -> pd.Timedelta | None:
    """Read a ``--warmup`` value: ``auto`` (the rule), ``0`` (none) or a span.

    Parameters
    ----------
    value : str, Timedelta, number of hours or None
        ``None``/``"auto"``: use the rule (returns None).  ``0``/``"0"``: no warm-up (the map
        starts empty at ``--since``).  A span: a count and a unit m, h, d or w (``30d``,
        ``12h``, ``2w``), or a Timedelta.

    Returns
    -------
    pandas.Timedelta or None

    Raises
    ------
    ConfigError
        For anything else, or a negative span.
    """
    if value is None:
        return None
    if isinstance(value, pd.Timedelta):
        span = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if value != 0:
            raise ConfigError(
                f"warmup {value!r}: give a span with its unit (30d, 12h), 0 for none or auto"
            )
        span = pd.Timedelta(0)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in _AUTO:
            return None
        if text in ("0", "none", "off"):
            return pd.Timedelta(0)
        match = _SPAN.match(text)
        if match is None:
            raise ConfigError(
                f"warmup {value!r} is not understood; use auto (the default rule), 0 (none) or "
                "a span such as 30d, 12h or 2w"
            )
        span = pd.Timedelta(hours=float(match.group(1)) * _UNIT_HOURS[match.group(2)])
    else:
        raise ConfigError(f"warmup must be auto, 0 or a span such as 30d, got {value!r}")
    if span < pd.Timedelta(0):
        raise ConfigError(f"warmup {value!r} is negative; use 0 for none")
    return span


def format_warmup(span: pd.Timedelta) -> str:
    """A span the way ``--warmup`` accepts it back (``40d``, ``36h``, ``90m``, ``0``)."""
    minutes = round(pd.Timedelta(span).total_seconds() / 60.0)
    if minutes == 0:
        return "0"
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def describe_span(span: pd.Timedelta) -> str:
    """A span for messages: ``40d``, ``7d 20h``, ``36h`` becomes ``1d 12h``, ``45m``."""
    minutes = round(pd.Timedelta(span).total_seconds() / 60.0)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value
    ]
    return " ".join(parts) or "0"


def resolve_warmup(
    warmup: Any,
    params: Any = None,
    timeframe: Any = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> pd.Timedelta:
    """The warm-up to use: the ``warmup`` override when given, else :func:`warmup_duration`."""
    span = parse_warmup(warmup)
    if span is None:
        return warmup_duration(params, timeframe, tolerance=tolerance)
    return span


def warmup_start(
    since: Any,
    params: Any = None,
    timeframe: Any = None,
    *,
    warmup: Any = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> pd.Timestamp | None:
    """When the map starts for a period starting at ``since``: ``since`` minus the warm-up.

    Parameters
    ----------
    since : time or None
        First bar of the period (text, epoch ms, datetime, Timestamp); None means "from the
        first stored bar", which has nothing before it (returns None).
    params, timeframe, tolerance
        As for :func:`warmup_duration`.
    warmup : str, Timedelta or None
        Override (``"30d"``, ``"0"``); None or ``"auto"`` uses the rule.

    Returns
    -------
    pandas.Timestamp or None
        UTC.
    """
    if since is None:
        return None
    from backtest.timeframes import parse_time

    since_ms = parse_time(since, "since")
    if since_ms is None:
        return None
    start = pd.Timestamp(since_ms, unit="ms", tz="UTC")
    return start - resolve_warmup(warmup, params, timeframe, tolerance=tolerance)


def open_interest_retention(open_interest: Any) -> float:
    """Upper bound of the weight the map's start keeps after these bars in open-interest mode.

    The product of ``OI[t] / OI[t-1]`` over the bars where open interest fell (the map's
    haircut; consumption only removes more), over finite positive values in order.  1.0 when
    open interest never fell or is not known.

    Parameters
    ----------
    open_interest : array-like
        Open interest over the warm-up bars.

    Returns
    -------
    float
    """
    values = np.asarray(open_interest, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return 1.0
    if (values <= 0.0).any():
        return 0.0  # the map clears everything at OI <= 0
    ratios = values[1:] / values[:-1]
    return float(np.exp(np.log(np.minimum(ratios, 1.0)).sum()))


__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_WARMUP",
    "describe_span",
    "format_warmup",
    "memory_half_life",
    "open_interest_retention",
    "parse_warmup",
    "resolve_warmup",
    "warmup_bars",
    "warmup_duration",
    "warmup_half_lives",
    "warmup_start",
]
