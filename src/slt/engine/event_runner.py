"""The backtest wired event by event: decision core + simulated broker, as paper trading runs.

Slower than the compiled loop and meant to prove they agree: given the same candles and
signals, both produce the same trades and the same equity.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from slt.domain.trading.enums import END_OF_DATA
from slt.engine.backtest import MarketData, simulation_inputs
from slt.engine.core import DecisionCore
from slt.engine.messages import CandleClosed, Command, Event, Persist
from slt.engine.results import Trade
from slt.engine.sim_broker import SimulatedBroker
from slt.engine.trading_config import TradingConfig

Observer = Callable[[Event, list[Command], DecisionCore, SimulatedBroker], None]


def run_event_driven(
    data: MarketData,
    direction: npt.NDArray[np.int8],
    score: npt.NDArray[np.float64],
    config: TradingConfig,
    *,
    futures: bool = True,
    observe: Observer | None = None,
) -> tuple[list[Trade], npt.NDArray[np.float64], list[Command]]:
    """(trades, equity at each close, every command the core issued); ``observe`` sees each
    event with the commands it produced, after the broker took them (tests check invariants)."""
    x = simulation_inputs(data, direction, score, config, futures)
    t, o, h, lo, c, tf = x.open_time_ms, x.open, x.high, x.low, x.close, x.timeframe_ms
    plan = x.funding
    core = DecisionCore(config, data.rules, data.candles.key.symbol)
    broker = SimulatedBroker(config.cost_params(), data.rules, plan.time_ms, plan.rate, plan.mark)
    log: list[Command] = []
    equity = np.empty(len(t))

    def feed(events: list[Event]) -> None:
        for event in events:
            commands = core.apply(event)
            log.extend(commands)
            broker.execute(commands)
            if observe is not None:
                observe(event, commands, core, broker)

    for i in range(len(t)):
        feed(broker.on_open(int(t[i]), float(o[i]), float(h[i]), float(lo[i])))
        minutes = None
        if x.minute_start[i] >= 0 and data.minute is not None:
            m, s, e = data.minute, x.minute_start[i], x.minute_end[i]
            minutes = (m.open_time_ms[s:e], m.open[s:e], m.high[s:e], m.low[s:e])
        feed(broker.during_candle(int(t[i]), float(o[i]), float(h[i]), float(lo[i]), minutes))
        close_ms = int(t[i]) + tf
        broker.expect_next_open(close_ms)
        if i + 1 < len(t):
            event = CandleClosed(
                int(t[i]),
                close_ms,
                float(o[i]),
                float(h[i]),
                float(lo[i]),
                float(c[i]),
                int(x.direction[i]),
                float(x.confidence[i]),
                float(x.stop_pct[i]),
            )
            feed([event])
        equity[i] = core.equity(float(c[i]))
    if core.position[0] != 0:
        commands: list[Command] = [core.close_now(END_OF_DATA)]
        log.extend(commands)
        broker.execute(commands)
        feed(broker.fill_now(float(c[-1]), int(t[-1]) + tf))
        equity[-1] = core.cash
    trades = [cmd.trade for cmd in log if isinstance(cmd, Persist) and cmd.trade is not None]
    return trades, equity, log
