"""The adapter's proof over a replayed trading session (issue 14): 20 symbols on 1m candles at
``--speed max`` against the local exchange, traded by the engine through the market streams,
the order gateway and the user-data stream in one process (``runtime.live_session``).

- after the warm-up, not one REST klines request: every candle came by stream, each once;
- the total REST weight is reported (no 429, no 418);
- every fill the engine applied is one the exchange made, with the same trade id, price,
  quantity and fee, and every exchange fill reached the engine; positions agree at the end.

CI replays the first ``SLT_DAY_REPLAY_HOURS`` hours (default 2); ``SLT_DAY_REPLAY_HOURS=24``
replays the whole day (``benchmarks/bench_day_replay.py`` measures it).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.support.day_replay import MINUTE, replay_day, summary

pytestmark = pytest.mark.shared_data

HOURS = float(os.environ.get("SLT_DAY_REPLAY_HOURS", "2"))
SYMBOLS = 20


def test_a_replayed_session_of_20_symbols_trades_by_streams_alone(tmp_path: Path) -> None:
    r = replay_day(tmp_path, HOURS, SYMBOLS)
    logging.getLogger(__name__).warning("day replay, %.1f h: %s", HOURS, summary(r))
    market, counts, state = r.session.market, r.session.counts, r.session.state
    assert market is not None and state is not None

    # Streams alone after the warm-up: no back-fill, no gap, every candle once, to the end.
    assert market.rest_kline_requests_backfill == 0 and counts.gaps == 0
    # One page per symbol, and a second for the candles that closed while the first was
    # answered (at --speed max the market moves on as soon as the client is quiet).
    assert market.rest_kline_requests_warmup <= 2 * SYMBOLS
    assert counts.candles["stream"] >= SYMBOLS * (HOURS * 60 - 5)  # all but the first minutes
    assert set(counts.last_candle_ms.values()) == {r.end_ms - MINUTE}
    assert r.weight["weight"] > 0 and r.weight["429"] == 0 and r.weight["418"] == 0

    # The engine's fills are the exchange's, one for one.
    engine_fills = {(f.symbol, f.trade_id, f.price, f.quantity, f.fee) for f in counts.fills}
    assert len(engine_fills) == len(counts.fills)  # none applied twice
    assert len(engine_fills) >= 10  # the session traded
    assert r.exchange_trades == len(r.exchange_fills)
    assert engine_fills == r.exchange_fills

    # And so are the positions.
    book = state.book.positions
    books = {s: float(book[i]["qty"]) * int(book[i]["side"])
             for i, s in enumerate(state.symbols) if int(book[i]["side"])}  # fmt: skip
    assert books.keys() == r.exchange_positions.keys()
    for symbol, amount in books.items():
        assert amount == pytest.approx(r.exchange_positions[symbol], rel=1e-9)
