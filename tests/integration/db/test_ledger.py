"""The trading ledger on SQLite and real PostgreSQL: round trips, idempotence, refusals."""

from __future__ import annotations

import dataclasses
import math

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.db.conftest import on_database

from slt.adapters.db.ledger import TradingLedger
from slt.domain.records import RecordError
from slt.domain.trading_records import (
    AccountSnapshot,
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    PositionRecord,
)

T0 = 1_704_067_200_000
ENTRY = OrderRecord(
    order_id="paper-1", mode="paper", symbol="BTCUSDT", kind="market", purpose="entry",
    side=1, quantity=0.012, price=None, reduce_only=False, status="new",
    created_ms=T0, updated_ms=T0,
)  # fmt: skip
STOP = dataclasses.replace(
    ENTRY, order_id="paper-2", kind="stop_market", purpose="stop", side=-1, price=41_580.1,
    reduce_only=True, status="open",
)  # fmt: skip
FILL = FillRecord("t-1", "paper-1", T0 + 300_000, 42_000.1, 0.012, 0.252006)
POSITION = PositionRecord(
    position_key="paper-pos-1", mode="paper", symbol="BTCUSDT", side=1, quantity=0.012,
    entry_price=42_000.1, leverage=5.0, margin=100.8, opened_ms=T0 + 300_000, status="open",
)  # fmt: skip


def test_orders_fills_and_positions_round_trip_with_exact_values(db_url: URL) -> None:
    async def body(engine: AsyncEngine) -> None:
        ledger = TradingLedger(engine)
        filled = dataclasses.replace(ENTRY, status="filled", updated_ms=T0 + 300_000)
        await ledger.record(orders_=[ENTRY, STOP], fills_=[], positions_=[])
        await ledger.record(orders_=[filled], fills_=[FILL], positions_=[POSITION])

        assert await ledger.open_orders("paper") == [STOP]
        assert await ledger.fills_of("paper-1") == [FILL]
        assert await ledger.positions("paper", "open") == [POSITION]
        assert await ledger.open_orders("live") == []

    on_database(db_url, body)


def test_a_fill_written_twice_is_stored_once(db_url: URL) -> None:
    """A commit retried after its acknowledgement was lost must not double the fill."""

    async def body(engine: AsyncEngine) -> list[FillRecord]:
        ledger = TradingLedger(engine)
        await ledger.record(orders_=[ENTRY], fills_=[FILL])
        await ledger.record(orders_=[ENTRY], fills_=[FILL])
        return await ledger.fills_of("paper-1")

    assert on_database(db_url, body) == [FILL]


def test_closing_a_position_updates_the_same_row(db_url: URL) -> None:
    closed = dataclasses.replace(
        POSITION, status="closed", quantity=0.0, closed_ms=T0 + 3_600_000,
        realized_pnl=-6.3, fees=0.504, funding=0.01, exit_reason="stop_loss",
    )  # fmt: skip

    async def body(engine: AsyncEngine) -> tuple[list[PositionRecord], list[PositionRecord]]:
        ledger = TradingLedger(engine)
        await ledger.record(positions_=[POSITION])
        await ledger.record(positions_=[closed])
        return await ledger.positions("paper"), await ledger.positions("paper", "open")

    every, still_open = on_database(db_url, body)
    assert every == [closed]
    assert still_open == []


def test_equity_and_account_snapshots_round_trip_and_the_latest_account_is_found(
    db_url: URL,
) -> None:
    curve = [EquitySnapshot("paper", T0 + k * 300_000, 10_000 + k, 10_000.0, k) for k in range(5)]
    accounts = [AccountSnapshot("live", T0 + k, 5_000.0 + k, 4_900.5, 99.5) for k in range(3)]

    async def body(engine: AsyncEngine) -> object:
        ledger = TradingLedger(engine)
        await ledger.record_equity(curve, accounts)
        await ledger.record_equity(curve[:2], accounts[:1])  # a retried write changes nothing
        return (
            await ledger.equity_curve("paper", T0 + 300_000, T0 + 4 * 300_000),
            await ledger.latest_account("live"),
            await ledger.latest_account("paper"),
        )

    window, latest, none = on_database(db_url, body)  # type: ignore[misc]
    assert [s.equity for s in window] == [10_001.0, 10_002.0, 10_003.0]
    assert latest == accounts[-1]
    assert none is None


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (dataclasses.replace(ENTRY, quantity=math.nan), "quantity must be a finite number"),
        (dataclasses.replace(ENTRY, quantity=-1.0), "quantity must be above 0"),
        (dataclasses.replace(ENTRY, symbol="BTC/USDT"), "unknown symbol 'BTC/USDT'"),
        (dataclasses.replace(ENTRY, order_id="x" * 65), "65 characters long, the limit is 64"),
        (dataclasses.replace(STOP, price=None), "a stop_market order needs a price"),
        (dataclasses.replace(ENTRY, mode="demo"), "mode must be one of"),
        (dataclasses.replace(FILL, price=math.inf), "price must be a finite number"),
        (dataclasses.replace(POSITION, status="closed"), "a closed position needs closed_ms"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_written(
    db_url: URL, record: object, message: str
) -> None:
    async def body(engine: AsyncEngine) -> tuple[str, list[OrderRecord]]:
        ledger = TradingLedger(engine)
        batch: dict[str, list[object]] = {"orders_": [ENTRY], "fills_": [], "positions_": []}
        key = {OrderRecord: "orders_", FillRecord: "fills_", PositionRecord: "positions_"}
        batch[key[type(record)]].append(record)
        with pytest.raises(RecordError) as caught:
            await ledger.record(**batch)  # type: ignore[arg-type]
        return str(caught.value), await ledger.open_orders("paper")

    error, stored = on_database(db_url, body)
    assert message in error
    assert stored == []
