"""slt db export: a table to Parquet on SQLite and PostgreSQL, exact and complete."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import URL
from tests.integration.db.test_virtual_trades import trade

from slt.adapters.db import migrate
from slt.adapters.db.connect import create_engine
from slt.adapters.db.export import ExportError, export_table
from slt.adapters.db.virtual_trades import VirtualTradeStore


def _export(url: URL, table: str, out: Path, k_trades: int) -> int:
    async def go() -> int:
        await migrate.upgrade(url)
        engine = create_engine(url)
        try:
            await VirtualTradeStore(engine).add_many([trade(k) for k in range(1, k_trades + 1)])
            return await export_table(engine, table, out)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_virtual_trades_export_with_exact_prices_and_feature_lists(
    db_url: URL, tmp_path: Path
) -> None:
    out = tmp_path / "vt.parquet"
    assert _export(db_url, "virtual_trades", out, 7) == 7
    table = pq.read_table(out)
    assert table.num_rows == 7
    row = table.slice(0, 1).to_pylist()[0]
    first = trade(1)
    assert row["symbol"] == "BTCUSDT" and row["exit_reason"] == "take_profit"
    assert row["exit_price"] == Decimal(repr(first.exit_price))
    np.testing.assert_array_equal(np.array(row["features"], dtype=float), first.features)


def test_exporting_an_unknown_table_names_the_tables_and_writes_nothing(
    db_url: URL, tmp_path: Path
) -> None:
    out = tmp_path / "x.parquet"
    with pytest.raises(ExportError, match=r"unknown table 'trades'.*virtual_trades"):
        _export(db_url, "trades", out, 1)
    assert not out.exists()
