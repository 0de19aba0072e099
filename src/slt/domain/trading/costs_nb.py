"""Fees and slippage of one fill (Binance USDT-M: fee on notional, maker or taker)."""

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
