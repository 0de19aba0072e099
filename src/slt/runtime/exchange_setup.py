"""What a paper or live session reads of the exchange before it trades, the same for the
one-process session, the brain, the executor and the command's pre-flight: the symbols it
lists, their rules and filters, settled funding, and the refusal of positions nobody can
explain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.order_filters import SymbolFilters
from slt.domain.trading.symbol_rules import SymbolRules, from_binance_json
from slt.engine.messages import Reconciled
from slt.engine.state import PortfolioState
from slt.errors import ConfigError, SltError


class RefusedToTrade(SltError):
    """The exchange holds what this session cannot explain; it names what and how to go on."""


async def listed(rest: BinanceRest, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
    """exchangeInfo's entries of ``symbols``; one the exchange does not list is refused."""
    info = await rest.load_limits()
    entries = {e["symbol"]: e for e in info["symbols"]}
    missing = [s for s in symbols if s not in entries]
    if missing:
        raise ConfigError(f"the exchange lists no {', '.join(missing)}")
    return entries


async def rules_and_filters(
    rest: BinanceRest, symbols: Sequence[str]
) -> tuple[list[SymbolRules], dict[str, SymbolFilters]]:
    """Live: the engine's symbol rules (with leverage brackets) and the order filters."""
    entries = await listed(rest, symbols)
    brackets = (await rest.signed("GET", "/fapi/v1/leverageBracket")).body
    rules = [from_binance_json(s, entries[s], brackets) for s in symbols]
    return rules, {s: SymbolFilters.from_exchange_info(entries[s]) for s in symbols}


async def settled_funding(rest: BinanceRest, symbol: str, due: int) -> list[dict[str, Any]]:
    """Paper: the funding settled at ``due`` (``/fapi/v1/fundingRate``)."""
    answer = await rest.public("GET", "/fapi/v1/fundingRate", {
        "symbol": symbol, "startTime": due, "endTime": due})  # fmt: skip
    return list(answer.body)


def unexplained(reconciled: Reconciled, state: PortfolioState) -> list[str]:
    """Positions on the traded symbols that the books do not hold: the session cannot tell
    whose they are."""
    held = {s: int(state.book.positions[i]["side"]) for i, s in enumerate(state.symbols)}
    return [
        f"{p.symbol} {'long' if p.side > 0 else 'short'} {p.quantity:g} at {p.entry_price:g}"
        for p in reconciled.positions
        if p.symbol in held and held[p.symbol] != p.side
    ]


def refuse_unexplained(reconciled: Reconciled, state: PortfolioState) -> None:
    """``RefusedToTrade`` naming each position the books cannot explain (without --adopt)."""
    foreign = unexplained(reconciled, state)
    if foreign:
        raise RefusedToTrade(
            "the exchange holds positions this bot did not open: " + "; ".join(foreign)
            + ". Close them by hand, or start with --adopt to protect them with stops and "
            "manage them"
        )  # fmt: skip
