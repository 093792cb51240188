"""Downloads through ccxt's own request, pagination and parsing code, served offline.

Every exchange here is a real ccxt object; only its HTTP transport is replaced by
``recorded_venues.RecordedHTTP``, which answers in each venue's raw JSON shape from real
Binance data and injects failures at that layer.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import recorded_venues as rv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.errors import ExchangeError
from backtest.market import store
from backtest.market.download import download
from backtest.market.exchange import RetryPolicy

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
NOW = 1760225400000  # 2025-10-11 23:30 UTC: the 23:30 5m candle is still forming
SINCE = "2025-10-09"
FIVE = 5 * rv.MINUTE


def run(
    venue,
    data_dir,
    *,
    symbols=(BTC,),
    timeframe="5m",
    since=SINCE,
    until=None,
    series=("ohlcv", "funding"),
    now=NOW,
    page=200,
    flush_pages=20,
    policy=None,
):
    exchange, http = rv.offline_exchange(venue, ohlcv=page)
    sleeps: list[float] = []
    results = download(
        venue.exchange_id,
        list(symbols),
        timeframe,
        since=since,
        until=until,
        data_dir=data_dir,
        series=series,
        exchange=exchange,
        clock=lambda: now,
        sleep=sleeps.append,
        flush_pages=flush_pages,
        retry_policy=policy,
        log=lambda line: None,
    )
    return results, http, sleeps


def stored(data_dir, exchange_id, series="ohlcv", timeframe="5m", symbol=BTC) -> pd.DataFrame:
    path = store.series_path(data_dir, exchange_id, symbol, series, timeframe)
    return store.read_series(path, series)


def real(rows, low, high) -> np.ndarray:
    """Fixture rows with open time in [low, high) as floats (the truth to compare with)."""
    values = [row for row in rv.as_floats(rows) if low <= row[0] < high]
    return np.array(values, dtype=float)


def start_ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1_000_000)


def venue_with_btc(cls):
    return cls(
        candles={("BTCUSDT", "5m"): rv.candles_5m(), ("BTCUSDT", "1h"): rv.candles_1h()},
        mark={("BTCUSDT", "1h"): rv.mark_1h()},
        funding={"BTCUSDT": rv.funding()},
    )


VENUES = [rv.BinanceUsdm, rv.Bybit, rv.Okx]


# ---------------------------------------------------------------------------------------------
# the recorded layer reproduces ccxt's own recorded test expectations
# ---------------------------------------------------------------------------------------------
STATIC = json.loads((rv.FIXTURES / "ccxt_static_response_binance_subset.json").read_text())


class FixedKlines(rv.BinanceSpot):
    def __init__(self, body: list) -> None:
        super().__init__()
        self.body = body

    def respond(self, path, query, transform):
        if path.endswith("Klines") or path.endswith("klines"):
            return 200, self.body
        return super().respond(path, query, transform)


@pytest.mark.parametrize("case", STATIC["methods"]["fetchOHLCV"], ids=lambda c: c["description"])
def test_recorded_binance_responses_parse_to_ccxts_expected_output(case):
    venue = FixedKlines(case["httpResponse"])
    exchange, http = rv.offline_exchange(venue)
    symbol, timeframe, since, limit, *rest = [*case["input"], {}][:5]
    parsed = exchange.fetch_ohlcv(symbol, timeframe, since, limit, rest[0] if rest else {})
    assert parsed == case["parsedResponse"]
    request = http.requests[-1]
    assert request.query["interval"] == timeframe and request.query["limit"] == str(limit)
    if since is not None:
        assert request.query["startTime"] == str(since)
    market = exchange.market(symbol)
    expected_path = {
        "spot": "/api/v3/klines",
        "swap": "/fapi/v1/klines" if market["linear"] else "/dapi/v1/indexPriceKlines",
    }[market["type"]]
    assert request.path == expected_path


# ---------------------------------------------------------------------------------------------
# complete downloads on three venues
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("venue_class", VENUES, ids=lambda c: c.exchange_id)
def test_paginated_candles_equal_the_real_rows(tmp_path, venue_class):
    results, _, sleeps = run(venue_with_btc(venue_class), tmp_path)
    candles = stored(tmp_path, venue_class.exchange_id)
    truth = real(rv.candles_5m(), start_ms(SINCE), NOW - FIVE + 1)
    np.testing.assert_array_equal(candles.to_numpy(), truth)
    # the candle opening at "now" is still forming: served by the venue, never stored
    assert candles["timestamp_ms"].iloc[-1] == NOW - FIVE
    assert any(int(row[0]) == NOW for row in rv.candles_5m())
    assert results[0].pages >= 4 and results[0].gaps == [] and sleeps == []
    funding = stored(tmp_path, venue_class.exchange_id, "funding", None)
    np.testing.assert_array_equal(funding.to_numpy(), real(rv.funding(), start_ms(SINCE), NOW + 1))


def test_binance_pages_follow_the_last_candle(tmp_path):
    _, http, _ = run(venue_with_btc(rv.BinanceUsdm), tmp_path, series=("ohlcv",))
    pages = http.calls("/fapi/v1/klines")
    starts = [int(page.query["startTime"]) for page in pages]
    assert starts[0] == start_ms(SINCE)
    assert all(b - a == 200 * FIVE for a, b in itertools.pairwise(starts))
    for page in pages:  # each window holds at most one page of candles
        assert int(page.query["endTime"]) - int(page.query["startTime"]) < 200 * FIVE
        assert page.query["limit"] == "200"


@pytest.mark.parametrize("venue_class", VENUES, ids=lambda c: c.exchange_id)
def test_mark_and_funding_join_in_load_market(tmp_path, venue_class):
    run(venue_with_btc(venue_class), tmp_path, timeframe="1h", series=None)
    frame = store.load_market(
        BTC, "1h", exchange=venue_class.exchange_id, data_dir=tmp_path, since=SINCE
    )
    assert len(frame) == 71  # 2025-10-09 00:00 .. 10-11 22:00; 23:00 is forming at 23:30
    truth_mark = real(rv.mark_1h(), start_ms(SINCE), NOW - 3_600_000 + 1)
    np.testing.assert_array_equal(frame["mark_close"].to_numpy(), truth_mark[:, 4])
    np.testing.assert_array_equal(frame["close"].to_numpy(), real(rv.candles_1h(), 0, NOW)[:71, 4])
    settled = frame["funding_rate"].dropna()
    assert len(settled) == 9
    np.testing.assert_array_equal(
        settled.to_numpy(), real(rv.funding(), start_ms(SINCE), NOW)[:, 1]
    )


def test_three_venues_store_identical_frames(tmp_path):
    frames = []
    for venue_class in VENUES:
        run(venue_with_btc(venue_class), tmp_path, timeframe="1h", series=None)
        frames.append(
            store.load_market(BTC, "1h", exchange=venue_class.exchange_id, data_dir=tmp_path)
        )
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(
            frame[list(store.MARKET_COLUMNS)],
            frames[0][list(store.MARKET_COLUMNS)],
            check_exact=False,
            rtol=1e-12,
        )


def test_two_symbols_in_one_run(tmp_path):
    venue = rv.binance_usdm_venue()
    results, _, _ = run(
        venue,
        tmp_path,
        symbols=(BTC, ETH),
        series=("ohlcv",),
        since="2025-10-10",
        until="2025-10-11",
    )
    assert [(r.symbol, r.rows_added) for r in results] == [(BTC, 288), (ETH, 288)]
    eth = stored(tmp_path, "binanceusdm", symbol=ETH)
    np.testing.assert_array_equal(eth.to_numpy(), real(rv.eth_5m(), 0, 2**62))


# ---------------------------------------------------------------------------------------------
# failures injected at the HTTP layer
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def clean(tmp_path_factory):
    """The file a clean Binance download produces (the reference for every recovery test)."""
    folder = tmp_path_factory.mktemp("clean")
    run(venue_with_btc(rv.BinanceUsdm), folder, series=("ohlcv",))
    return pq.read_table(store.series_path(folder, "binanceusdm", BTC, "ohlcv", "5m"))


def final_table(data_dir):
    return pq.read_table(store.series_path(data_dir, "binanceusdm", BTC, "ohlcv", "5m"))


def test_timeout_then_success_is_retried(tmp_path, clean):
    venue = venue_with_btc(rv.BinanceUsdm)
    exchange, http = rv.offline_exchange(venue, ohlcv=200)
    http.fail("timeout", "/fapi/v1/klines", skip=1)
    sleeps: list[float] = []
    download(
        "binanceusdm",
        [BTC],
        "5m",
        since=SINCE,
        data_dir=tmp_path,
        series=["ohlcv"],
        exchange=exchange,
        clock=lambda: NOW,
        sleep=sleeps.append,
        log=lambda _: None,
    )
    assert sleeps == [1.0]
    starts = [page.query["startTime"] for page in http.calls("/fapi/v1/klines")]
    assert starts[1] == starts[2]  # the timed-out page was asked again
    assert final_table(tmp_path).equals(clean)


@pytest.mark.parametrize(
    ("venue_class", "error"),
    [
        (rv.BinanceUsdm, "DDoSProtection"),
        (rv.Bybit, "RateLimitExceeded"),
        (rv.Okx, "RateLimitExceeded"),
    ],
    ids=["binanceusdm", "bybit", "okx"],
)
def test_rate_limit_backs_off_with_growing_waits(tmp_path, venue_class, error):
    venue = venue_with_btc(venue_class)
    exchange, http = rv.offline_exchange(venue, ohlcv=200)
    http.fail("429", "kline" if venue_class is not rv.Okx else "candles", skip=2, times=3)
    sleeps: list[float] = []
    notices: list[str] = []
    download(
        venue.exchange_id,
        [BTC],
        "5m",
        since=SINCE,
        data_dir=tmp_path,
        series=["ohlcv"],
        exchange=exchange,
        clock=lambda: NOW,
        sleep=sleeps.append,
        log=notices.append,
    )
    assert sleeps == [5.0, 10.0, 20.0]  # 1, 2, 4 s, five times longer for rate limits
    assert len(notices) == 3 and all(f": {error}, trying again" in line for line in notices)
    candles = stored(tmp_path, venue.exchange_id)
    np.testing.assert_array_equal(candles.to_numpy(), real(rv.candles_5m(), start_ms(SINCE), NOW))


def test_retries_are_bounded_and_pages_before_are_kept(tmp_path, clean):
    venue = venue_with_btc(rv.BinanceUsdm)
    exchange, http = rv.offline_exchange(venue, ohlcv=200)
    http.fail("timeout", "/fapi/v1/klines", skip=2, times=99)
    sleeps: list[float] = []
    with pytest.raises(ExchangeError) as caught:
        download(
            "binanceusdm",
            [BTC],
            "5m",
            since=SINCE,
            data_dir=tmp_path,
            series=["ohlcv"],
            exchange=exchange,
            clock=lambda: NOW,
            sleep=sleeps.append,
            flush_pages=1,
            retry_policy=RetryPolicy(tries=3),
            log=lambda _: None,
        )
    message = str(caught.value)
    assert "RequestTimeout" in message and "gave up after 3 tries" in message
    assert message.endswith(
        "the 400 rows received before are saved, run the same command again to continue"
    )
    assert "\n" not in message
    assert sleeps == [1.0, 2.0]
    kept = final_table(tmp_path)
    assert kept.num_rows == 400 and kept.equals(clean.slice(0, 400))


@pytest.mark.parametrize(
    "venue_class", [rv.BinanceUsdm, rv.Bybit, rv.Okx], ids=lambda c: c.exchange_id
)
def test_refused_symbol_is_not_retried(tmp_path, venue_class):
    venue = venue_with_btc(venue_class)
    exchange, http = rv.offline_exchange(venue)
    http.fail("refuse", "kline" if venue_class is not rv.Okx else "candles", times=5)
    sleeps: list[float] = []
    with pytest.raises(ExchangeError) as caught:
        download(
            venue.exchange_id,
            [BTC],
            "5m",
            since=SINCE,
            data_dir=tmp_path,
            series=["ohlcv"],
            exchange=exchange,
            clock=lambda: NOW,
            sleep=sleeps.append,
        )
    message = str(caught.value)
    assert message.startswith(f"{venue.exchange_id} fetching BTC/USDT:USDT candles failed: Bad")
    assert "\n" not in message
    assert sleeps == []
    candle_calls = [r for r in http.requests if "kline" in r.path or "candles" in r.path]
    assert len(candle_calls) == 1
    assert not list(tmp_path.rglob("*.parquet"))


@pytest.mark.parametrize("venue_class", VENUES, ids=lambda c: c.exchange_id)
def test_empty_page_is_asked_again_and_leaves_no_hole(tmp_path, venue_class):
    venue = venue_with_btc(venue_class)
    exchange, http = rv.offline_exchange(venue, ohlcv=200)
    http.fail("empty", "kline" if venue_class is not rv.Okx else "candles", skip=2)
    results = download(
        venue.exchange_id,
        [BTC],
        "5m",
        since=SINCE,
        data_dir=tmp_path,
        series=["ohlcv"],
        exchange=exchange,
        clock=lambda: NOW,
    )
    assert results[0].gaps == []
    candles = stored(tmp_path, venue.exchange_id)
    np.testing.assert_array_equal(candles.to_numpy(), real(rv.candles_5m(), start_ms(SINCE), NOW))


@pytest.mark.parametrize("venue_class", VENUES, ids=lambda c: c.exchange_id)
def test_out_of_order_and_repeated_rows_are_sorted_and_deduplicated(tmp_path, venue_class):
    venue = venue_with_btc(venue_class)
    exchange, http = rv.offline_exchange(venue, ohlcv=200)
    http.fail("shuffle", "kline" if venue_class is not rv.Okx else "candles", times=3)
    http.fail("shuffle", "funding", times=3)
    download(
        venue.exchange_id,
        [BTC],
        "5m",
        since=SINCE,
        data_dir=tmp_path,
        series=["ohlcv", "funding"],
        exchange=exchange,
        clock=lambda: NOW,
    )
    candles = stored(tmp_path, venue.exchange_id)
    np.testing.assert_array_equal(candles.to_numpy(), real(rv.candles_5m(), start_ms(SINCE), NOW))
    funding = stored(tmp_path, venue.exchange_id, "funding", None)
    np.testing.assert_array_equal(funding.to_numpy(), real(rv.funding(), start_ms(SINCE), NOW))


def test_gap_of_the_exchange_is_reported_not_filled(tmp_path):
    venue = rv.BinanceSpot(candles={("BTCUSDT", "1h"): rv.spot_1h_with_outage()})
    exchange, _ = rv.offline_exchange(venue)
    results = download(
        "binance",
        ["BTC/USDT"],
        "1h",
        since="2021-08-12",
        until="2021-08-15",
        data_dir=tmp_path,
        exchange=exchange,
        clock=lambda: NOW,
    )
    assert [r.series for r in results] == ["ohlcv"]  # spot: no mark, funding or OI
    candles = stored(tmp_path, "binance", symbol="BTC/USDT", timeframe="1h")
    np.testing.assert_array_equal(candles.to_numpy(), real(rv.spot_1h_with_outage(), 0, 2**62))
    (gap,) = results[0].gaps
    assert (gap.after_ms, gap.before_ms, gap.missing_bars) == (
        start_ms("2021-08-13 01:00"),
        start_ms("2021-08-13 06:00"),
        4,
    )
    assert (
        "1 gap(s) in the exchange's own data, left as served: 2021-08-13 01:00 -> "
        "2021-08-13 06:00 (4)" in results[0].describe()
    )


# ---------------------------------------------------------------------------------------------
# interruption and resumption
# ---------------------------------------------------------------------------------------------
def test_interrupted_download_keeps_whole_pages_and_resumes_exactly(tmp_path, clean):
    venue = venue_with_btc(rv.BinanceUsdm)
    exchange, http = rv.offline_exchange(venue, ohlcv=200)
    http.fail("interrupt", "/fapi/v1/klines", skip=2)
    with pytest.raises(rv.Killed):
        download(
            "binanceusdm",
            [BTC],
            "5m",
            since=SINCE,
            data_dir=tmp_path,
            series=["ohlcv"],
            exchange=exchange,
            clock=lambda: NOW,
            flush_pages=1,
        )
    partial = final_table(tmp_path)
    assert partial.equals(clean.slice(0, 400))
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "BTC_USDT_USDT-5m.parquet",
        "binanceusdm",
    ]
    results, http, _ = run(venue_with_btc(rv.BinanceUsdm), tmp_path, series=("ohlcv",))
    first = http.calls("/fapi/v1/klines")[0]
    assert int(first.query["startTime"]) == start_ms(SINCE) + 400 * FIVE
    assert results[0].rows_added == clean.num_rows - 400
    assert final_table(tmp_path).equals(clean)


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    import recorded_venues as rv
    from backtest.market.download import download
    venue = rv.BinanceUsdm(candles={{("BTCUSDT", "5m"): rv.candles_5m()}})
    exchange, http = rv.offline_exchange(venue, ohlcv=200)
    http.fail("kill", "/fapi/v1/klines", skip=3)
    download("binanceusdm", ["BTC/USDT:USDT"], "5m", since="2025-10-09", data_dir={data!r},
             series=["ohlcv"], exchange=exchange, clock=lambda: {now}, flush_pages=1)
    """
)


def test_hard_kill_mid_download_then_resume_is_exact(tmp_path, clean):
    script = KILL_SCRIPT.format(here=str(Path(rv.__file__).parent), data=str(tmp_path), now=NOW)
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert finished.returncode == -signal.SIGKILL, finished.stderr.decode()[-500:]
    partial = final_table(tmp_path)
    assert partial.equals(clean.slice(0, 600))  # three pages written, nothing half-written
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    run(venue_with_btc(rv.BinanceUsdm), tmp_path, series=("ohlcv",))
    assert final_table(tmp_path).equals(clean)


def test_second_download_continues_after_the_last_stored_row(tmp_path, clean):
    earlier = start_ms("2025-10-10 12:00")
    first, _, _ = run(venue_with_btc(rv.BinanceUsdm), tmp_path, series=("ohlcv",), now=earlier)
    assert first[0].last_ms == earlier - FIVE
    second, http, _ = run(venue_with_btc(rv.BinanceUsdm), tmp_path, series=("ohlcv",), since=None)
    assert int(http.calls("/fapi/v1/klines")[0].query["startTime"]) == earlier
    assert second[0].rows_added == clean.num_rows - first[0].rows_added
    assert final_table(tmp_path).equals(clean)
    third, http, _ = run(venue_with_btc(rv.BinanceUsdm), tmp_path, series=("ohlcv",))
    assert third[0].rows_added == 0 and third[0].note == "already up to date"
    assert http.calls("/fapi/v1/klines") == []


def test_earlier_since_fills_in_before_the_stored_rows(tmp_path, clean):
    run(venue_with_btc(rv.BinanceUsdm), tmp_path, series=("ohlcv",), since="2025-10-10")
    results, http, _ = run(venue_with_btc(rv.BinanceUsdm), tmp_path, series=("ohlcv",))
    starts = [int(page.query["startTime"]) for page in http.calls("/fapi/v1/klines")]
    assert starts[0] == start_ms(SINCE)
    assert max(starts) < start_ms("2025-10-10")  # only the missing head was fetched
    assert results[0].rows_added == 288
    assert final_table(tmp_path).equals(clean)


# ---------------------------------------------------------------------------------------------
# open interest (best effort)
# ---------------------------------------------------------------------------------------------
def test_open_interest_is_stored_and_joined(tmp_path):
    venue = venue_with_btc(rv.BinanceUsdm)
    # Constructed values (the shared data holds no open-interest history): one point per hour.
    hours = [int(row[0]) for row in rv.candles_1h()]
    venue.open_interest = {
        ("BTCUSDT", "1h"): [
            [str(t), f"{80000 + i}.5", f"{(80000 + i) * 110000}"] for i, t in enumerate(hours)
        ]
    }
    results, http, _ = run(venue, tmp_path, timeframe="1h", series=("ohlcv", "open_interest"))
    assert results[1].rows_stored == 72  # a snapshot, not a forming bar: 23:00 is final
    frame = store.load_market(BTC, "1h", exchange="binanceusdm", data_dir=tmp_path, since=SINCE)
    assert len(frame) == 71
    assert frame["open_interest"].iloc[0] == 80000.5
    assert frame["open_interest_value"].iloc[1] == 80001 * 110000
    assert http.calls("openInterestHist")[0].query["period"] == "1h"


def test_refused_open_interest_is_skipped_not_fatal(tmp_path):
    venue = venue_with_btc(rv.BinanceUsdm)
    results, _, _ = run(
        venue, tmp_path, timeframe="1m", series=("ohlcv", "open_interest"), since="2025-10-11T20:00"
    )
    interest = results[1]
    assert interest.series == "open_interest"
    assert interest.note.startswith(
        "skipped: binanceusdm fetching BTC/USDT:USDT open interest failed: BadRequest"
    )
    assert "skipped" in interest.describe()


def test_progress_bar_names_symbol_and_series(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TQDM_MININTERVAL", "0")  # draw every update, not every 0.1 s
    venue = venue_with_btc(rv.BinanceUsdm)
    exchange, _ = rv.offline_exchange(venue, ohlcv=200)
    download(
        "binanceusdm",
        [BTC],
        "5m",
        since=SINCE,
        data_dir=tmp_path,
        series=["ohlcv", "funding"],
        exchange=exchange,
        clock=lambda: NOW,
        progress=True,
    )
    err = capsys.readouterr().err
    assert "BTC/USDT:USDT candles: 100%" in err
    assert "BTC/USDT:USDT funding: 100%" in err


def test_damaged_stored_file_stops_the_download_by_name(tmp_path):
    path = store.series_path(tmp_path, "binanceusdm", BTC, "ohlcv", "5m")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(store.DataError, match=rf"{path} is not a readable Parquet file"):
        run(venue_with_btc(rv.BinanceUsdm), tmp_path, series=("ohlcv",))
    assert path.read_bytes() == b"PAR1 this is not a parquet file"


# ---------------------------------------------------------------------------------------------
# pagination across exchange-side gaps, any page size, any venue
# ---------------------------------------------------------------------------------------------
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    venue_class=st.sampled_from(VENUES),
    page=st.integers(min_value=20, max_value=400),
    holes=st.lists(
        st.tuples(st.integers(min_value=0, max_value=863), st.integers(min_value=1, max_value=150)),
        max_size=4,
    ),
)
def test_pagination_with_gaps_stores_exactly_what_the_venue_has(
    tmp_path_factory, venue_class, page, holes
):
    rows = rv.candles_5m()
    missing = {index for start, length in holes for index in range(start, start + length)}
    served = [row for index, row in enumerate(rows) if index not in missing]
    venue = venue_class(candles={("BTCUSDT", "5m"): served})
    folder = tmp_path_factory.mktemp("gaps")
    results, _, _ = run(venue, folder, series=("ohlcv",), page=page)
    truth = real(served, start_ms(SINCE), NOW - FIVE + 1)
    if len(truth) == 0:
        assert results[0].rows_stored == 0
        return
    candles = stored(folder, venue.exchange_id)
    np.testing.assert_array_equal(candles.to_numpy(), truth)
    times = truth[:, 0].astype(np.int64)
    expected = [(int(a), int(b)) for a, b in itertools.pairwise(times) if b - a > FIVE]
    assert [(gap.after_ms, gap.before_ms) for gap in results[0].gaps] == expected
