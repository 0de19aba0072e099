"""Every signal's outcome as a virtual trade: the learner's labels, followed by the engine's
simulated exchange with the same exit kernels as real positions.

Pure: the caller passes the candles, the signals and the per-candle stop distances (e.g.
``backtest.stop_distances``); nothing here reads files or clocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slt.domain.records import VirtualTrade
from slt.domain.series import Candles
from slt.domain.trading.enums import EXIT_REASONS
from slt.domain.trading.params import CostParams, ExitParams
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.backtest import FundingPlan, SymbolSpan, layout, run_market
from slt.engine.book import DecisionParams, symbol_table
from slt.engine.config import EngineConfig
from slt.engine.pipeline import ScoredSignals, stop_distances
from slt.engine.venue import Faults, VenueParams
from slt.errors import SltError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
Bools = npt.NDArray[np.bool_]


class VirtualInputError(SltError):
    """Arrays that cannot be walked as virtual positions (misaligned, unordered, bad values)."""


@dataclass(frozen=True)
class VirtualOutcomes:
    """One virtual position per signal that had a next candle to enter at, in signal order.

    Times and prices follow the engine's ``Trade``: the exit time is the open time of the
    candle (or 1m candle) a resting order filled in, the open a time stop filled at, or the
    last close for a position still open at the end (``closed`` False: no label yet, callers
    must not train on it). ``return_pct`` is net of fees and slippage, in % of the entry
    notional; ``won`` means the position closed with a positive return after costs: its
    target filled before its stop, or a time, trailing or break-even exit in profit.
    """

    signal_index: I64
    direction: I8
    entry_time_ms: I64
    entry_price: F64
    stop_loss_pct: F64
    take_profit_pct: F64
    exit_time_ms: I64
    exit_price: F64
    exit_reason: I8
    return_pct: F64
    reward: F64
    won: Bools
    closed: Bools

    def __len__(self) -> int:
        return len(self.signal_index)

    def records(
        self, symbol: str, feature_values: F64, feature_schema_hash: str, model_version: str
    ) -> list[VirtualTrade]:
        """The closed ones as storable virtual trades, each with the feature row its signal
        saw (``feature_values`` holds one row per candle)."""
        return [
            VirtualTrade(
                symbol=symbol,
                direction=int(self.direction[k]),
                entry_time_ms=int(self.entry_time_ms[k]),
                entry_price=float(self.entry_price[k]),
                stop_loss_pct=float(self.stop_loss_pct[k]),
                take_profit_pct=float(self.take_profit_pct[k]),
                exit_time_ms=int(self.exit_time_ms[k]),
                exit_price=float(self.exit_price[k]),
                exit_reason=EXIT_REASONS[int(self.exit_reason[k])],
                return_pct=float(self.return_pct[k]),
                reward=float(self.reward[k]),
                won=bool(self.won[k]),
                features=feature_values[self.signal_index[k]].copy(),
                feature_schema_hash=feature_schema_hash,
                model_version=model_version,
            )
            for k in np.flatnonzero(self.closed)
        ]


def virtual_outcomes(
    open_time_ms: I64,
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    timeframe_ms: int,
    direction: npt.ArrayLike,
    stop_pct: npt.ArrayLike,
    exit_params: ExitParams,
    cost_params: CostParams,
    tick_size: float,
    *,
    minute: Candles | None = None,
) -> VirtualOutcomes:
    """Open a one-unit virtual position for every signal (``direction`` != 0 and a finite
    ``stop_pct`` > 0 at its candle) and close it as the engine closes a real one: this runs
    the engine itself, with every signal turned down for trading.

    ``minute``: 1m candles, used like the backtest's to order a stop and a target that lie
    inside the same candle; without them the worst case (the stop) is assumed.
    """
    arrays = _checked_inputs(
        open_time_ms, open_, high, low, close, timeframe_ms, direction, stop_pct, tick_size
    )
    t, o, h, lo, c, d, stops = arrays
    n = len(t)
    signals = ScoredSignals(
        direction=d,
        score=np.zeros(n),
        stop_pct=stops,
        confidence=np.full(n, 0.5),
        gate=np.zeros(n, dtype=np.bool_),
        p_win=np.full(n, np.nan),
    )
    none = FundingPlan(np.empty(0, np.int64), np.empty(0), np.empty(0), "none")
    span = SymbolSpan(t, o, h, lo, c, signals, none, minute)
    table = symbol_table([symbol_rules("VIRTUALUSDT")])._replace(
        tick_size=np.array([float(tick_size)])
    )
    config = EngineConfig(exits=exit_params, costs=cost_params)
    run = run_market(
        layout([span], int(timeframe_ms)),
        table,
        DecisionParams(exit_params, config.sizing, False),
        VenueParams(cost_params, exit_params, int(timeframe_ms), Faults()),
        config,
        ("virtual",),
    )
    return _outcomes(run.outcomes, t, exit_params)


def _outcomes(rows: np.ndarray, open_time_ms: I64, exits: ExitParams) -> VirtualOutcomes:
    rows = rows[np.argsort(rows["serial"], kind="stable")]
    return_pct = rows["return_pct"].copy()
    stop = rows["stop_pct"].copy()
    closed = rows["closed"].copy()
    return VirtualOutcomes(
        signal_index=np.searchsorted(open_time_ms, rows["signal_time_ms"]).astype(np.int64),
        direction=rows["side"].astype(np.int8),
        entry_time_ms=rows["entry_time_ms"].copy(),
        entry_price=rows["entry_price"].copy(),
        stop_loss_pct=stop,
        take_profit_pct=np.full(len(rows), max(float(exits.take_profit_pct), 0.0)),
        exit_time_ms=rows["exit_time_ms"].copy(),
        exit_price=rows["exit_price"].copy(),
        exit_reason=rows["exit_reason"].astype(np.int8),
        return_pct=return_pct,
        reward=return_pct / stop,
        won=closed & (return_pct > 0),
        closed=closed,
    )


def candle_outcomes(
    candles: Candles,
    direction: npt.ArrayLike,
    config: EngineConfig,
    tick_size: float,
    minute: Candles | None = None,
) -> VirtualOutcomes:
    """``virtual_outcomes`` on a candle series with a trading configuration's stops (fixed or
    ATR-based), exits and costs."""
    return virtual_outcomes(
        candles.open_time_ms, candles.open, candles.high, candles.low, candles.close,
        candles.key.timeframe_ms, direction, stop_distances(config.stops, candles),
        config.exits, config.costs, tick_size, minute=minute,
    )  # fmt: skip


def _checked_inputs(
    open_time_ms: I64,
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    timeframe_ms: int,
    direction: npt.ArrayLike,
    stop_pct: npt.ArrayLike,
    tick_size: float,
) -> tuple[I64, F64, F64, F64, F64, I8, F64]:
    """The arrays contiguous and typed as the kernel takes them, or a clear error."""
    columns = {
        "open_time_ms": np.asarray(open_time_ms),
        "open": np.asarray(open_),
        "high": np.asarray(high),
        "low": np.asarray(low),
        "close": np.asarray(close),
        "direction": np.asarray(direction),
        "stop_pct": np.asarray(stop_pct),
    }
    for name, values in columns.items():
        if values.ndim != 1:
            raise VirtualInputError(f"{name} must be one-dimensional, got shape {values.shape}")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise VirtualInputError(f"virtual positions need one value per candle; lengths: {listed}")
    if isinstance(timeframe_ms, bool) or not isinstance(timeframe_ms, int | np.integer):
        raise VirtualInputError(f"timeframe_ms must be an integer, got {timeframe_ms!r}")
    if timeframe_ms <= 0:
        raise VirtualInputError(f"timeframe_ms must be above 0, got {timeframe_ms}")
    if not np.isfinite(tick_size) or tick_size < 0:
        raise VirtualInputError(f"tick_size must be a finite number >= 0, got {tick_size!r}")
    times = columns["open_time_ms"]
    if not np.issubdtype(times.dtype, np.integer):
        raise VirtualInputError(f"open_time_ms must be integer milliseconds, got {times.dtype}")
    if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
        raise VirtualInputError("open_time_ms must be strictly increasing")
    d = columns["direction"]
    if not bool(np.isin(d, (-1, 0, 1)).all()):
        raise VirtualInputError("direction must hold only -1, 0 and +1")
    prices = [
        np.ascontiguousarray(columns[name], dtype=np.float64)
        for name in ("open", "high", "low", "close")
    ]
    if not all(bool(np.isfinite(p).all()) for p in prices):
        raise VirtualInputError("open, high, low and close must be finite")
    return (
        np.ascontiguousarray(times, dtype=np.int64),
        prices[0],
        prices[1],
        prices[2],
        prices[3],
        np.ascontiguousarray(d, dtype=np.int8),
        np.ascontiguousarray(columns["stop_pct"], dtype=np.float64),
    )
