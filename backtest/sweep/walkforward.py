"""Walk-forward analysis: rolling train/test windows and the stitched out-of-sample equity.

With ``--walk-forward 5d:2d`` the data range is cut into windows that advance by the test
length::

    window 0:  [train 5d][test 2d]
    window 1:          [train 5d][test 2d]
    window 2:                  [train 5d][test 2d]

Every grid combination runs on each training span; the best one by the ranking metric (ties
go to the first in grid order) then runs on the test span that follows, which it has not seen.
The test spans do not overlap and follow each other, so their equity curves chain into one
out-of-sample curve: each test run starts from the run's cash, and :func:`stitch` scales each
curve so that it starts where the previous one ended (returns compound across windows).
Only whole windows are used; bars after the last whole test span are left out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from backtest.errors import ConfigError
from backtest.sweep.store import RunRecord


@dataclass(frozen=True)
class WalkForward:
    """Window lengths in milliseconds, and the text they came from."""

    train_ms: int
    test_ms: int
    text: str


@dataclass(frozen=True)
class Window:
    """One train/test pair; times are UTC epoch ms, ``until`` exclusive."""

    index: int
    train_since_ms: int
    train_until_ms: int
    test_since_ms: int
    test_until_ms: int

    @property
    def train_range(self) -> tuple[str, str]:
        """``(since, until)`` of the training span, as run settings take them."""
        return iso(self.train_since_ms), iso(self.train_until_ms)

    @property
    def test_range(self) -> tuple[str, str]:
        """``(since, until)`` of the test span, as run settings take them."""
        return iso(self.test_since_ms), iso(self.test_until_ms)


def iso(timestamp_ms: int) -> str:
    """Epoch ms as ``YYYY-MM-DDTHH:MM:SS`` UTC (what ``since``/``until`` accept)."""
    moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def parse_walk_forward(text: str) -> WalkForward:
    """Parse ``TRAIN:TEST`` lengths such as ``5d:2d``, ``36h:12h`` or ``2w:1w``.

    Raises
    ------
    ConfigError
        When the text is not two lengths separated by ``:``.
    """
    from backtest.market.timeframes import timeframe_to_ms

    train, separator, test = str(text).partition(":")
    if not separator:
        raise ConfigError(
            f"--walk-forward {text!r}: write TRAIN:TEST lengths, e.g. 5d:2d or 36h:12h"
        )
    try:
        train_ms, test_ms = timeframe_to_ms(train.strip()), timeframe_to_ms(test.strip())
    except ConfigError:
        raise ConfigError(
            f"--walk-forward {text!r}: each length is a count and a unit (m, h, d, w), e.g. 5d:2d"
        ) from None
    return WalkForward(train_ms=train_ms, test_ms=test_ms, text=str(text).strip())


def make_windows(start_ms: int, end_ms: int, walk_forward: WalkForward) -> list[Window]:
    """Cut ``[start_ms, end_ms)`` into whole train/test windows advancing by the test length.

    Raises
    ------
    ConfigError
        When not even one train span plus one test span fits.
    """
    windows: list[Window] = []
    train_ms, test_ms = walk_forward.train_ms, walk_forward.test_ms
    since = start_ms
    while since + train_ms + test_ms <= end_ms:
        split = since + train_ms
        windows.append(
            Window(
                index=len(windows),
                train_since_ms=since,
                train_until_ms=split,
                test_since_ms=split,
                test_until_ms=split + test_ms,
            )
        )
        since += test_ms
    if not windows:
        days = (end_ms - start_ms) / 86_400_000
        raise ConfigError(
            f"--walk-forward {walk_forward.text}: the data from {iso(start_ms)} to "
            f"{iso(end_ms)} ({days:.1f} days) is shorter than one train and one test span; "
            "shorten them or widen --since/--until"
        )
    return windows


def best_record(
    records: Iterable[RunRecord],
    metric: str,
    *,
    ascending: bool = False,
    feasible: Callable[[RunRecord], bool] | None = None,
) -> RunRecord | None:
    """The complete record with the best finite ``metric`` (first one on ties), or None.

    With ``feasible`` (a sweep's constraints), the best feasible record is chosen; only when
    no record is feasible is the best of all of them.
    """
    records = list(records)
    if feasible is not None:
        kept = [record for record in records if record.complete and feasible(record)]
        chosen = best_record(kept, metric, ascending=ascending)
        if chosen is not None:
            return chosen
    best: RunRecord | None = None
    best_value = math.nan
    for record in records:
        if not record.complete:
            continue
        value = metric_value(record, metric)
        if math.isnan(value):
            continue
        better = value < best_value if ascending else value > best_value
        if best is None or better:
            best, best_value = record, value
    return best


def metric_value(record: RunRecord, metric: str) -> float:
    """A record's metric as a float (NaN when missing or not a number)."""
    value = record.metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def stitch(curves: Sequence[pd.Series], starting_cash: Sequence[float]) -> pd.Series:
    """Chain test-window equity curves into one compounding out-of-sample curve.

    Parameters
    ----------
    curves : sequence of Series
        Each test run's account equity, in window order.
    starting_cash : sequence of float
        Each test run's starting cash (the value its curve is measured against).

    Returns
    -------
    Series
        Starts at the first run's cash; each later curve is scaled by the stitched value at
        the end of the previous one divided by its own starting cash.
    """
    pieces: list[pd.Series] = []
    level = float(starting_cash[0]) if starting_cash else math.nan
    for curve, cash in zip(curves, starting_cash, strict=True):
        if len(curve) == 0:
            continue
        scaled = curve.astype("float64") * (level / float(cash))
        pieces.append(scaled)
        level = float(scaled.iloc[-1])
    if not pieces:
        return pd.Series(dtype="float64", name="equity")
    joined = pd.concat(pieces)
    joined = joined[~joined.index.duplicated(keep="last")]
    joined.name = "equity"
    return joined
