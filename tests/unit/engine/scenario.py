"""Hand-built markets for the engine's hand-computed scenarios."""

from __future__ import annotations

import numpy as np

from slt.domain.series import Candles, FundingRates, Kind, Market, SeriesKey
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.backtest import MarketData, run_backtest
from slt.engine.results import BacktestResult
from slt.engine.trading_config import TradingConfig

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
FIVE_MIN = 300_000
HOUR = 3_600_000
MMR = 0.004

# One bracket so liquidation prices are easy by hand: LP = EP(1 - 1/L)/(1 - MMR) for a long,
# EP(1 + 1/L)/(1 + MMR) for a short.
RULES = SymbolRules(
    symbol="TESTUSDT",
    tick_size=0.01,
    step_size=0.001,
    min_notional=5.0,
    max_leverage=125.0,
    brackets=np.array([[0.0, 1e12, 125.0, MMR, 0.0]]),
)


def candles(rows: list[tuple[float, float, float, float]], step_ms: int = FIVE_MIN) -> Candles:
    """(open, high, low, close) rows from 2024-01-01 00:00 UTC."""
    arr = np.array(rows, dtype=np.float64)
    key = SeriesKey("TESTUSDT", Market.FUTURES, "5m" if step_ms == FIVE_MIN else "1h")
    return Candles.from_arrays(
        key,
        T0 + step_ms * np.arange(len(rows), dtype=np.int64),
        arr[:, 0],
        arr[:, 1],
        arr[:, 2],
        arr[:, 3],
        np.ones(len(rows)),
    )


def config(**sections: dict[str, object]) -> TradingConfig:
    """No slippage, fixed 1% risk, 1x, 10% margin cap: notional 1,000 on 10,000 equity."""
    base: dict[str, dict[str, object]] = {
        "risk": {"sizing": "fixed", "risk_pct": 1.0, "leverage_min": 1, "leverage_max": 1},
        "exits": {"stop_loss_pct": 1.0, "take_profit_pct": 2.0},
        "costs": {"slippage_bps": 0.0, "funding": False},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return TradingConfig.model_validate(base)


def run(
    bars: Candles,
    signals: dict[int, int],
    cfg: TradingConfig,
    funding: FundingRates | None = None,
    score: float = 0.5,
) -> BacktestResult:
    direction = np.zeros(len(bars), dtype=np.int8)
    for i, d in signals.items():
        direction[i] = d
    scores = np.where(direction != 0, score, 0.0)
    data = MarketData(
        candles=bars, start_ms=int(bars.open_time_ms[0]), rules=RULES, funding=funding
    )
    result, _ = run_backtest(data, direction, scores, cfg)
    return result


def funding_rates(times_ms: list[int], rates: list[float]) -> FundingRates:
    key = SeriesKey("TESTUSDT", Market.FUTURES, "8h", Kind.FUNDING)
    return FundingRates.from_arrays(key, np.array(times_ms, dtype=np.int64), np.array(rates))
