"""Virtual positions followed one closed candle at a time: the learner's labels in paper and
live sessions, closed exactly as ``virtual_outcomes`` closes them in a backtest.

The book holds the simulated exchange's virtual-position table (``Venue``) and advances it
with the very phase kernel the compiled backtest runs per bar (``bar_phases_nb``): the entry
at the open after the signal, time stops at the open, stops, targets, trailing and break-even
exits inside the candle, the same costs. A session that holds no orders makes that kernel do
only the virtual positions' work. Pure: no I/O, no clock; the caller feeds candles in order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from slt.domain.features.jit import compiled_entry
from slt.domain.records import VirtualTrade
from slt.domain.trading.enums import EXIT_REASONS
from slt.domain.trading.exits_nb import FILL_COLUMNS
from slt.domain.trading.params import CostParams, ExitParams
from slt.domain.trading.position_nb import POSITION_DT
from slt.domain.trading.symbol_rules import symbol_rules
from slt.domain.virtual_position import ExitState, VirtualPositionState
from slt.engine import exchange_nb as nb
from slt.engine.book import symbol_table
from slt.engine.messages import OpenVirtualPosition
from slt.engine.records import EVENT_DT
from slt.engine.venue import (
    V_FREE,
    V_OPEN,
    VIRTUAL_OUTCOME_DT,
    Faults,
    VenueParams,
    grow_virtual,
    new_venue,
)
from slt.errors import SltError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
MinuteArrays = tuple[I64, F64, F64, F64]  # 1m open times, opens, highs, lows inside a candle
MINUTE_MS = 60_000
_EMPTY_T = np.zeros(0, dtype=np.int64)
_EMPTY = np.zeros(0)
_FIELDS = POSITION_DT.names or ()
_INT_FIELDS = frozenset(n for n in _FIELDS if POSITION_DT[n].kind == "i")


class VirtualBookError(SltError):
    """Input the book cannot follow: an unknown symbol, a bad price, a candle out of order,
    a position opened twice or after its entry, a stored state of another format."""


class _Carried(NamedTuple):
    """What the book keeps beside the kernel's slot: the signal and its opaque learning data."""

    command: OpenVirtualPosition
    features: F64
    feature_schema_hash: str


class VirtualBook:
    """Every symbol's open virtual positions, one unit each, with one configuration of exits
    and costs (the session's). ``tick_sizes``: the exchange's tick per symbol."""

    def __init__(
        self,
        tick_sizes: Mapping[str, float],
        timeframe_ms: int,
        exits: ExitParams,
        costs: CostParams,
    ) -> None:
        if not tick_sizes:
            raise VirtualBookError("a virtual book needs at least one symbol")
        if not _is_int(timeframe_ms) or timeframe_ms <= 0:
            raise VirtualBookError(f"timeframe_ms must be an integer above 0, got {timeframe_ms!r}")
        ticks = [float(t) for t in tick_sizes.values()]
        if not all(math.isfinite(t) and t >= 0 for t in ticks):
            raise VirtualBookError(f"tick sizes must be finite numbers >= 0, got {ticks}")
        self.symbols = tuple(tick_sizes)
        self.timeframe_ms = int(timeframe_ms)
        self.exits = exits
        self._index = {symbol: i for i, symbol in enumerate(self.symbols)}
        rules = [symbol_rules("VIRTUALUSDT")] * len(self.symbols)
        self._table = symbol_table(rules)._replace(tick_size=np.array(ticks, dtype=np.float64))
        self._params = VenueParams(costs, exits, self.timeframe_ms, Faults(), True)
        self._venue = new_venue(len(self.symbols), Faults())
        self._events = np.zeros(64, dtype=EVENT_DT)  # a book places no orders: never written
        self._buf = np.empty((2, FILL_COLUMNS))
        self._outcomes = np.zeros(len(self._venue.virtual), dtype=VIRTUAL_OUTCOME_DT)
        self._carried: dict[int, _Carried] = {}  # by the kernel's serial
        self._serial: dict[tuple[str, int], int] = {}  # (symbol, entry time) -> serial
        v, x, i = self._venue, 1.0, 0
        self._add = compiled_entry(nb.add_virtual_nb, v, i, i, i, i, x, x, i)
        self._bar = compiled_entry(
            nb.bar_phases_nb, v, self._params, self._table, i, i, x, x, x, x, _EMPTY_T, _EMPTY,
            _EMPTY, _EMPTY_T, _EMPTY, _EMPTY, _EMPTY, self._buf, self._events, self._outcomes,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self._carried)

    def __contains__(self, key: object) -> bool:
        """``(symbol, entry_time_ms)`` is followed (pending or open)."""
        return key in self._serial

    def last_close_ms(self, symbol: str) -> int:
        """Close time of the last candle of ``symbol`` followed (-1: none yet)."""
        return int(self._venue.symbols[self._sym(symbol)]["previous_close_ms"])

    # -- positions in -------------------------------------------------------------------

    def open(self, command: OpenVirtualPosition, features: F64, feature_schema_hash: str) -> None:
        """Follow the signal's virtual position from the open at ``entry_after_ms``, carrying
        its feature row and schema to the virtual trade it becomes."""
        self.pending(command, features, feature_schema_hash)
        self._follow(command, features, feature_schema_hash)

    def pending(
        self, command: OpenVirtualPosition, features: F64, feature_schema_hash: str
    ) -> VirtualPositionState:
        """The position ``open`` would follow, checked but not followed: a caller that stores
        it first (durable before it counts) asks this, then opens it."""
        sym = self._sym(command.symbol)
        self._check_command(command, sym)
        row = _feature_row(features, feature_schema_hash)
        c = command
        return VirtualPositionState(
            symbol=c.symbol, direction=c.direction, signal_time_ms=c.signal_time_ms,
            entry_time_ms=c.entry_after_ms, stop_loss_pct=c.stop_pct,
            take_profit_pct=c.take_profit_pct, confidence=c.confidence,
            model_version=c.model_version, features=row.copy(),
            feature_schema_hash=feature_schema_hash, seen_close_ms=self.last_close_ms(c.symbol),
        )  # fmt: skip

    def restore(self, positions: Iterable[VirtualPositionState]) -> None:
        """Take back positions that ``positions()`` exported (after a restart), in that order;
        each symbol resumes after the last candle they saw."""
        for p in sorted(positions, key=lambda p: (p.entry_time_ms, p.symbol)):
            sym = self._sym(p.symbol)
            command = OpenVirtualPosition(
                p.symbol, p.signal_time_ms, p.entry_time_ms, p.direction, p.confidence,
                p.stop_loss_pct, p.take_profit_pct, p.model_version,
            )  # fmt: skip
            self._check_command(command, sym, resumed=p.exit_state is not None)
            entered = None if p.exit_state is None else _position_row(p.exit_state, p.key)
            slot = self._follow(command, p.features, p.feature_schema_hash)
            if entered is not None:
                self._venue.virtual[slot] = entered
                self._venue.virtual_meta[slot]["state"] = V_OPEN
            symbol_row = self._venue.symbols[sym]
            symbol_row["previous_close_ms"] = max(
                int(symbol_row["previous_close_ms"]), p.seen_close_ms
            )

    def _follow(self, command: OpenVirtualPosition, features: F64, schema_hash: str) -> int:
        """Add the position to the kernel's table; returns its slot."""
        row = _feature_row(features, schema_hash)
        v = self._venue
        if len(v.virtual_meta) - v.counters[0] < 1:
            self._venue = v = grow_virtual(v)
            self._outcomes = np.zeros(len(v.virtual), dtype=VIRTUAL_OUTCOME_DT)
        serial = int(v.counters[1])
        self._add(
            v, self._index[command.symbol], command.signal_time_ms, command.entry_after_ms,
            command.direction, command.stop_pct, command.confidence, 0,
        )  # fmt: skip
        self._carried[serial] = _Carried(command, row.copy(), schema_hash)
        self._serial[(command.symbol, command.entry_after_ms)] = serial
        return int(np.flatnonzero(v.virtual_meta["serial"][: v.counters[2]] == serial)[-1])

    def _check_command(self, c: OpenVirtualPosition, sym: int, *, resumed: bool = False) -> None:
        key = (c.symbol, c.entry_after_ms)
        if key in self._serial:
            raise VirtualBookError(f"{c.symbol}: the virtual position entering at "
                                   f"{c.entry_after_ms} is already followed")  # fmt: skip
        if c.direction not in (1, -1):
            raise VirtualBookError(f"{c.symbol}: direction must be 1 or -1, got {c.direction!r}")
        if not (math.isfinite(c.stop_pct) and c.stop_pct > 0):
            raise VirtualBookError(f"{c.symbol}: stop_pct must be above 0, got {c.stop_pct!r}")
        if c.take_profit_pct != self.exits.take_profit_pct:
            raise VirtualBookError(
                f"{c.symbol}: take_profit_pct {c.take_profit_pct} differs from the book's exits "
                f"({self.exits.take_profit_pct}): the position would close at another target"
            )
        if not isinstance(c.model_version, str) or not c.model_version:
            raise VirtualBookError(f"{c.symbol}: model_version must be a non-empty string")
        seen = int(self._venue.symbols[sym]["previous_close_ms"])
        if not resumed and c.entry_after_ms < seen:
            raise VirtualBookError(
                f"{c.symbol}: the virtual position enters at {c.entry_after_ms}, before the "
                f"close of the last candle followed ({seen}): its entry candle has passed"
            )

    # -- candles ------------------------------------------------------------------------

    def on_candle(
        self,
        symbol: str,
        open_time_ms: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        *,
        minutes: MinuteArrays | None = None,
    ) -> list[VirtualTrade]:
        """Advance ``symbol``'s virtual positions by this closed candle; the ones it closed,
        in signal order. ``minutes``: its 1m candles, which order a stop and a target inside
        the candle as the backtest's do (used only when all of them are there)."""
        sym = self._sym(symbol)
        prices = (open_, high, low, close)
        if not all(_is_price(p) for p in prices):
            raise VirtualBookError(
                f"{symbol}: candle prices must be finite and above 0, got open {open_!r} "
                f"high {high!r} low {low!r} close {close!r}"
            )
        if not _is_int(open_time_ms):
            raise VirtualBookError(
                f"{symbol}: open_time_ms must be integer ms, got {open_time_ms!r}"
            )
        seen = self.last_close_ms(symbol)
        if open_time_ms < seen:
            raise VirtualBookError(
                f"{symbol}: candle {open_time_ms} opens before the close of the last candle "
                f"followed ({seen}): candles must come in order, each once"
            )
        mt, mo, mh, ml = self._minutes(minutes)
        _n, done, _matched = self._bar(
            self._venue, self._params, self._table, sym, int(open_time_ms), float(open_),
            float(high), float(low), float(close), _EMPTY_T, _EMPTY, _EMPTY, mt, mo, mh, ml,
            self._buf, self._events, self._outcomes,
        )  # fmt: skip
        trades = [self._trade(row) for row in np.sort(self._outcomes[:done], order="serial")]
        self._forget_expired(symbol, sym)
        return trades

    def _minutes(self, minutes: MinuteArrays | None) -> MinuteArrays:
        if minutes is None:
            return _EMPTY_T, _EMPTY, _EMPTY, _EMPTY
        times: I64 = np.ascontiguousarray(minutes[0], dtype=np.int64)
        o, h, lo = (np.ascontiguousarray(m, dtype=np.float64) for m in minutes[1:])
        if not len(times) == len(o) == len(h) == len(lo):
            raise VirtualBookError("the 1m candles' columns must have one length")
        if len(times) != self.timeframe_ms // MINUTE_MS:
            return _EMPTY_T, _EMPTY, _EMPTY, _EMPTY  # partial coverage: the worst case, as batch
        return times, o, h, lo

    def _trade(self, row: np.void) -> VirtualTrade:
        carried = self._carried.pop(int(row["serial"]))
        c = carried.command
        del self._serial[(c.symbol, c.entry_after_ms)]
        return_pct = float(row["return_pct"])
        return VirtualTrade(
            symbol=c.symbol,
            direction=int(row["side"]),
            entry_time_ms=int(row["entry_time_ms"]),
            entry_price=float(row["entry_price"]),
            stop_loss_pct=float(row["stop_pct"]),
            take_profit_pct=max(float(self.exits.take_profit_pct), 0.0),
            exit_time_ms=int(row["exit_time_ms"]),
            exit_price=float(row["exit_price"]),
            exit_reason=EXIT_REASONS[int(row["exit_reason"])],
            return_pct=return_pct,
            reward=return_pct / float(row["stop_pct"]),
            won=return_pct > 0,
            features=carried.features,
            feature_schema_hash=carried.feature_schema_hash,
            model_version=c.model_version,
        )

    def _forget_expired(self, symbol: str, sym: int) -> None:
        """A pending position whose entry candle never came (a hole in the data) was freed by
        the kernel without an outcome, as in a backtest: drop what the book carried for it."""
        live = set(self._live_slots(sym)[1].tolist())
        for key in [k for k in self._serial if k[0] == symbol]:
            serial = self._serial[key]
            if serial not in live:
                del self._serial[key]
                del self._carried[serial]

    def _live_slots(self, sym: int) -> tuple[npt.NDArray[np.intp], I64]:
        meta = self._venue.virtual_meta[: self._venue.counters[2]]
        slots = np.flatnonzero((meta["state"] != V_FREE) & (meta["symbol"] == sym))
        return slots, meta["serial"][slots]

    # -- positions out ------------------------------------------------------------------

    def positions(self, symbol: str | None = None) -> list[VirtualPositionState]:
        """The open and pending positions (of ``symbol``, or all), in signal order: what
        ``restore`` takes to rebuild them."""
        syms = range(len(self.symbols)) if symbol is None else [self._sym(symbol)]
        found: list[tuple[int, VirtualPositionState]] = []
        v = self._venue
        for sym in syms:
            seen = int(v.symbols[sym]["previous_close_ms"])
            slots, serials = self._live_slots(sym)
            for slot, serial in zip(slots.tolist(), serials.tolist(), strict=True):
                carried = self._carried[serial]
                c = carried.command
                entered = int(v.virtual_meta[slot]["state"]) == V_OPEN
                state = _exit_state(v.virtual[slot]) if entered else None
                found.append((serial, VirtualPositionState(
                    symbol=c.symbol, direction=c.direction, signal_time_ms=c.signal_time_ms,
                    entry_time_ms=c.entry_after_ms, stop_loss_pct=c.stop_pct,
                    take_profit_pct=c.take_profit_pct, confidence=c.confidence,
                    model_version=c.model_version, features=carried.features.copy(),
                    feature_schema_hash=carried.feature_schema_hash, seen_close_ms=seen,
                    entry_price=float(v.virtual[slot]["entry_price"]) if entered else None,
                    exit_state=state,
                )))  # fmt: skip
        return [p for _, p in sorted(found, key=lambda item: item[0])]

    def _sym(self, symbol: str) -> int:
        try:
            return self._index[symbol]
        except (KeyError, TypeError):
            raise VirtualBookError(
                f"unknown symbol {symbol!r}: this book follows {', '.join(self.symbols)}"
            ) from None


def _feature_row(features: F64, schema_hash: str) -> F64:
    row = np.asarray(features)
    if row.dtype != np.float64 or row.ndim != 1:
        raise VirtualBookError("features must be a 1-D float64 array (one feature row)")
    if not isinstance(schema_hash, str) or not schema_hash:
        raise VirtualBookError("feature_schema_hash must be a non-empty string")
    return row


def _exit_state(row: np.void) -> dict[str, int | float]:
    return {name: (int(row[name]) if name in _INT_FIELDS else float(row[name])) for name in _FIELDS}


def _position_row(state: ExitState, key: tuple[str, int]) -> np.void:
    """A stored exit state as the kernels' position record; every field, none unknown."""
    missing = [name for name in _FIELDS if name not in state]
    unknown = [name for name in state if name not in _FIELDS]
    if missing or unknown:
        raise VirtualBookError(
            f"{key[0]} virtual position entering at {key[1]}: its stored state was written by "
            f"another version of the exit kernels (missing {missing}, unknown {unknown})"
        )
    rows = np.zeros(1, dtype=POSITION_DT)
    for name in _FIELDS:
        rows[0][name] = state[name]
    row: np.void = rows[0]
    return row


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_price(value: object) -> bool:
    if not isinstance(value, Real) or isinstance(value, bool):
        return False
    return 0 < float(value) < math.inf
