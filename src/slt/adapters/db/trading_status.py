"""Reads for `slt status`: which sessions recorded, their day's closed PnL and last equity,
the champion model and the newest candle of each series. Open orders and positions come from
``TradingLedger``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, and_, case, func, select, type_coerce, union_all
from sqlalchemy.ext.asyncio import AsyncEngine

from slt.adapters.db.rows import read_records, record_columns
from slt.adapters.db.tables import equity_snapshots, market_data, ml_models, orders, positions
from slt.domain.trading_records import EquitySnapshot

_EQUITY_COLUMNS = record_columns(
    equity_snapshots, EquitySnapshot, ("equity", "cash", "unrealized_pnl")
)


@dataclass(frozen=True)
class RunSummary:
    """A session that recorded something: its first and newest recorded times."""

    mode: str
    run_id: str
    first_ms: int
    last_ms: int


@dataclass(frozen=True)
class ClosedPnl:
    """Positions closed in a span: their count, winners, and totals (``realized_pnl`` is net
    of fees and funding, as the engine's trades are)."""

    closed: int
    won: int
    realized_pnl: float
    fees: float
    funding: float


@dataclass(frozen=True)
class ChampionModel:
    version: str
    created_ms: int
    promoted_ms: int | None
    train_end_ms: int
    feature_schema_hash: str


@dataclass(frozen=True)
class LastCandle:
    symbol: str
    market: str
    timeframe: str
    open_time_ms: int
    close: float


class TradingStatus:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def runs(self, mode: str | None = None) -> list[RunSummary]:
        """Every (mode, run id) with orders, positions or equity, most recently active first."""
        parts = [
            select(
                orders.c.mode, orders.c.run_id, func.min(orders.c.created_ms).label("first_ms"),
                func.max(orders.c.updated_ms).label("last_ms"),
            ).group_by(orders.c.mode, orders.c.run_id),
            select(
                positions.c.mode, positions.c.run_id,
                func.min(positions.c.opened_ms).label("first_ms"),
                func.max(func.coalesce(positions.c.closed_ms, positions.c.opened_ms)).label(
                    "last_ms"
                ),
            ).group_by(positions.c.mode, positions.c.run_id),
            select(
                equity_snapshots.c.mode, equity_snapshots.c.run_id,
                func.min(equity_snapshots.c.time_ms).label("first_ms"),
                func.max(equity_snapshots.c.time_ms).label("last_ms"),
            ).group_by(equity_snapshots.c.mode, equity_snapshots.c.run_id),
        ]  # fmt: skip
        every = union_all(*parts).subquery()
        last = func.max(every.c.last_ms).label("last_ms")
        query = (
            select(every.c.mode, every.c.run_id, func.min(every.c.first_ms).label("first_ms"), last)
            .group_by(every.c.mode, every.c.run_id)
            .order_by(last.desc(), every.c.run_id)
        )
        if mode is not None:
            query = query.where(every.c.mode == mode)
        return await self._read(query, RunSummary)

    async def closed_pnl(self, mode: str, run_id: str, start_ms: int, end_ms: int) -> ClosedPnl:
        """Positions of the run closed in ``[start_ms, end_ms)``."""
        p = positions.c
        won = case((p.realized_pnl > 0, 1), else_=0)
        query = select(
            func.count().label("closed"),
            func.coalesce(func.sum(won), 0).label("won"),
            *(
                func.coalesce(func.sum(type_coerce(p[name], Float)), 0.0).label(name)
                for name in ("realized_pnl", "fees", "funding")
            ),
        ).where(
            p.mode == mode, p.run_id == run_id, p.status == "closed",
            p.closed_ms >= start_ms, p.closed_ms < end_ms,
        )  # fmt: skip
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).one()
        return ClosedPnl(int(row.closed), int(row.won), float(row.realized_pnl),
                         float(row.fees), float(row.funding))  # fmt: skip

    async def latest_equity(self, mode: str, run_id: str) -> EquitySnapshot | None:
        e = equity_snapshots.c
        query = (
            select(*_EQUITY_COLUMNS)
            .where(e.mode == mode, e.run_id == run_id)
            .order_by(e.time_ms.desc())
            .limit(1)
        )
        found = await self._read(query, EquitySnapshot)
        return found[0] if found else None

    async def champion(self) -> ChampionModel | None:
        """The model in use, without its bytes."""
        m = ml_models.c
        query = select(
            m.version, m.created_ms, m.promoted_ms, m.train_end_ms, m.feature_schema_hash
        ).where(m.status == "champion")
        found = await self._read(query, ChampionModel)
        return found[0] if found else None

    async def last_candles(self) -> list[LastCandle]:
        """The newest stored candle of every symbol, market and timeframe."""
        md = market_data.c
        keys = (md.symbol, md.market, md.timeframe)
        newest = (
            select(*keys, func.max(md.open_time_ms).label("open_time_ms"))
            .group_by(*keys)
            .subquery()
        )
        query = (
            select(*keys, md.open_time_ms, type_coerce(md.close, Float).label("close"))
            .join(
                newest,
                and_(
                    md.symbol == newest.c.symbol, md.market == newest.c.market,
                    md.timeframe == newest.c.timeframe, md.open_time_ms == newest.c.open_time_ms,
                ),
            )
            .order_by(*keys)
        )  # fmt: skip
        return await self._read(query, LastCandle)

    async def _read(self, query: Any, record_type: type[Any]) -> list[Any]:
        async with self.engine.connect() as connection:
            return await read_records(connection, query, record_type)
