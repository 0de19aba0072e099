"""A trading session under a storm of faults (issue 14's faults together, the bounded CI
version of issue 15's chaos run, in one process): 4 symbols of real 1m candles replayed at
``--speed 200`` (a market minute in 0.3 s, so reconnects and Retry-After holds cost market
time in proportion) for ``SLT_CHAOS_HOURS`` hours (1 in CI) while the local exchange drops
market and user-data connections, answers
orders 503 after accepting them, forgets fresh orders, sends 429 bursts, expires listenKeys
and restarts. Afterwards:

- no order was placed twice (every client id once on the exchange);
- every open position has its protective stop on the exchange;
- every fill the engine applied is the exchange's, and every exchange fill reached the
  engine (or belongs to an order declared lost, which was reconciled instead);
- the engine's positions are the exchange's;
and the test prints each figure.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from slt.domain.strategies.registry import builtin_strategy
from slt.engine.config import EngineConfig
from slt.runtime.live_session import LiveSession
from tests.support.chaos import storm
from tests.support.day_replay import exchange_fills
from tests.support.local_exchange import ACCOUNT, serving
from tests.support.minute_tapes import many_symbols, minute_store

pytestmark = pytest.mark.shared_data

START = parse_utc_ms("2025-06-16")
HOURS = float(os.environ.get("SLT_CHAOS_HOURS", "1"))
SPEED = 200.0
MINUTE = 60_000


def test_a_session_survives_a_storm_of_faults_without_duplicates_or_naked_positions(
    tmp_path: Path,
) -> None:
    symbols = many_symbols(4)
    end = START + int(HOURS * 3_600_000)
    tapes = load_tapes(minute_store(tmp_path, symbols), list(symbols), START, end)
    plan = storm(START, HOURS)

    async def scenario(url: str) -> tuple[LiveSession, dict[str, Any], set[Any]]:
        async with BinanceRest(url, ACCOUNT.key, ACCOUNT.secret) as rest:
            session = LiveSession(
                rest, url.replace("http://", "ws://"), list(symbols), "1m",
                builtin_strategy("ema_cross"), EngineConfig(), run_id="chaos",
                warmup_candles=60, until_ms=end - 10 * MINUTE,  # the clock keeps moving past it
                market_options={"backoff_s": (0.1, 0.5), "silence_s": 5.0},
                gateway_options={"not_found_delay_s": 0.2, "lost_poll_s": 0.5},
                user_options={"backoff_s": (0.1, 0.5)},
            )  # fmt: skip
            await asyncio.wait_for(session.run(asyncio.Event()), 180)
            ended = await session.market_now()  # the market goes on: a stop may fire later
            await asyncio.sleep(1.0)  # late answers of the last moments
            fills = await exchange_fills(rest, list(symbols), until_ms=ended)
            return session, rest.governor.summary(), fills

    with serving(tapes, START, speed=SPEED, fault_plan=plan) as ex:
        session, weight, listed = asyncio.run(scenario(ex.url))
        account = ex.exchange.accounts[ACCOUNT.key]
        applied = len(ex.exchange.faults.applied)
        placed: list[str] = []
        naked = []
        positions = {}
        owner: dict[tuple[str, int], str] = {}  # (symbol, trade id) -> the bot's client id
        for symbol in symbols:
            desk = account.desk(symbol)
            by_actual = {a.actual_order_id: a.client_algo_id for a in desk.algos.values()}
            for t in desk.trades:
                order = desk.orders.get(t.order_id)
                owner[(symbol, t.trade_id)] = by_actual.get(
                    t.order_id, order.client_id if order else "?"
                )
            placed += [o.client_id for o in desk.orders.values()
                       if not o.client_id.startswith("autoclose")]  # fmt: skip
            placed += [a.client_algo_id for a in desk.algos.values()]
            if desk.side:
                positions[symbol] = desk.amt
                if not any(a.order_type == "STOP_MARKET" for a in desk.open_algos()):
                    naked.append(symbol)

    gw, market, user = session.gateway, session.market, session.user
    assert gw is not None and market is not None and user is not None
    engine_fills = {(f.symbol, f.trade_id, f.price, f.quantity, f.fee)
                    for f in session.counts.fills}  # fmt: skip
    lost = {c for c, t in gw.orders.items() if t.phase == "lost"}
    figures = {
        "faults applied": applied, "market drops": market.drops,
        "market silent reconnects": market.silent_reconnects,
        "user stream connections": user.connections, "listenKey renewals": user.renewals,
        "resyncs": user.resyncs, "orders placed": len(placed),
        "duplicate client ids": len(placed) - len(set(placed)),
        "unknown outcomes": gw.counts.unknown_outcomes,
        "found after unknown": gw.counts.found_after_unknown,
        "not-found answers": gw.counts.not_found_answers, "lost": len(lost),
        "engine fills": len(engine_fills), "exchange fills": len(listed),
        "back-filled klines requests": market.rest_kline_requests_backfill,
        "gaps": session.counts.gaps, "open positions": len(positions), "naked": naked,
        "REST": weight,
    }  # fmt: skip
    logging.getLogger(__name__).warning("chaos figures: %s", figures)

    assert applied >= 30 * HOURS and market.drops >= 8 * HOURS and user.connections >= 3 * HOURS
    assert gw.counts.unknown_outcomes >= 1 and user.renewals >= 1
    assert len(placed) == len(set(placed)), "an order was placed twice"
    notes = [n.text for n in session.counts.notices if n.symbol in naked][-8:]
    assert naked == [], f"positions without a stop: {naked}; last notices: {notes}"
    assert len(engine_fills) == len(session.counts.fills)  # none applied twice
    assert engine_fills <= listed  # each the exchange's, with its price, quantity and fee
    missing = {f for f in listed - engine_fills if owner[(f[0], f[1])] not in lost}
    assert not missing, f"exchange fills the engine never saw: {sorted(missing)[:5]}"
    state = session.state
    assert state is not None
    book = state.book.positions
    books = {s: float(book[i]["qty"]) * int(book[i]["side"])
             for i, s in enumerate(state.symbols) if int(book[i]["side"])}  # fmt: skip
    assert books.keys() == positions.keys()
    for symbol, amount in books.items():
        assert amount == pytest.approx(positions[symbol], rel=1e-9)
