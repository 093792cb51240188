"""Score the liquidation map against recorded liquidations: :func:`validate`.

The map runs from a warm-up before the scored window (see :mod:`backtest.validation.evaluator`);
its per-bar ``liq_long``/``liq_short`` and every baseline are summed into the truth's whole bars
and scored side by side (:mod:`backtest.validation.scorecard`).  The result states the window
it scored and, when the parameters came from a calibration, the window they were fitted on and
whether the two overlap: a score on bars the parameters were fitted on is not a test.

Examples
--------
>>> from backtest.validation import validate
>>> result = validate(candles, truth, since="2025-07-01", until="2025-11-15")  # doctest: +SKIP
>>> print(result.format())                                                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backtest.errors import DataError
from backtest.liquidation.heatmap import MapParams
from backtest.validation.baselines import BASELINES
from backtest.validation.bins import as_time, check_truth
from backtest.validation.evaluator import MapEvaluator, ScoringWindow, scoring_window
from backtest.validation.scorecard import Scorecard, score


@dataclass(frozen=True)
class FittedWindow:
    """The training window parameters were fitted on (from a profile's calibration)."""

    since: pd.Timestamp
    until: pd.Timestamp

    def overlap(self, window: ScoringWindow) -> str:
        """``"none"``, ``"partly"`` or ``"all"``: how much of ``window`` it covers."""
        start, end = window.first_bar, window.last_bar
        if self.until <= start or self.since > end:
            return "none"
        if self.since <= start and self.until > end:
            return "all"
        return "partly"


@dataclass(frozen=True, eq=False)
class ValidationResult:
    """What :func:`validate` returns.

    Attributes
    ----------
    scorecard : Scorecard
        Map and baselines × figures × sides.
    series : pandas.DataFrame
        Per scored truth bar: ``truth_long``, ``truth_short`` and ``<estimator>_long`` /
        ``<estimator>_short`` for the map and each baseline.
    window : ScoringWindow
        What was scored and the warm-up before it.
    params : MapParams
        The map's parameters.
    fitted : FittedWindow or None
        Where the parameters were fitted, when known.
    meta : dict
        Symbol, timeframe and anything the caller recorded (JSON-able).
    """

    scorecard: Scorecard
    series: pd.DataFrame
    window: ScoringWindow
    params: MapParams
    fitted: FittedWindow | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def fitted_overlap(self) -> str:
        """How much of the scored window the parameters were fitted on (``unknown`` if not said)."""
        return "unknown" if self.fitted is None else self.fitted.overlap(self.window)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-bar series, as JSON-able values."""
        fitted = None
        if self.fitted is not None:
            fitted = {
                "since": self.fitted.since.isoformat(),
                "until": self.fitted.until.isoformat(),
            }
        return {
            "window": self.window.to_dict(),
            "fitted_on": fitted,
            "fitted_overlap": self.fitted_overlap,
            "scorecard": self.scorecard.to_dict(),
            "params": self.params.to_dict(),
            "meta": dict(self.meta),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        from backtest.strict_json import dumps

        return dumps(self.to_dict(), indent=2)  # strict JSON: NaN and infinities as null

    def format(self) -> str:
        """A header naming the window and its honesty, then the table."""
        window = self.window
        what = " ".join(str(self.meta[key]) for key in ("symbol", "timeframe") if key in self.meta)
        lines = [
            f"scored {what + ': ' if what else ''}{window.bars} truth bars "
            f"{window.first_bar:%Y-%m-%d %H:%M} .. {window.last_bar:%Y-%m-%d %H:%M} UTC "
            f"(bar open times), map started {window.map_start:%Y-%m-%d %H:%M} "
            f"(warm-up {_days(window.warmup_used)})",
        ]
        if self.fitted is None:
            lines.append("parameters: not from a calibration (no fitted window recorded)")
        else:
            verdict = {
                "none": "none of the scored bars: an out-of-sample test",
                "partly": "PART of the scored bars: not a clean test",
                "all": "ALL the scored bars: an in-sample score, not a test",
            }[self.fitted_overlap]
            lines.append(
                f"parameters fitted on {self.fitted.since:%Y-%m-%d} .. "
                f"{self.fitted.until:%Y-%m-%d}, {verdict}"
            )
        lines.append(self.scorecard.format())
        return "\n".join(lines)


def _days(span: pd.Timedelta) -> str:
    days = span.total_seconds() / 86400.0
    return f"{days:.1f} days" if days % 1 else f"{days:.0f} days"


def resolve_warmup_span(warmup: Any, params: MapParams, timeframe: Any) -> pd.Timedelta:
    """The warm-up: ``warmup`` when given (``"30d"``, Timedelta, ``0``), else the shared rule."""
    from backtest.liquidation.warmup import resolve_warmup

    return resolve_warmup(warmup, params, timeframe)


def validate(
    candles: pd.DataFrame,
    truth: pd.DataFrame,
    params: MapParams | Mapping[str, Any] | None = None,
    *,
    since: Any = None,
    until: Any = None,
    warmup: Any = None,
    fitted: FittedWindow | None = None,
    tiers: Any = None,
    baselines: Mapping[str, Callable[[pd.DataFrame], pd.DataFrame]] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> ValidationResult:
    """Score the map (and the baselines) against a truth series over a window.

    Parameters
    ----------
    candles : pandas.DataFrame
        Candles as :func:`backtest.market.store.load_market` returns them, reaching back a
        warm-up before ``since`` (when they do not, scoring starts one warm-up after the
        first candle instead).
    truth : pandas.DataFrame
        Recorded liquidations: columns ``long`` and ``short`` (quote currency per bar), indexed
        by bar open time (UTC), bars a whole number of candle bars long (e.g. 4 h).
    params : MapParams or mapping, optional
        The map's parameters (defaults when None).
    since, until : time, optional
        The scored window: truth bars opening at or after ``since`` and ending at or before
        ``until`` (UTC).  Default: all the truth the candles cover.
    warmup : str or Timedelta, optional
        Warm-up before ``since``; default the shared rule
        (:func:`backtest.liquidation.warmup.resolve_warmup`).
    fitted : FittedWindow, optional
        The window the parameters were fitted on (stated with the result).
    tiers : LeverageTiers, optional
        Binance tiers (the bundled snapshot of the frame's symbol by default).
    baselines : mapping, optional
        Baselines by name (default :data:`backtest.validation.baselines.BASELINES`; must
        include ``naive``).
    meta : mapping, optional
        Recorded with the result (symbol, timeframe, truth source...).

    Returns
    -------
    ValidationResult

    Raises
    ------
    DataError
        For a malformed truth or candle frame, or a window with nothing to score.
    """
    if params is None:
        params = MapParams()
    elif not isinstance(params, MapParams):
        params = MapParams.from_dict(params)
    if not isinstance(candles, pd.DataFrame) or len(candles) == 0:
        raise DataError("validate() needs a non-empty candle frame (see load_market)")
    truth = check_truth(truth)
    timeframe = candles.attrs.get("timeframe")
    span = resolve_warmup_span(warmup, params, timeframe)
    cut, bins, window = scoring_window(
        candles, truth, since=as_time(since, "since"), until=as_time(until, "until"), warmup=span
    )
    evaluator = MapEvaluator(cut, bins, tiers=tiers)
    estimates: dict[str, tuple[np.ndarray, np.ndarray]] = {"map": evaluator.evaluate(params)}
    for name, baseline in (baselines or BASELINES).items():
        frame = baseline(cut)
        estimates[name] = (bins.sum(frame["long"]), bins.sum(frame["short"]))
    scored_truth = truth.reindex(bins.index)
    truth_long = scored_truth["long"].to_numpy()
    truth_short = scored_truth["short"].to_numpy()
    card = score(truth_long, truth_short, estimates)
    columns = {"truth_long": truth_long, "truth_short": truth_short}
    for name, (long, short) in estimates.items():
        columns[f"{name}_long"] = long
        columns[f"{name}_short"] = short
    series = pd.DataFrame(columns, index=bins.index)
    info = dict(meta or {})
    info.setdefault("symbol", candles.attrs.get("symbol"))
    info.setdefault("timeframe", timeframe)
    info = {key: value for key, value in info.items() if value is not None}
    return ValidationResult(
        scorecard=card, series=series, window=window, params=params, fitted=fitted, meta=info
    )


__all__ = ["FittedWindow", "ValidationResult", "resolve_warmup_span", "validate"]
