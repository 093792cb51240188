import numpy as np
import pandas as pd
import pytest

from backtest.market.store import load_market
from backtest.sweep import worker
from backtest.sweep.worker import RunTask, market_for, one_line, perform
from tests.sweep import fakes


@pytest.fixture(autouse=True)
def fresh_cache():
    worker.clear_cache()
    yield
    worker.clear_cache()


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2025-10-08", "2025-10-11"),
        ("2025-10-08T07:59:59", "2025-10-08T16:00:00.001"),  # around funding settlements
        (None, "2025-10-03"),
        ("2025-10-18", None),
    ],
)
def test_cached_slice_equals_loading_the_range(store_dir, since, until):
    settings = {"data_dir": store_dir, "since": since, "until": until}
    expected = load_market(
        "BTC/USDT:USDT", "5m", exchange="binanceusdm", since=since, until=until, data_dir=store_dir
    )
    got = market_for(settings)
    pd.testing.assert_frame_equal(got, expected)
    np.testing.assert_array_equal(got.attrs["funding_times"], expected.attrs["funding_times"])
    assert got.attrs["symbol"] == "BTC/USDT:USDT"


def test_history_is_loaded_once_per_process_and_market(store_dir):
    for since, until in [("2025-10-02", "2025-10-03"), ("2025-10-04", "2025-10-06"), (None, None)]:
        market_for({"data_dir": store_dir, "since": since, "until": until})
    market_for({"data_dir": store_dir, "symbol": "ETH/USDT:USDT", "since": "2025-10-02"})
    counts = worker.load_counts()
    assert sorted(counts.values()) == [1, 1]
    assert any("ETH/USDT:USDT" in key for key in counts)


def test_a_range_outside_the_data_gives_the_store_error(store_dir):
    from backtest.errors import DataError

    with pytest.raises(DataError, match="stored"):
        market_for({"data_dir": store_dir, "since": "2019-01-01", "until": "2019-02-01"})


def prepared(store_dir, **params):
    return fakes.fake_prepare(
        {
            "strategy": fakes.STRATEGY,
            "data_dir": store_dir,
            "since": "2025-10-08",
            "until": "2025-10-09",
            "params": params,
        }
    )


def test_perform_returns_metrics_and_equity_when_asked(store_dir):
    settings = prepared(store_dir, fast=3, slow=12)
    record = perform(RunTask("k1", settings, keep_equity=True), fakes.FAKE_BACKEND)
    assert record.complete and record.error is None
    frame = load_market("BTC/USDT:USDT", "5m", since="2025-10-08", until="2025-10-09")
    expected = fakes.fake_metrics(fakes.fake_run(settings, frame))
    assert record.metrics == expected
    assert record.metrics["Bars"] == 288
    assert len(record.equity["value"]) == 288
    assert record.equity["time_ms"][0] == pd.Timestamp("2025-10-08", tz="UTC").value // 10**6
    assert record.worker.endswith(f":{__import__('os').getpid()}")


def test_a_failing_run_becomes_a_failed_record_with_one_line(store_dir):
    settings = prepared(store_dir, explode_after=3)
    record = perform(RunTask("k2", settings), fakes.FAKE_BACKEND)
    assert record.status == "failed"
    assert record.error == "RuntimeError: explode_after=3: deliberate failure"
    assert record.metrics == {} and record.equity is None


def test_one_line_keeps_only_the_first_line():
    assert one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert one_line(KeyError()) == "KeyError"
