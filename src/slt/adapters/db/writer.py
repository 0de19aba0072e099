"""Batched writes off the trading loop, with durable acknowledgement where money is involved.

The loop hands records to ``RecordWriter`` and goes on. ``submit`` queues a record (signals,
candles, equity snapshots): it is committed within ``flush_interval_s``. ``record`` queues one
and returns only after the transaction holding it has committed (fills, closed positions,
closed virtual trades): an acknowledged record survives a crash. Records are checked when
handed over, so a NaN price fails at the caller, not later in the background. Whatever
records data under a feature schema hash submits that schema (``FeatureSchemaRecord``) once;
it is written ahead of the records in its batch.

When the database is unreachable (a restart, a network cut) the writer keeps the batch,
warns once, retries with backoff and says when it is back; nothing is dropped and no
acknowledgement is given early. Every write is idempotent (unique keys), so retrying a
commit whose acknowledgement was lost does not double anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from slt.adapters.db.experience import write_examples
from slt.adapters.db.feature_schemas import write_feature_schemas
from slt.adapters.db.ledger import (
    write_account_snapshots,
    write_equity_snapshots,
    write_fills,
    write_orders,
    write_positions,
)
from slt.adapters.db.market_data import write_candles
from slt.adapters.db.signals import write_signals
from slt.adapters.db.virtual_trades import write_virtual_trades
from slt.domain.learning_records import (
    Example,
    FeatureSchemaRecord,
    SignalRecord,
    check_example,
    check_feature_schema,
    check_signal,
)
from slt.domain.records import VirtualTrade, check_virtual_trade
from slt.domain.trading_records import (
    AccountSnapshot,
    Candle,
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    PositionRecord,
    check_account_snapshot,
    check_candle,
    check_equity_snapshot,
    check_fill,
    check_order,
    check_position,
)
from slt.errors import SltError

log = structlog.get_logger("slt.db.writer")

WriteFn = Callable[[AsyncConnection, Sequence[Any]], Awaitable[None]]
# SQLSTATE classes of a lost or refused connection: 08 connection exception, 57P operator
# intervention (shutdown, crash recovery), 53 insufficient resources.
_TRANSIENT_SQLSTATES = ("08", "57P", "53")


class RecordWriterError(SltError):
    """Records the writer could not store (refused by the database, or still unwritten when
    it was closed)."""


@dataclass(frozen=True)
class _Kind:
    name: str
    check: Callable[[Any], None]
    write: WriteFn


# Write order inside one transaction: a fill refers to its order, a position to its fills; a
# feature schema comes first, so the records that carry its hash are never stored without it.
KINDS: dict[type, _Kind] = {
    FeatureSchemaRecord: _Kind("feature schemas", check_feature_schema, write_feature_schemas),
    SignalRecord: _Kind("signals", check_signal, write_signals),
    Candle: _Kind("candles", check_candle, write_candles),
    OrderRecord: _Kind("orders", check_order, write_orders),
    FillRecord: _Kind("fills", check_fill, write_fills),
    PositionRecord: _Kind("positions", check_position, write_positions),
    EquitySnapshot: _Kind("equity snapshots", check_equity_snapshot, write_equity_snapshots),
    AccountSnapshot: _Kind("account snapshots", check_account_snapshot, write_account_snapshots),
    VirtualTrade: _Kind("virtual trades", check_virtual_trade, write_virtual_trades),
    Example: _Kind("examples", check_example, write_examples),
}


@dataclass
class _Pending:
    record: Any  # None marks a flush barrier
    done: asyncio.Future[None] | None


def is_transient(exc: BaseException) -> bool:
    """A failure that a later retry may not meet: the connection, not the data."""
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            return True
        cause: BaseException | None = exc.orig
        while cause is not None:
            state = str(getattr(cause, "sqlstate", "") or "")
            if state.startswith(_TRANSIENT_SQLSTATES) or isinstance(cause, OSError):
                return True
            cause = cause.__cause__
    return False


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()
    return text[0] if text else type(exc).__name__


class RecordWriter:
    """Use as ``async with RecordWriter(engine) as writer:``; leaving the block flushes."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        flush_interval_s: float = 0.2,
        max_batch: int = 5_000,
        retry_interval_s: float = 0.2,
        max_retry_interval_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.retry_interval_s = retry_interval_s
        self.max_retry_interval_s = max_retry_interval_s
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._down_since: float | None = None
        self.written = 0
        self.refused = 0

    async def __aenter__(self) -> RecordWriter:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def pending(self) -> int:
        return sum(1 for p in self._queue if p.record is not None)

    @property
    def database_up(self) -> bool:
        return self._down_since is None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="slt-writer")

    def submit(self, record: object) -> None:
        """Queue ``record``; committed within ``flush_interval_s`` while the database is up."""
        self._check(record)
        self._queue.append(_Pending(record, None))
        if len(self._queue) >= self.max_batch:
            self._wake.set()

    def record_nowait(self, record: object) -> asyncio.Future[None]:
        """Queue ``record`` now and get a future that completes once it is committed."""
        self._check(record)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(record, done))
        self._wake.set()
        return done

    async def record(self, record: object) -> None:
        """Return only when ``record`` is committed (durable)."""
        await self.record_nowait(record)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(None, done))
        self._wake.set()
        await done

    async def close(self, timeout_s: float = 30.0) -> None:
        """Flush, then stop. Raises RecordWriterError naming what could not be written."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            left = self.pending
            error = RecordWriterError(
                f"{left} records were not written: the database stayed unreachable "
                f"for {timeout_s:g} s after close"
            )
            for pending in self._queue:
                if pending.done is not None and not pending.done.done():
                    pending.done.set_exception(error)
            self._queue.clear()
            raise error from None
        finally:
            self._task = None

    def _check(self, record: object) -> None:
        if self._closing:
            raise RecordWriterError("the record writer is closed")
        kind = KINDS.get(type(record))
        if kind is None:
            raise RecordWriterError(f"cannot store a {type(record).__name__}")
        kind.check(record)

    async def _run(self) -> None:
        while True:
            if not self._queue and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            if not self._queue:
                if self._closing:
                    return
                continue
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            await self._commit_retrying(batch)
        except Exception:
            await self._write_each_kind(batch)

    async def _commit_retrying(self, batch: list[_Pending]) -> None:
        """Commit ``batch``, retrying while the database is unreachable; then acknowledge.
        Raises what the database refused."""
        delay = self.retry_interval_s
        while True:
            try:
                await self._write(batch)
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._went_down(exc, batch)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_interval_s)
        self._came_back()
        self.written += sum(1 for p in batch if p.record is not None)
        for pending in batch:
            if pending.done is not None and not pending.done.done():
                pending.done.set_result(None)

    async def _write(self, batch: Sequence[_Pending]) -> None:
        groups: dict[type, list[Any]] = {kind: [] for kind in KINDS}
        for pending in batch:
            if pending.record is not None:
                groups[type(pending.record)].append(pending.record)
        async with self.engine.begin() as connection:
            for kind, records in groups.items():
                if records:
                    await KINDS[kind].write(connection, records)

    async def _write_each_kind(self, batch: list[_Pending]) -> None:
        """A batch the database refused: write kind by kind so one bad kind cannot block the
        rest. The refused kind's waiting callers get the error; queued-only ones are logged."""
        for kind in KINDS:
            part = [p for p in batch if type(p.record) is kind]
            if not part:
                continue
            try:
                await self._commit_retrying(part)
            except Exception as exc:
                self.refused += len(part)
                reason = _reason(exc)
                log.error("records refused", kind=KINDS[kind].name, count=len(part), reason=reason)
                error = RecordWriterError(
                    f"the database refused {len(part)} {KINDS[kind].name}: {reason}"
                )
                for pending in part:
                    if pending.done is not None and not pending.done.done():
                        pending.done.set_exception(error)
        for pending in batch:
            if pending.record is None and pending.done is not None and not pending.done.done():
                pending.done.set_result(None)

    def _went_down(self, exc: BaseException, batch: Sequence[_Pending]) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "database unreachable; holding records and retrying",
                reason=_reason(exc),
                held=len(batch) + len(self._queue),
            )

    def _came_back(self) -> None:
        if self._down_since is not None:
            log.info(
                "database reachable again; held records written",
                down_s=round(time.monotonic() - self._down_since, 1),
            )
            self._down_since = None
