"""Property-based fuzzing of ``run`` and ``heatmap`` on damaged stores (issue 12, point 7).

Each example copies two days of the bundled BTC 5m sample (and its funding) into a fresh store,
damages it at the Parquet level (NaN, infinite, negative or zero prices, swapped high/low,
shifted timestamps, seconds instead of milliseconds, duplicated rows, dropped rows, absurd
funding, truncated or garbage bytes), then calls the command line in-process with random
arguments.  Whatever happens, the outcome must be one of:

* exit 0 with a finite result (the run's equity and return, the heatmap's price), or
* exit 2 with exactly one ``error:`` line on standard error and no traceback,

and no file outside the command's own output folder may change.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.cli import main
from backtest.market import store

BTC = "BTC/USDT:USDT"
SAMPLE = store.SAMPLE_DIR / "binanceusdm"
FIRST_BAR = "2025-10-09"
BARS = 576  # two days of 5m bars

DAMAGES = (
    "none",
    "nan",
    "inf",
    "-inf",
    "negative",
    "zero",
    "swap_high_low",
    "shift_timestamp",
    "seconds",
    "duplicate_rows",
    "drop_rows",
    "funding",
    "truncate",
    "garbage",
)


def build_store(root: Path) -> tuple[Path, Path]:
    """Two days of real candles and the funding around them, written by the store."""
    candles = store.read_series(SAMPLE / "BTC_USDT_USDT-5m.parquet", "ohlcv")
    start = candles.index[candles["timestamp_ms"] >= _ms(FIRST_BAR)][0]
    candles = candles.loc[start : start + BARS - 1].reset_index(drop=True)
    funding = store.read_series(SAMPLE / "BTC_USDT_USDT-funding.parquet", "funding")
    candle_path = store.series_path(root, "binanceusdm", BTC, "ohlcv", "5m")
    funding_path = store.series_path(root, "binanceusdm", BTC, "funding")
    store.write_series(
        candle_path, candles, series="ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="5m"
    )
    store.write_series(funding_path, funding, series="funding", exchange="binanceusdm", symbol=BTC)
    return candle_path, funding_path


def _ms(text: str) -> int:
    return int(np.datetime64(text, "ms").astype(np.int64))


def damage(candle_path: Path, funding_path: Path, kind: str, row: int, amount: float) -> None:
    """Damage the store in place, keeping the files' metadata (as a damaged disk would)."""
    if kind == "none":
        return
    if kind in ("truncate", "garbage"):
        data = candle_path.read_bytes()
        cut = max(1, int(len(data) * min(max(amount, 0.0), 0.99)))
        if kind == "truncate":
            candle_path.write_bytes(data[:cut])
        else:
            noise = np.random.default_rng(row).integers(0, 256, size=64, dtype=np.uint8)
            candle_path.write_bytes(data[:cut] + noise.tobytes() + data[cut + 64 :])
        return
    path = funding_path if kind == "funding" else candle_path
    table = pq.read_table(path)
    frame = table.to_pandas()
    row = row % len(frame)
    if kind == "funding":
        frame.loc[row, "funding_rate"] = amount
    elif kind in ("nan", "inf", "-inf", "negative", "zero"):
        value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "zero": 0.0}.get(kind, -abs(amount))
        column = ("open", "high", "low", "close", "volume")[row % 5]
        frame.loc[row, column] = value
    elif kind == "swap_high_low":
        high = frame.loc[row, "high"]
        frame.loc[row, "high"] = frame.loc[row, "low"]
        frame.loc[row, "low"] = high
    elif kind == "shift_timestamp":
        frame.loc[row, "timestamp_ms"] += int(amount * 1000) or 1
    elif kind == "seconds":
        frame["timestamp_ms"] //= 1000
    elif kind == "duplicate_rows":
        frame = frame.iloc[np.r_[0 : row + 1, row : len(frame)]].reset_index(drop=True)
    elif kind == "drop_rows":
        frame = frame.drop(index=range(row, min(row + 1 + int(abs(amount)) % 50, len(frame))))
    damaged = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(damaged.replace_schema_metadata(table.schema.metadata), path)


def tree_hashes(root: Path, skip: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` except those under ``skip``."""
    hashes = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if path == skip or skip in path.parents:
                continue
            hashes[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def call(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_clean_outcome(code: int, err: str) -> None:
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    if code == 2:
        assert len(errors) == 1, err
        assert err.splitlines()[-1] == errors[0], err  # the message is one line, and the last
        assert len(errors[0]) < 2000
    else:
        assert errors == [], err


damages = st.tuples(
    st.sampled_from(DAMAGES),
    st.integers(min_value=0, max_value=BARS - 1),
    st.floats(min_value=-1.0, max_value=1.0, allow_nan=False),
)


def mostly(good, bad):
    """Draw from ``good`` five times in six: most examples should get past the argument checks
    and reach the damaged data (hypothesis starts from small integers: those pick ``good``)."""
    return st.integers(min_value=0, max_value=5).flatmap(lambda pick: bad if pick == 5 else good)


GOOD_TIMES = ("2025-10-09T06:00", "2025-10-09T18:00", "2025-10-10", "2025-10-10T12:00")
BAD_TIMES = ("2025-10-30", "2024-01-01", "nan", "1760000000", "2300-01-01", "yesterday")
times = mostly(st.sampled_from([None, *GOOD_TIMES]), st.sampled_from(BAD_TIMES))


@st.composite
def time_range(draw) -> list[str]:
    """``--since``/``--until`` flags: mostly an ordered pair inside the data (or one or none)."""
    first, second = sorted(draw(st.lists(st.sampled_from(GOOD_TIMES), min_size=2, max_size=2)))
    since, until = draw(st.sampled_from([(None, None), (first, None), (None, second)]))
    if first != second and draw(st.booleans()):
        since, until = first, second
    since = draw(mostly(st.just(since), st.sampled_from(BAD_TIMES)))
    until = draw(mostly(st.just(until), st.sampled_from(BAD_TIMES)))
    flags = []
    for flag, value in (("--since", since), ("--until", until)):
        if value is not None:
            flags += [flag, value]
    return flags


numbers = mostly(
    st.floats(min_value=0.5, max_value=10.0).map(lambda value: f"{value:.3g}"),
    st.sampled_from(["0", "-1", "nan", "inf", "1e400", "9" * 40]),
)
BAD_MAP_VALUES = ("0", "-1", "nan", "1e400", "9" * 40, "x")
map_assignments = mostly(
    st.sampled_from(["band=0.03", "band=0.08", "half_life_hours=12", "cascade=true"]),
    st.tuples(
        st.sampled_from(["band", "half_life_hours", "cascade", "nope"]),
        st.sampled_from(BAD_MAP_VALUES),
    ).map("=".join),
)


@st.composite
def run_arguments(draw) -> list[str]:
    arguments = ["run", "-q", "--json"]
    strategy = draw(
        mostly(st.sampled_from(["BuyAndHold", "SmaCross", "ClusterFade"]), st.just("Nope"))
    )
    arguments += ["--strategy", strategy]
    arguments += draw(time_range())
    if draw(st.booleans()):
        arguments += ["--leverage", draw(numbers)]
    if draw(st.booleans()):
        arguments += ["--cash", draw(numbers)]
    if strategy == "SmaCross" and draw(st.booleans()):
        arguments += ["-p", f"fast={draw(st.integers(min_value=-1, max_value=40))}"]
    if draw(st.booleans()):
        arguments += ["--map", draw(map_assignments)]
    return arguments


@st.composite
def heatmap_arguments(draw) -> list[str]:
    arguments = ["heatmap", "--rows", "40"]  # a coarse picture: drawing is not under test
    at = draw(times)
    if at is not None:
        arguments += ["--at", at]
    if draw(st.booleans()):
        window = mostly(st.sampled_from(["12h", "1d", "2d"]), st.sampled_from(["5m", "0", "x"]))
        arguments += ["--window", draw(window)]
    if draw(st.booleans()):
        arguments += ["--band", draw(numbers)]
    if draw(st.booleans()):
        arguments += ["--map", draw(map_assignments)]
    return arguments


FUZZ = dict(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _fresh() -> tuple[Path, Path, Path, contextlib.ExitStack]:
    stack = contextlib.ExitStack()
    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="backtest-fuzz-")))
    candle_path, funding_path = build_store(root / "store")
    (root / "work").mkdir()
    stack.enter_context(contextlib.chdir(root / "work"))
    return root, candle_path, funding_path, stack


@settings(max_examples=14, **FUZZ)
@given(damage_plan=damages, arguments=run_arguments())
def test_run_on_damaged_stores(damage_plan, arguments):
    root, candle_path, funding_path, stack = _fresh()
    with stack:
        damage(candle_path, funding_path, *damage_plan)
        output = root / "work" / "out"
        before = tree_hashes(root, output)
        code, out, err = call([*arguments, "--data-dir", str(root / "store"), "--report", "out"])
        assert_clean_outcome(code, err)
        if code == 0:
            summary = json.loads(out)
            metrics = summary["metrics"]
            assert math.isfinite(metrics["Equity Final [USDT]"])
            assert math.isfinite(metrics["Return [%]"])
            assert (output / "results.json").is_file()
        else:
            assert not output.exists()
        assert tree_hashes(root, output) == before


@settings(max_examples=10, **FUZZ)
@given(damage_plan=damages, arguments=heatmap_arguments())
def test_heatmap_on_damaged_stores(damage_plan, arguments):
    root, candle_path, funding_path, stack = _fresh()
    with stack:
        damage(candle_path, funding_path, *damage_plan)
        output = root / "work" / "pictures"
        before = tree_hashes(root, output)
        code, out, err = call([*arguments, "--data-dir", str(root / "store"), "--out", "pictures"])
        assert_clean_outcome(code, err)
        if code == 0:
            price = out.splitlines()[0].split(", price ")[1].split()[0]
            assert math.isfinite(float(price.replace(",", "")))
            assert len(list(output.glob("*.png"))) == 1
        assert tree_hashes(root, output) == before
