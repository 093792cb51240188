"""Loading what ``validate`` and ``calibrate`` need from the store: candles and a truth series.

The truth is either the stored liquidation series of the symbol
(:func:`backtest.market.series.load_liquidations`, filled by ``backtest import`` or bundled for
BTC and ETH) or a file read with the same readers as the import (CoinGlass, Coinalyze or a
plain ``time, long, short`` CSV; :func:`backtest.market.groundtruth.read_file`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from backtest.errors import ConfigError, DataError

#: ``--truth`` values naming the stored series.
STORED = ("", "stored", "store")


def load_truth(
    truth: str | os.PathLike[str] | None,
    symbol: str,
    *,
    timeframe: str = "4h",
    exchange: str = "binanceusdm",
    data_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """The truth series: columns ``long``/``short`` indexed by bar open time (UTC).

    Parameters
    ----------
    truth : str or path, optional
        ``None``/``"stored"``: the stored liquidations of ``symbol`` at ``timeframe``;
        otherwise a CSV or Parquet file in a layout the import knows.
    symbol, timeframe, exchange, data_dir
        Which stored series (or, for a file, the symbol and venue it describes).

    Raises
    ------
    DataError
        When the series is not stored or the file is missing or malformed (one line).
    """
    if truth is None or str(truth).strip().lower() in STORED:
        from backtest.market.series import load_liquidations

        frame = load_liquidations(symbol, timeframe, exchange=exchange, data_dir=data_dir)
        frame.attrs.setdefault("source", frame.attrs.get("path", "stored"))
        return frame
    path = Path(truth)
    if not path.is_file():
        raise DataError(
            f"--truth {truth}: no such file; give a CSV/Parquet of per-bar liquidations "
            "(time, long, short or a CoinGlass/Coinalyze export) or 'stored'"
        )
    from backtest.market.groundtruth import ReadOptions, read_file

    parsed = read_file(path, ReadOptions(kind="liquidations", symbol=symbol, exchange=exchange))
    rows = parsed.frame
    index = pd.DatetimeIndex(
        pd.to_datetime(rows["timestamp_ms"].to_numpy(), unit="ms", utc=True), name="time"
    )
    frame = pd.DataFrame(
        {"long": rows["long"].to_numpy(), "short": rows["short"].to_numpy()}, index=index
    )
    frame.attrs.update(source=str(path), timeframe=parsed.timeframe, unit=parsed.unit)
    return frame


def load_candles(
    symbol: str,
    timeframe: str,
    *,
    exchange: str = "binanceusdm",
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Candles (with funding, mark and open interest when stored) from ``since`` to ``until``."""
    from backtest.market.store import load_market

    return load_market(
        symbol, timeframe, exchange=exchange, since=_ms(since), until=_ms(until),
        data_dir=data_dir,
    )  # fmt: skip


def _ms(moment: pd.Timestamp | None) -> int | None:
    return None if moment is None else int(moment.value // 1_000_000)


def map_parameters(profile: Any, overrides: dict[str, Any]) -> tuple[Any, Any]:
    """MapParams from ``--map-profile`` and ``--map``, and the profile's fitted window."""
    from backtest.liquidation.heatmap import MapParams
    from backtest.liquidation.profiles import read_profile
    from backtest.validation.bins import as_time
    from backtest.validation.scoring import FittedWindow

    if profile is None:
        return MapParams.from_dict(overrides), None
    loaded = read_profile(profile, overrides)
    fitted = None
    window = loaded.fitted_window
    if window is not None:
        try:
            since, until = as_time(window[0], "train_since"), as_time(window[1], "train_until")
        except ConfigError:
            raise ConfigError(
                f"map profile {profile}: [calibration] train_since/train_until are not dates"
            ) from None
        if since is not None and until is not None:
            fitted = FittedWindow(since, until)
    return loaded.params, fitted


__all__ = ["STORED", "load_candles", "load_truth", "map_parameters"]
