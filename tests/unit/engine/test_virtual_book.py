"""The virtual book closes each virtual position exactly as ``virtual_outcomes`` does, one
candle at a time, on real BTCUSDT data, also when it is exported and rebuilt halfway (a
restart); bad input gets a clear error.

The positions come from the portfolio reducer, as in a session: each candle's close goes to
the reducer with the model's gate shut, and its ``OpenVirtualPosition`` goes to the book.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from tests.conftest import CATMAN_BTC_5M, FILIMONOV_BTC_1M, real_ohlcv

from slt.domain.records import VirtualTrade
from slt.domain.resample import resample
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.strategies.ema_cross import EmaCross
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.messages import CandleClosed, OpenVirtualPosition
from slt.engine.pipeline import stop_distances
from slt.engine.reducer import Reducer
from slt.engine.virtual import virtual_outcomes
from slt.engine.virtual_book import MinuteArrays, VirtualBook, VirtualBookError
from slt.runtime.trading_config import TradingConfig

pytestmark = pytest.mark.shared_data

F64 = npt.NDArray[np.float64]
TICK = symbol_rules("BTCUSDT").tick_size
SCHEMA = "a1b2c3d4e5f60718"
RISK = {"sizing": "fixed", "risk_pct": 1.0, "leverage_min": 1, "leverage_max": 1}
BASE: dict[str, Any] = {
    "risk": RISK,
    "costs": {"funding": False, "slippage_bps": 1.0, "slippage_range_fraction": 0.05},
}
# Partial target, trailing stop, break-even and a time stop: the state a restart must keep.
RICH = TradingConfig.model_validate(
    {
        **BASE,
        "exits": {
            "stop_loss_pct": 0.8,
            "take_profit_pct": 1.6,
            "partial_take_profit_pct": 0.6,
            "trailing_activation_pct": 0.6,
            "trailing_distance_pct": 0.3,
            "break_even_trigger_pct": 0.4,
            "max_holding_minutes": 360,
            "exit_on_opposite": False,
        },
    }
)
ATR_STOPS = TradingConfig.model_validate(
    {
        **BASE,
        "risk": {**RISK, "sizing": "atr", "atr_stop_min_pct": 0.3},
        "exits": {"take_profit_pct": 1.2, "max_holding_minutes": 180, "exit_on_opposite": False},
    }
)
TIGHT = TradingConfig.model_validate(
    {**BASE, "exits": {"stop_loss_pct": 0.15, "take_profit_pct": 0.2, "exit_on_opposite": False}}
)
FIELDS = (
    "symbol", "direction", "entry_time_ms", "entry_price", "stop_loss_pct", "take_profit_pct",
    "exit_time_ms", "exit_price", "exit_reason", "return_pct", "reward", "won", "model_version",
    "feature_schema_hash",
)  # fmt: skip


def _candles(path: Path, timeframe: str, market: Market, rows: slice) -> Candles:
    raw = real_ohlcv(path)
    return Candles.from_arrays(
        SeriesKey("BTCUSDT", market, timeframe), raw.times_ms[rows], raw.open[rows],
        raw.high[rows], raw.low[rows], raw.close[rows], raw.volume[rows],
    )  # fmt: skip


def _features(candles: Candles) -> F64:
    """Opaque rows the book must carry to each trade: any per-candle values do."""
    return np.column_stack([candles.close, candles.volume, np.arange(len(candles), dtype=float)])


def _batch(candles: Candles, config: TradingConfig, minute: Candles | None) -> list[VirtualTrade]:
    engine = config.engine()
    direction = EmaCross().signals(candles, None).direction
    out = virtual_outcomes(
        candles.open_time_ms, candles.open, candles.high, candles.low, candles.close,
        candles.key.timeframe_ms, direction, stop_distances(engine.stops, candles),
        engine.exits, engine.costs, TICK, minute=minute,
    )  # fmt: skip
    return out.records("BTCUSDT", _features(candles), SCHEMA, "none")


def _minutes_of(minute: Candles | None, open_ms: int, tf: int) -> MinuteArrays | None:
    if minute is None:
        return None
    a, b = np.searchsorted(minute.open_time_ms, [open_ms, open_ms + tf])
    return minute.open_time_ms[a:b], minute.open[a:b], minute.high[a:b], minute.low[a:b]


def _stream(
    candles: Candles,
    config: TradingConfig,
    minute: Candles | None = None,
    rebuild_at: int | None = None,
) -> tuple[list[VirtualTrade], int]:
    """Candle by candle through the reducer and the book; with ``rebuild_at``, the book is
    exported there and a new one rebuilt from the export. Returns the trades and how many
    positions the rebuilt book took over."""
    engine = config.engine()
    direction = EmaCross().signals(candles, None).direction
    stops = stop_distances(engine.stops, candles)
    features = _features(candles)
    reducer = Reducer(engine, [symbol_rules("BTCUSDT")])
    state = reducer.new_state("vbook")
    tf = candles.key.timeframe_ms

    def new_book() -> VirtualBook:
        return VirtualBook({"BTCUSDT": TICK}, tf, engine.exits, engine.costs)

    book, handed_over, trades = new_book(), 0, []
    for i in range(len(candles)):
        if i == rebuild_at:
            exported = book.positions()
            handed_over = len(exported)
            book = new_book()
            book.restore(exported)
        t = int(candles.open_time_ms[i])
        o, h, lo, c = (
            float(x[i]) for x in (candles.open, candles.high, candles.low, candles.close)
        )
        trades += book.on_candle("BTCUSDT", t, o, h, lo, c, minutes=_minutes_of(minute, t, tf))
        closed = CandleClosed(
            "BTCUSDT", t, t + tf, o, h, lo, c, int(direction[i]), 0.75, float(stops[i]), False
        )
        state, commands = reducer.step(state, closed)
        for command in commands:
            if isinstance(command, OpenVirtualPosition):
                book.open(command, features[i], SCHEMA)
    return trades, handed_over


def _assert_same(batch: list[VirtualTrade], stream: list[VirtualTrade]) -> None:
    # The batch lists trades by signal, the stream as they close: the entry time names one.
    ordered = sorted(stream, key=lambda t: t.entry_time_ms)
    assert len(ordered) == len(batch)
    for mine, theirs in zip(ordered, batch, strict=True):
        for name in FIELDS:
            assert getattr(mine, name) == getattr(theirs, name), (name, theirs.entry_time_ms)
        np.testing.assert_array_equal(mine.features, theirs.features)


@pytest.fixture(scope="module")
def btc_5m() -> Candles:
    return _candles(CATMAN_BTC_5M, "5m", Market.FUTURES, slice(0, 30_000))


@pytest.mark.parametrize("rebuild_at", [None, 15_000], ids=["one book", "rebuilt halfway"])
def test_stream_closes_every_virtual_position_as_the_batch_with_partial_trailing_break_even(
    btc_5m: Candles, rebuild_at: int | None
) -> None:
    batch = _batch(btc_5m, RICH, None)
    stream, handed_over = _stream(btc_5m, RICH, rebuild_at=rebuild_at)
    _assert_same(batch, stream)
    assert len(batch) > 1_000
    reasons = {t.exit_reason for t in stream}
    assert reasons >= {"stop_loss", "take_profit", "trailing_stop", "break_even", "time_stop"}
    assert handed_over >= (1 if rebuild_at else 0)


@pytest.mark.parametrize("rebuild_at", [None, 12_345])
def test_stream_equals_batch_with_atr_stops_that_vary_per_signal(
    btc_5m: Candles, rebuild_at: int | None
) -> None:
    candles = btc_5m.take(slice(5_000, 30_000))
    batch = _batch(candles, ATR_STOPS, None)
    stream, _ = _stream(candles, ATR_STOPS, rebuild_at=rebuild_at)
    _assert_same(batch, stream)
    assert len({t.stop_loss_pct for t in stream}) > 100


@pytest.mark.parametrize("rebuild_at", [None, 4_000])
def test_stream_orders_stop_and_target_inside_a_candle_on_its_one_minute_candles(
    rebuild_at: int | None,
) -> None:
    minute = _candles(FILIMONOV_BTC_1M, "1m", Market.SPOT, slice(0, 40_000))
    base = resample(minute, "5m", complete_only=True)
    worst = _batch(base, TIGHT, None)
    batch = _batch(base, TIGHT, minute)
    stream, _ = _stream(base, TIGHT, minute, rebuild_at=rebuild_at)
    _assert_same(batch, stream)
    assert sum(t.won for t in batch) > sum(t.won for t in worst)


def _book() -> VirtualBook:
    config = RICH.engine()
    return VirtualBook({"BTCUSDT": TICK}, 300_000, config.exits, config.costs)


def _command(entry_after_ms: int = 600_000, **changes: Any) -> OpenVirtualPosition:
    command = OpenVirtualPosition("BTCUSDT", entry_after_ms - 300_000, entry_after_ms, 1, 0.75,
                                  0.8, RICH.engine().exits.take_profit_pct, "none")  # fmt: skip
    return command._replace(**changes)


def test_a_nan_price_is_refused_with_the_candle_named() -> None:
    book = _book()
    with pytest.raises(VirtualBookError, match=r"BTCUSDT: candle prices must be finite.*nan"):
        book.on_candle("BTCUSDT", 300_000, 100.0, math.nan, 99.0, 100.0)


def test_an_unknown_symbol_is_refused_naming_the_symbols_followed() -> None:
    book = _book()
    with pytest.raises(VirtualBookError, match=r"unknown symbol 'ETHUSDT'.*follows BTCUSDT"):
        book.on_candle("ETHUSDT", 300_000, 100.0, 101.0, 99.0, 100.0)
    with pytest.raises(VirtualBookError, match="unknown symbol 'ETHUSDT'"):
        book.open(_command(symbol="ETHUSDT"), np.zeros(3), SCHEMA)


def test_a_candle_already_followed_is_refused() -> None:
    book = _book()
    book.on_candle("BTCUSDT", 300_000, 100.0, 101.0, 99.0, 100.0)
    with pytest.raises(VirtualBookError, match="before the close of the last candle followed"):
        book.on_candle("BTCUSDT", 300_000, 100.0, 101.0, 99.0, 100.0)


def test_a_position_opened_twice_or_after_its_entry_candle_is_refused() -> None:
    book = _book()
    book.open(_command(), np.zeros(3), SCHEMA)
    with pytest.raises(VirtualBookError, match="already followed"):
        book.open(_command(), np.zeros(3), SCHEMA)
    book.on_candle("BTCUSDT", 600_000, 100.0, 100.1, 99.9, 100.0)
    with pytest.raises(VirtualBookError, match="its entry candle has passed"):
        book.open(_command(entry_after_ms=300_000), np.zeros(3), SCHEMA)


def test_a_command_with_another_target_than_the_books_exits_is_refused() -> None:
    with pytest.raises(VirtualBookError, match=r"take_profit_pct 9\.0 differs"):
        _book().open(_command(take_profit_pct=9.0), np.zeros(3), SCHEMA)


def test_a_stored_state_of_another_kernel_version_is_refused_naming_the_fields() -> None:
    book = _book()
    book.open(_command(), np.zeros(3), SCHEMA)
    book.on_candle("BTCUSDT", 600_000, 100.0, 100.1, 99.9, 100.0)
    (entered,) = book.positions()
    assert entered.entry_price is not None and entered.exit_state is not None
    state = {k: v for k, v in entered.exit_state.items() if k != "best"} | {"peak": 1.0}
    with pytest.raises(VirtualBookError, match=r"missing \['best'\], unknown \['peak'\]"):
        _book().restore([replace(entered, exit_state=state)])
