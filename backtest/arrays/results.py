"""A :class:`~backtest.arrays.simulation.Simulation` as the tables of :class:`Results`.

Every table has the columns, types and meanings the event engine's analyzers
(:mod:`backtest.engine.analyzers`) give it, built the same way from the simulator's fills,
settlements, liquidations and refusals:

* ``equity``: the per-bar account state, notional at the close, effective leverage;
* ``orders``: one row per fill, tagged with the decision's reason (``strategy`` without one,
  ``stop`` for an untagged stop, ``liquidation`` for forced closes);
* ``trades`` / ``open_trades``: flat to flat, with fees split between the closing and the
  opening part of a fill, funding paid while open (entry bar exclusive, exit bar inclusive);
* ``liquidations``, ``funding``, ``rejected`` (the broker's reason texts), ``near_misses``
  (bars whose worst price came within ``near_miss_pct`` % of the liquidation price);
* ``market`` and ``clusters`` (the map's lines the strategy saw).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from backtest.arrays.simulation import (
    FILL_LIQUIDATION,
    FILL_STOP,
    FILL_TAKE_PROFIT,
    Simulation,
    rejection_message,
)
from backtest.engine.analyzers import (
    EQUITY_COLUMNS,
    FUNDING_COLUMNS,
    LIQUIDATION_COLUMNS,
    NEAR_MISS_COLUMNS,
    ORDER_COLUMNS,
    REJECTED_COLUMNS,
    TRADE_COLUMNS,
    _frame,
    _times,
)
from backtest.engine.feeds import (
    _BINADE_LOW,
    _NANOSECONDS_PER_DAY,
    UNIX_EPOCH_DATE_NUMBER,
    _day_parts,
    date_numbers,
    date_numbers_to_index,
)

#: A trade is closed when what is left of it is at most this share of its peak size.
TRADE_DUST = 1e-12
_NANOSECONDS_PER_MINUTE = 60_000_000_000
_MINUTE_FRACTIONS: list[np.ndarray] = []
#: Empty tables, built once (each call returns a copy).
_EMPTY: dict[str, pd.DataFrame] = {}


def bar_date_numbers(index: pd.DatetimeIndex) -> np.ndarray:
    """:func:`backtest.engine.feeds.date_numbers` of the bar times, bit for bit, faster.

    Bars on whole minutes (every timeframe from 1m up) take their day fraction from a table of
    the 1,440 minutes of a day, computed once as ``date_numbers`` computes it; other times go
    through ``date_numbers`` itself.
    """
    times = pd.DatetimeIndex(index)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    nanoseconds = times.as_unit("ns").asi8
    days, within_day = np.divmod(nanoseconds, _NANOSECONDS_PER_DAY)
    minutes, rest = np.divmod(within_day, _NANOSECONDS_PER_MINUTE)
    if rest.any():
        return date_numbers(times)
    if not _MINUTE_FRACTIONS:
        _MINUTE_FRACTIONS.append(
            np.array(
                [
                    math.fsum((_BINADE_LOW, *_day_parts(minute * _NANOSECONDS_PER_MINUTE)))
                    - _BINADE_LOW
                    for minute in range(1_440)
                ],
                dtype=np.float64,
            )
        )
    return days.astype(np.float64) + UNIX_EPOCH_DATE_NUMBER + _MINUTE_FRACTIONS[0][minutes]


def _empty(name: str, build: Any) -> pd.DataFrame:
    """A copy of the empty table ``name`` (built by ``build()`` the first time)."""
    if name not in _EMPTY:
        _EMPTY[name] = build()
    return _EMPTY[name].copy()


def _reason_label(kind: int, code: int, reasons: Sequence[str]) -> str:
    """The orders table's reason of a fill (as :func:`backtest.engine.analyzers.order_reason`)."""
    if kind == FILL_LIQUIDATION:
        return "liquidation"
    if code > 0:
        return str(reasons[code])
    # the exits of Decisions' stop/take_profit levels (ReplayDecisions tags the take-profit)
    if kind == FILL_STOP:
        return "stop"
    return "take-profit" if kind == FILL_TAKE_PROFIT else "strategy"


def equity_table(
    simulation: Simulation, numbers: np.ndarray, close: np.ndarray, mult: float
) -> Any:
    """The ``equity`` table (as :class:`backtest.engine.analyzers.AccountRecorder`)."""
    value = np.asarray(simulation.value, dtype=np.float64)
    size = np.asarray(simulation.position_size, dtype=np.float64)
    notional = size * close * mult
    with np.errstate(divide="ignore", invalid="ignore"):
        leverage = np.where(value > 0.0, np.abs(notional) / value, np.nan)
    leverage[size == 0.0] = 0.0
    columns = {
        "value": value,
        "cash": np.asarray(simulation.cash, dtype=np.float64),
        "position_size": size,
        "position_notional": notional,
        "margin_used": np.asarray(simulation.margin_used, dtype=np.float64),
        "effective_leverage": leverage,
        "liquidation_price": np.asarray(simulation.liquidation_price, dtype=np.float64),
        "funding_cum": np.asarray(simulation.funding_cum, dtype=np.float64),
        "fees_cum": np.asarray(simulation.fees_cum, dtype=np.float64),
    }
    return pd.DataFrame(columns, index=_times(numbers), columns=list(EQUITY_COLUMNS))


def fill_reasons(simulation: Simulation, reasons: Sequence[str]) -> np.ndarray:
    """Each fill's reason label (object array), as :func:`_reason_label` gives it."""
    codes = np.asarray(simulation.fill_reason, dtype=np.int64)
    kinds = np.asarray(simulation.fill_kind)
    labels = np.array(list(reasons), dtype=object)
    untagged = np.where(
        kinds == FILL_STOP, "stop", np.where(kinds == FILL_TAKE_PROFIT, "take-profit", "strategy")
    ).astype(object)
    result = np.where(codes > 0, labels[np.clip(codes, 0, len(labels) - 1)], untagged)
    return np.where(kinds == FILL_LIQUIDATION, "liquidation", result).astype(object)


def orders_table(simulation: Simulation, numbers: np.ndarray, reasons: Sequence[str]) -> Any:
    """The ``orders`` table: one row per fill."""
    if not simulation.fill_bar.shape[0]:
        return _frame([], ORDER_COLUMNS, ("time",))
    size = np.asarray(simulation.fill_size, dtype=np.float64)
    return pd.DataFrame(
        {
            "time": _times(numbers[simulation.fill_bar]),
            "side": np.where(size > 0, "buy", "sell").astype(object),
            "size": np.abs(size),
            "price": np.asarray(simulation.fill_price, dtype=np.float64),
            "fee": np.asarray(simulation.fill_fee, dtype=np.float64),
            "reason": fill_reasons(simulation, reasons),
        },
        columns=list(ORDER_COLUMNS),
    )


def rejected_table(simulation: Simulation, numbers: np.ndarray, leverage: float) -> Any:
    """The ``rejected`` table with the broker's reason texts."""
    rows = [
        (
            numbers[bar],
            "buy" if size > 0 else "sell",
            abs(size),
            float(price),
            rejection_message(code, notional, leverage, needed, available),
        )
        for bar, size, price, code, notional, needed, available in zip(
            simulation.reject_bar.tolist(),
            simulation.reject_size.tolist(),
            simulation.reject_price.tolist(),
            simulation.reject_code.tolist(),
            simulation.reject_notional.tolist(),
            simulation.reject_needed.tolist(),
            simulation.reject_available.tolist(),
            strict=True,
        )
    ]
    frame = _frame(rows, REJECTED_COLUMNS, ("time",))
    for name in ("size", "price"):
        frame[name] = frame[name].astype(np.float64)
    return frame


def liquidations_table(simulation: Simulation, numbers: np.ndarray) -> Any:
    """The ``liquidations`` table."""
    rows = [
        (numbers[bar], "long" if side > 0 else "short", size, price, fill, loss, fee, bool(gap))
        for bar, side, size, price, fill, loss, fee, gap in zip(
            simulation.liq_bar.tolist(),
            simulation.liq_side.tolist(),
            simulation.liq_size.tolist(),
            simulation.liq_price.tolist(),
            simulation.liq_fill_price.tolist(),
            simulation.liq_loss.tolist(),
            simulation.liq_fee.tolist(),
            simulation.liq_gap.tolist(),
            strict=True,
        )
    ]
    frame = _frame(rows, LIQUIDATION_COLUMNS, ("time",))
    for name in ("size", "liquidation_price", "fill_price", "loss", "fee"):
        frame[name] = frame[name].astype(np.float64)
    frame["gap"] = frame["gap"].astype(bool)
    return frame


def funding_table(simulation: Simulation, numbers: np.ndarray) -> Any:
    """The ``funding`` table (positive payment = paid by the strategy)."""
    rows = list(
        zip(
            numbers[simulation.funding_bar].tolist(),
            simulation.funding_rate.tolist(),
            simulation.funding_mark.tolist(),
            simulation.funding_size.tolist(),
            simulation.funding_payment.tolist(),
            strict=True,
        )
    )
    frame = _frame(rows, FUNDING_COLUMNS, ("time",))
    for column in FUNDING_COLUMNS[1:]:
        frame[column] = frame[column].astype(np.float64)
    return frame


class _Trade:
    __slots__ = (
        "bar",
        "closed_size",
        "entry_value",
        "exit_bar",
        "exit_value",
        "fees",
        "liquidated",
        "opened_size",
        "peak",
        "pnl",
        "reason",
        "side",
        "size",
    )

    def __init__(self, bar: int, side: int) -> None:
        self.bar = bar
        self.exit_bar = -1
        self.side = side
        self.size = self.peak = 0.0
        self.opened_size = self.closed_size = 0.0
        self.entry_value = self.exit_value = 0.0
        self.fees = self.pnl = 0.0
        self.liquidated = False
        self.reason = ""


def _walk_trades(
    simulation: Simulation, reasons: Sequence[str]
) -> tuple[list[_Trade], _Trade | None, float]:
    """Closed trades, the trade still open and the open position's average price.

    The position's price follows :meth:`backtrader.position.Position.update`.
    """
    closed: list[_Trade] = []
    trade: _Trade | None = None
    size = price = 0.0
    for bar, fill_size, fill_price, kind, code, pnl, part_closed, part_opened, fee_c, fee_o in zip(
        simulation.fill_bar.tolist(),
        simulation.fill_size.tolist(),
        simulation.fill_price.tolist(),
        simulation.fill_kind.tolist(),
        simulation.fill_reason.tolist(),
        simulation.fill_pnl.tolist(),
        simulation.fill_closed.tolist(),
        simulation.fill_opened.tolist(),
        simulation.fill_closed_fee.tolist(),
        simulation.fill_opened_fee.tolist(),
        strict=True,
    ):
        if part_closed and trade is not None:
            quantity = abs(part_closed)
            trade.closed_size += quantity
            trade.exit_value += quantity * fill_price
            trade.fees += fee_c
            trade.pnl += pnl
            trade.size -= quantity
            trade.liquidated = trade.liquidated or kind == FILL_LIQUIDATION
            trade.reason = _reason_label(kind, code, reasons)
            if trade.size <= TRADE_DUST * trade.peak:
                trade.exit_bar = bar
                closed.append(trade)
                trade = None
        if part_opened:
            if trade is None:
                trade = _Trade(bar, 1 if part_opened > 0 else -1)
            quantity = abs(part_opened)
            trade.opened_size += quantity
            trade.entry_value += quantity * fill_price
            trade.fees += fee_o
            trade.size += quantity
            trade.peak = max(trade.peak, trade.size)
        size, price = _position_update(size, price, fill_size, fill_price)
    return closed, trade, price


def _position_update(
    old: float, price: float, size: float, fill_price: float
) -> tuple[float, float]:
    """The new size and average price after a fill (backtrader's ``Position.update``)."""
    new = old + size
    if not new:
        return new, 0.0
    if not old:
        return new, fill_price
    if (old > 0) == (size > 0):
        return new, (price * old + size * fill_price) / new
    if (old > 0) == (new > 0):
        return new, price
    return new, fill_price


def trade_tables(
    simulation: Simulation,
    numbers: np.ndarray,
    close: np.ndarray,
    reasons: Sequence[str],
    mult: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``trades`` and ``open_trades`` tables."""
    settlement_bars = simulation.funding_bar.tolist()
    running = [0.0]
    for payment in simulation.funding_payment.tolist():
        running.append(running[-1] + payment)

    def funding_between(entry_bar: int, exit_bar: int) -> float:
        first = bisect.bisect_right(settlement_bars, entry_bar)
        last = bisect.bisect_right(settlement_bars, exit_bar)
        return running[last] - running[first] if last > first else 0.0

    paired = _paired_trades(simulation, reasons, numbers, np.asarray(running))
    if paired is not None:
        trades, open_trade, position_price = paired
    else:
        closed, open_trade, position_price = _walk_trades(simulation, reasons)
        trades = _closed_trades_frame(closed, numbers, funding_between)
    open_rows = []
    count = len(numbers)
    if open_trade is not None and count > 0 and open_trade.opened_size > 0.0:
        size = float(simulation.position_size[-1])
        mark = float(close[count - 1])
        unrealised = size * (mark - position_price) * mult
        snapshot = _Trade(open_trade.bar, open_trade.side)
        snapshot.exit_bar = count - 1
        snapshot.opened_size = open_trade.opened_size
        snapshot.entry_value = open_trade.entry_value
        snapshot.closed_size = 1.0
        snapshot.exit_value = mark
        snapshot.peak = abs(size)
        snapshot.fees = open_trade.fees
        snapshot.pnl = open_trade.pnl + unrealised
        snapshot.reason = "end of data"
        funding = funding_between(open_trade.bar, count - 1)
        open_rows.append(_trade_row(snapshot, numbers, funding, count - 1 - open_trade.bar))
    return trades, _trade_frame(open_rows)


def _paired_trades(
    simulation: Simulation, reasons: Sequence[str], numbers: np.ndarray, running: np.ndarray
) -> tuple[pd.DataFrame, _Trade | None, float] | None:
    """The trades of a run whose fills alternate entry from flat / whole exit, in NumPy.

    Most strategies enter from flat and leave in one order (ClusterFade, CascadeBreakout);
    their trades are then consecutive pairs of fills, and every column is one array
    operation with the float operations of :func:`_walk_trades` (so the tables are equal bit
    for bit).  None when the fills do not have that shape (adds, partial exits, flips, a
    dust residue): :func:`_walk_trades` handles those.
    """
    count = simulation.fill_bar.shape[0]
    if count == 0:
        return None
    opened = np.asarray(simulation.fill_opened, dtype=np.float64)
    closed = np.asarray(simulation.fill_closed, dtype=np.float64)
    sizes = np.asarray(simulation.fill_size, dtype=np.float64)
    entries, exits = slice(0, count, 2), slice(1, count, 2)
    pairs = count // 2
    if not (
        np.all(opened[entries] != 0.0)
        and np.all(closed[entries] == 0.0)
        and np.all(opened[exits] == 0.0)
        and np.all(closed[exits] != 0.0)
        and np.array_equal(sizes[1 : 2 * pairs : 2], -sizes[0 : 2 * pairs : 2])
        and np.array_equal(np.abs(closed[exits]), np.abs(opened[0 : 2 * pairs : 2]))
    ):
        return None
    bars = np.asarray(simulation.fill_bar, dtype=np.int64)
    prices = np.asarray(simulation.fill_price, dtype=np.float64)
    kinds = np.asarray(simulation.fill_kind)
    entry = slice(0, 2 * pairs, 2)
    quantity = np.abs(opened[entry])
    exit_quantity = np.abs(closed[exits])
    entry_bars, exit_bars = bars[entry], bars[exits]
    pnl = 0.0 + np.asarray(simulation.fill_pnl, dtype=np.float64)[exits]
    fees = (0.0 + np.asarray(simulation.fill_opened_fee, dtype=np.float64)[entry]) + np.asarray(
        simulation.fill_closed_fee, dtype=np.float64
    )[exits]
    settlement_bars = np.asarray(simulation.funding_bar, dtype=np.int64)
    first = np.searchsorted(settlement_bars, entry_bars, side="right")
    last = np.searchsorted(settlement_bars, exit_bars, side="right")
    funding = np.where(last > first, running[last] - running[first], 0.0)
    if pairs:
        trades = pd.DataFrame(
            {
                "entry_time": _times(numbers[entry_bars]),
                "exit_time": _times(numbers[exit_bars]),
                "side": np.where(opened[entry] > 0.0, "long", "short").astype(object),
                "size": quantity,
                "entry_price": (quantity * prices[entry]) / quantity,
                "exit_price": (exit_quantity * prices[exits]) / exit_quantity,
                "pnl_gross": pnl,
                "fees": fees,
                "funding": funding,
                "pnl_net": pnl - fees - funding,
                "liquidated": kinds[exits] == FILL_LIQUIDATION,
                "bars": exit_bars - entry_bars,
                "exit_reason": fill_reasons(simulation, reasons)[exits],
            },
            columns=list(TRADE_COLUMNS),
        )
    else:
        trades = _trade_frame([])
    if count % 2 == 0:
        return trades, None, 0.0
    last_fill = count - 1
    open_trade = _Trade(int(bars[last_fill]), 1 if opened[last_fill] > 0.0 else -1)
    open_quantity = abs(float(opened[last_fill]))
    open_trade.opened_size = open_trade.size = open_trade.peak = open_quantity
    open_trade.entry_value = open_quantity * float(prices[last_fill])
    open_trade.fees = 0.0 + float(simulation.fill_opened_fee[last_fill])
    return trades, open_trade, float(prices[last_fill])


def _closed_trades_frame(closed: list[_Trade], numbers: np.ndarray, funding_between: Any) -> Any:
    """The ``trades`` table from the closed trades, built column by column."""
    if not closed:
        return _trade_frame([])
    entry_bars = np.array([trade.bar for trade in closed], dtype=np.int64)
    exit_bars = np.array([trade.exit_bar for trade in closed], dtype=np.int64)
    funding = np.array([funding_between(trade.bar, trade.exit_bar) for trade in closed])
    pnl = np.array([trade.pnl for trade in closed])
    fees = np.array([trade.fees for trade in closed])
    return pd.DataFrame(
        {
            "entry_time": _times(numbers[entry_bars]),
            "exit_time": _times(numbers[exit_bars]),
            "side": np.array(["long" if trade.side > 0 else "short" for trade in closed], object),
            "size": np.array([trade.peak for trade in closed]),
            "entry_price": np.array([trade.entry_value / trade.opened_size for trade in closed]),
            "exit_price": np.array([trade.exit_value / trade.closed_size for trade in closed]),
            "pnl_gross": pnl,
            "fees": fees,
            "funding": funding,
            "pnl_net": pnl - fees - funding,
            "liquidated": np.array([trade.liquidated for trade in closed], dtype=bool),
            "bars": exit_bars - entry_bars,
            "exit_reason": np.array([trade.reason for trade in closed], dtype=object),
        },
        columns=list(TRADE_COLUMNS),
    )


def _trade_row(trade: _Trade, numbers: np.ndarray, funding: float, bars: int) -> tuple[Any, ...]:
    return (
        numbers[trade.bar],
        numbers[trade.exit_bar],
        "long" if trade.side > 0 else "short",
        trade.peak,
        trade.entry_value / trade.opened_size,
        trade.exit_value / trade.closed_size,
        trade.pnl,
        trade.fees,
        funding,
        trade.pnl - trade.fees - funding,
        trade.liquidated,
        bars,
        trade.reason,
    )


def _trade_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    if not rows:
        return _empty("trades", lambda: _build_trade_frame([]))
    return _build_trade_frame(rows)


def _build_trade_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    frame = _frame(rows, TRADE_COLUMNS, ("entry_time", "exit_time"))
    for name in ("size", "entry_price", "exit_price", "pnl_gross", "fees", "funding", "pnl_net"):
        frame[name] = frame[name].astype(np.float64)
    frame["liquidated"] = frame["liquidated"].astype(bool)
    frame["bars"] = frame["bars"].astype(np.int64)
    return frame


def near_miss_table(
    simulation: Simulation, numbers: np.ndarray, frame: pd.DataFrame, near_miss_pct: float
) -> pd.DataFrame:
    """The ``near_misses`` table (as :class:`backtest.engine.analyzers.NearMissRecorder`)."""
    size = np.asarray(simulation.position_size, dtype=np.float64)
    indices = np.flatnonzero(size != 0.0)
    liquidation = np.asarray(simulation.liquidation_price, dtype=np.float64)[indices]
    long_side = size[indices] > 0.0

    def worst(mark_name: str, traded_name: str) -> np.ndarray:
        values = frame[traded_name].to_numpy(dtype=np.float64)[indices]
        if mark_name in frame.columns:
            marked = frame[mark_name].to_numpy(dtype=np.float64, na_value=np.nan)[indices]
            values = np.where(np.isnan(marked), values, marked)
        return values

    price = np.where(long_side, worst("mark_low", "low"), worst("mark_high", "high"))
    with np.errstate(divide="ignore", invalid="ignore"):
        distance_pct = np.where(long_side, price - liquidation, liquidation - price) / price
    distance_pct = distance_pct * 100.0
    hit = (distance_pct > 0.0) & (distance_pct <= float(near_miss_pct))
    hit &= np.isfinite(liquidation) & (liquidation > 0.0)
    return pd.DataFrame(
        {
            "time": _times(numbers[indices[hit]]),
            "side": np.where(long_side[hit], "long", "short"),
            "price": price[hit],
            "liquidation_price": liquidation[hit],
            "distance_pct": distance_pct[hit],
        },
        columns=list(NEAR_MISS_COLUMNS),
    )


def market_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``market`` table (as the runner keeps it)."""
    from backtest.engine.runner import MARKET_COLUMNS

    market = frame[[name for name in MARKET_COLUMNS if name in frame.columns]].copy()
    market.attrs = {}
    market.index = pd.DatetimeIndex(market.index, name="time")
    if market.index.tz is None:
        market.index = market.index.tz_localize("UTC")
    return market


def clusters_table(lines: Mapping[str, np.ndarray] | None, numbers: np.ndarray) -> pd.DataFrame:
    """The ``clusters`` table: the map's lines the strategy saw (empty without a map)."""
    if not lines:
        return pd.DataFrame()
    return pd.DataFrame(
        {name: np.asarray(values, dtype=np.float64) for name, values in lines.items()},
        index=date_numbers_to_index(numbers),
    )


def simulation_tables(
    simulation: Simulation,
    frame: pd.DataFrame,
    *,
    reasons: Sequence[str] = ("strategy",),
    leverage: float = 1.0,
    mult: float = 1.0,
    near_miss_pct: float = 1.0,
    lines: Mapping[str, np.ndarray] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of :class:`~backtest.results.Results` an event run fills, by name.

    Parameters
    ----------
    simulation : Simulation
        The simulator's output over ``frame``'s bars.
    frame : DataFrame
        The traded bars (UTC DatetimeIndex).
    reasons : sequence of str
        The Decisions' reason labels.
    leverage : float
        The account's leverage (for the refusal texts).
    mult : float
        Contract multiplier.
    near_miss_pct : float
        The run's near-miss threshold, in %.
    lines : mapping, optional
        The map lines the strategy saw (the ``clusters`` table).
    """
    numbers = bar_date_numbers(frame.index)
    close = frame["close"].to_numpy(dtype=np.float64)
    trades, open_trades = trade_tables(simulation, numbers, close, reasons, mult)
    nothing = numbers[:0]

    def table(name: str, rows: np.ndarray, build: Any) -> pd.DataFrame:
        if rows.shape[0]:
            return build(numbers)
        return _empty(name, lambda: build(nothing))

    return {
        "equity": equity_table(simulation, numbers, close, mult),
        "orders": table(
            "orders", simulation.fill_bar, partial(orders_table, simulation, reasons=reasons)
        ),
        "trades": trades,
        "open_trades": open_trades,
        "liquidations": table(
            "liquidations", simulation.liq_bar, partial(liquidations_table, simulation)
        ),
        "funding": table("funding", simulation.funding_bar, partial(funding_table, simulation)),
        "near_misses": near_miss_table(simulation, numbers, frame, near_miss_pct),
        "rejected": table(
            "rejected",
            simulation.reject_bar,
            partial(rejected_table, simulation, leverage=leverage),
        ),
        "market": market_table(frame),
        "clusters": clusters_table(lines, numbers),
    }


__all__ = ["simulation_tables", "trade_tables"]
