"""``--state``: the exchange's state written atomically and read back into a fresh server,
where the restored venue keeps matching (its arrays are the ones the kernels use)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slt.adapters.exchange.local import state_file
from slt.adapters.exchange.local.auth import Authenticator
from slt.adapters.exchange.local.clock import ReplayClock
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.server import LocalExchange
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from slt.engine.symbol_venue import symbol_venue
from slt.errors import ConfigError
from tests.conftest import CATMAN_BTC_5M, CATMAN_ETH_5M
from tests.support.binance_calls import Wall, call, ok
from tests.support.local_exchange import ACCOUNT, real_store, serving

START = parse_utc_ms("2024-01-01")
WALL_13H = parse_utc_ms("2026-12-07") + 13 * 3_600_000
NOW = START + 13 * 3_600_000


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    store = real_store(tmp_path_factory.mktemp("state-store"), [CATMAN_BTC_5M, CATMAN_ETH_5M])
    return load_tapes(store, ["BTCUSDT", "ETHUSDT"], START, None)


def fresh(tapes: dict[str, SymbolTape], wall: Wall) -> LocalExchange:
    clock = ReplayClock.start(START, 1.0, wall)
    return LocalExchange(
        tapes, clock, Authenticator([ACCOUNT], wall), wall=wall, venues=symbol_venue
    )


def test_a_restored_exchange_fills_the_stop_the_market_reaches_after_the_restart(
    tapes: dict[str, SymbolTape], tmp_path: Path
) -> None:
    c = tapes["BTCUSDT"].candles
    i = int(np.searchsorted(c.open_time_ms, NOW, "right")) - 1
    trigger = round(float(c.open[i]) * 0.995, 1)
    j = i + int(np.argmax(c.low[i:] <= trigger))
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        ok(call(ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.010"))  # fmt: skip
        ok(call(ex.url, "POST", "/fapi/v1/algoOrder", wall, algoType="CONDITIONAL",
                symbol="BTCUSDT", side="SELL", type="STOP_MARKET", closePosition="true",
                triggerPrice=f"{trigger:.1f}"))  # fmt: skip
        state_file.save(ex.exchange, tmp_path)
    # A new server process: fresh accounts, then the saved state, then the market moves on.
    restored = fresh(tapes, Wall(WALL_13H + 3_600_000))
    assert state_file.load(restored, tmp_path)
    assert restored.clock.history_now() == NOW + 3_600_000
    desk = restored.accounts[ACCOUNT.key].desk("BTCUSDT")
    assert desk.amt == pytest.approx(0.010) and len(desk.open_algo_ids) == 1
    restored.clock.wall = restored.wall = Wall(WALL_13H + int(c.open_time_ms[j]) + 300_000 - NOW)
    restored.catch_up()
    assert desk.amt == 0.0 and not desk.open_algo_ids
    assert desk.trades[-1].price == pytest.approx(min(float(c.open[j]), trigger) * 0.9999)


def test_an_unreadable_state_is_refused_by_name_and_left_as_it_was(
    tapes: dict[str, SymbolTape], tmp_path: Path
) -> None:
    path = state_file.state_path(tmp_path)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ConfigError, match=r"exchange-state\.npz is not a readable exchange state"):
        state_file.load(fresh(tapes, Wall(WALL_13H)), tmp_path)
    assert path.read_bytes() == b"PK\x03\x04 not really a zip"


def test_a_state_of_other_symbols_is_refused(tapes: dict[str, SymbolTape], tmp_path: Path) -> None:
    state_file.save(fresh({"BTCUSDT": tapes["BTCUSDT"]}, Wall(WALL_13H)), tmp_path)
    with pytest.raises(ConfigError, match=r"holds BTCUSDT, not BTCUSDT, ETHUSDT"):
        state_file.load(fresh(tapes, Wall(WALL_13H)), tmp_path)
