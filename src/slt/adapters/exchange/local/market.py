"""The replayed market: one symbol's candles, funding and marks at any history moment, as
Binance's market-data endpoints answer them (reference §2.3, §2.4).

A client sees only what was known at the replayed moment. Closed candles of any interval are
the finest stored series aggregated (``resample``); the forming candle holds the finest candles
closed so far plus the open of the one in progress, because the path inside the finest stored
candle is unknown: its open is the latest price until it closes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from slt.adapters.exchange.local import codes
from slt.domain.resample import resample
from slt.domain.series import Candles, FundingRates
from slt.domain.timeframes import HOUR_MS, TIMEFRAME_MS, bucket_offset_ms
from slt.domain.trading.symbol_rules import SymbolRules

KLINE_LIMIT_DEFAULT = 500
KLINE_LIMIT_MAX = 1_500
FUNDING_INTERVAL_MS = 8 * HOUR_MS
Row = tuple[int, float, float, float, float, float]  # open time, o, h, l, c, volume


def decimals(increment: float) -> int:
    """Digits after the point of a tick or step size (0.10 -> 1, 0.001 -> 3, 1 -> 0)."""
    text = f"{increment:.12f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def kline_weight(limit: int) -> int:
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


@dataclass
class SymbolTape:
    """Everything replayed for one symbol; ``candles`` is its finest stored series."""

    rules: SymbolRules
    candles: Candles
    funding: FundingRates | None = None
    _by_interval: dict[str, Candles] = field(default_factory=dict, repr=False)

    @property
    def symbol(self) -> str:
        return self.rules.symbol

    @cached_property  # every price and quantity on the wire is formatted with these
    def price_decimals(self) -> int:
        return decimals(self.rules.tick_size)

    @cached_property
    def qty_decimals(self) -> int:
        return decimals(self.rules.step_size)

    @property
    def first_ms(self) -> int:
        return int(self.candles.open_time_ms[0])

    @property
    def end_ms(self) -> int:
        """When the data ends: the close of the last stored candle."""
        return int(self.candles.open_time_ms[-1]) + self.candles.key.timeframe_ms

    def interval_ms(self, interval: str) -> int:
        """The interval's length; -1120 for one Binance lacks or finer than the tape holds."""
        length = TIMEFRAME_MS.get(interval)
        fine = self.candles.key.timeframe_ms
        if length is None or interval == "1s" or length < fine or length % fine:
            raise codes.bad_interval()
        return length

    def klines(
        self, interval: str, now_ms: int, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Row]:
        """Candles by open time in [start, end], at most ``limit`` (from the start if given,
        else the newest), the forming one last; only what is known at ``now_ms``."""
        length = self.interval_ms(interval)
        closed = self._series(interval, length)
        times = closed.open_time_ms
        hi = int(np.searchsorted(times, now_ms - length, "right"))  # closed by now
        lo = 0
        if start_ms is not None:
            lo = int(np.searchsorted(times, start_ms, "left"))
        if end_ms is not None:
            hi = min(hi, int(np.searchsorted(times, end_ms, "right")))
        # Only the rows the answer can hold: the first ``limit`` from the start, or the newest.
        hi = min(hi, lo + limit) if start_ms is not None else hi
        lo = max(lo, hi - limit) if start_ms is None else lo
        rows = _rows(closed, lo, hi)
        forming = self.forming(length, now_ms)
        if forming is not None:
            t = forming[0]
            if (start_ms is None or t >= start_ms) and (end_ms is None or t <= end_ms):
                rows.append(forming)
        return rows[:limit] if start_ms is not None else rows[-limit:]

    def closed_klines(self, interval: str, start_ms: int, now_ms: int) -> list[Row]:
        """The candles of ``interval`` opened at ``start_ms`` or later and closed by ``now_ms``,
        oldest first (the same rows ``klines`` answers)."""
        length = self.interval_ms(interval)
        if start_ms + length > now_ms:
            return []
        closed = self._series(interval, length)
        times = closed.open_time_ms
        lo = int(np.searchsorted(times, start_ms, "left"))
        hi = int(np.searchsorted(times, now_ms - length, "right"))
        return _rows(closed, lo, hi)

    def forming(self, length: int, now_ms: int) -> Row | None:
        """The candle of ``length`` in progress at ``now_ms``: None before the data starts or
        after it ends."""
        fine = self.candles
        tf = fine.key.timeframe_ms
        if now_ms < self.first_ms or now_ms >= self.end_ms:
            return None
        begin = now_ms - (now_ms - bucket_offset_ms(length)) % length
        times = fine.open_time_ms
        a = int(np.searchsorted(times, begin, "left"))
        b = int(np.searchsorted(times, now_ms - tf, "right"))  # finest candles closed by now
        current = int(np.searchsorted(times, now_ms, "right")) - 1  # the one in progress
        prices: list[float] = []
        volume = 0.0
        opened = None
        if b > a:
            opened = float(fine.open[a])
            prices += [float(fine.high[a:b].max()), float(fine.low[a:b].min())]
            volume = float(fine.volume[a:b].sum())
            last = float(fine.close[b - 1])
        in_progress = current >= 0 and times[current] + tf > now_ms and times[current] >= begin
        if in_progress:
            last = float(fine.open[current])
            opened = last if opened is None else opened
            prices.append(last)
        if opened is None:
            return None  # a hole in the data: nothing traded in this candle yet
        return (begin, opened, max(prices), min(prices), last, volume)

    def last_price(self, now_ms: int) -> float | None:
        """The latest price known at ``now_ms``: the open of the finest candle in progress, or
        the close of the last one closed."""
        times = self.candles.open_time_ms
        i = int(np.searchsorted(times, now_ms, "right")) - 1
        if i < 0:
            return None
        if times[i] + self.candles.key.timeframe_ms > now_ms:
            return float(self.candles.open[i])
        return float(self.candles.close[i])

    def funding_rows(self, now_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, rates) of the fundings settled by ``now_ms``."""
        if self.funding is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        n = int(np.searchsorted(self.funding.time_ms, now_ms, "right"))
        return self.funding.time_ms[:n], self.funding.rate[:n]

    def next_funding_ms(self, now_ms: int) -> int:
        if self.funding is not None:
            times = self.funding.time_ms
            i = int(np.searchsorted(times, now_ms, "right"))
            if i < len(times):
                return int(times[i])
        return now_ms - now_ms % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS

    def forget_resampled(self) -> None:
        """The finest candles changed (a price-gap fault): coarser ones are made again."""
        self._by_interval.clear()

    def _series(self, interval: str, length: int) -> Candles:
        if length == self.candles.key.timeframe_ms:
            return self.candles
        if interval not in self._by_interval:
            self._by_interval[interval] = resample(self.candles, interval)
        return self._by_interval[interval]


def _rows(closed: Candles, lo: int, hi: int) -> list[Row]:
    """Candles ``lo:hi`` as answer rows (open time, o, h, l, c, volume)."""
    return list(
        zip(
            closed.open_time_ms[lo:hi].tolist(), closed.open[lo:hi].tolist(),
            closed.high[lo:hi].tolist(), closed.low[lo:hi].tolist(),
            closed.close[lo:hi].tolist(), closed.volume[lo:hi].tolist(), strict=True,
        )
    )  # fmt: skip
