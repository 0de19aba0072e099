"""Embedded exchange rules, their sanity checks, and the parser of Binance's own payloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from slt.domain.trading.margin_nb import liquidation_distance_pct_nb, max_leverage_nb
from slt.domain.trading.symbol_rules import (
    ExchangeRulesError,
    SymbolRules,
    from_binance_json,
    symbol_rules,
)
from slt.errors import SltError

# GET /fapi/v1/exchangeInfo, one entry of "symbols", in the documented shape (trimmed).
BTC_EXCHANGE_INFO: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "pair": "BTCUSDT",
    "contractType": "PERPETUAL",
    "status": "TRADING",
    "quoteAsset": "USDT",
    "marginAsset": "USDT",
    "pricePrecision": 2,
    "quantityPrecision": 3,
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "556.80",
            "maxPrice": "4529764",
            "tickSize": "0.10",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MIN_NOTIONAL", "notional": "100"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500"},
    ],
}
# GET /fapi/v1/leverageBracket: a list of per-symbol objects (first three BTCUSDT brackets).
BTC_BRACKETS: list[dict[str, Any]] = [
    {
        "symbol": "BTCUSDT",
        "brackets": [
            {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
             "maintMarginRatio": 0.004, "cum": 0.0},
            {"bracket": 2, "initialLeverage": 100, "notionalCap": 600000, "notionalFloor": 50000,
             "maintMarginRatio": 0.005, "cum": 50.0},
            {"bracket": 3, "initialLeverage": 75, "notionalCap": 3000000, "notionalFloor": 600000,
             "maintMarginRatio": 0.0065, "cum": 950.0},
        ],
    }
]  # fmt: skip
BTC_TABLE = np.array(
    [
        [0.0, 50_000.0, 125.0, 0.004, 0.0],
        [50_000.0, 600_000.0, 100.0, 0.005, 50.0],
        [600_000.0, 3_000_000.0, 75.0, 0.0065, 950.0],
    ]
)


def _cum_by_hand(table: np.ndarray) -> list[float]:
    """cum_i = cum_{i-1} + floor_i * (mmr_i - mmr_{i-1}), starting from 0."""
    cums, cum, prev_mmr = [], 0.0, 0.0
    for floor, _cap, _lev, mmr, _cum in table:
        cum += floor * (mmr - prev_mmr)
        cums.append(cum)
        prev_mmr = mmr
    return cums


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
def test_embedded_bracket_tables_have_consistent_cum(symbol: str) -> None:
    table = symbol_rules(symbol).brackets
    assert table[:, 4] == pytest.approx(_cum_by_hand(table), rel=1e-12)


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
def test_embedded_bracket_tables_are_contiguous_from_zero(symbol: str) -> None:
    table = symbol_rules(symbol).brackets
    assert table[0, 0] == 0.0
    assert (table[1:, 0] == table[:-1, 1]).all()
    assert (np.diff(table[:, 3]) > 0).all()
    assert (np.diff(table[:, 2]) < 0).all()


def test_btcusdt_rules_are_binances_published_ones() -> None:
    rules = symbol_rules("BTCUSDT")
    assert (rules.tick_size, rules.step_size, rules.min_notional) == (0.1, 0.001, 100.0)
    assert rules.max_leverage == 125.0
    assert len(rules.brackets) == 12
    assert list(rules.brackets[0]) == [0.0, 50_000.0, 125.0, 0.004, 0.0]
    assert list(rules.brackets[-1]) == [1.2e9, 1.8e9, 1.0, 0.5, 421_481_450.0]


def test_ethusdt_rules_are_binances_published_ones() -> None:
    rules = symbol_rules("ETHUSDT")
    assert (rules.tick_size, rules.step_size, rules.min_notional) == (0.01, 0.001, 20.0)
    assert rules.max_leverage == 125.0
    assert list(rules.brackets[5]) == [50e6, 65e6, 20.0, 0.025, 381_450.0]


def test_symbol_names_are_read_case_insensitively() -> None:
    assert symbol_rules(" btcusdt ") == symbol_rules("BTCUSDT")
    assert symbol_rules("btcusdt").symbol == "BTCUSDT"


def test_any_other_usdt_symbol_gets_the_cautious_generic_default() -> None:
    rules = symbol_rules("SOLUSDT")
    assert rules.symbol == "SOLUSDT"
    assert rules.max_leverage == 20.0
    assert rules.min_notional == 5.0


@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize("notional", [100.0, 9_999.0, 30_000.0, 200_000.0, 2e6, 4e6, 1e7])
def test_the_generic_default_liquidates_sooner_than_btc_and_eth(side: int, notional: float) -> None:
    generic = symbol_rules("SOLUSDT").brackets
    for leverage in np.arange(1.0, max_leverage_nb(generic, notional) + 1.0):
        cautious = liquidation_distance_pct_nb(side, leverage, generic, notional)
        for major in ("BTCUSDT", "ETHUSDT"):
            table = symbol_rules(major).brackets
            # <=: at 1x neither long can be liquidated (both 100%).
            assert cautious <= liquidation_distance_pct_nb(side, leverage, table, notional)


@pytest.mark.parametrize("symbol", ["BTCUSDC", "BTCBUSD", "USDT", "ETHBTC"])
def test_symbols_not_margined_in_usdt_have_no_default(symbol: str) -> None:
    with pytest.raises(ExchangeRulesError, match="USDT"):
        symbol_rules(symbol)


def test_exchange_rules_errors_are_expected_errors() -> None:
    assert issubclass(ExchangeRulesError, SltError)


def _rules(table: np.ndarray, **overrides: Any) -> SymbolRules:
    fields: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "tick_size": 0.1,
        "step_size": 0.001,
        "min_notional": 100.0,
        "max_leverage": float(table[0, 2]) if table.ndim == 2 and len(table) else 125.0,
        "brackets": table,
    }
    return SymbolRules(**(fields | overrides))


def _edit(row: int, col: int, value: float) -> Callable[[np.ndarray], np.ndarray]:
    def apply(table: np.ndarray) -> np.ndarray:
        table = table.copy()
        table[row, col] = value
        return table

    return apply


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (_edit(1, 4, 60.0), "bracket 2: cum 60 should be 50"),
        (_edit(1, 3, 0.0), "must lie in (0, 1)"),
        (_edit(2, 3, 1.5), "must lie in (0, 1)"),
        (_edit(0, 1, 40_000.0), "floor 50000 must equal the previous cap 40000"),
        (_edit(0, 0, 10.0), "must start at notional 0"),
        (_edit(2, 1, 500_000.0), "cap 500000 must exceed floor 600000"),
        (_edit(1, 2, 200.0), "max leverage must not rise"),
        (_edit(0, 2, 300.0), "initial margin 1/300 must exceed the maintenance rate 0.004"),
        (lambda t: t[::-1].copy(), "bracket 2"),
        (lambda t: t[:, :4].copy(), "(k, 5) table"),
        (lambda t: t[:0].copy(), "non-empty"),
        (_edit(1, 3, np.nan), "NaN"),
    ],
)
def test_an_insane_bracket_table_is_refused(
    mutate: Callable[[np.ndarray], np.ndarray], problem: str
) -> None:
    with pytest.raises(ExchangeRulesError) as caught:
        _rules(mutate(BTC_TABLE))
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"tick_size": 0.0}, "tick_size must be a positive number"),
        ({"step_size": -0.001}, "step_size must be a positive number"),
        ({"min_notional": -1.0}, "min_notional must be >= 0"),
        ({"max_leverage": 150.0}, "max_leverage 150 exceeds the first bracket's 125"),
    ],
)
def test_bad_filters_are_refused(overrides: dict[str, float], problem: str) -> None:
    with pytest.raises(ExchangeRulesError, match=problem):
        _rules(BTC_TABLE, **overrides)


def test_an_infinite_last_cap_is_allowed() -> None:
    table = BTC_TABLE.copy()
    table[-1, 1] = np.inf
    assert _rules(table).brackets[-1, 1] == np.inf


def test_validate_names_the_symbol_and_every_problem() -> None:
    table = _edit(1, 4, 60.0)(BTC_TABLE)
    with pytest.raises(ExchangeRulesError, match=r"^XYZUSDT: tick_size .*; bracket 2: cum 60"):
        _rules(table, symbol="XYZUSDT", tick_size=0.0)


def test_rules_compare_by_value_and_keep_float64_brackets() -> None:
    ints = np.array([[0, 1_000_000, 10, 0.05, 0]])
    rules = _rules(ints)
    assert rules.brackets.dtype == np.float64
    assert rules == _rules(ints.astype(np.float64))
    assert hash(rules) == hash(_rules(ints.astype(np.float64)))
    assert rules != _rules(np.array([[0.0, 2_000_000.0, 10.0, 0.05, 0.0]]))


def test_binance_payloads_parse_into_rules() -> None:
    rules = from_binance_json("BTCUSDT", BTC_EXCHANGE_INFO, BTC_BRACKETS)
    assert rules == _rules(BTC_TABLE)
    assert (rules.tick_size, rules.step_size, rules.min_notional) == (0.1, 0.001, 100.0)
    assert rules.max_leverage == 125.0


def test_the_single_symbol_bracket_answer_parses_the_same() -> None:
    # Binance answers with one object, not a list, when asked for one symbol.
    single = from_binance_json("BTCUSDT", BTC_EXCHANGE_INFO, BTC_BRACKETS[0])
    bare = from_binance_json("BTCUSDT", BTC_EXCHANGE_INFO, BTC_BRACKETS[0]["brackets"])
    assert single == bare == _rules(BTC_TABLE)


def test_brackets_sent_out_of_order_are_sorted_by_floor() -> None:
    shuffled = [{"symbol": "BTCUSDT", "brackets": BTC_BRACKETS[0]["brackets"][::-1]}]
    assert from_binance_json("BTCUSDT", BTC_EXCHANGE_INFO, shuffled) == _rules(BTC_TABLE)


def test_the_brackets_of_the_asked_symbol_are_picked_from_a_full_answer() -> None:
    eth = {"symbol": "ETHUSDT", "brackets": [dict(BTC_BRACKETS[0]["brackets"][0], cum=1.0)]}
    rules = from_binance_json("BTCUSDT", BTC_EXCHANGE_INFO, [eth, *BTC_BRACKETS])
    assert rules == _rules(BTC_TABLE)


def test_the_embedded_table_survives_a_round_trip_through_the_payload_shape() -> None:
    table = symbol_rules("BTCUSDT").brackets
    payload = {
        "symbol": "BTCUSDT",
        "brackets": [
            {"bracket": i + 1, "notionalFloor": str(f), "notionalCap": str(c),
             "initialLeverage": int(lev), "maintMarginRatio": str(m), "cum": str(cum)}
            for i, (f, c, lev, m, cum) in enumerate(table)
        ],
    }  # fmt: skip
    assert from_binance_json("BTCUSDT", BTC_EXCHANGE_INFO, payload) == symbol_rules("BTCUSDT")


def _without_filter(kind: str) -> dict[str, Any]:
    filters = [f for f in BTC_EXCHANGE_INFO["filters"] if f["filterType"] != kind]
    return BTC_EXCHANGE_INFO | {"filters": filters}


@pytest.mark.parametrize("kind", ["PRICE_FILTER", "LOT_SIZE", "MIN_NOTIONAL"])
def test_a_missing_filter_is_refused(kind: str) -> None:
    with pytest.raises(ExchangeRulesError, match=f"no {kind} filter"):
        from_binance_json("BTCUSDT", _without_filter(kind), BTC_BRACKETS)


def test_an_unreadable_filter_value_is_refused() -> None:
    info = _without_filter("PRICE_FILTER")
    info["filters"] = [*info["filters"], {"filterType": "PRICE_FILTER", "tickSize": "abc"}]
    with pytest.raises(ExchangeRulesError, match="tickSize is not a number"):
        from_binance_json("BTCUSDT", info, BTC_BRACKETS)


def test_payloads_for_another_symbol_are_refused() -> None:
    with pytest.raises(ExchangeRulesError, match="not 'ETHUSDT'"):
        from_binance_json("ETHUSDT", BTC_EXCHANGE_INFO, BTC_BRACKETS)
    eth_info = BTC_EXCHANGE_INFO | {"symbol": "ETHUSDT"}
    with pytest.raises(ExchangeRulesError, match="no brackets"):
        from_binance_json("ETHUSDT", eth_info, BTC_BRACKETS)


def test_a_bracket_without_its_cum_is_refused() -> None:
    broken = [{k: v for k, v in b.items() if k != "cum"} for b in BTC_BRACKETS[0]["brackets"]]
    with pytest.raises(ExchangeRulesError, match="unreadable leverage bracket"):
        from_binance_json("BTCUSDT", BTC_EXCHANGE_INFO, broken)


def test_an_inconsistent_bracket_answer_is_refused() -> None:
    brackets = [dict(b) for b in BTC_BRACKETS[0]["brackets"]]
    brackets[2]["cum"] = 900.0
    with pytest.raises(ExchangeRulesError, match="bracket 3: cum 900 should be 950"):
        from_binance_json("BTCUSDT", BTC_EXCHANGE_INFO, brackets)
