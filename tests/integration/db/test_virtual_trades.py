"""The virtual-trade repository on SQLite and real PostgreSQL: round trips, refusals, order."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
from sqlalchemy.engine import URL

from slt.adapters.db import migrate
from slt.adapters.db.connect import create_engine
from slt.adapters.db.virtual_trades import TrainingBatch, VirtualTradeStore
from slt.domain.records import RecordError, VirtualTrade

T0 = 1_704_067_200_000


def trade(k: int, **changes: object) -> VirtualTrade:
    features = np.array([0.1 * k, np.nan, -3.25, 1e-300], dtype=np.float64)
    base = VirtualTrade(
        symbol="BTCUSDT",
        direction=1 if k % 2 else -1,
        entry_time_ms=T0 + k * 300_000,
        entry_price=42_000.1 + k,
        stop_loss_pct=1.5,
        take_profit_pct=3.0,
        exit_time_ms=T0 + k * 300_000 + 3_600_000,
        exit_price=42_100.123456789 + k,
        exit_reason="take_profit",
        return_pct=0.25 * k,
        reward=0.1 * k,
        won=k % 3 == 0,
        features=features,
        feature_schema_hash="a" * 64,
        model_version="none",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _run(url: URL, action: str, trades: list[VirtualTrade] | None = None, limit: int = 0) -> object:
    async def go() -> object:
        await migrate.upgrade(url)
        engine = create_engine(url)
        try:
            store = VirtualTradeStore(engine)
            if action == "add":
                return await store.add_many(trades or [])
            if action == "count":
                return await store.count()
            return await store.newest(limit)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_virtual_trades_round_trip_with_their_features_newest_first(db_url: URL) -> None:
    written = [trade(k) for k in range(1, 21)]
    assert _run(db_url, "add", written) == 20
    batch = _run(db_url, "newest", limit=5)
    assert isinstance(batch, TrainingBatch)
    assert len(batch) == 5
    assert list(batch.exit_time_ms) == [t.exit_time_ms for t in written[::-1][:5]]
    newest = written[-1]
    np.testing.assert_array_equal(batch.features[0], newest.features)  # NaN kept, bits exact
    assert batch.return_pct[0] == newest.return_pct and bool(batch.won[0]) == newest.won
    assert batch.direction[0] == newest.direction and batch.symbol[0] == "BTCUSDT"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"entry_price": float("nan")}, "entry_price must be a finite number"),
        ({"return_pct": float("inf")}, "return_pct must be a finite number"),
        ({"exit_price": -1.0}, "exit_price must be above 0"),
        ({"symbol": "BTC/USDT"}, "unknown symbol 'BTC/USDT'"),
        ({"symbol": "NOT A SYMBOL"}, "unknown symbol"),
        ({"model_version": "v" * 65}, "model_version is 65 characters long"),
        ({"exit_reason": "vibes"}, "unknown exit_reason"),
        ({"features": np.array([1.0, np.inf, 0.0, 0.0])}, "features hold an infinite value"),
        ({"features": np.array([1.0, 2.0])}, "features of one batch must have one width"),
        ({"entry_time_ms": 1.5}, "entry_time_ms must be a non-negative integer"),
    ],
)
def test_bad_records_are_refused_and_nothing_of_the_batch_is_written(
    db_url: URL, changes: dict[str, object], message: str
) -> None:
    batch = [trade(1), trade(2, **changes), trade(3)]
    with pytest.raises(RecordError, match=message):
        _run(db_url, "add", batch)
    assert _run(db_url, "count") == 0


def _assert_batch_holds(batch: object, written: list[VirtualTrade]) -> None:
    """Every column of ``batch`` equals ``written`` (newest first), with TrainingBatch's types."""
    assert isinstance(batch, TrainingBatch)
    newest_first = sorted(written, key=lambda t: t.exit_time_ms, reverse=True)
    assert len(batch) == len(newest_first)
    assert batch.symbol == [t.symbol for t in newest_first]
    assert batch.feature_schema_hash == [t.feature_schema_hash for t in newest_first]
    for name, dtype in [
        ("direction", np.int8),
        ("entry_time_ms", np.int64),
        ("exit_time_ms", np.int64),
        ("return_pct", np.float64),
        ("reward", np.float64),
        ("won", np.bool_),
    ]:
        column = getattr(batch, name)
        assert column.dtype == dtype, name
        np.testing.assert_array_equal(column, [getattr(t, name) for t in newest_first])
    assert batch.id.dtype == np.int64 and len(set(batch.id.tolist())) == len(batch)
    width = len(written[0].features) if written else 0
    assert batch.features.shape == (len(batch), width) and batch.features.dtype == np.float64
    assert batch.features.flags.c_contiguous and batch.features.flags.writeable
    expected = np.array([t.features for t in newest_first]).reshape(len(batch), width)
    assert batch.features.tobytes() == expected.tobytes()  # NaN, -0.0 and subnormals bit-exact


def test_newest_gives_back_every_column_of_every_trade_exactly(db_url: URL) -> None:
    symbols = ["BTCUSDT", "DOGEUSDT", "1000PEPEUSDT", "ETHBTC"]
    written = [
        trade(
            k,
            symbol=symbols[k % 4],
            feature_schema_hash=f"{k % 3:x}" * (64 - k % 5),
            features=np.array([0.1 * k, np.nan, -0.0, 5e-324, -1e308, float(k)]),
            return_pct=-1.0 / (k + 3),
            reward=k * 1e-17,
        )
        for k in range(1, 41)
    ]
    _run(db_url, "add", written)

    batch = _run(db_url, "newest", limit=100)

    _assert_batch_holds(batch, written)


def test_newest_of_an_empty_store_is_an_empty_batch_of_the_same_types(db_url: URL) -> None:
    batch = _run(db_url, "newest", limit=50)

    _assert_batch_holds(batch, [])


def test_newest_of_one_trade_is_a_batch_of_one_row(db_url: URL) -> None:
    _run(db_url, "add", [trade(7)])

    batch = _run(db_url, "newest", limit=50)

    _assert_batch_holds(batch, [trade(7)])


def test_newest_with_limit_zero_reads_nothing(db_url: URL) -> None:
    _run(db_url, "add", [trade(1), trade(2)])

    batch = _run(db_url, "newest", limit=0)

    _assert_batch_holds(batch, [])


def test_trades_closed_in_the_same_millisecond_come_newest_written_first(db_url: URL) -> None:
    _run(db_url, "add", [trade(k, exit_time_ms=T0 + 10_000_000, reward=float(k)) for k in range(5)])

    batch = _run(db_url, "newest", limit=3)

    assert isinstance(batch, TrainingBatch)
    assert list(batch.reward) == [4.0, 3.0, 2.0]
    assert list(batch.id) == sorted(batch.id, reverse=True)


@pytest.mark.parametrize(
    "hashes",
    [
        ["ünï©ødé ∑", "\x01\x7f", "with space", "'quoted'", '"double"', ",;|"],
        ["tab\there", "new\nline", "back\\slash", "\\N", "crlf\r\n", "\x08\x0b\x0c"],
    ],
    ids=["plain", "escaped-in-copy-text"],
)
def test_feature_schema_hashes_of_any_characters_come_back_unchanged(
    db_url: URL, hashes: list[str]
) -> None:
    written = [trade(k, feature_schema_hash=h) for k, h in enumerate(hashes, start=1)]
    _run(db_url, "add", written)

    batch = _run(db_url, "newest", limit=100)

    _assert_batch_holds(batch, written)


def test_trades_without_features_come_back_with_a_zero_width_matrix(db_url: URL) -> None:
    written = [trade(k, features=np.empty(0)) for k in range(1, 4)]
    _run(db_url, "add", written)

    batch = _run(db_url, "newest", limit=10)

    _assert_batch_holds(batch, written)


def test_newest_trades_of_two_feature_widths_are_refused_naming_both(db_url: URL) -> None:
    _run(db_url, "add", [trade(1), trade(2)])
    _run(db_url, "add", [trade(3, features=np.zeros(5))])

    with pytest.raises(RecordError, match="several widths in one read: 4 and 5 values"):
        _run(db_url, "newest", limit=10)
    assert len(_run(db_url, "newest", limit=1)) == 1  # type: ignore[arg-type]


def test_a_negative_limit_is_refused(db_url: URL) -> None:
    with pytest.raises(ValueError, match="limit must not be negative"):
        _run(db_url, "newest", limit=-1)
