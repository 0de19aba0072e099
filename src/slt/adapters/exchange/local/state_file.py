"""``slt exchange serve --state DIR``: balances, positions, orders and the replayed moment
survive a restart.

One file, ``DIR/exchange-state.npz``: the venue arrays of every account and symbol, and the
rest as one JSON document. It is written to a temporary file and renamed over the old one, so
a crash mid-write leaves the previous state whole. The clock is part of the state: after a
restart the market has moved on by the time the server was down, as Binance's would have, and
the first step fills what the outage crossed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slt.adapters.exchange.local.account import Account, Desk, Income, Trade
from slt.adapters.exchange.local.order_book import AlgoOrder, LocalOrder
from slt.errors import ConfigError

if TYPE_CHECKING:
    from slt.adapters.exchange.local.server import LocalExchange

STATE_FILE = "exchange-state.npz"
FORMAT = 1


def state_path(directory: Path) -> Path:
    return directory / STATE_FILE


def save(ex: LocalExchange, directory: Path) -> Path:
    """Write the whole exchange state atomically; returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    accounts = []
    for a, account in enumerate(ex.accounts.values()):
        desks = {}
        for symbol, desk in account.desks.items():
            for name, array in desk.sim.arrays().items():
                arrays[f"{a}/{symbol}/{name}"] = array
            desks[symbol] = _desk_doc(desk)
        accounts.append({
            "key": account.api_key, "wallet": account.wallet, "update_ms": account.update_ms,
            "income": [dataclasses.asdict(i) for i in account.income], "desks": desks,
        })  # fmt: skip
    assert ex.stepper is not None
    clock = ex.clock
    doc = {
        "format": FORMAT,
        "symbols": sorted(ex.tapes),
        "clock": {
            "start_history_ms": clock.start_history_ms, "start_wall_ms": clock.start_wall_ms,
            "speed": "max" if clock.is_max else clock.speed, "shift_ms": clock.shift_ms,
            "moved_ms": clock.history_now() if clock.is_max else 0,
        },
        "ids": {"order": ex.ids.next_order, "algo": ex.ids.next_algo, "trades": ex.ids.trades},
        "stepper": ex.stepper.positions(),
        "opened_ms": ex.opened_ms,
        "accounts": accounts,
    }  # fmt: skip
    arrays["document"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    target = state_path(directory)
    temporary = directory / f".{STATE_FILE}.{os.getpid()}.tmp"
    with open(temporary, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


def load(ex: LocalExchange, directory: Path) -> bool:
    """Restore a saved state into a freshly built exchange; False if there is none. A state
    of other symbols, or a file that cannot be read, is refused with what to do."""
    path = state_path(directory)
    if not path.exists():
        return False
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        doc = json.loads(bytes(arrays.pop("document")).decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ConfigError(
            f"--state: {path} is not a readable exchange state ({exc}); move it away to start fresh"
        ) from exc
    if doc.get("format") != FORMAT or doc.get("symbols") != sorted(ex.tapes):
        raise ConfigError(
            f"--state: {path} holds {', '.join(doc.get('symbols', []))}, not "
            f"{', '.join(sorted(ex.tapes))}; use another directory for other symbols"
        )
    clock = doc["clock"]
    ex.clock.start_history_ms = int(clock["start_history_ms"])
    ex.clock.start_wall_ms = int(clock["start_wall_ms"])
    ex.clock.shift_ms = int(clock["shift_ms"])
    ex.clock.awaiting_client = False  # a restored replay goes on where it was
    ex.clock.speed = float("inf") if clock["speed"] == "max" else float(clock["speed"])
    if ex.clock.is_max:
        ex.clock.move_to(int(clock["moved_ms"]))
    ex.ids.next_order = int(doc["ids"]["order"])
    ex.ids.next_algo = int(doc["ids"]["algo"])
    ex.ids.trades = {k: int(v) for k, v in doc["ids"]["trades"].items()}
    ex.opened_ms = int(doc["opened_ms"])
    for a, saved in enumerate(doc["accounts"]):
        account = ex.accounts.get(saved["key"])
        if account is None:
            continue  # an account no longer configured: its state stays in the file only
        _restore_account(account, saved, arrays, a, ex.clock.shift_ms)
    assert ex.stepper is not None
    ex.stepper.restore(doc["stepper"])
    return True


def _desk_doc(desk: Desk) -> dict[str, Any]:
    return {
        "leverage": desk.leverage, "margin_type": desk.margin_type, "amt": desk.amt,
        "entry": desk.entry, "realized": desk.realized, "position_ms": desk.position_ms,
        "orders": [dataclasses.asdict(o) for o in desk.orders.values()],
        "open_ids": desk.open_ids,
        "algos": [dataclasses.asdict(o) for o in desk.algos.values()],
        "open_algo_ids": desk.open_algo_ids,
        "venue_algos": {str(k): v for k, v in desk.venue_algos.items()},
        "trades": [dataclasses.asdict(t) for t in desk.trades],
        "margin_called": desk.margin_called,
    }  # fmt: skip


def _restore_account(account: Account, saved: dict[str, Any], arrays: dict[str, np.ndarray],
                     a: int, shift_ms: int) -> None:  # fmt: skip
    account.wallet = float(saved["wallet"])
    account.update_ms = int(saved["update_ms"])
    account.shift_ms = shift_ms
    account.income = [Income(**i) for i in saved["income"]]
    for symbol, d in saved["desks"].items():
        desk = account.desks[symbol]
        prefix = f"{a}/{symbol}/"
        saved_arrays = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        try:
            desk.sim.load_arrays(saved_arrays)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"--state: the saved venue of {symbol} does not fit: {exc}") from exc
        desk.leverage = int(d["leverage"])
        desk.margin_type = str(d["margin_type"])
        desk.amt, desk.entry = float(d["amt"]), float(d["entry"])
        desk.realized, desk.position_ms = float(d["realized"]), int(d["position_ms"])
        desk.orders = {o["order_id"]: LocalOrder(**o) for o in d["orders"]}
        desk.open_ids = {k: int(v) for k, v in d["open_ids"].items()}
        desk.algos = {o["algo_id"]: AlgoOrder(**o) for o in d["algos"]}
        desk.open_algo_ids = {k: int(v) for k, v in d["open_algo_ids"].items()}
        desk.venue_algos = {int(k): int(v) for k, v in d["venue_algos"].items()}
        desk.trades = [Trade(**t) for t in d["trades"]]
        desk.margin_called = bool(d.get("margin_called", False))
