"""TaIndicator: `ta` indicators as lines, equal to `ta` itself, in once and next mode."""

from __future__ import annotations

from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
import ta
from numpy.testing import assert_allclose

from backtest.engine.indicators import (
    TaATR,
    TaBollingerBands,
    TaEMA,
    TaIndicator,
    TaMACD,
    TaRSI,
    ta_indicator,
)
from backtest.errors import ConfigError

DATA = Path(__file__).parent / "data"

TaADX = ta_indicator(
    ta.trend.ADXIndicator,
    {"adx": "adx", "plus_di": "adx_pos", "minus_di": "adx_neg"},
    inputs=("high", "low", "close"),
    params={"window": 14},
    warmup=lambda p: 2 * p.window,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    candles = pd.read_parquet(DATA / "indicators_btc_5m.parquet")
    candles.index = candles.index.tz_convert(None)
    return candles[["open", "high", "low", "close", "volume"]]


class AllPresets(bt.Strategy):
    params = (("rsi_window", 14),)

    def __init__(self) -> None:
        self.rsi = TaRSI(self.data, window=self.p.rsi_window)
        self.atr = TaATR(self.data)
        self.bands = TaBollingerBands(self.data, window=20, window_dev=2)
        self.macd = TaMACD(self.data)
        self.ema = TaEMA(self.data, window=30)
        self.adx = TaADX(self.data)
        self.first_next: int | None = None
        self.values_at_first_next: list[float] = []

    def next(self) -> None:
        if self.first_next is None:
            self.first_next = len(self)
            self.values_at_first_next = [
                line[0] for indicator in self.indicators() for line in indicator.lines
            ]

    def indicators(self) -> list[TaIndicator]:
        return [self.rsi, self.atr, self.bands, self.macd, self.ema, self.adx]


def run(candles: pd.DataFrame, *, runonce: bool, preload: bool = True, **kwargs) -> AllPresets:
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce, preload=preload)
    cerebro.adddata(bt.feeds.PandasData(dataname=candles))
    cerebro.addstrategy(AllPresets, **kwargs)
    return cerebro.run()[0]


def line_values(indicator) -> list[np.ndarray]:
    return [np.array(line.array) for line in indicator.lines]


def assert_same(actual, expected) -> None:
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    assert_allclose(actual, expected, rtol=1e-12, atol=1e-9, equal_nan=True)


@pytest.fixture(scope="module")
def once_run(frame) -> AllPresets:
    return run(frame, runonce=True, rsi_window=9)


def test_presets_equal_ta_called_directly(frame, once_run):
    close, high, low = frame["close"], frame["high"], frame["low"]
    assert_same(once_run.rsi.rsi.array, ta.momentum.RSIIndicator(close, window=9).rsi())
    atr = ta.volatility.AverageTrueRange(high, low, close, window=14).average_true_range()
    assert_same(once_run.atr.atr.array[13:], atr[13:])
    # ta writes 0 on the warm-up bars; the adapter makes them NaN like every other preset
    assert (atr[:13] == 0.0).all()
    assert np.isnan(once_run.atr.atr.array[:13]).all()
    bands = ta.volatility.BollingerBands(close, window=20, window_dev=2)
    assert_same(once_run.bands.upper.array, bands.bollinger_hband())
    assert_same(once_run.bands.lower.array, bands.bollinger_lband())
    assert_same(once_run.bands.percent_b.array, bands.bollinger_pband())
    macd = ta.trend.MACD(close)
    assert_same(once_run.macd.signal.array, macd.macd_signal())
    assert_same(once_run.macd.histogram.array, macd.macd_diff())
    assert_same(once_run.ema.ema.array, ta.trend.EMAIndicator(close, window=30).ema_indicator())
    adx = ta.trend.ADXIndicator(high, low, close, window=14)
    assert_same(once_run.adx.minus_di.array[27:], adx.adx_neg()[27:])
    assert np.isnan(once_run.adx.minus_di.array[:27]).all()


def test_once_and_next_give_identical_lines(frame, once_run):
    stepped = run(frame, runonce=False, rsi_window=9)
    for once_indicator, next_indicator in zip(
        once_run.indicators(), stepped.indicators(), strict=True
    ):
        for once_line, next_line in zip(
            line_values(once_indicator), line_values(next_indicator), strict=True
        ):
            assert_same(next_line, once_line)
    assert stepped.first_next == once_run.first_next


def test_a_growing_live_feed_sees_prefix_values(frame):
    """Without preload each bar recomputes on the bars delivered so far: same lines."""
    short = frame.iloc[:240]
    once = run(short, runonce=True)
    live = run(short, runonce=False, preload=False)
    for once_indicator, live_indicator in zip(once.indicators(), live.indicators(), strict=True):
        for once_line, live_line in zip(
            line_values(once_indicator), line_values(live_indicator), strict=True
        ):
            assert_same(live_line, once_line)


@pytest.mark.parametrize("cut", [40, 333, 1000])
def test_presets_are_causal(frame, cut):
    """The next-mode shortcut is exact only for causal indicators: check the presets."""
    full = run(frame, runonce=True)
    prefix = run(frame.iloc[:cut], runonce=True)
    for full_indicator, prefix_indicator in zip(
        full.indicators(), prefix.indicators(), strict=True
    ):
        for full_line, prefix_line in zip(
            line_values(full_indicator), line_values(prefix_indicator), strict=True
        ):
            assert_same(prefix_line, full_line[:cut])


def test_strategy_starts_when_every_preset_has_a_value(once_run):
    # MACD's signal needs 26 + 9 - 1 bars; ADX was declared with 2 * 14
    assert once_run.first_next == max(26 + 9 - 1, 2 * 14, 30, 20, 14, 9)
    assert np.isfinite(once_run.values_at_first_next).all()
    # each preset's own warm-up is tight: the bar before it has no value yet
    for indicator, line in [
        (once_run.rsi, once_run.rsi.rsi),
        (once_run.atr, once_run.atr.atr),
        (once_run.bands, once_run.bands.mid),
        (once_run.macd, once_run.macd.signal),
        (once_run.ema, once_run.ema.ema),
    ]:
        warmup = indicator.warmup()
        assert np.isfinite(line.array[warmup - 1]), type(indicator).__name__
        assert np.isnan(line.array[warmup - 2]), type(indicator).__name__


def test_once_is_stateless_when_called_again(once_run):
    before = line_values(once_run.bands)
    once_run.bands.once(20, once_run.bands.buflen())
    for previous, now in zip(before, line_values(once_run.bands), strict=True):
        assert_same(now, previous)


def test_factory_builds_named_classes():
    assert TaADX.__name__ == "TaADXIndicator"
    assert TaADX.lines.getlinealiases() == ("adx", "plus_di", "minus_di")
    assert issubclass(TaADX, TaIndicator)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outputs": {}}, "outputs is empty"),
        ({"outputs": ("rsi",), "inputs": ("closing",)}, "unknown input line"),
        ({"outputs": ("relative_strength",)}, "has no method"),
        ({"outputs": ("rsi",), "warmup": 0}, "warmup must be at least 1"),
        ({"outputs": ("rsi",), "warmup": "14"}, "warmup must be an int"),
    ],
)
def test_factory_refuses_bad_definitions(kwargs, message):
    with pytest.raises(ConfigError, match=message) as caught:
        ta_indicator(ta.momentum.RSIIndicator, **kwargs)
    assert "\n" not in str(caught.value)


def test_the_bare_base_class_is_refused(frame):
    class Bare(bt.Strategy):
        def __init__(self) -> None:
            TaIndicator(self.data)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame.iloc[:50]))
    cerebro.addstrategy(Bare)
    with pytest.raises(ConfigError, match="adapts no ta indicator"):
        cerebro.run()


class OnAnAverage(bt.Strategy):
    def __init__(self) -> None:
        self.average = bt.indicators.SMA(self.data.close, period=5)
        self.rsi = TaRSI(self.average, window=7)


def test_a_single_line_feeds_a_one_input_indicator(frame):
    short = frame.iloc[:300]
    results = {}
    for runonce in (True, False):
        cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
        cerebro.adddata(bt.feeds.PandasData(dataname=short))
        cerebro.addstrategy(OnAnAverage)
        results[runonce] = cerebro.run()[0]
    once, stepped = results[True], results[False]
    average = np.array(once.average.array)
    expected = ta.momentum.RSIIndicator(pd.Series(average), window=7).rsi().to_numpy().copy()
    expected[:6] = np.nan  # the adapter's warm-up
    assert_same(once.rsi.rsi.array, expected)
    assert np.isfinite(np.array(once.rsi.rsi.array)[10:]).all()
    assert_same(stepped.rsi.rsi.array, once.rsi.rsi.array)


def test_a_single_line_cannot_feed_a_candle_indicator(frame):
    class AtrOnClose(bt.Strategy):
        def __init__(self) -> None:
            TaATR(self.data.close)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame.iloc[:50]))
    cerebro.addstrategy(AtrOnClose)
    with pytest.raises(ConfigError, match="TaATR needs a candle feed with lines high, low, close"):
        cerebro.run()
