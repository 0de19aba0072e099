"""One API account at the local exchange: its wallet, positions, orders and trades, matched
by the engine's own exchange kernels.

Each symbol of the account has a ``SymbolVenue`` (the backtest's simulated exchange, handed in
as a port so this adapter imports no engine internals): market orders,
reduce-only stops and reduce-only limits rest there and are filled by the kernels the backtest
uses, as are funding, isolated margin, leverage brackets and liquidation. What the kernels do
not hold (limit entries, take-profit-market, trailing and limit-type conditional orders) is
matched here on the same candles and priced with the same cost kernels, then booked into the
venue with ``fill_at`` so the position stays the kernels' own.

Every operation returns the user-data events it caused (ORDER_TRADE_UPDATE, TRADE_LITE,
ALGO_UPDATE, ACCOUNT_UPDATE), complete dicts ready for the stream.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slt.adapters.exchange.local import codes
from slt.adapters.exchange.local import order_answers as answer
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.order_book import (
    AT_BOOK,
    AT_VENUE,
    CANCELED,
    ER_IOC,
    ER_MARKET,
    ER_REDUCE_ONLY,
    EXPIRED,
    FILLED,
    FINISHED,
    LIMIT,
    LIQUIDATION,
    MARKET,
    NEW,
    PARTIALLY_FILLED,
    REJECTED,
    STOP,
    STOP_MARKET,
    TAKE_PROFIT,
    TAKE_PROFIT_MARKET,
    TRAILING_STOP_MARKET,
    TRIGGERED,
    AlgoOrder,
    LocalOrder,
)
from slt.adapters.exchange.local.order_params import OrderRequest
from slt.domain.trading.costs_nb import entry_fill_terms_nb, exit_fill_terms_nb, fee_nb
from slt.domain.trading.margin_nb import (
    CAP,
    CUM,
    MAX_LEVERAGE,
    MMR,
    bracket_row_nb,
    liquidation_price_nb,
)
from slt.domain.trading.params import CostParams
from slt.engine.messages import (
    CancelOrder,
    Event,
    FundingPaid,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    PositionLiquidated,
)
from slt.engine.ports import SymbolVenue, SymbolVenueFactory

MAX_OPEN_ORDERS = 200  # MAX_NUM_ORDERS of exchangeInfo, per symbol
MAX_ALGO_ORDERS = 200  # conditional orders across all symbols (reference §1 item 2)
DEFAULT_LEVERAGE = 20
MARGIN_CALL_RATIO = 0.8
_TOL = 1e-9
UserEvent = dict[str, Any]


class Ids:
    """Exchange-wide numbering: order and algo ids, and trade ids per symbol."""

    def __init__(self, first_order_id: int = 4_000_000_001, first_algo_id: int = 1_000_001):
        self.next_order = first_order_id
        self.next_algo = first_algo_id
        self.trades: dict[str, int] = {}

    def order(self) -> int:
        self.next_order += 1
        return self.next_order - 1

    def algo(self) -> int:
        self.next_algo += 1
        return self.next_algo - 1

    def trade(self, symbol: str) -> int:
        self.trades[symbol] = self.trades.get(symbol, 100_000_000) + 1
        return self.trades[symbol]


@dataclass
class Trade:
    """One fill as ``GET /fapi/v1/userTrades`` lists it (wire time)."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: float
    qty: float
    commission: float
    realized: float
    maker: bool
    time_ms: int


@dataclass
class Income:
    """A wallet change as ``GET /fapi/v1/income`` lists it."""

    symbol: str
    kind: str  # REALIZED_PNL, COMMISSION, FUNDING_FEE, INSURANCE_CLEAR
    amount: float
    time_ms: int
    trade_id: int = 0


@dataclass
class Desk:
    """One symbol of one account: the venue and everything it does not hold."""

    tape: SymbolTape
    sim: SymbolVenue
    leverage: int = DEFAULT_LEVERAGE
    margin_type: str = "CROSSED"
    amt: float = 0.0  # signed position, as the exchange books it
    entry: float = 0.0
    realized: float = 0.0  # accumulated realized PnL before fees (``cr``)
    position_ms: int = 0
    orders: dict[int, LocalOrder] = field(default_factory=dict)
    open_ids: dict[str, int] = field(default_factory=dict)  # client id -> open order id
    algos: dict[int, AlgoOrder] = field(default_factory=dict)
    open_algo_ids: dict[str, int] = field(default_factory=dict)
    venue_algos: dict[int, int] = field(default_factory=dict)  # venue seq -> algo id
    trades: list[Trade] = field(default_factory=list)
    margin_called: bool = False  # a MARGIN_CALL was sent and the risk has not eased since

    @property
    def symbol(self) -> str:
        return self.tape.symbol

    @property
    def side(self) -> int:
        return 0 if abs(self.amt) <= _TOL else (1 if self.amt > 0 else -1)

    def open_orders(self) -> list[LocalOrder]:
        return [self.orders[i] for i in self.open_ids.values()]

    def open_algos(self) -> list[AlgoOrder]:
        return [self.algos[i] for i in self.open_algo_ids.values()]

    def isolated_wallet(self) -> float:
        return self.sim.position()[3] if self.side else 0.0

    def liquidation_price(self) -> float:
        return self.sim.position()[4] if self.side else 0.0

    def maintenance(self, mark: float) -> float:
        notional = abs(self.amt) * mark
        b = self.tape.rules.brackets
        row = bracket_row_nb(b, notional)
        return max(notional * float(b[row, MMR]) - float(b[row, CUM]), 0.0)


def max_leverage(tape: SymbolTape) -> int:
    return int(tape.rules.brackets[0, MAX_LEVERAGE])


def max_notional(tape: SymbolTape, leverage: int) -> float:
    """The largest position notional the leverage allows (the highest bracket cap whose
    initial leverage is at least ``leverage``)."""
    b = tape.rules.brackets
    allowed = [float(b[i, CAP]) for i in range(b.shape[0]) if b[i, MAX_LEVERAGE] >= leverage]
    return max(allowed) if allowed else 0.0


def _engine_kind(order_type: str) -> Any:
    return {MARKET: "market", STOP_MARKET: "stop_market", LIMIT: "limit"}[order_type]


class Account:
    """An API account's trading state; ``shift_ms`` turns history times into wire times."""

    def __init__(
        self,
        api_key: str,
        tapes: dict[str, SymbolTape],
        balance: float,
        ids: Ids,
        shift_ms: int,
        venues: SymbolVenueFactory,
        costs: CostParams | None = None,
    ) -> None:
        self.api_key = api_key
        self.wallet = balance
        self.ids = ids
        self.shift_ms = shift_ms
        self.costs = costs or CostParams()
        self.income: list[Income] = []
        self.update_ms = 0
        self.desks: dict[str, Desk] = {}
        for symbol, tape in tapes.items():
            timeframe = tape.candles.key.timeframe_ms
            venue = venues(tape.rules, self.costs, timeframe, MAX_OPEN_ORDERS)
            self.desks[symbol] = Desk(tape, venue)

    # -- reading --------------------------------------------------------------------------

    def desk(self, symbol: str) -> Desk:
        return self.desks[symbol]

    def mark(self, desk: Desk, now_ms: int) -> float:
        last = desk.tape.last_price(now_ms)
        return float(last) if last is not None else desk.entry

    def unrealized(self, desk: Desk, now_ms: int) -> float:
        return (self.mark(desk, now_ms) - desk.entry) * desk.amt if desk.side else 0.0

    def order_margin(self, desk: Desk, now_ms: int) -> float:
        """Initial margin held by the open orders that would open or add to a position."""
        total = 0.0
        for o in desk.open_orders():
            if o.reduce_only or o.close_position:
                continue
            reference = o.price if o.type == LIMIT else self.mark(desk, now_ms)
            total += o.left * reference / desk.leverage
        return total

    def position_margin(self, desk: Desk, now_ms: int) -> float:
        if not desk.side:
            return 0.0
        if desk.margin_type == "ISOLATED":
            return desk.isolated_wallet()
        return abs(desk.amt) * self.mark(desk, now_ms) / desk.leverage

    def cross_unrealized(self, now_ms: int) -> float:
        return sum(
            self.unrealized(d, now_ms) for d in self.desks.values() if d.margin_type == "CROSSED"
        )

    def available(self, now_ms: int) -> float:
        """Wallet + cross unrealized PnL - margin of positions and open orders."""
        held = sum(
            self.position_margin(d, now_ms) + self.order_margin(d, now_ms)
            for d in self.desks.values()
        )
        return self.wallet + self.cross_unrealized(now_ms) - held

    def open_algo_count(self) -> int:
        return sum(len(d.open_algo_ids) for d in self.desks.values())

    # -- orders ---------------------------------------------------------------------------

    def place(self, req: OrderRequest, now_ms: int) -> tuple[LocalOrder, list[UserEvent]]:
        """A new order of the matching engine: checked, then filled, rested or expired."""
        desk = self.desks[req.symbol]
        self._check_client_id(desk, req.client_id)
        if len(desk.open_ids) >= MAX_OPEN_ORDERS:
            raise codes.max_open_orders()
        last = self.mark(desk, now_ms)
        sign = 1 if req.side == "BUY" else -1
        marketable = req.type == MARKET or (sign * (req.price - last) >= 0 if last > 0 else False)
        if req.reduce_only and (desk.side == 0 or desk.side == sign):
            raise codes.reduce_only_rejected()
        if req.type == LIMIT and marketable and req.time_in_force == "GTX":
            raise codes.gtx_rejected()
        if req.type == LIMIT and not marketable and req.time_in_force == "FOK":
            raise codes.fok_rejected()
        if not req.reduce_only:
            self._check_margin(desk, sign, req.quantity, req.price or last, now_ms)
        wire = now_ms + self.shift_ms
        order = LocalOrder(
            self.ids.order(), req.client_id or _auto_client_id(), req.symbol, req.side, req.type,
            req.quantity, req.price, req.time_in_force, req.reduce_only, False,
            time_ms=wire, update_ms=wire, leverage=desk.leverage,
        )  # fmt: skip
        desk.orders[order.order_id] = order
        desk.open_ids[order.client_id] = order.order_id
        events = [answer.order_update(desk.tape, order, NEW, wire)]
        if req.type == MARKET:
            order.matched_at = AT_VENUE
            events += self._to_venue(desk, order, now_ms)
        elif marketable:  # a limit that crosses the market takes at the latest price
            fill_price = min(req.price, last) if sign > 0 else max(req.price, last)
            events += self._taker_fill(desk, order, fill_price, order.quantity, now_ms)
        elif req.time_in_force == "IOC":
            events += self._finish(desk, order, EXPIRED, now_ms, ER_IOC)
        elif req.reduce_only:
            order.matched_at = AT_VENUE
            events += self._to_venue(desk, order, now_ms)
        return order, events

    def cancel(self, desk: Desk, order: LocalOrder, now_ms: int) -> list[UserEvent]:
        if not order.is_open:
            raise codes.unknown_order_sent()
        if order.matched_at == AT_VENUE:
            self._venue(desk, [CancelOrder(self._venue_id(desk, order.order_id), desk.symbol)])
        return self._finish(desk, order, CANCELED, now_ms)

    def find(self, desk: Desk, order_id: int | None, client_id: str | None) -> LocalOrder:
        if order_id is not None:
            found = desk.orders.get(order_id)
            if found is not None and (client_id is None or found.client_id == client_id):
                return found
            raise codes.no_such_order()
        assert client_id is not None
        if client_id in desk.open_ids:
            return desk.orders[desk.open_ids[client_id]]
        for o in reversed(desk.orders.values()):
            if o.client_id == client_id:
                return o
        raise codes.no_such_order()

    # -- algo orders ----------------------------------------------------------------------

    def place_algo(self, req: OrderRequest, now_ms: int) -> tuple[AlgoOrder, list[UserEvent]]:
        desk = self.desks[req.symbol]
        client = req.client_id or _auto_client_id()
        if client in desk.open_algo_ids:
            raise codes.client_id_duplicated()
        if self.open_algo_count() >= MAX_ALGO_ORDERS:
            raise codes.max_open_orders()
        last = self.mark(desk, now_ms)
        sign = 1 if req.side == "BUY" else -1
        if req.type == TRAILING_STOP_MARKET:
            activate = req.activate_price or last
            if req.activate_price and sign * (req.activate_price - last) >= 0:
                raise codes.would_trigger()  # a SELL trailing activates above the market
        else:
            activate = 0.0
            if _rises(req.type, sign):
                if last >= req.trigger_price:
                    raise codes.would_trigger()
            elif last <= req.trigger_price:
                raise codes.would_trigger()
        wire = now_ms + self.shift_ms
        algo = AlgoOrder(
            self.ids.algo(), client, req.symbol, req.side, req.type, req.quantity,
            req.trigger_price, req.price, req.time_in_force, req.working_type,
            req.close_position, req.reduce_only, req.price_protect, activate, req.callback_rate,
            create_ms=wire, update_ms=wire,
        )  # fmt: skip
        if req.type == TRAILING_STOP_MARKET and not req.activate_price:
            algo.activated, algo.extreme = True, last
        desk.algos[algo.algo_id] = algo
        desk.open_algo_ids[client] = algo.algo_id
        if req.type == STOP_MARKET and (req.reduce_only or req.close_position):
            # The backtest's stop: the venue triggers and fills it in one kernel step.
            algo.actual_order_id = self.ids.order()
            desk.venue_algos[algo.actual_order_id] = algo.algo_id
            self._venue(desk, [PlaceOrder(
                self._venue_id(desk, algo.actual_order_id), desk.symbol, "stop_market", "stop",
                sign, req.quantity, req.trigger_price, True, req.close_position, "",
                float(desk.leverage),
            )])  # fmt: skip
        return algo, [answer.algo_update(desk.tape, algo, wire, None)]

    def cancel_algo(self, desk: Desk, algo: AlgoOrder, now_ms: int) -> list[UserEvent]:
        if not algo.is_open:
            raise codes.unknown_order_sent()
        if algo.actual_order_id and algo.actual_order_id in desk.venue_algos:
            self._venue(desk, [CancelOrder(self._venue_id(desk, algo.actual_order_id),
                                           desk.symbol)])  # fmt: skip
            del desk.venue_algos[algo.actual_order_id]
            algo.actual_order_id = 0
        return self._finish_algo(desk, algo, CANCELED, now_ms, None)

    def find_algo(self, desk: Desk | None, algo_id: int | None, client: str | None) -> AlgoOrder:
        desks = [desk] if desk is not None else list(self.desks.values())
        for d in desks:
            if algo_id is not None and algo_id in d.algos:
                found = d.algos[algo_id]
                if client is None or found.client_algo_id == client:
                    return found
            elif client is not None:
                if client in d.open_algo_ids:
                    return d.algos[d.open_algo_ids[client]]
                for a in reversed(d.algos.values()):
                    if a.client_algo_id == client:
                        return a
        raise codes.no_such_order()

    # -- configuration --------------------------------------------------------------------

    def set_leverage(self, desk: Desk, leverage: int, now_ms: int) -> list[UserEvent]:
        if not 1 <= leverage <= max_leverage(desk.tape):
            raise codes.bad_leverage(str(leverage))
        if desk.side and abs(desk.amt) * self.mark(desk, now_ms) > max_notional(
            desk.tape, leverage
        ):
            raise codes.max_position()
        desk.leverage = leverage
        wire = now_ms + self.shift_ms
        return [{"e": "ACCOUNT_CONFIG_UPDATE", "E": wire, "T": wire,
                 "ac": {"s": desk.symbol, "l": leverage}}]  # fmt: skip

    def set_margin_type(self, desk: Desk, margin_type: str) -> None:
        if margin_type == desk.margin_type:
            raise codes.margin_type_unchanged()
        if desk.side:
            raise codes.margin_type_position()
        if desk.open_ids or desk.open_algo_ids:
            raise codes.margin_type_open_orders()
        desk.margin_type = margin_type

    # -- the market moves -----------------------------------------------------------------

    def open_candle(self, symbol: str, i: int, now_ms: int) -> list[UserEvent]:
        """Candle ``i`` of the symbol's finest series opens: funding due, waiting market
        orders fill at its open."""
        desk = self.desks[symbol]
        c = desk.tape.candles
        funding = desk.tape.funding
        times = funding.time_ms if funding is not None else _NO_TIMES
        rates = funding.rate if funding is not None else _NO_RATES
        events = desk.sim.open_bar(
            int(c.open_time_ms[i]), float(c.open[i]), float(c.high[i]), float(c.low[i]),
            float(c.close[i]), times, rates,
        )  # fmt: skip
        return self._from_venue(desk, events, now_ms)

    def close_candle(self, symbol: str, i: int, now_ms: int) -> list[UserEvent]:
        """Candle ``i`` closes: the venue matches its orders on the candle, then the orders it
        does not hold, in the same order the backtest would see them."""
        desk = self.desks[symbol]
        events = self._from_venue(desk, desk.sim.match_bar(), now_ms)
        if desk.open_ids or desk.open_algo_ids:
            c = desk.tape.candles
            o, h, low = float(c.open[i]), float(c.high[i]), float(c.low[i])
            events += self._match_algos(desk, o, h, low, now_ms)
            events += self._match_limits(desk, h, low, now_ms)
        if desk.side:
            events += self._margin_call(desk, float(desk.tape.candles.close[i]), now_ms)
        return events

    def _margin_call(self, desk: Desk, mark: float, now_ms: int) -> list[UserEvent]:
        """``MARGIN_CALL`` once when the position's maintenance margin reaches 80 % of what
        backs it (its isolated wallet, or the cross wallet, plus its unrealized PnL); again
        only after it fell back below."""
        isolated = desk.margin_type == "ISOLATED"
        unrealized = (mark - desk.entry) * desk.amt
        backing = (desk.isolated_wallet() if isolated else self.wallet) + unrealized
        maintenance = desk.maintenance(mark)
        risky = backing <= 0 or maintenance >= MARGIN_CALL_RATIO * backing
        called, desk.margin_called = desk.margin_called, risky
        if not risky or called:
            return []
        wire = now_ms + self.shift_ms
        tape = desk.tape
        return [{
            "e": "MARGIN_CALL", "E": wire, "cw": f"{self.wallet:.8f}",
            "p": [{
                "s": desk.symbol, "ps": "BOTH", "pa": f"{desk.amt:.{tape.qty_decimals}f}",
                "mt": "ISOLATED" if isolated else "CROSSED",
                "iw": f"{desk.isolated_wallet() if isolated else 0.0:.8f}",
                "mp": f"{mark:.8f}", "up": f"{unrealized:.8f}", "mm": f"{maintenance:.8f}",
            }],
        }]  # fmt: skip

    def end_of_data(self, symbol: str, now_ms: int) -> list[UserEvent]:
        desk = self.desks[symbol]
        c = desk.tape.candles
        events = desk.sim.end_of_data(float(c.close[-1]), int(now_ms))
        return self._from_venue(desk, events, now_ms)

    def _match_limits(self, desk: Desk, high: float, low: float, now_ms: int) -> list[UserEvent]:
        """Resting limit orders outside the venue: a buy fills at its price once the candle
        trades at or below it, as the maker (a gap through it still fills at its price)."""
        events: list[UserEvent] = []
        for o in desk.open_orders():
            if o.matched_at != AT_BOOK or o.type != LIMIT:
                continue
            if (o.sign > 0 and low <= o.price) or (o.sign < 0 and high >= o.price):
                if o.reduce_only and (desk.side == 0 or desk.side == o.sign):
                    events += self._finish(desk, o, EXPIRED, now_ms, ER_REDUCE_ONLY)
                    continue
                qty = min(o.left, abs(desk.amt)) if o.reduce_only else o.left
                fee = fee_nb(o.price, qty, True, self.costs)
                events += self._book_fill(desk, o, o.price, qty, fee, True, now_ms)
        return events

    def _match_algos(self, desk: Desk, open_: float, high: float, low: float,
                     now_ms: int) -> list[UserEvent]:  # fmt: skip
        events: list[UserEvent] = []
        for a in desk.open_algos():
            if a.actual_order_id and a.actual_order_id in desk.venue_algos:
                continue  # the venue's stop
            level = _trigger_level(a, open_, high, low)
            if level is None:
                continue
            events += self._trigger(desk, a, level, high - low, now_ms)
        return events

    def _trigger(self, desk: Desk, a: AlgoOrder, level: float, bar_range: float,
                 now_ms: int) -> list[UserEvent]:  # fmt: skip
        """The algo order triggered at ``level``: its actual order goes to the engine."""
        wire = now_ms + self.shift_ms
        a.trigger_ms = wire
        reducing_only = a.reduce_only or a.close_position
        if reducing_only and (desk.side == 0 or desk.side == a.sign):
            a.reject_reason = "Reduce Only reject"
            return self._finish_algo(desk, a, REJECTED, now_ms, None)
        qty = abs(desk.amt) if a.close_position else a.quantity
        if reducing_only:
            qty = min(qty, abs(desk.amt))
        market = a.order_type in (STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET)
        order = LocalOrder(
            self.ids.order(), _auto_client_id(), a.symbol, a.side, MARKET if market else LIMIT,
            qty, 0.0 if market else a.price, a.time_in_force, a.reduce_only,
            a.close_position, a.trigger_price, a.working_type, a.order_type,
            time_ms=wire, update_ms=wire, leverage=desk.leverage,
        )  # fmt: skip
        a.actual_order_id = order.order_id
        a.status = TRIGGERED
        desk.orders[order.order_id] = order
        desk.open_ids[order.client_id] = order.order_id
        events = [answer.algo_update(desk.tape, a, wire, order),
                  answer.order_update(desk.tape, order, NEW, wire)]  # fmt: skip
        if market:
            events += self._taker_fill(desk, order, level, qty, now_ms, bar_range)
        elif order.sign * (order.price - level) >= 0:  # the limit is marketable at once
            fill = min(order.price, level) if order.sign > 0 else max(order.price, level)
            events += self._taker_fill(desk, order, fill, qty, now_ms, bar_range)
        return events + self._finish_algo(desk, a, FINISHED, now_ms, order)

    # -- fills and their accounting --------------------------------------------------------

    def _taker_fill(self, desk: Desk, order: LocalOrder, level: float, qty: float,
                    now_ms: int, bar_range: float = 0.0) -> list[UserEvent]:  # fmt: skip
        """A fill that takes liquidity at ``level``, priced as the kernels price a market
        order (slippage, taker fee)."""
        if desk.side == -order.sign:  # reduces (an exit of the position's side)
            price, fee = exit_fill_terms_nb(desk.side, level, qty, False, False, bar_range,
                                            self.costs)  # fmt: skip
        else:
            price, fee = entry_fill_terms_nb(order.sign, qty, level, bar_range, self.costs)
        return self._book_fill(desk, order, float(price), qty, float(fee), False, now_ms)

    def _book_fill(self, desk: Desk, order: LocalOrder, price: float, qty: float, fee: float,
                   maker: bool, now_ms: int) -> list[UserEvent]:  # fmt: skip
        """A fill decided here: booked into the venue (its position, margin, liquidation)."""
        desk.sim.fill_at(
            order.order_id, order.sign, qty, price, maker, float(desk.leverage), int(now_ms)
        )
        return self._fill(desk, order, price, qty, fee, maker, now_ms)

    def _fill(self, desk: Desk, order: LocalOrder, price: float, qty: float, fee: float,
              maker: bool, now_ms: int) -> list[UserEvent]:  # fmt: skip
        realized = self._move_position(desk, order.sign, qty, price)
        self.wallet += realized - fee
        wire = now_ms + self.shift_ms
        desk.position_ms = self.update_ms = wire
        order.executed += qty
        order.cum_quote += qty * price
        order.update_ms = wire
        done = order.close_position or order.executed >= order.quantity * (1 - _TOL)
        if order.type == MARKET and order.reduce_only:
            done = True  # a reduce-only market order ends with what it could reduce
        order.status = FILLED if done else PARTIALLY_FILLED
        trade_id = self.ids.trade(desk.symbol)
        desk.trades.append(Trade(trade_id, order.order_id, desk.symbol, order.side, price, qty,
                                 fee, realized, maker, wire))  # fmt: skip
        if realized:
            self.income.append(Income(desk.symbol, "REALIZED_PNL", realized, wire, trade_id))
        self.income.append(Income(desk.symbol, "COMMISSION", -fee, wire, trade_id))
        if done:
            desk.open_ids.pop(order.client_id, None)
        self._refresh_cross(now_ms)
        tape = desk.tape
        return [
            answer.trade_lite(tape, order, wire, qty, price, trade_id, maker),
            answer.order_update(tape, order, "TRADE", wire, last_qty=qty, last_price=price,
                                fee=fee, trade_id=trade_id, maker=maker, realized=realized),
            self.account_update("ORDER", [desk], now_ms),
        ]  # fmt: skip

    def _move_position(self, desk: Desk, sign: int, qty: float, price: float) -> float:
        """One-way mode: fills net against the position; the realized PnL of the part that
        reduces it (before fees)."""
        realized = 0.0
        if desk.side == -sign:
            reduced = min(qty, abs(desk.amt))
            realized = (price - desk.entry) * reduced * desk.side
            desk.amt += sign * reduced
            qty -= reduced
            if abs(desk.amt) <= _TOL * max(reduced, 1.0):
                desk.amt, desk.entry = 0.0, 0.0
        if qty > _TOL:
            total = abs(desk.amt) + qty
            desk.entry = (desk.entry * abs(desk.amt) + price * qty) / total
            desk.amt = sign * total
        desk.realized += realized
        return realized

    def _finish(self, desk: Desk, order: LocalOrder, status: str, now_ms: int,
                reason: int = 0) -> list[UserEvent]:  # fmt: skip
        wire = now_ms + self.shift_ms
        order.status = status
        order.update_ms = wire
        order.expiry_reason = reason
        desk.open_ids.pop(order.client_id, None)
        return [answer.order_update(desk.tape, order, status, wire)]

    def _finish_algo(self, desk: Desk, algo: AlgoOrder, status: str, now_ms: int,
                     actual: LocalOrder | None) -> list[UserEvent]:  # fmt: skip
        wire = now_ms + self.shift_ms
        algo.status = status
        algo.update_ms = wire
        desk.open_algo_ids.pop(algo.client_algo_id, None)
        return [answer.algo_update(desk.tape, algo, wire, actual)]

    def _check_client_id(self, desk: Desk, client: str | None) -> None:
        if client is not None and client in desk.open_ids:
            raise codes.client_id_duplicated()

    def _check_margin(self, desk: Desk, sign: int, qty: float, price: float,
                      now_ms: int) -> None:  # fmt: skip
        opening = qty - min(qty, abs(desk.amt)) if desk.side == -sign else qty
        if opening <= 0:
            return
        after = (abs(desk.amt) if desk.side == sign else 0.0) + opening
        if after * price > max_notional(desk.tape, desk.leverage):
            raise codes.max_position()
        needed = opening * price / desk.leverage + fee_nb(price, opening, False, self.costs)
        if needed > self.available(now_ms) + 1e-9:
            raise codes.margin_insufficient()

    def _refresh_cross(self, now_ms: int) -> None:
        """Cross positions: the venue's liquidation price as if the wallet left after the
        isolated positions and the other cross positions' margin backs the position (exact
        for one cross position; the others' PnL is not counted)."""
        for desk in self.desks.values():
            if desk.margin_type != "CROSSED" or not desk.side:
                continue
            others = sum(
                self.position_margin(d, now_ms) for d in self.desks.values() if d is not desk
            )
            collateral = max(self.wallet - others, 0.0)
            liq = liquidation_price_nb(
                desk.side, desk.entry, abs(desk.amt), collateral, desk.tape.rules.brackets
            )
            desk.sim.set_collateral(collateral, float(liq))

    # -- the venue ------------------------------------------------------------------------

    def _venue_id(self, desk: Desk, order_id: int) -> str:
        return desk.sim.order_id(order_id)

    def _venue(self, desk: Desk, commands: list[Any]) -> list[Event]:
        return desk.sim.execute(commands)

    def _to_venue(self, desk: Desk, order: LocalOrder, now_ms: int) -> list[UserEvent]:
        events = self._venue(desk, [PlaceOrder(
            self._venue_id(desk, order.order_id), desk.symbol, _engine_kind(order.type),
            "entry", order.sign, order.quantity, order.price, order.reduce_only, False, "",
            float(desk.leverage),
        )])  # fmt: skip
        return self._from_venue(desk, events, now_ms)

    def _from_venue(self, desk: Desk, events: list[Event], now_ms: int) -> list[UserEvent]:
        out: list[UserEvent] = []
        for e in events:
            if isinstance(e, OrderFilled):
                seq = desk.sim.order_seq(e.client_order_id)
                assert seq is not None
                out += self._venue_fill(desk, seq, e, now_ms)
            elif isinstance(e, OrderExpired):
                seq = _seq(desk, e.client_order_id)
                order = desk.orders.get(seq)
                if order is not None and order.is_open:
                    reason = ER_REDUCE_ONLY if order.reduce_only else ER_MARKET
                    out += self._finish(desk, order, EXPIRED, now_ms, reason)
            elif isinstance(e, (OrderCanceled, OrderRejected)):
                continue  # answered where the command was given
            elif isinstance(e, FundingPaid):
                out += self._funding(desk, e, now_ms)
            elif isinstance(e, PositionLiquidated):
                out += self._liquidated(desk, e, now_ms)
        return out

    def _venue_fill(self, desk: Desk, seq: int, e: OrderFilled, now_ms: int) -> list[UserEvent]:
        algo_id = desk.venue_algos.pop(seq, None)
        events: list[UserEvent] = []
        if algo_id is not None:  # the venue's stop triggered and filled
            a = desk.algos[algo_id]
            wire = now_ms + self.shift_ms
            a.trigger_ms = wire
            a.status = TRIGGERED
            qty = abs(desk.amt) if a.close_position else a.quantity
            order = LocalOrder(
                seq, _auto_client_id(), a.symbol, a.side, MARKET, qty, 0.0, a.time_in_force,
                a.reduce_only, a.close_position, a.trigger_price, a.working_type, a.order_type,
                time_ms=wire, update_ms=wire, matched_at=AT_VENUE, leverage=desk.leverage,
            )  # fmt: skip
            desk.orders[seq] = order
            events += [answer.algo_update(desk.tape, a, wire, order),
                       answer.order_update(desk.tape, order, NEW, wire)]  # fmt: skip
            events += self._fill(desk, order, e.price, e.quantity, e.fee, False, now_ms)
            return events + self._finish_algo(desk, a, FINISHED, now_ms, order)
        order = desk.orders[seq]
        maker = order.type == LIMIT
        return self._fill(desk, order, e.price, e.quantity, e.fee, maker, now_ms)

    def _funding(self, desk: Desk, e: FundingPaid, now_ms: int) -> list[UserEvent]:
        self.wallet -= e.amount
        wire = e.time_ms + self.shift_ms
        self.income.append(Income(desk.symbol, "FUNDING_FEE", -e.amount, wire))
        self._refresh_cross(now_ms)
        return [self.account_update("FUNDING_FEE", [desk] if desk.margin_type == "ISOLATED"
                                    else [], now_ms)]  # fmt: skip

    def _liquidated(self, desk: Desk, e: PositionLiquidated, now_ms: int) -> list[UserEvent]:
        """The venue liquidated the position at its liquidation price: the realized loss,
        and the rest of the maintenance margin to the insurance fund (an isolated position
        loses its whole isolated wallet)."""
        wire = now_ms + self.shift_ms
        side = "SELL" if desk.side > 0 else "BUY"
        clearance = desk.maintenance(e.price)
        order = LocalOrder(
            self.ids.order(), f"autoclose-{wire}", desk.symbol, side, LIQUIDATION, e.quantity,
            e.price, "IOC", True, False, time_ms=wire, update_ms=wire, matched_at=AT_VENUE,
        )  # fmt: skip
        desk.orders[order.order_id] = order
        desk.open_ids[order.client_id] = order.order_id
        events = self._fill(desk, order, e.price, e.quantity, 0.0, False, now_ms)
        self.wallet -= clearance
        self.income.append(Income(desk.symbol, "INSURANCE_CLEAR", -clearance, wire))
        events[1]["o"]["x"] = "CALCULATED"
        return [*events, self.account_update("ORDER", [desk], now_ms)]

    # -- ACCOUNT_UPDATE -------------------------------------------------------------------

    def account_update(self, reason: str, desks: list[Desk], now_ms: int) -> UserEvent:
        wire = now_ms + self.shift_ms
        wallet = f"{self.wallet:.8f}"
        return {
            "e": "ACCOUNT_UPDATE", "E": wire, "T": wire,
            "a": {
                "m": reason,
                "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": "0"}],
                "P": [self.position_row(d, now_ms) for d in desks],
            },
        }  # fmt: skip

    def position_row(self, desk: Desk, now_ms: int) -> dict[str, Any]:
        tape = desk.tape
        isolated = desk.margin_type == "ISOLATED"
        return {
            "s": desk.symbol, "pa": f"{desk.amt:.{tape.qty_decimals}f}",
            "ep": f"{desk.entry:.8f}", "bep": f"{desk.entry:.8f}",
            "cr": f"{desk.realized:.8f}", "up": f"{self.unrealized(desk, now_ms):.8f}",
            "mt": "isolated" if isolated else "cross",
            "iw": f"{desk.isolated_wallet() if isolated else 0.0:.8f}", "ps": "BOTH",
        }  # fmt: skip


_NO_TIMES = np.zeros(0, dtype=np.int64)
_NO_RATES = np.zeros(0)


def _seq(desk: Desk, venue_id: str) -> int:
    seq = desk.sim.order_seq(venue_id)
    return seq if seq is not None else -1


def _auto_client_id() -> str:
    """What Binance names an order sent without a client id (22 letters and digits)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(22))


def _rises(order_type: str, sign: int) -> bool:
    """Does the order trigger when the price rises to its trigger? STOP buys and TAKE_PROFIT
    sells do (reference §2.5b)."""
    if order_type in (STOP_MARKET, STOP):
        return sign > 0
    return sign < 0


def _trigger_level(a: AlgoOrder, open_: float, high: float, low: float) -> float | None:
    """Where a candle triggers the algo order: its trigger price, or the open when the candle
    opened beyond it (a gap); trailing orders follow the best price since activation."""
    if a.order_type == TRAILING_STOP_MARKET:
        return _trailing_level(a, open_, high, low)
    if a.order_type in (STOP_MARKET, STOP, TAKE_PROFIT_MARKET, TAKE_PROFIT):
        if _rises(a.order_type, a.sign):
            if high >= a.trigger_price:
                return max(open_, a.trigger_price)
        elif low <= a.trigger_price:
            return min(open_, a.trigger_price)
    return None


def _trailing_level(a: AlgoOrder, open_: float, high: float, low: float) -> float | None:
    """A SELL trailing stop (closing a long) activates at ``activate_price`` or above, then
    triggers once the price falls ``callback_rate`` % from the highest price since; a BUY one
    mirrors it. Inside one candle the path is unknown: the adverse move is checked against the
    extreme reached before the candle, then the extreme moves (never both ways at once)."""
    rate = a.callback_rate / 100.0
    if a.sign < 0:
        if a.activated:
            stop = a.extreme * (1 - rate)
            if low <= stop:
                return min(open_, stop)
            a.extreme = max(a.extreme, high)
        elif high >= a.activate_price:
            a.activated, a.extreme = True, high
        return None
    if a.activated:
        stop = a.extreme * (1 + rate)
        if high >= stop:
            return max(open_, stop)
        a.extreme = min(a.extreme, low)
    elif low <= a.activate_price:
        a.activated, a.extreme = True, low
    return None
