"""``Account``: the broker settings of a run as plain numbers, for the array simulator.

:func:`account_for` builds it from a :class:`~backtest.engine.config.RunConfig` and the
leverage tiers exactly as :func:`backtest.engine.runner.install_broker` configures
:class:`~backtest.engine.broker.PerpetualBroker` and its
:class:`~backtest.engine.commission.PerpetualCommission`: the run's cash, leverage, taker and
maker fees, the venue's clearance fee rate, contract multiplier 1, venue, margin mode, funding
switch and slippage.  The tier table becomes five float64 arrays (one value per bracket).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from backtest.errors import ConfigError

#: Venue codes of the raw interface (those of :data:`backtest.liquidation.prices.VENUE_CODES`).
VENUE_CODES: dict[str, int] = {"binance": 0, "bybit": 1, "okx": 2, "hyperliquid": 3}
#: Margin-mode codes of the raw interface.
MARGIN_MODE_CODES: dict[str, int] = {"isolated": 0, "cross": 1}
#: Slippage-model codes of the raw interface.
SLIPPAGE_MODEL_CODES: dict[str, int] = {"fixed": 0, "volatility": 1}


@dataclass(frozen=True, eq=False)
class Account:
    """Everything the perpetual broker uses, as numbers and short texts.

    Attributes
    ----------
    cash : float
        Starting wallet balance (quote currency).
    leverage : float
        Leverage of every position (orders carry no ``leverage=`` of their own here).
    taker_fee, maker_fee : float
        Fee rates (fraction of notional) of taker (market) and maker (limit) fills.
    liquidation_fee : float
        Clearance fee rate charged on a liquidation (capped by the margin left).
    mult : float
        Contract multiplier (base units per contract; 1 on USDⓈ-M).
    venue : str
        Liquidation formula: ``"binance"``, ``"bybit"``, ``"okx"`` or ``"hyperliquid"``.
    margin_mode : str
        ``"isolated"`` or ``"cross"`` (one symbol: the wallet backs the position).
    funding : bool
        Charge and pay funding at settlements.
    slippage : float
        Slippage of taker fills (see :func:`backtest.engine.broker.slippage_fraction`).
    slippage_model : str
        ``"fixed"`` or ``"volatility"``.
    tier_floor, tier_cap, tier_rate, tier_cum, tier_max_leverage : ndarray of float64
        The leverage-tier table, one value per bracket: notional floor and cap, maintenance
        margin rate, maintenance amount (Binance ``cum``, Bybit's deduction) and maximum
        leverage.
    label : str
        The tier table's name for messages.
    """

    cash: float
    leverage: float
    taker_fee: float
    maker_fee: float
    liquidation_fee: float
    mult: float
    venue: str
    margin_mode: str
    funding: bool
    slippage: float
    slippage_model: str
    tier_floor: np.ndarray
    tier_cap: np.ndarray
    tier_rate: np.ndarray
    tier_cum: np.ndarray
    tier_max_leverage: np.ndarray
    label: str = "tier table"

    @property
    def venue_code(self) -> int:
        """The venue's code in the raw interface (:data:`VENUE_CODES`)."""
        return VENUE_CODES[self.venue]

    @property
    def margin_mode_code(self) -> int:
        """0 isolated, 1 cross."""
        return MARGIN_MODE_CODES[self.margin_mode]

    @property
    def slippage_model_code(self) -> int:
        """0 fixed, 1 volatility."""
        return SLIPPAGE_MODEL_CODES[self.slippage_model]

    def check(self) -> Account:
        """Check every value the simulator relies on; return self.

        Raises
        ------
        ConfigError
            One line naming the bad setting.
        """
        numbers = {
            "cash": self.cash,
            "leverage": self.leverage,
            "taker_fee": self.taker_fee,
            "maker_fee": self.maker_fee,
            "liquidation_fee": self.liquidation_fee,
            "mult": self.mult,
            "slippage": self.slippage,
        }
        for name, value in numbers.items():
            if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0.0):
                raise ConfigError(f"account {name}={value!r} must be a finite number >= 0")
        if not (self.leverage > 0.0 and self.mult > 0.0):
            raise ConfigError("account leverage and mult must be > 0")
        if self.venue not in VENUE_CODES:
            raise ConfigError(
                f"account venue {self.venue!r} is unknown; use one of {', '.join(VENUE_CODES)}"
            )
        if self.margin_mode not in MARGIN_MODE_CODES:
            raise ConfigError(
                f"account margin_mode {self.margin_mode!r} is unknown; use isolated or cross"
            )
        if self.margin_mode == "cross" and self.venue != "binance":
            raise ConfigError(
                f"cross margin is modelled with Binance's formula only, not {self.venue}'s"
            )
        if self.slippage_model not in SLIPPAGE_MODEL_CODES:
            raise ConfigError(
                f"account slippage_model {self.slippage_model!r} is unknown; use fixed or "
                "volatility"
            )
        if not self.slippage < 1.0:
            raise ConfigError(f"account slippage {self.slippage!r} must be in [0, 1)")
        arrays = (
            self.tier_floor,
            self.tier_cap,
            self.tier_rate,
            self.tier_cum,
            self.tier_max_leverage,
        )
        count = self.tier_floor.shape[0] if isinstance(self.tier_floor, np.ndarray) else 0
        if count == 0 or any(
            not isinstance(array, np.ndarray)
            or array.dtype != np.float64
            or array.shape != (count,)
            for array in arrays
        ):
            raise ConfigError(
                "account tiers must be five float64 arrays of the same non-zero length "
                "(use account_for or tier_arrays)"
            )
        return self


def tier_arrays(tiers: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A :class:`~backtest.liquidation.tiers.LeverageTiers` as five float64 arrays.

    Returns
    -------
    tuple of ndarray
        Floors, caps, maintenance margin rates, maintenance amounts (``cum``), maximum
        leverages, one value per bracket.
    """
    brackets = tuple(tiers.tiers)
    return (
        np.array([tier.min_notional for tier in brackets], dtype=np.float64),
        np.array([tier.max_notional for tier in brackets], dtype=np.float64),
        np.array([tier.maintenance_margin_rate for tier in brackets], dtype=np.float64),
        np.array([tier.cum for tier in brackets], dtype=np.float64),
        np.array([tier.max_leverage for tier in brackets], dtype=np.float64),
    )


def account_for(config: Any, tiers: Any) -> Account:
    """The account of a single-symbol run, as the runner configures its broker.

    Parameters
    ----------
    config : RunConfig
        The run (cash, leverage, fees, venue, margin mode, funding, slippage).
    tiers : LeverageTiers
        The leverage tiers in force (as passed to :func:`backtest.engine.run` or loaded by
        :func:`backtest.engine.runner.load_run_tiers`).

    Returns
    -------
    Account

    Raises
    ------
    ConfigError
        For a portfolio (several symbols: the event engine runs those), missing tiers, or a run
        leverage above the tiers' maximum for cash × leverage (as
        :func:`backtest.engine.runner.check_leverage`).
    """
    from backtest.engine.config import RunConfig
    from backtest.engine.runner import check_leverage

    if not isinstance(config, RunConfig):
        raise ConfigError(f"account_for needs a RunConfig, got {type(config).__name__}")
    if config.portfolio:
        raise ConfigError(
            f"the array simulator runs one symbol; {', '.join(config.symbols)} is a portfolio "
            "(run it on the event engine)"
        )
    if tiers is None:
        raise ConfigError(
            f"the array simulator needs the leverage tiers of {config.symbol}; pass tiers= or "
            "load them with backtest.engine.runner.load_run_tiers"
        )
    check_leverage(config, tiers)
    floor, cap, rate, cum, max_leverage = tier_arrays(tiers)
    return Account(
        cash=float(config.cash),
        leverage=float(config.leverage),
        taker_fee=float(config.taker_fee),
        maker_fee=float(config.maker_fee),
        liquidation_fee=float(config.liquidation_fee_rate),
        mult=1.0,
        venue=str(config.venue),
        margin_mode=str(config.margin_mode),
        funding=bool(config.funding),
        slippage=float(config.slippage),
        slippage_model=str(config.slippage_model),
        tier_floor=floor,
        tier_cap=cap,
        tier_rate=rate,
        tier_cum=cum,
        tier_max_leverage=max_leverage,
        label=str(getattr(tiers, "label", "tier table")),
    ).check()
