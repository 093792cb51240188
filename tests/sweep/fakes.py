"""A stand-in backend for the sweep tests: real sample data, a NumPy SMA crossover.

It computes real numbers from the market frame it is given (so a wrong slice or a mixed-up
parameter changes the metrics) without the backtrader engine.  Settings keys starting with
``_`` are test hooks: ``_log`` (a file each execution appends a line to) and ``_kill`` (a
marker file: the first worker process that claims it exits at once, as a crash would).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.errors import ConfigError
from backtest.results import Results
from backtest.sweep.backends import Backend

HERE = Path(__file__).resolve().parent
STRATEGY = f"{HERE / 'toy_strategy.py'}:ToyCross"

RUN_DEFAULTS: dict[str, Any] = {
    "symbol": "BTC/USDT:USDT",
    "exchange": "binanceusdm",
    "timeframe": "5m",
    "since": None,
    "until": None,
    "strategy": "ClusterFade",
    "params": {},
    "cash": 10_000.0,
    "leverage": 3.0,
    "margin_mode": "isolated",
    "maker_fee": 0.0002,
    "taker_fee": 0.0005,
    "venue": "binance",
    "funding": True,
    "map_params": {},
    "near_miss_pct": 1.0,
    "data_dir": None,
}


def fake_prepare(settings: Mapping[str, Any]) -> dict[str, Any]:
    from backtest.plugins import coerce_parameters, resolve_strategy, strategy_parameters

    values = {**RUN_DEFAULTS, **dict(settings)}
    cls = resolve_strategy(str(values["strategy"]))
    params = {**strategy_parameters(cls), **coerce_parameters(cls, values.get("params") or {})}
    values["params"] = params
    if float(values["leverage"]) <= 0:
        raise ConfigError(f"leverage {values['leverage']} must be positive")
    values["leverage"] = float(values["leverage"])
    return values


def fake_run(settings: Mapping[str, Any], frame: pd.DataFrame) -> Results:
    if settings.get("_log"):
        line = json.dumps({"params": settings["params"], "since": settings.get("since")})
        with open(settings["_log"], "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    marker = settings.get("_kill")
    if marker:
        claimed = f"{marker}.claimed-{os.getpid()}"
        try:
            owner = int(Path(marker).read_text())
            if owner != os.getpid():
                os.rename(marker, claimed)
                os._exit(1)
        except (FileNotFoundError, ValueError):
            pass
    params = settings["params"]
    if params.get("explode_after"):
        raise RuntimeError(f"explode_after={params['explode_after']}: deliberate failure")
    close = frame["close"].to_numpy()
    fast = pd.Series(close).rolling(int(params["fast"])).mean().to_numpy()
    slow = pd.Series(close).rolling(int(params["slow"])).mean().to_numpy()
    holding = np.nan_to_num((fast > slow).astype(float))
    bar_returns = np.zeros_like(close)
    bar_returns[1:] = holding[:-1] * np.diff(close) / close[:-1]
    exposure = float(params["fraction"]) * float(settings["leverage"])
    value = float(settings["cash"]) * np.cumprod(1.0 + exposure * bar_returns)
    equity = pd.DataFrame({"value": value}, index=frame.index)
    trades = pd.DataFrame({"entry": np.flatnonzero(np.diff(holding) > 0)})
    return Results(
        config=dict(settings),
        meta={"run_id": "fake", "strategy": "ToyCross", "status": "complete"},
        equity=equity,
        trades=trades,
    )


def fake_metrics(results: Results) -> dict[str, Any]:
    value = results.equity["value"].to_numpy()
    returns = np.diff(value) / value[:-1]
    deviation = float(np.std(returns))
    sharpe = float(np.mean(returns)) / deviation * math.sqrt(365 * 288) if deviation else 0.0
    peak = np.maximum.accumulate(value)
    return {
        "Return [%]": (value[-1] / value[0] - 1.0) * 100.0,
        "Sharpe Ratio": sharpe,
        "Max. Drawdown [%]": float(np.min(value / peak - 1.0)) * 100.0,
        "# Trades": len(results.trades),
        "Bars": len(value),
        "Start": str(results.equity.index[0]),
    }


def fake_report(results: Results, folder: Path) -> None:
    results.save(folder)
    (folder / "report.html").write_text(f"<p>{fake_metrics(results)['Return [%]']}</p>")


FAKE_BACKEND = Backend(prepare=fake_prepare, run=fake_run, metrics=fake_metrics, report=fake_report)
