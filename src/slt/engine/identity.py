"""Client order ids: unique across runs and restarts, readable, and valid on Binance.

An id is ``<run>-<symbol>-<number>``: the run id is chosen once when a session's state is
created (a journal or snapshot carries it on), the number is the state's order sequence, so
a resumed session continues it and a new session never reuses an old id. Binance takes
``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``; a symbol too long to fit is replaced by a short digest.
"""

from __future__ import annotations

import functools
import hashlib
import re

CLIENT_ORDER_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
RUN_ID = re.compile(r"^[a-z0-9]{4,10}$")
MAX_LENGTH = 36
_SEQ_DIGITS = 10  # room kept for the order number


def run_id_from(seed: int) -> str:
    """A run id from a number the shell picks (the clock, a random draw): 8 base-36 digits."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    value = seed % 36**8
    out = ""
    for _ in range(8):
        value, rest = divmod(value, 36)
        out = digits[rest] + out
    return out


@functools.lru_cache(maxsize=1024)
def _symbol_part(run_id: str, symbol: str) -> str:
    room = MAX_LENGTH - len(run_id) - 2 - _SEQ_DIGITS
    if len(symbol) <= room and re.fullmatch(r"[A-Z0-9]+", symbol):
        return symbol
    return "h" + hashlib.sha256(symbol.encode()).hexdigest()[: room - 1]


@functools.lru_cache(maxsize=4096)
def client_order_id(run_id: str, symbol: str, seq: int) -> str:
    """Valid on Binance by construction (the tests check the pattern on long symbols)."""
    return f"{run_id}-{_symbol_part(run_id, symbol)}-{seq}"


@functools.lru_cache(maxsize=4096)
def parse_client_order_id(
    text: str, run_id: str, symbols: tuple[str, ...]
) -> tuple[int, int] | None:
    """(symbol index, order number) of one of this run's ids, None for anything else (an
    order of another run, or placed by hand)."""
    parts = text.split("-")
    if len(parts) != 3 or parts[0] != run_id or not parts[2].isdigit():
        return None
    index = _symbol_parts(run_id, symbols).get(parts[1])
    return None if index is None else (index, int(parts[2]))


@functools.lru_cache(maxsize=64)
def _symbol_parts(run_id: str, symbols: tuple[str, ...]) -> dict[str, int]:
    return {_symbol_part(run_id, symbol): index for index, symbol in enumerate(symbols)}
