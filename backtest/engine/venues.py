"""What a run takes from its exchange: liquidation formula, tier snapshot, funding, map defaults.

``--exchange`` names the ccxt exchange the data came from; the venue follows from it:

=============== ============ ===================================================================
exchange (ccxt) venue        leverage tiers
=============== ============ ===================================================================
``binanceusdm`` ``binance``  bundled snapshots (``data/tiers``, every USDⓈ-M symbol)
``bybit``       ``bybit``    ``download`` stores them (risk limits) in ``<data>/tiers``
``okx``         ``okx``      ``download`` stores them (position tiers, in USDT)
``hyperliquid`` ``hyperliquid`` ``download`` stores them (one bracket from the asset's max leverage)
=============== ============ ===================================================================

The broker uses the venue's liquidation formula (:mod:`backtest.liquidation.prices`) with the
bracket of the tier table that holds the position, funding is charged at the settlements of the
stored funding series whatever their interval (Binance, Bybit and OKX every 8 h for most
symbols, Hyperliquid every hour), and the liquidation map places its levels with the same
formula and table unless ``--map``/``[map]`` sets ``venue``, ``maintenance_margin_rate`` or
``venue_max_leverage`` itself (:func:`map_defaults`).
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from backtest.errors import ConfigError

#: Exchanges a run accepts (ccxt ids) and the venue formula of each.
EXCHANGE_VENUES: dict[str, str] = {
    "binanceusdm": "binance",
    "bybit": "bybit",
    "okx": "okx",
    "hyperliquid": "hyperliquid",
}
EXCHANGES: tuple[str, ...] = tuple(EXCHANGE_VENUES)
#: Funding interval assumed when the stored series has fewer than two settlements (hours).
DEFAULT_FUNDING_HOURS: dict[str, float] = {
    "binance": 8.0,
    "bybit": 8.0,
    "okx": 8.0,
    "hyperliquid": 1.0,
}
#: The funding interval the map's ``neutral_funding_rate`` and tilt are stated for (hours).
MAP_FUNDING_HOURS = 8.0
#: Map fields a user setting of which keeps the venue defaults of that field out.
_MAP_VENUE_FIELDS = ("venue", "maintenance_margin_rate", "venue_max_leverage")


def check_exchange(exchange: str) -> str:
    """Return ``exchange`` when a run supports it, else raise a one-line ConfigError.

    Raises
    ------
    ConfigError
        Naming the supported exchanges, with the closest one ("did you mean").
    """
    name = str(exchange).strip()
    if name in EXCHANGE_VENUES:
        return name
    aliases = {"binance": "binanceusdm", "binancefutures": "binanceusdm", "okex": "okx"}
    close = aliases.get(name.lower())
    if close is None:
        matches = difflib.get_close_matches(name.lower(), EXCHANGES, n=1, cutoff=0.5)
        close = matches[0] if matches else None
    hint = f" (did you mean {close!r}?)" if close else ""
    raise ConfigError(
        f"exchange {exchange!r} is not supported for runs{hint}; use one of "
        f"{', '.join(EXCHANGES)} (ccxt ids)"
    )


def venue_for_exchange(exchange: str) -> str:
    """The liquidation-formula venue of a supported exchange (``binanceusdm`` -> ``binance``)."""
    return EXCHANGE_VENUES[check_exchange(exchange)]


# --------------------------------------------------------------------------------------------
# tier snapshots of a run
# --------------------------------------------------------------------------------------------
def tier_folders(data_dir: str | os.PathLike[str] | None) -> list[Any]:
    """Folders a run searches for tier snapshots: the store's ``tiers``, then the bundled one."""
    from backtest.liquidation.tiers import store_tiers_dir, tiers_dir
    from backtest.market.store import default_data_dir

    root = data_dir if data_dir is not None else default_data_dir()
    return [store_tiers_dir(root), tiers_dir()]


def load_venue_tiers(
    symbol: str,
    exchange: str,
    at: Any,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    timeframe: str = "5m",
) -> Any:
    """The tier table of ``symbol`` on ``exchange`` in force at ``at`` (store first, then bundled).

    Raises
    ------
    ConfigError
        When no snapshot holds the symbol: one line naming the download command that stores
        one (Bybit, OKX, Hyperliquid) or the bundled folder (Binance).
    DataError
        An unreadable snapshot.
    """
    from backtest.liquidation.tiers import load_tiers
    from backtest.market.store import download_command
    from backtest.market.tier_download import TIER_SOURCES

    folders = tier_folders(data_dir)
    try:
        return load_tiers(symbol, exchange, at=at, directory=folders)
    except ConfigError as error:
        if exchange not in TIER_SOURCES:
            raise
        raise ConfigError(
            f"no {exchange} leverage-tier snapshot holds {symbol} (looked in {folders[0]} and "
            f"the bundled {folders[1]}); store one with: "
            f"{download_command(exchange, symbol, timeframe)}"
        ) from error


def snapshot_name(tiers: Any) -> str:
    """How a report names a tier table: ``<exchange> <date> (<file>)``."""
    if tiers is None:
        return "none"
    date = tiers.effective_date.isoformat() if tiers.effective_date else "undated"
    source = os.path.basename(str(tiers.source)) if tiers.source else "built in code"
    from backtest.liquidation.tiers import DEFAULT_TIERS_DIR

    where = "bundled" if str(tiers.source).startswith(str(DEFAULT_TIERS_DIR.resolve())) else ""
    location = f"{where} {source}".strip() if where else str(tiers.source or source)
    return f"{tiers.exchange} {date} ({location})"


# --------------------------------------------------------------------------------------------
# maintenance of a position
# --------------------------------------------------------------------------------------------
def position_maintenance(
    venue: str, tiers: Any, notional: float
) -> tuple[float, float | None, float]:
    """Maintenance rate, amount and maximum leverage of a position of ``notional`` on a venue.

    For Bybit, OKX and Hyperliquid the bracket holding the position's notional gives the
    maintenance rate (and Bybit's deduction); their formulas take the rate as given.  Binance's
    bracket is chosen by the formula itself (notional at the liquidation price), so this is only
    used for the other venues.

    Returns
    -------
    (float, float or None, float)
        Rate, amount (None where the venue's formula has none: OKX, Hyperliquid) and the
        highest leverage the table allows for that notional.
    """
    held = min(max(notional, 0.0), tiers.max_notional)
    tier = tiers.tier_for_notional(held)
    amount = tier.cum if venue == "bybit" else None
    return tier.maintenance_margin_rate, amount, tiers.max_leverage_for_notional(held)


# --------------------------------------------------------------------------------------------
# funding schedule
# --------------------------------------------------------------------------------------------
def funding_interval_hours(frame: Any, venue: str) -> float:
    """The funding interval of the run's series, in hours (median spacing of its settlements).

    The store places each settlement on its bar whatever the interval; this only tells the map
    how to read a rate.  Falls back to the venue's usual interval when the frame holds fewer
    than two settlements.
    """
    times = np.asarray((getattr(frame, "attrs", None) or {}).get("funding_times", ()), np.int64)
    if times.size >= 2:
        steps = np.diff(np.sort(times))
        steps = steps[steps > 0]
        if steps.size:
            hours = float(np.median(steps)) / 3_600_000.0
            if hours > 0.0:
                return round(hours * 60.0) / 60.0
    return DEFAULT_FUNDING_HOURS.get(venue, MAP_FUNDING_HOURS)


# --------------------------------------------------------------------------------------------
# the map's defaults
# --------------------------------------------------------------------------------------------
def map_defaults(
    venue: str,
    tiers: Any,
    user_params: Mapping[str, Any] | None = None,
    *,
    funding_hours: float = MAP_FUNDING_HOURS,
) -> dict[str, Any]:
    """Liquidation-map parameters that follow the run's venue, tiers and funding interval.

    * ``venue``: the run's.  For Bybit, OKX and Hyperliquid, ``maintenance_margin_rate`` is
      the rate of the bracket holding the map's ``position_notional`` (their formulas take a
      rate; Binance's map reads the tier table itself).
    * ``leverages``/``leverage_weights``: leverages above what the venue allows for that
      notional (e.g. Hyperliquid BTC 40x, a Binance altcoin 75x) are folded into the maximum:
      the weight of the leverages above it moves to it.
    * ``neutral_funding_rate`` and ``long_share_funding_tilt`` are stated per 8 h; with an
      hourly series (Hyperliquid) the neutral rate is scaled by ``hours/8`` and the tilt by
      ``8/hours``, so the same premium leans the long share equally.

    Fields the user sets (``user_params``) are left out, and a user ``venue``,
    ``maintenance_margin_rate`` or ``venue_max_leverage`` keeps all three venue fields out.
    """
    from backtest.liquidation.heatmap import MapParams

    user = dict(user_params or {})
    base = MapParams()
    defaults: dict[str, Any] = {}
    position_notional = float(user.get("position_notional", base.position_notional))
    if not any(name in user for name in _MAP_VENUE_FIELDS):
        defaults["venue"] = venue
        if venue != "binance" and tiers is not None:
            rate, _, _ = position_maintenance(venue, tiers, position_notional)
            defaults["maintenance_margin_rate"] = rate
    if tiers is not None and "leverages" not in user and "leverage_weights" not in user:
        notional = min(position_notional, tiers.max_notional)
        maximum = float(tiers.max_leverage_for_notional(notional))
        if venue == "hyperliquid":
            maximum = float(tiers.max_leverage)
        leverages, weights = _fold_leverages(base.leverages, base.leverage_weights, maximum)
        if leverages != tuple(base.leverages):
            defaults["leverages"] = list(leverages)
            defaults["leverage_weights"] = list(weights)
    hours = float(funding_hours)
    if hours > 0.0 and not math.isclose(hours, MAP_FUNDING_HOURS):
        scale = hours / MAP_FUNDING_HOURS
        if "neutral_funding_rate" not in user:
            defaults["neutral_funding_rate"] = base.neutral_funding_rate * scale
        if "long_share_funding_tilt" not in user:
            defaults["long_share_funding_tilt"] = base.long_share_funding_tilt / scale
    return defaults


def _fold_leverages(
    leverages: tuple[float, ...], weights: tuple[float, ...], maximum: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Leverages above ``maximum`` replaced by it, their weights added to it."""
    if all(leverage <= maximum for leverage in leverages) or maximum <= 1.0:
        return tuple(leverages), tuple(weights)
    kept = [(lev, weight) for lev, weight in zip(leverages, weights, strict=True) if lev < maximum]
    folded = math.fsum(
        weight for lev, weight in zip(leverages, weights, strict=True) if lev >= maximum
    )
    kept.append((maximum, folded))
    return tuple(lev for lev, _ in kept), tuple(weight for _, weight in kept)


def attach_map_defaults(feed: Any, config: Any, tiers: Any, frame: Any) -> dict[str, Any]:
    """Compute the run's venue map defaults and keep them on the feed (``feed.map_defaults``).

    :class:`backtest.Strategy` lays the run's ``map_params`` and the strategy's overrides over
    them when it builds the feed's map; the runner does the same for the report's heatmap.
    """
    defaults = map_defaults(
        config.venue,
        tiers,
        config.map_params,
        funding_hours=funding_interval_hours(frame, config.venue),
    )
    feed.map_defaults = defaults
    return defaults
