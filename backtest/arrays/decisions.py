"""``Decisions``: what an array strategy decides, one value per bar of the run.

A decision is taken at the *close* of bar ``t`` and executed exactly as
:meth:`backtest.Strategy.target_exposure` would execute it in the event engine at that close:

* ``size = equity(t) × target[t] / close[t]`` (equity = the broker's value after bar ``t``);
* order size ``= size − current position``, skipped when
  ``|difference| <= 1e-12 × max(|size|, |current|, 1)``;
* a market order, checked for margin at bar ``t + 1`` (at the close it was sent at) and filled
  at bar ``t + 1``'s open (with the run's slippage), after that bar's funding settlement and
  gap-liquidation check.  A gap liquidation at ``t + 1`` cancels it.

``NaN`` means no decision on that bar (no order), so a strategy that only acts on signals
leaves the other bars NaN.  A decision on the last bar is never executed (no next bar).

Optional exit levels (``stop``, ``take_profit``: a price per bar, NaN = none) place resting
orders that close the position during a bar, as an exchange's stop-market and take-profit
limit orders do (the event engine sends backtrader ``Stop`` and ``Limit`` orders linked OCO):

* **Which position.**  Levels given on bar ``t`` protect the position bar ``t``'s decision
  leaves.  When bar ``t`` sends no order they are placed at bar ``t``'s close for the position
  held and work from bar ``t + 1``; when it sends an order they are placed at bar ``t + 1``'s
  close, once that order has filled, and work from bar ``t + 2`` (only if the position is then
  on the side the target asked for: a refused flip keeps no levels meant for the other side).
  An exit always closes the whole position it was placed for.
* **Until when.**  They work until one fills, a later bar sends an order (the position
  changes: ``target = 0`` closes it and cancels them) or gives levels of its own (they replace
  both: a NaN level there means none of that kind), or a liquidation (which cancels every
  working order).  Bars that send no order and give no level leave them working.  A filled
  exit cancels the other one.
* **Stop** (a stop-market order): fills when the bar opens at or beyond the level (at the
  open) or its range reaches it (at the level), low for a long, high for a short; taker fee and
  the run's slippage.  **Take-profit** (a limit order): fills when the open is at or better
  than the level (at the open) or the range reaches it (at the level); maker fee, no slippage.
* **Order in a bar.**  Funding and the gap-liquidation check come first, then the stop, then
  the take-profit, then the range-liquidation check.  When one bar reaches both levels the stop
  fills, even if the bar opened beyond the take-profit (the event engine checks the stop
  first); the take-profit is then cancelled.
* **Margin.**  Both are checked when placed (at the next bar, before the fills) as the closes
  they are, each against the position before either fills; a close needs no margin.

Fills of the stop and the take-profit carry the reasons ``"stop"`` and ``"take-profit"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest.errors import ConfigError

#: Label of reason code 0: an order without ``reason=`` (the orders table's ``strategy``).
DEFAULT_REASON = "strategy"


@dataclass(frozen=True, eq=False)
class Decisions:
    """Target exposure per bar, with the reason each order is tagged with.

    Attributes
    ----------
    target : ndarray of float64, shape (n,)
        Target exposure decided at the close of each bar: the position's notional over the
        account's equity, signed (``1.0`` a long worth the equity, ``-0.5`` a short worth half
        of it, ``0`` flat).  NaN: no decision (no order) on that bar.
    reason : ndarray of int16, shape (n,), or None
        Per bar, the index into ``reasons`` of the ``reason=`` the order carries (0: none,
        tagged ``"strategy"``).  None: every order is untagged.
    reasons : tuple of str
        Reason labels; ``reasons[0] == "strategy"``.  ``"liquidation"`` is the broker's own and
        may not be used.
    stop, take_profit : ndarray of float64, shape (n,), or None
        Exit levels (prices) per bar, NaN where the bar gives none; None: no levels at all.
        Semantics in the module docstring.
    """

    target: np.ndarray
    reason: np.ndarray | None = None
    reasons: tuple[str, ...] = (DEFAULT_REASON,)
    stop: np.ndarray | None = None
    take_profit: np.ndarray | None = None

    @classmethod
    def from_target(
        cls,
        target: Sequence[float] | np.ndarray,
        reason: Sequence[int] | np.ndarray | None = None,
        reasons: Sequence[str] = (DEFAULT_REASON,),
        *,
        stop: Sequence[float] | np.ndarray | None = None,
        take_profit: Sequence[float] | np.ndarray | None = None,
    ) -> Decisions:
        """Build Decisions from array-likes (copied to float64 / int16 contiguous arrays).

        Raises
        ------
        ConfigError
            When ``target``, ``stop`` or ``take_profit`` is not one-dimensional numbers or
            ``reason`` does not fit in int16.
        """
        try:
            values = np.ascontiguousarray(np.asarray(target, dtype=np.float64).copy())
        except (TypeError, ValueError) as error:
            raise ConfigError(f"decisions: target must be numbers ({error})") from None
        if values.ndim != 1:
            raise ConfigError(
                f"decisions: target must be one-dimensional, got shape {values.shape}"
            )
        codes = None
        if reason is not None:
            raw = np.asarray(reason)
            if raw.ndim != 1 or not np.issubdtype(raw.dtype, np.integer):
                raise ConfigError(
                    "decisions: reason must be a one-dimensional array of integer codes "
                    "(indices into reasons)"
                )
            if raw.size and (raw.min() < np.iinfo(np.int16).min or raw.max() > 32767):
                raise ConfigError("decisions: reason codes must fit in int16 (0 … 32767)")
            codes = np.ascontiguousarray(raw.astype(np.int16))
        levels = []
        for name, given in (("stop", stop), ("take_profit", take_profit)):
            if given is None:
                levels.append(None)
                continue
            try:
                level = np.ascontiguousarray(np.asarray(given, dtype=np.float64).copy())
            except (TypeError, ValueError) as error:
                raise ConfigError(f"decisions: {name} must be numbers ({error})") from None
            if level.ndim != 1:
                raise ConfigError(
                    f"decisions: {name} must be one-dimensional, got shape {level.shape}"
                )
            levels.append(level)
        return cls(values, codes, tuple(str(label) for label in reasons), *levels)

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def check(self, n: int) -> Decisions:
        """Check the decisions fit a run of ``n`` bars; return self.

        Raises
        ------
        ConfigError
            One line naming what is wrong: the length, an infinite or non-numeric target, a
            reason code outside ``reasons`` or a bad reason label.
        """
        target = self.target
        if not isinstance(target, np.ndarray) or target.dtype != np.float64 or target.ndim != 1:
            raise ConfigError(
                "decisions: target must be a one-dimensional float64 array "
                "(use Decisions.from_target)"
            )
        if target.shape[0] != n:
            raise ConfigError(
                f"decisions: target has {target.shape[0]} values for {n} bars; return one value "
                "per bar of the run (NaN where nothing is decided)"
            )
        infinite = np.isinf(target)
        if infinite.any():
            bar = int(np.flatnonzero(infinite)[0])
            raise ConfigError(
                f"decisions: target[{bar}] is {float(target[bar])!r}; an exposure must be finite "
                "(NaN for no decision)"
            )
        reasons = self.reasons
        if not reasons or reasons[0] != DEFAULT_REASON:
            raise ConfigError(
                f"decisions: reasons[0] must be {DEFAULT_REASON!r} (orders without a reason), "
                f"got {tuple(reasons)!r}"
            )
        for label in reasons:
            if not isinstance(label, str) or not label or label == "liquidation":
                raise ConfigError(
                    f"decisions: reason label {label!r} must be a non-empty text other than "
                    "'liquidation' (the broker's own)"
                )
        if self.reason is not None:
            codes = self.reason
            if not isinstance(codes, np.ndarray) or codes.dtype != np.int16 or codes.ndim != 1:
                raise ConfigError(
                    "decisions: reason must be a one-dimensional int16 array "
                    "(use Decisions.from_target)"
                )
            if codes.shape[0] != n:
                raise ConfigError(
                    f"decisions: reason has {codes.shape[0]} values for {n} bars; give one code "
                    "per bar"
                )
            bad = (codes < 0) | (codes >= len(reasons))
            if bad.any():
                bar = int(np.flatnonzero(bad)[0])
                raise ConfigError(
                    f"decisions: reason[{bar}] = {int(codes[bar])} is not an index into the "
                    f"{len(reasons)} reason label(s) {tuple(reasons)!r}"
                )
        for name in ("stop", "take_profit"):
            level = getattr(self, name)
            if level is None:
                continue
            if not isinstance(level, np.ndarray) or level.dtype != np.float64 or level.ndim != 1:
                raise ConfigError(
                    f"decisions: {name} must be a one-dimensional float64 array "
                    "(use Decisions.from_target)"
                )
            if level.shape[0] != n:
                raise ConfigError(
                    f"decisions: {name} has {level.shape[0]} values for {n} bars; give one "
                    "level per bar (NaN where the bar gives none)"
                )
            bad = ~(np.isnan(level) | (np.isfinite(level) & (level > 0.0)))
            if bad.any():
                bar = int(np.flatnonzero(bad)[0])
                raise ConfigError(
                    f"decisions: {name}[{bar}] is {float(level[bar])!r}; a level must be a "
                    "price > 0 (NaN for none)"
                )
        return self

    def levels(self) -> tuple[np.ndarray, np.ndarray]:
        """The stop and take-profit levels as float64 arrays (all NaN where None)."""
        count = self.target.shape[0]
        stop = self.stop if self.stop is not None else np.full(count, np.nan)
        take_profit = self.take_profit if self.take_profit is not None else np.full(count, np.nan)
        return stop, take_profit

    def reason_codes(self) -> np.ndarray:
        """The reason codes as an int16 array (zeros when ``reason`` is None)."""
        if self.reason is None:
            return np.zeros(self.target.shape[0], dtype=np.int16)
        return self.reason

    def reason_label(self, code: int) -> str | None:
        """The ``reason=`` an order with ``code`` carries (None for code 0: no reason given)."""
        return None if code == 0 else self.reasons[code]
