"""The lean evaluation path: the map over fixed candles, summed per scored truth bar.

:class:`MapEvaluator` is built once per data set (candles cut to warm-up + scored window, the
truth bins, the leverage tiers) and then evaluates any :class:`MapParams` with one kernel pass
into preallocated output arrays (one set per thread) and two ``bincount`` sums.  Calibration
calls it thousands of times; ``validate`` calls it once.

:func:`scoring_window` decides which bars the map runs over and which truth bars are scored:
the map starts a warm-up before the scored window (:func:`backtest.liquidation.warmup.
resolve_warmup`, the rule every command uses), and when the candles start later than that the
scored window starts one warm-up after the first candle instead, so no scored bar is read
by a map that has not forgotten its empty start.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backtest.errors import DataError
from backtest.liquidation.heatmap import CANDLE_COLUMNS, LINES, LiquidationMap, MapParams
from backtest.validation.bins import TruthBins, bar_step, truth_bins, utc_index

#: Optional candle-frame columns the map reads, by the keyword of ``run_arrays``.
_OPTIONAL = {
    "funding_rate": "funding_rate",
    "mark_high": "mark_high",
    "mark_low": "mark_low",
    "open_interest": "open_interest",
}


@dataclass(frozen=True)
class ScoringWindow:
    """Which bars a scorecard is computed on.

    Attributes
    ----------
    map_start : pandas.Timestamp
        First candle the map runs over (the start of its warm-up).
    scored_start : pandas.Timestamp
        No truth bar opening before this is scored (``since``, or later when the candles do
        not reach a full warm-up before ``since``).
    until : pandas.Timestamp
        Scored truth bars end at or before this.
    warmup : pandas.Timedelta
        The warm-up the rule (or the caller) asked for.
    warmup_used : pandas.Timedelta
        ``scored_start - map_start``, at least ``warmup``.
    first_bar, last_bar : pandas.Timestamp
        Open times of the first and last scored truth bars.
    bars : int
        Number of scored truth bars.
    """

    map_start: pd.Timestamp
    scored_start: pd.Timestamp
    until: pd.Timestamp
    warmup: pd.Timedelta
    warmup_used: pd.Timedelta
    first_bar: pd.Timestamp
    last_bar: pd.Timestamp
    bars: int

    def to_dict(self) -> dict[str, Any]:
        """ISO times and spans in hours (JSON-able)."""
        return {
            "map_start": self.map_start.isoformat(),
            "scored_start": self.scored_start.isoformat(),
            "until": self.until.isoformat(),
            "warmup_hours": self.warmup.total_seconds() / 3600.0,
            "warmup_used_hours": self.warmup_used.total_seconds() / 3600.0,
            "first_bar": self.first_bar.isoformat(),
            "last_bar": self.last_bar.isoformat(),
            "bars": self.bars,
        }


def scoring_window(
    candles: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    since: pd.Timestamp | None,
    until: pd.Timestamp | None,
    warmup: pd.Timedelta,
) -> tuple[pd.DataFrame, TruthBins, ScoringWindow]:
    """Cut the candles to warm-up + window and match them to the scored truth bars.

    Returns
    -------
    (candles, bins, window)
        The candles the map runs over, the truth bins of the scored bars and the window.

    Raises
    ------
    DataError
        When the window holds no whole truth bar after the warm-up.
    """
    index = utc_index(candles.index, "candle frame")
    candle_step = bar_step(index, "candle frame")
    truth_index = utc_index(truth.index, "truth series")
    truth_step = bar_step(truth_index, "truth series")
    first_candle = index[0]
    end_of_candles = index[-1] + candle_step
    if since is None:
        since = max(first_candle, truth_index[0])
    if until is None:
        until = min(end_of_candles, truth_index[-1] + truth_step)
    if since >= until:
        raise DataError(f"the scored window {since} .. {until} is empty; check --since/--until")
    map_start = since - warmup
    scored_start = since
    if first_candle > map_start:
        map_start = first_candle
        scored_start = max(since, first_candle + warmup)
    keep = (index >= map_start) & (index < until)
    if not keep.any():
        raise DataError(
            f"no candles between {map_start} and {until}; load candles that cover the window"
        )
    cut = candles.iloc[np.flatnonzero(keep)]
    if scored_start >= until:
        raise DataError(
            f"the candles start at {first_candle}, so after the map's warm-up of {warmup} "
            f"nothing before {until} can be scored; load candles from {since - warmup} on, "
            "or pass a shorter warm-up"
        )
    bins = truth_bins(
        cut.index, truth, since=scored_start, until=until,
        candle_step=candle_step, truth_step=truth_step,
    )  # fmt: skip
    window = ScoringWindow(
        map_start=utc_index(cut.index[:1], "candle frame")[0],
        scored_start=scored_start,
        until=until,
        warmup=warmup,
        warmup_used=scored_start - utc_index(cut.index[:1], "candle frame")[0],
        first_bar=bins.index[0],
        last_bar=bins.index[-1],
        bars=bins.count,
    )
    return cut, bins, window


class MapEvaluator:
    """Runs the map over fixed candles and sums ``liq_long``/``liq_short`` per truth bar.

    Parameters
    ----------
    candles : pandas.DataFrame
        The candles the map runs over (as :func:`scoring_window` cut them): open, high, low,
        close, volume and, when present and not all NaN, funding_rate, mark_high, mark_low,
        open_interest.  ``attrs`` timeframe and symbol are used when present.
    bins : TruthBins
        The scored truth bars of these candles.
    timeframe : str or float, optional
        Bar length (ccxt timeframe or seconds); read from the frame when omitted.
    tiers : LeverageTiers, optional
        Binance tiers; the bundled snapshot for the frame's symbol at its first bar when
        omitted (what :meth:`LiquidationMap.run` would pick).
    """

    def __init__(
        self,
        candles: pd.DataFrame,
        bins: TruthBins,
        *,
        timeframe: str | float | None = None,
        tiers: Any = None,
    ) -> None:
        if len(candles) != bins.candle_bin.shape[0]:
            raise DataError("the truth bins were built for other candles; rebuild them")
        # bars after the last scored one change nothing scored: do not run them
        scored = np.flatnonzero(bins.candle_bin >= 0)
        stop = int(scored[-1]) + 1 if scored.size else len(candles)
        self.bins = TruthBins(bins.index, bins.candle_bin[:stop], bins.truth_step)
        self.arrays = [
            np.ascontiguousarray(candles[name].to_numpy(dtype=np.float64)[:stop])
            for name in CANDLE_COLUMNS
        ]
        self.optional: dict[str, np.ndarray] = {}
        for keyword, column in _OPTIONAL.items():
            if column in candles.columns:
                values = np.ascontiguousarray(candles[column].to_numpy(dtype=np.float64)[:stop])
                if not np.isnan(values).all():
                    self.optional[keyword] = values
        self.length = stop
        self._scored_bars = np.flatnonzero(self.bins.candle_bin >= 0)
        self._scored_bins = self.bins.candle_bin[self._scored_bars]
        if timeframe is None:
            timeframe = candles.attrs.get("timeframe") or (
                bar_step(utc_index(candles.index, "candle frame"), "candle frame").total_seconds()
            )
        self.timeframe = timeframe
        if tiers is None:
            tiers = _tiers_for(candles)
        self.tiers = tiers
        self._local = threading.local()

    def _outputs(self) -> dict[str, np.ndarray]:
        outputs = getattr(self._local, "outputs", None)
        if outputs is None:
            outputs = {name: np.empty(self.length, dtype=np.float64) for name in LINES}
            self._local.outputs = outputs
        return outputs

    def evaluate(self, params: MapParams) -> tuple[np.ndarray, np.ndarray]:
        """Estimated long and short liquidations per scored truth bar for ``params``."""
        outputs = self._outputs()
        chosen = LiquidationMap(params, tiers=self.tiers, timeframe=self.timeframe)
        chosen.run_arrays(*self.arrays, **self.optional, out=outputs)
        # the kernel writes 0, never NaN, for liq_long/liq_short on skipped bars
        return tuple(  # type: ignore[return-value]
            np.bincount(
                self._scored_bins,
                weights=outputs[name][self._scored_bars],
                minlength=self.bins.count,
            )
            for name in ("liq_long", "liq_short")
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()


def _tiers_for(candles: pd.DataFrame) -> Any:
    """The bundled Binance tiers of the frame's symbol in force at its first bar."""
    from backtest.errors import ConfigError
    from backtest.liquidation.tiers import load_tiers

    symbol = candles.attrs.get("symbol") or "BTC/USDT:USDT"
    at = None
    if isinstance(candles.index, pd.DatetimeIndex) and len(candles.index):
        at = utc_index(candles.index[:1], "candle frame")[0].to_pydatetime()
    try:
        return load_tiers(symbol, at=at)
    except ConfigError:
        return load_tiers(at=at)


__all__ = ["MapEvaluator", "ScoringWindow", "scoring_window"]
