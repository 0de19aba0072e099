"""1-minute futures tapes for the local exchange, made from the real 1-minute candles in
``../shared/data`` (only spot BTC and ETH exist at 1m): each symbol is one of them, shifted by a
whole number of days so the symbols of one replayed day move differently. The files written
are temporary copies in the test's directory, never in the repository."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from slt.adapters.store.parquet_store import ParquetStore
from tests.conftest import FILIMONOV_BTC_1M, FILIMONOV_ETH_1M
from tests.support.local_exchange import real_store

SOURCES = (FILIMONOV_BTC_1M, FILIMONOV_ETH_1M)


def minute_store(root: Path, symbols: dict[str, tuple[Path, int]]) -> ParquetStore:
    """A store of 1m futures candles: ``symbol -> (source file, shift in days)``."""
    files = root / "futures"
    files.mkdir(parents=True, exist_ok=True)
    written = []
    for symbol, (source, days) in symbols.items():
        frame = pd.read_feather(source)
        frame["date"] = frame["date"] + pd.Timedelta(days=days)
        base = symbol.removesuffix("USDT")
        path = files / f"{base}_USDT_USDT-1m-futures.feather"
        frame.to_feather(path)
        written.append(path)
    return real_store(root / "store", written)


def many_symbols(count: int) -> dict[str, tuple[Path, int]]:
    """``count`` symbols (BTCUSDT, ETHUSDT, then S02USDT, ...), alternately BTC and ETH data,
    each later one shifted by one more day."""
    names = ["BTCUSDT", "ETHUSDT"] + [f"S{i:02d}USDT" for i in range(2, count)]
    return {name: (SOURCES[i % 2], i // 2) for i, name in enumerate(names[:count])}
