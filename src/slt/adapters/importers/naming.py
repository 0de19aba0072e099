"""What a market-data file's path says it holds: symbol, market, timeframe, kind.

Names are hints; the importer checks them against the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from slt.domain.series import Kind, Market
from slt.domain.symbols import SymbolError, exchange_symbol

DATA_SUFFIXES = (".feather", ".parquet", ".json.gz", ".json", ".csv", ".zip")

# freqtrade: BTC_USDT-5m.feather, BTC_USDT_USDT-5m-futures.feather, ...-8h-funding_rate.feather
_FREQTRADE = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,2})-(?P<tf>\d+[smhdwM])"
    r"(?:-(?P<kind>futures|mark|funding_rate|spot))?$"
)
_FREQTRADE_TRADES = re.compile(r"^[A-Za-z0-9_]+-trades$")
# Binance public archive: BTCUSDT-5m-2024-01.zip, BTCUSDT-fundingRate-2024-01.zip
_ARCHIVE_KLINES = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-(?P<tf>\d+[smhdw])-(?P<date>\d{4}-\d{2}(?:-\d{2})?)$"
)
_ARCHIVE_FUNDING = re.compile(r"^(?P<symbol>[A-Z0-9]+)-fundingRate-(?P<date>\d{4}-\d{2})$")
_FREQTRADE_KINDS = {
    None: Kind.CANDLES,
    "spot": Kind.CANDLES,
    "futures": Kind.CANDLES,
    "mark": Kind.MARK,
    "funding_rate": Kind.FUNDING,
}


@dataclass(frozen=True)
class FileHints:
    fmt: str  # one of DATA_SUFFIXES without the leading dot
    symbol: str | None = None
    market: Market | None = None
    timeframe: str | None = None
    kind: Kind | None = None
    trades: bool = False  # a trades file: not candles, skipped


def data_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in DATA_SUFFIXES if name.endswith(s)), None)


def _market_from_folders(path: Path) -> Market | None:
    parts = {p.lower() for p in path.parent.parts}
    if parts & {"futures", "um"}:
        return Market.FUTURES
    if "spot" in parts:
        return Market.SPOT
    return None


def hints_from_path(path: Path) -> FileHints:
    suffix = data_suffix(path)
    if suffix is None:
        return FileHints("")
    stem = path.name[: -len(suffix)]
    fmt = suffix[1:]
    if suffix in (".csv", ".zip"):
        return _archive_hints(path, stem, fmt)
    if _FREQTRADE_TRADES.match(stem):
        return FileHints(fmt, trades=True)
    match = _FREQTRADE.match(stem)
    if match is None:
        return FileHints(fmt, market=_market_from_folders(path))
    pair, kind_word = match.group("pair"), match.group("kind")
    try:
        symbol: str | None = exchange_symbol(pair)
    except SymbolError:
        symbol = None
    futures = kind_word in ("futures", "mark", "funding_rate") or pair.count("_") == 2
    market = Market.FUTURES if futures else _market_from_folders(path) or Market.SPOT
    timeframe: str | None = match.group("tf")
    if timeframe and timeframe.endswith("M"):  # freqtrade's month: no fixed length, data decides
        timeframe = None
    return FileHints(fmt, symbol, market, timeframe, _FREQTRADE_KINDS[kind_word])


def _archive_hints(path: Path, stem: str, fmt: str) -> FileHints:
    market = _market_from_folders(path)
    funding = _ARCHIVE_FUNDING.match(stem)
    if funding:
        return FileHints(fmt, funding.group("symbol"), Market.FUTURES, None, Kind.FUNDING)
    klines = _ARCHIVE_KLINES.match(stem)
    if klines is None:
        if "trades" in stem.lower():
            return FileHints(fmt, trades=True)
        return FileHints(fmt, market=market)
    mark = any(p.lower() == "markpriceklines" for p in path.parent.parts)
    if mark:
        market = Market.FUTURES
    return FileHints(
        fmt,
        klines.group("symbol"),
        market,
        klines.group("tf"),
        Kind.MARK if mark else Kind.CANDLES,
    )
