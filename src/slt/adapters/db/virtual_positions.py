"""Open virtual positions of a paper or live session, kept so that a restart follows them on.

A position is written when its signal is decided (``open_virtual_position``); after each
candle, the positions it closed become virtual trades in the same transaction that marks them
closed and moves the others' state on (``close_virtual_positions``): when that returns, all
of it is committed, and a retried call writes nothing twice. ``load_open_virtual_positions``
reads back what is still open.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from slt.adapters.db.rows import as_float, feature_blob, money_for, rows_of
from slt.adapters.db.tables import virtual_positions, virtual_trades
from slt.domain.records import (
    RecordError,
    VirtualTrade,
    check_text,
    check_virtual_trades,
)
from slt.domain.virtual_position import (
    ExitState,
    VirtualPositionState,
    check_virtual_position,
)

OPEN, CLOSED, EXPIRED = "open", "closed", "expired"
RUN_ID_LENGTH = 32


class StoredVirtualPosition(NamedTuple):
    """An open virtual position and the id of its row."""

    id: int
    position: VirtualPositionState


async def open_virtual_position(
    engine: AsyncEngine,
    position: VirtualPositionState,
    *,
    max_holding_ms: int,
    run_id: str = "",
) -> int:
    """Store a position just decided (committed on return); its row id. A position already
    stored open under the same symbol and entry time (a retried write) is not written again."""
    _check(position, run_id)
    t = virtual_positions
    async with engine.begin() as connection:
        found = await connection.execute(
            select(t.c.id).where(
                and_(
                    t.c.symbol == position.symbol,
                    t.c.entry_time_ms == position.entry_time_ms,
                    t.c.status == OPEN,
                )
            )
        )
        known = found.scalar()
        if known is not None:
            return int(known)
        row = {
            "symbol": position.symbol,
            "direction": position.direction,
            "entry_time_ms": position.entry_time_ms,
            "stop_loss_pct": float(position.stop_loss_pct),
            "take_profit_pct": float(position.take_profit_pct),
            "max_holding_ms": int(max_holding_ms),
            "features": feature_blob(position.features),
            "feature_schema_hash": position.feature_schema_hash,
            "status": OPEN,
            "model_version": position.model_version,
            "signal_time_ms": position.signal_time_ms,
            "confidence": float(position.confidence),
            "run_id": run_id,
            **_moving(connection, position),
        }
        result = await connection.execute(t.insert().returning(t.c.id), [row])
        return int(result.scalar_one())


async def close_virtual_positions(
    engine: AsyncEngine,
    closed: Sequence[tuple[int, VirtualTrade]],
    *,
    still_open: Sequence[StoredVirtualPosition] = (),
    expired: Sequence[int] = (),
) -> int:
    """In one transaction: each closed position (by row id) marked closed with its virtual
    trade written (linked to it), the still-open ones' state moved on, the expired ones (never
    entered) marked so. Returns the trades written: none for a position already closed (a
    retried call). A bad record raises RecordError and nothing is written."""
    check_virtual_trades([trade for _, trade in closed])
    for stored in still_open:
        _check(stored.position, "")
    t = virtual_positions
    written = 0
    async with engine.begin() as connection:
        for row_id, trade in closed:
            if await _leave_open(connection, row_id, {"status": CLOSED}):
                row = rows_of(connection, [trade], money=("entry_price", "exit_price"))[0]
                await connection.execute(virtual_trades.insert(), [{**row, "position_id": row_id}])
                written += 1
        for row_id in expired:
            await _leave_open(connection, row_id, {"status": EXPIRED})
        for stored in still_open:
            await connection.execute(
                update(t)
                .where(and_(t.c.id == stored.id, t.c.status == OPEN))
                .values(**_moving(connection, stored.position))
            )
    return written


async def load_open_virtual_positions(
    engine: AsyncEngine, symbols: Collection[str] | None = None
) -> list[StoredVirtualPosition]:
    """The positions still open (of ``symbols``, or all), in the order they were decided."""
    t = virtual_positions
    columns = [
        t.c.id, t.c.symbol, t.c.direction, t.c.signal_time_ms, t.c.entry_time_ms,
        t.c.stop_loss_pct, t.c.take_profit_pct, t.c.confidence, t.c.model_version,
        t.c.features, t.c.feature_schema_hash, t.c.seen_close_ms, t.c.exit_state,
        *as_float(t, ["entry_price"]),
    ]  # fmt: skip
    query = select(*columns).where(t.c.status == OPEN).order_by(t.c.entry_time_ms, t.c.id)
    if symbols is not None:
        query = query.where(t.c.symbol.in_(list(symbols)))
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [StoredVirtualPosition(int(r["id"]), _position(r)) for r in rows]


async def _leave_open(connection: AsyncConnection, row_id: int, values: dict[str, str]) -> bool:
    """Move an open row to another status; False if it was not open (already done)."""
    t = virtual_positions
    result = await connection.execute(
        update(t).where(and_(t.c.id == row_id, t.c.status == OPEN)).values(**values)
    )
    return bool(result.rowcount)


def _moving(connection: AsyncConnection, p: VirtualPositionState) -> dict[str, Any]:
    """The columns that change while a position is open."""
    money = money_for(connection)
    return {
        "entry_price": None if p.entry_price is None else money(p.entry_price),
        "exit_state": None if p.exit_state is None else _json_state(p.exit_state),
        "seen_close_ms": p.seen_close_ms,
    }


def _json_state(state: ExitState) -> dict[str, int | float | None]:
    """NaN (no target, no partial exit) as JSON null: PostgreSQL's JSON has no NaN."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in state.items()}


def _position(r: Any) -> VirtualPositionState:
    if r["signal_time_ms"] is None or r["seen_close_ms"] is None or r["confidence"] is None:
        raise RecordError(
            f"virtual position {r['id']} was stored open without the state a session keeps "
            "(written before revision 0005?): mark it expired to go on"
        )
    state = r["exit_state"]
    return VirtualPositionState(
        symbol=r["symbol"],
        direction=int(r["direction"]),
        signal_time_ms=int(r["signal_time_ms"]),
        entry_time_ms=int(r["entry_time_ms"]),
        stop_loss_pct=float(r["stop_loss_pct"]),
        take_profit_pct=float(r["take_profit_pct"]),
        confidence=float(r["confidence"]),
        model_version=r["model_version"],
        features=np.frombuffer(r["features"], dtype="<f8").astype(np.float64),
        feature_schema_hash=r["feature_schema_hash"],
        seen_close_ms=int(r["seen_close_ms"]),
        entry_price=None if r["entry_price"] is None else float(r["entry_price"]),
        exit_state=None
        if state is None
        else {k: math.nan if v is None else v for k, v in state.items()},
    )


def _check(position: VirtualPositionState, run_id: str) -> None:
    try:
        check_virtual_position(position)
        if run_id:
            check_text("run_id", run_id, RUN_ID_LENGTH)
    except RecordError as exc:
        raise RecordError(
            f"virtual position {position.symbol} entering at {position.entry_time_ms}: {exc}"
        ) from None
