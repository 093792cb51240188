"""Stored data is checked for its values, not only its schema (issue 12, point 2).

Each damage is written into a small copy of the bundled sample and must be refused on load with
one line naming the file, the first bad row's time and what to do; gaps are kept (reported by
``download``, never filled); a missing data folder is an error; saved runs record the files read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest

from backtest.cli import main
from backtest.engine import RunConfig
from backtest.engine.runner import check_frame
from backtest.errors import DataError
from backtest.market import store
from backtest.results import Results

BTC = "BTC/USDT:USDT"
SAMPLE = store.SAMPLE_DIR / "binanceusdm"
ROWS = 600  # about two days of 5m bars
BAD_ROW = 123


@pytest.fixture
def small_store(tmp_path):
    """A store holding the first two days of the sample's BTC 5m candles and its funding."""
    root = tmp_path / "store"
    candles = store.read_series(SAMPLE / "BTC_USDT_USDT-5m.parquet", "ohlcv").iloc[:ROWS]
    funding = store.read_series(SAMPLE / "BTC_USDT_USDT-funding.parquet", "funding")
    write(root, "ohlcv", candles.reset_index(drop=True))
    write(root, "funding", funding)
    return root


def write(root, series, frame, timeframe="5m"):
    timeframe = None if series == "funding" else timeframe
    path = store.series_path(root, "binanceusdm", BTC, series, timeframe)
    store.write_series(
        path, frame, series=series, exchange="binanceusdm", symbol=BTC, timeframe=timeframe
    )
    return path


def damage(root, series, change):
    """Rewrite one stored series with ``change`` applied (in place, or the frame it returns).

    The writer does not check values, so this stands for a file damaged on disk.
    """
    timeframe = None if series == "funding" else "5m"
    path = store.series_path(root, "binanceusdm", BTC, series, timeframe)
    frame = pd.read_parquet(path)
    changed = change(frame)
    write(root, series, frame if changed is None else changed)
    return path


def row_time(root, row=BAD_ROW):
    path = store.series_path(root, "binanceusdm", BTC, "ohlcv", "5m")
    stamp = int(pd.read_parquet(path)["timestamp_ms"].iloc[row])
    return pd.Timestamp(stamp, unit="ms").strftime("%Y-%m-%d %H:%M")


def set_value(column, value, row=BAD_ROW):
    def change(frame):
        frame.loc[row, column] = value

    return change


def shift_off_grid(frame):
    frame.loc[BAD_ROW, "timestamp_ms"] += 1_000  # a second late


def swap_high_low(frame):
    high = frame.loc[BAD_ROW, "high"]
    frame.loc[BAD_ROW, "high"] = frame.loc[BAD_ROW, "low"]
    frame.loc[BAD_ROW, "low"] = high


def open_above_high(frame):
    frame.loc[BAD_ROW, "open"] = frame.loc[BAD_ROW, "high"] * 1.01


CANDLE_DAMAGE = {
    "nan close": (set_value("close", np.nan), r"close is nan"),
    "infinite high": (set_value("high", np.inf), r"high is inf"),
    "zero low": (set_value("low", 0.0), r"low is 0"),
    "negative open": (set_value("open", -5.0), r"open is -5"),
    "high below low": (swap_high_low, r"high is below low"),
    "open outside the bar": (open_above_high, r"open lies outside low\.\.high"),
    "nan volume": (set_value("volume", np.nan), r"volume is nan"),
    "negative volume": (set_value("volume", -1.0), r"volume is -1"),
    "off the grid": (shift_off_grid, r"bar open time off the 5 min grid"),
}


@pytest.mark.parametrize("name", sorted(CANDLE_DAMAGE))
def test_damaged_candles_are_refused_with_file_row_time_and_remedy(small_store, name):
    change, problem = CANDLE_DAMAGE[name]
    when = row_time(small_store)
    path = damage(small_store, "ohlcv", change)
    with pytest.raises(DataError) as caught:
        store.load_market(BTC, "5m", data_dir=small_store)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert re.search(problem, message), message
    assert when in message  # the first bad row's time (grid shift keeps the minute)
    assert f"row {BAD_ROW + 1}" in message
    assert "download it again" in message


def test_timestamps_in_seconds_are_refused(small_store):
    def seconds(frame):
        frame["timestamp_ms"] //= 1000

    path = damage(small_store, "ohlcv", seconds)
    with pytest.raises(DataError, match=r"epoch seconds where milliseconds belong") as caught:
        store.load_market(BTC, "5m", data_dir=small_store)
    assert str(caught.value).startswith(str(path))
    assert f"{ROWS - 1} more row(s)" in str(caught.value)


def test_timestamps_after_2262_are_refused(small_store):
    def microseconds(frame):
        frame["timestamp_ms"] *= 1000

    damage(small_store, "ohlcv", microseconds)
    with pytest.raises(DataError, match=r"timestamp after 2262"):
        store.load_market(BTC, "5m", data_dir=small_store)
    # listing the store does not trip over the dates either
    listed = store.list_available(small_store, include_sample=False)
    assert any("ms" in item.describe() for item in listed)


@pytest.mark.parametrize(
    ("rate", "problem"),
    [(0.2, r"funding rate 0\.2 is not a rate within ±0\.05"), (np.nan, "funding rate nan")],
)
def test_absurd_funding_is_refused(small_store, rate, problem):
    path = damage(small_store, "funding", set_value("funding_rate", rate, row=3))
    with pytest.raises(DataError, match=problem) as caught:
        store.load_market(BTC, "5m", data_dir=small_store)
    assert str(caught.value).startswith(f"{path}: ")
    assert "row 4" in str(caught.value)


def test_the_funding_bound_is_five_percent(small_store):
    from backtest.market import checks

    damage(small_store, "funding", set_value("funding_rate", -checks.MAX_FUNDING_RATE, row=3))
    store.load_market(BTC, "5m", data_dir=small_store)  # the bound itself is accepted
    assert checks.MAX_FUNDING_RATE == 0.05


def test_negative_open_interest_is_refused_but_missing_is_allowed(small_store):
    times = pd.read_parquet(store.series_path(small_store, "binanceusdm", BTC, "ohlcv", "5m"))
    interest = pd.DataFrame(
        {
            "timestamp_ms": times["timestamp_ms"].iloc[:3],
            "open_interest": [10.0, np.nan, 12.0],
            "open_interest_value": [1e6, 1.1e6, np.nan],
        }
    )
    write(small_store, "open_interest", interest)
    store.load_market(BTC, "5m", data_dir=small_store)
    interest.loc[2, "open_interest"] = -1.0
    write(small_store, "open_interest", interest)
    with pytest.raises(DataError, match=r"open_interest is -1"):
        store.load_market(BTC, "5m", data_dir=small_store)


def test_mark_candles_are_checked_too(small_store):
    candles = pd.read_parquet(store.series_path(small_store, "binanceusdm", BTC, "ohlcv", "5m"))
    mark = candles[["timestamp_ms", "open", "high", "low", "close"]].copy()
    mark.loc[7, "low"] = np.inf
    path = write(small_store, "mark", mark)
    with pytest.raises(DataError, match=r"mark low is inf") as caught:
        store.load_market(BTC, "5m", data_dir=small_store)
    assert str(caught.value).startswith(str(path))


def test_gaps_are_kept_not_filled(small_store):
    def drop_rows(frame):
        return frame.drop(index=range(200, 210))

    damage(small_store, "ohlcv", drop_rows)
    frame = store.load_market(BTC, "5m", data_dir=small_store)
    assert len(frame) == ROWS - 10
    steps = np.diff(frame.index.asi8) // 1_000_000
    assert sorted(set(steps.tolist())) == [300_000, 11 * 300_000]


def test_run_refuses_a_damaged_file_in_one_line(small_store, tmp_path, capsys):
    damage(small_store, "ohlcv", set_value("close", np.nan))
    code = main(["run", "-q", "--data-dir", str(small_store), "--report", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "close is nan" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_heatmap_refuses_infinite_prices(small_store, tmp_path, capsys):
    damage(small_store, "ohlcv", set_value("high", np.inf))
    code = main(["heatmap", "--data-dir", str(small_store), "--out", str(tmp_path / "pictures")])
    err = capsys.readouterr().err
    assert code == 2 and "high is inf" in err and err.count("\n") == 1
    assert not (tmp_path / "pictures").exists()


def test_caller_frames_are_checked_like_files():
    frame = store.load_market(BTC, "5m", since="2025-10-05", until="2025-10-06")
    check_frame(frame, timeframe="5m")
    broken = frame.copy()
    broken.iloc[10, broken.columns.get_loc("low")] = np.nan
    with pytest.raises(DataError, match=r"low is nan at 2025-10-05 00:50 UTC \(row 11\)"):
        check_frame(broken)
    with pytest.raises(DataError, match=r"off the 1 h grid"):
        check_frame(frame, timeframe="1h")
    funding = frame.copy()
    funding.iloc[5, funding.columns.get_loc("funding_rate")] = 0.5
    with pytest.raises(DataError, match=r"funding rate 0\.5"):
        check_frame(funding)


def test_missing_data_dir_is_an_error_not_the_sample(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "no-such-store"
    with pytest.raises(DataError, match=rf"--data-dir {missing} does not exist"):
        store.load_market(BTC, "5m", data_dir=missing)
    monkeypatch.setenv("BACKTEST_DATA", str(missing))
    with pytest.raises(DataError, match=rf"\$BACKTEST_DATA {missing} does not exist"):
        store.load_market(BTC, "5m")
    code = main(["run", "-q", "--report", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "BACKTEST_DATA" in err and err.count("\n") == 1
    monkeypatch.delenv("BACKTEST_DATA")
    monkeypatch.chdir(tmp_path)  # no ./data here: the bundled sample is the documented default
    assert len(store.load_market(BTC, "5m", since="2025-10-05", until="2025-10-06")) == 288


def test_permission_denied_is_not_called_corrupt(small_store, monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(store, "open", refuse, raising=False)
    with pytest.raises(DataError) as caught:
        store.load_market(BTC, "5m", data_dir=small_store)
    message = str(caught.value)
    assert "Permission denied" in message and "permissions" in message
    assert "corrupt" not in message and "delete" not in message


def test_a_folder_where_the_file_belongs_is_named(small_store):
    path = store.series_path(small_store, "binanceusdm", BTC, "ohlcv", "5m")
    path.unlink()
    path.mkdir()
    with pytest.raises(DataError, match="a folder where a data file belongs") as caught:
        store.load_market(BTC, "5m", data_dir=small_store)
    assert "corrupt" not in str(caught.value)


def test_saved_run_records_the_files_it_read(small_store, tmp_path, capsys):
    folder = tmp_path / "run"
    code = main(
        [
            "run",
            "--json",
            "--strategy",
            "BuyAndHold",
            "--data-dir",
            str(small_store),
            "--report",
            str(folder),
        ]
    )
    assert code == 0, capsys.readouterr().err
    files = Results.load(folder).meta["data_files"]
    candles = store.series_path(small_store, "binanceusdm", BTC, "ohlcv", "5m").resolve()
    assert files["ohlcv"]["path"] == str(candles)
    assert files["ohlcv"]["bytes"] == candles.stat().st_size
    assert files["ohlcv"]["sha256"] == hashlib.sha256(candles.read_bytes()).hexdigest()
    assert files["funding"]["path"].endswith("BTC_USDT_USDT-funding.parquet")
    assert str(candles) in (folder / "report.html").read_text(encoding="utf-8")
    saved = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert saved["meta"]["data_files"]["ohlcv"]["sha256"] == files["ohlcv"]["sha256"]


def test_recorded_digest_follows_a_rewritten_file(tmp_path):
    # digests are remembered per (path, size, mtime) for sweeps; a rewrite must be hashed anew
    path = tmp_path / "series.parquet"
    path.write_bytes(b"first content")
    first = store.describe_files({"ohlcv": str(path)})["ohlcv"]["sha256"]
    assert first == hashlib.sha256(b"first content").hexdigest()
    path.write_bytes(b"second, longer content")
    second = store.describe_files({"ohlcv": str(path)})["ohlcv"]["sha256"]
    assert second == hashlib.sha256(b"second, longer content").hexdigest()


def test_a_caller_frame_records_no_files():
    frame = store.load_market(BTC, "5m", since="2025-10-05", until="2025-10-06")
    frame.attrs.pop("sources")
    from backtest.engine import run

    results = run(RunConfig(strategy="BuyAndHold", since="2025-10-05"), data=frame)
    assert results.meta["data_files"] == {}


def test_a_library_error_spanning_lines_is_reported_on_one(small_store, monkeypatch):
    import pyarrow as pa

    def broken(source, *args, **kwargs):
        raise pa.ArrowInvalid("Couldn't deserialize thrift\nDeserializing page header failed.")

    monkeypatch.setattr(store.pq, "read_table", broken)
    with pytest.raises(DataError) as caught:
        store.load_market(BTC, "5m", data_dir=small_store)
    assert "\n" not in str(caught.value)
    assert "thrift Deserializing page header failed." in str(caught.value)
