"""Download market history through ccxt's unified methods into the Parquet store.

For each symbol the downloader fetches, where the venue offers them (``exchange.has``):

========== ================================== ==============================================
series     ccxt method                        stored as
========== ================================== ==============================================
candles    ``fetch_ohlcv``                    ``<SYMBOL>-<tf>.parquet``
mark       ``fetch_mark_ohlcv`` (or           ``<SYMBOL>-<tf>-mark.parquet``
           ``fetch_ohlcv`` with price=mark)
funding    ``fetch_funding_rate_history``     ``<SYMBOL>-funding.parquet``
open int.  ``fetch_open_interest_history``    ``<SYMBOL>-<tf>-oi.parquet``
========== ================================== ==============================================

Pagination is by timestamp: each request asks for one window ``[since, since + limit·step)``
(``limit`` is the venue's page size, ``step`` the timeframe; for funding the shortest settlement
interval), so no window can hold more rows than one page returns, whatever order the venue
sorts them in.  The next window starts one step after the last row received (after the window
when it was empty: an exchange-side gap), never at ``since + rows·step``.  The candle that is
still forming is dropped.  Pages are merged (sorted, de-duplicated) into the stored file every
few pages and at the end with an atomic replace, so an interrupted download keeps every page
it wrote and the next run continues after the last stored row.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from backtest.errors import ConfigError, ExchangeError
from backtest.market import store
from backtest.market.exchange import (
    Retrier,
    RetryPolicy,
    VenueCapabilities,
    capabilities,
    check_symbol,
    check_timeframe,
    create_exchange,
    load_markets,
)
from backtest.market.timeframes import format_ms, now_ms, parse_time, timeframe_to_ms

if TYPE_CHECKING:
    import ccxt

#: Series in download order, with the label used in messages.
SERIES_LABELS: dict[str, str] = {
    "ohlcv": "candles",
    "mark": "mark",
    "funding": "funding",
    "open_interest": "open interest",
}

#: ``exchange.has`` key each series needs (mark also works through fetchOHLCV price=mark).
_REQUIRED_METHOD: dict[str, str] = {
    "ohlcv": "fetchOHLCV",
    "mark": "fetchMarkOHLCV",
    "funding": "fetchFundingRateHistory",
    "open_interest": "fetchOpenInterestHistory",
}

_DAY_MS = 86_400_000


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass
class SeriesResult:
    """What one series download did."""

    exchange: str
    symbol: str
    series: str
    timeframe: str
    path: Path
    rows_added: int = 0
    rows_stored: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    pages: int = 0
    gaps: list[store.Gap] = field(default_factory=list)
    note: str = ""

    def describe(self) -> str:
        """Return one line for the console."""
        label = SERIES_LABELS[self.series]
        timeframe = f" {self.timeframe}" if self.series != "funding" else ""
        head = f"{self.exchange} {self.symbol}{timeframe} {label}"
        if self.note and not self.rows_stored:
            return f"{head}: {self.note}"
        text = (
            f"{head}: +{self.rows_added} rows, {self.rows_stored} stored "
            f"({format_ms(self.first_ms)} .. {format_ms(self.last_ms)} UTC) in {self.path}"
        )
        if self.gaps:
            shown = ", ".join(str(gap) for gap in self.gaps[:3])
            more = f" and {len(self.gaps) - 3} more" if len(self.gaps) > 3 else ""
            text += (
                f"; {len(self.gaps)} gap(s) in the exchange's own data, left as served: "
                f"{shown}{more}"
            )
        if self.note:
            text += f"; {self.note}"
        return text


# --------------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------------
class _Progress:
    """A tqdm bar over a time span, advanced as windows complete (silent when disabled)."""

    def __init__(self, enabled: bool, description: str, start_ms: int, end_ms: int, step_ms: int):
        self.bar = None
        self.step_ms = step_ms
        self.done = 0
        if enabled:
            from tqdm.auto import tqdm

            total = max(1, math.ceil((end_ms - start_ms) / step_ms))
            self.bar = tqdm(
                total=total,
                desc=description,
                unit="step",
                leave=False,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}",
            )

    def advance(self, to_step: int, rows: int) -> None:
        if self.bar is None:
            return
        delta = min(to_step, self.bar.total) - self.done
        if delta > 0:
            self.bar.update(delta)
            self.done += delta
        self.bar.set_postfix_str(f"{rows} rows", refresh=False)

    def finish(self, rows: int) -> None:
        if self.bar is not None:
            self.advance(self.bar.total, rows)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------------------------
# the downloader
# --------------------------------------------------------------------------------------------
def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class Downloader:
    """Fetch series of one ccxt exchange into a store folder.

    Parameters
    ----------
    exchange : ccxt.Exchange
        With markets loaded (:func:`backtest.market.exchange.load_markets`).
    data_dir : path-like
        The store root; files go to ``<data_dir>/<exchange id>/``.
    retry_policy : RetryPolicy, optional
        Tries and waits for transient errors.
    sleep : callable, optional
        Waits between retries (tests pass a recorder; ccxt's own rate limiter is separate).
    clock : callable, optional
        Returns "now" in epoch ms: candles opening later than ``now - timeframe`` are still
        forming and are not stored.
    progress : bool
        Show a tqdm bar per symbol and series (on standard error).
    flush_pages, flush_seconds : int, float
        Write fetched pages to the store after this many pages or seconds, whichever first.
    log : callable, optional
        Receives one-line notices (retries, skipped series); standard error by default.
    """

    def __init__(
        self,
        exchange: ccxt.Exchange,
        data_dir: str | os.PathLike[str],
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], int] = now_ms,
        progress: bool = False,
        flush_pages: int = 20,
        flush_seconds: float = 5.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.exchange = exchange
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.progress = progress
        self.flush_pages = max(1, int(flush_pages))
        self.flush_seconds = flush_seconds
        self.log = log or (lambda line: print(line, file=sys.stderr))
        self.retrier = Retrier(exchange.id, retry_policy, sleep=sleep, on_retry=self._report_retry)

    def _report_retry(self, action: str, attempt: int, error: BaseException, delay: float) -> None:
        self.log(
            f"{self.exchange.id}: {action}: {type(error).__name__}, "
            f"trying again in {delay:.1f} s (retry {attempt + 1})"
        )

    # -- what can be fetched ------------------------------------------------------------------
    def available_series(self, market: dict[str, Any]) -> list[str]:
        """Return the series this venue offers for ``market`` (perpetual extras only on swaps)."""
        has = self.exchange.has
        series = ["ohlcv"]
        if market.get("contract"):
            if has.get("fetchMarkOHLCV") or has.get("fetchOHLCV"):
                series.append("mark")
            if has.get("fetchFundingRateHistory") and market.get("swap"):
                series.append("funding")
            if has.get("fetchOpenInterestHistory"):
                series.append("open_interest")
        return series

    # -- one page of each series ---------------------------------------------------------------
    def _page(
        self,
        series: str,
        market: dict[str, Any],
        timeframe: str,
        since_ms: int,
        limit: int,
        end_ms: int | None,
    ) -> list[list[float]]:
        exchange = self.exchange
        symbol = market["symbol"]
        caps = capabilities(exchange, market)
        params: dict[str, Any] = {}
        if end_ms is not None:
            end = end_ms + 1 if caps.end_exclusive else end_ms
            params = {caps.funding_end_param if series == "funding" else "until": end}
        if series == "ohlcv":
            rows = exchange.fetch_ohlcv(symbol, timeframe, since_ms, limit, params)
            return [
                [row[0], *(_number(value) for value in row[1:6])]
                for row in rows or []
                if row and row[0] is not None and len(row) >= 6
            ]
        if series == "mark":
            if exchange.has.get("fetchMarkOHLCV"):
                rows = exchange.fetch_mark_ohlcv(symbol, timeframe, since_ms, limit, params)
            else:
                rows = exchange.fetch_ohlcv(
                    symbol, timeframe, since_ms, limit, {**params, "price": "mark"}
                )
            return [
                [row[0], *(_number(value) for value in row[1:5])]
                for row in rows or []
                if row and row[0] is not None and len(row) >= 5
            ]
        if series == "funding":
            entries = exchange.fetch_funding_rate_history(symbol, since_ms, limit, params)
            return [
                [entry["timestamp"], _number(entry.get("fundingRate"))]
                for entry in entries or []
                if entry.get("timestamp") is not None
            ]
        if series == "open_interest":
            entries = exchange.fetch_open_interest_history(
                symbol, timeframe, since_ms, limit, params
            )
            return [
                [
                    entry["timestamp"],
                    _number(entry.get("openInterestAmount")),
                    _number(entry.get("openInterestValue")),
                ]
                for entry in entries or []
                if entry.get("timestamp") is not None
            ]
        raise ValueError(f"unknown series {series!r}")

    # -- one series ----------------------------------------------------------------------------
    def download_series(
        self,
        market: dict[str, Any],
        series: str,
        timeframe: str,
        *,
        since_ms: int | None,
        until_ms: int | None,
        fallback_start_ms: int | None = None,
    ) -> SeriesResult:
        """Bring one stored series up to ``[since_ms, until_ms)`` and return what was done.

        Only what the store lacks is fetched: the part before the first stored row when
        ``since_ms`` is earlier, and everything after the last stored row up to ``until_ms``
        (or now).  Both are fetched from the stored edge, so the file never gets a hole.
        """
        symbol = market["symbol"]
        caps = capabilities(self.exchange, market)
        path = store.series_path(
            self.data_dir,
            self.exchange.id,
            symbol,
            series,
            None if series == "funding" else timeframe,
        )
        result = SeriesResult(self.exchange.id, symbol, series, timeframe, path)
        stored = (
            store.read_series(
                path,
                series,
                exchange=self.exchange.id,
                symbol=symbol,
                timeframe=None if series == "funding" else timeframe,
            )
            if path.is_file()
            else store.empty_series(series)
        )
        if stored.attrs.get("scope"):
            # imported by `backtest import` (e.g. CoinGlass all-exchange open interest): the
            # venue's own rows are not mixed into it
            result.note = (
                f"{path} holds an imported series ({stored.attrs['scope']}); left as it is: "
                "move it away to download this venue's own"
            )
            return result
        step_ms, limit, resume_ms = _paging(series, timeframe, caps)
        now = self.clock()
        # candles opening after now - timeframe are still forming; settlements are never future
        forming = series in ("ohlcv", "mark")
        end_ms = now - timeframe_to_ms(timeframe) + 1 if forming else now + 1
        if until_ms is not None:
            end_ms = min(end_ms, until_ms)
        start_ms = since_ms
        if start_ms is None:
            start_ms = fallback_start_ms
        if series == "open_interest" and caps.open_interest_days is not None:
            horizon = now - caps.open_interest_days * _DAY_MS + step_ms
            if start_ms is None or start_ms < horizon:
                start_ms = horizon

        times = stored[store.TIMESTAMP].to_numpy(dtype=np.int64)
        ranges: list[tuple[int, int]] = []
        if times.size == 0:
            if start_ms is None:
                raise ConfigError(
                    f"nothing stored yet for {symbol} {SERIES_LABELS[series]} on "
                    f"{self.exchange.id}; give --since (e.g. --since 2026-01-01)"
                )
            if start_ms < end_ms:
                ranges.append((start_ms, end_ms))
        else:
            if start_ms is not None and start_ms < times[0]:
                ranges.append((start_ms, int(times[0])))
            tail = int(times[-1]) + resume_ms
            if tail < end_ms:
                ranges.append((tail, end_ms))

        before = len(stored)
        label = f"{symbol} {SERIES_LABELS[series]}"
        for first, last in ranges:
            stored = self._fetch_range(
                market, series, timeframe, first, last, step_ms, limit, path, stored, label, result
            )
        if series in ("ohlcv", "mark", "open_interest"):
            result.gaps = _gaps_in(stored, ranges, timeframe_to_ms(timeframe))
        result.rows_added = len(stored) - before
        result.rows_stored = len(stored)
        if len(stored):
            result.first_ms = int(stored[store.TIMESTAMP].iloc[0])
            result.last_ms = int(stored[store.TIMESTAMP].iloc[-1])
        if not ranges and len(stored):
            result.note = "already up to date"
        elif not ranges:
            result.note = "nothing to fetch in the requested range"
        elif result.rows_stored == 0:
            result.note = f"the venue returned nothing for {_span(ranges)}"
        return result

    def _fetch_range(
        self,
        market: dict[str, Any],
        series: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        limit: int,
        path: Path,
        stored: pd.DataFrame,
        label: str,
        result: SeriesResult,
    ) -> pd.DataFrame:
        columns = [store.TIMESTAMP, *store.SERIES_COLUMNS[series]]
        caps_seek = series in ("ohlcv", "mark") and _seeks_forward(self.exchange)
        pending: list[list[list[float]]] = []
        last_flush = time.monotonic()
        progress = _Progress(self.progress, label, start_ms, end_ms, step_ms)
        fetched_rows = 0
        since = start_ms
        action = f"fetching {label}"

        def flush() -> None:
            nonlocal stored, pending, last_flush
            if pending:
                rows = [row for page in pending for row in page]
                fresh = pd.DataFrame(rows, columns=columns).astype(
                    {name: np.float64 for name in columns[1:]}
                )
                fresh[store.TIMESTAMP] = fresh[store.TIMESTAMP].astype(np.int64)
                stored = store.merge_series(stored, fresh)
                store.write_series(
                    path,
                    stored,
                    series=series,
                    exchange=self.exchange.id,
                    symbol=market["symbol"],
                    timeframe=None if series == "funding" else timeframe,
                    source=f"ccxt {_ccxt_version()} {self.exchange.id}",
                )
                pending = []
            last_flush = time.monotonic()

        try:
            while since < end_ms:
                window_end = min(since + limit * step_ms - 1, end_ms - 1)
                rows = self.retrier.call(
                    action, self._page, series, market, timeframe, since, limit, window_end
                )
                rows = _clean(rows, since, end_ms)
                if not rows:
                    # ask once more before taking an empty window as a gap of the venue's; a
                    # venue that seeks forward from `since` answers with the next rows at once
                    # (skipping a long empty stretch such as the time before listing)
                    again = self.retrier.call(
                        action,
                        self._page,
                        series,
                        market,
                        timeframe,
                        since,
                        limit,
                        None if caps_seek else window_end,
                    )
                    rows = _clean(again, since, end_ms)
                # A page that starts after `since` has a hole at its head: an exchange gap, or
                # a venue that answers newest-first and returned fewer rows than asked (its cap
                # is below our page size).  Ask for the head until it comes back empty.
                while rows and rows[0][0] > since:
                    head = _clean(
                        self.retrier.call(
                            action,
                            self._page,
                            series,
                            market,
                            timeframe,
                            since,
                            limit,
                            int(rows[0][0]) - 1,
                        ),
                        since,
                        int(rows[0][0]),
                    )
                    if not head:
                        break
                    rows = head + rows
                result.pages += 1
                if rows:
                    next_since = int(rows[-1][0]) + _resume_step(series, step_ms)
                    pending.append(rows)
                    fetched_rows += len(rows)
                else:
                    next_since = window_end + 1
                since = max(next_since, since + 1)
                progress.advance((min(since, end_ms) - start_ms) // step_ms, fetched_rows)
                if (
                    len(pending) >= self.flush_pages
                    or time.monotonic() - last_flush >= self.flush_seconds
                ):
                    flush()
            progress.finish(fetched_rows)
        except ExchangeError as error:
            if not fetched_rows:
                raise
            raise ExchangeError(
                f"{error}; the {fetched_rows} rows received before are saved, run the same "
                "command again to continue"
            ) from error.__cause__
        finally:
            # whatever happens (an error, Ctrl-C), keep the whole pages already received
            flush()
            progress.close()
        return stored

    # -- several symbols ------------------------------------------------------------------------
    def download(
        self,
        symbols: Sequence[str],
        timeframe: str,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        series: Iterable[str] | None = None,
        on_result: Callable[[SeriesResult], None] | None = None,
    ) -> list[SeriesResult]:
        """Download every requested series of every symbol; return one result per series.

        Series the venue does not offer for a market are left out; a venue refusing the
        optional open-interest series is reported and skipped rather than ending the download.
        """
        wanted = list(series) if series is not None else list(SERIES_LABELS)
        results: list[SeriesResult] = []
        for symbol in symbols:
            market = check_symbol(self.exchange, symbol)
            offered = self.available_series(market)
            candles_first: int | None = None
            for name in wanted:
                if name not in offered:
                    continue
                try:
                    result = self.download_series(
                        market,
                        name,
                        timeframe,
                        since_ms=since_ms,
                        until_ms=until_ms,
                        fallback_start_ms=candles_first,
                    )
                except ExchangeError as error:
                    if name != "open_interest":  # only the optional series is forgiven
                        raise
                    path = store.series_path(
                        self.data_dir, self.exchange.id, symbol, name, timeframe
                    )
                    result = SeriesResult(
                        self.exchange.id,
                        symbol,
                        name,
                        timeframe,
                        path,
                        note=f"skipped: {error}",
                    )
                if name == "ohlcv":
                    candles_first = result.first_ms
                results.append(result)
                if on_result is not None:
                    on_result(result)
        return results


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _ccxt_version() -> str:
    import ccxt

    return str(ccxt.__version__)


def _seeks_forward(exchange: Any) -> bool:
    """Whether a candle request with only ``since`` returns the oldest candles after it."""
    return exchange.id in ("binance", "binanceusdm", "binancecoinm")


def _paging(series: str, timeframe: str, caps: VenueCapabilities) -> tuple[int, int, int]:
    """Return (window step, page size, resume step) in ms / rows for one series."""
    if series == "funding":
        return caps.funding_min_interval_ms, caps.funding_limit, 1
    step = timeframe_to_ms(timeframe)
    if series == "mark":
        return step, caps.mark_limit, step
    if series == "open_interest":
        return step, caps.open_interest_limit, step
    return step, caps.ohlcv_limit, step


def _resume_step(series: str, step_ms: int) -> int:
    return 1 if series == "funding" else step_ms


def _clean(rows: list[list[float]], since_ms: int, end_ms: int) -> list[list[float]]:
    """Keep rows inside ``[since_ms, end_ms)``, sorted by time, one per timestamp (last wins)."""
    unique: dict[int, list[float]] = {}
    for row in rows:
        timestamp = int(row[0])
        if since_ms <= timestamp < end_ms:
            unique[timestamp] = [timestamp, *row[1:]]
    return [unique[key] for key in sorted(unique)]


def _gaps_in(stored: pd.DataFrame, ranges: list[tuple[int, int]], step_ms: int) -> list[store.Gap]:
    times = stored[store.TIMESTAMP].to_numpy(dtype=np.int64)
    gaps = store.find_gaps(times, step_ms)
    return [
        gap
        for gap in gaps
        if any(gap.before_ms >= first and gap.after_ms < last for first, last in ranges)
    ]


def _span(ranges: list[tuple[int, int]]) -> str:
    return f"{format_ms(ranges[0][0])} .. {format_ms(ranges[-1][1])} UTC"


# --------------------------------------------------------------------------------------------
# the whole job, as the command runs it
# --------------------------------------------------------------------------------------------
def check_writable(data_dir: str | os.PathLike[str], exchange_id: str) -> Path:
    """Check that ``<data_dir>/<exchange_id>`` can be written, leaving nothing behind.

    Folders created for the test are removed again; the download creates them when it first
    writes a file.  The probe file is named by the program's temporary pattern
    (:func:`backtest.folders.temporary_path`), and temporaries of killed processes in the
    folder are removed first (:func:`backtest.folders.clean_temporaries`).

    Raises
    ------
    ConfigError
        Naming the folder and the reason.
    """
    folder = Path(data_dir) / exchange_id
    created: list[Path] = []
    try:
        missing = [parent for parent in (folder, *folder.parents) if not parent.exists()]
        for parent in reversed(missing):
            parent.mkdir()
            created.append(parent)
        from backtest.folders import clean_temporaries, temporary_path

        clean_temporaries(folder)  # probes and writes that killed downloads left behind
        probe = temporary_path(folder / "write-test", file=True)  # the program's temp naming
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        with contextlib.suppress(OSError):
            probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(
            f"cannot write to the data folder {folder} ({reason}); "
            "pick a writable folder with --data-dir"
        ) from error
    finally:
        for parent in reversed(created):
            with contextlib.suppress(OSError):
                parent.rmdir()
    return folder


def validate_range(
    since: object, until: object, *, clock: Callable[[], int] = now_ms
) -> tuple[int | None, int | None]:
    """Parse ``--since``/``--until`` and check the range makes sense (past, ordered)."""
    since_ms = parse_time(since, "--since")
    until_ms = parse_time(until, "--until")
    now = clock()
    if since_ms is not None and since_ms >= now:
        raise ConfigError(f"--since {format_ms(since_ms)} is in the future; pick a past date")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise ConfigError(
            f"--since {format_ms(since_ms)} is not before --until {format_ms(until_ms)}; swap them"
        )
    return since_ms, until_ms


def download(
    exchange_id: str,
    symbols: Sequence[str],
    timeframe: str,
    *,
    since: object = None,
    until: object = None,
    data_dir: str | os.PathLike[str] | None = None,
    series: Iterable[str] | None = None,
    exchange: ccxt.Exchange | None = None,
    rate_limit_ms: float | None = None,
    retry_policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], int] = now_ms,
    progress: bool = False,
    flush_pages: int = 20,
    on_result: Callable[[SeriesResult], None] | None = None,
    log: Callable[[str], None] | None = None,
    tiers: bool = True,
    on_tiers: Callable[[Any], None] | None = None,
) -> list[SeriesResult]:
    """Validate a download request, then fetch it into the store.

    Everything the user typed is checked before the first byte is written: the exchange id,
    the dates, the data folder, the markets (loaded once), every symbol and the timeframe.

    Parameters
    ----------
    exchange_id : str
        ccxt exchange id.
    symbols : sequence of str
        ccxt unified symbols.
    timeframe : str
        Candle timeframe the venue offers.
    since, until : str, datetime or int, optional
        Range (UTC); ``until`` exclusive, now when omitted.  ``since`` may be omitted when the
        store already holds the series (the download then continues after it).
    data_dir : path-like, optional
        Store root (``$BACKTEST_DATA`` or ``./data`` by default).
    series : iterable of str, optional
        Subset of ``ohlcv``, ``mark``, ``funding``, ``open_interest`` (all by default).
    exchange : ccxt.Exchange, optional
        A ready exchange object (tests pass one whose HTTP layer serves recorded responses).
    rate_limit_ms : float, optional
        Milliseconds between requests for ccxt's rate limiter (the venue's default if omitted).
    retry_policy, sleep, clock, progress, flush_pages, log
        See :class:`Downloader`.
    on_result : callable, optional
        Called with each :class:`SeriesResult` as soon as its series is done.
    tiers : bool
        Also store today's leverage-tier snapshot where the venue serves it without a key
        (:func:`backtest.market.tier_download.download_tiers`), after the series.
    on_tiers : callable, optional
        Called with the tier step's :class:`~backtest.market.tier_download.TierResult`.
    """
    timeframe_to_ms(timeframe)
    if not symbols:
        raise ConfigError("no symbol given; add --symbol BTC/USDT:USDT (repeat for more)")
    wanted = list(series) if series is not None else None
    for name in wanted or []:
        if name not in SERIES_LABELS:
            raise ConfigError(f"unknown series {name!r}; choose from {', '.join(SERIES_LABELS)}")
    since_ms, until_ms = validate_range(since, until, clock=clock)
    if exchange is None:
        exchange = create_exchange(exchange_id, rate_limit_ms=rate_limit_ms)
    root = Path(data_dir) if data_dir is not None else store.default_data_dir()
    check_writable(root, exchange.id)
    say = log or (lambda line: print(line, file=sys.stderr))

    def report_retry(action: str, attempt: int, error: BaseException, delay: float) -> None:
        say(
            f"{exchange.id}: {action}: {type(error).__name__}, "
            f"trying again in {delay:.1f} s (retry {attempt + 1})"
        )

    # Loading the markets and the tiers retries too: say so while it waits.
    retrier = Retrier(exchange.id, retry_policy, sleep=sleep, on_retry=report_retry)
    load_markets(exchange, retrier)
    for symbol in symbols:
        check_symbol(exchange, symbol)
    check_timeframe(exchange, timeframe)
    downloader = Downloader(
        exchange,
        root,
        retry_policy=retry_policy,
        sleep=sleep,
        clock=clock,
        progress=progress,
        flush_pages=flush_pages,
        log=log,
    )
    results = downloader.download(
        symbols,
        timeframe,
        since_ms=since_ms,
        until_ms=until_ms,
        series=wanted,
        on_result=on_result,
    )
    if tiers:
        from backtest.market.tier_download import download_tiers

        tier_result = download_tiers(exchange, symbols, root, retrier=retrier, clock=clock)
        if on_tiers is not None:
            on_tiers(tier_result)
    return results
