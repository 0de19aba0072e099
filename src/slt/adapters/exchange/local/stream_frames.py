"""The JSON payloads of the local exchange's WebSocket streams, field for field as Binance
sends them (reference §6, §7): kline and markPriceUpdate events, listenKeyExpired, and the
replies to control messages. Times are wire times; numbers are strings with the symbol's
decimals, exactly as the REST answers format them."""

from __future__ import annotations

import json
from typing import Any

from slt.adapters.exchange.local import answers
from slt.adapters.exchange.local.market import Row, SymbolTape

# The store keeps no trades: a candle's first and last trade ids are unknown. -1 is what
# Binance gives a candle without trades.
NO_TRADE_ID = -1


def dump(payload: Any) -> str:
    """Compact JSON, as Binance sends it."""
    return json.dumps(payload, separators=(",", ":"))


def kline_event(
    tape: SymbolTape, interval: str, length_ms: int, row: Row, closed: bool, event_ms: int,
    shift_ms: int,
) -> dict[str, Any]:  # fmt: skip
    """A ``kline`` event of ``row`` (history times); ``closed`` is Binance's ``x``."""
    t, o, h, low, c, v, close_time, q, n, taker_v, taker_q, ignore = answers.kline_row(
        tape, row, length_ms, shift_ms
    )
    return {
        "e": "kline", "E": event_ms + shift_ms, "s": tape.symbol,
        "k": {
            "t": t, "T": close_time, "s": tape.symbol, "i": interval, "f": NO_TRADE_ID,
            "L": NO_TRADE_ID, "o": o, "c": c, "h": h, "l": low, "v": v, "n": n, "x": closed,
            "q": q, "V": taker_v, "Q": taker_q, "B": ignore,
        },
    }  # fmt: skip


_KLINE_JSON = (
    '{{"e":"kline","E":{E},"s":"{s}","k":{{"t":{t},"T":{T},"s":"{s}","i":"{i}","f":-1,'
    '"L":-1,"o":"{o}","c":"{c}","h":"{h}","l":"{l}","v":"{v}","n":{n},"x":{x},"q":"{q}",'
    '"V":"{V}","Q":"{Q}","B":"{B}"}}}}'
)


def kline_event_json(
    tape: SymbolTape, interval: str, length_ms: int, row: Row, closed: bool, event_ms: int,
    shift_ms: int,
) -> str:  # fmt: skip
    """``dump(kline_event(...))`` without building the dict: the streams' hot path. Every
    field is a number, a formatted decimal or a name of letters and digits, so nothing needs
    escaping."""
    t, o, h, low, c, v, close_time, q, n, taker_v, taker_q, ignore = answers.kline_row(
        tape, row, length_ms, shift_ms
    )
    return _KLINE_JSON.format(
        E=event_ms + shift_ms, s=tape.symbol, t=t, T=close_time, i=interval, o=o, c=c, h=h,
        l=low, v=v, n=n, x="true" if closed else "false", q=q, V=taker_v, Q=taker_q, B=ignore,
    )  # fmt: skip


def mark_price_event(tape: SymbolTape, now_ms: int, shift_ms: int) -> dict[str, Any]:
    """A ``markPriceUpdate`` event with the values GET /fapi/v1/premiumIndex gives."""
    p = answers.premium(tape, now_ms)
    return {
        "e": "markPriceUpdate", "E": now_ms + shift_ms, "s": tape.symbol,
        "p": p.mark_price, "i": p.index_price, "P": p.settle_price, "r": p.funding_rate,
        "T": p.next_funding_ms + shift_ms,
    }  # fmt: skip


def listen_key_expired(listen_key: str, wire_ms: int, e_as_string: bool = False) -> dict[str, Any]:
    """``e_as_string``: ``E`` as a string, as Binance has been seen to send it (go-binance#510)."""
    return {"e": "listenKeyExpired", "E": str(wire_ms) if e_as_string else wire_ms,
            "listenKey": listen_key}  # fmt: skip


def combined(stream_json: str, payload_json: str) -> str:
    """A payload wrapped for a combined connection; ``stream_json`` is the stream name as JSON."""
    return f'{{"stream":{stream_json},"data":{payload_json}}}'


def result(value: Any, request_id: Any) -> str:
    return dump({"result": value, "id": request_id})


def error(code: int, msg: str, request_id: Any = None) -> str:
    return dump({"error": {"code": code, "msg": msg}, "id": request_id})
