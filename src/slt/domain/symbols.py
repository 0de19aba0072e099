"""Symbols as the exchange names them (``BTCUSDT``), mapped from freqtrade's pair spellings."""

from __future__ import annotations

import re

from slt.errors import SltError

_EXCHANGE_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")


class SymbolError(SltError):
    """A name that is neither an exchange symbol nor a freqtrade pair."""


def exchange_symbol(name: str) -> str:
    """Map ``BTC/USDT:USDT``, ``BTC_USDT_USDT``, ``BTC/USDT`` or ``btcusdt`` to ``BTCUSDT``.

    The settle currency of a futures pair (``:USDT`` or the third ``_USDT``) is dropped: Binance
    names the USDT-M perpetual and the spot market alike and tells them apart by market.
    """
    text = name.strip().upper()
    if ":" in text:
        text = text.split(":", 1)[0]
    parts = re.split(r"[/_-]", text)
    if len(parts) == 3 and parts[1] == parts[2]:
        parts = parts[:2]
    if len(parts) not in (1, 2) or not all(parts):
        raise SymbolError(f"cannot read a symbol from {name!r}: expected BTCUSDT or BTC/USDT:USDT")
    symbol = "".join(parts)
    if not _EXCHANGE_SYMBOL.match(symbol):
        raise SymbolError(f"cannot read a symbol from {name!r}: letters and digits only")
    return symbol
