"""The executor: the order gateway, the account cache and its user-data stream, and the
reconciliation, with the brain at the other end of two rings (commands in, events out).

It reconciles before it sends anything. At every start it reads the exchange and sends the
brain ``Reconciled`` (with its in-flight orders counted as listed). A restarted executor
first turns the orders the brain asked for while it was down into ``OrderRejected`` (stale
decisions, never sent), reads the fills it missed (those after its fill mark, the trade ids it
had handed on, kept in a file beside the journal), then reconciles. Cancels waiting in the
ring are still sent: a cancel is safe to repeat.

The brain's ``Hello`` (it restarted) is answered with ``Reconciled``; its ``LastLook`` rounds
(it is stopping) with the clean stop of a live session: entries withdrawn, market orders
settled, missed fills read, ``Reconciled``, then ``LookDone``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slt.adapters.exchange.account_state import AccountState
from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.market_stream import MarkPrice
from slt.adapters.exchange.order_filters import SymbolFilters
from slt.adapters.exchange.order_gateway import OrderGateway
from slt.adapters.exchange.user_stream import UserStream
from slt.engine.messages import (
    CancelOrder,
    Command,
    Event,
    Notify,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
)
from slt.errors import SltError
from slt.runtime.event_loop import run_async
from slt.runtime.exchange_setup import listed
from slt.runtime.ring import Ring, wait_async
from slt.runtime.ring_records import Hello, LastLook, LookDone, Message, decode, encode
from slt.runtime.supervisor import Heartbeat
from slt.runtime.trading_spec import TradingSpec

log = logging.getLogger(__name__)


def executor_main(heartbeat: Heartbeat, spec: TradingSpec) -> None:
    run_async(Executor(heartbeat, spec).run())


class FillMark:
    """Per symbol, the newest trade id handed to the brain; a file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        self.restarted = path.exists()

    def note(self, fills: Sequence[OrderFilled]) -> None:
        changed = False
        for f in fills:
            if f.trade_id > self.ids.get(f.symbol, -1):
                self.ids[f.symbol] = f.trade_id
                changed = True
        if changed or not self.path.exists():
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.ids))
            os.replace(tmp, self.path)


class Executor:
    def __init__(self, heartbeat: Heartbeat, spec: TradingSpec) -> None:
        self.heartbeat, self.spec = heartbeat, spec
        self.commands = Ring.attach(spec.ring_name("commands"))
        self.events = Ring.attach(spec.ring_name("events"))
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        self.mark = FillMark(spec.run_dir / "executor-fills.json")
        self.marks: dict[str, float] = {}
        self.account = AccountState()
        self._waiting: deque[Message] = deque()  # the events ring was full: in order, next
        self.gateway: OrderGateway | None = None
        self.user: UserStream | None = None

    # -- to the brain ------------------------------------------------------------------

    def send(self, messages: Sequence[Message]) -> None:
        self._waiting.extend(messages)
        self._flush()
        self.mark.note([m for m in messages if isinstance(m, OrderFilled)])

    def _flush(self) -> None:
        while self._waiting:
            record = encode(self._waiting[0], self.events.payload_size)
            if not self.events.put(record.kind, record.payload):
                return
            self._waiting.popleft()

    def _notice(self, notice: Notify) -> None:
        log.warning("%s", notice.text)

    # -- start-up ----------------------------------------------------------------------

    async def _backlog(self) -> list[Command]:
        """What the brain asked while no executor ran: orders are answered as not sent (the
        decisions are stale), cancels are kept to send once reconciled."""
        kept: list[Command] = []
        rejected: list[Event] = []
        while (record := self.commands.get()) is not None:
            message = decode(record)
            if isinstance(message, PlaceOrder):
                rejected.append(OrderRejected(message.client_order_id, message.symbol,
                                              "not sent: the executor restarted"))  # fmt: skip
            elif isinstance(message, CancelOrder):
                kept.append(message)
            elif isinstance(message, MarkPrice):
                self.marks[message.symbol] = message.mark_price
        self.send(rejected)
        return kept

    async def _seen_before_restart(self, rest: BinanceRest) -> None:
        for symbol in self.spec.symbols:
            mark = self.mark.ids.get(symbol)
            if mark is None:
                continue
            trades = (await rest.signed("GET", "/fapi/v1/userTrades", {"symbol": symbol},
                                        weight=5)).body  # fmt: skip
            for t in trades:
                if int(t["id"]) <= mark:
                    self.account.mark_trade(symbol, int(t["id"]))

    async def run(self) -> None:
        spec = self.spec
        async with BinanceRest(spec.rest_url, spec.keys.key, spec.keys.secret) as rest:
            await rest.sync_clock()
            entries = await listed(rest, spec.symbols)
            filters = {s: SymbolFilters.from_exchange_info(entries[s]) for s in spec.symbols}
            gateway = OrderGateway(rest, self.account, filters, self.send, notify=self._notice,
                                   mark_price=self.marks.get, **spec.gateway_options)  # fmt: skip
            user = UserStream(rest, spec.ws_url, self.account, list(spec.symbols),
                              lambda evs: self.send(gateway.screen(evs)),
                              after_resync=gateway.catch_up, **spec.user_options)  # fmt: skip
            self.gateway, self.user = gateway, user
            cancels = await self._backlog()
            if self.mark.restarted:
                await self._seen_before_restart(rest)
            self.mark.note([])
            stop = asyncio.Event()
            stream = asyncio.create_task(user.run(stop))
            try:
                await asyncio.wait_for(user.connected.wait(), 30)
                if self.mark.restarted:
                    await user.resync()  # the fills made while no executor listened
                self.send([await gateway.reconciliation()])
                self.send(gateway.execute(cancels))
                await self._serve(stream)
            finally:
                stop.set()
                await gateway.drain()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(stream, 10)
                await gateway.close()
                self._flush()

    async def _serve(self, stream: asyncio.Task[None]) -> None:
        assert self.gateway is not None
        while not self.heartbeat.stop_requested:
            self.heartbeat.beat()
            if stream.done():
                stream.result()  # the user-data stream ended by an error: let it be seen
                raise SltError("the user-data stream stopped")
            self._flush()
            if not await wait_async([self.commands], 0.2):
                continue
            batch: list[Command] = []
            for record in self.commands.get_many(256):
                message = decode(record)
                if isinstance(message, PlaceOrder | CancelOrder):
                    batch.append(message)
                    continue
                if batch:
                    self.send(self.gateway.execute(batch))
                    batch = []
                await self._control(message)
            if batch:
                self.send(self.gateway.execute(batch))

    async def _control(self, message: Any) -> None:
        assert self.gateway is not None and self.user is not None
        if isinstance(message, MarkPrice):
            self.marks[message.symbol] = message.mark_price
        elif isinstance(message, Hello):
            self.send([await self.gateway.reconciliation()])
        elif isinstance(message, LastLook):
            await self._last_look(message.round)

    async def _last_look(self, round_: int) -> None:
        """One round of the clean stop (the brain counts what each round asks for)."""
        assert self.gateway is not None and self.user is not None
        if round_ == 1:
            with contextlib.suppress(SltError):
                await self.gateway.withdraw_entries()
        try:
            await self.gateway.settle_market_orders()
            await self.user.resync_settled()
            self.send([await self.gateway.reconciliation()])
            await self.gateway.drain()
        except SltError as exc:
            log.warning("a last look at the exchange failed (%s)", exc)
        self.send([LookDone(round_)])
