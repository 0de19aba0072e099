"""Everything a backtest reads from the store, checked to cover the span, with checksums."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from slt.adapters.store.parquet_store import ParquetStore
from slt.domain.clock import format_utc_ms
from slt.domain.results import MarketData
from slt.domain.series import Candles, FundingRates, Kind, Market, SeriesKey
from slt.domain.trading.symbol_rules import SymbolRules
from slt.errors import SltError


class MissingDataError(SltError):
    """The store does not cover the span a backtest asks for."""


@dataclass(frozen=True)
class DataFile:
    role: str
    path: str
    sha256: str
    rows: int


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_backtest_data(
    store: ParquetStore,
    symbol: str,
    market: Market,
    timeframe: str,
    start_ms: int,
    end_ms: int,
    warmup_ms: int,
    rules: SymbolRules,
) -> tuple[MarketData, list[DataFile]]:
    """Base candles from ``start_ms - warmup_ms``; funding, 8h mark and 1m candles if stored.

    Raises MissingDataError when the stored candles do not reach from start to end.
    """
    key = SeriesKey(symbol, market, timeframe, Kind.CANDLES)
    if not store.has(key):
        raise MissingDataError(
            f"the store holds no {key} candles; import or download them first "
            f"(slt data download --symbol {symbol} --market {market} --timeframe {timeframe})"
        )
    candles = store.load_candles(key, start_ms - warmup_ms, end_ms)
    tf = key.timeframe_ms
    inside = candles.open_time_ms[candles.open_time_ms >= start_ms]
    if len(inside) == 0 or inside[0] > start_ms + tf or inside[-1] + tf < end_ms - tf:
        full = store.load_candles(key)
        held = (
            f"{format_utc_ms(int(full.open_time_ms[0]))} to "
            f"{format_utc_ms(int(full.open_time_ms[-1]) + tf)}"
            if len(full)
            else "nothing"
        )
        raise MissingDataError(
            f"missing data: the backtest asks for {key} candles from {format_utc_ms(start_ms)} to "
            f"{format_utc_ms(end_ms)}, the store holds {held}"
        )
    files = [_file("candles", store, key, len(candles))]
    funding: FundingRates | None = None
    mark: Candles | None = None
    minute: Candles | None = None
    if market is Market.FUTURES:
        fkey = _stored(store, symbol, Kind.FUNDING)
        if fkey is not None:
            loaded = store.load(fkey, start_ms, end_ms + 1)
            if isinstance(loaded, FundingRates) and len(loaded):
                funding = loaded
                files.append(_file("funding", store, fkey, len(loaded)))
        mkey = _stored(store, symbol, Kind.MARK)
        if mkey is not None:
            mark = store.load_candles(mkey, start_ms, end_ms + 1)
            files.append(_file("mark", store, mkey, len(mark)))
    if timeframe != "1m":
        mkey = SeriesKey(symbol, market, "1m", Kind.CANDLES)
        if store.has(mkey):
            loaded_minute = store.load_candles(mkey, start_ms, end_ms)
            if len(loaded_minute):
                minute = loaded_minute
                files.append(_file("minute_candles", store, mkey, len(loaded_minute)))
    data = MarketData(
        candles=candles, start_ms=start_ms, rules=rules, funding=funding, mark=mark, minute=minute
    )
    return data, files


def _stored(store: ParquetStore, symbol: str, kind: Kind) -> SeriesKey | None:
    """The futures series of this kind for the symbol (funding intervals vary by symbol)."""
    keys = store.futures_keys(symbol, kind)
    return keys[0] if keys else None


def _file(role: str, store: ParquetStore, key: SeriesKey, rows: int) -> DataFile:
    path = store.path_for(key)
    return DataFile(role=role, path=str(path), sha256=sha256_file(path), rows=rows)
