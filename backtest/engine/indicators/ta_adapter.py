"""``TaIndicator``: indicators of the `ta` library as backtrader lines.

The `ta` library (https://github.com/bukosabino/ta) computes an indicator over whole pandas
Series.  The adapter hands it Series built on NumPy views of the feed's lines and writes the
resulting columns straight into the indicator's line buffers, once for the whole run.

``runonce`` mode computes over the whole buffer in ``once``.  ``next`` mode computes over
every bar the feed holds when first needed (with ``preload``, the whole history) and again only
when a live feed has delivered bars beyond the last computation; each bar then reads its own
row.  For a *causal* indicator (a value depends on the current and earlier bars only, which
holds for every preset below) this equals computing on the prefix available at each bar, and
both modes give identical lines.  Indicators that look ahead (``ta``'s ``DPOIndicator`` fills
with the series mean, ``IchimokuIndicator(visual=True)`` shifts forward) must not be adapted.

Presets: :class:`TaRSI`, :class:`TaATR`, :class:`TaBollingerBands`, :class:`TaMACD`,
:class:`TaEMA`.  :func:`ta_indicator` adapts any other `ta` class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import backtrader as bt
import numpy as np
import pandas as pd
from ta.momentum import RSIIndicator
from ta.trend import MACD, EMAIndicator
from ta.volatility import AverageTrueRange, BollingerBands

from backtest.engine.indicators._buffers import line_view, require_lines
from backtest.errors import ConfigError

#: Feed lines an adapted indicator may read (also the `ta` argument names).
FEED_INPUTS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


class TaIndicator(bt.Indicator):
    """Base class of adapted `ta` indicators; subclass it or call :func:`ta_indicator`.

    A subclass declares ``lines`` (one per output), ``params`` (the `ta` keyword arguments
    with their defaults, passed through unchanged) and the class attributes below.

    Attributes
    ----------
    ta_class : callable
        The `ta` class, called as ``ta_class(**series, **params)``.
    ta_inputs : tuple of str
        Feed lines passed as `ta` arguments of the same name (``"close"``, ``"high"`` …).  An
        indicator with one input also accepts a single line (``TaRSI(self.sma)``).
    ta_outputs : tuple of str
        For each line, in order, the name of the `ta` method returning it.

    Notes
    -----
    The indicator's minimum period is :meth:`warmup`.  The bars before it are NaN, whatever `ta`
    puts there (``AverageTrueRange`` returns 0 while warming up); elsewhere the lines are
    exactly `ta`'s output.
    """

    lines: ClassVar[Any] = ()
    ta_class: ClassVar[Callable[..., Any] | None] = None
    ta_inputs: ClassVar[tuple[str, ...]] = ("close",)
    ta_outputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        cls = type(self)
        if cls.ta_class is None or not cls.ta_outputs:
            raise ConfigError(
                f"{cls.__name__} adapts no ta indicator: use a preset (TaRSI, TaATR, ...) or "
                "build a class with backtest.engine.indicators.ta_indicator(...)"
            )
        aliases = self.data.lines.getlinealiases()
        single_line = self.data.lines.fullsize() == 1  # (len(lines) counts bars, not lines)
        if len(cls.ta_inputs) == 1 and single_line and cls.ta_inputs[0] not in aliases:
            # A single line (an average, another indicator) feeds a one-input indicator.
            self._input_lines = {cls.ta_inputs[0]: self.data.lines[0]}
        else:
            require_lines(self.data, cls.ta_inputs, cls.__name__)
            self._input_lines = {name: getattr(self.data.lines, name) for name in cls.ta_inputs}
        self._cache: list[np.ndarray] = []
        self._cache_length = 0
        self.addminperiod(self.warmup())

    def warmup(self) -> int:
        """Bars needed before the first meaningful value (the indicator's minimum period)."""
        return 1

    def ta_arguments(self) -> dict[str, Any]:
        """Keyword arguments for the `ta` class besides the input Series (the params)."""
        # backtrader's own accessor of a params object (underscored so that it can never
        # clash with a parameter name).
        return dict(self.params._getkwargs())

    def compute(self, length: int) -> list[np.ndarray]:
        """Run the `ta` indicator over the feed's first ``length`` bars.

        Parameters
        ----------
        length : int
            Number of bars (from the first) to compute over.

        Returns
        -------
        list of numpy.ndarray
            One float64 array of ``length`` values per line, in line order.
        """
        warmup = self.warmup()
        if length < warmup:
            # Not enough bars for a value (and `ta` may fail on a Series shorter than its window).
            return [np.full(length, np.nan) for _ in type(self).ta_outputs]
        series = {
            name: pd.Series(line_view(line, length), copy=False)
            for name, line in self._input_lines.items()
        }
        indicator = type(self).ta_class(**series, **self.ta_arguments())
        columns = []
        for method in type(self).ta_outputs:
            values = np.array(getattr(indicator, method)(), dtype=np.float64)
            values[: warmup - 1] = np.nan
            columns.append(values)
        return columns

    # -- runonce ------------------------------------------------------------------------------
    def once(self, start: int, end: int) -> None:
        """Compute bars ``[0, end)`` in one `ta` call and write them into the lines in place.

        Stateless: backtrader calls this twice (``oncestart`` then ``once``) and each call
        recomputes from the first bar.
        """
        end = min(end, self.data.buflen(), self.lines[0].buflen())
        if end <= 0:
            return
        for values, line in zip(self.compute(end), self.lines, strict=True):
            line_view(line, end, writeable=True)[:] = values

    # -- next ---------------------------------------------------------------------------------
    def prenext(self) -> None:
        """Write the warm-up bars too, as ``once`` does."""
        self.next()

    def next(self) -> None:
        """Write the current bar's row, computing over the available bars when needed."""
        position = len(self.data) - 1
        if position >= self._cache_length:
            available = max(self.data.buflen(), position + 1)
            # Copies (``compute`` returns fresh arrays): a live feed keeps appending to the
            # line buffers, which a view kept across bars would forbid.
            self._cache = self.compute(available)
            self._cache_length = available
        for values, line in zip(self._cache, self.lines, strict=True):
            line[0] = values[position]


def _fixed_warmup(bars: int) -> Callable[[Any], int]:
    return lambda params: bars


def ta_indicator(
    ta_class: Callable[..., Any],
    outputs: Mapping[str, str] | Sequence[str],
    *,
    inputs: Sequence[str] = ("close",),
    params: Mapping[str, Any] | None = None,
    warmup: int | Callable[[Any], int] = 1,
    name: str | None = None,
) -> type[TaIndicator]:
    """Build a :class:`TaIndicator` subclass for any `ta` indicator class.

    Parameters
    ----------
    ta_class : callable
        The `ta` class, e.g. ``ta.trend.ADXIndicator``.  It must be causal (see module notes).
    outputs : mapping or sequence of str
        Line name -> `ta` method name (``{"adx": "adx", "plus": "adx_pos"}``); a sequence of
        method names uses them as line names.
    inputs : sequence of str
        Feed lines to pass, named as `ta`'s arguments: any of open, high, low, close, volume.
    params : mapping, optional
        `ta` keyword arguments and defaults, exposed as backtrader params.
    warmup : int or callable
        Minimum period in bars, or a function of the params object returning it: the index
        of the first bar `ta` gives a value for, plus one.  Earlier bars are set to NaN and
        `ta` is not called on fewer bars (some `ta` classes fail on a Series shorter than
        their window).
    name : str, optional
        Class name (default ``"Ta" + ta_class.__name__``).

    Returns
    -------
    type
        A backtrader indicator class: ``Adx = ta_indicator(...)`` then ``Adx(self.data,
        window=20)`` inside a strategy.

    Raises
    ------
    ConfigError
        For an unknown input line, an output the `ta` class lacks, or a bad warm-up.
    """
    if not callable(ta_class):
        raise ConfigError(f"ta_class must be a ta indicator class, got {ta_class!r}")
    mapping = dict(outputs) if isinstance(outputs, Mapping) else {m: m for m in outputs}
    if not mapping:
        raise ConfigError("outputs is empty: name at least one ta method to expose as a line")
    unknown_inputs = [line for line in inputs if line not in FEED_INPUTS]
    if unknown_inputs:
        raise ConfigError(
            f"unknown input line(s) {unknown_inputs}: choose among {', '.join(FEED_INPUTS)}"
        )
    missing = [method for method in mapping.values() if not hasattr(ta_class, method)]
    if missing:
        raise ConfigError(
            f"{getattr(ta_class, '__name__', ta_class)} has no method(s) {missing}: check the "
            "ta documentation for its output methods"
        )
    if isinstance(warmup, int):
        if warmup < 1:
            raise ConfigError(f"warmup must be at least 1 bar, got {warmup}")
        warmup_function = _fixed_warmup(warmup)
    elif callable(warmup):
        warmup_function = warmup
    else:
        raise ConfigError(f"warmup must be an int or a function of the params, got {warmup!r}")

    def _warmup(self: TaIndicator) -> int:
        return int(warmup_function(self.p))

    class_name = name or f"Ta{getattr(ta_class, '__name__', 'Indicator')}"
    namespace = {
        "__doc__": f"`ta` {class_name} as lines {', '.join(mapping)}.",
        "__module__": __name__,
        "lines": tuple(mapping),
        "params": tuple((params or {}).items()),
        "ta_class": ta_class,
        "ta_inputs": tuple(inputs),
        "ta_outputs": tuple(mapping.values()),
        "warmup": _warmup,
    }
    return type(TaIndicator)(class_name, (TaIndicator,), namespace)


# -- presets ------------------------------------------------------------------------------------
class TaRSI(TaIndicator):
    """Relative Strength Index of the close (`ta.momentum.RSIIndicator`); line ``rsi``."""

    lines = ("rsi",)
    params = (("window", 14),)
    ta_class = RSIIndicator
    ta_outputs = ("rsi",)

    def warmup(self) -> int:
        """RSI is defined from bar ``window`` on."""
        return int(self.p.window)


class TaATR(TaIndicator):
    """Average True Range (`ta.volatility.AverageTrueRange`) of the candles; line ``atr``."""

    lines = ("atr",)
    params = (("window", 14),)
    ta_class = AverageTrueRange
    ta_inputs = ("high", "low", "close")
    ta_outputs = ("average_true_range",)

    def warmup(self) -> int:
        """ATR is seeded with the mean true range of the first ``window`` bars."""
        return int(self.p.window)


class TaBollingerBands(TaIndicator):
    """Bollinger bands of the close (`ta.volatility.BollingerBands`).

    Lines ``mid``, ``upper``, ``lower``, ``percent_b`` (position within the bands, 0..1) and
    ``width`` (band width in % of the middle band).
    """

    lines = ("mid", "upper", "lower", "percent_b", "width")
    params = (("window", 20), ("window_dev", 2))
    ta_class = BollingerBands
    ta_outputs = (
        "bollinger_mavg",
        "bollinger_hband",
        "bollinger_lband",
        "bollinger_pband",
        "bollinger_wband",
    )

    def warmup(self) -> int:
        """The bands need ``window`` closes."""
        return int(self.p.window)


class TaMACD(TaIndicator):
    """MACD of the close (`ta.trend.MACD`); lines ``macd``, ``signal``, ``histogram``."""

    lines = ("macd", "signal", "histogram")
    params = (("window_slow", 26), ("window_fast", 12), ("window_sign", 9))
    ta_class = MACD
    ta_outputs = ("macd", "macd_signal", "macd_diff")

    def warmup(self) -> int:
        """The signal line is an EMA of the MACD line, which needs the slow EMA first."""
        return int(self.p.window_slow) + int(self.p.window_sign) - 1


class TaEMA(TaIndicator):
    """Exponential moving average of the close (`ta.trend.EMAIndicator`); line ``ema``."""

    lines = ("ema",)
    params = (("window", 14),)
    ta_class = EMAIndicator
    ta_outputs = ("ema_indicator",)

    def warmup(self) -> int:
        """`ta` starts the EMA after ``window`` closes."""
        return int(self.p.window)
