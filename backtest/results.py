"""What a backtest produces, as plain data that can be saved, loaded and re-rendered.

:class:`Results` is the single hand-over point between the engine (which fills it), the report
(which reads only this), the run command and the sweep.  Every table is a pandas frame indexed
or stamped by UTC time; columns are documented on the class.  ``save`` writes one Parquet file
per table plus ``results.json`` (configuration and metadata) into a folder, atomically per file;
``load`` reads such a folder back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.errors import DataError
from backtest.folders import RUN, atomic_target, check_writable_target, write_atomic, write_marker
from backtest.strict_json import dumps

#: Results format version, bumped when a table's meaning changes.
RESULTS_FORMAT = 1

_TABLES: tuple[str, ...] = (
    "equity",
    "trades",
    "orders",
    "liquidations",
    "funding",
    "near_misses",
    "market",
    "clusters",
    "heatmap",
    "positions",
    "rejected",
    "open_trades",
)
#: Tables every saved run has (``heatmap`` and ``positions`` are missing from folders saved
#: before they existed).
REQUIRED_TABLES: tuple[str, ...] = tuple(
    name for name in _TABLES if name not in ("heatmap", "positions", "rejected", "open_trades")
)


@dataclass
class Results:
    """The outcome of one backtest run.

    Attributes
    ----------
    config : dict
        The run's configuration as JSON-compatible data (``RunConfig.to_dict()``).
    meta : dict
        ``run_id``, ``strategy``, ``symbol``, ``status`` (``"complete"`` or ``"failed"``),
        ``error`` (when failed), ``started``/``finished`` (ISO UTC), ``version``.  A portfolio
        run adds ``symbols`` (the list), ``bars_dropped`` (per symbol: its bars missing from
        another symbol's candles, left out of the common clock) and per-symbol ``warmup``,
        ``data_files`` and ``tiers``.
    equity : DataFrame
        Per bar, indexed by UTC time: ``value`` (account equity, quote currency), ``cash``,
        ``position_size`` (signed, base units), ``position_notional`` (signed, quote),
        ``margin_used``, ``effective_leverage`` (|notional| / value), ``liquidation_price``
        (NaN when flat), ``funding_cum`` (cumulative funding paid, positive = paid),
        ``fees_cum`` (cumulative fees paid).
    trades : DataFrame
        One row per closed trade: ``entry_time``, ``exit_time``, ``side`` (``"long"`` or
        ``"short"``), ``size`` (base units, positive), ``entry_price``, ``exit_price``,
        ``pnl_gross``, ``fees``, ``funding``, ``pnl_net``, ``liquidated`` (bool), ``bars``,
        ``exit_reason`` (the closing order's ``reason=``, e.g. ``"take-profit"``; ``"strategy"``
        when it gave none, ``"liquidation"``; ``"end of data"`` in ``open_trades``).
    orders : DataFrame
        One row per executed order: ``time``, ``side`` (``"buy"``/``"sell"``), ``size``,
        ``price``, ``fee``, ``reason`` (the ``reason=`` the strategy gave the order, e.g.
        ``self.close(reason="stop")``; without one ``"stop"`` for a stop order, else
        ``"strategy"``; ``"liquidation"`` for the broker's forced closes).
    liquidations : DataFrame
        One row per forced close of the strategy's own position: ``time``, ``side``, ``size``,
        ``liquidation_price``, ``fill_price``, ``loss`` (positive), ``fee``, ``gap`` (bool).
    funding : DataFrame
        One row per settlement crossed with an open position: ``time``, ``rate``,
        ``mark_price``, ``position_size`` (signed), ``payment`` (positive = paid by us).
    near_misses : DataFrame
        Bars where price came within the near-miss threshold of the liquidation price:
        ``time``, ``side``, ``price``, ``liquidation_price``, ``distance_pct``.
    market : DataFrame
        The traded candles (``open``, ``high``, ``low``, ``close``, ``volume``), indexed by time.
    clusters : DataFrame
        The liquidation map's per-bar outputs (column names as the map reports them); may be
        empty when the run used no map.
    heatmap : DataFrame
        The liquidation map's density, coarsely re-bucketed, at regularly spaced snapshot bars
        (at most about 300), in long format: one row per snapshot and price bin with ``time``
        (open time of the snapshot bar, UTC; the density is as of that bar's close), ``price``
        (bin centre, quote currency; about 120 equal-width bins over 0.85 x the lowest low to
        1.15 x the highest high), ``long_notional`` and ``short_notional`` (quote currency
        whose liquidation price lies in the bin).  Empty for folders saved before it existed.
    positions : DataFrame
        Portfolio runs only (empty otherwise): each symbol's position per bar, indexed by UTC
        time, with ``symbol``, ``position_size``, ``position_notional`` and
        ``liquidation_price``.
    rejected : DataFrame
        One row per order the broker refused: ``time`` (the bar of the refusal), ``side``,
        ``size``, ``price`` and ``reason`` (e.g. the margin it needed and what was available,
        or the leverage tier it broke).  Empty for folders saved before it existed.
    open_trades : DataFrame
        Trades still open after the last bar (not in ``trades``), with the columns of
        ``trades``: ``exit_time``/``exit_price`` are the last bar's time and close (the mark),
        ``pnl_gross`` includes the unrealised PnL at that close, ``size`` is the size still open.

    Notes
    -----
    In a portfolio run (``config["symbol"]`` is a list) ``trades``, ``orders``,
    ``liquidations``, ``funding`` and ``near_misses`` start with a ``symbol`` column,
    ``market``, ``clusters`` and ``heatmap`` hold every symbol's rows with a ``symbol`` column,
    and ``equity`` is the account's (``position_size`` counts the open positions,
    ``position_notional`` is the net notional, ``effective_leverage`` the gross notional over
    equity, ``liquidation_price`` NaN).  :meth:`for_symbol` gives one symbol's view.
    """

    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    equity: pd.DataFrame = field(default_factory=pd.DataFrame)
    trades: pd.DataFrame = field(default_factory=pd.DataFrame)
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)
    liquidations: pd.DataFrame = field(default_factory=pd.DataFrame)
    funding: pd.DataFrame = field(default_factory=pd.DataFrame)
    near_misses: pd.DataFrame = field(default_factory=pd.DataFrame)
    market: pd.DataFrame = field(default_factory=pd.DataFrame)
    clusters: pd.DataFrame = field(default_factory=pd.DataFrame)
    heatmap: pd.DataFrame = field(default_factory=pd.DataFrame)
    positions: pd.DataFrame = field(default_factory=pd.DataFrame)
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)
    open_trades: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def complete(self) -> bool:
        """Whether the run finished (a failed run's tables are partial)."""
        return self.meta.get("status") == "complete"

    @property
    def symbols(self) -> tuple[str, ...]:
        """The run's symbols (one for a single-market run)."""
        symbol = (self.config or {}).get("symbol") or (self.meta or {}).get("symbol") or ""
        if isinstance(symbol, list | tuple):
            return tuple(str(item) for item in symbol)
        return (str(symbol),) if symbol else ()

    @property
    def portfolio(self) -> bool:
        """Whether the run went through the portfolio runner (several symbols, usually)."""
        return len(self.symbols) > 1 or not self.positions.empty

    def for_symbol(self, symbol: str) -> Results:
        """One symbol's view of a portfolio run, shaped like a single-market run's Results.

        Event tables, ``market``, ``clusters`` and ``heatmap`` keep that symbol's rows (without
        the ``symbol`` column); ``equity`` is the account's, with that symbol's position size,
        notional and liquidation price (effective leverage = its notional over equity).  A
        single-symbol run returns itself for its own symbol.

        Raises
        ------
        DataError
            When the run did not trade ``symbol``.
        """
        if symbol not in self.symbols:
            raise DataError(
                f"the run traded {', '.join(self.symbols) or 'no symbol'}, not {symbol!r}"
            )
        if not self.portfolio:
            return self
        tables = {}
        for name in _TABLES:
            frame: pd.DataFrame = getattr(self, name)
            if "symbol" in frame.columns:
                frame = frame[frame["symbol"] == symbol].drop(columns="symbol")
                if not isinstance(frame.index, pd.DatetimeIndex):
                    frame = frame.reset_index(drop=True)
            tables[name] = frame
        equity = self.equity.copy()
        positions = tables.pop("positions")
        if not equity.empty and not positions.empty:
            aligned = positions.reindex(equity.index)
            equity["position_size"] = aligned["position_size"].to_numpy()
            equity["position_notional"] = aligned["position_notional"].to_numpy()
            equity["liquidation_price"] = aligned["liquidation_price"].to_numpy()
            value = equity["value"].to_numpy()
            notional = equity["position_notional"].to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                leverage = np.where(value > 0.0, np.abs(notional) / value, np.nan)
            leverage[equity["position_size"].to_numpy() == 0.0] = 0.0
            equity["effective_leverage"] = leverage
        tables["equity"] = equity
        config = dict(self.config or {})
        config["symbol"] = symbol
        meta = dict(self.meta or {})
        meta["symbol"] = symbol
        return Results(config=config, meta=meta, **tables)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write every table and the metadata into ``folder`` (created if needed).

        Each file is written to a temporary name and renamed, so a reader never sees a
        half-written file.  ``results.json`` is written after the tables and the folder's
        ``.backtest-run`` marker last: its presence marks a completely saved run.

        Returns
        -------
        Path
            The folder.

        Raises
        ------
        ConfigError
            When ``folder`` exists, is not empty and is not a folder this program wrote (its
            files are left alone).
        """
        path = Path(folder)
        check_writable_target(path, (RUN,), "folder")
        path.mkdir(parents=True, exist_ok=True)
        for name in _TABLES:
            frame: pd.DataFrame = getattr(self, name)
            _atomic_parquet(frame, path / f"{name}.parquet")
        document = {
            "format": RESULTS_FORMAT,
            "meta": self.meta,
            "config": self.config,
        }
        write_atomic(path / "results.json", dumps(document, indent=2))
        write_marker(path, RUN)
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Results:
        """Read a folder written by :meth:`save`.

        Raises
        ------
        DataError
            When the folder holds no saved run or a file cannot be read.
        """
        path = Path(folder)
        document_path = path / "results.json"
        if not document_path.is_file():
            raise DataError(
                f"{path} holds no saved run (no results.json): pass a folder written by "
                "`python -m backtest run`"
            )
        try:
            document = json.loads(document_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DataError(f"{document_path} is not a readable results file: {error}") from error
        if not isinstance(document, dict) or not all(
            isinstance(document.get(name, {}), dict) for name in ("meta", "config")
        ):
            raise DataError(
                f"{document_path} is damaged (not a results document): re-run the backtest"
            )
        if document.get("format") != RESULTS_FORMAT:
            raise DataError(
                f"{document_path} has results format {document.get('format')!r}; this version "
                f"reads format {RESULTS_FORMAT}: re-run the backtest"
            )
        tables: dict[str, pd.DataFrame] = {}
        for name in _TABLES:
            table_path = path / f"{name}.parquet"
            if not table_path.is_file():
                tables[name] = pd.DataFrame()
                continue
            try:
                tables[name] = pd.read_parquet(table_path)
            except Exception as error:  # pyarrow raises several unrelated types
                raise DataError(f"{table_path} is corrupt or not Parquet: {error}") from error
        return cls(config=document.get("config", {}), meta=document.get("meta", {}), **tables)


def _atomic_parquet(frame: pd.DataFrame, target: Path) -> None:
    with atomic_target(target) as temporary:
        frame.to_parquet(temporary)
