"""Open virtual positions on SQLite and real PostgreSQL: stored when decided, read back
exactly (the exit kernels' state included), closed with their virtual trade in one
transaction, never written twice by a retry, and revision 0005 steps forward and back."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.db.conftest import db_url as db_url
from tests.integration.db.conftest import on_database

from slt.adapters.db import migrate
from slt.adapters.db.connect import create_engine
from slt.adapters.db.tables import virtual_positions, virtual_trades
from slt.adapters.db.virtual_positions import (
    StoredVirtualPosition,
    close_virtual_positions,
    load_open_virtual_positions,
    open_virtual_position,
)
from slt.domain.records import RecordError, VirtualTrade
from slt.domain.trading.params import CostParams, ExitParams
from slt.domain.virtual_position import VirtualPositionState
from slt.engine.messages import OpenVirtualPosition
from slt.engine.virtual_book import VirtualBook

T0 = 1_704_067_200_000
TF = 300_000
# No target (NaN in the kernels' state, null in JSON), a partial exit and a trailing stop.
EXITS = ExitParams(
    stop_loss_pct=1.0, take_profit_pct=0.0, partial_take_profit_pct=0.5,
    trailing_activation_pct=0.4, trailing_distance_pct=0.2, max_holding_ms=12 * TF,
)  # fmt: skip
FEATURES = np.array([1.5, np.nan, -1e-300, 42.0])
SCHEMA = "0123456789abcdef"


def _book() -> VirtualBook:
    return VirtualBook({"BTCUSDT": 0.1, "ETHUSDT": 0.01}, TF, EXITS, CostParams())


def _positions() -> tuple[VirtualBook, list[VirtualPositionState]]:
    """A long that entered and took its partial exit, and a short still pending."""
    book = _book()
    book.open(OpenVirtualPosition("BTCUSDT", T0, T0 + TF, 1, 0.7, 1.0, 0.0, "m1"), FEATURES, SCHEMA)
    book.on_candle("BTCUSDT", T0 + TF, 100.0, 100.8, 99.9, 100.6)
    book.open(
        OpenVirtualPosition("ETHUSDT", T0 + TF, T0 + 2 * TF, -1, 0.6, 1.2, 0.0, "m1"),
        FEATURES * 2, SCHEMA,
    )  # fmt: skip
    return book, book.positions()


def _same(a: VirtualPositionState, b: VirtualPositionState) -> None:
    for name in VirtualPositionState.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if name == "features":
            np.testing.assert_array_equal(x, y)
        elif name == "exit_state" and x is not None:
            assert set(x) == set(y)
            for k in x:
                assert x[k] == y[k] or (math.isnan(x[k]) and math.isnan(y[k])), k
        else:
            assert x == y, name


async def _count(engine: AsyncEngine, table: Table, status: str | None = None) -> int:
    query = select(func.count()).select_from(table)
    if status is not None:
        query = query.where(virtual_positions.c.status == status)
    async with engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


def test_open_positions_read_back_exactly_with_the_exit_kernels_state(db_url: URL) -> None:
    _, positions = _positions()
    long, short = positions
    assert long.exit_state is not None and math.isnan(long.exit_state["target"])
    assert long.exit_state["qty"] == 0.5 and short.pending

    async def body(engine: AsyncEngine) -> list[StoredVirtualPosition]:
        for p in positions:
            await open_virtual_position(engine, p, max_holding_ms=EXITS.max_holding_ms, run_id="r1")
        return await load_open_virtual_positions(engine)

    loaded = on_database(db_url, body)
    assert [s.position.symbol for s in loaded] == ["BTCUSDT", "ETHUSDT"]
    for stored, original in zip(loaded, positions, strict=True):
        _same(stored.position, original)


def test_a_book_rebuilt_from_the_database_closes_its_positions_as_the_original(
    db_url: URL,
) -> None:
    book, positions = _positions()

    async def body(engine: AsyncEngine) -> list[StoredVirtualPosition]:
        for p in positions:
            await open_virtual_position(engine, p, max_holding_ms=EXITS.max_holding_ms)
        return await load_open_virtual_positions(engine)

    rebuilt = _book()
    rebuilt.restore(s.position for s in on_database(db_url, body))
    candles = [
        ("BTCUSDT", 2, 100.6, 101.5, 100.5, 101.2),
        ("ETHUSDT", 2, 50.0, 50.1, 49.7, 49.8),
        ("BTCUSDT", 3, 101.2, 101.3, 100.0, 100.2),
        ("ETHUSDT", 3, 49.8, 51.0, 49.6, 50.9),
    ]
    closed = []
    for symbol, k, o, h, lo, c in candles:
        mine = book.on_candle(symbol, T0 + k * TF, o, h, lo, c)
        again = rebuilt.on_candle(symbol, T0 + k * TF, o, h, lo, c)
        assert [_fields(t) for t in again] == [_fields(t) for t in mine]
        closed += mine
    assert {t.symbol for t in closed} == {"BTCUSDT", "ETHUSDT"}
    assert len(book) == len(rebuilt) == 0


def _fields(t: VirtualTrade) -> tuple[object, ...]:
    return (
        t.symbol, t.direction, t.entry_time_ms, t.entry_price, t.exit_time_ms, t.exit_price,
        t.exit_reason, t.return_pct, t.reward, t.won, t.features.tobytes(), t.model_version,
    )  # fmt: skip


def _trade_of(p: VirtualPositionState, **changes: Any) -> VirtualTrade:
    trade = VirtualTrade(
        symbol=p.symbol, direction=p.direction, entry_time_ms=p.entry_time_ms,
        entry_price=p.entry_price or 100.0, stop_loss_pct=p.stop_loss_pct,
        take_profit_pct=p.take_profit_pct, exit_time_ms=p.entry_time_ms + 4 * TF,
        exit_price=101.0, exit_reason="trailing_stop", return_pct=0.8, reward=0.8, won=True,
        features=p.features, feature_schema_hash=p.feature_schema_hash,
        model_version=p.model_version,
    )  # fmt: skip
    return replace(trade, **changes)


def test_closing_writes_the_trade_and_marks_the_position_in_one_transaction_once(
    db_url: URL,
) -> None:
    _, (long, short) = _positions()
    moved = replace(short, seen_close_ms=short.seen_close_ms + TF)

    async def body(engine: AsyncEngine) -> dict[str, Any]:
        ids = [await open_virtual_position(engine, p, max_holding_ms=1) for p in (long, short)]
        seen: dict[str, Any] = {"retried_open": await open_virtual_position(
            engine, long, max_holding_ms=1)}  # fmt: skip
        closing = [(ids[0], _trade_of(long))]
        seen["written"] = await close_virtual_positions(
            engine, closing, still_open=[StoredVirtualPosition(ids[1], moved)]
        )
        seen["retried"] = await close_virtual_positions(engine, closing)
        seen["open"] = await load_open_virtual_positions(engine)
        async with engine.connect() as connection:
            link = select(virtual_trades.c.position_id, virtual_trades.c.features)
            seen["trades"] = (await connection.execute(link)).all()
        seen["ids"] = ids
        seen["closed"] = await _count(engine, virtual_positions, "closed")
        return seen

    seen = on_database(db_url, body)
    assert seen["retried_open"] == seen["ids"][0]
    assert seen["written"] == 1 and seen["retried"] == 0 and seen["closed"] == 1
    (trade_row,) = seen["trades"]
    assert trade_row[0] == seen["ids"][0]
    np.testing.assert_array_equal(np.frombuffer(trade_row[1], "<f8"), FEATURES)
    (still,) = seen["open"]
    assert still.id == seen["ids"][1]
    _same(still.position, moved)


def test_a_bad_trade_in_a_close_writes_nothing_at_all(db_url: URL) -> None:
    _, (long, short) = _positions()

    async def body(engine: AsyncEngine) -> tuple[int, int, int]:
        ids = [await open_virtual_position(engine, p, max_holding_ms=1) for p in (long, short)]
        with pytest.raises(RecordError, match="virtual trade 1: return_pct must be a finite"):
            await close_virtual_positions(
                engine,
                [(ids[0], _trade_of(long)), (ids[1], _trade_of(short, return_pct=math.nan))],
                expired=[ids[1]],
            )
        opened = len(await load_open_virtual_positions(engine))
        return opened, await _count(engine, virtual_trades), await _count(engine, virtual_positions)

    assert on_database(db_url, body) == (2, 0, 2)


def test_an_expired_position_leaves_the_open_ones_and_writes_no_trade(db_url: URL) -> None:
    _, (long, short) = _positions()

    async def body(engine: AsyncEngine) -> tuple[list[str], int, int]:
        ids = [await open_virtual_position(engine, p, max_holding_ms=1) for p in (long, short)]
        await close_virtual_positions(engine, [], expired=[ids[1]])
        symbols = [s.position.symbol for s in await load_open_virtual_positions(engine)]
        return (
            symbols,
            await _count(engine, virtual_positions, "expired"),
            await _count(engine, virtual_trades),
        )

    assert on_database(db_url, body) == (["BTCUSDT"], 1, 0)


def test_a_position_with_a_bad_field_is_refused_before_anything_is_written(db_url: URL) -> None:
    _, (long, _short) = _positions()

    async def body(engine: AsyncEngine) -> int:
        for bad, message in (
            (replace(long, symbol="BTC/USDT"), "unknown symbol"),
            (replace(long, stop_loss_pct=math.nan), "stop_loss_pct must be a finite"),
            (replace(long, entry_price=None), "entry_price and exit_state are both"),
        ):
            with pytest.raises(RecordError, match=message):
                await open_virtual_position(engine, bad, max_holding_ms=1)
        return await _count(engine, virtual_positions)

    assert on_database(db_url, body) == 0


def test_filtering_by_symbol_reads_only_that_symbols_positions(db_url: URL) -> None:
    _, positions = _positions()

    async def body(engine: AsyncEngine) -> list[str]:
        for p in positions:
            await open_virtual_position(engine, p, max_holding_ms=1)
        return [s.position.symbol for s in await load_open_virtual_positions(engine, ["ETHUSDT"])]

    assert on_database(db_url, body) == ["ETHUSDT"]


def test_revision_0005_keeps_0004_rows_and_stepping_back_drops_only_pending_positions(
    db_url: URL,
) -> None:
    asyncio.run(migrate.upgrade(db_url, "0004"))

    async def sql(*statements: str) -> list[tuple[object, ...]]:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                for statement in statements:
                    result = await conn.exec_driver_sql(statement)
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    columns = (
        "symbol, direction, entry_time_ms, entry_price, stop_loss_pct, take_profit_pct, "
        "max_holding_ms, features, feature_schema_hash, status, model_version"
    )
    asyncio.run(
        sql(
            f"INSERT INTO virtual_positions ({columns}) VALUES "
            "('BTCUSDT', 1, 10, 100, 1, 2, 5, '', 'h', 'closed', 'none')"
        )
    )
    asyncio.run(migrate.upgrade(db_url))
    assert asyncio.run(
        sql("SELECT entry_time_ms, run_id, exit_state, seen_close_ms FROM virtual_positions")
    ) == [(10, "", None, None)]
    asyncio.run(
        sql(
            f"INSERT INTO virtual_positions ({columns}, run_id) VALUES "
            "('BTCUSDT', 1, 20, NULL, 1, 2, 5, '', 'h', 'open', 'none', 'r2')",
            "INSERT INTO virtual_trades (position_id, symbol, direction, entry_time_ms, "
            "entry_price, stop_loss_pct, take_profit_pct, exit_time_ms, exit_price, exit_reason, "
            "return_pct, reward, won, features, feature_schema_hash, model_version) VALUES "
            "(1, 'BTCUSDT', 1, 10, 100, 1, 2, 15, 101, 'take_profit', 1, 1, true, '', 'h', 'none')",
        )
    )
    asyncio.run(migrate.downgrade(db_url, "0004"))
    assert asyncio.run(sql("SELECT entry_time_ms FROM virtual_positions")) == [(10,)]
    assert asyncio.run(sql("SELECT position_id, exit_time_ms FROM virtual_trades")) == [(None, 15)]
    assert asyncio.run(migrate.status(db_url)).current == "0004"
