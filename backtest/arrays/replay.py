"""``ReplayDecisions``: execute a :class:`~backtest.arrays.decisions.Decisions` on the event engine.

At the close of every bar with a decision, the strategy calls
:meth:`backtest.Strategy.target_exposure` with the bar's target (and ``reason=`` when its
reason code is not 0), which is what the array simulator reproduces.  Stop and take-profit
levels become backtrader ``Stop`` and ``Limit`` orders linked OCO that close the position, placed
and cancelled as :mod:`backtest.arrays.decisions` describes.  Used to prove the
simulator equals the event broker and to run array-only plugins on the event engine.

Example
-------
>>> from backtest.engine import RunConfig, run                  # doctest: +SKIP
>>> decisions = Decisions.from_target(targets)                  # doctest: +SKIP
>>> run(RunConfig(...), data=frame, tiers=tiers,                # doctest: +SKIP
...     strategy_class=ReplayDecisions.with_decisions(decisions))
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import backtrader as bt

from backtest.arrays.decisions import Decisions
from backtest.errors import ConfigError
from backtest.strategy import Strategy


class ReplayDecisions(Strategy):
    """Send ``target_exposure(target[t], reason=...)`` at the close of every decision bar.

    Parameters
    ----------
    decisions : Decisions
        One value per traded bar (NaN: nothing on that bar).
    """

    uses_clusters: ClassVar[bool] = False
    params = (("decisions", None),)

    @classmethod
    def with_decisions(cls, decisions: Decisions) -> type[ReplayDecisions]:
        """A subclass whose ``decisions`` parameter defaults to ``decisions``."""
        return type(cls.__name__, (cls,), {"params": (("decisions", decisions),)})

    def start(self) -> None:
        """Check the decisions against the traded bars; cache them as Python lists."""
        decisions = self.p.decisions
        if not isinstance(decisions, Decisions):
            raise ConfigError(
                f"ReplayDecisions needs decisions=Decisions(...), got {type(decisions).__name__}"
            )
        decisions.check(self.datas[0].buflen())
        ReplayDecisions.load(self, decisions)

    def load(self, decisions: Decisions) -> None:
        """Keep ``decisions`` as the Python lists :meth:`next` reads bar by bar.

        Also called, unbound, by :class:`backtest.Strategy` for array-only plugins.
        """
        self._targets = decisions.target.tolist()
        self._labels = [decisions.reason_label(code) for code in range(len(decisions.reasons))]
        self._codes = decisions.reason_codes().tolist()
        self._stops, self._profits = (level.tolist() for level in decisions.levels())

    def next(self) -> None:
        """Execute the decision of the bar that just closed."""
        bar = len(self.datas[0]) - 1
        exposure = self._targets[bar]
        sent = False
        side = 0
        if not math.isnan(exposure):
            label = self._labels[self._codes[bar]]
            extra: dict[str, Any] = {} if label is None else {"reason": label}
            price = float(self.datas[0].close[0])
            wanted = self.equity() * exposure / price if price > 0.0 else 0.0
            side = 1 if wanted > 0.0 else -1 if wanted < 0.0 else 0
            sent = self.target_exposure(exposure, **extra) is not None
        ReplayDecisions._manage_exits(self, self._stops[bar], self._profits[bar], sent, side)

    def _manage_exits(self, stop: float, profit: float, sent: bool, side: int) -> None:
        """Cancel, keep or place the stop and take-profit orders after this close's decision."""
        given = not (math.isnan(stop) and math.isnan(profit))
        deferred = getattr(self, "_deferred_levels", None)
        place = None
        if sent or given:
            for order in getattr(self, "_exit_orders", ()):
                self.cancel(order)
            self._exit_orders: list[Any] = []
            self._deferred_levels = None
            if sent:
                if given and side:
                    self._deferred_levels = (stop, profit, side)
            else:
                place = (stop, profit)
        elif deferred is not None:
            size = self.getposition(self.datas[0]).size
            if (size > 0 and deferred[2] > 0) or (size < 0 and deferred[2] < 0):
                place = (deferred[0], deferred[1])
            self._deferred_levels = None
        if place is None:
            return
        size = self.getposition(self.datas[0]).size
        if not size:
            return
        send = self.sell if size > 0 else self.buy
        orders = []
        if not math.isnan(place[0]):
            orders.append(send(size=abs(size), price=place[0], exectype=bt.Order.Stop))
        if not math.isnan(place[1]):
            link = orders[0] if orders else None
            orders.append(
                send(
                    size=abs(size),
                    price=place[1],
                    exectype=bt.Order.Limit,
                    oco=link,
                    reason="take-profit",
                )
            )
        self._exit_orders = orders

    def prenext(self) -> None:
        """Bars before a subclass's indicators are ready are decided the same way."""
        self.next()
