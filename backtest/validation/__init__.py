"""Scoring the liquidation map against recorded liquidations, and calibrating it.

- :func:`validate` scores a map (any parameters) against a truth series over a window, side by
  side with naive baselines (:mod:`backtest.validation.baselines`), after a warm-up.
- :func:`calibrate` fits the map's parameters on a training window with Optuna and scores the
  result on the following test window; :func:`backtest.liquidation.profiles.write_profile`
  stores them as a map profile every command accepts.
"""

from __future__ import annotations

from backtest._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "validate": "backtest.validation.scoring",
    "ValidationResult": "backtest.validation.scoring",
    "FittedWindow": "backtest.validation.scoring",
    "Scorecard": "backtest.validation.scorecard",
    "score": "backtest.validation.scorecard",
    "BASELINES": "backtest.validation.baselines",
    "naive_proxy": "backtest.validation.baselines",
    "range_split_proxy": "backtest.validation.baselines",
    "MapEvaluator": "backtest.validation.evaluator",
    "calibrate": "backtest.validation.calibration",
    "CalibrationResult": "backtest.validation.calibration",
    "SEARCH_SPACE": "backtest.validation.space",
    "Dimension": "backtest.validation.space",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
