"""The canonical market-data series: candles (OHLCV) and funding rates in contiguous numpy columns.

Time is int64 milliseconds since the epoch, UTC; a candle is identified by its open time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from slt.domain.timeframes import timeframe_ms
from slt.errors import InvalidSeriesError

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class Market(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


class Kind(StrEnum):
    """What a series holds: traded candles, mark-price candles, or funding rates."""

    CANDLES = "candles"
    MARK = "mark"
    FUNDING = "funding"


@dataclass(frozen=True, order=True)
class SeriesKey:
    """Identifies one stored series: one file per symbol / market / timeframe / kind."""

    symbol: str
    market: Market
    timeframe: str
    kind: Kind = Kind.CANDLES

    @property
    def timeframe_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    def __str__(self) -> str:
        return f"{self.symbol} {self.market} {self.timeframe} {self.kind}"


PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def _int_column(values: object, name: str) -> I64:
    array = np.ascontiguousarray(values)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise InvalidSeriesError(f"{name} must be a 1-D integer array of milliseconds")
    return np.ascontiguousarray(array, dtype=np.int64)


def _float_column(values: object, name: str, length: int) -> F64:
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) != length:
        raise InvalidSeriesError(f"{name} must be a 1-D array as long as the time column")
    return array


@dataclass(frozen=True, eq=False)
class Candles:
    """OHLCV candles of one series, sorted by strictly increasing open time."""

    key: SeriesKey
    open_time_ms: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64

    @classmethod
    def from_arrays(
        cls,
        key: SeriesKey,
        open_time_ms: object,
        open: object,
        high: object,
        low: object,
        close: object,
        volume: object,
    ) -> Candles:
        times = _int_column(open_time_ms, "open_time_ms")
        n = len(times)
        candles = cls(
            key,
            times,
            _float_column(open, "open", n),
            _float_column(high, "high", n),
            _float_column(low, "low", n),
            _float_column(close, "close", n),
            _float_column(volume, "volume", n),
        )
        if n > 1 and not bool(np.all(np.diff(times) > 0)):
            raise InvalidSeriesError(f"{key}: open times must be strictly increasing")
        return candles

    @classmethod
    def empty(cls, key: SeriesKey) -> Candles:
        e = np.empty(0, dtype=np.float64)
        return cls(key, np.empty(0, dtype=np.int64), e, e.copy(), e.copy(), e.copy(), e.copy())

    def __len__(self) -> int:
        return len(self.open_time_ms)

    def columns(self) -> dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64]]:
        return {
            "open_time_ms": self.open_time_ms,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
        }

    def take(self, index: slice | npt.NDArray[np.int64] | npt.NDArray[np.bool_]) -> Candles:
        """Rows selected by a slice, index or mask, as contiguous copies."""
        cols = {name: np.ascontiguousarray(col[index]) for name, col in self.columns().items()}
        return Candles(self.key, **cols)  # type: ignore[arg-type]

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> Candles:
        """Candles whose open time lies in ``[start_ms, end_ms)``."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.open_time_ms, start_ms, "left"))
        hi = (
            len(self) if end_ms is None else int(np.searchsorted(self.open_time_ms, end_ms, "left"))
        )
        return self.take(slice(lo, hi))


@dataclass(frozen=True, eq=False)
class FundingRates:
    """Funding rates of one perpetual, by funding time (ms, UTC), sorted and unique."""

    key: SeriesKey
    time_ms: I64
    rate: F64

    @classmethod
    def from_arrays(cls, key: SeriesKey, time_ms: object, rate: object) -> FundingRates:
        times = _int_column(time_ms, "time_ms")
        funding = cls(key, times, _float_column(rate, "rate", len(times)))
        if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
            raise InvalidSeriesError(f"{key}: funding times must be strictly increasing")
        return funding

    def __len__(self) -> int:
        return len(self.time_ms)

    def columns(self) -> dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64]]:
        return {"time_ms": self.time_ms, "rate": self.rate}

    def take(self, index: slice | npt.NDArray[np.int64] | npt.NDArray[np.bool_]) -> FundingRates:
        return FundingRates(
            self.key,
            np.ascontiguousarray(self.time_ms[index]),
            np.ascontiguousarray(self.rate[index]),
        )

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> FundingRates:
        lo = 0 if start_ms is None else int(np.searchsorted(self.time_ms, start_ms, "left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.time_ms, end_ms, "left"))
        return self.take(slice(lo, hi))


Series = Candles | FundingRates
