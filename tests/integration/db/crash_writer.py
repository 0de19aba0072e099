"""Child process of the crash test: writes fills through the record writer and prints the id
of each one as soon as its write is acknowledged, until it is killed."""

from __future__ import annotations

import asyncio
import dataclasses
import sys

from sqlalchemy.engine import make_url
from tests.integration.db.test_ledger import ENTRY, FILL

from slt.adapters.db.connect import create_engine
from slt.adapters.db.writer import RecordWriter


async def main(url: str) -> None:
    engine = create_engine(make_url(url))
    async with RecordWriter(engine, flush_interval_s=0.01) as writer:
        for k in range(1_000_000):
            order = dataclasses.replace(ENTRY, order_id=f"crash-{k}")
            writer.submit(order)
            await writer.record(
                dataclasses.replace(FILL, fill_id=f"f-{k}", order_id=order.order_id)
            )
            print(k, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
