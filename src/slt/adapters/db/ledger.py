"""The trading ledger of paper and live runs: orders, fills, positions, equity, account.

``write_*`` functions add their records to an open transaction (the record writer groups
several kinds in one commit); ``TradingLedger`` reads them back for start-up reconciliation,
the API and reports. Every write is idempotent, so a retried commit never doubles a fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from slt.adapters.db.rows import (
    R,
    insert_ignoring_duplicates,
    read_records,
    record_columns,
    rows_of,
    upsert,
)
from slt.adapters.db.tables import account_state, equity_snapshots, fills, orders, positions
from slt.domain.trading_records import (
    AccountSnapshot,
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    PositionRecord,
    check_account_snapshot,
    check_equity_snapshot,
    check_fill,
    check_order,
    check_position,
)

OPEN_ORDER_STATUSES = ("new", "open", "partially_filled")
_ORDER_MONEY = ("quantity", "price")
_ORDER_RENAMED = {"order_id": "id"}
_FILL_MONEY = ("price", "quantity", "fee")
_EQUITY_MONEY = ("equity", "cash", "unrealized_pnl")
_ACCOUNT_MONEY = ("equity", "balance", "margin")
_POSITION_MONEY = (
    "quantity", "entry_price", "leverage", "margin", "realized_pnl", "fees", "funding",
)  # fmt: skip


_ORDER_COLUMNS = record_columns(orders, OrderRecord, _ORDER_MONEY, _ORDER_RENAMED)
_FILL_COLUMNS = record_columns(fills, FillRecord, _FILL_MONEY)
_POSITION_COLUMNS = record_columns(positions, PositionRecord, _POSITION_MONEY)
_EQUITY_COLUMNS = record_columns(equity_snapshots, EquitySnapshot, _EQUITY_MONEY)
_ACCOUNT_COLUMNS = record_columns(account_state, AccountSnapshot, _ACCOUNT_MONEY)


async def write_orders(connection: AsyncConnection, records: Sequence[OrderRecord]) -> None:
    rows = rows_of(connection, records, _ORDER_MONEY, _ORDER_RENAMED)
    await upsert(connection, orders, rows, ["id"])


async def write_fills(connection: AsyncConnection, records: Sequence[FillRecord]) -> None:
    """Each fill's row takes its order's mode and run id (the order is written first, in the
    same transaction or before); a fill of an unknown order is refused."""
    rows = rows_of(connection, records, _FILL_MONEY)
    if not rows:
        return
    ids = sorted({row["order_id"] for row in rows})
    query = select(orders.c.id, orders.c.mode, orders.c.run_id).where(orders.c.id.in_(ids))
    owners = {r.id: (r.mode, r.run_id) for r in await connection.execute(query)}
    for row in rows:
        # An unknown order: '' keeps the row to the foreign key's refusal, which names it.
        row["mode"], row["run_id"] = owners.get(row["order_id"], ("", ""))
    await insert_ignoring_duplicates(connection, fills, rows, ["order_id", "fill_id"])


async def write_positions(connection: AsyncConnection, records: Sequence[PositionRecord]) -> None:
    rows = rows_of(connection, records, _POSITION_MONEY)
    await upsert(connection, positions, rows, ["mode", "run_id", "position_key"])


async def write_equity_snapshots(
    connection: AsyncConnection, records: Sequence[EquitySnapshot]
) -> None:
    rows = rows_of(connection, records, _EQUITY_MONEY)
    await upsert(connection, equity_snapshots, rows, ["mode", "run_id", "time_ms"])


async def write_account_snapshots(
    connection: AsyncConnection, records: Sequence[AccountSnapshot]
) -> None:
    rows = rows_of(connection, records, _ACCOUNT_MONEY)
    await upsert(connection, account_state, rows, ["mode", "time_ms"])


class TradingLedger:
    """Direct (unbatched) writes and the reads; the engine's hot path goes through
    ``RecordWriter`` instead."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(
        self,
        *,
        orders_: Sequence[OrderRecord] = (),
        fills_: Sequence[FillRecord] = (),
        positions_: Sequence[PositionRecord] = (),
    ) -> None:
        """Write in one transaction, orders first (a fill refers to its order)."""
        for order in orders_:
            check_order(order)
        for fill in fills_:
            check_fill(fill)
        for position in positions_:
            check_position(position)
        async with self.engine.begin() as connection:
            await write_orders(connection, orders_)
            await write_fills(connection, fills_)
            await write_positions(connection, positions_)

    async def record_equity(
        self,
        snapshots: Sequence[EquitySnapshot] = (),
        accounts: Sequence[AccountSnapshot] = (),
    ) -> None:
        for snapshot in snapshots:
            check_equity_snapshot(snapshot)
        for account in accounts:
            check_account_snapshot(account)
        async with self.engine.begin() as connection:
            await write_equity_snapshots(connection, snapshots)
            await write_account_snapshots(connection, accounts)

    async def open_orders(
        self, mode: str, symbol: str | None = None, *, run_id: str | None = None
    ) -> list[OrderRecord]:
        """Orders still working, oldest first: what start-up reconciles with the exchange."""
        query = (
            select(*_ORDER_COLUMNS)
            .where(orders.c.mode == mode, orders.c.status.in_(OPEN_ORDER_STATUSES))
            .order_by(orders.c.created_ms, orders.c.id)
        )
        if symbol is not None:
            query = query.where(orders.c.symbol == symbol)
        if run_id is not None:
            query = query.where(orders.c.run_id == run_id)
        return await self._read(query, OrderRecord)

    async def fills_of(self, order_id: str) -> list[FillRecord]:
        query = (
            select(*_FILL_COLUMNS)
            .where(fills.c.order_id == order_id)
            .order_by(fills.c.time_ms, fills.c.id)
        )
        return await self._read(query, FillRecord)

    async def positions(
        self, mode: str, status: str | None = None, *, run_id: str | None = None
    ) -> list[PositionRecord]:
        query = (
            select(*_POSITION_COLUMNS)
            .where(positions.c.mode == mode)
            .order_by(positions.c.opened_ms, positions.c.id)
        )
        if status is not None:
            query = query.where(positions.c.status == status)
        if run_id is not None:
            query = query.where(positions.c.run_id == run_id)
        return await self._read(query, PositionRecord)

    async def equity_curve(
        self, mode: str, start_ms: int = 0, end_ms: int | None = None
    ) -> list[EquitySnapshot]:
        query = (
            select(*_EQUITY_COLUMNS)
            .where(equity_snapshots.c.mode == mode, equity_snapshots.c.time_ms >= start_ms)
            .order_by(equity_snapshots.c.time_ms)
        )
        if end_ms is not None:
            query = query.where(equity_snapshots.c.time_ms < end_ms)
        return await self._read(query, EquitySnapshot)

    async def latest_account(self, mode: str) -> AccountSnapshot | None:
        query = (
            select(*_ACCOUNT_COLUMNS)
            .where(account_state.c.mode == mode)
            .order_by(account_state.c.time_ms.desc())
            .limit(1)
        )
        found = await self._read(query, AccountSnapshot)
        return found[0] if found else None

    async def _read(self, query: Any, record_type: type[R]) -> list[R]:
        async with self.engine.connect() as connection:
            return await read_records(connection, query, record_type)
