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
import contextlib
import datetime as dt
import difflib
import functools
import gzip
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backtest import strict_json
from backtest._paths import bundled_data_dir
from backtest.errors import ConfigError, DataError

#: Folder of the bundled snapshots (``data/tiers`` in the project).
DEFAULT_TIERS_DIR = bundled_data_dir() / "tiers"
#: Environment variable that points :func:`load_tiers` at another snapshot folder.
TIERS_DIR_ENV = "BACKTEST_TIERS_DIR"
#: Snapshot file names: ``<exchange>-<YYYY-MM-DD>.json`` or ``.json.gz`` (gzip-compressed).
SNAPSHOT_PATTERN = re.compile(
    r"^(?P<exchange>[a-z0-9]+)-(?P<date>\d{4}-\d{2}-\d{2})\.json(?P<gzip>\.gz)?$"
)
#: ``format`` value of a compact snapshot (see :func:`compact_snapshot`).
COMPACT_FORMAT = "backtest-tiers-1"
#: Row layout of a compact snapshot: one list of these per bracket (``cum`` may be null).
COMPACT_COLUMNS: tuple[str, ...] = (
    "minNotional",
    "maxNotional",
    "maintenanceMarginRate",
    "maxLeverage",
    "cum",
)
#: Sub-folder of a data store that holds the tier snapshots ``download`` fetched.
STORE_TIERS_FOLDER = "tiers"

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

        ``cum`` is read from ``info["cum"]`` (Binance) or ``info["mmDeduction"]`` (Bybit's
        maintenance-margin deduction, the same quantity) when present and checked against the
        value recomputed from the brackets; when absent (OKX, Hyperliquid) it is recomputed.

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
            stated = _stated_cum(row.get("info"))
            if stated is not None:
                stated_cums[number - 1] = stated
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


def _stated_cum(info: Any) -> float | None:
    """The maintenance amount a venue states in a raw tier row, None when it states none."""
    if not isinstance(info, Mapping):
        return None
    for key in ("cum", "mmDeduction"):
        value = info.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.nan  # rejected by validate_tiers as a non-finite value
    return None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One tier snapshot file: exchange, effective date and path."""

    exchange: str
    effective_date: dt.date
    path: Path

    @property
    def name(self) -> str:
        """``<exchange> <date> (<path>)``: how reports and messages name the snapshot."""
        return f"{self.exchange} {self.effective_date.isoformat()} ({self.path})"


def tiers_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Return the snapshot folder: ``directory``, else ``$BACKTEST_TIERS_DIR``, else bundled."""
    if directory is not None:
        return Path(directory)
    from_env = os.environ.get(TIERS_DIR_ENV)
    return Path(from_env) if from_env else DEFAULT_TIERS_DIR


def store_tiers_dir(data_dir: str | os.PathLike[str]) -> Path:
    """Return the tier folder of a data store: ``<data_dir>/tiers`` (where ``download`` writes)."""
    return Path(data_dir) / STORE_TIERS_FOLDER


def list_snapshots(
    exchange: str | None = None, *, directory: str | os.PathLike[str] | None = None
) -> list[Snapshot]:
    """Return the snapshots in the folder, oldest first (only ``exchange``'s when given)."""
    folder = tiers_dir(directory)
    snapshots = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
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
    would make every backtest before the first snapshot impossible.  Among snapshots of the
    same date the first in ``snapshots`` wins (the sort is stable).
    """
    if at is None:
        latest = snapshots[-1].effective_date
        return next(snapshot for snapshot in snapshots if snapshot.effective_date == latest)
    in_force = [snapshot for snapshot in snapshots if snapshot.effective_date <= at]
    if not in_force:
        return snapshots[0]
    latest = in_force[-1].effective_date
    return next(snapshot for snapshot in in_force if snapshot.effective_date == latest)


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


def _folders(
    directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
) -> list[Path]:
    """The folders searched, in priority order (a single folder or None: one folder)."""
    if directory is None or isinstance(directory, str | os.PathLike):
        return [tiers_dir(directory)]
    folders: list[Path] = []
    for item in directory:
        folder = tiers_dir(item)
        if all(folder.resolve() != known.resolve() for known in folders):
            folders.append(folder)
    return folders


def snapshots_for(
    symbol: str,
    exchange: str = "binanceusdm",
    *,
    directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
) -> list[Snapshot]:
    """Return the snapshots that hold ``symbol``'s table, oldest first.

    ``directory`` may be one folder or several in priority order (e.g. the user's store,
    then the bundled folder); among snapshots of the same date the earlier folder's comes
    first.  Snapshots may hold different symbol sets (a download stores only the symbols it
    fetched), so the choice is made per symbol.
    """
    found: list[tuple[dt.date, int, Snapshot]] = []
    for rank, folder in enumerate(_folders(directory)):
        for snapshot in list_snapshots(exchange, directory=folder):
            if symbol in _read_snapshot(str(snapshot.path)):
                found.append((snapshot.effective_date, rank, snapshot))
    return [snapshot for _, _, snapshot in sorted(found, key=lambda item: item[:2])]


def find_snapshot(
    symbol: str = "BTC/USDT:USDT",
    exchange: str = "binanceusdm",
    at: dt.date | dt.datetime | str | None = None,
    *,
    directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
) -> Snapshot:
    """Return the snapshot :func:`load_tiers` uses for ``symbol`` at date ``at``.

    Raises
    ------
    ConfigError
        No snapshot of ``exchange`` in the folders (with the exchanges that have one), or
        none holding ``symbol`` (with close matches), or a bad date.
    DataError
        An unreadable snapshot file.
    """
    day = _as_date(at)
    folders = _folders(directory)
    where = " or ".join(str(folder) for folder in folders)
    every = [snapshot for folder in folders for snapshot in list_snapshots(directory=folder)]
    if not any(snapshot.exchange == exchange for snapshot in every):
        known = sorted({snapshot.exchange for snapshot in every})
        hint = _suggest(exchange, known)
        raise ConfigError(
            f"no leverage-tier snapshot for exchange {exchange!r} in {where}{hint}; "
            f"available: {', '.join(known) or 'none'}"
        )
    snapshots = snapshots_for(symbol, exchange, directory=folders)
    if not snapshots:
        known = sorted(
            {
                name
                for folder in folders
                for snapshot in list_snapshots(exchange, directory=folder)
                for name in _read_snapshot(str(snapshot.path))
            }
        )
        raise ConfigError(
            f"symbol {symbol!r} is not in any {exchange} tier snapshot in {where}"
            f"{_suggest(symbol, known)}; {_some(known)}"
        )
    return select_snapshot(snapshots, day)


def load_tiers(
    symbol: str = "BTC/USDT:USDT",
    exchange: str = "binanceusdm",
    at: dt.date | dt.datetime | str | None = None,
    *,
    directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
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
        :func:`select_snapshot`).  Aware datetimes are converted to UTC first.  Only
        snapshots holding ``symbol`` take part (see :func:`snapshots_for`).
    directory : path or sequence of paths, optional
        Snapshot folder, or folders in priority order (a run passes its store's ``tiers``
        folder, then the bundled one); default ``$BACKTEST_TIERS_DIR`` or the bundled
        ``data/tiers``.

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
    snapshot = find_snapshot(symbol, exchange, at, directory=directory)
    return _load_snapshot_symbol(
        str(snapshot.path), snapshot.exchange, snapshot.effective_date, symbol
    )


# --------------------------------------------------------------------------------------------
# Reading and writing snapshot files
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _read_snapshot(path: str) -> dict[str, Any]:
    """Return ``{symbol: ccxt rows}`` of a snapshot file (either format, gzip or not)."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                content = json.load(handle)
        else:
            with open(path, encoding="utf-8") as handle:
                content = json.load(handle)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = " ".join(str(error).split())[:120]
        raise DataError(
            f"cannot read tier snapshot {path}: {reason}; restore the file (or delete it if "
            "`download` wrote it, and download again)"
        ) from None
    if isinstance(content, dict) and "format" in content:
        return _expand_compact(path, content)
    if not isinstance(content, dict) or not all(
        isinstance(rows, list) for rows in content.values()
    ):
        raise DataError(
            f"tier snapshot {path} is not a mapping of symbol to tiers (ccxt "
            "fetch_leverage_tiers structure); restore the file"
        )
    return content


def _expand_compact(path: str, content: dict[str, Any]) -> dict[str, Any]:
    """The ``{symbol: ccxt rows}`` view of a compact snapshot (see :func:`compact_snapshot`)."""
    tables = content.get("tiers")
    if content.get("format") != COMPACT_FORMAT or list(content.get("columns") or ()) != list(
        COMPACT_COLUMNS
    ):
        raise DataError(
            f"tier snapshot {path} has format {content.get('format')!r} with columns "
            f"{content.get('columns')!r}; this version reads {COMPACT_FORMAT!r} with columns "
            f"{list(COMPACT_COLUMNS)}; restore the file"
        )
    if not isinstance(tables, dict):
        raise DataError(f"tier snapshot {path} has no 'tiers' mapping; restore the file")
    expanded: dict[str, Any] = {}
    for symbol, rows in tables.items():
        if not isinstance(rows, list) or not all(
            isinstance(row, list) and len(row) == len(COMPACT_COLUMNS) for row in rows
        ):
            raise DataError(
                f"tier snapshot {path}: the rows of {symbol!r} are not lists of "
                f"{len(COMPACT_COLUMNS)} values ({', '.join(COMPACT_COLUMNS)}); restore the file"
            )
        expanded[symbol] = [
            {
                "minNotional": row[0],
                "maxNotional": row[1],
                "maintenanceMarginRate": row[2],
                "maxLeverage": row[3],
                "info": {} if row[4] is None else {"cum": row[4]},
            }
            for row in rows
        ]
    return expanded


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
            f"{effective_date.isoformat()}{_suggest(symbol, known)}; {_some(known)}"
        )
    return LeverageTiers.from_ccxt(
        symbol, rows, exchange=exchange, effective_date=effective_date, source=path
    )


def _number_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def compact_snapshot(
    tables: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    exchange: str,
    effective_date: dt.date,
    source: str,
    notes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Convert ccxt ``fetch_leverage_tiers``-style tables to the compact snapshot document.

    Every table is validated first (:meth:`LeverageTiers.from_ccxt`: gaps, order, ``cum``),
    so an inconsistent table is refused before anything is written.  A row keeps the five
    :data:`COMPACT_COLUMNS`; ``cum`` is the venue's stated value (Binance ``cum``, Bybit
    ``mmDeduction``) or null when the venue states none (it is then recomputed on load).

    Parameters
    ----------
    tables : mapping
        ``{symbol: [ccxt tier rows]}``.
    exchange : str
        ccxt exchange id.
    effective_date : date
        Date the tables were recorded.
    source : str
        Where they came from (package and version, or the ccxt method and version).
    notes : mapping, optional
        Extra provenance kept in the file (e.g. OKX's contract conversion).

    Raises
    ------
    ConfigError
        For an inconsistent table (one line naming the symbol and bracket).
    """
    compact: dict[str, list[list[float | None]]] = {}
    for symbol in sorted(tables):
        rows = list(tables[symbol])
        LeverageTiers.from_ccxt(
            symbol, rows, exchange=exchange, effective_date=effective_date, source=source
        )
        compact[symbol] = [
            [
                float(row["minNotional"]),
                float(row["maxNotional"]),
                float(row["maintenanceMarginRate"]),
                float(row["maxLeverage"]),
                _number_or_none(_stated_cum(row.get("info"))),
            ]
            for row in rows
        ]
    document: dict[str, Any] = {
        "format": COMPACT_FORMAT,
        "exchange": exchange,
        "effective_date": effective_date.isoformat(),
        "source": source,
        "columns": list(COMPACT_COLUMNS),
    }
    if notes:
        document["notes"] = dict(notes)
    document["tiers"] = compact
    return document


def write_snapshot(
    folder: str | os.PathLike[str],
    tables: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    exchange: str,
    effective_date: dt.date,
    source: str,
    notes: Mapping[str, Any] | None = None,
) -> Path:
    """Write (or extend) ``<folder>/<exchange>-<date>.json.gz`` with ``tables``; return it.

    When that day's file exists, its other symbols are kept and the given ones replaced.  The
    file is written to a temporary name and moved into place atomically.

    Raises
    ------
    ConfigError
        For an inconsistent table (nothing is written).
    DataError
        When an existing file of that day cannot be read (it is left as it is).
    """
    target = Path(folder) / f"{exchange}-{effective_date.isoformat()}.json.gz"
    merged: dict[str, Any] = {}
    merged_notes: dict[str, Any] = {}
    if target.is_file():
        merged.update(_read_snapshot(str(target.resolve())))
        merged_notes.update(_read_notes(target))
    merged.update({symbol: list(rows) for symbol, rows in tables.items()})
    merged_notes.update(notes or {})
    document = compact_snapshot(
        merged,
        exchange=exchange,
        effective_date=effective_date,
        source=source,
        notes=merged_notes,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with (
            os.fdopen(handle, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        ):
            zipped.write(strict_json.dumps(document, separators=(",", ":")).encode("utf-8"))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates 0600; files get the usual mode
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _read_snapshot.cache_clear()
    _load_snapshot_symbol.cache_clear()
    return target


def _read_notes(path: Path) -> dict[str, Any]:
    """The ``notes`` of a compact snapshot (empty for other files or when unreadable)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            notes = json.load(handle).get("notes")
    except (OSError, EOFError, UnicodeDecodeError, ValueError, AttributeError):
        return {}
    return dict(notes) if isinstance(notes, dict) else {}


def _some(known: Sequence[str], limit: int = 8) -> str:
    """``available: a, b, c`` or ``907 symbols available, e.g. a, b, ...`` when there are many."""
    if len(known) <= limit:
        return f"available: {', '.join(known) or 'none'}"
    return f"{len(known)} symbols available, e.g. {', '.join(known[:limit])}"


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
