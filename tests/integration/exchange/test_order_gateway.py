"""The order gateway against the local exchange and its faults: filters refuse before
anything is sent, an entry sets isolated margin and leverage first, a lost answer (5xx) and a
transient ``-2013`` leave exactly one order, a duplicate id is found rather than placed twice,
an order lost for good is still watched and its late fill reconciled, an entry without a stop
is closed within a second, and during a 418 ban nothing is sent while the stop already on the
exchange still closes the position."""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from slt.adapters.exchange.account_state import AccountState
from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.adapters.exchange.order_filters import SymbolFilters
from slt.adapters.exchange.order_gateway import OrderGateway
from slt.adapters.exchange.user_stream import UserStream
from slt.domain.clock import parse_utc_ms
from slt.engine.messages import (
    CancelOrder,
    CloseRequested,
    Event,
    Notify,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PlaceOrder,
    Reconciled,
)
from tests.conftest import CATMAN_BTC_5M, FILIMONOV_BTC_1M
from tests.support.binance_calls import Wall
from tests.support.local_exchange import ACCOUNT, Running, real_store, serving
from tests.support.minute_tapes import minute_store

START = parse_utc_ms("2024-01-01")
MINUTE_START = parse_utc_ms("2025-06-02")
SYMBOL = "BTCUSDT"


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    store = real_store(tmp_path_factory.mktemp("gateway-store"), [CATMAN_BTC_5M])
    return load_tapes(store, [SYMBOL], START, None)


def inject(ex: Running, **fault: Any) -> None:
    body = json.dumps(fault).encode()
    request = urllib.request.Request(f"{ex.url}/_sim/faults", data=body, method="POST")
    urllib.request.urlopen(request, timeout=10).close()


async def until(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@dataclass
class Session:
    ex: Running
    rest: BinanceRest
    state: AccountState
    gateway: OrderGateway
    stream: UserStream
    engine: list[Event] = field(default_factory=list)
    notes: list[Notify] = field(default_factory=list)

    def of(self, client: str, kind: type) -> list[Event]:
        return [e for e in self.engine if isinstance(e, kind)
                and getattr(e, "client_order_id", None) == client]  # fmt: skip

    def orders_on_exchange(self, client: str) -> int:
        desk = self.ex.exchange.accounts[ACCOUNT.key].desk(SYMBOL)
        return sum(1 for o in desk.orders.values() if o.client_id == client)

    def place(self, *orders: PlaceOrder) -> None:
        self.engine += self.gateway.execute(list(orders))


@asynccontextmanager
async def session(ex: Running, wall: Callable[[], int] | None = None, sleep: Any = None,
                  stream: bool = True, **gateway: Any) -> AsyncIterator[Session]:  # fmt: skip
    """The gateway with the user-data stream feeding the cache and the engine (or, with
    ``stream=False``, alone: only REST can tell it what became of an order)."""
    kw: dict[str, Any] = {}
    if wall is not None:
        kw["wall"] = wall
    if sleep is not None:
        kw["sleep"] = sleep
    async with BinanceRest(ex.url, ACCOUNT.key, ACCOUNT.secret, **kw) as rest:
        info = await rest.load_limits()
        filters = {s["symbol"]: SymbolFilters.from_exchange_info(s) for s in info["symbols"]}
        state = AccountState()
        holder: list[Session] = []

        def events(evs: list[Event]) -> None:
            holder[0].engine += holder[0].gateway.screen(evs)

        def later(evs: list[Event]) -> None:
            holder[0].engine += evs

        gw = OrderGateway(rest, state, filters, later, notify=lambda n: holder[0].notes.append(n),
                          **gateway)  # fmt: skip
        user = UserStream(rest, ex.url.replace("http://", "ws://"), state, [SYMBOL], events,
                          backoff_s=(0.2, 0.5))  # fmt: skip
        s = Session(ex, rest, state, gw, user)
        holder.append(s)
        stop = asyncio.Event()
        task = asyncio.create_task(user.run(stop)) if stream else None
        if task is not None:
            await until(user.connected.is_set, "the user stream")
        try:
            yield s
        finally:
            stop.set()
            await gw.close()
            if task is not None:
                await asyncio.wait_for(task, 10)


def price_now(ex: Running) -> float:
    tape = ex.exchange.tapes[SYMBOL]
    return float(tape.last_price(ex.exchange.clock.history_now()))


def entry(seq: int, qty: float = 0.01, side: int = 1, kind: str = "market",
          price: float = math.nan) -> PlaceOrder:  # fmt: skip
    return PlaceOrder(f"t1-{SYMBOL}-{seq}", SYMBOL, kind, "entry", side, qty, price,  # type: ignore[arg-type]
                      False, leverage=3.0)  # fmt: skip


def stop(seq: int, price: float, side: int = -1) -> PlaceOrder:
    return PlaceOrder(f"t1-{SYMBOL}-{seq}", SYMBOL, "stop_market", "stop", side, 0.0,
                      price, True, close_position=True)  # fmt: skip


def test_filters_refuse_before_sending(tapes: dict[str, SymbolTape]) -> None:
    async def scenario(ex: Running) -> Session:
        async with session(ex, mark_price=lambda _s: price_now(ex)) as s:
            now = price_now(ex)
            s.place(
                entry(1, qty=0.0105),  # off the 0.001 step
                entry(2, qty=0.001),  # 0.001 x ~42,000 is under the 100 USDT minimum
                entry(3, kind="limit", price=now * 1.5),  # above PERCENT_PRICE's band
                entry(4, kind="limit", price=math.nan),
                PlaceOrder("t1-ETHUSDT-5", "ETHUSDT", "market", "entry", 1, 1.0, math.nan, False),
            )
            await s.gateway.drain()
            return s

    with serving(tapes, START, control=True) as ex:
        s = asyncio.run(scenario(ex))
    reasons = [e.reason for e in s.engine if isinstance(e, OrderRejected)]
    assert len(reasons) == 5 and s.gateway.counts.sent == 0
    assert "stepSize" in reasons[0] and "MIN_NOTIONAL" in reasons[1]
    assert "PERCENT_PRICE" in reasons[2] and "PRICE_FILTER" in reasons[3]
    assert "ETHUSDT" in reasons[4]
    assert not any(isinstance(e, OrderSubmitted) for e in s.engine)


def test_max_num_orders_counts_open_and_in_flight_orders(tapes: dict[str, SymbolTape]) -> None:
    async def scenario(ex: Running) -> Session:
        async with session(ex) as s:
            f = s.gateway.filters[SYMBOL]
            s.gateway.filters[SYMBOL] = type(f)(**{**f.__dict__, "max_num_orders": 2})
            low = round(price_now(ex) * 0.9, 1)
            s.place(*(entry(i, kind="limit", price=low) for i in (1, 2, 3)))
            await s.gateway.drain()
            return s

    with serving(tapes, START, control=True) as ex:
        s = asyncio.run(scenario(ex))
        assert s.orders_on_exchange(f"t1-{SYMBOL}-1") == 1
        assert s.orders_on_exchange(f"t1-{SYMBOL}-3") == 0
    rejected = s.of(f"t1-{SYMBOL}-3", OrderRejected)
    assert len(rejected) == 1 and "MAX_NUM_ORDERS" in rejected[0].reason  # type: ignore[attr-defined]


def test_an_entry_sets_isolated_margin_and_leverage_then_fills_once(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[Session, Any]:
        async with session(ex) as s:
            s.place(entry(1))
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-1", OrderFilled)), "the fill")
            config = (await s.rest.signed("GET", "/fapi/v1/symbolConfig",
                                          {"symbol": SYMBOL})).body  # fmt: skip
            return s, config

    with serving(tapes, START, control=True) as ex:
        s, config = asyncio.run(scenario(ex))
    assert config[0]["marginType"] == "ISOLATED" and int(config[0]["leverage"]) == 3
    client = f"t1-{SYMBOL}-1"
    kinds = [type(e) for e in s.engine if getattr(e, "client_order_id", "") == client]
    assert kinds[0] is OrderSubmitted and kinds.count(OrderFilled) >= 1
    assert sum(e.quantity for e in s.of(client, OrderFilled)) == pytest.approx(0.01)  # type: ignore[attr-defined]


def test_a_lost_answer_leaves_exactly_one_order_the_stream_reports(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> Session:
        async with session(ex) as s:
            inject(ex, kind="unknown_outcome", status=503)
            s.place(entry(1))  # accepted, answered 503: not resent, found
            await s.gateway.drain()
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-1", OrderFilled)), "the fill")
            return s

    with serving(tapes, START, control=True) as ex:
        s = asyncio.run(scenario(ex))
        assert s.orders_on_exchange(f"t1-{SYMBOL}-1") == 1
    c = s.gateway.counts
    assert c.sent == 1 and c.unknown_outcomes == 1 and c.found_after_unknown == 1
    assert not any(isinstance(e, OrderRejected) for e in s.engine)
    assert len(s.of(f"t1-{SYMBOL}-1", OrderFilled)) == 1


def test_a_transient_not_found_is_asked_again_not_trusted(tapes: dict[str, SymbolTape]) -> None:
    async def scenario(ex: Running) -> Session:
        async with session(ex, stream=False, not_found_delay_s=0.3) as s:
            inject(ex, kind="transient_unknown_order", seconds=0.5)
            inject(ex, kind="unknown_outcome", status=502)
            low = round(price_now(ex) * 0.9, 1)
            s.place(entry(1, kind="limit", price=low))  # answer lost, then "forgotten"
            await s.gateway.drain()
            s.place(entry(2, kind="limit", price=low))  # "forgotten" when it is cancelled
            s.engine += s.gateway.execute([CancelOrder(f"t1-{SYMBOL}-2", SYMBOL)])
            await s.gateway.drain()
            return s

    with serving(tapes, START, control=True) as ex:
        s = asyncio.run(scenario(ex))
        desk = ex.exchange.accounts[ACCOUNT.key].desk(SYMBOL)
        assert s.orders_on_exchange(f"t1-{SYMBOL}-1") == 1
        assert [o.client_id for o in desk.open_orders()] == [f"t1-{SYMBOL}-1"]  # 2 cancelled
    c = s.gateway.counts
    assert c.unknown_outcomes == 1 and c.found_after_unknown == 1 and c.lost == 0
    assert c.not_found_answers >= 2  # once for the query, once for the cancel
    assert not any(isinstance(e, OrderRejected | OrderCancelRejected) for e in s.engine)


def test_a_duplicate_id_is_found_not_placed_twice(tapes: dict[str, SymbolTape]) -> None:
    async def scenario(ex: Running) -> Session:
        async with session(ex) as s:
            low = round(price_now(ex) * 0.9, 1)
            s.place(entry(1, kind="limit", price=low))
            await s.gateway.drain()
            s.place(entry(1, kind="limit", price=low))  # the same id again: -4116
            await s.gateway.drain()
            return s

    with serving(tapes, START, control=True) as ex:
        s = asyncio.run(scenario(ex))
        assert s.orders_on_exchange(f"t1-{SYMBOL}-1") == 1
    assert s.gateway.counts.found_after_unknown == 1
    assert not any(isinstance(e, OrderRejected) for e in s.engine)


def test_a_lost_order_is_watched_and_its_late_fill_reconciled(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[Session, list[Event]]:
        async with session(ex, stream=False, not_found_limit=2, not_found_delay_s=0.1,
                           lost_poll_s=0.3) as s:  # fmt: skip
            inject(ex, kind="transient_unknown_order", seconds=2.0)
            inject(ex, kind="unknown_outcome", status=503)
            s.place(entry(1))
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-1", OrderRejected)), "lost")
            await until(lambda: any(isinstance(e, Reconciled) for e in s.engine),
                        "the reconciliation after the late fill")  # fmt: skip
            late = OrderFilled(f"t1-{SYMBOL}-1", SYMBOL, 7, 0, 1.0, 0.01, 0.0)
            passed = s.gateway.screen([late])  # the stream's copy of the fill, if it comes
            return s, passed

    with serving(tapes, START, control=True) as ex:
        s, passed = asyncio.run(scenario(ex))
        assert s.orders_on_exchange(f"t1-{SYMBOL}-1") == 1  # never resent
    client = f"t1-{SYMBOL}-1"
    assert "lost" in s.of(client, OrderRejected)[0].reason  # type: ignore[attr-defined]
    assert passed == []  # held back: the engine has it as rejected
    reconciled = next(e for e in s.engine if isinstance(e, Reconciled))
    assert [(p.symbol, p.side, p.quantity) for p in reconciled.positions] == [(SYMBOL, 1, 0.01)]
    assert s.gateway.counts.lost == 1 and s.gateway.counts.lost_found_later == 1
    assert any("still watched" in n.text for n in s.notes)


def test_an_order_the_stream_reported_is_never_declared_lost(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> Session:
        async with session(ex, not_found_limit=2, not_found_delay_s=0.2) as s:
            inject(ex, kind="transient_unknown_order", seconds=5.0)
            inject(ex, kind="unknown_outcome", status=503)
            s.place(entry(1))  # REST "forgets" it, the stream has its fill
            await s.gateway.drain()
            return s

    with serving(tapes, START, control=True) as ex:
        s = asyncio.run(scenario(ex))
    assert s.gateway.counts.lost == 0 and s.gateway.counts.found_after_unknown == 1
    assert not any(isinstance(e, OrderRejected) for e in s.engine)


def test_an_entry_without_a_stop_is_closed_within_a_second(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[Session, int, float]:
        async with session(ex, protect_within_s=1.0) as s:
            s.place(entry(1), stop(2, round(price_now(ex) * 0.95, 1)))
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-2", OrderAccepted)), "the stop")
            await asyncio.sleep(1.5)
            closes_while_protected = sum(isinstance(e, CloseRequested) for e in s.engine)
            s.engine += s.gateway.execute([CancelOrder(f"t1-{SYMBOL}-2", SYMBOL)])
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-2", OrderCanceled)), "the cancel")
            s.place(entry(3))  # adds to a position no stop guards any more
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-3", OrderFilled)), "the second fill")
            filled = time.monotonic()
            await until(lambda: any(isinstance(e, CloseRequested) for e in s.engine), "close")
            return s, closes_while_protected, time.monotonic() - filled

    with serving(tapes, START, control=True) as ex:
        s, closes_while_protected, waited = asyncio.run(scenario(ex))
    assert closes_while_protected == 0
    closes = [e for e in s.engine if isinstance(e, CloseRequested)]
    assert closes == [CloseRequested(SYMBOL, "emergency_close")]
    assert s.gateway.counts.protective_closes == 1
    assert waited < 1.5 and any("no protective stop" in n.text for n in s.notes)


def test_stops_go_to_the_algo_api_and_cancel_there(tapes: dict[str, SymbolTape]) -> None:
    async def scenario(ex: Running) -> tuple[Session, Any]:
        async with session(ex) as s:
            s.place(entry(1), stop(2, round(price_now(ex) * 0.95, 1)))
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-2", OrderAccepted)), "the stop")
            algo = (await s.rest.signed("GET", "/fapi/v1/algoOrder", {
                "symbol": SYMBOL, "clientAlgoId": f"t1-{SYMBOL}-2"})).body  # fmt: skip
            s.engine += s.gateway.execute([CancelOrder(f"t1-{SYMBOL}-2", SYMBOL)])
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-2", OrderCanceled)), "the cancel")
            return s, algo

    with serving(tapes, START, control=True) as ex:
        s, algo = asyncio.run(scenario(ex))
    assert algo["orderType"] == "STOP_MARKET" and algo["closePosition"] is True
    assert not s.state.algos


def test_during_a_ban_nothing_is_sent_and_the_stop_on_the_exchange_still_protects(
    tmp_path: Any,
) -> None:
    store = minute_store(tmp_path, {SYMBOL: (FILIMONOV_BTC_1M, 0)})  # 1m: a stop fires in 2 min
    tapes = load_tapes(store, [SYMBOL], MINUTE_START, None)
    wall = Wall(parse_utc_ms("2026-12-07") + 13 * 3_600_000)
    waits: list[float] = []

    async def sleeper(seconds: float) -> None:  # the REST client's waits move the wall
        waits.append(seconds)
        wall.advance(round(seconds * 1000))
        await asyncio.sleep(0)

    async def scenario(ex: Running) -> tuple[Session, int, int]:
        wall.advance(210_000)  # 00:03:30: the gapped 00:04 candle opens and closes in the ban
        async with session(ex, wall=wall, sleep=sleeper) as s:
            s.place(entry(1), stop(2, round(price_now(ex) * 0.99, 1)))
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-2", OrderAccepted)), "the stop")
            inject(ex, kind="price_gap", symbol=SYMBOL, pct=-5.0)
            inject(ex, kind="rate_limit", status=418, count=1)
            banned_at = wall.now
            s.place(entry(3, kind="limit", price=round(price_now(ex) * 0.9, 1)))
            await s.gateway.drain()  # 418, held by the governor until the ban ended, resent
            await until(lambda: bool(s.of(f"t1-{SYMBOL}-2", OrderFilled)), "the stop's fill")
            await until(lambda: s.state.position(SYMBOL) is None, "the position to close")
            return s, banned_at, ex.exchange.last_request_wall_ms

    with serving(tapes, MINUTE_START, wall=wall, control=True) as ex:
        s, banned_at, last = asyncio.run(scenario(ex))
        assert s.orders_on_exchange(f"t1-{SYMBOL}-3") == 1  # refused unread, then sent once
    assert any(w >= 119 for w in waits)  # it waited the ban out
    assert last >= banned_at + 120_000  # nothing reached the exchange during the ban
    stop_fill = s.of(f"t1-{SYMBOL}-2", OrderFilled)[0]
    assert stop_fill.time_ms <= banned_at + 120_000  # type: ignore[attr-defined]


def test_a_cancel_the_stream_missed_reaches_the_engine_after_the_resync(
    tapes: dict[str, SymbolTape],
) -> None:
    """The order ended while nobody listened (here cancelled by hand with the stream down):
    the resync asks the orders the exchange no longer lists and tells the engine, so no
    order lingers open in the engine's books; an order still open is left alone."""

    async def scenario(ex: Running) -> tuple[Session, list[Event], int]:
        async with session(ex, stream=False) as s:
            s.stream.after_resync = s.gateway.catch_up
            low = round(price_now(ex) * 0.8, 1)
            s.place(entry(1, kind="limit", price=low), entry(2, kind="limit", price=low))
            await until(lambda: all(t.phase == "live" for t in s.gateway.orders.values()),
                        "both placed")  # fmt: skip
            await s.stream.resync()
            quiet = list(s.engine)
            by_hand = {"symbol": SYMBOL, "origClientOrderId": f"t1-{SYMBOL}-1"}
            await s.rest.signed("DELETE", "/fapi/v1/order", by_hand)
            await s.stream.resync()
            await s.stream.resync()  # once told, never again
            return s, quiet, s.gateway.counts.caught_up

    with serving(tapes, START, control=True) as ex:
        s, quiet, caught_up = asyncio.run(scenario(ex))
    assert not [e for e in quiet if isinstance(e, OrderCanceled)]
    assert s.of(f"t1-{SYMBOL}-1", OrderCanceled) == [OrderCanceled(f"t1-{SYMBOL}-1", SYMBOL)]
    assert not s.of(f"t1-{SYMBOL}-2", OrderCanceled) and caught_up == 1
