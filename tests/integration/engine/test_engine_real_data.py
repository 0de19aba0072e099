"""The compiled driver and the event wiring agree on real market data, bar for bar.

The event wiring is what paper and live trading run: every event goes through the reducer as
an object, every command through the simulated exchange's client. On real BTCUSDT and ETHUSDT
5m futures, 2023-01-01 to 2024-05-01, traded from one account with real funding and mark
prices, both must give the same trades and the same equity, for ``smc`` and ``ema_cross``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import CATMAN, CATMAN_BTC_5M, CATMAN_ETH_5M, FILIMONOV_BTC_1M, real_ohlcv

from slt.adapters.importers.readers import read_feather
from slt.domain.clock import parse_utc_ms
from slt.domain.features.matrix import compute_features
from slt.domain.resample import resample
from slt.domain.results import MarketData
from slt.domain.series import Candles, FundingRates, Kind, Market, SeriesKey
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.backtest import prepare, run_prepared
from slt.engine.event_driver import run_events
from slt.engine.pipeline import scored
from slt.runtime.trading_config import TradingConfig

pytestmark = pytest.mark.shared_data

START, END = parse_utc_ms("2023-01-01"), parse_utc_ms("2024-05-01")
RICH = TradingConfig.model_validate(
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


def _candles(path: Path, symbol: str, timeframe: str, market: Market, kind: Kind) -> Candles:
    raw = real_ohlcv(path)
    keep = raw.times_ms < END
    return Candles.from_arrays(
        SeriesKey(symbol, market, timeframe, kind), raw.times_ms[keep], raw.open[keep],
        raw.high[keep], raw.low[keep], raw.close[keep], raw.volume[keep],
    )  # fmt: skip


def _futures(symbol: str, path: Path) -> MarketData:
    base = symbol[:3]
    funding = read_feather(CATMAN / f"{base}_USDT_USDT-8h-funding_rate.feather")
    rates = FundingRates.from_arrays(
        SeriesKey(symbol, Market.FUTURES, "8h", Kind.FUNDING), funding.times_ms, funding.open
    )
    mark = _candles(CATMAN / f"{base}_USDT_USDT-8h-mark.feather", symbol, "8h", Market.FUTURES,
                    Kind.MARK)  # fmt: skip
    candles = _candles(path, symbol, "5m", Market.FUTURES, Kind.CANDLES)
    return MarketData(candles, START, symbol_rules(symbol), funding=rates, mark=mark)


@pytest.mark.parametrize(
    ("strategy", "config"),
    [("ema_cross", TradingConfig()), ("smc", TradingConfig()), ("smc", RICH)],
)
def test_events_wiring_equals_the_compiled_driver_on_btc_and_eth_from_one_account(
    strategy: str, config: TradingConfig
) -> None:
    datas = [_futures("BTCUSDT", CATMAN_BTC_5M), _futures("ETHUSDT", CATMAN_ETH_5M)]
    engine = config.engine()
    chosen = builtin_strategy(strategy)
    signals = []
    for data in datas:
        features = compute_features(data.candles) if chosen.uses_features else None
        signals.append(scored(chosen.signals(data.candles, features), data.candles, engine.stops))
    prepared = prepare(datas, signals, engine)
    compiled, run = run_prepared(prepared)
    events = run_events(prepared, "real0001")
    assert len(compiled.trades) > 500
    assert {t.symbol for t in compiled.trades} == {"BTCUSDT", "ETHUSDT"}
    assert [t._asdict() for t in events.result.trades] == [t._asdict() for t in compiled.trades]
    np.testing.assert_array_equal(events.result.equity, compiled.equity)
    assert events.events == run.events


def test_one_minute_candles_decide_bars_where_stop_and_target_both_lie_inside() -> None:
    raw = real_ohlcv(FILIMONOV_BTC_1M)
    rows = slice(0, 40_000)
    minute = Candles.from_arrays(
        SeriesKey("BTCUSDT", Market.SPOT, "1m"), raw.times_ms[rows], raw.open[rows],
        raw.high[rows], raw.low[rows], raw.close[rows], raw.volume[rows],
    )  # fmt: skip
    base = resample(minute, "5m", complete_only=True)
    config = TradingConfig.model_validate(
        {"exits": {"stop_loss_pct": 0.15, "take_profit_pct": 0.2}, "costs": {"funding": False}}
    ).engine()
    signals = scored(builtin_strategy("ema_cross").signals(base, None), base, config.stops)
    rules = symbol_rules("BTCUSDT")
    start = int(base.open_time_ms[0])
    worst, _ = run_prepared(prepare([MarketData(base, start, rules)], [signals], config))
    fine_inputs = prepare([MarketData(base, start, rules, minute=minute)], [signals], config)
    fine, _ = run_prepared(fine_inputs)
    # Tight levels make many 5m bars touch both: worst case books each as a stop, 1m data
    # finds the target first in some of them, so fine resolution has more targets.
    targets = [sum(t.exit_reason == "take_profit" for t in r.trades) for r in (worst, fine)]
    assert targets[1] > targets[0]
    events = run_events(fine_inputs, "real0002")
    assert [t._asdict() for t in events.result.trades] == [t._asdict() for t in fine.trades]
    np.testing.assert_array_equal(events.result.equity, fine.equity)
