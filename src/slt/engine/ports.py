"""The small interfaces through which backtest, replay, paper and live differ.

The engine's decision code is the same in every mode; what changes is where time comes from,
where events come from, who executes commands, where events are journaled, who is told, and
which model scores signals. Each is one small protocol here; the adapters implement them
(a file journal, the simulated exchange, Binance, Telegram) and ``runtime.bootstrap`` wires
one of each per mode. Tests pass plain fakes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from slt.domain.trading.params import CostParams
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.messages import Command, Event, Notify


class Clock(Protocol):
    """Transport time (signatures, keepalives, watchdogs); the trading clock comes from
    events, never from here."""

    def now_ms(self) -> int: ...


class EventSource(Protocol):
    """Where events come from: a backtest's simulated market, a journal, live streams."""

    def events(self) -> Iterator[Event]: ...


class ExecutionClient(Protocol):
    """Takes the core's commands (orders, cancels, virtual positions); what the exchange
    answers comes back as events (at once for the simulated exchange, later for Binance)."""

    def execute(self, commands: Sequence[Command]) -> list[Event]: ...


class Journal(Protocol):
    """Append-only record of every event the reducer applies, written before it is applied."""

    def append(self, event: Event) -> None: ...

    def read(self) -> Iterator[Event]: ...


class StepJournal(Journal, Protocol):
    """A backtest's journal also marks the end of each step with its bars (symbol index,
    open, high, low, close), so a replay rebuilds the report's equity curve exactly."""

    def mark_step(
        self, time_ms: int, bars: list[tuple[int, float, float, float, float]]
    ) -> None: ...


class Notifier(Protocol):
    def notify(self, notice: Notify) -> None: ...


class ModelProvider(Protocol):
    """The model in force: its version name and P(win) of signals (features + direction)."""

    @property
    def version(self) -> str: ...

    def p_win(self, inputs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...


class SymbolVenue(Protocol):
    """One symbol of one account at the simulated exchange, driven candle by candle from
    outside: the local exchange server's matching and accounting (``engine.symbol_venue``
    implements it; ``runtime`` or the CLI hands the factory to the adapter)."""

    def execute(self, commands: Sequence[Command]) -> list[Event]: ...

    def open_bar(
        self, open_time_ms: int, open_: float, high: float, low: float, close: float,
        funding_time_ms: npt.NDArray[np.int64], funding_rate: npt.NDArray[np.float64],
    ) -> list[Event]: ...  # fmt: skip

    def match_bar(self) -> list[Event]: ...

    def end_of_data(self, price: float, time_ms: int) -> list[Event]: ...

    def fill_at(self, seq: int, side: int, quantity: float, price: float, maker: bool,
                leverage: float, time_ms: int) -> list[Event]: ...  # fmt: skip

    def order_id(self, seq: int) -> str:
        """The client order id the venue's events name order ``seq`` by."""
        ...

    def order_seq(self, order_id: str) -> int | None: ...

    def position(self) -> tuple[int, float, float, float, float]:
        """(side, quantity, entry price, margin, liquidation price) as the venue books it."""
        ...

    def set_collateral(self, margin: float, liquidation_price: float) -> None:
        """Cross margin: what backs the position, and the liquidation price it gives."""
        ...

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The venue's state, to save; ``load_arrays`` puts it back in place."""
        ...

    def load_arrays(self, arrays: dict[str, npt.NDArray[Any]]) -> None: ...


class SymbolVenueFactory(Protocol):
    def __call__(
        self, rules: SymbolRules, costs: CostParams, timeframe_ms: int, max_orders: int
    ) -> SymbolVenue: ...
