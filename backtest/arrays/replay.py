"""``ReplayDecisions``: execute a :class:`~backtest.arrays.decisions.Decisions` on the event engine.

At the close of every bar with a decision, the strategy calls
:meth:`backtest.Strategy.target_exposure` with the bar's target (and ``reason=`` when its
reason code is not 0), which is what the array simulator reproduces.  Used to prove the
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
        self._targets = decisions.target.tolist()
        self._labels = [decisions.reason_label(code) for code in range(len(decisions.reasons))]
        self._codes = decisions.reason_codes().tolist()

    def next(self) -> None:
        """Execute the decision of the bar that just closed."""
        bar = len(self.datas[0]) - 1
        exposure = self._targets[bar]
        if math.isnan(exposure):
            return
        label = self._labels[self._codes[bar]]
        extra: dict[str, Any] = {} if label is None else {"reason": label}
        self.target_exposure(exposure, **extra)

    def prenext(self) -> None:
        """Bars before a subclass's indicators are ready are decided the same way."""
        self.next()
