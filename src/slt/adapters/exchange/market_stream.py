"""The market-data stream client (issue 14 item 1): closed candles and mark prices of USDT-M
futures by WebSocket streams only, each candle once and in order per (symbol, timeframe), with
a bounded REST back-fill of what the streams missed (docs/exchange.md "Market data by streams").

For every key it subscribes ``<symbol>@kline_<tf>``, and ``<symbol>@markPrice@1s`` once per
symbol, on the ``/market`` base, as few connections as ``max_streams_per_connection`` allows
(``stream_link.StreamLink`` keeps each alive). The ordering rules are ``KlineSequencer``'s.
REST is used for nothing but the warm-up (from ``warmup_from``) and the back-fill of owed
candles, both through ``BinanceRest`` and its governor, and both counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import aiohttp

from slt.adapters.exchange.binance_klines import kline_weight, parse_klines
from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.kline_sequencer import Candle, CandleGap, KlineSequencer, Source
from slt.adapters.exchange.stream_link import StreamLink
from slt.domain.clock import format_utc_ms
from slt.domain.series import Market
from slt.domain.timeframes import TIMEFRAME_MS
from slt.errors import ExchangeError, SltError

__all__ = ["Candle", "CandleGap", "KlineRequest", "MarkPrice", "MarketData", "MarketStream"]

log = logging.getLogger(__name__)

MAX_STREAMS_PER_CONNECTION = 1_024  # Binance's limit (reference §6)
KLINES_PER_REQUEST = 1_500  # GET /fapi/v1/klines: the most one answer holds
Key = tuple[str, str]  # (symbol, timeframe)


class MarkPrice(NamedTuple):
    """A ``markPriceUpdate``: the mark and index price, the funding rate and when it is paid."""

    symbol: str
    time_ms: int
    mark_price: float
    index_price: float
    funding_rate: float
    next_funding_ms: int


MarketData = Candle | CandleGap | MarkPrice


class KlineRequest(NamedTuple):
    """One REST klines call the client made, for the logs and for tests."""

    symbol: str
    timeframe: str
    start_ms: int
    end_ms: int
    limit: int
    purpose: Source  # "warmup" | "backfill"


class MarketStream:
    """Runs until ``stop`` is set; ``on_data`` gets every candle, gap and mark price."""

    def __init__(
        self,
        rest: BinanceRest,
        ws_base_url: str,
        keys: Sequence[Key],
        on_data: Callable[[list[MarketData]], None],
        *,
        warmup_from: Mapping[Key, int] | None = None,
        disable_rest_fallback: bool = False,
        max_streams_per_connection: int = MAX_STREAMS_PER_CONNECTION,
        max_backfill_candles: int = KLINES_PER_REQUEST,
        late_final_grace_ms: int = 5_000,
        silence_s: float = 60.0,
        max_connection_age_s: float = 23.5 * 3_600,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        rng: random.Random | None = None,
    ) -> None:
        self.keys = list(dict.fromkeys((s.upper(), tf) for s, tf in keys))
        for symbol, tf in self.keys:
            if tf not in TIMEFRAME_MS or not symbol.isalnum():
                raise SltError(f"market stream: no Binance klines for {symbol!r} {tf!r}")
        if not 1 <= max_streams_per_connection <= MAX_STREAMS_PER_CONNECTION:
            raise SltError("market stream: streams per connection must be 1 to 1,024")
        if max_backfill_candles < 1:
            raise SltError("market stream: max_backfill_candles must be at least 1")
        self.rest, self.ws_base_url, self.on_data = rest, ws_base_url.rstrip("/"), on_data
        self._warm = {(s.upper(), tf): t for (s, tf), t in (warmup_from or {}).items()}
        self.disable_rest_fallback = disable_rest_fallback
        self.max_backfill_candles = max_backfill_candles
        self.silence_s, self.max_connection_age_s = silence_s, max_connection_age_s
        self.backoff_s, self._rng = backoff_s, rng or random.Random()
        self._seq = {
            key: KlineSequencer(
                *key, late_final_grace_ms=late_final_grace_ms, start_open_ms=self._warm.get(key)
            )
            for key in self.keys
        }
        self._by_symbol: dict[str, list[KlineSequencer]] = {}
        for key in self.keys:
            self._by_symbol.setdefault(key[0], []).append(self._seq[key])
        self._kline_streams = {f"{s.lower()}@kline_{tf}": (s, tf) for s, tf in self.keys}
        self._mark_streams = {f"{s.lower()}@markPrice@1s": s for s in self._by_symbol}
        self.stream_groups = _groups(self.keys, max_streams_per_connection)
        self.links: list[StreamLink] = []
        self._last_mark_ms: dict[str, int] = {}
        self._fetches: set[asyncio.Task[None]] = set()
        self._crashed: asyncio.Future[None] | None = None
        self.requests: deque[KlineRequest] = deque(maxlen=1_000)
        self.rest_kline_requests_warmup = 0
        self.rest_kline_requests_backfill = 0
        self.rest_kline_weight = 0
        self.candles = {"stream": 0, "warmup": 0, "backfill": 0}
        self.gaps = 0
        self.backfill_failures = 0  # REST klines calls that failed (their span: a gap)
        self.backfill_skipped = 0  # spans not fetched: disabled, over the bound or the budget
        self.bad_frames = 0

    # -- counters -----------------------------------------------------------------------

    @property
    def rest_kline_requests(self) -> int:
        return self.rest_kline_requests_warmup + self.rest_kline_requests_backfill

    @property
    def duplicates(self) -> int:
        return sum(s.duplicates for s in self._seq.values())

    @property
    def connections(self) -> int:
        return sum(link.connections for link in self.links)

    @property
    def drops(self) -> int:
        return sum(link.drops for link in self.links)

    @property
    def silent_reconnects(self) -> int:
        return sum(link.silent_reconnects for link in self.links)

    @property
    def proactive_reconnects(self) -> int:
        return sum(link.proactive_reconnects for link in self.links)

    @property
    def live(self) -> bool:
        """Every connection is up."""
        return bool(self.links) and all(link.live for link in self.links)

    # -- running ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        # A kline stream may be quiet for up to its candle's length (stream_link).
        allowance = {name: self._seq[key].tf_ms / 1000 for name, key in self._kline_streams.items()}
        async with aiohttp.ClientSession() as session:
            self.links = [
                StreamLink(
                    session,
                    self.ws_base_url,
                    names,
                    self._on_frame,
                    silence_s=self.silence_s,
                    max_connection_age_s=self.max_connection_age_s,
                    backoff_s=self.backoff_s,
                    rng=self._rng,
                    allowance_s=allowance,
                )
                for names in self.stream_groups
            ]
            log.info("market stream: %d streams on %d connections",
                     sum(map(len, self.stream_groups)), len(self.links))  # fmt: skip
            crashed = self._crashed = asyncio.get_running_loop().create_future()
            tasks = [asyncio.create_task(link.run(stop)) for link in self.links]
            links = asyncio.gather(*tasks)
            try:
                done, _ = await asyncio.wait({links, crashed},
                                             return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                for future in done:
                    future.result()  # a consumer's or a bug's error ends the client
            finally:
                crashed.cancel()
                for task in [*tasks, *self._fetches]:
                    task.cancel()
                await asyncio.gather(*tasks, *self._fetches, return_exceptions=True)
                with contextlib.suppress(BaseException):
                    await links

    def _on_frame(self, stream: str, data: dict[str, Any]) -> None:
        items: list[MarketData] = []
        try:
            if stream in self._kline_streams:
                symbol = self._kline_streams[stream][0]
                k = data["k"]
                if k["x"] is True:
                    seq = self._seq[self._kline_streams[stream]]
                    items += seq.on_final(Candle(
                        symbol, seq.timeframe, int(k["t"]), float(k["o"]), float(k["h"]),
                        float(k["l"]), float(k["c"]), float(k["v"]), "stream"))  # fmt: skip
            elif stream in self._mark_streams:
                symbol = self._mark_streams[stream]
                mark = MarkPrice(symbol, int(data["E"]), float(data["p"]), float(data["i"]),
                                 float(data.get("r") or 0.0), int(data.get("T") or 0))  # fmt: skip
                if mark.time_ms > self._last_mark_ms.get(symbol, -1):  # not twice in overlaps
                    self._last_mark_ms[symbol] = mark.time_ms
                    items.append(mark)
            else:
                return
            event_ms = int(data["E"])
        except (KeyError, TypeError, ValueError) as exc:
            self.bad_frames += 1
            log.warning("market stream: a malformed %s frame (%s)", stream, exc)
            return
        for seq in self._by_symbol[symbol]:
            seq.observe(event_ms)
        self._emit(items)
        for seq in self._by_symbol[symbol]:
            self._start_fetch(seq)

    def _emit(self, items: Sequence[MarketData]) -> None:
        for item in items:
            if isinstance(item, Candle):
                self.candles[item.source] += 1
            elif isinstance(item, CandleGap):
                self.gaps += 1
                log.warning("market stream: %s %s candles %s to %s are missing: %s",
                            item.symbol, item.timeframe, format_utc_ms(item.from_open_ms),
                            format_utc_ms(item.to_open_ms), item.reason)  # fmt: skip
        if items:
            self.on_data(list(items))

    # -- warm-up and back-fill by REST --------------------------------------------------

    def _start_fetch(self, seq: KlineSequencer) -> None:
        span = seq.due()
        if span is None:
            return
        seq.begin_fetch(*span)
        task = asyncio.create_task(self._fetch(seq, *span))
        self._fetches.add(task)
        task.add_done_callback(self._fetched)

    def _fetched(self, task: asyncio.Task[None]) -> None:
        self._fetches.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        if self._crashed is not None and not self._crashed.done():
            self._crashed.set_exception(task.exception())  # type: ignore[arg-type]

    async def _fetch(self, seq: KlineSequencer, first_ms: int, last_ms: int) -> None:
        """Fetch the owed span (the warm-up until the key's first streamed candle, a back-fill
        after it), page by page, emitting each page as it is settled."""
        warmup = (seq.symbol, seq.timeframe) in self._warm and not seq.streamed
        purpose: Source = "warmup" if warmup else "backfill"
        tf = seq.tf_ms
        count = (last_ms - first_ms) // tf + 1
        if not warmup:
            log.warning("market stream: %s %s: %d candle(s) from %s missed by the stream",
                        seq.symbol, seq.timeframe, count, format_utc_ms(first_ms))  # fmt: skip
            if self.disable_rest_fallback:
                self.backfill_skipped += 1
                self._emit(seq.settle(first_ms, last_ms, [], "REST back-fill disabled"))
                return
            if count > self.max_backfill_candles:
                kept_from = last_ms - (self.max_backfill_candles - 1) * tf
                reason = f"more than max_backfill_candles ({self.max_backfill_candles}) missing"
                self.backfill_skipped += 1
                self._emit(seq.settle(first_ms, kept_from - tf, [], reason))
                first_ms = kept_from
        cursor = first_ms
        while cursor <= last_ms:
            page_last = min(last_ms, cursor + (KLINES_PER_REQUEST - 1) * tf)
            limit = (page_last - cursor) // tf + 1
            weight = kline_weight(Market.FUTURES, limit)
            governor = self.rest.governor
            if not warmup and governor.wait_ms(weight, self.rest.wall_ms()) > 0:
                self.backfill_skipped += 1
                self._emit(seq.settle(cursor, last_ms, [], "over the REST weight budget"))
                break
            try:
                fetched = await self._klines(seq, cursor, page_last, limit, purpose)
            except (ExchangeError, aiohttp.ClientError, TimeoutError) as exc:
                self.backfill_failures += 1
                log.warning("market stream: %s %s klines failed: %s",
                            seq.symbol, seq.timeframe, exc)  # fmt: skip
                self._emit(seq.settle(cursor, last_ms, [], f"REST klines failed: {exc}"))
                break
            self._emit(seq.settle(cursor, page_last, fetched, "not on the exchange"))
            cursor = page_last + tf
        self._start_fetch(seq)  # finals that waited may have shown another hole

    async def _klines(self, seq: KlineSequencer, first_ms: int, last_ms: int, limit: int,
                      purpose: Source) -> list[Candle]:  # fmt: skip
        weight = kline_weight(Market.FUTURES, limit)
        self.requests.append(KlineRequest(seq.symbol, seq.timeframe, first_ms, last_ms,
                                          limit, purpose))  # fmt: skip
        if purpose == "warmup":
            self.rest_kline_requests_warmup += 1
        else:
            self.rest_kline_requests_backfill += 1
        self.rest_kline_weight += weight
        log.info("market stream: %s %s klines %s to %s by REST (%s, %d)", seq.symbol,
                 seq.timeframe, format_utc_ms(first_ms), format_utc_ms(last_ms), purpose,
                 limit)  # fmt: skip
        answer = await self.rest.public("GET", "/fapi/v1/klines", {
            "symbol": seq.symbol, "interval": seq.timeframe, "startTime": first_ms,
            "endTime": last_ms, "limit": limit}, weight=weight)  # fmt: skip
        rows = parse_klines(answer.body, f"{seq.symbol} {seq.timeframe}", seq.tf_ms)
        return [
            Candle(seq.symbol, seq.timeframe, t, o, h, low, c, v, purpose)
            for t, (o, h, low, c, v) in zip(
                rows.open_time_ms.tolist(), rows.ohlcv.tolist(), strict=True
            )
        ]


def _groups(keys: Sequence[Key], cap: int) -> list[list[str]]:
    """Stream names in connections of at most ``cap``: a symbol's klines, then its mark price,
    symbol after symbol."""
    names: list[str] = []
    symbols = list(dict.fromkeys(s for s, _ in keys))
    for symbol in symbols:
        names += [f"{symbol.lower()}@kline_{tf}" for s, tf in keys if s == symbol]
        names.append(f"{symbol.lower()}@markPrice@1s")
    return [names[i : i + cap] for i in range(0, len(names), cap)]
