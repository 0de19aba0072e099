"""The virtual-trade repository on SQLite and real PostgreSQL: round trips, refusals, order."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
from sqlalchemy.engine import URL

from slt.adapters.db import migrate
from slt.adapters.db.connect import create_engine
from slt.adapters.db.virtual_trades import TrainingBatch, VirtualTradeStore
from slt.domain.records import RecordError, VirtualTrade

T0 = 1_704_067_200_000


def trade(k: int, **changes: object) -> VirtualTrade:
    features = np.array([0.1 * k, np.nan, -3.25, 1e-300], dtype=np.float64)
    base = VirtualTrade(
        symbol="BTCUSDT",
        direction=1 if k % 2 else -1,
        entry_time_ms=T0 + k * 300_000,
        entry_price=42_000.1 + k,
        stop_loss_pct=1.5,
        take_profit_pct=3.0,
        exit_time_ms=T0 + k * 300_000 + 3_600_000,
        exit_price=42_100.123456789 + k,
        exit_reason="take_profit",
        return_pct=0.25 * k,
        reward=0.1 * k,
        won=k % 3 == 0,
        features=features,
        feature_schema_hash="a" * 64,
        model_version="none",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _run(url: URL, action: str, trades: list[VirtualTrade] | None = None, limit: int = 0) -> object:
    async def go() -> object:
        await migrate.upgrade(url)
        engine = create_engine(url)
        try:
            store = VirtualTradeStore(engine)
            if action == "add":
                return await store.add_many(trades or [])
            if action == "count":
                return await store.count()
            return await store.newest(limit)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_virtual_trades_round_trip_with_their_features_newest_first(db_url: URL) -> None:
    written = [trade(k) for k in range(1, 21)]
    assert _run(db_url, "add", written) == 20
    batch = _run(db_url, "newest", limit=5)
    assert isinstance(batch, TrainingBatch)
    assert len(batch) == 5
    assert list(batch.exit_time_ms) == [t.exit_time_ms for t in written[::-1][:5]]
    newest = written[-1]
    np.testing.assert_array_equal(batch.features[0], newest.features)  # NaN kept, bits exact
    assert batch.return_pct[0] == newest.return_pct and bool(batch.won[0]) == newest.won
    assert batch.direction[0] == newest.direction and batch.symbol[0] == "BTCUSDT"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"entry_price": float("nan")}, "entry_price must be a finite number"),
        ({"return_pct": float("inf")}, "return_pct must be a finite number"),
        ({"exit_price": -1.0}, "exit_price must be above 0"),
        ({"symbol": "BTC/USDT"}, "unknown symbol 'BTC/USDT'"),
        ({"symbol": "NOT A SYMBOL"}, "unknown symbol"),
        ({"model_version": "v" * 65}, "model_version is 65 characters long"),
        ({"exit_reason": "vibes"}, "unknown exit_reason"),
        ({"features": np.array([1.0, np.inf, 0.0, 0.0])}, "features hold an infinite value"),
        ({"features": np.array([1.0, 2.0])}, "features of one batch must have one width"),
        ({"entry_time_ms": 1.5}, "entry_time_ms must be a non-negative integer"),
    ],
)
def test_bad_records_are_refused_and_nothing_of_the_batch_is_written(
    db_url: URL, changes: dict[str, object], message: str
) -> None:
    batch = [trade(1), trade(2, **changes), trade(3)]
    with pytest.raises(RecordError, match=message):
        _run(db_url, "add", batch)
    assert _run(db_url, "count") == 0
