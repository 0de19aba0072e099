"""Integer codes shared by the kernels and their names in reports."""

from __future__ import annotations

LONG = 1
SHORT = -1

# Exit reasons: why a fill reduced or closed a position.
STOP_LOSS = 1
TAKE_PROFIT = 2
TRAILING_STOP = 3
PARTIAL_TAKE_PROFIT = 4
BREAK_EVEN = 5
TIME_STOP = 6
EMERGENCY_CLOSE = 7
OPPOSITE_SIGNAL = 8
LIQUIDATION = 9
END_OF_DATA = 10
RECONCILED = 11  # the exchange no longer held it when the bot looked

EXIT_REASONS: dict[int, str] = {
    STOP_LOSS: "stop_loss",
    TAKE_PROFIT: "take_profit",
    TRAILING_STOP: "trailing_stop",
    PARTIAL_TAKE_PROFIT: "partial_take_profit",
    BREAK_EVEN: "break_even",
    TIME_STOP: "time_stop",
    EMERGENCY_CLOSE: "emergency_close",
    OPPOSITE_SIGNAL: "opposite_signal",
    LIQUIDATION: "liquidation",
    END_OF_DATA: "end_of_data",
    RECONCILED: "reconciled",
}
EXIT_REASON_CODES: dict[str, int] = {name: code for code, name in EXIT_REASONS.items()}

# Sizing modes.
SIZING_FIXED = 0
SIZING_KELLY = 1
SIZING_ATR = 2
SIZING_MODES: dict[str, int] = {"fixed": SIZING_FIXED, "kelly": SIZING_KELLY, "atr": SIZING_ATR}


def side_name(side: int) -> str:
    return "long" if side == LONG else "short"
