"""The brain: features, signals, the model and the portfolio reducer (``DecisionCore``), fed by
two rings (the executor's events ahead of the feed's market data) and sending its orders and
cancels to the executor on a third. Paper trading executes here, on the backtest's simulated
exchange step; there is no executor then.

Every input is journaled before it is applied (``InputJournal``). A restarted brain reads its
journal through the same code with nothing sent and nothing recorded, so its books, signal
pipelines and pending steps are the dead one's; live, it then says ``Hello`` and applies the
executor's ``Reconciled``, which brings the books in line with whatever happened meanwhile
(an order the dead brain decided but never sent is marked canceled; a position missing its
stop gets one). Live, market data waits until the first ``Reconciled`` has been applied: the
books agree with the exchange before anything is traded.

Stopping (SIGTERM, or a rehearsal's last candle): no new entries, then up to four
``LastLook`` rounds with the executor; a round that asks for nothing more ends it. A summary
of the session is written beside the journal for the main process to print.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.market_stream import Candle, CandleGap, MarkPrice
from slt.domain.features.config import FeatureConfig
from slt.domain.features.matrix import FeatureStream
from slt.domain.features.schema import FeatureSchema
from slt.domain.timeframes import TIMEFRAME_MS
from slt.domain.trading.symbol_rules import SymbolRules, symbol_rules
from slt.engine.config import EngineConfig
from slt.engine.messages import (
    CancelOrder,
    Command,
    Event,
    ModelChanged,
    PlaceOrder,
    Reconciled,
)
from slt.engine.pipeline import ModelGate
from slt.engine.virtual_book import VirtualBook
from slt.runtime.decision_core import DecisionCore
from slt.runtime.event_loop import run_async
from slt.runtime.exchange_setup import (
    RefusedToTrade,
    refuse_unexplained,
    rules_and_filters,
    settled_funding,
)
from slt.runtime.input_journal import InputJournal
from slt.runtime.learning_loop import LearningLoop
from slt.runtime.retrainer import LearningStores, Retrainer, policy_from, training_executor
from slt.runtime.ring import Record, Ring, wait_async
from slt.runtime.ring_records import (
    KINDS,
    Hello,
    LastLook,
    LookDone,
    Message,
    decode,
    encode,
)
from slt.runtime.supervisor import Heartbeat
from slt.runtime.trading_spec import EXIT_FINISHED, EXIT_REFUSED, TradingSpec

log = logging.getLogger(__name__)

LOOK_S = 60.0  # a last-look round waits this long for the executor (REST may be held back)

_JOURNALED = frozenset(
    code for cls, code in KINDS.items() if cls not in (MarkPrice, LookDone) and code < 50
)


def brain_main(heartbeat: Heartbeat, spec: TradingSpec) -> None:
    try:
        finished = run_async(Brain(heartbeat, spec).run())
    except RefusedToTrade as exc:
        log.error("%s", exc)
        with contextlib.suppress(OSError):  # for the main process to say why it stopped
            (spec.run_dir / "refused.txt").write_text(str(exc))
        sys.exit(EXIT_REFUSED)
    if finished:
        sys.exit(EXIT_FINISHED)


class Brain:
    def __init__(self, heartbeat: Heartbeat, spec: TradingSpec) -> None:
        self.heartbeat, self.spec = heartbeat, spec
        self.market = Ring.attach(spec.ring_name("market"))
        self.events = None if spec.paper else Ring.attach(spec.ring_name("events"))
        self.commands = None if spec.paper else Ring.attach(spec.ring_name("commands"))
        self.journal = InputJournal(spec.run_dir / "brain.journal")
        self.core: DecisionCore | None = None
        self.reconciled = spec.paper  # live: no market data before the books agree
        self.replaying = False
        self.restarted = False
        self.looked: int | None = None  # the last LookDone round
        self._out: deque[Message] = deque()
        self._training: ProcessPoolExecutor | None = None  # the retrainer's worker
        self._promoted: list[str] = []  # models the learning loop promoted, applied in order
        self.recorder: Any = None
        self.storage: Any = None

    # -- to the executor ---------------------------------------------------------------

    def _execute(self, commands: Sequence[Command]) -> list[Event]:
        if self.replaying:
            return []  # the dead brain sent them; the journal holds what they answered
        self._send([c for c in commands if isinstance(c, PlaceOrder | CancelOrder)])
        return []

    def _send(self, messages: Sequence[Message]) -> None:
        if self.commands is None:
            return
        self._out.extend(messages)
        while self._out:
            record = encode(self._out[0], self.commands.payload_size)
            if not self.commands.put(record.kind, record.payload):
                return  # the executor is not reading (restarting): sent as soon as it does
            self._out.popleft()

    # -- start-up ----------------------------------------------------------------------

    async def _rules(self, rest: BinanceRest) -> list[SymbolRules]:
        if self.spec.paper:
            return [symbol_rules(s) for s in self.spec.symbols]  # the backtest's own
        return (await rules_and_filters(rest, self.spec.symbols))[0]

    async def _open_records(self) -> None:
        if not self.spec.records:
            return
        from slt.runtime.config import load_settings
        from slt.runtime.session_records import SessionRecorder
        from slt.runtime.storage import open_storage

        self.storage = await open_storage(load_settings())
        self.recorder = SessionRecorder(self.storage.writer, self.spec.mode, self.spec.run_id,
                                        self.spec.timeframe)  # fmt: skip

    async def run(self) -> bool:
        """True when a rehearsal reached its last candle (the runtime then stops)."""
        spec = self.spec
        strategy, engine = spec.strategy_and_engine()
        async with BinanceRest(spec.rest_url, spec.keys.key, spec.keys.secret) as rest:
            await rest.sync_clock()
            rules = await self._rules(rest)

            await self._open_records()
            learning = self._learning(engine, rules) if self.storage is not None else None
            self.core = core = DecisionCore(
                spec.symbols, spec.timeframe, strategy, engine, rules, run_id=spec.run_id,
                paper=spec.paper, trade_from_ms=spec.trade_from_ms,
                funding_rows=partial(settled_funding, rest), learning=learning,
            )  # fmt: skip
            if not spec.paper:
                core.execute = self._execute
            if learning is not None:
                await self._champion(learning.schema)
            core.learning = None  # the journal's candles were followed before: the DB has them
            if self.recorder is not None:  # replayed inputs are recorded again: every row is
                # an upsert or ignores its duplicate, and a row the dead brain queued but
                # never committed is written now
                core.observe, core.on_candle = self.recorder.observe, self.recorder.candle
            await self._replay()
            if learning is not None:
                await learning.restore()
                core.learning = learning
            try:
                if self.restarted and not spec.paper:
                    self._send([Hello(spec.run_id)])
                finished = await self._serve()
                await self._stop()
            finally:
                if learning is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(learning.wait(), 60)
                if self._training is not None:  # else the exit waits on its worker
                    _end_training(self._training)
                self._write_summary()
                self.journal.close()
                if self.storage is not None:
                    await self.storage.close()
        return finished

    def _learning(self, engine: EngineConfig, rules: Sequence[SymbolRules]) -> LearningLoop:
        """Every signal's virtual position, followed and stored; a retrain every so many
        closed (the settings' policy), a promoted model handed to the loop below."""
        from slt.runtime.config import load_settings

        tf_ms = TIMEFRAME_MS[self.spec.timeframe]
        schema = FeatureStream(FeatureConfig.for_timeframe(self.spec.timeframe)).schema
        book = VirtualBook({r.symbol: float(r.tick_size) for r in rules}, tf_ms, engine.exits,
                           engine.costs)  # fmt: skip

        def now_ms() -> int:
            last = self.core.counts.last_candle_ms if self.core is not None else {}
            return max(last.values(), default=0) + tf_ms

        self._training = training_executor()
        retrainer = Retrainer(LearningStores.on(self.storage.engine), schema,
                              engine.exits.max_holding_ms, now_ms,
                              policy=policy_from(load_settings()),
                              executor=self._training)  # fmt: skip
        return LearningLoop(self.storage.engine, book, schema, retrainer=retrainer,
                            on_model=self._promoted.append, run_id=self.spec.run_id)  # fmt: skip

    async def _champion(self, schema: FeatureSchema) -> None:
        """The model in force at start: the store's champion, refused when it was trained on
        other features than this build computes (its scores would be meaningless)."""
        record = await self.storage.models.champion()
        if record is None:
            log.info("no model yet: signals trade ungated until one is trained")
            return
        if record.feature_schema_hash != schema.hash:
            raise RefusedToTrade(
                f"model {record.version} was trained on feature schema "
                f"{record.feature_schema_hash[:12]}, this build computes {schema.hash[:12]}; "
                "retrain it (slt walkforward / the retrainer) or move the model aside"
            )  # fmt: skip
        await self._use_model(record.version)

    async def _use_model(self, version: str) -> None:
        record = await self.storage.models.get(version) if self.storage is not None else None
        core = self.core
        assert core is not None
        if record is None:
            log.warning("model %s is not in the store; signals stay as they were", version)
            return
        p_break_even = record.metrics.get("break_even_p")
        if not isinstance(p_break_even, float | int):
            log.warning("model %s has no break-even win rate stored: not used; retrain", version)
            return
        gate = ModelGate(record.model, float(p_break_even), version)
        for stream in core.signals.values():
            stream.gate = gate
        log.info("Model in use: %s (signals need P(win) > %.3f)", version, p_break_even)

    async def _replay(self) -> None:
        """The dead brain's inputs, through the same code, nothing sent or recorded."""
        self.replaying = True
        for record in self.journal.replay():
            await self._apply(record, decode(record))
        self.replaying = False
        self.restarted = self.journal.records_read > 0
        if self.restarted:
            log.warning("brain restarted: %d journaled inputs replayed",
                        self.journal.records_read)  # fmt: skip

    # -- the loop ----------------------------------------------------------------------

    def _inputs(self) -> list[Record]:
        """Every waiting event of the executor first, then market data (live: only once the
        books have been reconciled)."""
        records = self.events.get_many(256) if self.events is not None else []
        if not records and self.reconciled:
            records = self.market.get_many(256)
        return records

    async def _serve(self) -> bool:
        core = self.core
        assert core is not None
        rings = [r for r in (self.events, self.market) if r is not None]
        until = self.spec.until_ms
        while not self.heartbeat.stop_requested:
            self.heartbeat.beat()
            self._send([])
            while self._promoted:  # journaled, then applied, as any input
                changed = encode(ModelChanged(self._promoted.pop(0)))
                self.journal.append([changed])
                await self._apply(changed, decode(changed))
            records = self._inputs()
            if not records:
                await wait_async(rings, 0.2)
                continue
            await self._take(records)
            if until is not None and core.reached(until):
                return True
        return False

    async def _take(self, records: Sequence[Record]) -> None:
        """Journal, then apply (the journal holds what a restarted brain must replay)."""
        self.journal.append([r for r in records if r.kind in _JOURNALED])
        for record in records:
            await self._apply(record, decode(record))

    async def _apply(self, record: Record, message: Message) -> None:
        core = self.core
        assert core is not None
        if isinstance(message, Candle | CandleGap):
            await core.market([message])
        elif isinstance(message, MarkPrice):
            core.marks[message.symbol] = message.mark_price
            self._send([message])  # the executor checks price bands against it
        elif isinstance(message, ModelChanged):
            await self._use_model(message.version)
            core.events([message])
        elif isinstance(message, LookDone):
            self.looked = message.round
        elif isinstance(message, Reconciled):
            if not self.reconciled and not self.replaying and not self.spec.adopt:
                refuse_unexplained(message, core.state)
            self.reconciled = True
            core.events([message])
        elif record.kind < 50:  # the executor's events
            core.events([message])  # type: ignore[list-item]

    async def _stop(self) -> None:
        """No new entries; the executor's last looks until one asks for nothing more."""
        core = self.core
        assert core is not None
        core.stopping = True
        if self.spec.paper or self.events is None:
            return
        for round_ in range(1, 5):
            before = core.orders_sent()
            self.looked = None
            self._send([LastLook(round_)])
            deadline = asyncio.get_running_loop().time() + LOOK_S
            while self.looked != round_ and asyncio.get_running_loop().time() < deadline:
                self.heartbeat.beat()
                self._send([])
                records = self.events.get_many(256)
                if not records:
                    await wait_async([self.events], 0.2)
                    continue
                await self._take(records)
            if self.looked != round_:
                log.warning("the executor did not finish last look %d in time", round_)
                return
            if core.orders_sent() == before:
                return
        log.warning("the books and the exchange may still differ after 4 looks: check the "
                    "positions and their stops on the exchange")  # fmt: skip

    def _write_summary(self) -> None:
        core = self.core
        if core is None:
            return
        c = core.counts
        summary = {
            "candles": dict(c.candles), "repeats": c.repeats, "gaps": c.gaps,
            "signals": c.signals, "commands": dict(c.commands), "fills": len(c.fills),
            "repeated_fills": c.repeated_fills,
            "closed_trades": c.closed_trades, "virtual_positions": c.virtual_positions,
            "late_candles": core.late_candles, "last_candle_ms": c.last_candle_ms,
            "restarted": self.restarted, "replayed": self.journal.records_read,
            "trades": [t._asdict() for t in c.trades],
            "fill_ids": [[f.symbol, f.trade_id, f.price, f.quantity, f.fee] for f in c.fills],
            "positions": _positions(core),
        }  # fmt: skip
        path = self.spec.run_dir / "brain-summary.json"
        tmp = path.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(summary, default=str))
            tmp.replace(path)


def _positions(core: DecisionCore) -> dict[str, float]:
    book = core.state.book.positions
    return {s: float(book[i]["qty"]) * int(book[i]["side"])
            for i, s in enumerate(core.state.symbols) if int(book[i]["side"])}  # fmt: skip


def _end_training(pool: ProcessPoolExecutor) -> None:
    """A retrain still running at the stop is abandoned (the champion stays): its worker is
    ended, or the interpreter's exit would wait for it."""
    workers = list(getattr(pool, "_processes", {}).values())  # the pool offers no other way
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.terminate()
