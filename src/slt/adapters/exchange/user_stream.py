"""The user-data stream client (issue 14 item 2): a listenKey created and kept alive, the
private connection read into the account cache, renewed on ``listenKeyExpired`` (whose ``E``
may be a number or a string), reconnected with jittered backoff, and after every reconnect
(only then) a REST resync of what the stream may have missed: positions, balances, open
orders and algo orders, and the fills made while it was down, each reaching the engine once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from slt.adapters.exchange.account_state import AccountState
from slt.adapters.exchange.binance_rest import BinanceRest
from slt.engine.messages import Event, FillStatus, OrderFilled
from slt.errors import ExchangeError, ExchangeRejected

log = logging.getLogger(__name__)

LAG_WARN_MS = 5_000
LAG_WARN_EVERY_MS = 60_000
KEEPALIVE_S = 1_800.0  # 30 minutes: half the key's hour, as peers keep it (reference §7.1)
CONDITIONAL = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET")


class UserStream:
    """Runs until ``stop`` is set; ``on_events`` gets the engine events of every change."""

    def __init__(
        self,
        rest: BinanceRest,
        ws_base_url: str,
        state: AccountState,
        symbols: Sequence[str],
        on_events: Callable[[list[Event]], None],
        *,
        keepalive_s: float = KEEPALIVE_S,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        rng: random.Random | None = None,
        after_resync: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.rest, self.state, self.symbols = rest, state, list(symbols)
        self.ws_base_url = ws_base_url.rstrip("/")
        self.on_events = on_events
        self.keepalive_s, self.backoff_s = keepalive_s, backoff_s
        self._rng = rng or random.Random()
        self.after_resync = after_resync  # the order gateway's catch-up, in a live session
        self.connections = 0  # successful connects
        self.renewals = 0  # listenKeys renewed after expiry
        self.resyncs = 0
        self.unresolved = 0  # fills the last resync found but could not yet place
        self.connected = asyncio.Event()
        self.lags_ms: deque[int] = deque(maxlen=1_000)  # arrival - E, on the server's clock
        self._lag_warned_ms = -LAG_WARN_EVERY_MS

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                try:
                    key = await self._listen_key()
                    url = f"{self.ws_base_url}/private/ws?listenKey={key}"
                    async with session.ws_connect(url, heartbeat=None) as ws:
                        self.connections += 1
                        if self.connections > 1:
                            await self.resync()
                        failures = 0
                        self.connected.set()
                        await self._read(ws, key, stop)
                except (aiohttp.ClientError, ExchangeError, OSError, TimeoutError) as exc:
                    log.warning("user-data stream: %s; reconnecting", type(exc).__name__)
                self.connected.clear()
                if stop.is_set():
                    break
                failures += 1
                await self._backoff(failures, stop)

    async def _listen_key(self) -> str:
        answer = await self.rest.api_key_only("POST", "/fapi/v1/listenKey")
        return str(answer.body["listenKey"])

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, key: str,
                    stop: asyncio.Event) -> None:  # fmt: skip
        keepalive = asyncio.create_task(self._keep_alive(key))
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                receiving = asyncio.create_task(ws.receive())
                done, _ = await asyncio.wait({receiving, stopping, keepalive},
                                             return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if receiving not in done:
                    receiving.cancel()
                    return  # stopping, or the key could not be kept alive: renew it
                msg = receiving.result()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return  # closed or dropped: reconnect
                event = json.loads(msg.data)
                if isinstance(event, dict) and "stream" in event and "data" in event:
                    event = event["data"]
                if not isinstance(event, dict):
                    continue
                self._note_lag(event)
                if event.get("e") == "listenKeyExpired":  # E may come as a string
                    self.renewals += 1
                    log.info("user-data stream: listenKey expired at %s; renewing",
                             int(str(event.get("E", 0))))  # fmt: skip
                    return
                self.on_events(self.state.apply(event))
        finally:
            keepalive.cancel()
            stopping.cancel()

    def _note_lag(self, event: dict[str, Any]) -> None:
        """How late events arrive (item 6): our wall clock moved to the server's by the
        measured offset, minus the event's ``E``. A lag past ``LAG_WARN_MS`` is logged."""
        stamp = str(event.get("E", ""))
        if not stamp.isdigit():
            return
        lag = self.rest.wall_ms() + self.rest.offset_ms - int(stamp)
        self.lags_ms.append(lag)
        now = self.rest.wall_ms()
        if lag > LAG_WARN_MS and now - self._lag_warned_ms >= LAG_WARN_EVERY_MS:
            self._lag_warned_ms = now  # once a minute: a slow link is one problem, not a flood
            log.warning("user-data stream: %s arrived %d ms after it happened", event.get("e"), lag)

    def lag_report(self) -> dict[str, int]:
        """Median, p99 and max lag of the last 1,000 events (ms)."""
        if not self.lags_ms:
            return {}
        ordered = sorted(self.lags_ms)
        return {"median": ordered[len(ordered) // 2],
                "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
                "max": ordered[-1], "events": len(ordered)}  # fmt: skip

    async def _keep_alive(self, key: str) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            await self.rest.api_key_only("PUT", "/fapi/v1/listenKey", {"listenKey": key})

    async def _backoff(self, failures: int, stop: asyncio.Event) -> None:
        low, high = self.backoff_s
        delay = min(high, low * 2 ** (failures - 1)) * (0.5 + self._rng.random() / 2)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    async def resync(self) -> None:
        """What the stream may have missed while it was down: the fills first (each once,
        under the engine's client ids), then the account as REST says it is now."""
        self.resyncs += 1
        self.unresolved = 0
        events: list[Event] = []
        for symbol in self.symbols:
            events += await self._missed_fills(symbol)
        account = (await self.rest.signed("GET", "/fapi/v3/account", weight=5)).body
        positions = (await self.rest.signed("GET", "/fapi/v3/positionRisk", weight=5)).body
        orders = (await self.rest.signed("GET", "/fapi/v1/openOrders", weight=40)).body
        algos = (await self.rest.signed("GET", "/fapi/v1/openAlgoOrders", weight=40)).body
        self.state.load_rest(account, positions, orders, algos)
        self.on_events(events)
        if self.after_resync is not None:
            await self.after_resync()

    async def resync_settled(self, tries: int = 5, wait_s: float = 0.5) -> None:
        """``resync``, asked again (up to ``tries`` times) while a fill's order is one
        Binance "forgot" for a moment: a clean stop must see every fill."""
        await self.resync()
        for _ in range(tries):
            if not self.unresolved:
                return
            await asyncio.sleep(wait_s)
            await self.resync()

    async def _missed_fills(self, symbol: str) -> list[Event]:
        trades = (await self.rest.signed("GET", "/fapi/v1/userTrades",
                                         {"symbol": symbol}, weight=5)).body  # fmt: skip
        missed = [t for t in trades if not self.state.seen_trade(symbol, int(t["id"]))]
        if not missed:
            return []
        algos = (await self.rest.signed("GET", "/fapi/v1/allAlgoOrders",
                                        {"symbol": symbol}, weight=5)).body  # fmt: skip
        by_actual = {int(a["actualOrderId"]): a["clientAlgoId"] for a in algos
                     if str(a.get("actualOrderId") or "").isdigit()}  # fmt: skip
        out: list[Event] = []
        for t in missed:
            order = await self._order(symbol, int(t["orderId"]))
            if order is None:  # "forgotten" for now: not marked seen, the next resync asks
                self.unresolved += 1
                log.warning("user-data resync: %s order %s of trade %s not found yet",
                            symbol, t["orderId"], t["id"])  # fmt: skip
                continue
            client = by_actual.get(int(t["orderId"]), order["clientOrderId"])
            status: FillStatus = "filled" if order["status"] == "FILLED" else "partially_filled"
            self.state.mark_trade(symbol, int(t["id"]))
            out.append(OrderFilled(client, symbol, int(t["id"]), int(t["time"]),
                                   float(t["price"]), float(t["qty"]),
                                   float(t["commission"]), status))  # fmt: skip
        return out

    async def _order(self, symbol: str, order_id: int, tries: int = 4) -> dict[str, Any] | None:
        """An order by id; Binance may "forget" a fresh one for a while (``-2013``), so it
        is asked again a few times before giving up for this resync."""
        for attempt in range(tries):
            try:
                query = {"symbol": symbol, "orderId": order_id}
                answer = await self.rest.signed("GET", "/fapi/v1/order", query)
                body: dict[str, Any] = answer.body
                return body
            except ExchangeRejected as exc:
                if exc.code not in (-2013, -2011):
                    raise
                await asyncio.sleep(0.25 * 2**attempt)
        return None
