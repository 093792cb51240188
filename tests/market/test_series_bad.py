"""Bad import files: one line naming the file, the row and the remedy; nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.errors import BacktestError, ConfigError, DataError
from backtest.market import store
from backtest.market.series import import_series

GT = Path(__file__).parent / "fixtures" / "groundtruth"
BTC = "BTC/USDT:USDT"
HEADER = "time,long,short\n"


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


BAD_FILES: list[tuple[str, bytes, str, str]] = [
    ("missing column", b"time,long\n2025-10-10 00:00,1\n2025-10-10 04:00,2\n", "liquidations",
     r"no column 'short' or 'short_usd'"),
    ("non-numeric", (HEADER + "2025-10-10 00:00,1,2\n2025-10-10 04:00,lots,2\n").encode(),
     "liquidations", r"row 3 \(time 2025-10-10 04:00\) has 'lots' in column 'long', not a number"),
    ("negative", (HEADER + "2025-10-10 00:00,1,2\n2025-10-10 04:00,-5,2\n").encode(),
     "liquidations", r"2025-10-10 04:00 UTC has a negative, missing or infinite amount in long"),
    ("infinite", (HEADER + "2025-10-10 00:00,inf,2\n2025-10-10 04:00,1,2\n").encode(),
     "liquidations", r"2025-10-10 00:00 UTC has a negative, missing or infinite amount"),
    ("blank inside", (HEADER + "2025-10-10 00:00,1,2\n2025-10-10 04:00,,2\n"
                      "2025-10-10 08:00,1,2\n").encode(),
     "liquidations", r"2025-10-10 04:00 UTC has a blank value; .*--skip-blank"),
    ("conflicting duplicate", (HEADER + "2025-10-10 00:00,1,2\n2025-10-10 04:00,1,2\n"
                               "2025-10-10 04:00,3,2\n").encode(),
     "liquidations", r"2025-10-10 04:00 UTC appears twice with different values"),
    ("mixed intervals", (HEADER + "2025-10-10 00:00,1,2\n2025-10-10 04:00,1,2\n"
                         "2025-10-10 05:00,1,2\n2025-10-10 08:00,1,2\n").encode(),
     "liquidations", r"mixes (bar )?intervals"),
    ("off the grid", (HEADER + "2025-10-10 01:00,1,2\n2025-10-10 05:00,1,2\n").encode(),
     "liquidations", r"2025-10-10 01:00 UTC is not a 4h bar open time.*--utc-offset"),
    ("epoch seconds", (HEADER + "1760054400,1,2\n1760068800,1,2\n").encode(),
     "liquidations", r"row 2 \(time 1760054400\) looks like epoch SECONDS"),
    ("date out of range", (HEADER + "1999-01-01 00:00,1,2\n1999-01-01 04:00,1,2\n").encode(),
     "liquidations", r"1999-01-01 00:00 UTC, outside 2009-01-03 \.\. now"),
    ("future date", (HEADER + "2999-01-01 00:00,1,2\n2999-01-01 04:00,1,2\n").encode(),
     "liquidations", r"outside 2009-01-03 \.\. now"),
    ("not a date", (HEADER + "yesterday,1,2\n2025-10-10 04:00,1,2\n").encode(),
     "liquidations", r"row 2 \(time yesterday\) is not a date"),
    ("empty", b"", "liquidations", r"is empty"),
    ("header only", HEADER.encode(), "liquidations", r"has a header but no rows"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "liquidations", r"binary file, not a CSV"),
    ("latin-1", (HEADER + "2025-10-10 00:00,1,2\n").encode() + "caf\u00e9,1,2\n".encode("latin-1"),
     "liquidations", r"not UTF-8 text .*save it as a UTF-8 CSV"),
    ("ragged", b"time,long,short\n2025-10-10 00:00,1,2\n2025-10-10 04:00,1,2,3,4\n",
     "liquidations", r"not a well-formed CSV"),
    ("no time column", b"when,long,short\nmonday,1,2\n", "liquidations",
     r"matches no known layout"),
    ("share above one", b"time,long_share\n2025-10-10 00:00,0.4\n2025-10-10 04:00,1.4\n",
     "long-short", r"2025-10-10 04:00 UTC has a long share outside 0\.\.1"),
    ("negative interest", b"time,open_interest\n2025-10-10 00:00,-1\n2025-10-10 04:00,1\n",
     "open-interest", r"negative or infinite open interest"),
    ("single row", (HEADER + "2025-10-10 00:00,1,2\n").encode(), "liquidations",
     r"single bar; its timeframe cannot be inferred: pass --timeframe"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "kind", "pattern"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_file_is_one_line_and_writes_nothing(tmp_path, content, kind, pattern):
    source = tmp_path / "in" / "export.csv"
    source.parent.mkdir()
    source.write_bytes(content)
    data = tmp_path / "data"
    with pytest.raises(BacktestError) as caught:
        import_series(source, kind=kind, symbol=BTC, data_dir=data)
    message = str(caught.value)
    assert "\n" not in message
    assert "export.csv" in message
    assert re.search(pattern, message), message
    assert not data.exists() or files_under(data) == []


def test_agreeing_duplicates_and_unsorted_rows_are_accepted(tmp_path):
    source = tmp_path / "export.csv"
    source.write_text(
        HEADER + "2025-10-10 08:00,3,0\n2025-10-10 00:00,1,2\n2025-10-10 04:00,2,2\n"
        "2025-10-10 00:00,1,2\n"
    )
    result = import_series(source, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    assert result.rows_stored == 3 and "1 repeated row(s)" in result.describe()


def test_skip_blank_leaves_blank_bars_out(tmp_path):
    source = tmp_path / "export.csv"
    source.write_text(HEADER + "2025-10-10 00:00,1,2\n2025-10-10 04:00,,2\n2025-10-10 08:00,1,2\n")
    result = import_series(
        source, kind="liquidations", symbol=BTC, data_dir=tmp_path, skip_blank=True
    )
    assert result.rows_stored == 2 and "1 bar(s) missing" in result.describe()


def test_a_timeframe_that_disagrees_is_refused(tmp_path):
    with pytest.raises(DataError, match="holds 4h bars, not 1h"):
        import_series(
            GT / "binance_BTC_liquidations_4h_merged.csv", kind="liquidations", symbol=BTC,
            timeframe="1h", data_dir=tmp_path,
        )  # fmt: skip
    assert files_under(tmp_path) == []


def test_a_file_the_program_did_not_write_is_never_overwritten(tmp_path):
    target = tmp_path / "binanceusdm" / "BTC_USDT_USDT-4h-liquidations.parquet"
    target.parent.mkdir(parents=True)
    pd.DataFrame({"a": [1.0]}).to_parquet(target)
    before = target.read_bytes()
    with pytest.raises(DataError, match="not written by this store"):
        import_series(
            GT / "binance_BTC_liquidations_4h_merged.csv", kind="liquidations", symbol=BTC,
            data_dir=tmp_path,
        )  # fmt: skip
    assert target.read_bytes() == before
    assert files_under(tmp_path) == [target]


def test_open_interest_of_another_scope_is_not_mixed_in(tmp_path):
    """A downloaded single-venue series and CoinGlass's all-exchange series stay apart."""
    target = store.series_path(tmp_path, "binanceusdm", BTC, "open_interest", "4h")
    times = 1759968000000 + 14_400_000 * np.arange(3)
    downloaded = pd.DataFrame(
        {"timestamp_ms": times, "open_interest": [1.0, 2.0, 3.0], "open_interest_value": 3 * [9.0]}
    )
    store.write_series(
        target, downloaded, series="open_interest", exchange="binanceusdm", symbol=BTC,
        timeframe="4h", source="ccxt",
    )  # fmt: skip
    before = target.read_bytes()
    with pytest.raises(DataError) as caught:
        import_series(
            GT / "allexch_BTC_open_interest_usd_4h_merged.csv", kind="open-interest",
            symbol=BTC, data_dir=tmp_path,
        )  # fmt: skip
    assert "another scope" in str(caught.value) and "a download from binanceusdm" in str(
        caught.value
    )
    assert target.read_bytes() == before


def test_reimport_merges_into_its_own_file(tmp_path):
    lines = (GT / "binance_BTC_liquidations_4h_merged.csv").read_text().splitlines()
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("\n".join([lines[0], *lines[1:13]]) + "\n")
    second.write_text("\n".join([lines[0], *lines[10:]]) + "\n")
    import_series(first, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    result = import_series(second, kind="liquidations", symbol=BTC, data_dir=tmp_path)
    assert (result.rows_read, result.rows_stored) == (15, 24)


def test_utc_offset_is_refused_for_times_that_carry_their_own(tmp_path):
    source = tmp_path / "export.csv"
    source.write_text(HEADER + "2025-10-10T00:00:00Z,1,2\n2025-10-10T04:00:00Z,1,2\n")
    with pytest.raises(ConfigError, match=r"row 2 \(time 2025-10-10T00:00:00Z\) carries its own"):
        import_series(
            source, kind="liquidations", symbol=BTC, utc_offset_hours=2, data_dir=tmp_path / "d"
        )
    shifted = tmp_path / "local.csv"
    shifted.write_text(HEADER + "2025-10-10 02:00,1,2\n2025-10-10 06:00,1,2\n")
    result = import_series(
        shifted, kind="liquidations", symbol=BTC, utc_offset_hours=2, data_dir=tmp_path / "d"
    )
    assert result.first_ms == 1760054400000  # 2025-10-10 00:00 UTC
    assert "times shifted by -2 h to UTC" in result.describe()


def test_a_damaged_stored_series_is_refused_on_load(tmp_path):
    target = store.series_path(tmp_path, "binanceusdm", BTC, "liquidations", "4h")
    times = 1759968000000 + 14_400_000 * np.arange(3)
    frame = pd.DataFrame({"timestamp_ms": times, "long": [1.0, -2.0, 3.0], "short": [0.0] * 3})
    store.write_series(
        target, frame, series="liquidations", exchange="binanceusdm", symbol=BTC, timeframe="4h"
    )
    from backtest.market.series import load_liquidations

    with pytest.raises(DataError, match=r"2025-10-09 04:00 UTC has a negative.*import the series"):
        load_liquidations(BTC, "4h", data_dir=tmp_path)
