"""The exchange rules of one Binance USDT-M perpetual: tick, step, minimum notional, brackets.

Binance changes all of these over time (brackets most often, per symbol and even per account).
The embedded tables below are a dated snapshot that lets backtests run offline; live code should
build its rules with ``from_binance_json`` from GET /fapi/v1/exchangeInfo and
GET /fapi/v1/leverageBracket at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from slt.domain.trading.margin_nb import CAP, CUM, FLOOR, MAX_LEVERAGE, MMR
from slt.domain.trading.params import MarketRules
from slt.errors import SltError

F64 = npt.NDArray[np.float64]
Bracket = tuple[float, float, float, float, float]


class ExchangeRulesError(SltError):
    """Exchange rules that cannot be trusted: a bracket table out of order, a missing filter."""


# Bracket rows: (notional floor, notional cap, max leverage, maintenance margin rate, cum), USDT.
# Source: freqtrade/freqtrade, freqtrade/exchange/binance_leverage_tiers.json at commit
# 01d10aebcab25c526473c603a88e14eb7d9699cc, keys "BTC/USDT:USDT" and "ETH/USDT:USDT" (the "info"
# fields are Binance's own leverageBracket answer). The file lists the BTC quarterly 240927 but
# not 240628, so the snapshot dates from between 2024-06-28 and 2024-09-27. Binance has changed
# these tables since and will again.
_BTCUSDT_BRACKETS: tuple[Bracket, ...] = (
    (0.0, 50_000.0, 125.0, 0.004, 0.0),
    (50_000.0, 600_000.0, 100.0, 0.005, 50.0),
    (600_000.0, 3_000_000.0, 75.0, 0.0065, 950.0),
    (3_000_000.0, 12_000_000.0, 50.0, 0.01, 11_450.0),
    (12_000_000.0, 70_000_000.0, 25.0, 0.02, 131_450.0),
    (70_000_000.0, 100_000_000.0, 20.0, 0.025, 481_450.0),
    (100_000_000.0, 230_000_000.0, 10.0, 0.05, 2_981_450.0),
    (230_000_000.0, 480_000_000.0, 5.0, 0.1, 14_481_450.0),
    (480_000_000.0, 600_000_000.0, 4.0, 0.125, 26_481_450.0),
    (600_000_000.0, 800_000_000.0, 3.0, 0.15, 41_481_450.0),
    (800_000_000.0, 1_200_000_000.0, 2.0, 0.25, 121_481_450.0),
    (1_200_000_000.0, 1_800_000_000.0, 1.0, 0.5, 421_481_450.0),
)
_ETHUSDT_BRACKETS: tuple[Bracket, ...] = (
    (0.0, 50_000.0, 125.0, 0.004, 0.0),
    (50_000.0, 600_000.0, 100.0, 0.005, 50.0),
    (600_000.0, 3_000_000.0, 75.0, 0.0065, 950.0),
    (3_000_000.0, 12_000_000.0, 50.0, 0.01, 11_450.0),
    (12_000_000.0, 50_000_000.0, 25.0, 0.02, 131_450.0),
    (50_000_000.0, 65_000_000.0, 20.0, 0.025, 381_450.0),
    (65_000_000.0, 150_000_000.0, 10.0, 0.05, 2_006_450.0),
    (150_000_000.0, 320_000_000.0, 5.0, 0.1, 9_506_450.0),
    (320_000_000.0, 400_000_000.0, 4.0, 0.125, 17_506_450.0),
    (400_000_000.0, 530_000_000.0, 3.0, 0.15, 27_506_450.0),
    (530_000_000.0, 800_000_000.0, 2.0, 0.25, 80_506_450.0),
    (800_000_000.0, 1_200_000_000.0, 1.0, 0.5, 280_506_450.0),
)
# Not Binance's table for any one symbol: a deliberately cautious one for USDT perpetuals we hold no
# rules for. It caps leverage at 20x and asks more maintenance margin than Binance asks for most
# mid-cap symbols, so liquidation distances come out shorter, never longer, than the real ones.
_GENERIC_USDT_BRACKETS: tuple[Bracket, ...] = (
    (0.0, 10_000.0, 20.0, 0.025, 0.0),
    (10_000.0, 50_000.0, 10.0, 0.05, 250.0),
    (50_000.0, 250_000.0, 5.0, 0.1, 2_750.0),
    (250_000.0, 1_000_000.0, 4.0, 0.125, 9_000.0),
    (1_000_000.0, 3_000_000.0, 2.0, 0.25, 134_000.0),
    (3_000_000.0, 5_000_000.0, 1.0, 0.5, 884_000.0),
)

# Filters (tick, step, minimum notional) as /fapi/v1/exchangeInfo gave them in 2024-2025:
# PRICE_FILTER tickSize, LOT_SIZE stepSize, MIN_NOTIONAL notional. Binance's contract
# specifications FAQ (binance.com/en/support/faq/360033161972) quotes BTCUSDT's 100 USDT minimum;
# ETHUSDT's 20 USDT is what the endpoint returns. The generic default keeps Binance's general
# 5 USDT minimum and increments fine enough (1e-8) not to distort any symbol's prices.
_EMBEDDED: dict[str, tuple[float, float, float, tuple[Bracket, ...]]] = {
    "BTCUSDT": (0.1, 0.001, 100.0, _BTCUSDT_BRACKETS),
    "ETHUSDT": (0.01, 0.001, 20.0, _ETHUSDT_BRACKETS),
}
_GENERIC_USDT = (1e-8, 1e-8, 5.0, _GENERIC_USDT_BRACKETS)


@dataclass(frozen=True, eq=False)
class SymbolRules:
    """Exchange rules of one symbol; ``brackets`` is the ``float64[k, 5]`` table of margin_nb.

    Construction validates the rules and raises ``ExchangeRulesError`` when they are not sane.
    """

    symbol: str
    tick_size: float
    step_size: float
    min_notional: float
    max_leverage: float
    brackets: F64

    def __post_init__(self) -> None:
        table = np.ascontiguousarray(self.brackets, dtype=np.float64)
        object.__setattr__(self, "brackets", table)
        self.validate()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SymbolRules):
            return NotImplemented
        return self._scalars() == other._scalars() and np.array_equal(self.brackets, other.brackets)

    def __hash__(self) -> int:
        return hash(self._scalars())

    def kernel(self) -> MarketRules:
        """The rules as the kernels take them."""
        return MarketRules(self.tick_size, self.step_size, self.min_notional, self.brackets)

    def _scalars(self) -> tuple[str, float, float, float, float]:
        return (self.symbol, self.tick_size, self.step_size, self.min_notional, self.max_leverage)

    def validate(self) -> None:
        """Raise ``ExchangeRulesError`` unless the filters are positive and the bracket table is
        ordered, contiguous and internally consistent, the way Binance publishes it."""
        problems = _filter_problems(self) + _bracket_problems(self.brackets)
        if problems:
            raise ExchangeRulesError(f"{self.symbol}: " + "; ".join(problems))


def _filter_problems(rules: SymbolRules) -> list[str]:
    found = [
        f"{name} must be a positive number, got {value!r}"
        for name, value in (
            ("tick_size", rules.tick_size),
            ("step_size", rules.step_size),
            ("max_leverage", rules.max_leverage),
        )
        if not (np.isfinite(value) and value > 0)
    ]
    if not (np.isfinite(rules.min_notional) and rules.min_notional >= 0):
        found.append(f"min_notional must be >= 0, got {rules.min_notional!r}")
    b = rules.brackets
    if b.ndim == 2 and b.shape[0] > 0 and b.shape[1] == 5:
        first = b[0, MAX_LEVERAGE]
        if rules.max_leverage > first:
            found.append(
                f"max_leverage {rules.max_leverage:g} exceeds the first bracket's {first:g}"
            )
    return found


def _bracket_problems(b: F64) -> list[str]:
    if b.ndim != 2 or b.shape[1] != 5 or b.shape[0] == 0:
        return [f"brackets must be a non-empty (k, 5) table, got shape {b.shape}"]
    if np.isnan(b).any() or np.isinf(np.delete(b, CAP, axis=1)).any():
        return ["brackets hold NaN or infinite values"]
    found: list[str] = []
    if b[0, FLOOR] != 0.0:
        found.append(f"the first bracket must start at notional 0, not {b[0, FLOOR]:g}")
    for i in range(b.shape[0]):
        row = f"bracket {i + 1}"
        floor, cap, leverage, mmr, cum = b[i]
        if not cap > floor:
            found.append(f"{row}: cap {cap:g} must exceed floor {floor:g}")
        if not 0.0 < mmr < 1.0:
            found.append(f"{row}: maintenance margin rate {mmr:g} must lie in (0, 1)")
        if not leverage >= 1.0:
            found.append(f"{row}: max leverage {leverage:g} must be >= 1")
        elif not 1.0 / leverage > mmr:
            found.append(
                f"{row}: initial margin 1/{leverage:g} must exceed the maintenance rate {mmr:g}"
            )
        prev_mmr, prev_cum = (b[i - 1, MMR], b[i - 1, CUM]) if i else (0.0, 0.0)
        expected = prev_cum + floor * (mmr - prev_mmr)
        if abs(cum - expected) > 1e-6 * max(1.0, abs(expected)):
            found.append(f"{row}: cum {cum:g} should be {expected:g}")
        if i == 0:
            continue
        if floor != b[i - 1, CAP]:
            found.append(f"{row}: floor {floor:g} must equal the previous cap {b[i - 1, CAP]:g}")
        if mmr < prev_mmr:
            found.append(f"{row}: maintenance margin rate must not fall ({prev_mmr:g} -> {mmr:g})")
        if leverage > b[i - 1, MAX_LEVERAGE]:
            found.append(
                f"{row}: max leverage must not rise ({b[i - 1, MAX_LEVERAGE]:g} -> {leverage:g})"
            )
    return found


def _table(rows: Sequence[Bracket]) -> F64:
    return np.array(rows, dtype=np.float64)


def symbol_rules(symbol: str) -> SymbolRules:
    """Embedded rules for BTCUSDT and ETHUSDT, a cautious generic default for any other USDT
    symbol (see ``_GENERIC_USDT_BRACKETS``); other quote currencies raise ``ExchangeRulesError``."""
    key = symbol.strip().upper()
    if key in _EMBEDDED:
        tick, step, min_notional, rows = _EMBEDDED[key]
    elif key.endswith("USDT") and len(key) > len("USDT"):
        tick, step, min_notional, rows = _GENERIC_USDT
    else:
        raise ExchangeRulesError(
            f"no exchange rules for {symbol!r}: defaults exist for USDT-margined symbols only "
            "(BTCUSDT, ETHUSDT, or a generic USDT default)"
        )
    table = _table(rows)
    return SymbolRules(key, tick, step, min_notional, float(table[0, MAX_LEVERAGE]), table)


def from_binance_json(
    symbol: str,
    exchange_info_symbol: Mapping[str, Any],
    bracket_json: Sequence[Mapping[str, Any]] | Mapping[str, Any],
) -> SymbolRules:
    """Rules from Binance's own payloads: one entry of GET /fapi/v1/exchangeInfo ``symbols``
    (filters PRICE_FILTER tickSize, LOT_SIZE stepSize, MIN_NOTIONAL notional) and the answer of
    GET /fapi/v1/leverageBracket (the list of per-symbol objects, the single object Binance sends
    when asked for one symbol, or that object's ``brackets`` list itself).

    The brackets are taken as sent: when ``notionalCoef`` shows the account's brackets differ from
    the symbol's default, the sent ones are the account's.
    """
    listed = exchange_info_symbol.get("symbol", symbol)
    if listed != symbol:
        raise ExchangeRulesError(f"exchangeInfo entry is for {listed!r}, not {symbol!r}")
    filters = {f.get("filterType"): f for f in exchange_info_symbol.get("filters", [])}
    tick = _number(symbol, filters, "PRICE_FILTER", ("tickSize",))
    step = _number(symbol, filters, "LOT_SIZE", ("stepSize",))
    min_notional = _number(symbol, filters, "MIN_NOTIONAL", ("notional", "minNotional"))
    rows = _bracket_rows(symbol, bracket_json)
    table = _table(sorted(rows))
    return SymbolRules(symbol, tick, step, min_notional, float(table[0, MAX_LEVERAGE]), table)


def _number(
    symbol: str, filters: Mapping[Any, Mapping[str, Any]], kind: str, keys: tuple[str, ...]
) -> float:
    found = filters.get(kind)
    if found is None:
        raise ExchangeRulesError(f"{symbol}: exchangeInfo has no {kind} filter")
    for key in keys:
        if key in found:
            try:
                return float(found[key])
            except (TypeError, ValueError):
                raise ExchangeRulesError(
                    f"{symbol}: {kind} {key} is not a number: {found[key]!r}"
                ) from None
    raise ExchangeRulesError(f"{symbol}: {kind} filter has no {' or '.join(keys)}")


def _bracket_rows(
    symbol: str, payload: Sequence[Mapping[str, Any]] | Mapping[str, Any]
) -> list[Bracket]:
    items: Sequence[Mapping[str, Any]] = [payload] if isinstance(payload, Mapping) else payload
    if items and all("notionalFloor" in item for item in items):
        brackets: Sequence[Mapping[str, Any]] = items
    else:
        matching = [item for item in items if item.get("symbol", symbol) == symbol]
        if not matching or "brackets" not in matching[0]:
            raise ExchangeRulesError(f"{symbol}: leverageBracket answer holds no brackets for it")
        brackets = matching[0]["brackets"]
    if not brackets:
        raise ExchangeRulesError(f"{symbol}: leverageBracket answer holds an empty bracket list")
    try:
        return [
            (
                float(b["notionalFloor"]),
                float(b["notionalCap"]),
                float(b["initialLeverage"]),
                float(b["maintMarginRatio"]),
                float(b["cum"]),
            )
            for b in brackets
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ExchangeRulesError(f"{symbol}: unreadable leverage bracket ({exc!r})") from None
