"""One place that opens the data layer a command needs: database (schema checked), cache,
repositories and the record writer, from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from slt.adapters.cache.cache import Cache, open_cache
from slt.adapters.db.connect import create_engine
from slt.adapters.db.experience import ExperienceStore
from slt.adapters.db.feature_schemas import FeatureSchemaStore
from slt.adapters.db.ledger import TradingLedger
from slt.adapters.db.market_data import CandleStore
from slt.adapters.db.migrate import ensure_schema
from slt.adapters.db.models import ModelStore
from slt.adapters.db.signals import SignalStore
from slt.adapters.db.urls import database_url
from slt.adapters.db.virtual_trades import VirtualTradeStore
from slt.adapters.db.writer import RecordWriter
from slt.runtime.config import Settings, mask_url


@dataclass
class Storage:
    """The repositories of one database, sharing one engine and one cache."""

    url: URL
    engine: AsyncEngine
    cache: Cache
    writer: RecordWriter
    signals: SignalStore
    candles: CandleStore
    virtual_trades: VirtualTradeStore
    experience: ExperienceStore
    models: ModelStore
    feature_schemas: FeatureSchemaStore
    ledger: TradingLedger

    async def close(self) -> None:
        """Flush the writer, then close the cache and the connections."""
        try:
            await self.writer.close()
        finally:
            await self.cache.close()
            await self.engine.dispose()


def configured_url(settings: Settings) -> URL:
    raw = settings.database_url.get_secret_value() if settings.database_url else None
    return database_url(raw, settings.data_dir)


async def open_storage(settings: Settings) -> Storage:
    """Check the schema (migrating when SLT_DB_AUTO_MIGRATE allows), then open everything.

    Raises SchemaVersionError with the command to run, or DatabaseUnavailableError."""
    url = configured_url(settings)
    await ensure_schema(url, settings.db_auto_migrate)
    engine = create_engine(url)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    cache = open_cache(redis_url, mask_url(redis_url) if redis_url else "")
    writer = RecordWriter(engine)
    writer.start()
    return Storage(
        url=url,
        engine=engine,
        cache=cache,
        writer=writer,
        signals=SignalStore(engine),
        candles=CandleStore(engine, cache),
        virtual_trades=VirtualTradeStore(engine),
        experience=ExperienceStore(engine),
        models=ModelStore(engine),
        feature_schemas=FeatureSchemaStore(engine),
        ledger=TradingLedger(engine),
    )
