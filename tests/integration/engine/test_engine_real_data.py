"""The compiled backtest loop and the event-driven engine agree on real market data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from tests.conftest import CATMAN_BTC_5M, FILIMONOV_BTC_1M, real_ohlcv

from slt.domain.features.indicators_nb import ema_nb
from slt.domain.resample import resample
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.backtest import MarketData, run_backtest
from slt.engine.event_runner import run_event_driven
from slt.engine.trading_config import TradingConfig

pytestmark = pytest.mark.shared_data


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


def _cross_signals(close: npt.NDArray[np.float64]) -> npt.NDArray[np.int8]:
    fast, slow = ema_nb(close, 12), ema_nb(close, 26)
    above = fast > slow
    direction = np.zeros(len(close), dtype=np.int8)
    direction[1:][above[1:] & ~above[:-1]] = 1
    direction[1:][~above[1:] & above[:-1] & ~np.isnan(slow[:-1])] = -1
    return direction


RICH_CONFIG = TradingConfig.model_validate(
    {
        "risk": {"sizing": "kelly", "leverage_max": 10, "win_rate_min_trades": 3},
        "exits": {
            "stop_loss_pct": 0.8,
            "take_profit_pct": 1.6,
            "partial_take_profit_pct": 0.6,
            "trailing_activation_pct": 0.6,
            "trailing_distance_pct": 0.3,
            "break_even_trigger_pct": 0.4,
        },
        "costs": {"slippage_bps": 1.0, "slippage_range_fraction": 0.05},
    }
)


def test_event_driven_engine_matches_the_compiled_loop_on_real_btc_futures() -> None:
    candles = _candles(CATMAN_BTC_5M, "5m", Market.FUTURES, slice(0, 12_000))
    direction = _cross_signals(candles.close)
    score = np.where(direction != 0, 0.6, 0.0)
    data = MarketData(candles, int(candles.open_time_ms[0]), symbol_rules("BTCUSDT"))
    fast, _ = run_backtest(data, direction, score, RICH_CONFIG)
    trades, equity, _ = run_event_driven(data, direction, score, RICH_CONFIG)
    assert len(fast.trades) > 100
    assert {t.exit_reason for t in fast.trades} >= {"stop_loss", "trailing_stop", "break_even"}
    assert [t._asdict() for t in trades] == [t._asdict() for t in fast.trades]
    np.testing.assert_array_equal(equity, fast.equity)


def test_one_minute_candles_decide_bars_where_stop_and_target_both_lie_inside() -> None:
    minute = _candles(FILIMONOV_BTC_1M, "1m", Market.SPOT, slice(0, 40_000))
    base = resample(minute, "5m", complete_only=True)
    direction = _cross_signals(base.close)
    score = np.where(direction != 0, 0.6, 0.0)
    config = TradingConfig.model_validate(
        {"exits": {"stop_loss_pct": 0.15, "take_profit_pct": 0.2}, "costs": {"funding": False}}
    )
    rules = symbol_rules("BTCUSDT")
    start = int(base.open_time_ms[0])
    worst, _ = run_backtest(MarketData(base, start, rules), direction, score, config)
    fine_data = MarketData(base, start, rules, minute=minute)
    fine, _ = run_backtest(fine_data, direction, score, config)
    # Tight levels make many 5m bars touch both: worst case books each as a stop, 1m data
    # finds the target first in some of them, so fine resolution has more targets.
    targets = [sum(t.exit_reason == "take_profit" for t in r.trades) for r in (worst, fine)]
    assert targets[1] > targets[0]
    trades, equity, _ = run_event_driven(fine_data, direction, score, config)
    assert [t._asdict() for t in trades] == [t._asdict() for t in fine.trades]
    np.testing.assert_array_equal(equity, fine.equity)
