"""Faults on demand at the local exchange: the control API under ``/_sim/`` and scheduled
``--faults`` scenarios, each producing what Binance does when it goes wrong: unknown outcomes
of orders that did land, orders it forgets for a while, 429/418 bursts, clock skew, a price
gap through a stop, a restart."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slt.adapters.exchange.local.faults import Fault, Scheduled, load_scenario
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from slt.errors import ConfigError
from tests.conftest import CATMAN_BTC_5M
from tests.support.binance_calls import SystemWall, Wall, call, ok
from tests.support.local_exchange import Running, real_store, serving

START = parse_utc_ms("2024-01-01")
WALL_13H = parse_utc_ms("2026-12-07") + 13 * 3_600_000
NOW = START + 13 * 3_600_000


@pytest.fixture
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    """Fresh per test: a price-gap fault edits the candles."""
    store = real_store(tmp_path_factory.mktemp("faults-store"), [CATMAN_BTC_5M])
    return load_tapes(store, ["BTCUSDT"], START, None)


def inject(ex: Running, *faults: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{ex.url}/_sim/faults", data=json.dumps(list(faults)).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def market_buy(ex: Running, wall: Wall, **extra: Any) -> tuple[int, dict[str, str], Any]:
    return call(ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.010", **extra)  # fmt: skip


def test_the_control_api_is_refused_unless_the_server_was_started_with_control(
    tapes: dict[str, SymbolTape],
) -> None:
    with serving(tapes, START, wall=Wall(WALL_13H)) as ex:
        status, body = inject(ex, {"kind": "rate_limit"})
    assert status == 403 and "--control" in body["msg"]


def test_a_bad_fault_is_refused_by_name(tapes: dict[str, SymbolTape]) -> None:
    with serving(tapes, START, wall=Wall(WALL_13H), control=True) as ex:
        unknown = inject(ex, {"kind": "meteor"})
        missing = inject(ex, {"kind": "clock_skew"})
        wrong = inject(ex, {"kind": "rate_limit", "status": 500})
    assert unknown[0] == 400 and "kind must be one of" in unknown[1]["msg"]
    assert missing[0] == 400 and "ms is required" in missing[1]["msg"]
    assert wrong[0] == 400 and "status must be one of (429, 418)" in wrong[1]["msg"]


@pytest.mark.parametrize("status", [503, 502])
def test_an_order_whose_answer_is_lost_did_land_and_a_resend_is_refused_as_a_duplicate(
    tapes: dict[str, SymbolTape], status: int
) -> None:
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall, control=True) as ex:
        assert inject(ex, {"kind": "unknown_outcome", "status": status})[0] == 200
        limit = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.010",
            "price": "30000",
            "newClientOrderId": "maybe-1",
        }
        lost = call(ex.url, "POST", "/fapi/v1/order", wall, **limit)
        found = ok(call(ex.url, "GET", "/fapi/v1/order", wall, symbol="BTCUSDT",
                        origClientOrderId="maybe-1"))  # fmt: skip
        resent = call(ex.url, "POST", "/fapi/v1/order", wall, **limit)
    assert lost[0] == status
    if status == 503:
        assert lost[2]["code"] == -1007 and "execution status unknown" in lost[2]["msg"]
    assert found["status"] == "NEW"  # it landed
    assert resent[0] == 400 and resent[2]["code"] == -4116


def test_a_fresh_order_can_be_forgotten_for_a_while(tapes: dict[str, SymbolTape]) -> None:
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall, control=True) as ex:
        inject(ex, {"kind": "transient_unknown_order", "seconds": 30})
        order = ok(market_buy(ex, wall))
        query = call(ex.url, "GET", "/fapi/v1/order", wall, symbol="BTCUSDT",
                     orderId=order["orderId"])  # fmt: skip
        wall.advance(31_000)
        later = ok(call(ex.url, "GET", "/fapi/v1/order", wall, symbol="BTCUSDT",
                        orderId=order["orderId"]))  # fmt: skip
        [position] = ok(call(ex.url, "GET", "/fapi/v3/positionRisk", wall))
    assert query[0] == 400 and query[2]["code"] == -2013
    assert later["status"] == "FILLED" and position["positionAmt"] == "0.010"


@pytest.mark.parametrize(("status", "code"), [(429, -1003), (418, -1003)])
def test_rate_limit_bursts_answer_then_pass(
    tapes: dict[str, SymbolTape], status: int, code: int
) -> None:
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall, control=True) as ex:
        inject(ex, {"kind": "rate_limit", "status": status, "count": 2})
        answers = [call(ex.url, "GET", "/fapi/v3/balance", wall) for _ in range(3)]
    assert [a[0] for a in answers] == [status, status, 200]
    assert answers[0][2]["code"] == code and int(answers[0][1]["Retry-After"]) > 0


def test_clock_skew_makes_signed_requests_fail_until_the_client_resyncs(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall, control=True) as ex:
        inject(ex, {"kind": "clock_skew", "ms": 20_000})
        skewed = call(ex.url, "GET", "/fapi/v3/balance", wall)
        server = ok(call(ex.url, "GET", "/fapi/v1/time", wall))["serverTime"]
        resynced = call(ex.url, "GET", "/fapi/v3/balance", Wall(server))
    assert skewed[0] == 400 and skewed[2]["code"] == -1021
    assert server == WALL_13H + 20_000
    assert resynced[0] == 200


def test_a_price_gap_through_a_stop_fills_it_at_the_gapped_open(
    tapes: dict[str, SymbolTape],
) -> None:
    c = tapes["BTCUSDT"].candles
    i = int(np.searchsorted(c.open_time_ms, NOW, "right")) - 1
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall, control=True) as ex:
        entry = float(ok(market_buy(ex, wall, newOrderRespType="RESULT"))["avgPrice"])
        trigger = round(entry * 0.99, 1)
        ok(call(ex.url, "POST", "/fapi/v1/algoOrder", wall, algoType="CONDITIONAL",
                symbol="BTCUSDT", side="SELL", type="STOP_MARKET", closePosition="true",
                triggerPrice=f"{trigger:.1f}"))  # fmt: skip
        status, body = inject(ex, {"kind": "price_gap", "symbol": "BTCUSDT", "pct": -3.0})
        gapped_at = body["applied"][0]["candle_open_time"]
        wall.advance(gapped_at + 300_000 - NOW)
        [trade] = [t for t in ok(call(ex.url, "GET", "/fapi/v1/userTrades", wall,
                                      symbol="BTCUSDT")) if t["side"] == "SELL"]  # fmt: skip
    assert status == 200 and gapped_at == int(c.open_time_ms[i + 1])
    gapped_open = round(float(c.close[i]) * 0.97, 1)
    assert float(c.open[i + 1]) == gapped_open  # the candles now hold the gap
    assert float(trade["price"]) == pytest.approx(gapped_open * 0.9999, abs=0.05)
    assert float(trade["price"]) < trigger * 0.98  # far through the stop, as a gap fills


def test_a_restart_cuts_every_connection_refuses_new_ones_then_serves_the_same_state(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = SystemWall()
    with serving(tapes, START, wall=wall, control=True) as ex:
        ok(market_buy(ex, wall))
        inject(ex, {"kind": "restart", "seconds": 1.0})
        time.sleep(0.3)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{ex.url}/fapi/v1/ping", timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"{ex.url}/fapi/v1/ping", timeout=2).close()
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "the exchange did not come back"
                time.sleep(0.1)
        [position] = ok(call(ex.url, "GET", "/fapi/v3/positionRisk", wall))
    assert position["positionAmt"] == "0.010"


def test_a_scenario_file_applies_its_faults_at_their_market_moment(
    tapes: dict[str, SymbolTape], tmp_path: Path
) -> None:
    scenario = tmp_path / "outage.toml"
    scenario.write_text(
        '[[fault]]\nkind = "rate_limit"\nstatus = 418\ncount = 1\nat = "2024-01-01 13:30"\n'
    )
    plan = load_scenario(scenario)
    assert plan == [
        Scheduled(
            Fault("rate_limit", {"status": 418, "count": 1}),
            at_history_ms=START + 13 * 3_600_000 + 30 * 60_000,
        )
    ]
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall, fault_plan=plan) as ex:
        before = call(ex.url, "GET", "/fapi/v1/time", wall)
        wall.advance(30 * 60_000)
        deadline = time.monotonic() + 5
        while ex.exchange.faults.rate_limit.left == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        during = call(ex.url, "GET", "/fapi/v1/time", wall)
        after = call(ex.url, "GET", "/fapi/v1/time", wall)
    assert [before[0], during[0], after[0]] == [200, 418, 200]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[fault]]\nkind = "meteor"\nafter_s = 1\n', "fault 1: kind must be one of"),
        ('[[fault]]\nkind = "clock_skew"\nafter_s = 1\n', "ms is required"),
        ('[[fault]]\nkind = "restart"\n', "exactly one of at (market time) or after_s"),
        ('[[fault]]\nkind = "restart"\nafter_s = 1\ncolour = "red"\n', "unknown parameter"),
        ("[[fault]\n", "cannot read"),
        ('kind = "restart"\n', "must hold [[fault]] tables"),
    ],
)
def test_a_bad_scenario_file_is_refused_naming_the_fault(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):  # fmt: skip
        load_scenario(path)
