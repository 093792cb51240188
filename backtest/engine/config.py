"""``RunConfig``: everything one backtest run needs, frozen and validated.

:mod:`backtest.config` reads run files and flags into the fields of this class; the runner
(:func:`backtest.engine.run`) turns it into a Cerebro.  ``to_dict`` gives JSON-compatible data
(what :class:`~backtest.results.Results` stores) and ``from_dict`` reads it back.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from backtest.engine.broker import MARGIN_MODES, SLIPPAGE_MODELS, VENUES
from backtest.errors import ConfigError


class FrozenMapping(Mapping[str, Any]):
    """A read-only, picklable mapping of parameter names to JSON-compatible values."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_items", dict(items or {}))

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(json.dumps(self._items, sort_keys=True, default=str))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._items,))

    def to_dict(self) -> dict[str, Any]:
        """A plain, independent copy."""
        return json.loads(json.dumps(self._items))


def _json_safe(owner: str, values: Any) -> FrozenMapping:
    if values is None:
        return FrozenMapping()
    if not isinstance(values, Mapping):
        raise ConfigError(f"{owner} must be a mapping of names to values, got {values!r}")
    for key in values:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{owner}: parameter names must be non-empty strings, got {key!r}")
    try:
        text = json.dumps(dict(values), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"{owner} must hold numbers, strings, booleans or lists of them ({error})"
        ) from None
    return FrozenMapping(json.loads(text))


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return number


def _time_text(name: str, value: Any) -> str | None:
    """Normalise a date or time to ISO text (UTC), keeping the user's precision."""
    from backtest.market.timeframes import format_date_argument, parse_time

    milliseconds = parse_time(value, name)
    if milliseconds is None:
        return None
    return format_date_argument(milliseconds)


def _symbols_value(value: Any) -> str | tuple[str, ...]:
    """One symbol as text, several as a tuple (from a list or a comma-separated string)."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(
            f"symbol must be a ccxt symbol or a list of them, e.g. BTC/USDT:USDT, got {value!r}"
        )
    symbols: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                f"symbol must be a non-empty string (or a list of them: BTC/USDT:USDT,"
                f"ETH/USDT:USDT), got {value!r}"
            )
        name = item.strip()
        if name in symbols:
            raise ConfigError(f"symbol {name!r} is listed twice; list each market once")
        symbols.append(name)
    if not symbols:
        raise ConfigError("symbol must name at least one market, e.g. BTC/USDT:USDT")
    return symbols[0] if len(symbols) == 1 else tuple(symbols)


def _symbols_alias(values: Mapping[str, Any]) -> Mapping[str, Any]:
    """Read ``symbols`` (a run file's list of markets) as ``symbol``."""
    if "symbols" not in values:
        return values
    if values.get("symbol") is not None and values.get("symbols") is not None:
        raise ConfigError("give either symbol or symbols, not both")
    renamed = {key: value for key, value in values.items() if key != "symbols"}
    if values["symbols"] is not None:
        renamed["symbol"] = values["symbols"]
    return renamed


@dataclass(frozen=True)
class RunConfig:
    """One backtest run: market, strategy, account and model settings.

    Attributes
    ----------
    symbol : str or tuple of str
        ccxt unified symbol of the perpetual, e.g. ``"BTC/USDT:USDT"``; several symbols (a
        list, or one string separated by commas) make a portfolio run: one account, one clock,
        one feed per symbol (see :attr:`symbols`).  A list of one is stored as that symbol.
    exchange : str
        ccxt exchange id of the stored data and the venue traded: ``"binanceusdm"``
        (default), ``"bybit"``, ``"okx"`` or ``"hyperliquid"`` (see
        :mod:`backtest.engine.venues`).
    timeframe : str
        Candle timeframe (``"5m"``, ``"1h"``).
    since, until : str or None
        First bar (inclusive) and last bar (exclusive), UTC; ISO text once validated.
    strategy : str
        Strategy plugin: a discovered name, ``file.py:Class`` or ``module:Class``.
    params : mapping
        Strategy parameters.
    cash : float
        Starting wallet balance, quote currency (> 0).
    leverage : float
        Leverage of new positions (> 0, at most the tier maximum for ``cash × leverage``).
    margin_mode : str
        ``"isolated"`` or ``"cross"``.
    maker_fee, taker_fee : float
        Trading fees as fractions of notional (0.0002 = 0.02 %), >= 0.
    venue : str or None
        Liquidation formula: ``"binance"``, ``"bybit"``, ``"okx"`` or ``"hyperliquid"``; by
        default (None) the exchange's (``binanceusdm`` -> ``binance``).  Cross margin is
        Binance's formula only.
    funding : bool
        Charge and pay funding at the settlements of the funding series.
    map_params : mapping
        Liquidation-map parameters (:class:`~backtest.liquidation.heatmap.MapParams` fields).
    near_miss_pct : float
        A bar is a near miss when its worst price comes within this % of the liquidation price.
    data_dir : str or None
        The data store (default ``./data``, then the bundled sample).
    liquidation_fee : float or None
        Clearance fee rate charged on a liquidation; None uses the venue's (Binance: 0.0125).
    warmup : str or None
        How long before ``since`` the liquidation map starts (:mod:`backtest.engine.warmup`):
        None (``auto``) for the rule of :func:`backtest.liquidation.warmup.warmup_duration`
        (20 half-lives of the map's decay: 40 days for a 48 h half-life), ``"0"`` for none (the map
        starts empty at ``since``), or a span such as ``"30d"``.
    slippage : float
        Slippage of taker fills (market, close, stop and liquidation fills), >= 0 and < 1.
        Default 0: fills at the bar's prices, as before slippage existed.
    slippage_model : str
        ``"fixed"`` (default: ``slippage`` is the fraction of the price a fill moves against
        the order) or ``"volatility"`` (``slippage`` × the fill bar's (high − low) / open); see
        :func:`backtest.engine.broker.slippage_fraction`.
    """

    symbol: str | tuple[str, ...] = "BTC/USDT:USDT"
    exchange: str = "binanceusdm"
    timeframe: str = "5m"
    since: str | None = None
    until: str | None = None
    strategy: str = "ClusterFade"
    params: Mapping[str, Any] = field(default_factory=FrozenMapping)
    cash: float = 10_000.0
    leverage: float = 3.0
    margin_mode: str = "isolated"
    maker_fee: float = 0.0002
    taker_fee: float = 0.0005
    venue: str | None = None
    funding: bool = True
    map_params: Mapping[str, Any] = field(default_factory=FrozenMapping)
    near_miss_pct: float = 1.0
    data_dir: str | None = None
    liquidation_fee: float | None = None
    warmup: str | None = None
    slippage: float = 0.0
    slippage_model: str = "fixed"

    def __post_init__(self) -> None:
        from backtest.market.timeframes import parse_time, timeframe_to_ms

        def set_(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        set_("symbol", _symbols_value(self.symbol))
        for name in ("exchange", "strategy", "timeframe"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
            set_(name, value.strip())
        timeframe_to_ms(self.timeframe)
        set_("since", _time_text("since", self.since))
        set_("until", _time_text("until", self.until))
        since_ms, until_ms = parse_time(self.since), parse_time(self.until)
        if since_ms is not None and until_ms is not None and since_ms >= until_ms:
            raise ConfigError(
                f"since {self.since} is not before until {self.until}; swap them or widen the range"
            )
        set_("params", _json_safe("params", self.params))
        set_("map_params", _json_safe("map_params", self.map_params))
        cash = _number("cash", self.cash)
        if cash <= 0.0:
            raise ConfigError(f"cash must be > 0 (starting wallet balance), got {self.cash!r}")
        set_("cash", cash)
        leverage = _number("leverage", self.leverage)
        if leverage <= 0.0:
            raise ConfigError(f"leverage must be > 0 (1 = unlevered), got {self.leverage!r}")
        set_("leverage", leverage)
        if self.margin_mode not in MARGIN_MODES:
            raise ConfigError(
                f"margin_mode {self.margin_mode!r} is unknown; use {' or '.join(MARGIN_MODES)}"
            )
        for name in ("maker_fee", "taker_fee"):
            fee = _number(name, getattr(self, name))
            if not 0.0 <= fee < 0.1:
                raise ConfigError(
                    f"{name} {fee!r} must be a fraction in [0, 0.1) (0.0005 = 0.05 %); rebates "
                    "(negative fees) are not modelled"
                )
            set_(name, fee)
        from backtest.engine.venues import EXCHANGE_VENUES, check_exchange

        set_("exchange", check_exchange(self.exchange))
        if self.venue is None:
            set_("venue", EXCHANGE_VENUES[self.exchange])
        if self.venue not in VENUES:
            close = difflib.get_close_matches(str(self.venue), VENUES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"venue {self.venue!r} is unknown{hint}; use one of {', '.join(VENUES)}"
            )
        if self.margin_mode == "cross" and self.venue != "binance":
            raise ConfigError(
                f"cross margin is modelled with Binance's formula only, not {self.venue}'s; "
                "use --margin-mode isolated on this exchange"
            )
        if not isinstance(self.funding, bool):
            raise ConfigError(f"funding must be true or false, got {self.funding!r}")
        near_miss = _number("near_miss_pct", self.near_miss_pct)
        if not 0.0 < near_miss <= 100.0:
            raise ConfigError(f"near_miss_pct must be in (0, 100] percent, got {near_miss!r}")
        set_("near_miss_pct", near_miss)
        if self.data_dir is not None:
            if not isinstance(self.data_dir, str | os.PathLike):
                raise ConfigError(f"data_dir must be a folder path, got {self.data_dir!r}")
            set_("data_dir", os.fspath(self.data_dir))
        if self.liquidation_fee is not None:
            fee = _number("liquidation_fee", self.liquidation_fee)
            if not 0.0 <= fee < 1.0:
                raise ConfigError(f"liquidation_fee must be a fraction in [0, 1), got {fee!r}")
            set_("liquidation_fee", fee)
        slippage = _number("slippage", self.slippage)
        if not 0.0 <= slippage < 1.0:
            raise ConfigError(
                f"slippage {slippage!r} must be in [0, 1): a fraction of the price (fixed model, "
                "0.0005 = 5 basis points) or of the bar's range (volatility model)"
            )
        set_("slippage", slippage)
        if self.slippage_model not in SLIPPAGE_MODELS:
            raise ConfigError(
                f"slippage_model {self.slippage_model!r} is unknown; use "
                f"{' or '.join(SLIPPAGE_MODELS)}"
            )
        if self.warmup is not None:
            from backtest.liquidation.warmup import format_warmup, parse_warmup

            span = parse_warmup(self.warmup)
            set_("warmup", None if span is None else format_warmup(span))

    # -- conversion -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible fields (``params``/``map_params`` as plain dicts)."""
        values: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, FrozenMapping):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            values[item.name] = value
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build from ``to_dict`` output or settings; None values mean "use the default".

        Raises
        ------
        ConfigError
            For an unknown key (with the closest field names) or an invalid value.
        """
        names = [item.name for item in dataclasses.fields(cls)]
        values = _symbols_alias(values)
        unknown = [key for key in values if key not in names]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(str(key), names, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                f"unknown run setting {key!r}{hint}; allowed: {', '.join(sorted(names))}"
            )
        return cls(**{key: value for key, value in values.items() if value is not None})

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The run's symbols in feed order (one for a single-market run)."""
        return self.symbol if isinstance(self.symbol, tuple) else (self.symbol,)

    @property
    def portfolio(self) -> bool:
        """Whether the run trades several symbols."""
        return isinstance(self.symbol, tuple)

    @property
    def liquidation_fee_rate(self) -> float:
        """The clearance fee rate in use (the venue's default when not set)."""
        from backtest.engine.commission import LIQUIDATION_FEE_RATES

        if self.liquidation_fee is not None:
            return self.liquidation_fee
        return LIQUIDATION_FEE_RATES[self.venue]
