"""ccxt at the boundary: build an exchange, check what it offers, retry, translate errors.

Everything that touches ccxt directly lives here, so the rest of the package sees our own
exceptions (:mod:`backtest.errors`) with one-line messages:

* :func:`create_exchange` builds a ccxt exchange by id with ccxt's rate limiter on; an unknown id
  lists the closest ids.
* :func:`load_markets`, :func:`check_symbol`, :func:`check_timeframe` validate a request before
  anything is downloaded, with "did you mean" suggestions.
* :class:`Retrier` calls a ccxt method again after a transient failure (ccxt's ``NetworkError``
  family: timeouts, unavailable, ``DDoSProtection`` and ``RateLimitExceeded``, which in current
  ccxt is a ``NetworkError`` but not a ``DDoSProtection``) with growing waits and a bounded number
  of tries, and translates every ccxt error into :class:`backtest.errors.ExchangeError` with
  ``raise ... from``.  Permanent errors (``BadSymbol``, ``BadRequest``, ``AuthenticationError``,
  ``PermissionDenied``, ``NotSupported``, any other ``ExchangeError``) are never retried.
* :class:`VenueCapabilities` is the small per-venue table the downloader needs (page sizes,
  how far back open interest goes); venues differ in data, not in code paths.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from backtest.errors import ConfigError, ExchangeError

if TYPE_CHECKING:  # ccxt is imported lazily: it takes a while
    import ccxt

T = TypeVar("T")

#: Longest piece of an exchange's own error text kept in a message.
_DETAIL_CHARS = 180


def _ccxt() -> Any:
    import ccxt

    return ccxt


def one_line(text: object, limit: int = _DETAIL_CHARS) -> str:
    """Collapse ``text`` to a single line of at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# creating and checking an exchange
# --------------------------------------------------------------------------------------------
def create_exchange(
    exchange_id: str,
    *,
    rate_limit_ms: float | None = None,
    timeout_ms: int | None = None,
    options: dict[str, Any] | None = None,
) -> ccxt.Exchange:
    """Build a ccxt exchange for public market data, with ccxt's rate limiter on.

    Parameters
    ----------
    exchange_id : str
        A ccxt exchange id such as ``"binanceusdm"``, ``"bybit"`` or ``"okx"``.
    rate_limit_ms : float, optional
        Milliseconds between requests for ccxt's limiter (ccxt's per-venue value by default).
    timeout_ms : int, optional
        HTTP timeout per request (ccxt's default, 10 s, when omitted).
    options : dict, optional
        Extra ccxt ``options`` for the venue.

    Raises
    ------
    ConfigError
        When ccxt has no exchange of that id; the message lists the closest ids.
    """
    ccxt = _ccxt()
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id.lower(), ccxt.exchanges, n=5, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else "see `python -c 'import ccxt; print(ccxt.exchanges)'`"
        )
        raise ConfigError(f"unknown exchange {exchange_id!r}; {hint}")
    config: dict[str, Any] = {"enableRateLimit": True}
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    if timeout_ms is not None:
        config["timeout"] = timeout_ms
    if options:
        config["options"] = dict(options)
    return getattr(ccxt, exchange_id)(config)


def check_symbol(exchange: ccxt.Exchange, symbol: str) -> dict[str, Any]:
    """Return ccxt's market for ``symbol``, or fail with the closest symbols the venue lists.

    The markets must be loaded (:func:`load_markets`).  An exchange-native id such as
    ``BTCUSDT`` is recognised and answered with its unified symbol.
    """
    markets = exchange.markets or {}
    if symbol in markets:
        return markets[symbol]
    by_id = exchange.markets_by_id or {}
    native = [entry["symbol"] for entry in by_id.get(symbol, [])] if symbol in by_id else []
    if native:
        hint = f"use the ccxt unified symbol: {' or '.join(native)}"
    else:
        upper = {name.upper(): name for name in markets}
        close = [
            upper[name]
            for name in difflib.get_close_matches(symbol.upper(), list(upper), n=5, cutoff=0.6)
        ]
        base = symbol.upper().split("/")[0]
        same_base = [name for name in close if name.upper().split("/")[0] == base]
        close = same_base or close[:3]
        hint = f"did you mean {', '.join(close)}?" if close else "check the symbol's spelling"
    raise ConfigError(
        f"{exchange.id} has no market {symbol!r}; {hint} (perpetuals are written BASE/QUOTE:SETTLE)"
    )


def check_timeframe(exchange: ccxt.Exchange, timeframe: str) -> None:
    """Fail with the venue's own list when it does not serve candles of ``timeframe``."""
    timeframes = list(getattr(exchange, "timeframes", None) or {})
    if timeframes and timeframe not in timeframes:
        raise ConfigError(
            f"{exchange.id} has no {timeframe!r} candles; it offers {', '.join(timeframes)}"
        )


# --------------------------------------------------------------------------------------------
# retrying and translating errors
# --------------------------------------------------------------------------------------------
def is_transient(error: BaseException) -> bool:
    """Return True for ccxt errors worth another try (the ``NetworkError`` family)."""
    return isinstance(error, _ccxt().NetworkError)


def is_rate_limit(error: BaseException) -> bool:
    """Return True when the venue asked us to slow down (HTTP 429/418, DDoS protection)."""
    ccxt = _ccxt()
    return isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection)


def translate(error: BaseException, action: str, exchange_id: str) -> ExchangeError:
    """Turn a ccxt error into one line that says what failed, why, and what to do."""
    ccxt = _ccxt()
    kind = type(error).__name__
    detail = one_line(error)
    if isinstance(error, ccxt.BadSymbol):
        advice = "check the symbol (ccxt unified form, e.g. BTC/USDT:USDT)"
    elif isinstance(error, ccxt.AuthenticationError):
        advice = "this venue wants API keys for it; public market data needs none elsewhere"
    elif isinstance(error, ccxt.NotSupported):
        advice = "this venue does not offer it through ccxt"
    elif isinstance(error, ccxt.BadRequest):
        advice = "the venue refused the request's parameters (date range, timeframe)"
    elif isinstance(error, ccxt.NetworkError):
        advice = "the venue is unreachable or throttling; try again later"
    else:
        advice = "the venue refused the request"
    return ExchangeError(f"{exchange_id} {action} failed: {kind}: {detail}; {advice}")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    Waits grow geometrically: ``base_delay * factor ** attempt`` seconds (attempt 0, 1, ...),
    multiplied by ``rate_limit_factor`` when the venue said we were too fast, capped at
    ``max_delay``.  ``tries`` counts the first call.
    """

    tries: int = 5
    base_delay: float = 1.0
    factor: float = 2.0
    rate_limit_factor: float = 5.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.tries < 1:
            raise ConfigError(f"retry tries must be at least 1, not {self.tries}")
        if self.base_delay < 0 or self.factor < 1 or self.max_delay < 0:
            raise ConfigError("retry delays must be >= 0 and the growth factor >= 1")

    def delay(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        seconds = self.base_delay * self.factor**attempt
        if is_rate_limit(error):
            seconds *= self.rate_limit_factor
        return min(seconds, self.max_delay)


class Retrier:
    """Call ccxt methods with bounded retries on transient errors and translated failures.

    Parameters
    ----------
    exchange_id : str
        Used in messages.
    policy : RetryPolicy, optional
        Tries and waits.
    sleep : callable, optional
        Waits the given seconds; :func:`time.sleep` by default (tests pass a recorder).
    on_retry : callable, optional
        Told ``(action, attempt, error, delay)`` before each wait (for a log line).
    """

    def __init__(
        self,
        exchange_id: str,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str, int, BaseException, float], None] | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.on_retry = on_retry
        self.retries = 0

    def call(self, action: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Return ``function(*args, **kwargs)``, retrying transient ccxt errors.

        Raises
        ------
        backtest.errors.ExchangeError
            At once for a permanent ccxt error; after ``policy.tries`` transient ones.
        """
        ccxt = _ccxt()
        for attempt in range(self.policy.tries):
            try:
                return function(*args, **kwargs)
            except ccxt.BaseError as error:
                if not is_transient(error):
                    raise translate(error, action, self.exchange_id) from error
                if attempt + 1 >= self.policy.tries:
                    failure = translate(error, action, self.exchange_id)
                    raise ExchangeError(
                        f"{failure} (gave up after {self.policy.tries} tries)"
                    ) from error
                delay = self.policy.delay(attempt, error)
                self.retries += 1
                if self.on_retry is not None:
                    self.on_retry(action, attempt, error, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def load_markets(exchange: ccxt.Exchange, retrier: Retrier | None = None) -> dict[str, Any]:
    """Load the venue's markets (retried, errors translated)."""
    retrier = retrier or Retrier(exchange.id)
    return retrier.call("loading markets", exchange.load_markets)


# --------------------------------------------------------------------------------------------
# per-venue capabilities
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VenueCapabilities:
    """What the downloader needs to know about a venue beyond ``exchange.has``.

    Attributes
    ----------
    ohlcv_limit, mark_limit : int
        Candles per request (ccxt's ``features`` table supplies them when it knows).
    funding_limit : int
        Funding settlements per request.
    funding_min_interval_ms : int
        The shortest settlement interval the venue uses; a request window spans
        ``funding_limit`` of them so no window can hold more rows than one page returns.
    open_interest_limit : int
        Open-interest points per request.
    open_interest_days : int or None
        How far back the venue serves open-interest history (None: no stated limit).
    funding_end_param : str
        Request parameter that ends a funding-history window (ccxt's unified ``until`` unless
        the venue's ccxt method passes only its native one through).
    end_exclusive : bool
        Whether the venue's window end excludes its own timestamp (ccxt maps ``until`` to
        OKX's ``after``, "records earlier than"); the downloader then passes the end + 1 ms.
    """

    ohlcv_limit: int = 500
    mark_limit: int = 500
    funding_limit: int = 200
    funding_min_interval_ms: int = 3_600_000
    open_interest_limit: int = 200
    open_interest_days: int | None = None
    funding_end_param: str = "until"
    end_exclusive: bool = False


#: Venue overrides of the defaults (by ccxt id).  Sources: Binance USDⓈ-M "Open Interest
#: Statistics" serves the latest 30 days and up to 500 rows; funding history up to 1000 rows.
#: Bybit v5 funding history up to 200 rows, open interest up to 200.  OKX v5 funding history up
#: to 400 rows (100 by default), rubik open-interest statistics up to 100; OKX windows end
#: with ``after`` ("records earlier than", exclusive), which ccxt's okx fetchOHLCV fills from
#: ``until`` and fetchFundingRateHistory only takes as itself.
VENUE_CAPABILITIES: dict[str, dict[str, Any]] = {
    "binance": {"funding_limit": 1000, "open_interest_limit": 500, "open_interest_days": 30},
    "binanceusdm": {"funding_limit": 1000, "open_interest_limit": 500, "open_interest_days": 30},
    "binancecoinm": {"funding_limit": 1000, "open_interest_limit": 500, "open_interest_days": 30},
    "bybit": {"funding_limit": 200, "open_interest_limit": 200},
    "okx": {
        "funding_limit": 100,
        "open_interest_limit": 100,
        "funding_end_param": "after",
        "end_exclusive": True,
    },
}


def capabilities(exchange: ccxt.Exchange, market: dict[str, Any]) -> VenueCapabilities:
    """Return the venue's capabilities for one market (ccxt ``features`` + our overrides)."""
    base = VenueCapabilities()
    features = getattr(exchange, "features", None) or {}
    kind = market.get("type") or "spot"
    section = features.get(kind) or {}
    if kind in ("swap", "future"):
        section = section.get("linear" if market.get("linear") else "inverse") or {}
    ohlcv = section.get("fetchOHLCV") or {}
    limit = ohlcv.get("limit") if isinstance(ohlcv, dict) else None
    if isinstance(limit, int) and limit > 0:
        mark = ohlcv.get("mark")
        base = replace(
            base,
            ohlcv_limit=limit,
            mark_limit=mark if isinstance(mark, int) and mark > 0 else limit,
        )
    overrides = VENUE_CAPABILITIES.get(exchange.id, {})
    return replace(base, **overrides) if overrides else base
