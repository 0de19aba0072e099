"""The replayed market, read from the project's store: per symbol its finest stored futures
candles (1m where imported), its funding rates, and its exchange rules."""

from __future__ import annotations

from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.store.parquet_store import ParquetStore
from slt.domain.clock import format_utc_ms
from slt.domain.series import FundingRates, Kind
from slt.domain.trading.symbol_rules import symbol_rules
from slt.errors import SltError


def load_tapes(
    store: ParquetStore, symbols: list[str], start_ms: int, end_ms: int | None
) -> dict[str, SymbolTape]:
    """Every symbol's history up to ``end_ms`` (clients may ask for candles before the replay
    starts, as they would of Binance); refuses a symbol the store cannot replay from
    ``start_ms``."""
    tapes: dict[str, SymbolTape] = {}
    for symbol in symbols:
        held = store.futures_keys(symbol, Kind.CANDLES)
        if not held:
            raise SltError(
                f"the store holds no futures candles of {symbol}; import or download them "
                f"first (slt data download --symbol {symbol} --market futures --timeframe 1m)"
            )
        finest = held[0]  # shortest timeframe first
        candles = store.load_candles(finest, None, end_ms)
        if len(candles) == 0 or not (
            candles.open_time_ms[0] <= start_ms < candles.open_time_ms[-1] + finest.timeframe_ms
        ):
            span = (
                f"{format_utc_ms(int(candles.open_time_ms[0]))} to "
                f"{format_utc_ms(int(candles.open_time_ms[-1]) + finest.timeframe_ms)}"
                if len(candles)
                else "nothing"
            )
            raise SltError(
                f"cannot replay {symbol} from {format_utc_ms(start_ms)}: the store's {finest} "
                f"candles cover {span}"
            )
        funding = None
        rates = store.futures_keys(symbol, Kind.FUNDING)
        if rates:
            loaded = store.load(rates[0], None, end_ms)
            if isinstance(loaded, FundingRates) and len(loaded):
                funding = loaded
        tapes[symbol] = SymbolTape(symbol_rules(symbol), candles, funding)
    return tapes
