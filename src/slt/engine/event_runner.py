"""The backtest wired event by event: decision core + simulated broker, as paper trading runs.

Slower than the compiled loop and meant to prove they agree: given the same candles and
signals, both produce the same trades and the same equity.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slt.domain.trading.enums import END_OF_DATA
from slt.engine.backtest import MarketData, funding_plan, minute_index, stop_distances
from slt.engine.core import DecisionCore
from slt.engine.messages import CandleClosed, Command, Event, Persist
from slt.engine.results import Trade
from slt.engine.sim_broker import SimulatedBroker
from slt.engine.trading_config import TradingConfig


def run_event_driven(
    data: MarketData,
    direction: npt.NDArray[np.int8],
    score: npt.NDArray[np.float64],
    config: TradingConfig,
    *,
    futures: bool = True,
) -> tuple[list[Trade], npt.NDArray[np.float64], list[Command]]:
    """(trades, equity at each close, every command the core issued)."""
    candles = data.candles
    first = int(np.searchsorted(candles.open_time_ms, data.start_ms))
    tf = candles.key.timeframe_ms
    t = candles.open_time_ms[first:]
    o, h, lo, c = (a[first:] for a in (candles.open, candles.high, candles.low, candles.close))
    stops = stop_distances(config, candles)[first:]
    dirs = direction[first:]
    confidence = 0.5 + score[first:] / 2.0
    plan = funding_plan(config, data, int(t[0]), int(t[-1]) + tf, futures)
    sub_start, sub_end = minute_index(t, tf, data.minute)
    core = DecisionCore(config, data.rules, candles.key.symbol)
    broker = SimulatedBroker(config.cost_params(), data.rules, plan.time_ms, plan.rate, plan.mark)
    log: list[Command] = []
    equity = np.empty(len(t))

    def feed(events: list[Event]) -> None:
        for event in events:
            commands = core.apply(event)
            log.extend(commands)
            broker.execute(commands)

    for i in range(len(t)):
        feed(broker.on_open(int(t[i]), float(o[i]), float(h[i]), float(lo[i])))
        minutes = None
        if sub_start[i] >= 0 and data.minute is not None:
            m, s, e = data.minute, sub_start[i], sub_end[i]
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
                int(dirs[i]),
                float(confidence[i]),
                float(stops[i]),
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
