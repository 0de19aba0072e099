"""What a paper or live session did, as rows of the trading ledger, for `slt status`.

``SessionRecorder.observe`` is the session's observer (``LiveSession(observe=...)``): after the
reducer applied an event it turns the event, its commands and the state after it into orders,
fills, positions and equity snapshots, each carrying the session's mode and run id:

- an order on ``PlaceOrder`` (status ``new``: sent, not yet acknowledged), its status moved by
  ``OrderAccepted`` (``open``), ``OrderFilled`` (``partially_filled`` / ``filled``),
  ``OrderCanceled``, ``OrderRejected`` and ``OrderExpired``;
- a fill per ``OrderFilled`` of this run's orders (``fill_id``: the exchange's trade id);
- a position when a fill leaves one open (its key: the engine's position id), updated while it
  changes, closed on ``Persist`` with the trade's PnL, fees, funding and exit reason;
- an equity snapshot at each candle's close time (marked to the last closes; the last one
  written for a close time stays).

Times are the trading clock: the newest time the events carried. ``observe`` never waits: it
queues rows in the record writer (``submit``; fills and positions with ``record_nowait``, which
commits them at once) and returns. A row the writer's checks refuse is logged and counted in
``refused``; trading goes on.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import replace

import structlog

from slt.adapters.db.writer import RecordWriter, RecordWriterError
from slt.adapters.exchange.kline_sequencer import Candle as MarketCandle
from slt.domain.records import RecordError
from slt.domain.results import Trade
from slt.domain.timeframes import TIMEFRAME_MS
from slt.domain.trading_records import (
    MODES,
    Candle,
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    PositionRecord,
    check_run_id,
)
from slt.engine.decision_nb import account_equity_nb
from slt.engine.identity import parse_client_order_id
from slt.engine.messages import (
    AccountUpdated,
    CandleClosed,
    Command,
    Event,
    FundingPaid,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    Persist,
    PlaceOrder,
    PositionLiquidated,
    Reconciled,
)
from slt.engine.state import PortfolioState
from slt.errors import SltError

log = structlog.get_logger("slt.records")

FINAL_STATUSES = frozenset({"filled", "canceled", "rejected", "expired"})
_STATUS_OF = {
    OrderAccepted: "open",
    OrderCanceled: "canceled",
    OrderRejected: "rejected",
    OrderExpired: "expired",
}
_TIMED = (OrderFilled, PositionLiquidated, FundingPaid, AccountUpdated, Reconciled)


class SessionRecorder:
    """Records one session (``mode`` paper or live, ``run_id`` its state's run id) through
    ``writer``; call ``observe`` from the event loop's thread, as ``LiveSession`` does."""

    def __init__(
        self, writer: RecordWriter, mode: str, run_id: str, timeframe: str, *,
        market: str = "futures",
    ) -> None:  # fmt: skip
        if mode not in MODES:
            raise SltError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not run_id:
            raise SltError("a session's records need its run id")
        try:
            check_run_id(run_id)
        except RecordError as exc:
            raise SltError(str(exc)) from None
        if timeframe not in TIMEFRAME_MS:
            raise SltError(f"unknown timeframe {timeframe!r}")
        self.writer, self.mode, self.run_id = writer, mode, run_id
        self.timeframe, self.market = timeframe, market
        self.now_ms = 0  # the trading clock: the newest time an event carried
        self.queued: Counter[str] = Counter()  # rows handed to the writer, by kind
        self.refused = 0  # rows refused by the checks, or by the database when acknowledged
        self._orders: dict[str, OrderRecord] = {}  # working orders, by client order id
        self._open: dict[str, PositionRecord] = {}  # open positions, by symbol

    # -- the observer ----------------------------------------------------------------------

    def observe(self, event: Event, commands: list[Command], state: PortfolioState) -> None:
        """Queue the rows that ``event`` and its ``commands`` make; never waits."""
        if isinstance(event, CandleClosed):
            self.now_ms = max(self.now_ms, int(event.close_time_ms))
            if commands:
                self._commands(commands)
            self._equity(int(event.close_time_ms), state)
            return
        if isinstance(event, _TIMED):
            self.now_ms = max(self.now_ms, int(event.time_ms))
        if commands:
            self._commands(commands)
        if isinstance(event, OrderFilled):
            self._filled(event, state)
        elif isinstance(event, OrderAccepted | OrderCanceled | OrderRejected | OrderExpired):
            self._status(event.client_order_id, _STATUS_OF[type(event)])
        elif isinstance(event, Reconciled):
            for symbol in state.symbols:
                self._position(symbol, state)

    def candle(self, candle: MarketCandle) -> None:
        """A closed market candle of the session's timeframe, volume included (the engine's
        ``CandleClosed`` carries none), for ``market_data``."""
        if candle.timeframe != self.timeframe:
            return
        self._put(
            Candle(candle.symbol, self.market, candle.timeframe, int(candle.open_time_ms),
                   float(candle.open), float(candle.high), float(candle.low),
                   float(candle.close), float(candle.volume))
        )  # fmt: skip

    async def flush(self) -> None:
        """Wait until every row queued so far is committed."""
        await self.writer.flush()

    # -- rows ------------------------------------------------------------------------------

    def _commands(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, PlaceOrder):
                self._placed(command)
            elif isinstance(command, Persist):
                self._closed(command.trade)

    def _placed(self, c: PlaceOrder) -> None:
        price = None if math.isnan(c.price) else float(c.price)
        order = OrderRecord(
            c.client_order_id, self.mode, c.symbol, c.kind, c.purpose, int(c.side),
            float(c.quantity), price, bool(c.reduce_only), "new", self.now_ms, self.now_ms,
            run_id=self.run_id,
        )  # fmt: skip
        if self._put(order):
            self._orders[order.order_id] = order

    def _status(self, order_id: str, status: str) -> None:
        """A working order's new status; an order this recorder did not see placed (another
        run's, or placed before a restart) is left as stored."""
        order = self._orders.get(order_id)
        if order is None or order.status == status:
            return
        moved = replace(order, status=status, updated_ms=max(self.now_ms, order.created_ms))
        if status in FINAL_STATUSES:
            del self._orders[order_id]
        else:
            self._orders[order_id] = moved
        self._put(moved)

    def _filled(self, e: OrderFilled, state: PortfolioState) -> None:
        if parse_client_order_id(e.client_order_id, state.run_id, state.symbols) is None:
            return  # not this run's order: the reducer noticed it; there is no order row
        fill = FillRecord(str(e.trade_id), e.client_order_id, int(e.time_ms), float(e.price),
                          float(e.quantity), float(e.fee))  # fmt: skip
        self._put(fill, durable=True)
        self._status(e.client_order_id, e.status)
        self._position(e.symbol, state)

    def _position(self, symbol: str, state: PortfolioState) -> None:
        """The symbol's open position as the state holds it, written when it changed."""
        p = state.book.positions[state.symbol_index(symbol)]
        if int(p["side"]) == 0:
            self._open.pop(symbol, None)
            return
        position = PositionRecord(
            str(int(p["position_id"])), self.mode, symbol, int(p["side"]), float(p["qty"]),
            float(p["entry_price"]), float(p["leverage"]), float(p["margin"]),
            int(p["entry_time_ms"]), "open", fees=float(p["fees"]), funding=float(p["funding"]),
            run_id=self.run_id,
        )  # fmt: skip
        if self._open.get(symbol) != position and self._put(position, durable=True):
            self._open[symbol] = position

    def _closed(self, t: Trade) -> None:
        key = str(t.position_id)
        position = PositionRecord(
            key, self.mode, t.symbol, 1 if t.side == "long" else -1, float(t.quantity),
            float(t.entry_price), float(t.leverage), float(t.margin), int(t.entry_time_ms),
            "closed", closed_ms=int(t.exit_time_ms), realized_pnl=float(t.pnl),
            fees=float(t.fees), funding=float(t.funding), exit_reason=t.exit_reason,
            run_id=self.run_id,
        )  # fmt: skip
        held = self._open.get(t.symbol)
        if held is not None and held.position_key == key:
            del self._open[t.symbol]
        self._put(position, durable=True)

    def _equity(self, time_ms: int, state: PortfolioState) -> None:
        book = state.book
        equity = float(account_equity_nb(book.account, book.positions, book.marks))
        cash = state.wallet
        self._put(EquitySnapshot(self.mode, time_ms, equity, cash, equity - cash,
                                 run_id=self.run_id))  # fmt: skip

    def _put(self, record: object, *, durable: bool = False) -> bool:
        """Queue ``record`` (``durable``: committed at once, its refusal counted); False if
        the checks refused it."""
        try:
            if durable:
                done = self.writer.record_nowait(record)
                done.add_done_callback(self._acknowledged)
            else:
                self.writer.submit(record)
        except (RecordError, RecordWriterError) as exc:
            self.refused += 1
            log.error("session record refused", run_id=self.run_id, reason=str(exc))
            return False
        self.queued[type(record).__name__] += 1
        return True

    def _acknowledged(self, done: asyncio.Future[None]) -> None:
        # The writer has logged a refusal already; the recorder counts it.
        if not done.cancelled() and done.exception() is not None:
            self.refused += 1
