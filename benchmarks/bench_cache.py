"""The Redis cache speed target of the persistence issue: read the latest price, median < 1 ms.

    .venv/bin/python benchmarks/bench_cache.py [--write]

Reads one symbol's latest price through ``RedisCache`` from the Redis on 127.0.0.1:6379:
1,000 warm-up reads, then 10,000 timed reads, one at a time on one event loop, as the trading
loop does. Prints a Markdown section; ``--write`` puts it into docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import statistics
import sys
import time
import uuid

import redis

from bench_data import cpu_model, publish
from slt.adapters.cache import RedisCache

URL = "redis://127.0.0.1:6379/0"
WARM_UP, READS = 1_000, 10_000
TARGET_MS = 1.0
BEGIN, END = "<!-- bench_cache:begin -->", "<!-- bench_cache:end -->"


async def measure(namespace: str) -> list[float]:
    cache = RedisCache(URL, URL, namespace=namespace)
    try:
        await cache.set_latest_price("BTCUSDT", 67_123.45, 1_735_689_600_000)
        if not cache.is_up:
            sys.exit(f"Redis not reachable at {URL}")
        for _ in range(WARM_UP):
            await cache.latest_price("BTCUSDT")
        times_ms = []
        for _ in range(READS):
            start = time.perf_counter_ns()
            found = await cache.latest_price("BTCUSDT")
            times_ms.append((time.perf_counter_ns() - start) / 1e6)
            assert found is not None
        return times_ms
    finally:
        await cache.close()


def main() -> None:
    namespace = f"slt:v1:bench-{uuid.uuid4().hex[:12]}"
    try:
        times_ms = asyncio.run(measure(namespace))
        with redis.Redis.from_url(URL) as client:
            server = client.info("server")["redis_version"]
    finally:
        with redis.Redis.from_url(URL) as client, contextlib.suppress(redis.RedisError, OSError):
            keys = list(client.scan_iter(match=f"{namespace}:*"))
            if keys:
                client.delete(*keys)
    median = statistics.median(times_ms)
    p99 = statistics.quantiles(times_ms, n=100)[98]
    machine = (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"redis-py {redis.__version__}, Redis server {server} on 127.0.0.1 (TCP)"
    )
    verdict = "meets target" if median < TARGET_MS else "MISSES target"
    text = "\n".join(
        [
            BEGIN,
            "## Redis cache (issue 5)",
            "",
            f"Machine: {machine}. {WARM_UP:,} warm-up reads, then {READS:,} timed reads of one "
            "symbol, one at a time. Command: `.venv/bin/python benchmarks/bench_cache.py`.",
            "",
            "| what | target | median | p99 | verdict |",
            "|---|---|---|---|---|",
            f"| Read the latest price through the Redis cache | median < {TARGET_MS:g} ms "
            f"| {median * 1000:.0f} µs | {p99 * 1000:.0f} µs | {verdict} |",
            END,
        ]
    )
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
