"""The sweep's output folder: one line per finished run, the ranked table, resume.

Layout of ``--out DIR``::

    sweep.json        what was swept (base settings, axes, walk-forward, ranking)
    runs.jsonl        one JSON object per finished run (complete or failed), appended as runs end
    results.csv       every run: parameters, metrics, status and error, ranked
    results.parquet   the same table
    walkforward.csv   per window: train/test dates, the chosen parameters and their metrics
    oos_equity.csv    the stitched out-of-sample equity of a walk-forward
    sweep.html        the sweep page
    reports/          full reports of the best runs (``--reports-top K``)

Each run is identified by :func:`run_key`, a stable hash of its complete settings, so a sweep
started again with the same folder skips every run already in ``runs.jsonl`` whatever the
order or the rest of the grid.  A line is written with one ``write`` call and flushed to disk
before the next run is recorded; a line cut short by a crash is dropped when the folder is
opened again (that run is simply redone).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.errors import ConfigError
from backtest.folders import (
    SWEEP,
    atomic_target,
    check_writable_target,
    clean_temporaries,
    marker_kind,
    write_atomic,
    write_marker,
)
from backtest.strict_json import dumps

RECORDS_FILE = "runs.jsonl"
MANIFEST_FILE = "sweep.json"
TABLE_STEM = "results"
LOCK_FILE = ".lock"
COMPLETE, FAILED = "complete", "failed"


def canonical_json(value: Any) -> str:
    """Serialise settings the same way every time (sorted keys, floats by ``repr``)."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), default=str)


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # NumPy scalars
        return _canonical(value.item())
    return value


def run_key(settings: Mapping[str, Any]) -> str:
    """Return the stable identity of a run: 16 hex digits of SHA-256 of its settings."""
    return hashlib.sha256(canonical_json(settings).encode("utf-8")).hexdigest()[:16]


@dataclass
class RunRecord:
    """What one run produced, as stored in ``runs.jsonl``.

    Attributes
    ----------
    key : str
        :func:`run_key` of ``settings``.
    status : str
        ``"complete"`` or ``"failed"``.
    error : str or None
        One line (exception type and message) when failed.
    metrics : dict
        The run's metrics (empty when failed).
    seconds : float
        Wall time of the run on its worker, data loading included.
    worker : str
        ``host:pid`` of the process that ran it.
    settings : dict
        The complete run settings.
    equity : dict or None
        ``{"time_ms": [...], "value": [...]}`` when the equity curve was asked for (the test
        windows of a walk-forward).
    engine : str
        ``"event"`` or ``"array"`` (see :mod:`backtest.sweep.engines`); empty when failed.
    """

    key: str
    status: str
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    worker: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    equity: dict[str, list[Any]] | None = None
    engine: str = ""

    @property
    def complete(self) -> bool:
        """Whether the run finished."""
        return self.status == COMPLETE

    def to_json(self) -> str:
        """One line of ``runs.jsonl``."""
        return dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """Parse one line of ``runs.jsonl`` (raises ValueError/TypeError/KeyError if damaged)."""
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("not an object")
        known = {name: document[name] for name in cls.__dataclass_fields__ if name in document}
        record = cls(**known)
        if record.status not in (COMPLETE, FAILED) or not isinstance(record.key, str):
            raise ValueError("not a run record")
        return record

    def equity_series(self) -> pd.Series:
        """The stored equity curve as a Series indexed by UTC time (empty when not stored)."""
        if not self.equity:
            return pd.Series(dtype="float64", name="value")
        index = pd.to_datetime(self.equity["time_ms"], unit="ms", utc=True)
        return pd.Series(self.equity["value"], index=index, dtype="float64", name="value")


class SweepStore:
    """The output folder of one sweep (see the module docstring).

    Parameters
    ----------
    folder : path-like
        Created when missing.  An existing folder must be empty or a sweep folder this
        program wrote (marked ``.backtest-run``, or holding ``sweep.json`` or ``runs.jsonl``
        from before markers existed); anything else is refused so that no user file is
        overwritten.  Opening it takes a lock, so two sweeps cannot write one folder.

    Raises
    ------
    ConfigError
        When the folder may not be used or cannot be created.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        legacy = any((self.folder / name).is_file() for name in (MANIFEST_FILE, RECORDS_FILE))
        if marker_kind(self.folder) is not None or not legacy:
            check_writable_target(self.folder, (SWEEP,), "--out")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_marker(self.folder, SWEEP)
        except OSError as error:
            raise ConfigError(
                f"cannot create the sweep folder {self.folder}: {error.strerror or error}; "
                "pass --out DIR with a writable folder"
            ) from error
        self._lock_handle: Any = None
        self.records: dict[str, RunRecord] = {}
        self.dropped_lines = 0

    # -- lifetime ---------------------------------------------------------------------------
    def __enter__(self) -> SweepStore:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        """Lock the folder, remove what killed sweeps left and read the recorded runs."""
        self._lock()
        clean_temporaries(self.folder)
        clean_temporaries(self.folder / "reports")
        self.records = dict(self._read_records())

    def close(self) -> None:
        """Release the folder's lock."""
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def _lock(self) -> None:
        handle = (self.folder / LOCK_FILE).open("a+")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            self._lock_handle = handle
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigError(
                f"another sweep is writing to {self.folder}; wait for it or pass another --out"
            ) from None
        self._lock_handle = handle

    # -- records ----------------------------------------------------------------------------
    @property
    def records_path(self) -> Path:
        """``runs.jsonl``."""
        return self.folder / RECORDS_FILE

    def _read_records(self) -> Iterator[tuple[str, RunRecord]]:
        path = self.records_path
        if not path.is_file():
            return
        raw = path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):  # a line cut short by a crash: drop it before appending again
            with path.open("r+b") as handle:
                handle.truncate(end)
            self.dropped_lines += 1
        for line in raw[:end].decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = RunRecord.from_json(line)
            except (ValueError, TypeError, KeyError):
                self.dropped_lines += 1
                continue
            yield record.key, record

    def completed(self, key: str) -> RunRecord | None:
        """The recorded outcome of run ``key`` when it finished (failed runs are redone)."""
        record = self.records.get(key)
        return record if record is not None and record.complete else None

    def append(self, record: RunRecord) -> None:
        """Record a finished run: one line, written in one call and flushed to disk."""
        data = (record.to_json() + "\n").encode("utf-8")
        descriptor = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self.records[record.key] = record

    # -- documents --------------------------------------------------------------------------
    def write_manifest(self, manifest: Mapping[str, Any]) -> Path:
        """Write ``sweep.json``."""
        return write_text_atomic(self.folder / MANIFEST_FILE, dumps(manifest, indent=2))

    def write_table(self, frame: pd.DataFrame, stem: str = TABLE_STEM) -> tuple[Path, Path]:
        """Write ``<stem>.csv`` and ``<stem>.parquet`` (each atomically)."""
        csv_path = self.folder / f"{stem}.csv"
        parquet_path = self.folder / f"{stem}.parquet"
        write_text_atomic(csv_path, frame.to_csv(index=False))
        with atomic_target(parquet_path) as temporary:
            _parquet_ready(frame).to_parquet(temporary, index=False)
        return csv_path, parquet_path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``."""
    return write_atomic(path, text)


def _parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Make object columns Parquet-friendly: numbers stay numbers, any mix becomes text."""
    ready = frame.copy()
    for column in ready.columns:
        series = ready[column]
        if series.dtype != object:
            continue
        kinds = {type(item) for item in series if not _missing(item)}
        if kinds and all(issubclass(kind, int | float) for kind in kinds):
            ready[column] = pd.to_numeric(series, errors="coerce")
        elif kinds and not kinds <= {str}:
            ready[column] = series.map(lambda item: None if _missing(item) else str(item))
    return ready


def _missing(item: Any) -> bool:
    if item is None:
        return True
    with contextlib.suppress(TypeError, ValueError):
        return bool(pd.isna(item))
    return False
