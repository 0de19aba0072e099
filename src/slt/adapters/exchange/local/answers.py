"""The JSON bodies of the local exchange's market-data answers, field for field as Binance
sends them (reference §2.2-§2.4, §2.8): numbers as strings, times as integers on the wire."""

from __future__ import annotations

from typing import Any, NamedTuple

from slt.adapters.exchange.local.limits import ORDERS_PER_10S, ORDERS_PER_MINUTE
from slt.adapters.exchange.local.market import Row, SymbolTape
from slt.domain.trading.margin_nb import CAP, CUM, FLOOR, MAX_LEVERAGE, MMR

ORDER_TYPES = [
    "LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]  # fmt: skip
TIME_IN_FORCE = ["GTC", "IOC", "FOK", "GTX"]
ONBOARD_MS = 1_569_398_400_000  # BTCUSDT's listing, 2019-09-25
FAR_DELIVERY_MS = 4_133_404_800_000  # what Binance gives perpetuals: 2100-12-25


def price(tape: SymbolTape, value: float) -> str:
    return f"{value:.{tape.price_decimals}f}"


def qty(tape: SymbolTape, value: float) -> str:
    return f"{value:.{tape.qty_decimals}f}"


def _num(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"


def symbol_info(tape: SymbolTape) -> dict[str, Any]:
    r = tape.rules
    base = r.symbol[: -len("USDT")]
    return {
        "symbol": r.symbol, "pair": r.symbol, "contractType": "PERPETUAL",
        "deliveryDate": FAR_DELIVERY_MS, "onboardDate": ONBOARD_MS, "status": "TRADING",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": base, "quoteAsset": "USDT", "marginAsset": "USDT",
        "pricePrecision": tape.price_decimals, "quantityPrecision": tape.qty_decimals,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
        "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
        "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        "orderTypes": ORDER_TYPES, "timeInForce": TIME_IN_FORCE,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": price(tape, r.tick_size),
             "maxPrice": price(tape, 10_000_000.0), "tickSize": price(tape, r.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": qty(tape, r.step_size), "maxQty": "1000",
             "stepSize": qty(tape, r.step_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": qty(tape, r.step_size), "maxQty": "120",
             "stepSize": qty(tape, r.step_size)},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": _num(r.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.1000",
             "multiplierDown": "0.5454", "multiplierDecimal": "4"},
        ],
    }  # fmt: skip


def exchange_info(tapes: list[SymbolTape], server_ms: int, weight_limit: int) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": server_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
             "limit": ORDERS_PER_MINUTE},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": ORDERS_PER_10S},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [symbol_info(t) for t in tapes],
    }  # fmt: skip


def kline_row(tape: SymbolTape, row: Row, length_ms: int, shift_ms: int) -> list[Any]:
    """Binance's 12 fields. Quote volume is volume x close (the store keeps no trades); trade
    counts and taker volumes are unknown and sent as 0."""
    t, o, h, low, c, v = row
    return [
        t + shift_ms, price(tape, o), price(tape, h), price(tape, low), price(tape, c),
        qty(tape, v), t + shift_ms + length_ms - 1, f"{v * c:.4f}", 0, qty(tape, 0.0),
        "0.0000", "0",
    ]  # fmt: skip


class Premium(NamedTuple):
    """The mark-price facts at one history moment, as premiumIndex and the markPrice stream
    both tell them (prices as strings, ``next_funding_ms`` in history time)."""

    mark_price: str
    index_price: str
    settle_price: str
    funding_rate: str
    next_funding_ms: int


def premium(tape: SymbolTape, now_ms: int) -> Premium:
    """Mark, index and settle prices are the last traded price of the replay (the store keeps
    only 8-hourly marks); the funding rate is the last one settled, never the coming one."""
    last = tape.last_price(now_ms)
    shown = price(tape, last) if last is not None else ""
    _, rates = tape.funding_rows(now_ms)
    rate = f"{float(rates[-1]):.8f}" if len(rates) else "0.00000000"
    return Premium(shown, shown, shown, rate, tape.next_funding_ms(now_ms))


def premium_index(tape: SymbolTape, now_ms: int, shift_ms: int) -> dict[str, Any]:
    p = premium(tape, now_ms)
    return {
        "symbol": tape.symbol, "markPrice": p.mark_price, "indexPrice": p.index_price,
        "estimatedSettlePrice": p.settle_price, "lastFundingRate": p.funding_rate,
        "interestRate": "0.00010000", "nextFundingTime": p.next_funding_ms + shift_ms,
        "time": now_ms + shift_ms,
    }  # fmt: skip


def funding_row(tape: SymbolTape, time_ms: int, rate: float, shift_ms: int) -> dict[str, Any]:
    mark = tape.last_price(time_ms)
    return {
        "symbol": tape.symbol, "fundingRate": f"{rate:.8f}", "fundingTime": time_ms + shift_ms,
        "markPrice": price(tape, mark) if mark is not None else "", "rateType": "Regular",
    }  # fmt: skip


def leverage_bracket(tape: SymbolTape) -> dict[str, Any]:
    b = tape.rules.brackets
    return {
        "symbol": tape.symbol,
        "notionalCoef": 1.0,
        "brackets": [
            {
                "bracket": i + 1, "initialLeverage": int(b[i, MAX_LEVERAGE]),
                "notionalCap": int(b[i, CAP]), "notionalFloor": int(b[i, FLOOR]),
                "maintMarginRatio": float(b[i, MMR]), "cum": float(b[i, CUM]),
            }
            for i in range(b.shape[0])
        ],
    }  # fmt: skip
