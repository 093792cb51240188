"""PerpetualCommission: fractions, fractional sizes, unlevered costs, funding sign."""

from __future__ import annotations

import pytest

from backtest.engine import LIQUIDATION_FEE_RATES, PerpetualCommission
from backtest.errors import ConfigError


def test_fees_are_fractions_not_percentages():
    # backtrader divides `commission` by 100 unless percabs is True: 0.0005 must stay 0.05 %.
    scheme = PerpetualCommission(commission=0.0005, maker_commission=0.0002)
    assert scheme.p.commission == 0.0005
    assert scheme.getcommission(2.0, 50_000.0) == pytest.approx(50.0, rel=1e-12)
    assert scheme.trading_fee(-2.0, 50_000.0, maker=True) == pytest.approx(20.0, rel=1e-12)
    assert scheme.trading_fee(2.0, 50_000.0, maker=False) == pytest.approx(50.0, rel=1e-12)


def test_getsize_is_fractional_and_pays_margin_plus_taker_fee():
    # cash 1,000 at 5x, price 100, taker 0.05 %: size = 1000·5 / (100·(1 + 5·0.0005)) = 49.8753…
    scheme = PerpetualCommission(commission=0.0005, leverage=5.0)
    size = scheme.getsize(100.0, 1_000.0)
    assert size == pytest.approx(5_000.0 / 100.25, rel=1e-12)
    assert size != int(size)
    margin_plus_fee = size * 100.0 / 5.0 + size * 100.0 * 0.0005
    assert margin_plus_fee == pytest.approx(1_000.0, rel=1e-12)
    stepped = PerpetualCommission(commission=0.0005, leverage=5.0, size_step=0.001)
    assert stepped.getsize(100.0, 1_000.0) == pytest.approx(49.875, rel=1e-12)


def test_costs_are_unlevered_so_the_broker_divides_by_leverage_once():
    scheme = PerpetualCommission(leverage=10.0)
    assert scheme.getoperationcost(-2.0, 100.0) == 200.0
    assert scheme.get_margin(100.0) == 100.0
    assert scheme.get_leverage() == 10.0


def test_funding_payment_sign():
    scheme = PerpetualCommission()
    assert scheme.funding_payment(2.0, 50_000.0, 0.0001) == pytest.approx(10.0)  # long pays
    assert scheme.funding_payment(-2.0, 50_000.0, 0.0001) == pytest.approx(-10.0)  # short gets
    assert scheme.funding_payment(2.0, 50_000.0, -0.0001) == pytest.approx(-10.0)
    assert scheme.get_credit_interest(None, None, None) == 0.0


def test_liquidation_fee_defaults_to_binance_rate():
    scheme = PerpetualCommission()
    assert scheme.p.liquidation_fee == LIQUIDATION_FEE_RATES["binance"] == 0.0125
    assert scheme.liquidation_fee(-10.0, 100.0) == pytest.approx(12.5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("commission", -0.001),
        ("maker_commission", float("nan")),
        ("leverage", 0.0),
        ("liquidation_fee", -1.0),
        ("mult", 0.0),
    ],
)
def test_bad_parameters_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        PerpetualCommission(**{field: value})
