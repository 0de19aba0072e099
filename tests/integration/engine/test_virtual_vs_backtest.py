"""Virtual positions close exactly as the backtest closes real ones, on real BTCUSDT data.

Signals are thinned so real positions never overlap: a signal is kept only when the previous
kept virtual position has closed by its candle's close, which is when the loop is flat again.
With 1x leverage, fixed sizing and no funding, each real trade must then be the same trade
as its virtual position, scaled from one unit to the sized quantity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from tests.conftest import CATMAN_BTC_5M, FILIMONOV_BTC_1M, real_ohlcv

from slt.domain.resample import resample
from slt.domain.results import MarketData
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.strategies.base import Signals
from slt.domain.trading.enums import EXIT_REASONS
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.backtest import run_backtest
from slt.engine.pipeline import scored, stop_distances
from slt.engine.virtual import VirtualOutcomes, virtual_outcomes
from slt.runtime.trading_config import TradingConfig

pytestmark = pytest.mark.shared_data

I8 = npt.NDArray[np.int8]

RISK = {"sizing": "fixed", "risk_pct": 1.0, "leverage_min": 1, "leverage_max": 1}
BASE = {
    "risk": RISK,
    "costs": {"funding": False, "slippage_bps": 1.0, "slippage_range_fraction": 0.05},
}
PLAIN = TradingConfig.model_validate(
    {
        **BASE,
        "exits": {
            "stop_loss_pct": 0.8,
            "take_profit_pct": 1.6,
            "max_holding_minutes": 240,
            "exit_on_opposite": False,
        },
    }
)
RICH = TradingConfig.model_validate(
    {
        **BASE,
        "exits": {
            "stop_loss_pct": 0.8,
            "take_profit_pct": 1.6,
            "partial_take_profit_pct": 0.6,
            "trailing_activation_pct": 0.6,
            "trailing_distance_pct": 0.3,
            "break_even_trigger_pct": 0.4,
            "max_holding_minutes": 360,
            "exit_on_opposite": False,
        },
    }
)
ATR_STOPS = TradingConfig.model_validate(
    {
        **BASE,
        "risk": {**RISK, "sizing": "atr", "atr_stop_min_pct": 0.3},
        "exits": {"take_profit_pct": 1.2, "max_holding_minutes": 180, "exit_on_opposite": False},
    }
)


def _candles(path: Path, timeframe: str, market: Market, rows: slice) -> Candles:
    raw = real_ohlcv(path)
    key = SeriesKey("BTCUSDT", market, timeframe)
    return Candles.from_arrays(
        key,
        raw.times_ms[rows],
        raw.open[rows],
        raw.high[rows],
        raw.low[rows],
        raw.close[rows],
        raw.volume[rows],
    )


def _random_signals(n: int, every: int, seed: int) -> I8:
    """About one signal every ``every`` candles, long or short at random (seeded)."""
    rng = np.random.default_rng(seed)
    side = rng.choice(np.array([-1, 1], dtype=np.int8), size=n)
    return np.where(rng.random(n) < 1.0 / every, side, 0).astype(np.int8)


def _outcomes(
    candles: Candles,
    direction: I8,
    config: TradingConfig,
    minute: Candles | None = None,
) -> VirtualOutcomes:
    return virtual_outcomes(
        candles.open_time_ms,
        candles.open,
        candles.high,
        candles.low,
        candles.close,
        candles.key.timeframe_ms,
        direction,
        stop_distances(config.engine().stops, candles),
        config.exit_params(),
        config.cost_params(),
        symbol_rules("BTCUSDT").tick_size,
        minute=minute,
    )


def _non_overlapping(candles: Candles, out: VirtualOutcomes) -> tuple[I8, npt.NDArray[np.int64]]:
    """Signals whose candle closes after the previous kept virtual position closed, and the
    rows of ``out`` they keep."""
    direction = np.zeros(len(candles), dtype=np.int8)
    kept = []
    flat_from = -1  # open time of the first candle at whose close the loop is flat again
    tf = candles.key.timeframe_ms
    for k in range(len(out)):
        i = int(out.signal_index[k])
        if candles.open_time_ms[i] + tf <= flat_from:
            continue
        direction[i] = out.direction[k]
        kept.append(k)
        flat_from = int(out.exit_time_ms[k])
    return direction, np.array(kept, dtype=np.int64)


def _assert_same_trades(
    candles: Candles, config: TradingConfig, direction: I8, minute: Candles | None = None
) -> set[str]:
    """Thin ``direction`` to non-overlapping signals, backtest them, compare one for one;
    the exit reasons seen."""
    out = _outcomes(candles, direction, config, minute)
    thinned, kept = _non_overlapping(candles, out)
    data = MarketData(candles, int(candles.open_time_ms[0]), symbol_rules("BTCUSDT"), minute=minute)
    engine = config.engine()
    signals = scored(Signals(thinned, np.where(thinned != 0, 0.5, 0.0)), candles, engine.stops)
    result, _ = run_backtest(data, signals, engine)
    trades = result.trades
    assert len(trades) == len(kept)
    for trade, k in zip(trades, kept, strict=True):
        i = int(out.signal_index[k])
        assert trade.signal_time_ms == candles.open_time_ms[i]
        assert trade.side == ("long" if out.direction[k] == 1 else "short")
        assert trade.entry_time_ms == out.entry_time_ms[k]
        assert trade.entry_price == out.entry_price[k]
        assert trade.exit_time_ms == out.exit_time_ms[k]
        assert trade.exit_reason == EXIT_REASONS[int(out.exit_reason[k])]
        # The trade's exit price is sum(price x qty) / qty, which can move the last bit of a
        # single fill's price; the fill itself must be the same price exactly.
        if len(trade.exits) == 1:
            assert trade.exits[0].price == out.exit_price[k]
        assert trade.exit_price == pytest.approx(out.exit_price[k], rel=1e-14)
        assert trade.pnl_pct == pytest.approx(out.return_pct[k], abs=1e-9)
        assert out.closed[k] == (trade.exit_reason != "end_of_data")
    return {t.exit_reason for t in trades}


def test_virtual_positions_equal_backtest_trades_with_fixed_stop_target_and_time_stop() -> None:
    candles = _candles(CATMAN_BTC_5M, "5m", Market.FUTURES, slice(0, 60_000))
    reasons = _assert_same_trades(candles, PLAIN, _random_signals(len(candles), 12, seed=1))
    assert reasons >= {"stop_loss", "take_profit", "time_stop"}


def test_virtual_positions_equal_backtest_trades_with_partial_trailing_and_break_even() -> None:
    candles = _candles(CATMAN_BTC_5M, "5m", Market.FUTURES, slice(40_000, 100_000))
    reasons = _assert_same_trades(candles, RICH, _random_signals(len(candles), 12, seed=2))
    assert reasons >= {"stop_loss", "take_profit", "trailing_stop", "break_even", "time_stop"}


def test_virtual_positions_equal_backtest_trades_with_atr_stops_per_signal() -> None:
    # ATR(14) stops vary per signal and are NaN in the warm-up: no position there in either.
    candles = _candles(CATMAN_BTC_5M, "5m", Market.FUTURES, slice(90_000, 143_900))
    direction = _random_signals(len(candles), 12, seed=3)
    direction[:5] = 1
    reasons = _assert_same_trades(candles, ATR_STOPS, direction)
    assert reasons >= {"stop_loss", "take_profit", "time_stop"}


def test_virtual_positions_use_one_minute_candles_like_the_backtest() -> None:
    # Tight levels on 5m candles resampled from real 1m ones (holes skipped as incomplete):
    # many candles touch both levels, and 1m data orders them in both the loop and here.
    minute = _candles(FILIMONOV_BTC_1M, "1m", Market.SPOT, slice(0, 60_000))
    base = resample(minute, "5m", complete_only=True)
    config = TradingConfig.model_validate(
        {
            **BASE,
            "exits": {"stop_loss_pct": 0.15, "take_profit_pct": 0.2, "exit_on_opposite": False},
        }
    )
    direction = _random_signals(len(base), 4, seed=4)
    worst = _outcomes(base, direction, config)
    fine = _outcomes(base, direction, config, minute)
    assert fine.won.sum() > worst.won.sum()
    _assert_same_trades(base, config, direction, minute)


@pytest.mark.parametrize("k", [1_000, 7_777, 20_001, 39_999])
def test_outcomes_closed_before_a_bar_do_not_change_when_later_bars_are_removed(k: int) -> None:
    candles = _candles(CATMAN_BTC_5M, "5m", Market.FUTURES, slice(0, 40_000))
    direction = _random_signals(len(candles), 5, seed=5)
    full = _outcomes(candles, direction, RICH)
    prefix = _outcomes(candles.take(slice(0, k)), direction[:k], RICH)
    done = full.closed & (
        full.exit_time_ms < candles.open_time_ms[k - 1] + candles.key.timeframe_ms
    )
    assert done.sum() > 0
    mine = np.isin(prefix.signal_index, full.signal_index[done])
    assert mine.sum() == done.sum()
    for name in VirtualOutcomes.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(prefix, name)[mine], getattr(full, name)[done])
