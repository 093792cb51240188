"""Leverage tiers (Binance "brackets") in ccxt's unified structure, loaded from dated snapshots.

An exchange sets, per symbol, a table of notional brackets; each bracket has a maintenance
margin rate (MMR), a maximum leverage and, on Binance, a maintenance amount ``cum`` that keeps
the maintenance margin ``MM(N) = N·MMR_n − cum_n`` continuous across brackets:

    cum_1 = 0,   cum_n = cum_{n−1} + floor_n · (MMR_n − MMR_{n−1})

ccxt's ``fetch_leverage_tiers`` returns the table as ``{symbol: [{"minNotional",
"maxNotional", "maintenanceMarginRate", "maxLeverage", "info": {...raw...}}, ...]}``, with
Binance's ``cum`` inside ``info``.  Fetching Binance's brackets needs an API key, so dated
snapshots of that structure ship in ``data/tiers/<exchange>-<YYYY-MM-DD>.json`` and a run uses
the snapshot in force at its start date (see :func:`load_tiers`).

Every table is validated when built: brackets must start at notional 0 and touch without gaps
or overlaps, MMR must not decrease and maximum leverage must not increase from one bracket to
the next, and a ``cum`` that disagrees with the value recomputed from the brackets is rejected.
"""

from __future__ import annotations

import bisect
import datetime as dt
import difflib
import functools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backtest._paths import bundled_data_dir
from backtest.errors import ConfigError, DataError

#: Folder of the bundled snapshots (``data/tiers`` in the project).
DEFAULT_TIERS_DIR = bundled_data_dir() / "tiers"
#: Environment variable that points :func:`load_tiers` at another snapshot folder.
TIERS_DIR_ENV = "BACKTEST_TIERS_DIR"
#: Snapshot file names: ``<exchange>-<YYYY-MM-DD>.json``.
SNAPSHOT_PATTERN = re.compile(r"^(?P<exchange>[a-z0-9]+)-(?P<date>\d{4}-\d{2}-\d{2})\.json$")

# Tolerances of the cum check: cum is quoted to the cent, recomputation is exact to ~1e-12.
_CUM_RELATIVE_TOLERANCE = 1e-9
_CUM_ABSOLUTE_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class Tier:
    """One notional bracket of a leverage-tier table.

    Attributes
    ----------
    min_notional, max_notional : float
        Position notional range in quote currency; the bracket covers
        ``min_notional <= notional < max_notional`` when picking the maintenance rate.
    maintenance_margin_rate : float
        Maintenance margin rate of the bracket (fraction, 0.004 = 0.4 %).
    max_leverage : float
        Highest leverage allowed for a position whose notional is at most ``max_notional``.
    cum : float
        Maintenance amount (Binance ``cum``): maintenance margin is
        ``notional * maintenance_margin_rate - cum``.
    """

    min_notional: float
    max_notional: float
    maintenance_margin_rate: float
    max_leverage: float
    cum: float = 0.0

    def maintenance_margin(self, notional: float) -> float:
        """Return the maintenance margin ``notional * MMR - cum`` of a position in this bracket."""
        return notional * self.maintenance_margin_rate - self.cum


def expected_cums(tiers: Sequence[Tier]) -> list[float]:
    """Recompute every bracket's ``cum`` from floors and rates.

    ``cum_1 = floor_1 · MMR_1`` (0 for a table starting at notional 0) and
    ``cum_n = cum_{n−1} + floor_n · (MMR_n − MMR_{n−1})``, which makes the maintenance margin a
    continuous function of notional.
    """
    cums: list[float] = []
    previous_rate = 0.0
    previous_cum = 0.0
    for tier in tiers:
        previous_cum = previous_cum + tier.min_notional * (
            tier.maintenance_margin_rate - previous_rate
        )
        previous_rate = tier.maintenance_margin_rate
        cums.append(previous_cum)
    return cums


def validate_tiers(tiers: Sequence[Tier], *, label: str = "tier table") -> None:
    """Raise :class:`~backtest.errors.ConfigError` unless ``tiers`` is a consistent table.

    Parameters
    ----------
    tiers : sequence of Tier
        Brackets in increasing notional order.
    label : str
        How error messages name the table (symbol and snapshot).

    Raises
    ------
    ConfigError
        Empty table, first floor not 0, a gap or overlap between brackets, an empty bracket,
        an MMR outside [0, 1) or decreasing, a maximum leverage not > 0 or increasing, or a
        ``cum`` that disagrees with the value recomputed from the brackets.
    """
    if not tiers:
        raise ConfigError(f"{label}: no brackets; a tier table needs at least one")
    if tiers[0].min_notional != 0.0:
        raise ConfigError(
            f"{label}: the first bracket starts at notional {tiers[0].min_notional:g}; "
            "it must start at 0"
        )
    for number, tier in enumerate(tiers, start=1):
        finite = (tier.min_notional, tier.maintenance_margin_rate, tier.max_leverage, tier.cum)
        if not all(math.isfinite(value) for value in finite) or math.isnan(tier.max_notional):
            raise ConfigError(f"{label}: bracket {number} has a non-finite value: {tier}")
        if not tier.max_notional > tier.min_notional:
            raise ConfigError(
                f"{label}: bracket {number} is empty or reversed (minNotional "
                f"{tier.min_notional:g} >= maxNotional {tier.max_notional:g}); "
                "maxNotional must exceed minNotional"
            )
        if not 0.0 <= tier.maintenance_margin_rate < 1.0:
            raise ConfigError(
                f"{label}: bracket {number} maintenanceMarginRate "
                f"{tier.maintenance_margin_rate:g} is outside the allowed range [0, 1)"
            )
        if not tier.max_leverage > 0.0:
            raise ConfigError(
                f"{label}: bracket {number} maxLeverage {tier.max_leverage:g} must be > 0"
            )
        if number == 1:
            continue
        previous = tiers[number - 2]
        if tier.min_notional > previous.max_notional:
            raise ConfigError(
                f"{label}: gap between bracket {number - 1} (up to {previous.max_notional:g}) "
                f"and bracket {number} (from {tier.min_notional:g}); each minNotional must "
                "equal the previous maxNotional"
            )
        if tier.min_notional < previous.max_notional:
            raise ConfigError(
                f"{label}: bracket {number} (from {tier.min_notional:g}) overlaps bracket "
                f"{number - 1} (up to {previous.max_notional:g}); each minNotional must equal "
                "the previous maxNotional"
            )
        if tier.maintenance_margin_rate < previous.maintenance_margin_rate:
            raise ConfigError(
                f"{label}: maintenanceMarginRate falls from {previous.maintenance_margin_rate:g}"
                f" (bracket {number - 1}) to {tier.maintenance_margin_rate:g} (bracket "
                f"{number}); rates must not decrease with notional"
            )
        if tier.max_leverage > previous.max_leverage:
            raise ConfigError(
                f"{label}: maxLeverage rises from {previous.max_leverage:g} (bracket "
                f"{number - 1}) to {tier.max_leverage:g} (bracket {number}); it must not "
                "increase with notional"
            )
    for number, (tier, expected) in enumerate(zip(tiers, expected_cums(tiers), strict=True), 1):
        if not math.isclose(
            tier.cum,
            expected,
            rel_tol=_CUM_RELATIVE_TOLERANCE,
            abs_tol=_CUM_ABSOLUTE_TOLERANCE,
        ):
            raise ConfigError(
                f"{label}: bracket {number} cum {tier.cum:.10g} disagrees with the value "
                f"recomputed from the brackets, {expected:.10g} (cum_n = cum_(n-1) + "
                "floor_n*(MMR_n - MMR_(n-1))); the snapshot is inconsistent"
            )


@dataclass(frozen=True)
class LeverageTiers:
    """A validated leverage-tier table of one symbol on one exchange.

    Attributes
    ----------
    symbol : str
        ccxt symbol, e.g. ``"BTC/USDT:USDT"``.
    exchange : str
        ccxt exchange id, e.g. ``"binanceusdm"``.
    effective_date : datetime.date or None
        Date of the snapshot: the table is used for runs starting on or after it (until the
        next snapshot's date).  None for a table built in code.
    tiers : tuple of Tier
        Brackets in increasing notional order.
    source : str
        Where the table came from (snapshot path), for messages.
    """

    symbol: str
    exchange: str
    effective_date: dt.date | None
    tiers: tuple[Tier, ...]
    source: str = ""
    _floors: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _caps: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _rates: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _amounts: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tiers = tuple(self.tiers)
        object.__setattr__(self, "tiers", tiers)
        validate_tiers(tiers, label=self.label)
        object.__setattr__(self, "_floors", tuple(tier.min_notional for tier in tiers))
        object.__setattr__(self, "_caps", tuple(tier.max_notional for tier in tiers))
        object.__setattr__(self, "_rates", tuple(tier.maintenance_margin_rate for tier in tiers))
        object.__setattr__(self, "_amounts", tuple(tier.cum for tier in tiers))

    @property
    def label(self) -> str:
        """Short name for messages: symbol, exchange and snapshot date."""
        date = f" {self.effective_date.isoformat()}" if self.effective_date else ""
        return f"{self.symbol} tiers ({self.exchange}{date})"

    @property
    def floors(self) -> tuple[float, ...]:
        """Bracket floors (``minNotional``), in order."""
        return self._floors

    @property
    def maintenance_margin_rates(self) -> tuple[float, ...]:
        """Bracket maintenance margin rates, in order."""
        return self._rates

    @property
    def maintenance_amounts(self) -> tuple[float, ...]:
        """Bracket maintenance amounts (Binance ``cum``), in order."""
        return self._amounts

    @property
    def max_leverage(self) -> float:
        """Highest leverage the table allows (that of the first bracket)."""
        return self.tiers[0].max_leverage

    @property
    def max_notional(self) -> float:
        """Largest position notional the table covers (cap of the last bracket)."""
        return self.tiers[-1].max_notional

    def index_for_notional(self, notional: float) -> int:
        """Return the 0-based bracket index for ``notional``, clamped to the table.

        A bracket covers ``min_notional <= notional < max_notional`` (a notional equal to a
        floor belongs to the higher bracket, as on Binance).  Notionals <= 0 map to the first
        bracket and notionals beyond the last cap to the last bracket: the maintenance margin
        is extended linearly, which the liquidation-price solver relies on.
        """
        return max(0, min(bisect.bisect_right(self._floors, notional) - 1, len(self._floors) - 1))

    def tier_for_notional(self, notional: float) -> Tier:
        """Return the bracket whose maintenance rate applies to a position of ``notional``.

        Raises
        ------
        ConfigError
            When ``notional`` is negative, not finite, or beyond the last bracket's cap.
        """
        self._check_notional(notional)
        return self.tiers[self.index_for_notional(notional)]

    def max_leverage_for_notional(self, notional: float) -> float:
        """Return the highest leverage allowed for a position of ``notional``.

        The position may be as large as a bracket's cap (inclusive) at that bracket's
        ``maxLeverage``: a 300,000 USDT position may use the first bracket's leverage when the
        first cap is 300,000.

        Raises
        ------
        ConfigError
            When ``notional`` is negative, not finite, or beyond the last bracket's cap.
        """
        self._check_notional(notional)
        index = bisect.bisect_left(self._caps, notional)
        return self.tiers[index].max_leverage

    def max_notional_for_leverage(self, leverage: float) -> float:
        """Return the largest position notional allowed at ``leverage`` (0 when none is)."""
        allowed = [tier.max_notional for tier in self.tiers if tier.max_leverage >= leverage]
        return max(allowed, default=0.0)

    def to_ccxt(self) -> list[dict[str, Any]]:
        """Return the table in ccxt's unified structure (``cum`` inside ``info``)."""
        return [
            {
                "tier": float(number),
                "symbol": self.symbol,
                "minNotional": tier.min_notional,
                "maxNotional": tier.max_notional,
                "maintenanceMarginRate": tier.maintenance_margin_rate,
                "maxLeverage": tier.max_leverage,
                "info": {"cum": tier.cum},
            }
            for number, tier in enumerate(self.tiers, start=1)
        ]

    @classmethod
    def from_ccxt(
        cls,
        symbol: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        exchange: str = "binanceusdm",
        effective_date: dt.date | None = None,
        source: str = "",
    ) -> LeverageTiers:
        """Build a validated table from ccxt ``fetch_leverage_tiers()[symbol]`` rows.

        ``cum`` is read from ``info["cum"]`` (Binance) when present and checked against the
        value recomputed from the brackets; when absent (other exchanges) it is recomputed.

        Raises
        ------
        ConfigError
            When a row lacks a field or the table is inconsistent (see :func:`validate_tiers`).
        """
        rows = list(rows)
        tiers: list[Tier] = []
        stated_cums: dict[int, float] = {}
        for number, row in enumerate(rows, start=1):
            try:
                min_notional = float(row["minNotional"])
                max_notional = float(row["maxNotional"])
                rate = float(row["maintenanceMarginRate"])
                max_leverage = float(row["maxLeverage"])
            except (KeyError, TypeError, ValueError) as error:
                raise ConfigError(
                    f"{symbol} tiers{' in ' + source if source else ''}: bracket {number} lacks "
                    f"a numeric {error} field; rows need minNotional, maxNotional, "
                    "maintenanceMarginRate and maxLeverage (ccxt's unified structure)"
                ) from None
            tiers.append(Tier(min_notional, max_notional, rate, max_leverage, 0.0))
            info = row.get("info")
            if isinstance(info, Mapping) and info.get("cum") is not None:
                stated_cums[number - 1] = float(info["cum"])
        recomputed = expected_cums(tiers)
        tiers = [
            replace(tier, cum=stated_cums.get(index, recomputed[index]))
            for index, tier in enumerate(tiers)
        ]
        return cls(symbol, exchange, effective_date, tuple(tiers), source)

    def _check_notional(self, notional: float) -> None:
        if not (math.isfinite(notional) and notional >= 0.0):
            raise ConfigError(
                f"notional {notional!r} is invalid for {self.label}; it must be a finite "
                "number >= 0 (quote currency)"
            )
        if notional > self.max_notional:
            raise ConfigError(
                f"notional {notional:,.2f} exceeds the largest bracket of {self.label} "
                f"({self.max_notional:,.0f}); allowed range is [0, {self.max_notional:,.0f}]"
            )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One tier snapshot file: exchange, effective date and path."""

    exchange: str
    effective_date: dt.date
    path: Path


def tiers_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Return the snapshot folder: ``directory``, else ``$BACKTEST_TIERS_DIR``, else bundled."""
    if directory is not None:
        return Path(directory)
    from_env = os.environ.get(TIERS_DIR_ENV)
    return Path(from_env) if from_env else DEFAULT_TIERS_DIR


def list_snapshots(
    exchange: str | None = None, *, directory: str | os.PathLike[str] | None = None
) -> list[Snapshot]:
    """Return the snapshots in the folder, oldest first (only ``exchange``'s when given)."""
    folder = tiers_dir(directory)
    snapshots = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        match = SNAPSHOT_PATTERN.match(path.name)
        if match is None or (exchange is not None and match["exchange"] != exchange):
            continue
        snapshots.append(
            Snapshot(match["exchange"], dt.date.fromisoformat(match["date"]), path.resolve())
        )
    return sorted(snapshots, key=lambda snapshot: (snapshot.exchange, snapshot.effective_date))


def select_snapshot(snapshots: Sequence[Snapshot], at: dt.date | None) -> Snapshot:
    """Pick the snapshot in force at date ``at`` from one exchange's snapshots (oldest first).

    The snapshot in force is the latest one dated on or before ``at``; with ``at=None`` it is
    the latest of all.  When ``at`` precedes every snapshot the earliest one is used: it is the
    closest known table (brackets change rarely and mostly in the lowest tiers), and refusing
    would make every backtest before the first snapshot impossible.
    """
    if at is None:
        return snapshots[-1]
    in_force = [snapshot for snapshot in snapshots if snapshot.effective_date <= at]
    return in_force[-1] if in_force else snapshots[0]


def _as_date(at: dt.date | dt.datetime | str | None) -> dt.date | None:
    if at is None:
        return None
    if isinstance(at, dt.datetime):
        if at.tzinfo is not None:
            at = at.astimezone(dt.UTC)
        return at.date()
    if isinstance(at, dt.date):
        return at
    if isinstance(at, str):
        try:
            return _as_date(dt.datetime.fromisoformat(at.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ConfigError(
        f"at={at!r} is not a date; pass a datetime.date, a datetime or an ISO date "
        "such as '2025-10-01'"
    )


def load_tiers(
    symbol: str = "BTC/USDT:USDT",
    exchange: str = "binanceusdm",
    at: dt.date | dt.datetime | str | None = None,
    *,
    directory: str | os.PathLike[str] | None = None,
) -> LeverageTiers:
    """Load the leverage tiers of ``symbol`` in force at date ``at``.

    Parameters
    ----------
    symbol : str
        ccxt symbol, e.g. ``"BTC/USDT:USDT"``.
    exchange : str
        ccxt exchange id of the snapshots, e.g. ``"binanceusdm"``.
    at : date, datetime, ISO string or None
        Date the tiers must be in force at (a backtest's start).  None picks the latest
        snapshot; a date before the first snapshot picks the earliest (see
        :func:`select_snapshot`).  Aware datetimes are converted to UTC first.
    directory : path, optional
        Snapshot folder; default ``$BACKTEST_TIERS_DIR`` or the bundled ``data/tiers``.

    Returns
    -------
    LeverageTiers
        The validated table; loads are cached, the result is immutable.

    Raises
    ------
    ConfigError
        Unknown exchange or symbol (with the available ones and close matches), a bad date,
        or an inconsistent snapshot.
    DataError
        An unreadable snapshot file.
    """
    day = _as_date(at)
    folder = tiers_dir(directory)
    snapshots = list_snapshots(exchange, directory=folder)
    if not snapshots:
        known = sorted({snapshot.exchange for snapshot in list_snapshots(directory=folder)})
        hint = _suggest(exchange, known)
        raise ConfigError(
            f"no leverage-tier snapshot for exchange {exchange!r} in {folder}{hint}; "
            f"available: {', '.join(known) or 'none'}"
        )
    snapshot = select_snapshot(snapshots, day)
    return _load_snapshot_symbol(
        str(snapshot.path), snapshot.exchange, snapshot.effective_date, symbol
    )


@functools.lru_cache(maxsize=64)
def _read_snapshot(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read tier snapshot {path}: {error}; restore the file") from None
    if not isinstance(content, dict):
        raise DataError(
            f"tier snapshot {path} is not a mapping of symbol to tiers (ccxt "
            "fetch_leverage_tiers structure); restore the file"
        )
    return content


@functools.lru_cache(maxsize=256)
def _load_snapshot_symbol(
    path: str, exchange: str, effective_date: dt.date, symbol: str
) -> LeverageTiers:
    content = _read_snapshot(path)
    rows = content.get(symbol)
    if rows is None:
        known = sorted(content)
        raise ConfigError(
            f"symbol {symbol!r} is not in the {exchange} tier snapshot of "
            f"{effective_date.isoformat()}{_suggest(symbol, known)}; available: {', '.join(known)}"
        )
    return LeverageTiers.from_ccxt(
        symbol, rows, exchange=exchange, effective_date=effective_date, source=path
    )


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
