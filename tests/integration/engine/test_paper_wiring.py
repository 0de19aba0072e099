"""Paper trading's wiring: the reducer, the simulated exchange and an fsynced journal that
``replay`` turns back into the same session."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slt.adapters.journal import JsonlJournal
from slt.engine.messages import CandleClosed, Event, OrderFilled, PlaceOrder
from slt.engine.replay import replay
from slt.engine.sim_exchange import SimulatedExchange
from slt.runtime.bootstrap import paper_wiring, plan_run
from slt.runtime.config import Settings

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
FIVE = 300_000
NO_FUNDING = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))  # times, rates, marks


def _bar(i: int, price: float) -> tuple[int, float, float, float, float]:
    return T0 + i * FIVE, price, price * 1.001, price * 0.999, price * 1.0005


def test_paper_wiring_trades_on_the_simulated_exchange_and_replays_from_its_journal(
    tmp_path: Path,
) -> None:
    plan = plan_run(
        Settings(data_dir=tmp_path), ["BTCUSDT", "ETHUSDT"], "2024-01-01", "2024-01-02", "5m",
        "ema_cross", None, None,
    )  # fmt: skip
    journal = tmp_path / "paper.jsonl"
    wiring = paper_wiring(plan, journal)
    assert isinstance(wiring.execution, SimulatedExchange)  # paper never reaches an exchange
    commands = []
    fills: list[Event] = []

    def feed(events: list[Event]) -> None:
        queue = list(events)
        while queue:
            event = queue.pop(0)
            if isinstance(event, OrderFilled):
                fills.append(event)
            out, answers = wiring.step(event)
            commands.extend(out)
            queue.extend(answers)

    x = wiring.execution
    for i in range(4):
        for s, base in ((0, 42_000.0), (1, 2_300.0)):
            t, o, h, lo, c = _bar(i, base * (1 + 0.002 * i))
            feed(x.open_bar(s, t, o, h, lo, c, NO_FUNDING))
            feed(x.match_bar(s))
        # A long signal on BTCUSDT at the first close; the others are quiet.
        for s, symbol, base in ((0, "BTCUSDT", 42_000.0), (1, "ETHUSDT", 2_300.0)):
            t, o, h, lo, c = _bar(i, base * (1 + 0.002 * i))
            signal = 1 if (i == 0 and s == 0) else 0
            feed([CandleClosed(symbol, t, t + FIVE, o, h, lo, c, signal, 0.9, 1.0, True)])

    entries = [c for c in commands if isinstance(c, PlaceOrder) and c.purpose == "entry"]
    assert len(entries) == 1 and entries[0].symbol == "BTCUSDT"
    assert entries[0].client_order_id.startswith(wiring.state.run_id + "-BTCUSDT-")
    assert any(f.client_order_id == entries[0].client_order_id for f in fills)
    stops = [c for c in commands if isinstance(c, PlaceOrder) and c.purpose == "stop"]
    assert stops, "the filled entry is protected by a stop on the exchange"
    assert wiring.state.book.positions[0]["side"] == 1

    assert wiring.journal is not None
    wiring.journal.close()
    source = JsonlJournal(journal)
    header = source.header()
    assert header["mode"] == "paper" and header["symbols"] == ["BTCUSDT", "ETHUSDT"]
    replayed = replay(header, source.entries())
    assert replayed.state == wiring.state
    assert replayed.commands == commands
