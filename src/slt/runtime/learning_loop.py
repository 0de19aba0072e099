"""Learning while it trades: a paper or live session's virtual positions followed, stored and
learned from.

Every ``OpenVirtualPosition`` the reducer issues is stored, then followed by the virtual book
(the backtest's exit kernels) candle by candle; the virtual trades a candle closes are
committed before they count, together with the open positions' new state, so a restarted
session (``restore``) closes them as if it had never stopped. Closed trades feed the
retrainer; when a retrain promotes its model, ``on_model`` hears the version once. Nothing
here waits for training: it runs beside the loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from slt.adapters.db.feature_schemas import FeatureSchemaStore
from slt.adapters.db.virtual_positions import (
    StoredVirtualPosition,
    close_virtual_positions,
    load_open_virtual_positions,
    open_virtual_position,
)
from slt.domain.features.schema import FeatureSchema
from slt.domain.learning_records import FeatureSchemaRecord
from slt.domain.records import VirtualTrade
from slt.domain.virtual_position import VirtualPositionState
from slt.engine.messages import OpenVirtualPosition
from slt.engine.virtual_book import F64, MinuteArrays, VirtualBook
from slt.runtime.retrainer import Retrained, Retrainer

log = structlog.get_logger("slt.learning")
OnModel = Callable[[str], object]  # may return an awaitable: the loop awaits it in a task


class LearningLoop:
    """One session's virtual positions on ``engine``'s database, with the session's book."""

    def __init__(
        self,
        engine: AsyncEngine,
        book: VirtualBook,
        schema: FeatureSchema,
        *,
        retrainer: Retrainer | None = None,
        on_model: OnModel | None = None,
        run_id: str = "",
    ) -> None:
        self.engine = engine
        self.book = book
        self.schema = schema
        self.retrainer = retrainer
        self.on_model = on_model
        self.run_id = run_id
        self.closed = 0  # virtual trades committed by this loop
        self._rows: dict[tuple[str, int], int] = {}  # (symbol, entry time) -> row id
        self._unsaved: list[tuple[int, VirtualTrade]] = []  # closed, not yet committed
        self._unsaved_expired: list[int] = []
        self._schema_registered = False
        self._announced: Retrained | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors: list[BaseException] = []

    async def restore(self) -> int:
        """Follow on the positions a previous session left open (call once, before the first
        candle); how many."""
        stored = await load_open_virtual_positions(self.engine, self.book.symbols)
        self.book.restore(s.position for s in stored)
        self._rows.update({s.position.key: s.id for s in stored})
        if stored:
            log.info(f"Virtual positions restored: {len(stored)}", business=True)
        return len(stored)

    async def opened(
        self, command: OpenVirtualPosition, features: F64, feature_schema_hash: str
    ) -> bool:
        """Store the signal's virtual position, then follow it; False if it is followed
        already or its entry has passed (a signal replayed after a restart)."""
        key = (command.symbol, command.entry_after_ms)
        if key in self.book or command.entry_after_ms < self.book.last_close_ms(command.symbol):
            log.debug("virtual position already followed", symbol=key[0], entry_time_ms=key[1])
            return False
        position = self.book.pending(command, features, feature_schema_hash)
        row_id = await open_virtual_position(
            self.engine, position, max_holding_ms=self.book.exits.max_holding_ms,
            run_id=self.run_id,
        )  # fmt: skip
        self.book.open(command, features, feature_schema_hash)
        self._rows[key] = row_id
        log.info(
            f"Virtual position opened: {command.symbol} {_side(command.direction)} at the open "
            f"of {_utc(command.entry_after_ms)}, stop {command.stop_pct:.3f}%",
            business=True, symbol=command.symbol, model_version=command.model_version,
        )  # fmt: skip
        return True

    async def candle(
        self,
        symbol: str,
        open_time_ms: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        *,
        minutes: MinuteArrays | None = None,
    ) -> list[VirtualTrade]:
        """Advance ``symbol``'s virtual positions by this closed candle and commit what moved;
        the trades it closed. A candle followed before a restart changes nothing."""
        if open_time_ms < self.book.last_close_ms(symbol):
            return []
        await self._register_schema(open_time_ms + self.book.timeframe_ms)
        before = {k for k in self._rows if k[0] == symbol}
        trades = self.book.on_candle(symbol, open_time_ms, open_, high, low, close, minutes=minutes)
        still_open = self.book.positions(symbol)
        self._unsaved += [(self._rows.pop((t.symbol, t.entry_time_ms)), t) for t in trades]
        left = before - {p.key for p in still_open} - {(t.symbol, t.entry_time_ms) for t in trades}
        self._unsaved_expired += [self._rows.pop(k) for k in sorted(left)]
        committed = await self._commit(still_open)
        for trade in committed:
            log.info(
                f"Virtual position closed: {trade.symbol} {_side(trade.direction)} "
                f"{trade.exit_reason}, return {trade.return_pct:+.3f}%",
                business=True, symbol=trade.symbol, reward=trade.reward,
            )  # fmt: skip
        self._learn(len(committed))
        return trades

    async def _commit(self, still_open: list[VirtualPositionState]) -> list[VirtualTrade]:
        """One transaction; the trades it committed. On failure the closed trades wait for
        the next candle's transaction (a retry writes nothing twice): none is lost while the
        session lives."""
        moved = [StoredVirtualPosition(self._rows[p.key], p) for p in still_open]
        if not (self._unsaved or self._unsaved_expired or moved):
            return []
        await close_virtual_positions(
            self.engine, self._unsaved, still_open=moved, expired=self._unsaved_expired
        )
        committed = [trade for _, trade in self._unsaved]
        self.closed += len(committed)
        self._unsaved, self._unsaved_expired = [], []
        return committed

    async def _register_schema(self, time_ms: int) -> None:
        """The running schema in the registry, so trades stored under it stay explainable."""
        if not self._schema_registered:
            await FeatureSchemaStore(self.engine).register(
                FeatureSchemaRecord.of(self.schema, time_ms)
            )
            self._schema_registered = True

    # -- retraining ---------------------------------------------------------------------

    def _learn(self, closed: int) -> None:
        retrainer = self.retrainer
        if retrainer is None:
            return
        self._announce()  # a finished retrain is heard before the next one replaces it
        if closed:
            retrainer.note_closed(closed)
        if retrainer.maybe_start():
            self._spawn(self._watch(retrainer), "slt-retrain-watch")

    async def _watch(self, retrainer: Retrainer) -> None:
        await retrainer.wait()
        self._announce()

    def _announce(self) -> None:
        """Tell ``on_model`` of a promotion it has not heard of yet."""
        done = None if self.retrainer is None else self.retrainer.last
        if done is None or done is self._announced:
            return
        self._announced = done
        if not done.result.verdict.promote or self.on_model is None:
            return
        self._spawn(_hand_over(self.on_model, done.version), "slt-on-model")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("model hand-over failed", task=task.get_name(), reason=str(error))
            self._errors.append(error)

    async def wait(self) -> None:
        """Until the running retrain and the ``on_model`` calls it caused are done (shutdown,
        tests); the first error among them is raised here (each was logged as it happened)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._errors:
            error, self._errors = self._errors[0], []
            raise error


async def _hand_over(on_model: OnModel, version: str) -> None:
    """``on_model`` in a task of its own: the candle path never waits for it or its errors."""
    answer = on_model(version)
    if inspect.isawaitable(answer):
        await answer


def _side(direction: int) -> str:
    return "long" if direction > 0 else "short"


def _utc(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
