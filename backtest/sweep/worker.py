"""What runs inside a Dask worker: the per-process market cache and one run of a sweep.

Each worker process keeps the markets it has loaded in :data:`_MARKETS`, keyed by
``(exchange, symbol, timeframe, data_dir)``: the whole stored history is loaded once, and every
run slices its own ``since``/``until`` out of it (the same bars, funding placement and
``attrs`` as :func:`backtest.market.store.load_market` would give for that range).  A portfolio
run (several symbols) gets one cached market per symbol and a mapping of frames.  A worker
with ``threads_per_worker=1`` runs one task at a time, so a plain dict is enough; a lock keeps
it correct when a worker has more threads.

:func:`perform` never raises for a failing run: the error becomes one line in the returned
:class:`~backtest.sweep.store.RunRecord`, so one bad combination cannot stop a sweep.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backtest.sweep.backends import Backend
from backtest.sweep.store import COMPLETE, FAILED, RunRecord

MarketKey = tuple[str, str, str, str | None]

_MARKETS: dict[MarketKey, pd.DataFrame] = {}
_LOADS: Counter[MarketKey] = Counter()
_LOCK = threading.Lock()
#: The array path's liquidation-map lines, kept across the runs of this process
#: (a :class:`backtest.arrays.LinesCache` that :func:`backtest.arrays.run_arrays` fills: runs
#: with the same market, map settings and dates share the map); created on first use.
_LINES_CACHE: list[Any] = []
#: Map line sets the worker keeps (a year of 5m bars is about 8 MB each).
LINES_CACHE_SIZE = 8


class _OncePerProcess(logging.Filter):
    """Let each distinct message through once per process.

    A sweep repeats the same run setup many times: a shortened map warm-up is worth one line,
    not one per run.
    """

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self._seen:
            return False
        self._seen.add(message)
        return True


logging.getLogger("backtest.warmup").addFilter(_OncePerProcess())


@dataclass(frozen=True)
class RunTask:
    """One run to do: its complete settings, their key and whether to return the equity.

    ``priority`` orders the runs on the cluster (higher first); it is not part of the run.
    """

    key: str
    settings: dict[str, Any]
    keep_equity: bool = False
    priority: int = 0


def portfolio_symbols(settings: Mapping[str, Any]) -> list[str] | None:
    """The symbols of a portfolio run (a list, or text separated by commas); None for one."""
    symbol = settings.get("symbol")
    if isinstance(symbol, str):
        symbol = [part.strip() for part in symbol.split(",") if part.strip()]
    if isinstance(symbol, list | tuple) and len(symbol) > 1:
        return [str(item) for item in symbol]
    return None


def _single(settings: Mapping[str, Any], symbol: str) -> dict[str, Any]:
    return {**settings, "symbol": symbol}


def market_key(settings: Mapping[str, Any]) -> MarketKey:
    """The cache key of the market a run trades (a portfolio's symbols joined by commas)."""
    data_dir = settings.get("data_dir")
    symbols = portfolio_symbols(settings)
    symbol = settings.get("symbol") or "BTC/USDT:USDT"
    if isinstance(symbol, list | tuple):
        symbol = symbol[0] if len(symbol) == 1 else ",".join(symbols or ())
    return (
        str(settings.get("exchange") or "binanceusdm"),
        str(symbol),
        str(settings.get("timeframe") or "5m"),
        None if data_dir is None else str(data_dir),
    )


def full_market(key: MarketKey) -> pd.DataFrame:
    """The whole stored history of a market, loaded at most once per process."""
    with _LOCK:
        frame = _MARKETS.get(key)
        if frame is None:
            from backtest.market.store import load_market

            exchange, symbol, timeframe, data_dir = key
            frame = load_market(symbol, timeframe, exchange=exchange, data_dir=data_dir)
            _MARKETS[key] = frame
            _LOADS[key] += 1
        return frame


def market_for(
    settings: Mapping[str, Any], *, warmup: bool = False
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """The bars of a run: the cached history cut to ``[since, until)``.

    A portfolio run gets ``{symbol: frame}``, each symbol cut from its own cached history.

    With ``warmup=True`` the cut starts at ``since`` minus the liquidation map's warm-up (the
    run's ``warmup`` setting or the rule of
    :func:`backtest.liquidation.warmup.warmup_duration`): the bars before ``since`` are the
    ones the engine runs the map over without trading them (:func:`with_warmup`).

    Falls back to :func:`~backtest.market.store.load_market` for the range itself when the
    cached history holds no bar in it (its error names what is stored and how to download).
    """
    from backtest.market.timeframes import parse_time

    symbols = portfolio_symbols(settings)
    if symbols is not None:
        return {symbol: market_for(_single(settings, symbol), warmup=warmup) for symbol in symbols}
    key = market_key(settings)
    frame = full_market(key)
    since_ms = parse_time(settings.get("since"), "since")
    if warmup and since_ms is not None:
        since_ms -= _warmup_ms(settings, key[2])
    until_ms = parse_time(settings.get("until"), "until")
    if since_ms is None and until_ms is None:
        return frame
    bar_ms = epoch_ms(frame.index)
    start = 0 if since_ms is None else int(np.searchsorted(bar_ms, since_ms, side="left"))
    stop = bar_ms.size if until_ms is None else int(np.searchsorted(bar_ms, until_ms, "left"))
    if stop <= start:
        from backtest.market.store import load_market

        exchange, symbol, timeframe, data_dir = key
        return load_market(
            symbol,
            timeframe,
            exchange=exchange,
            since=since_ms,
            until=until_ms,
            data_dir=data_dir,
        )
    piece = frame.iloc[start:stop]
    piece.attrs = dict(frame.attrs)
    piece.attrs["funding_times"] = _funding_times_within(frame, bar_ms, start, stop)
    return piece


def with_warmup(settings: Mapping[str, Any], frame: Any) -> Any:
    """``frame`` (a run's bars from ``since``) preceded by the map's warm-up bars.

    A portfolio's mapping of frames gets each symbol's own warm-up.

    The warm-up comes from the cached history (:func:`market_for` with ``warmup=True``); the
    engine (:func:`backtest.engine.run`) runs the map over the bars before ``since`` and
    trades from ``since``.  ``frame`` itself when it is empty or there is nothing before it.
    """
    from backtest.engine.warmup import join_warmup

    if isinstance(frame, Mapping):
        return {
            symbol: with_warmup(_single(settings, symbol), part) for symbol, part in frame.items()
        }
    if len(frame) == 0 or settings.get("since") is None:
        return frame
    history = market_for(settings, warmup=True)
    if len(history) >= len(frame) and history.index[-1] == frame.index[-1]:
        # one slice of the cached history from the warm-up's start, as `backtest run` loads
        # it (the engine's split_warmup gives the traded bars their own funding times)
        return history
    prefix = history.iloc[: int(history.index.searchsorted(frame.index[0], side="left"))]
    return join_warmup(prefix, frame) if len(prefix) else frame


def _warmup_ms(settings: Mapping[str, Any], timeframe: str) -> int:
    """The run's map warm-up in milliseconds."""
    from backtest.liquidation.warmup import resolve_warmup

    span = resolve_warmup(settings.get("warmup"), dict(settings.get("map_params") or {}), timeframe)
    return int(span / pd.Timedelta(milliseconds=1))


def _funding_times_within(
    frame: pd.DataFrame, bar_ms: np.ndarray, start: int, stop: int
) -> np.ndarray:
    """Settlements whose bar (the first at or after them, to the second) lies in the slice."""
    settlements = np.asarray(frame.attrs.get("funding_times", ()), dtype=np.int64)
    if settlements.size == 0:
        return settlements
    bars = np.searchsorted(bar_ms, settlements - settlements % 1000, side="left")
    return settlements[(bars >= start) & (bars < stop)]


def epoch_ms(index: Any) -> np.ndarray:
    """UTC epoch milliseconds of a DatetimeIndex, whatever its unit."""
    return pd.DatetimeIndex(index).as_unit("ms").asi8


def load_counts() -> dict[str, int]:
    """How many times this process loaded each market (for checks and tests)."""
    return {"|".join(str(part) for part in key): count for key, count in _LOADS.items()}


def lines_cache() -> Any:
    """Return the process's cache of map lines for the array path (one per worker process)."""
    with _LOCK:
        if not _LINES_CACHE:
            from backtest.arrays import LinesCache

            _LINES_CACHE.append(LinesCache(maxsize=LINES_CACHE_SIZE))
        return _LINES_CACHE[0]


def clear_cache() -> None:
    """Forget the cached markets and map lines (e.g. after the store was updated)."""
    with _LOCK:
        _MARKETS.clear()
        _LOADS.clear()
        _LINES_CACHE.clear()


def identity() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def one_line(error: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    message = text[0] if text else ""
    name = type(error).__name__
    return f"{name}: {message}" if message else name


def perform(task: RunTask, backend: Backend) -> RunRecord:
    """Run one backtest of a sweep and measure it; failures are returned, not raised."""
    started = time.perf_counter()
    try:
        frame = market_for(task.settings)
        results = backend.run(task.settings, frame)
        metrics = dict(backend.metrics(results))
        equity = _equity_of(results) if task.keep_equity else None
        engine = str((getattr(results, "meta", None) or {}).get("engine") or "event")
    except Exception as error:  # a failing run is data for the table, not the end of the sweep
        return RunRecord(
            key=task.key,
            status=FAILED,
            error=one_line(error),
            seconds=time.perf_counter() - started,
            worker=identity(),
            settings=task.settings,
        )
    return RunRecord(
        key=task.key,
        status=COMPLETE,
        metrics=metrics,
        seconds=time.perf_counter() - started,
        worker=identity(),
        settings=task.settings,
        equity=equity,
        engine=engine,
    )


def perform_chunk(tasks: Sequence[RunTask], backend: Backend) -> list[RunRecord]:
    """:func:`perform` each task in turn (one Dask task for several short runs)."""
    return [perform(task, backend) for task in tasks]


#: Set while a best run is run again for its report: the array path then also builds the map's
#: heatmap table, which the report draws (a sweep's own runs leave it out).
FULL_RESULTS: contextvars.ContextVar[bool] = contextvars.ContextVar("full_results", default=False)


def full_results(task: RunTask, backend: Backend) -> Any:
    """Run one backtest and return its complete Results (for the best runs' reports)."""
    token = FULL_RESULTS.set(True)
    try:
        return backend.run(task.settings, market_for(task.settings))
    finally:
        FULL_RESULTS.reset(token)


def market_span(settings: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(first bar open, last bar open, bar length)`` in epoch ms of a run's traded range.

    A portfolio's range is the one all its symbols cover (the latest first bar, the earliest
    last bar).
    """
    from backtest.market.timeframes import timeframe_to_ms

    market = market_for(settings)
    frames = list(market.values()) if isinstance(market, Mapping) else [market]
    first = max(int(epoch_ms(frame.index)[0]) for frame in frames)
    last = min(int(epoch_ms(frame.index)[-1]) for frame in frames)
    return first, last, timeframe_to_ms(market_key(settings)[2])


def _equity_of(results: Any) -> dict[str, list[Any]]:
    equity = getattr(results, "equity", None)
    if equity is None or len(equity) == 0 or "value" not in equity:
        return {"time_ms": [], "value": []}
    return {
        "time_ms": epoch_ms(equity.index).tolist(),
        "value": equity["value"].astype("float64").tolist(),
    }
