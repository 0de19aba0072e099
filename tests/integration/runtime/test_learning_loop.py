"""Learning while it trades, on SQLite and real PostgreSQL: a session's virtual positions are
stored as the reducer decides them, closed candle by candle exactly as the backtest closes
them, kept across a restart, and a due retrain hands its promoted model to the session."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from slt.adapters.db.connect import create_engine
from slt.adapters.db.models import ModelStore
from slt.adapters.db.tables import virtual_positions, virtual_trades
from slt.adapters.db.virtual_trades import VirtualTradeStore
from slt.domain.features.config import FeatureConfig
from slt.domain.features.matrix import FeatureMatrix, compute_features
from slt.domain.records import VirtualTrade
from slt.domain.results import MarketData
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.strategies.base import Signals
from slt.domain.strategies.ema_cross import EmaCross
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.config import EngineConfig
from slt.engine.messages import CandleClosed, OpenVirtualPosition
from slt.engine.pipeline import stop_distances
from slt.engine.reducer import Reducer
from slt.engine.virtual import candle_outcomes
from slt.engine.virtual_book import VirtualBook
from slt.learning.model import ModelParams
from slt.learning.retraining import RetrainPolicy
from slt.runtime.learning_loop import LearningLoop
from slt.runtime.retrainer import LearningStores, Retrainer
from slt.runtime.trading_config import TradingConfig
from tests.conftest import CATMAN_BTC_5M, real_ohlcv
from tests.integration.db.conftest import db_url as db_url
from tests.integration.db.conftest import on_database
from tests.integration.learning.markets import prepared

HOUR = 3_600_000
TICK = symbol_rules("BTCUSDT").tick_size
CONFIG = TradingConfig.model_validate(
    {
        "risk": {"sizing": "fixed", "risk_pct": 1.0, "leverage_min": 1, "leverage_max": 1},
        "costs": {"funding": False, "slippage_bps": 1.0, "slippage_range_fraction": 0.05},
        "exits": {
            "stop_loss_pct": 0.6,
            "take_profit_pct": 1.2,
            "partial_take_profit_pct": 0.5,
            "trailing_activation_pct": 0.5,
            "trailing_distance_pct": 0.25,
            "break_even_trigger_pct": 0.3,
            "max_holding_minutes": 240,
            "exit_on_opposite": False,
        },
    }
)
FIELDS = (
    "symbol", "direction", "entry_time_ms", "entry_price", "stop_loss_pct", "take_profit_pct",
    "exit_time_ms", "exit_price", "exit_reason", "return_pct", "reward", "won",
    "feature_schema_hash", "model_version",
)  # fmt: skip


class Session:
    """What a paper session does per closed candle, reduced to the learning part: the virtual
    book advances, then the reducer decides at the close (the model's gate shut) and every
    ``OpenVirtualPosition`` goes to the loop with the candle's feature row."""

    def __init__(
        self,
        candles: Candles,
        direction: np.ndarray,
        features: FeatureMatrix,
        config: EngineConfig,
    ) -> None:
        self.candles, self.direction, self.features = candles, direction, features
        self.stops = stop_distances(config.stops, candles)
        self.reducer = Reducer(config, [symbol_rules("BTCUSDT")])
        self.state = self.reducer.new_state("learn")
        self.opened = 0

    async def run(self, loop: LearningLoop, rows: range) -> list[VirtualTrade]:
        c, tf, trades = self.candles, self.candles.key.timeframe_ms, []
        for i in rows:
            t = int(c.open_time_ms[i])
            o, h, lo, cl = (float(x[i]) for x in (c.open, c.high, c.low, c.close))
            trades += await loop.candle("BTCUSDT", t, o, h, lo, cl)
            event = CandleClosed(
                "BTCUSDT", t, t + tf, o, h, lo, cl, int(self.direction[i]), 0.75,
                float(self.stops[i]), False,
            )  # fmt: skip
            self.state, commands = self.reducer.step(self.state, event)
            for command in commands:
                if isinstance(command, OpenVirtualPosition):
                    row = self.features.values[i]
                    self.opened += await loop.opened(command, row, self.features.schema.hash)
        return trades


def _book(config: EngineConfig) -> VirtualBook:
    return VirtualBook({"BTCUSDT": TICK}, 300_000, config.exits, config.costs)


def _fields(trades: Sequence[VirtualTrade]) -> list[tuple[Any, ...]]:
    ordered = sorted(trades, key=lambda t: t.entry_time_ms)
    return [(*(getattr(t, f) for f in FIELDS), t.features.tobytes()) for t in ordered]


async def _stored_trades(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    t = virtual_trades
    columns = [*(t.c[f] for f in FIELDS), t.c.features]
    async with engine.connect() as connection:
        rows = (await connection.execute(select(*columns).order_by(t.c.entry_time_ms))).all()
    return [(*(float(v) if f.endswith("price") else v for f, v in zip(FIELDS, r[:-1], strict=True)),
             r[-1]) for r in rows]  # fmt: skip


async def _statuses(engine: AsyncEngine) -> dict[str, int]:
    t = virtual_positions
    async with engine.connect() as connection:
        query = select(t.c.status, func.count()).group_by(t.c.status)
        return {status: int(n) for status, n in (await connection.execute(query)).all()}


def _restart_point(candles: Candles, direction: np.ndarray, batch: list[VirtualTrade]) -> int:
    """A candle after the middle that leaves both an entered position and a pending one (its
    signal came at the last close before the restart) for the next process to take over."""
    tf = candles.key.timeframe_ms
    for s in np.flatnonzero(direction[len(candles) // 2 :]) + len(candles) // 2:
        close_ms = int(candles.open_time_ms[s]) + tf
        if any(t.entry_time_ms < close_ms < t.exit_time_ms for t in batch):
            return int(s) + 1
    raise AssertionError("no signal while a position is open after the middle")


def test_a_restarted_session_keeps_its_open_virtual_positions_and_closes_them_as_the_batch(
    db_url: URL,
) -> None:
    raw = real_ohlcv(CATMAN_BTC_5M)
    rows = slice(20_000, 22_400)
    candles = Candles.from_arrays(
        SeriesKey("BTCUSDT", Market.FUTURES, "5m"), raw.times_ms[rows], raw.open[rows],
        raw.high[rows], raw.low[rows], raw.close[rows], raw.volume[rows],
    )  # fmt: skip
    features = compute_features(candles, FeatureConfig.for_timeframe("5m"))
    direction = EmaCross().signals(candles, None).direction
    config = CONFIG.engine()
    batch = candle_outcomes(candles, direction, config, TICK).records(
        "BTCUSDT", features.values, features.schema.hash, "none"
    )
    half = _restart_point(candles, direction, batch)
    session = Session(candles, direction, features, config)

    async def body(engine: AsyncEngine) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        first = LearningLoop(engine, _book(config), features.schema, run_id="before")
        seen["restored_at_start"] = await first.restore()
        trades = await session.run(first, range(half))
        seen["open_at_restart"] = len(first.book)
        # A new process: its own engine, book and loop over the same database.
        other = create_engine(engine.url)
        try:
            second = LearningLoop(other, _book(config), features.schema, run_id="after")
            session.state = session.reducer.new_state("learn-again")
            seen["restored"] = await second.restore()
            seen["replayed"] = await session.run(second, range(half - 3, half))  # warm-up
            trades += await session.run(second, range(half, len(candles)))
            seen["open_at_end"] = len(second.book)
        finally:
            await other.dispose()
        seen["trades"] = trades
        seen["stored"] = await _stored_trades(engine)
        seen["statuses"] = await _statuses(engine)
        return seen

    with capture_logs() as logs:
        seen = on_database(db_url, body)
    assert seen["restored_at_start"] == 0
    assert seen["restored"] == seen["open_at_restart"] >= 2
    assert seen["replayed"] == []
    assert session.opened > 60
    assert len(batch) == len(seen["trades"]) > 60
    assert _fields(seen["trades"]) == _fields(batch)
    assert seen["stored"] == _fields(batch)
    expected = {"closed": len(batch), "open": seen["open_at_end"]}
    assert seen["statuses"] == {k: n for k, n in expected.items() if n}
    assert {t.exit_reason for t in batch} >= {"stop_loss", "trailing_stop", "time_stop"}
    business = [e["event"] for e in logs if e.get("business")]
    assert sum(e.startswith("Virtual position opened: BTCUSDT") for e in business) == (
        session.opened
    )
    closed = [e for e in business if e.startswith("Virtual position closed: BTCUSDT")]
    assert len(closed) == len(batch) and all(", return " in e for e in closed)


Prepared = tuple[MarketData, FeatureMatrix, Signals]


@pytest.fixture(scope="module")
def edge_market() -> Prepared:
    return prepared(0.0005, 51)


def test_closed_virtual_trades_start_a_retrain_and_a_promoted_model_reaches_the_session(
    db_url: URL, edge_market: Prepared
) -> None:
    """A market with an edge the features see: history is stored, the session closes more
    trades; each retrain the policy starts is judged, and ``on_model`` hears exactly the
    promoted versions, once each."""
    data, features, signals = edge_market
    candles, config = data.candles, TradingConfig().engine()
    tail = len(candles) - 400
    history = candle_outcomes(
        candles.take(slice(0, tail)), signals.direction[:tail], config, data.rules.tick_size
    ).records("BTCUSDT", features.values[:tail], features.schema.hash, "none")
    session = Session(candles, signals.direction, features, config)
    clock = [int(candles.open_time_ms[tail])]
    heard: list[str] = []

    async def on_model(version: str) -> None:
        heard.append(version)

    async def body(engine: AsyncEngine) -> dict[str, Any]:
        await VirtualTradeStore(engine).add_many(history)
        retrainer = Retrainer(
            LearningStores.on(engine), features.schema, 24 * HOUR, lambda: clock[0],
            policy=RetrainPolicy(min_new_trades=25, min_interval_ms=0),
            params=ModelParams(n_estimators=40, threads=1),
        )  # fmt: skip
        book = VirtualBook({"BTCUSDT": data.rules.tick_size}, 300_000, config.exits, config.costs)
        loop = LearningLoop(engine, book, features.schema, retrainer=retrainer, on_model=on_model)
        await loop.restore()
        for i in range(tail, len(candles)):
            clock[0] = int(candles.open_time_ms[i]) + 300_000
            await session.run(loop, range(i, i + 1))
            await asyncio.sleep(0)
        await loop.wait()
        return {"models": await ModelStore(engine).list(), "closed": loop.closed,
                "last": retrainer.last}  # fmt: skip

    with capture_logs() as logs:
        seen = on_database(db_url, body)
    models = seen["models"]
    assert seen["closed"] >= 25 and len(models) >= 1
    promoted = [m.version for m in models if m.status in ("champion", "retired")]
    assert heard == promoted  # in the order they were promoted, each once
    # The first retrain meets no champion, so the rule promotes it if it trains at all.
    assert models[0].status in ("champion", "retired") and heard[0] == models[0].version
    last = seen["last"]
    assert last is not None and (last.version in heard) == last.result.verdict.promote
    business = [e["event"] for e in logs if e.get("business")]
    assert any(e.startswith("Model learning count: ") for e in business)
    assert any(e.startswith("Model cumulative score: ") for e in business)


def test_without_a_retrainer_trades_are_stored_and_nothing_is_trained(
    db_url: URL, edge_market: Prepared
) -> None:
    data, features, signals = edge_market
    candles, config = data.candles, TradingConfig().engine()
    session = Session(candles, signals.direction, features, config)

    async def body(engine: AsyncEngine) -> tuple[int, int, int]:
        loop = LearningLoop(engine, _book(config), features.schema, on_model=pytest.fail)
        await session.run(loop, range(len(candles) - 300, len(candles)))
        await loop.wait()
        stored = await VirtualTradeStore(engine).count()
        return loop.closed, stored, len(await ModelStore(engine).list())

    closed, stored, models = on_database(db_url, body)
    assert closed == stored > 10 and models == 0
