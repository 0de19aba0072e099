"""The backtest through the reducer, event object by event object: the wiring paper and live
trading run, with the simulated exchange as the execution client.

The steps are the compiled driver's (``driver_nb.run_steps_nb``), in the same order, calling
the same exchange kernels and, through ``Reducer.step``, the same decision kernels; every event
may be journaled before it is applied. ``slt backtest --engine events`` runs this and must
give the compiled driver's report.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from slt.domain.features.jit import compiled_entry
from slt.domain.results import BacktestResult
from slt.domain.trading.enums import END_OF_DATA, EXIT_REASONS
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.backtest import Prepared, result_of
from slt.engine.book import table_rules
from slt.engine.decision_nb import account_equity_nb
from slt.engine.messages import (
    CandleClosed,
    CloseRequested,
    Command,
    Event,
    ModelChanged,
    Persist,
)
from slt.engine.ports import Journal, StepJournal
from slt.engine.reducer import Reducer
from slt.engine.sim_exchange import SimulatedExchange
from slt.engine.state import PortfolioState

Observer = Callable[[Event, list[Command], PortfolioState, SimulatedExchange], None]


@dataclass
class EventRun:
    """What the event wiring produced: the result, the final state, every command issued."""

    result: BacktestResult
    state: PortfolioState
    exchange: SimulatedExchange
    commands: list[Command] = field(default_factory=list)
    events: int = 0


def run_events(
    prepared: Prepared,
    run_id: str,
    *,
    model_versions: tuple[str, ...] = (),
    journal: Journal | StepJournal | None = None,
    observe: Observer | None = None,
) -> EventRun:
    """Run ``prepared`` through ``Reducer.step``. ``model_versions`` names the versions the
    market's model changes refer to (by number, 1 = the first). ``journal`` gets every event
    before the reducer applies it (and, if it can, a mark at the end of every step)."""
    driver = EventDriver(prepared, run_id, model_versions=model_versions, journal=journal,
                         observe=observe)  # fmt: skip
    driver.run()
    return driver.outcome()


def rules_of(p: Prepared) -> list[SymbolRules]:
    """The symbols' exchange rules as the prepared market holds them."""
    return table_rules(p.symbols, p.table)


class EventDriver:
    """The event wiring over a prepared market, resumable: ``run(stop_after=n)`` stops once n
    events have been applied whole (a crash between events, for the tests); ``resume(state)``
    carries on from a state rebuilt from the journal. The simulated exchange lives on, as an
    exchange does when the bot dies."""

    def __init__(
        self,
        prepared: Prepared,
        run_id: str,
        *,
        model_versions: tuple[str, ...] = (),
        journal: Journal | StepJournal | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.p = prepared
        self.reducer = Reducer(prepared.config, rules_of(prepared))
        self.state = self.reducer.new_state(run_id)
        self.exchange = SimulatedExchange(
            run_id, prepared.symbols, prepared.table, prepared.venue, model_versions
        )
        self.journal = journal
        self.observe = observe
        self.model_versions = model_versions
        self.commands: list[Command] = []
        self.step_time: list[int] = []
        self.equity: list[float] = []
        self.applied = 0
        self._steps = self._run()
        self.finished = False

    def run(self, stop_after: int | None = None) -> bool:
        """Go on until the end (True) or until ``stop_after`` events in all were applied."""
        for _ in self._steps:
            if stop_after is not None and self.applied >= stop_after:
                return False
        self.finished = True
        return True

    def resume(self, state: PortfolioState) -> None:
        """Carry on with ``state`` (rebuilt from the journal) in place of the lost one."""
        self.state = state

    def outcome(self) -> EventRun:
        trades = tuple(c.trade for c in self.commands if isinstance(c, Persist))
        step_time = np.asarray(self.step_time, dtype=np.int64)
        equity = np.asarray(self.equity, dtype=np.float64)
        return EventRun(
            result_of(self.p, trades, step_time, equity), self.state, self.exchange,
            self.commands, self.applied,
        )  # fmt: skip

    def _apply(self, event: Event) -> list[Event]:
        """Journal one event, apply it, send its commands: the exchange's answers."""
        if self.journal is not None:
            self.journal.append(event)
        self.state, commands = self.reducer.step(self.state, event)
        self.applied += 1
        answers: list[Event] = []
        if commands:
            self.commands += commands
            answers = self.exchange.execute(commands)
        if self.observe is not None:
            self.observe(event, commands, self.state, self.exchange)
        return answers

    def _deliver(self, events: list[Event]) -> Iterator[None]:
        """Apply events in order; the exchange's answers queue up behind (first in, first
        out, as the compiled driver does). Yields after each."""
        queue = deque(events)
        apply = self._apply
        while queue:
            answers = apply(queue.popleft())
            if answers:
                queue.extend(answers)
            yield

    def _run(self) -> Iterator[None]:
        m = self.p.market
        times = m.bar_time_ms.tolist()
        n = len(times)
        tf = self.p.timeframe_ms
        funding = [
            (m.funding_time_ms[a:b], m.funding_rate[a:b], m.funding_mark[a:b])
            for a, b in zip(m.funding_start.tolist(), m.funding_end.tolist(), strict=True)
        ]
        minutes = [
            None if a < 0 else
            (m.minute_time_ms[a:b], m.minute_open[a:b], m.minute_high[a:b], m.minute_low[a:b])
            for a, b in zip(m.minute_start.tolist(), m.minute_end.tolist(), strict=True)
        ]  # fmt: skip
        bars = list(
            zip(
                m.bar_symbol.tolist(), times, m.open.tolist(), m.high.tolist(), m.low.tolist(),
                m.close.tolist(), m.direction.tolist(), m.confidence.tolist(),
                m.stop_pct.tolist(), m.gate.tolist(), m.last_of_symbol.tolist(), minutes,
                strict=True,
            )
        )  # fmt: skip
        changes = list(zip(m.model_time_ms.tolist(), m.model_version.tolist(), strict=True))
        n_changes = len(changes)
        # Steps: runs of bars with one open time (the layout is in step order).
        starts = [0, *(np.flatnonzero(np.diff(m.bar_time_ms)) + 1).tolist()] if n else []
        ends = [*starts[1:], n]
        symbols = self.p.symbols
        exchange, deliver, apply = self.exchange, self._deliver, self._apply
        equity = compiled_entry(
            account_equity_nb, self.state.book.account, self.state.book.positions,
            self.state.book.marks,
        )  # fmt: skip
        step_time, equities = self.step_time, self.equity
        model_next = 0
        for first, end in zip(starts, ends, strict=True):
            close_ms = times[first] + tf
            if end - first == 1:  # a lone bar: open and match in one call when nothing happens
                bar = bars[first]
                s, t, o, h, lo, c, direction, confidence, stop, gate, final, minute = bar
                events, matched = exchange.open_and_match(s, t, o, h, lo, c, funding[s], minute)
                if events:  # most bars have none: no queue to build
                    yield from deliver(events)
                if not matched:
                    yield from deliver(exchange.match_bar(s, minute))
                if model_next < n_changes and changes[model_next][0] <= close_ms:
                    due: list[Event] = []
                    model_next = self._model_changes(changes, model_next, close_ms, due)
                    if not final:
                        due.append(
                            CandleClosed(symbols[s], t, close_ms, o, h, lo, c, direction,
                                         confidence, stop, gate)
                        )  # fmt: skip
                    yield from deliver(due)
                elif not final:  # the commonest step: one close, applied without a queue
                    answers = apply(
                        CandleClosed(
                            symbols[s], t, close_ms, o, h, lo, c, direction, confidence, stop, gate
                        )
                    )
                    yield
                    if answers:
                        yield from deliver(answers)
                if final:  # the symbol's data ends with this bar
                    yield from self._end_of_data(s, c, close_ms)
            else:
                step = bars[first:end]
                for s, t, o, h, lo, c, *_ in step:
                    yield from deliver(exchange.open_bar(s, t, o, h, lo, c, funding[s]))
                for bar in step:
                    yield from deliver(exchange.match_bar(bar[0], bar[11]))
                closes: list[Event] = []
                if model_next < n_changes and changes[model_next][0] <= close_ms:
                    model_next = self._model_changes(changes, model_next, close_ms, closes)
                closes += [
                    CandleClosed(symbols[s], t, close_ms, o, h, lo, c, d, conf, stop, gate)
                    for s, t, o, h, lo, c, d, conf, stop, gate, final, _ in step
                    if not final
                ]
                yield from deliver(closes)
                for bar in step:
                    if bar[10]:
                        yield from self._end_of_data(bar[0], bar[5], close_ms)
            book = self.state.book
            step_time.append(times[first])
            equities.append(float(equity(book.account, book.positions, book.marks)))
            if self.journal is not None:
                mark = getattr(self.journal, "mark_step", None)
                if mark is not None:
                    bars_ = bars[first:end]
                    mark(times[first], [(b[0], b[2], b[3], b[4], b[5]) for b in bars_])

    def _end_of_data(self, s: int, close: float, close_ms: int) -> Iterator[None]:
        """The symbol's data ends: the exchange opens at the last close, the core closes."""
        ends = self.exchange.end_of_data(s, close, close_ms)
        close_all = CloseRequested(self.p.symbols[s], EXIT_REASONS[END_OF_DATA])
        yield from self._deliver([*ends, close_all])

    def _model_changes(
        self, changes: list[tuple[int, int]], next_: int, close_ms: int, due: list[Event]
    ) -> int:
        """Append the model changes in force from this close on (they go before its
        candles); the index of the next change."""
        while next_ < len(changes) and changes[next_][0] <= close_ms:
            due.append(ModelChanged(self.model_versions[changes[next_][1] - 1]))
            next_ += 1
        return next_
