"""Reads of the account cache (issue 14: median < 1 µs, they are dictionary reads).

    .venv/bin/python benchmarks/bench_account_cache.py [--write]

The cache is filled the way the stream fills it: ACCOUNT_UPDATE, ORDER_TRADE_UPDATE and
ALGO_UPDATE events for 20 symbols, each with a position, two open orders and a stop. Each read
is timed in batches of 10,000 calls (timeit), the median per call over 50 batches.
"""

from __future__ import annotations

import os
import platform
import statistics
import timeit

from bench_data import cpu_model, publish
from slt.adapters.exchange.account_state import AccountState

BEGIN, END = "<!-- bench_account_cache:begin -->", "<!-- bench_account_cache:end -->"
SYMBOLS = [f"SYM{i}USDT" for i in range(20)]


def filled() -> AccountState:
    state = AccountState()
    for n, symbol in enumerate(SYMBOLS):
        state.apply({"e": "ACCOUNT_UPDATE", "E": n, "T": n, "a": {"m": "ORDER",
            "B": [{"a": "USDT", "wb": "1000", "cw": "1000", "bc": "0"}],
            "P": [{"s": symbol, "pa": "1.5", "ep": "100", "bep": "100", "cr": "0", "up": "2",
                   "mt": "isolated", "iw": "10", "ps": "BOTH"}]}})  # fmt: skip
        for k in range(2):
            state.apply({"e": "ORDER_TRADE_UPDATE", "E": n, "T": n, "o": {
                "s": symbol, "c": f"slt-{symbol}-{k}", "S": "SELL", "o": "LIMIT", "f": "GTC",
                "q": "1.5", "p": "110", "ap": "0", "sp": "0", "x": "NEW", "X": "NEW",
                "i": n * 10 + k, "l": "0", "z": "0", "L": "0", "N": "USDT", "n": "0", "T": n,
                "t": 0, "m": False, "R": True, "ot": "LIMIT", "ps": "BOTH", "cp": False,
                "rp": "0"}})  # fmt: skip
        state.apply({"e": "ALGO_UPDATE", "E": n, "T": n, "o": {
            "caid": f"slt-{symbol}-stop", "aid": n, "at": "CONDITIONAL", "o": "STOP_MARKET",
            "s": symbol, "S": "SELL", "ps": "BOTH", "f": "GTC", "q": "0", "X": "NEW", "ai": "",
            "tp": "95", "p": "0", "cp": True, "R": False}})  # fmt: skip
    return state


def per_call_ns(stmt: str, state: AccountState) -> float:
    timer = timeit.Timer(stmt, globals={"state": state})
    batches = timer.repeat(repeat=50, number=10_000)
    return statistics.median(batches) / 10_000 * 1e9


def main() -> None:
    state = filled()
    reads = [
        ("position('SYM7USDT')", "state.position('SYM7USDT')"),
        ("open_order('slt-SYM7USDT-1')", "state.open_order('slt-SYM7USDT-1')"),
        ("open_algo('slt-SYM7USDT-stop')", "state.open_algo('slt-SYM7USDT-stop')"),
        ("wallet['USDT']", "state.wallet['USDT']"),
    ]
    rows = [f"| `{name}` | {per_call_ns(stmt, state):,.0f} ns |" for name, stmt in reads]
    text = "\n".join([
        BEGIN,
        "## Account cache reads (issue 14)",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        "An `AccountState` filled by stream events for 20 symbols (a position, two open "
        "orders and a stop each); each read timed by timeit in 50 batches of 10,000 calls, "
        "the median per call. Target: < 1 µs. `benchmarks/bench_account_cache.py`.",
        "",
        "| read | median per call |",
        "|---|---|",
        *rows,
        END,
    ])  # fmt: skip
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
