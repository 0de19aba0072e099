"""A session journaled to a real file, stopped at random events, rebuilt from the journal and
resumed, ends exactly where an uninterrupted session ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.unit.engine.scenario import T0, rules_for, signals_for

from slt.adapters.journal import JournalError, JsonlJournal
from slt.domain.results import MarketData
from slt.domain.series import Candles, Market, SeriesKey
from slt.engine.backtest import ModelChange, Prepared, prepare
from slt.engine.event_driver import EventDriver
from slt.engine.messages import Command, Persist
from slt.engine.replay import journal_header, replay
from slt.engine.venue import Faults
from slt.runtime.trading_config import TradingConfig

RUN = "jrnl0001"
VERSIONS = ("model-a", "model-b")


def _market(symbol: str, seed: int, n: int = 1_500) -> Candles:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n)))
    times = T0 + 300_000 * np.arange(n, dtype=np.int64)
    times[n // 2 :] += 900_000  # a hole in the data
    return Candles.from_arrays(SeriesKey(symbol, Market.FUTURES, "5m"), times, open_, high,
                               low, close, np.ones(n))  # fmt: skip


def _prepared() -> Prepared:
    config = TradingConfig.model_validate(
        {
            "exits": {
                "trailing_activation_pct": 0.5,
                "trailing_distance_pct": 0.3,
                "partial_take_profit_pct": 1.0,
            },
            "risk": {"max_total_pct": 30.0},
        }
    ).engine()
    datas, signals = [], []
    for k, symbol in enumerate(("AAAUSDT", "BBBUSDT")):
        candles = _market(symbol, k)
        rng = np.random.default_rng(10 + k)
        picks = rng.choice([-1, 0, 1], size=len(candles), p=[0.05, 0.9, 0.05])
        datas.append(MarketData(candles, T0, rules_for(symbol)))
        signals.append(signals_for(candles, dict(enumerate(picks.tolist())), config))
    faults = Faults(fill_parts=2, duplicate_fill_rate=0.2, late_cancel_rate=0.3, seed=3)
    changes = [ModelChange(T0 + 100 * 300_000, 1), ModelChange(T0 + 900 * 300_000, 2)]
    return prepare(datas, signals, config, faults=faults, model_changes=changes,
                   follow_virtual=True)  # fmt: skip


def _trades(commands: list[Command]) -> list[dict[str, object]]:
    return [c.trade._asdict() for c in commands if isinstance(c, Persist)]


def test_a_session_stopped_at_random_events_and_resumed_from_its_journal_ends_the_same(
    tmp_path: Path,
) -> None:
    prepared = _prepared()
    whole = EventDriver(prepared, RUN, model_versions=VERSIONS)
    whole.run()
    total = whole.applied
    assert total > 5_000 and len(_trades(whole.commands)) > 50
    rng = np.random.default_rng(2026)
    for stop_at in sorted(rng.integers(1, total, size=4).tolist()):
        path = tmp_path / f"session-{stop_at}.jsonl"
        header = journal_header(prepared, RUN)
        crashed = EventDriver(prepared, RUN, model_versions=VERSIONS,
                              journal=JsonlJournal(path, header))  # fmt: skip
        assert crashed.run(stop_after=stop_at) is False
        crashed.journal.close()  # type: ignore[union-attr]
        # The process died: its state is gone; the exchange (a venue, not ours) lives on.
        rebuilt = replay(header, JsonlJournal(path).entries())
        assert rebuilt.events == stop_at
        assert rebuilt.state == crashed.state
        assert rebuilt.commands == crashed.commands
        crashed.journal = JsonlJournal(path)  # appends where the journal ends
        crashed.resume(rebuilt.state)
        before = len(crashed.commands)
        assert crashed.run() is True
        crashed.journal.close()
        resumed_commands = rebuilt.commands + crashed.commands[before:]
        assert crashed.state == whole.state
        assert resumed_commands == whole.commands
        assert _trades(resumed_commands) == _trades(whole.commands)
        # The journal of the resumed session replays to the same end.
        again = replay(header, JsonlJournal(path).entries())
        assert again.state == whole.state
        np.testing.assert_array_equal(again.result.equity, whole.outcome().result.equity)  # type: ignore[union-attr]


def test_a_journal_of_another_format_or_version_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"format":"slt-journal","version":99,"header":{}}\n')
    with pytest.raises(JournalError, match="version 99"):
        JsonlJournal(other).header()
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"hello": "world"}\n')
    with pytest.raises(JournalError, match="not an slt journal"):
        list(JsonlJournal(notes).read())
