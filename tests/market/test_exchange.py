"""The ccxt boundary: exchange factory, symbol/timeframe checks, retries, error translation."""

from __future__ import annotations

import ccxt
import pytest
import recorded_venues as rv

from backtest.errors import ConfigError, ExchangeError
from backtest.market.exchange import (
    Retrier,
    RetryPolicy,
    capabilities,
    check_symbol,
    check_timeframe,
    create_exchange,
)


def test_factory_keeps_the_rate_limiter_on():
    exchange = create_exchange("binanceusdm")
    assert exchange.enableRateLimit is True
    assert exchange.rateLimit > 0
    tuned = create_exchange("okx", rate_limit_ms=250, timeout_ms=5000)
    assert (tuned.enableRateLimit, tuned.rateLimit, tuned.timeout) == (True, 250, 5000)


def test_unknown_exchange_lists_close_ids():
    with pytest.raises(ConfigError) as caught:
        create_exchange("binanceusd")
    message = str(caught.value)
    assert message.startswith("unknown exchange 'binanceusd'; did you mean ")
    assert "binanceusdm" in message and "binanceus" in message


@pytest.fixture(scope="module")
def binance():
    exchange, _ = rv.offline_exchange(rv.binance_usdm_venue())
    exchange.load_markets()
    return exchange


def test_symbol_checks_suggest_close_symbols(binance):
    assert check_symbol(binance, "BTC/USDT:USDT")["id"] == "BTCUSDT"
    with pytest.raises(ConfigError, match=r"no market 'BTC/USDT:USD'; did you mean BTC/USDT:USDT"):
        check_symbol(binance, "BTC/USDT:USD")
    with pytest.raises(ConfigError, match=r"did you mean ETH/USDT:USDT"):
        check_symbol(binance, "eth/usdt:usdt")
    with pytest.raises(ConfigError, match=r"'BTCUSDT'; use the ccxt unified symbol: BTC/USDT:USDT"):
        check_symbol(binance, "BTCUSDT")
    with pytest.raises(ConfigError, match="check the symbol's spelling"):
        check_symbol(binance, "NOPE/XYZ")


def test_timeframe_check_lists_the_venues_timeframes(binance):
    check_timeframe(binance, "5m")
    bybit = create_exchange("bybit")
    with pytest.raises(ConfigError) as caught:
        check_timeframe(bybit, "8h")
    assert str(caught.value) == (
        "bybit has no '8h' candles; it offers 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 1d, 1w, 1M"
    )


def test_capabilities_from_ccxt_features_and_overrides(binance):
    caps = capabilities(binance, binance.market("BTC/USDT:USDT"))
    assert caps.ohlcv_limit == binance.features["swap"]["linear"]["fetchOHLCV"]["limit"]
    assert caps.funding_limit == 1000 and caps.open_interest_days == 30
    okx = create_exchange("okx")
    okx_caps = capabilities(okx, {"type": "swap", "linear": True})
    assert (okx_caps.ohlcv_limit, okx_caps.mark_limit, okx_caps.end_exclusive) == (300, 100, True)


# ---------------------------------------------------------------------------------------------
# retrying
# ---------------------------------------------------------------------------------------------
class Flaky:
    """Raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.mark.parametrize(
    "error",
    [
        ccxt.RequestTimeout("timed out"),
        ccxt.ExchangeNotAvailable("502"),
        ccxt.DDoSProtection("418"),
        ccxt.RateLimitExceeded("429"),
        ccxt.NetworkError("reset"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_errors_are_retried(error):
    sleeps: list[float] = []
    flaky = Flaky(error, error)
    assert Retrier("x", sleep=sleeps.append).call("fetching", flaky) == "ok"
    assert flaky.calls == 3
    slow = isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
    assert sleeps == ([5.0, 10.0] if slow else [1.0, 2.0])


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (ccxt.BadSymbol("binanceusdm does not have market X"), "check the symbol"),
        (ccxt.BadRequest("-1130 invalid startTime"), "refused the request's parameters"),
        (ccxt.AuthenticationError("API-key format invalid"), "wants API keys"),
        (ccxt.PermissionDenied("not allowed"), "wants API keys"),
        (ccxt.NotSupported("fetchMarkOHLCV"), "does not offer it"),
        (ccxt.ExchangeError("something\nelse"), "the venue refused the request"),
        (ccxt.BadResponse("<html>"), "the venue refused the request"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_permanent_errors_fail_at_once_in_one_line(error, advice):
    sleeps: list[float] = []
    flaky = Flaky(error)
    with pytest.raises(ExchangeError) as caught:
        Retrier("binanceusdm", sleep=sleeps.append).call("fetching BTC candles", flaky)
    message = str(caught.value)
    assert flaky.calls == 1 and sleeps == []
    assert message.startswith(f"binanceusdm fetching BTC candles failed: {type(error).__name__}: ")
    assert advice in message and "\n" not in message
    assert caught.value.__cause__ is error


def test_bounded_tries_then_a_clear_error():
    sleeps: list[float] = []
    flaky = Flaky(*[ccxt.RequestTimeout("timed out")] * 10)
    policy = RetryPolicy(tries=4, base_delay=0.5, factor=3.0, max_delay=3.0)
    with pytest.raises(ExchangeError, match=r"RequestTimeout: timed out; .* after 4 tries\)$"):
        Retrier("okx", policy, sleep=sleeps.append).call("loading markets", flaky)
    assert flaky.calls == 4
    assert sleeps == [0.5, 1.5, 3.0]  # grows, capped at max_delay


def test_interrupts_pass_through_untouched():
    flaky = Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        Retrier("x", sleep=lambda s: None).call("fetching", flaky)
    assert flaky.calls == 1


def test_long_exchange_messages_are_cut():
    flaky = Flaky(ccxt.ExchangeError("x" * 5000))
    with pytest.raises(ExchangeError) as caught:
        Retrier("x").call("fetching", flaky)
    assert len(str(caught.value)) < 300


def test_policy_validation():
    with pytest.raises(ConfigError, match="at least 1"):
        RetryPolicy(tries=0)
    with pytest.raises(ConfigError, match="growth factor"):
        RetryPolicy(factor=0.5)
