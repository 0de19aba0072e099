"""The optional cache in front of the database (Redis, or nothing when REDIS_URL is unset)."""

from slt.adapters.cache.cache import (
    Cache,
    CacheTtls,
    CandleRow,
    NullCache,
    RedisCache,
    open_cache,
)

__all__ = ["Cache", "CacheTtls", "CandleRow", "NullCache", "RedisCache", "open_cache"]
