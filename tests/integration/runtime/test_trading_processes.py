"""``slt live`` as three processes (feed, brain, executor) under the supervisor, against the
local exchange replaying real 1m candles at ``--speed max``: what the brain applied is what
the exchange did, with and without ``kill -9`` of each process at random moments."""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slt.adapters.exchange.local.faults import Scheduled
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from slt.runtime.supervisor import ChildEvent, Supervisor, Timings
from slt.runtime.trading_runtime import RuntimeResult, run_trading
from slt.runtime.trading_spec import Keys, TradingSpec
from tests.support.local_exchange import ACCOUNT, Running, serving
from tests.support.minute_tapes import many_symbols, minute_store

pytestmark = pytest.mark.shared_data

START = parse_utc_ms("2025-06-16")
MINUTE = 60_000
HOURS = float(os.environ.get("SLT_PROCESS_HOURS", "2"))
KILL_HOURS = float(os.environ.get("SLT_KILL_HOURS", "6"))  # long enough for six kills
TIMINGS = Timings(startup_grace_s=90, stuck_after_s=30, stop_grace_s=40, poll_interval_s=0.1,
                  crashes_before_backoff=100)  # fmt: skip


def spec_for(ex: Running, tmp: Path, symbols: list[str], end: int, run_id: str) -> TradingSpec:
    return TradingSpec(
        "live", tuple(symbols), "1m", run_id, ex.url, ex.url.replace("http://", "ws://"),
        str(tmp / "runs" / run_id), Keys(ACCOUNT.key, ACCOUNT.secret), strategy="ema_cross",
        warmup_candles=60, until_ms=end - MINUTE,
        market_options={"backoff_s": (0.2, 1.0)},
        gateway_options={"not_found_delay_s": 0.2}, user_options={"backoff_s": (0.2, 1.0)},
    )  # fmt: skip


def exchange_view(ex: Running, symbols: list[str]) -> dict[str, Any]:
    account = ex.exchange.accounts[ACCOUNT.key]
    fills, placed, positions, naked = set(), [], {}, []
    for symbol in symbols:
        desk = account.desk(symbol)
        fills |= {(symbol, t.trade_id) for t in desk.trades}
        placed += [o.client_id for o in desk.orders.values()
                   if not o.client_id.startswith("autoclose")]  # fmt: skip
        placed += [a.client_algo_id for a in desk.algos.values()]
        if desk.side:
            positions[symbol] = desk.amt * 1.0
            if not any(a.order_type == "STOP_MARKET" for a in desk.open_algos()):
                naked.append(symbol)
    return {"fills": fills, "placed": placed, "positions": positions, "naked": naked,
            "faults": len(ex.exchange.faults.applied)}  # fmt: skip


def run_live(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, kills: int, hours: float, *,
    faults: list[Scheduled] | None = None, database_url: str | None = None,
    during: Callable[[], None] | None = None,
) -> tuple[RuntimeResult, dict[str, Any], list[str]]:  # fmt: skip
    """``during``: run in a thread once the children are up (a database restart)."""
    monkeypatch.setenv("SLT_DATA_DIR", str(tmp / "data"))
    monkeypatch.setenv("SLT_DB_AUTO_MIGRATE", "true")
    if database_url is None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("DATABASE_URL", database_url)
    symbols = many_symbols(4)
    end = START + int(hours * 3_600_000)
    tapes = load_tapes(minute_store(tmp, symbols), list(symbols), START, end)
    killed: list[str] = []
    events: list[ChildEvent] = []

    def killer(supervisor: Supervisor) -> None:
        rng = random.Random(7)
        plan = [name for name in ("feed", "brain", "executor") for _ in range(kills)]
        rng.shuffle(plan)
        time.sleep(8)  # past the children's start-up (numba compiles, warm-up)
        for name in plan:
            time.sleep(rng.uniform(1.0, 3.0))
            pid = supervisor.pids().get(name)
            if pid is None or supervisor._stop_reason is not None:
                continue
            os.kill(pid, signal.SIGKILL)
            killed.append(name)

    def ready(supervisor: Supervisor) -> None:
        if kills:
            threading.Thread(target=killer, args=(supervisor,), daemon=True).start()
        if during is not None:
            threading.Thread(target=during, daemon=True).start()

    with serving(tapes, START, speed=math.inf, fault_plan=faults) as ex:
        run_id = f"p{kills}" + ("f" if faults else "")
        result = run_trading(spec_for(ex, tmp, symbols, end, run_id), timings=TIMINGS,
                             on_event=events.append, supervisor_ready=ready)  # fmt: skip
        view = exchange_view(ex, symbols)
    return result, view, killed


def recorded(tmp: Path, run_id: str) -> dict[str, Any]:
    """What the brain's records hold (the session's SQLite database)."""
    with sqlite3.connect(tmp / "data" / "slt.sqlite") as db:
        fills = db.execute(
            "SELECT o.symbol, f.fill_id FROM fills f JOIN orders o "
            "ON o.id = f.order_id WHERE f.run_id = ?",
            (run_id,),
        ).fetchall()
        open_ = db.execute(
            "SELECT symbol, side * quantity FROM positions WHERE run_id = ? AND status = 'open'",
            (run_id,),
        ).fetchall()
        virtual = db.execute("SELECT status, count(*) FROM virtual_positions WHERE run_id = ? "
                             "GROUP BY status", (run_id,)).fetchall()  # fmt: skip
    return {"fills": {(s, int(f)) for s, f in fills}, "positions": dict(open_),
            "virtual": dict(virtual)}  # fmt: skip


def check(result: RuntimeResult, view: dict[str, Any]) -> dict[str, Any]:
    brain = result.brain
    applied = {(s, int(t)) for s, t, *_ in brain["fill_ids"]}
    figures = {
        "stopped by": result.supervisor.stopped_by,
        "restarts": {n: c.restarts for n, c in result.supervisor.children.items()},
        "candles": brain["candles"], "repeats": brain["repeats"], "fills applied": len(applied),
        "exchange fills": len(view["fills"]), "orders placed": len(view["placed"]),
        "positions": view["positions"], "naked": view["naked"],
        "faults applied": view.get("faults", 0),
    }  # fmt: skip
    print("three-process figures:", figures)
    assert result.supervisor.stopped_by == "finished", figures
    assert len(view["placed"]) == len(set(view["placed"])), "an order was placed twice"
    assert view["naked"] == [], figures
    assert len(applied) == len(brain["fill_ids"]), "a fill applied twice"
    assert applied <= view["fills"]
    assert brain["positions"] == pytest.approx(view["positions"]), figures
    return figures


def test_three_processes_trade_as_the_exchange_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, view, _ = run_live(tmp_path, monkeypatch, kills=0, hours=HOURS)
    figures = check(result, view)
    assert applied_all(result, view), figures
    assert result.brain["candles"]["stream"] >= 4 * 60 * (HOURS - 0.1)
    assert len(view["fills"]) > 0


def applied_all(result: RuntimeResult, view: dict[str, Any]) -> bool:
    applied = {(s, int(t)) for s, t, *_ in result.brain["fill_ids"]}
    return applied == view["fills"]


def test_kill_9_of_each_process_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, view, killed = run_live(tmp_path, monkeypatch, kills=2, hours=KILL_HOURS)
    check(result, view)
    rows = recorded(tmp_path, "p2")
    print("killed:", killed, "recorded:", {k: len(v) if k == "fills" else v
                                           for k, v in rows.items()})  # fmt: skip
    assert rows["fills"] == view["fills"]  # every fill recorded, once, across the kills
    # The positions table is not checked here: after a brain kill it can keep a position the
    # exchange and the brain have closed marked open (1 run in about 5; docs/trading.md).
    assert set(rows["positions"]) >= set(view["positions"])
    assert sum(rows["virtual"].values()) > 0  # every signal's virtual position, stored
    for name in ("feed", "brain", "executor"):
        assert killed.count(name) == 2, killed  # each killed twice before the replay ended
        assert result.supervisor.children[name].restarts >= 2


async def _recorded_pg(url: str, run_id: str) -> dict[str, Any]:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        fills = await connection.fetch(
            "SELECT o.symbol, f.fill_id FROM fills f JOIN orders o ON o.id = f.order_id "
            "WHERE f.run_id = $1", run_id)  # fmt: skip
        open_ = await connection.fetch(
            "SELECT symbol, side * quantity AS q FROM positions WHERE run_id = $1 AND "
            "status = 'open'", run_id)  # fmt: skip
    finally:
        await connection.close()
    return {"fills": {(r["symbol"], int(r["fill_id"])) for r in fills},
            "positions": {r["symbol"]: float(r["q"]) for r in open_}}  # fmt: skip


@pytest.mark.skipif(
    os.environ.get("SLT_CHAOS_PROCESSES") != "1",
    reason="opt-in (SLT_CHAOS_PROCESSES=1): faults, kills and a database restart together do "
    "not yet end reliably (the replay can stall once REST weight runs out; docs/trading.md)",
)
def test_chaos_faults_kills_and_a_database_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15's chaos run, bounded for CI (``SLT_CHAOS_PROCESS_HOURS``, 6 by default; the
    issue's week is 168): stream drops, 429 bursts, 5xx after accepted orders, forgotten
    orders, listenKey expiries and an exchange restart (the storm of the one-process chaos
    test), kill -9 of each process twice, and a restart of the bot's PostgreSQL (a private
    cluster). Afterwards the exchange, the brain and the database agree."""
    import asyncio

    from tests.support.chaos import storm
    from tests.support.pg_cluster import PrivateCluster

    hours = float(os.environ.get("SLT_CHAOS_PROCESS_HOURS", "6"))
    with PrivateCluster() as cluster:
        url = cluster.create_database("slt_chaos")
        restarted: list[float] = []

        def restart_database() -> None:
            time.sleep(10)
            cluster.stop("immediate")  # as a crash: committed rows survive by the WAL
            time.sleep(2)
            cluster.start()
            restarted.append(time.monotonic())

        result, view, killed = run_live(
            tmp_path, monkeypatch, kills=2, hours=hours, faults=storm(START, hours),
            database_url=url, during=restart_database,
        )  # fmt: skip
        rows = asyncio.run(_recorded_pg(url, "p2f"))
    figures = check(result, view)
    print("chaos:", {"killed": killed, "database restarts": len(restarted),
                     "recorded fills": len(rows["fills"])})  # fmt: skip
    assert restarted and view["faults"] >= 30 * hours / 2
    for name in ("feed", "brain", "executor"):
        assert killed.count(name) == 2, killed
    assert rows["fills"] == view["fills"]  # none lost, none twice, across it all
    assert rows["positions"] == pytest.approx(view["positions"]), figures
