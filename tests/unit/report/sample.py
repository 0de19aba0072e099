"""A small hand-made backtest result for the report tests."""

from __future__ import annotations

import numpy as np

from slt.domain.results import BacktestResult, ExitFill, SymbolBars, Trade

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000


def sample_trade(position_id: int, side: str = "long", pnl: float = 12.5) -> Trade:
    entry = T0 + position_id * HOUR
    fills = (
        ExitFill(entry + HOUR, 101.0, 5.0, "partial_take_profit", 0.1),
        ExitFill(entry + 2 * HOUR, 102.0, 5.0, "take_profit" if pnl > 0 else "stop_loss", 0.1),
    )
    return Trade(
        position_id=position_id,
        symbol="TESTUSDT",
        side=side,
        entry_time_ms=entry,
        entry_price=100.0,
        exit_time_ms=entry + 2 * HOUR,
        exit_price=101.5,
        quantity=10.0,
        leverage=2.0,
        margin=500.0,
        pnl=pnl,
        pnl_pct=pnl / 10.0,
        fees=0.7,
        funding=-0.05,
        exit_reason=fills[-1].reason,
        signal_time_ms=entry - HOUR,
        exits=fills,
    )


def sample_result(n_bars: int = 72, trades: tuple[Trade, ...] | None = None) -> BacktestResult:
    """Hourly bars from 2024-01-01, equity drifting up with a dip; two trades unless given."""
    opens = T0 + HOUR * np.arange(n_bars, dtype=np.int64)
    steps = np.where(np.arange(n_bars) % 7 == 3, -4.0, 1.5)
    equity = 10_000.0 + np.cumsum(steps)
    close = 100.0 + np.sin(np.arange(n_bars) / 5.0)
    held = np.arange(n_bars) % 3 == 0
    return BacktestResult(
        symbols=("TESTUSDT",),
        timeframe="1h",
        initial_equity=10_000.0,
        trades=trades if trades is not None else (sample_trade(1), sample_trade(5, "short", -8.0)),
        equity_time_ms=opens + HOUR,
        equity=equity,
        in_position=held,
        close=close,
        bar_open_time_ms=opens,
        bars=(SymbolBars("TESTUSDT", opens, close, held),),
    )


RUN: dict[str, object] = {
    "bars_processed": 72,
    "elapsed_s": 0.25,
    "config": {"risk": {"risk_pct": 1.0}, "exits": {"stop_loss_pct": 1.0}},
    "data_files": [{"path": "market/futures/candles/TESTUSDT-1h.parquet", "sha256": "ab" * 32}],
}
