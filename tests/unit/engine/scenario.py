"""Hand-built markets for the engine's scenarios, run through both drivers.

``run`` simulates with the compiled driver and with the event wiring (the reducer, event by
event, as paper and live trading run it) and fails unless both give the same trades and the
same equity, so every scenario checks the two drivers too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slt.domain.results import BacktestResult, MarketData
from slt.domain.series import Candles, FundingRates, Kind, Market, SeriesKey
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.backtest import ModelChange, Prepared, prepare, run_prepared
from slt.engine.config import EngineConfig
from slt.engine.event_driver import EventRun, Observer, run_events
from slt.engine.pipeline import ScoredSignals, confidence_from_score, stop_distances
from slt.engine.venue import Faults
from slt.runtime.trading_config import TradingConfig

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
FIVE_MIN = 300_000
HOUR = 3_600_000
MMR = 0.004
RUN_ID = "test0001"

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


def rules_for(symbol: str) -> SymbolRules:
    return SymbolRules(symbol, RULES.tick_size, RULES.step_size, RULES.min_notional,
                       RULES.max_leverage, RULES.brackets)  # fmt: skip


def candles(
    rows: Sequence[tuple[float, float, float, float]],
    step_ms: int = FIVE_MIN,
    symbol: str = "TESTUSDT",
    times_ms: Sequence[int] | None = None,
) -> Candles:
    """(open, high, low, close) rows from 2024-01-01 00:00 UTC (or at ``times_ms``)."""
    arr = np.array(rows, dtype=np.float64)
    key = SeriesKey(symbol, Market.FUTURES, "5m" if step_ms == FIVE_MIN else "1h")
    times = (
        np.asarray(times_ms, dtype=np.int64)
        if times_ms is not None
        else T0 + step_ms * np.arange(len(rows), dtype=np.int64)
    )
    return Candles.from_arrays(
        key, times, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], np.ones(len(rows))
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


def signals_for(
    bars: Candles,
    signals: dict[int, int],
    cfg: EngineConfig,
    score: float = 0.5,
    gate: Sequence[bool] | None = None,
) -> ScoredSignals:
    direction = np.zeros(len(bars), dtype=np.int8)
    for i, d in signals.items():
        direction[i] = d
    scores = np.where(direction != 0, score, 0.0)
    return ScoredSignals(
        direction=direction,
        score=scores,
        stop_pct=stop_distances(cfg.stops, bars),
        confidence=confidence_from_score(scores),
        gate=np.ones(len(bars), dtype=np.bool_) if gate is None else np.asarray(gate),
        p_win=np.full(len(bars), np.nan),
    )


def both(
    datas: Sequence[MarketData],
    signals: Sequence[ScoredSignals],
    cfg: EngineConfig,
    *,
    faults: Faults | None = None,
    model_changes: Sequence[ModelChange] = (),
    model_versions: tuple[str, ...] = (),
    follow_virtual: bool = False,
    observe: Observer | None = None,
    futures: bool = True,
) -> tuple[BacktestResult, EventRun, Prepared]:
    """The compiled result and the event run of the same inputs, after checking they agree
    trade for trade and in equity, bit for bit."""
    prepared = prepare(
        datas, signals, cfg, faults=faults, model_changes=model_changes,
        follow_virtual=follow_virtual, futures=futures,
    )  # fmt: skip
    compiled, run = run_prepared(prepared)
    events = run_events(prepared, RUN_ID, model_versions=model_versions, observe=observe)
    assert [t._asdict() for t in events.result.trades] == [t._asdict() for t in compiled.trades]
    np.testing.assert_array_equal(events.result.equity, compiled.equity)
    assert events.events == run.events
    if follow_virtual:
        np.testing.assert_array_equal(
            np.sort(events.exchange.outcomes(), order="serial"),
            np.sort(run.outcomes, order="serial"),
        )
    return compiled, events, prepared


def run(
    bars: Candles,
    signals: dict[int, int],
    cfg: TradingConfig,
    funding: FundingRates | None = None,
    score: float = 0.5,
) -> BacktestResult:
    """One symbol through both drivers; the compiled result."""
    engine = cfg.engine()
    data = MarketData(
        candles=bars, start_ms=int(bars.open_time_ms[0]), rules=rules_for(bars.key.symbol),
        funding=funding,
    )  # fmt: skip
    result, _events, _prepared = both([data], [signals_for(bars, signals, engine, score)], engine)
    return result


def funding_rates(times_ms: list[int], rates: list[float]) -> FundingRates:
    key = SeriesKey("TESTUSDT", Market.FUTURES, "8h", Kind.FUNDING)
    return FundingRates.from_arrays(key, np.array(times_ms, dtype=np.int64), np.array(rates))
