"""One symbol of one account at the simulated exchange, for the local exchange server: the
``SymbolVenue`` port over ``SimulatedExchange``, so the server (an adapter) fills orders with
the backtest's own kernels without importing the engine's internals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from slt.domain.trading.params import CostParams, ExitParams
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.book import symbol_table
from slt.engine.identity import client_order_id, parse_client_order_id
from slt.engine.messages import Command, Event
from slt.engine.sim_exchange import SimulatedExchange
from slt.engine.venue import Faults, VenueParams

RUN = "lx"  # the venue's order names: lx-<symbol>-<order number>
_FIELDS = ("positions", "orders", "symbols", "rng", "levels", "counters")


class SimulatedSymbolVenue:
    """``SymbolVenue`` for one symbol: its own ``SimulatedExchange`` with no virtual
    positions (the server follows none)."""

    def __init__(
        self, rules: SymbolRules, costs: CostParams, timeframe_ms: int, max_orders: int
    ) -> None:
        self.symbol = rules.symbol
        params = VenueParams(costs, ExitParams(), timeframe_ms, Faults(), False)
        self._sim = SimulatedExchange(
            RUN, [rules.symbol], symbol_table([rules]), params, max_orders=max_orders
        )

    def execute(self, commands: Sequence[Command]) -> list[Event]:
        return self._sim.execute(commands)

    def open_bar(
        self, open_time_ms: int, open_: float, high: float, low: float, close: float,
        funding_time_ms: npt.NDArray[np.int64], funding_rate: npt.NDArray[np.float64],
    ) -> list[Event]:  # fmt: skip
        marks = np.full(len(funding_time_ms), np.nan)  # no stored marks: the bar's open
        funding = (funding_time_ms, funding_rate, marks)
        return self._sim.open_bar(0, open_time_ms, open_, high, low, close, funding)

    def match_bar(self) -> list[Event]:
        return self._sim.match_bar(0)

    def end_of_data(self, price: float, time_ms: int) -> list[Event]:
        return self._sim.end_of_data(0, price, time_ms)

    def fill_at(self, seq: int, side: int, quantity: float, price: float, maker: bool,
                leverage: float, time_ms: int) -> list[Event]:  # fmt: skip
        return self._sim.fill_at(
            self.order_id(seq), side, quantity, price, maker, leverage, time_ms
        )

    def order_id(self, seq: int) -> str:
        return client_order_id(RUN, self.symbol, seq)

    def order_seq(self, order_id: str) -> int | None:
        found = parse_client_order_id(order_id, RUN, (self.symbol,))
        return None if found is None else found[1]

    def position(self) -> tuple[int, float, float, float, float]:
        p = self._sim.venue.positions[0]
        return (int(p["side"]), float(p["qty"]), float(p["entry_price"]), float(p["margin"]),
                float(p["liq"]))  # fmt: skip

    def set_collateral(self, margin: float, liquidation_price: float) -> None:
        venue = self._sim.venue
        venue.positions[0]["margin"] = margin
        venue.positions[0]["liq"] = liquidation_price
        venue.symbols[0]["levels_fresh"] = False  # the kernels see the new price

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {name: getattr(self._sim.venue, name) for name in _FIELDS}

    def load_arrays(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        venue = self._sim.venue
        for name in _FIELDS:
            target, source = getattr(venue, name), arrays[name]
            if source.shape != target.shape or source.dtype != target.dtype:
                raise ValueError(f"the saved {name} do not fit this venue")
            target[...] = source  # in place: the compiled kernels hold these arrays


def symbol_venue(
    rules: SymbolRules, costs: CostParams, timeframe_ms: int, max_orders: int
) -> SimulatedSymbolVenue:
    """The ``SymbolVenueFactory`` the CLI and the tests hand to the local exchange."""
    return SimulatedSymbolVenue(rules, costs, timeframe_ms, max_orders)
