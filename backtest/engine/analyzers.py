"""Analyzers that turn a run on the perpetual broker into the tables of :class:`Results`.

Each table is collected by a *recorder*, a plain object that appends tuples while the run goes
(at most one per bar) and builds its pandas frame once, at the end.  Columns are exactly those
documented on :class:`backtest.results.Results`; times are UTC.

* ``equity`` (:class:`AccountAnalyzer`): value, cash, position, exposure, margin use,
  effective leverage, liquidation price and cumulative funding and fees, per bar;
* ``orders`` (:class:`OrdersAnalyzer`): every fill, tagged ``strategy`` or ``liquidation``;
* ``trades`` (:class:`TradesAnalyzer`): closed trades with fees, funding, liquidated flag;
* ``liquidations`` (:class:`LiquidationsAnalyzer`): forced closes of the strategy's positions;
* ``funding`` (:class:`FundingAnalyzer`): one row per settlement crossed with a position;
* ``near_misses`` (:class:`NearMissAnalyzer`): bars whose worst price came within
  ``near_miss_pct`` % of the liquidation price;
* ``rejected`` (:class:`RejectedRecorder`): orders the broker refused, with the reason.

Each analyzer can be added on its own; the runner adds :class:`ResultsAnalyzer`, which drives
all recorders at the per-bar cost of one analyzer.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, ClassVar

import backtrader as bt
import numpy as np
import pandas as pd

from backtest.engine.feeds import date_numbers_to_index

EQUITY_COLUMNS: tuple[str, ...] = (
    "value",
    "cash",
    "position_size",
    "position_notional",
    "margin_used",
    "effective_leverage",
    "liquidation_price",
    "funding_cum",
    "fees_cum",
)
TRADE_COLUMNS: tuple[str, ...] = (
    "entry_time",
    "exit_time",
    "side",
    "size",
    "entry_price",
    "exit_price",
    "pnl_gross",
    "fees",
    "funding",
    "pnl_net",
    "liquidated",
    "bars",
    "exit_reason",
)
ORDER_COLUMNS: tuple[str, ...] = ("time", "side", "size", "price", "fee", "reason")
REJECTED_COLUMNS: tuple[str, ...] = ("time", "side", "size", "price", "reason")
LIQUIDATION_COLUMNS: tuple[str, ...] = (
    "time",
    "side",
    "size",
    "liquidation_price",
    "fill_price",
    "loss",
    "fee",
    "gap",
)
FUNDING_COLUMNS: tuple[str, ...] = ("time", "rate", "mark_price", "position_size", "payment")
NEAR_MISS_COLUMNS: tuple[str, ...] = (
    "time",
    "side",
    "price",
    "liquidation_price",
    "distance_pct",
)


def _times(numbers: list[float] | np.ndarray) -> pd.DatetimeIndex:
    return date_numbers_to_index(np.asarray(numbers, dtype=np.float64))


def _frame(rows: list[tuple[Any, ...]], columns: tuple[str, ...], times: tuple[str, ...]) -> Any:
    """Frame of ``rows`` with ``columns``; date-number columns in ``times`` become UTC times."""
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    for name in times:
        frame[name] = _times(frame[name].to_numpy(dtype=np.float64))
    return frame


def _with_symbols(recorder: Any, frame: pd.DataFrame, symbols: list[str]) -> pd.DataFrame:
    """``frame`` with a leading ``symbol`` column when the recorder covers a portfolio."""
    if recorder.portfolio:
        frame.insert(0, "symbol", pd.Series(symbols, dtype=object, index=frame.index))
    return frame


def _line_array(data: Any, name: str, count: int) -> np.ndarray | None:
    """The first ``count`` values of the line ``name`` of ``data`` (None when absent)."""
    if name not in data.lines.getlinealiases():
        return None
    return np.asarray(getattr(data.lines, name).array, dtype=np.float64)[:count]


class _Recorder:
    """Collects one Results table during a run (plain object driven by an analyzer).

    ``portfolio`` (set by :class:`ResultsAnalyzer` when the run trades several symbols) adds a
    leading ``symbol`` column to the event tables and covers every symbol.
    """

    per_bar: ClassVar[bool] = False
    portfolio: bool = False

    def __init__(self, broker: Any, feed: Any) -> None:
        self.broker = broker
        self.feed = feed

    def next(self) -> None:
        """Record the bar that just ended (only called when ``per_bar``)."""

    def notify_order(self, order: Any) -> None:
        """Record an order notification."""

    def frame(self) -> pd.DataFrame:
        """Build the table."""
        raise NotImplementedError


class AccountRecorder(_Recorder):
    """Per-bar account state for the ``equity`` table."""

    per_bar = True

    def __init__(self, broker: Any, feed: Any) -> None:
        super().__init__(broker, feed)
        self._rows: list[tuple[float, ...]] = []
        self._position = broker.getposition(feed)
        self._clock = feed.lines.close
        self._datetime = feed.lines.datetime

    def next(self) -> None:
        """Append value, cash, position, margin, liquidation price, funding and fees."""
        broker = self.broker
        index = self._clock.idx
        self._rows.append(
            (
                self._datetime.array[index],
                broker.getvalue(),
                broker.cash,
                self._position.size,
                broker.margin_used,
                broker.liquidation_price(self.feed),
                broker.funding_paid,
                broker.fees_paid,
                index,
            )
        )

    def frame(self) -> pd.DataFrame:
        """The ``equity`` table, indexed by UTC bar time."""
        rows = np.asarray(self._rows, dtype=np.float64).reshape(-1, 9)
        closes = np.asarray(self.feed.lines.close.array, dtype=np.float64)
        indices = rows[:, 8].astype(np.int64)
        value = rows[:, 1]
        size = rows[:, 3]
        mult = self.broker.getcommissioninfo(self.feed).p.mult
        notional = size * closes[indices] * mult
        with np.errstate(divide="ignore", invalid="ignore"):
            leverage = np.where(value > 0.0, np.abs(notional) / value, np.nan)
        leverage[size == 0.0] = 0.0
        columns = {
            "value": value,
            "cash": rows[:, 2],
            "position_size": size,
            "position_notional": notional,
            "margin_used": rows[:, 4],
            "effective_leverage": leverage,
            "liquidation_price": rows[:, 5],
            "funding_cum": rows[:, 6],
            "fees_cum": rows[:, 7],
        }
        return pd.DataFrame(columns, index=_times(rows[:, 0]), columns=list(EQUITY_COLUMNS))


_STOP_TYPES = frozenset(
    (bt.Order.Stop, bt.Order.StopLimit, bt.Order.StopTrail, bt.Order.StopTrailLimit)
)


def order_reason(order: Any) -> str:
    """The order's ``reason=``; without one ``"stop"`` for stop orders, else ``"strategy"``."""
    reason = order.info.get("reason")
    if reason:
        return str(reason)
    return "stop" if order.exectype in _STOP_TYPES else "strategy"


class OrdersRecorder(_Recorder):
    """Every fill for the ``orders`` table; liquidations carry ``reason="liquidation"``."""

    def __init__(self, broker: Any, feed: Any) -> None:
        super().__init__(broker, feed)
        self._rows: list[tuple[Any, ...]] = []
        self._symbols: list[str] = []

    def notify_order(self, order: Any) -> None:
        """Append the order's new execution bits."""
        if order.status not in (order.Completed, order.Partial):
            return
        reason = order_reason(order)
        for bit in order.executed.iterpending():
            self._rows.append(
                (
                    bit.dt,
                    "buy" if bit.size > 0 else "sell",
                    abs(bit.size),
                    bit.price,
                    bit.comm,
                    reason,
                )
            )
            self._symbols.append(order.data._name)

    def frame(self) -> pd.DataFrame:
        """The ``orders`` table."""
        return _with_symbols(self, _frame(self._rows, ORDER_COLUMNS, ("time",)), self._symbols)


class RejectedRecorder(_Recorder):
    """Every order the broker refused (margin, tier limit, rejection) for the ``rejected`` table.

    ``time`` is the bar the refusal happened on, ``price`` the order's price (a market order's:
    the close it was sent at), ``reason`` the broker's explanation.
    """

    def __init__(self, broker: Any, feed: Any) -> None:
        super().__init__(broker, feed)
        self._rows: list[tuple[Any, ...]] = []
        self._symbols: list[str] = []

    def notify_order(self, order: Any) -> None:
        """Append the order when it was refused."""
        if order.status not in (order.Margin, order.Rejected):
            return
        data = order.data
        price = order.created.price
        if price is None or price != price:
            price = float(data.close[0])
        reason = order.info.get("reject_reason") or (
            "insufficient margin" if order.status == order.Margin else "rejected by the broker"
        )
        size = order.created.size
        self._rows.append(
            (data.datetime[0], "buy" if size > 0 else "sell", abs(size), float(price), reason)
        )
        self._symbols.append(data._name)

    def frame(self) -> pd.DataFrame:
        """The ``rejected`` table."""
        frame = _frame(self._rows, REJECTED_COLUMNS, ("time",))
        for name in ("size", "price"):
            frame[name] = frame[name].astype(np.float64)
        return _with_symbols(self, frame, self._symbols)


class _OpenTrade:
    __slots__ = (
        "bar",
        "closed_size",
        "entry_time",
        "entry_value",
        "exit_time",
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

    def __init__(self, time: float, side: int, bar: int) -> None:
        self.entry_time = time
        self.exit_time = math.nan
        self.side = side
        self.bar = bar
        self.size = self.peak = 0.0
        self.opened_size = self.closed_size = 0.0
        self.entry_value = self.exit_value = 0.0
        self.fees = self.pnl = 0.0
        self.liquidated = False
        self.reason = ""


class TradesRecorder(_Recorder):
    """Closed trades, flat to flat, for the ``trades`` table.

    A trade's ``size`` is its peak position size, ``entry_price``/``exit_price`` the
    size-weighted prices of its opening and closing fills, ``fees`` its trading (and
    liquidation) fees, ``funding`` the settlements paid while it was open (a settlement on the
    entry bar precedes the entry fill; one on the exit bar is paid) and
    ``pnl_net = pnl_gross − fees − funding``.
    """

    def __init__(self, broker: Any, feed: Any) -> None:
        super().__init__(broker, feed)
        self._open: dict[Any, _OpenTrade] = {}
        self._closed: list[tuple[Any, _OpenTrade, int]] = []

    def notify_order(self, order: Any) -> None:
        """Update the open trade of the order's data with the new execution bits."""
        if order.status not in (order.Completed, order.Partial):
            return
        data = order.data
        liquidation = order.info.get("reason") == "liquidation"
        for bit in order.executed.iterpending():
            trade = self._open.get(data)
            if bit.closed and trade is not None:
                quantity = abs(bit.closed)
                trade.closed_size += quantity
                trade.exit_value += quantity * bit.price
                trade.fees += bit.closedcomm
                trade.pnl += bit.pnl
                trade.size -= quantity
                trade.liquidated = trade.liquidated or liquidation
                trade.reason = order_reason(order)
                if trade.size <= _TRADE_DUST * trade.peak:
                    trade.exit_time = bit.dt
                    self._closed.append((data, trade, len(data)))
                    del self._open[data]
                    trade = None
            if bit.opened:
                if trade is None:
                    trade = _OpenTrade(bit.dt, 1 if bit.opened > 0 else -1, len(data))
                    self._open[data] = trade
                quantity = abs(bit.opened)
                trade.opened_size += quantity
                trade.entry_value += quantity * bit.price
                trade.fees += bit.openedcomm
                trade.size += quantity
                trade.peak = max(trade.peak, trade.size)

    def open_frame(self) -> pd.DataFrame:
        """The ``open_trades`` table: trades still open after the last bar, marked to it.

        Same columns as ``trades``: ``exit_time`` is the last bar's time, ``exit_price`` its
        close (the mark the equity uses), ``size`` the size still open and ``pnl_gross`` the
        realised PnL of partial closes plus the unrealised PnL of the rest at that close;
        ``funding`` counts the settlements up to the last bar.
        """
        closed = []
        for data, trade in self._open.items():
            count = len(data)
            if count <= 0 or trade.opened_size <= 0.0:
                continue
            position = self.broker.positions[data]
            mark = float(data.lines.close.array[count - 1])
            comminfo = self.broker.getcommissioninfo(data)
            unrealised = comminfo.profitandloss(position.size, position.price, mark)
            snapshot = _OpenTrade(trade.entry_time, trade.side, trade.bar)
            snapshot.exit_time = data.lines.datetime.array[count - 1]
            snapshot.opened_size = trade.opened_size
            snapshot.entry_value = trade.entry_value
            snapshot.closed_size = 1.0
            snapshot.exit_value = mark
            snapshot.peak = abs(position.size)
            snapshot.fees = trade.fees
            snapshot.pnl = trade.pnl + unrealised
            snapshot.reason = "end of data"
            closed.append((data, snapshot, count))
        return self._table(closed)

    def frame(self) -> pd.DataFrame:
        """The ``trades`` table."""
        return self._table(self._closed)

    def _table(self, closed: list[tuple[Any, _OpenTrade, int]]) -> pd.DataFrame:
        # Funding paid during each trade, from per-market cumulative sums of the settlements
        # (entry exclusive, exit inclusive): O(trades · log settlements), not a full scan per trade.
        times: dict[str, list[Any]] = {}
        cumulative: dict[str, list[float]] = {}
        for event in self.broker.funding_events:
            times.setdefault(event[1], []).append(event[0])
            running = cumulative.setdefault(event[1], [0.0])
            running.append(running[-1] + event[5])
        rows = []
        for data, trade, exit_bar in closed:
            market_times = times.get(data._name, [])
            running = cumulative.get(data._name, [0.0])
            first = bisect.bisect_right(market_times, trade.entry_time)
            last = bisect.bisect_right(market_times, trade.exit_time)
            funding = running[last] - running[first] if last > first else 0.0
            rows.append(
                (
                    trade.entry_time,
                    trade.exit_time,
                    "long" if trade.side > 0 else "short",
                    trade.peak,
                    trade.entry_value / trade.opened_size,
                    trade.exit_value / trade.closed_size,
                    trade.pnl,
                    trade.fees,
                    funding,
                    trade.pnl - trade.fees - funding,
                    trade.liquidated,
                    exit_bar - trade.bar,
                    trade.reason,
                )
            )
        frame = _frame(rows, TRADE_COLUMNS, ("entry_time", "exit_time"))
        for name in (
            "size",
            "entry_price",
            "exit_price",
            "pnl_gross",
            "fees",
            "funding",
            "pnl_net",
        ):
            frame[name] = frame[name].astype(np.float64)
        frame["liquidated"] = frame["liquidated"].astype(bool)
        frame["bars"] = frame["bars"].astype(np.int64)
        return _with_symbols(self, frame, [data._name for data, _, _ in closed])


class LiquidationsRecorder(_Recorder):
    """Forced closes of the strategy's own positions for the ``liquidations`` table."""

    def __init__(self, broker: Any, feed: Any) -> None:
        super().__init__(broker, feed)
        self._rows: list[tuple[Any, ...]] = []
        self._symbols: list[str] = []

    def notify_order(self, order: Any) -> None:
        """Append a completed order tagged ``reason="liquidation"``."""
        info = order.info
        if order.status != order.Completed or info.get("reason") != "liquidation":
            return
        self._rows.append(tuple(info[name] for name in LIQUIDATION_COLUMNS))
        self._symbols.append(order.data._name)

    def frame(self) -> pd.DataFrame:
        """The ``liquidations`` table."""
        frame = _frame(self._rows, LIQUIDATION_COLUMNS, ("time",))
        for name in ("size", "liquidation_price", "fill_price", "loss", "fee"):
            frame[name] = frame[name].astype(np.float64)
        frame["gap"] = frame["gap"].astype(bool)
        return _with_symbols(self, frame, self._symbols)


class FundingRecorder(_Recorder):
    """Funding settlements crossed with an open position, for the ``funding`` table."""

    def frame(self) -> pd.DataFrame:
        """The ``funding`` table (positive payment = paid by the strategy)."""
        name = self.feed._name
        events = [
            event for event in self.broker.funding_events if self.portfolio or event[1] == name
        ]
        rows = [(time, rate, mark, size, payment) for time, _, rate, mark, size, payment in events]
        frame = _frame(rows, FUNDING_COLUMNS, ("time",))
        for column in FUNDING_COLUMNS[1:]:
            frame[column] = frame[column].astype(np.float64)
        return _with_symbols(self, frame, [event[1] for event in events])


class NearMissRecorder(_Recorder):
    """Bars whose worst price came within ``near_miss_pct`` % of the liquidation price.

    The worst price is the bar's mark low (long) or mark high (short), else its traded
    low/high; ``distance_pct = |worst − liquidation| / worst × 100``.  The liquidation price is
    the one in force at the bar's end.  Bars on which the position was liquidated are in the
    ``liquidations`` table, not here.
    """

    per_bar = True

    def __init__(self, broker: Any, feed: Any, near_miss_pct: float = 1.0) -> None:
        super().__init__(broker, feed)
        self.near_miss_pct = float(near_miss_pct)
        self._rows: list[tuple[int, float, float]] = []
        self._position = broker.getposition(feed)
        self._clock = feed.lines.close

    def next(self) -> None:
        """Remember the liquidation price of an open position (checked at the end)."""
        size = self._position.size
        if size:
            self._rows.append((self._clock.idx, self.broker.liquidation_price(self.feed), size))

    def frame(self) -> pd.DataFrame:
        """The ``near_misses`` table."""
        rows = np.asarray(self._rows, dtype=np.float64).reshape(-1, 3)
        indices = rows[:, 0].astype(np.int64)
        liquidation = rows[:, 1]
        long_side = rows[:, 2] > 0.0
        count = int(indices.max()) + 1 if len(indices) else 0
        feed = self.feed

        def worst(mark_name: str, traded_name: str) -> np.ndarray:
            values = _line_array(feed, traded_name, count)[indices]
            mark = _line_array(feed, mark_name, count)
            if mark is not None:
                marked = mark[indices]
                values = np.where(np.isnan(marked), values, marked)
            return values

        price = np.where(long_side, worst("mark_low", "low"), worst("mark_high", "high"))
        with np.errstate(divide="ignore", invalid="ignore"):
            distance_pct = np.where(long_side, price - liquidation, liquidation - price) / price
        distance_pct = distance_pct * 100.0
        hit = (distance_pct > 0.0) & (distance_pct <= self.near_miss_pct)
        hit &= np.isfinite(liquidation) & (liquidation > 0.0)
        times = np.asarray(feed.lines.datetime.array, dtype=np.float64)[indices[hit]]
        return pd.DataFrame(
            {
                "time": _times(times),
                "side": np.where(long_side[hit], "long", "short"),
                "price": price[hit],
                "liquidation_price": liquidation[hit],
                "distance_pct": distance_pct[hit],
            },
            columns=list(NEAR_MISS_COLUMNS),
        )


#: Columns of ``Results.positions`` (portfolio runs): one row per bar and symbol.
POSITION_COLUMNS: tuple[str, ...] = (
    "symbol",
    "position_size",
    "position_notional",
    "liquidation_price",
)


class PortfolioAccountRecorder(_Recorder):
    """Per-bar account state of a portfolio run: ``equity`` plus a ``positions`` table.

    The ``equity`` table keeps the account columns; across symbols ``position_size`` is the
    number of open positions, ``position_notional`` the net (signed) notional,
    ``effective_leverage`` the gross notional over equity and ``liquidation_price`` NaN (each
    symbol's is in ``positions``).
    """

    per_bar = True
    portfolio = True

    def __init__(self, broker: Any, feed: Any, feeds: tuple[Any, ...] = ()) -> None:
        super().__init__(broker, feed)
        self.feeds = tuple(feeds) or (feed,)
        self._rows: list[tuple[float, ...]] = []
        self._positions = [broker.getposition(data) for data in self.feeds]
        self._clock = feed.lines.close
        self._datetime = feed.lines.datetime

    def next(self) -> None:
        """Append the account state and each symbol's size, feed index and liquidation price."""
        broker = self.broker
        row = [
            self._datetime.array[self._clock.idx],
            broker.getvalue(),
            broker.cash,
            broker.margin_used,
            broker.funding_paid,
            broker.fees_paid,
        ]
        for data, position in zip(self.feeds, self._positions, strict=True):
            row += [position.size, data.lines.close.idx, broker.liquidation_price(data)]
        self._rows.append(tuple(row))

    def _table(self) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        width = 6 + 3 * len(self.feeds)
        rows = np.asarray(self._rows, dtype=np.float64).reshape(-1, width)
        sizes, notionals, liquidations = [], [], []
        for number, data in enumerate(self.feeds):
            column = 6 + 3 * number
            closes = np.asarray(data.lines.close.array, dtype=np.float64)
            mult = self.broker.getcommissioninfo(data).p.mult
            size = rows[:, column]
            indices = rows[:, column + 1].astype(np.int64)
            sizes.append(size)
            notionals.append(size * closes[indices] * mult)
            liquidations.append(rows[:, column + 2])
        return rows, sizes, notionals, liquidations

    def frame(self) -> pd.DataFrame:
        """The account's ``equity`` table, indexed by UTC bar time."""
        rows, sizes, notionals, _ = self._table()
        value = rows[:, 1]
        count = len(rows)
        net = np.sum(notionals, axis=0) if notionals else np.zeros(count)
        gross = np.sum(np.abs(notionals), axis=0) if notionals else np.zeros(count)
        with np.errstate(divide="ignore", invalid="ignore"):
            leverage = np.where(value > 0.0, gross / value, np.nan)
        open_positions = np.sum([size != 0.0 for size in sizes], axis=0) if sizes else net
        leverage[open_positions == 0] = 0.0
        columns = {
            "value": value,
            "cash": rows[:, 2],
            "position_size": np.asarray(open_positions, dtype=np.float64),
            "position_notional": net,
            "margin_used": rows[:, 3],
            "effective_leverage": leverage,
            "liquidation_price": np.full(count, np.nan),
            "funding_cum": rows[:, 4],
            "fees_cum": rows[:, 5],
        }
        return pd.DataFrame(columns, index=_times(rows[:, 0]), columns=list(EQUITY_COLUMNS))

    def positions(self) -> pd.DataFrame:
        """Each symbol's position per bar (long format, ordered by time then symbol)."""
        rows, sizes, notionals, liquidations = self._table()
        count, width = len(rows), len(self.feeds)
        names = np.array([data._name for data in self.feeds], dtype=object)
        frame = pd.DataFrame(
            {
                "symbol": np.tile(names, count),
                "position_size": np.column_stack(sizes).ravel() if count else [],
                "position_notional": np.column_stack(notionals).ravel() if count else [],
                "liquidation_price": np.column_stack(liquidations).ravel() if count else [],
            },
            index=pd.DatetimeIndex(np.repeat(_times(rows[:, 0]), width), name="time"),
            columns=list(POSITION_COLUMNS),
        )
        return frame


class PortfolioNearMissRecorder(_Recorder):
    """Near misses of every symbol's position (one :class:`NearMissRecorder` each)."""

    per_bar = True
    portfolio = True

    def __init__(
        self, broker: Any, feed: Any, feeds: tuple[Any, ...] = (), near_miss_pct: float = 1.0
    ) -> None:
        super().__init__(broker, feed)
        self.parts = [
            NearMissRecorder(broker, data, near_miss_pct=near_miss_pct) for data in feeds or (feed,)
        ]

    def next(self) -> None:
        """Let each symbol's recorder remember its liquidation price."""
        for part in self.parts:
            part.next()

    def frame(self) -> pd.DataFrame:
        """The ``near_misses`` table with a leading ``symbol`` column, in time order."""
        frames = []
        for part in self.parts:
            frame = part.frame()
            frame.insert(0, "symbol", pd.Series([part.feed._name] * len(frame), dtype=object))
            frames.append(frame)
        combined = pd.concat(frames, ignore_index=True)
        return combined.sort_values("time", kind="stable").reset_index(drop=True)


_TRADE_DUST = 1e-12

#: Recorder of every Results table the engine fills, by table name.
RECORDERS: dict[str, type[_Recorder]] = {
    "equity": AccountRecorder,
    "orders": OrdersRecorder,
    "trades": TradesRecorder,
    "liquidations": LiquidationsRecorder,
    "funding": FundingRecorder,
    "near_misses": NearMissRecorder,
    "rejected": RejectedRecorder,
}


class _RecorderAnalyzer(bt.Analyzer):
    """A backtrader analyzer around one recorder; ``get_analysis()`` returns its frame."""

    recorder_class: ClassVar[type[_Recorder]]
    params = (("data", None),)

    def _recorder_options(self) -> dict[str, Any]:
        return {}

    def start(self) -> None:
        """Create the recorder for the analyzed data feed (default: the first)."""
        feed = self.p.data if self.p.data is not None else self.strategy.datas[0]
        self.recorder = self.recorder_class(self.strategy.broker, feed, **self._recorder_options())
        if not self.recorder.per_bar:
            self.next = _nothing  # type: ignore[method-assign]

    def next(self) -> None:
        """Record the bar."""
        self.recorder.next()

    def notify_order(self, order: Any) -> None:
        """Pass the notification to the recorder."""
        self.recorder.notify_order(order)

    def get_analysis(self) -> pd.DataFrame:  # type: ignore[override]
        """The table."""
        return self.recorder.frame()


def _nothing() -> None:
    return None


class AccountAnalyzer(_RecorderAnalyzer):
    """Value, cash, exposure, margin use, effective leverage and liquidation price per bar."""

    recorder_class = AccountRecorder


class OrdersAnalyzer(_RecorderAnalyzer):
    """Every fill, tagged ``strategy`` or ``liquidation``."""

    recorder_class = OrdersRecorder


class TradesAnalyzer(_RecorderAnalyzer):
    """Closed trades with fees, funding and a liquidated flag."""

    recorder_class = TradesRecorder


class LiquidationsAnalyzer(_RecorderAnalyzer):
    """Liquidations of the strategy's own positions (time, side, prices, loss, fee, gap)."""

    recorder_class = LiquidationsRecorder


class FundingAnalyzer(_RecorderAnalyzer):
    """Funding paid (positive) or received (negative) at each settlement."""

    recorder_class = FundingRecorder


class NearMissAnalyzer(_RecorderAnalyzer):
    """Bars that came within ``near_miss_pct`` % of the liquidation price."""

    recorder_class = NearMissRecorder
    params = (("near_miss_pct", 1.0),)

    def _recorder_options(self) -> dict[str, Any]:
        return {"near_miss_pct": self.p.near_miss_pct}


class ResultsAnalyzer(bt.Analyzer):
    """Every Results table in one analyzer (what the runner attaches).

    backtrader calls each analyzer three times per bar even when it has nothing to do; one
    analyzer driving all recorders keeps that overhead to one analyzer.  ``get_analysis()``
    returns ``{table name: DataFrame}``.
    """

    params = (("data", None), ("near_miss_pct", 1.0), ("portfolio", None))

    def start(self) -> None:
        """Create one recorder per table.

        With ``portfolio`` (the tuple of the run's symbol feeds) every table covers all of them
        with a ``symbol`` column, and ``get_analysis()`` also returns ``positions``.
        """
        feed = self.p.data if self.p.data is not None else self.strategy.datas[0]
        broker = self.strategy.broker
        self.recorders: dict[str, _Recorder] = {}
        feeds = tuple(self.p.portfolio or ())
        for name, recorder_class in RECORDERS.items():
            if feeds and recorder_class is AccountRecorder:
                recorder: _Recorder = PortfolioAccountRecorder(broker, feeds[0], feeds)
            elif feeds and recorder_class is NearMissRecorder:
                recorder = PortfolioNearMissRecorder(
                    broker, feeds[0], feeds, near_miss_pct=self.p.near_miss_pct
                )
            elif recorder_class is NearMissRecorder:
                recorder = NearMissRecorder(broker, feed, near_miss_pct=self.p.near_miss_pct)
            else:
                recorder = recorder_class(broker, feeds[0] if feeds else feed)
                recorder.portfolio = bool(feeds)
            self.recorders[name] = recorder
        self._account = self.recorders["equity"].next
        self._near_misses = self.recorders["near_misses"].next
        self._order_hooks = [
            recorder.notify_order
            for recorder in self.recorders.values()
            if type(recorder).notify_order is not _Recorder.notify_order
        ]

    def next(self) -> None:
        """Record the bar."""
        self._account()
        self._near_misses()

    def notify_order(self, order: Any) -> None:
        """Pass the notification to the order-driven recorders."""
        for hook in self._order_hooks:
            hook(order)

    def get_analysis(self) -> dict[str, pd.DataFrame]:  # type: ignore[override]
        """Every table, by Results attribute name."""
        tables = {name: recorder.frame() for name, recorder in self.recorders.items()}
        trades = self.recorders["trades"]
        if isinstance(trades, TradesRecorder):
            tables["open_trades"] = trades.open_frame()
        account = self.recorders["equity"]
        if isinstance(account, PortfolioAccountRecorder):
            tables["positions"] = account.positions()
        return tables
