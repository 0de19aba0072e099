"""Fees, slippage and funding of one fill or position (Binance USDT-M: fee on notional, maker
or taker; funding on the mark price)."""

from __future__ import annotations

from slt.domain.features.jit import step_jit
from slt.domain.trading.params import CostParams


@step_jit
def taker_price_nb(price: float, buy: bool, bar_range: float, c: CostParams) -> float:
    """The price a market (taker) order gets: worse by a fixed part and a share of the range."""
    slip = price * c.slippage_bps / 10_000.0 + c.slippage_range_fraction * bar_range
    return price + slip if buy else price - slip


@step_jit
def fee_nb(price: float, quantity: float, maker: bool, c: CostParams) -> float:
    rate = c.maker_fee_pct if maker else c.taker_fee_pct
    return abs(price * quantity) * rate / 100.0


@step_jit
def entry_fill_terms_nb(
    side: int, quantity: float, price: float, bar_range: float, c: CostParams
) -> tuple[float, float]:
    """(fill price, fee) of a market order that opens or adds to a position at ``price``."""
    filled = taker_price_nb(price, side > 0, bar_range, c)
    return filled, fee_nb(filled, quantity, False, c)


@step_jit
def exit_fill_terms_nb(
    side: int,
    price: float,
    quantity: float,
    liquidation: bool,
    maker: bool,
    bar_range: float,
    c: CostParams,
) -> tuple[float, float]:
    """(fill price, fee) of an exit of a ``side`` position: a resting limit fills at its level
    with the maker fee; market and stop orders pay slippage and the taker fee; a liquidation
    has neither."""
    if liquidation:
        return price, 0.0
    if maker:
        return price, fee_nb(price, quantity, True, c)
    filled = taker_price_nb(price, side < 0, bar_range, c)
    return filled, fee_nb(filled, quantity, False, c)


@step_jit
def funding_payment_nb(side: int, quantity: float, mark_price: float, rate: float) -> float:
    """What a position pays at a funding time (longs pay a positive rate; negative: received)."""
    paid: float = side * quantity * mark_price * rate
    return paid
