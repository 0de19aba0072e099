"""Candles collected live (``market_data``), read through the optional Redis cache.

History for research lives in the Parquet store; this table holds what a paper or live run
saw, so a restart can rebuild its features without downloading again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from slt.adapters.cache.cache import Cache, CandleRow, NullCache
from slt.adapters.db.rows import as_float, insert_ignoring_duplicates, rows_of
from slt.adapters.db.tables import market_data
from slt.domain.timeframes import TIMEFRAME_MS
from slt.domain.trading_records import Candle, check_candle

_KEY = ("symbol", "market", "timeframe", "open_time_ms")
_PRICES = ("open", "high", "low", "close", "volume")


async def write_candles(connection: AsyncConnection, records: Sequence[Candle]) -> None:
    """A candle already stored is kept: a closed candle does not change."""
    rows = rows_of(connection, records, _PRICES)
    await insert_ignoring_duplicates(connection, market_data, rows, _KEY)


class CandleStore:
    """Writes go to the database (durable) and then to the cache; reads try the cache first
    for the default market (futures), whose latest candles the cache keeps."""

    def __init__(self, engine: AsyncEngine, cache: Cache | None = None) -> None:
        self.engine = engine
        self.cache: Cache = cache or NullCache()

    async def add_many(self, records: Sequence[Candle]) -> None:
        for record in records:
            check_candle(record)
        async with self.engine.begin() as connection:
            await write_candles(connection, records)
        await self.refresh_cache(records)

    async def refresh_cache(self, records: Sequence[Candle]) -> None:
        """After a commit: the newest price per symbol and the latest candles per series."""
        newest: dict[str, Candle] = {}
        series: set[tuple[str, str]] = set()
        for c in records:
            if c.market != "futures":
                continue
            series.add((c.symbol, c.timeframe))
            held = newest.get(c.symbol)
            if held is None or c.open_time_ms >= held.open_time_ms:
                newest[c.symbol] = c
        for symbol, candle in newest.items():
            closed_ms = candle.open_time_ms + TIMEFRAME_MS[candle.timeframe]
            await self.cache.set_latest_price(symbol, candle.close, closed_ms)
        for symbol, timeframe in sorted(series):
            rows = await self._latest_from_db(symbol, "futures", timeframe, 500)
            await self.cache.set_latest_candles(symbol, timeframe, rows)

    async def latest(
        self, symbol: str, timeframe: str, limit: int = 500, market: str = "futures"
    ) -> list[CandleRow]:
        """The newest ``limit`` candles, oldest first."""
        if market == "futures":
            cached = await self.cache.latest_candles(symbol, timeframe)
            if cached is not None and len(cached) >= limit:
                return cached[-limit:]
        return await self._latest_from_db(symbol, market, timeframe, limit)

    async def _latest_from_db(
        self, symbol: str, market: str, timeframe: str, limit: int
    ) -> list[CandleRow]:
        query = (
            select(market_data.c.open_time_ms)
            .add_columns(*as_float(market_data, _PRICES))
            .where(
                market_data.c.symbol == symbol,
                market_data.c.market == market,
                market_data.c.timeframe == timeframe,
            )
            .order_by(market_data.c.open_time_ms.desc())
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            (int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
            for r in reversed(rows)
        ]
