"""``slt demo`` ends with a walk-forward learning run; ``slt walkforward`` refuses bad input."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from slt.adapters.db.connect import create_engine
from slt.adapters.db.feature_schemas import FeatureSchemaStore
from slt.adapters.db.urls import database_url
from slt.domain.features.config import FeatureConfig
from slt.domain.features.schema import build_schema
from tests.conftest import SltRunner

RUNNING = build_schema(FeatureConfig.for_timeframe("5m"))


def test_the_demo_backtests_then_walks_forward_and_writes_both_reports(
    run_slt: SltRunner, tmp_path: Path
) -> None:
    result = run_slt("demo", env={"SLT_LOG_MODE": "business"})

    assert result.returncode == 0, result.stderr
    reports = tmp_path / "user_data" / "reports"
    assert (reports / "demo" / "report.html").exists()
    report = json.loads((reports / "demo-walkforward" / "report.json").read_text())
    assert report["kind"] == "walkforward" and len(report["folds"]) == 7
    overall = report["overall"]
    assert overall["virtual_trades"] > 500 and overall["folds_with_model"] >= 4
    assert 0.35 < overall["scores"]["auc"] < 0.65  # a random walk: nothing to learn
    assert overall["deflated_sharpe_ml_filtered"]["significant"] is False
    assert (reports / "demo-walkforward" / "report.html").read_text().count("plotly") > 0
    assert "Model learning count: " in result.stderr and " samples" in result.stderr
    assert "Model cumulative score: " in result.stderr
    # The last step: a paper session against a local exchange, the backtest's trades again.
    assert "7. slt paper against a local exchange" in result.stdout
    same = re.search(r"closes the same (\d+) positions", result.stdout)
    assert same is not None and int(same.group(1)) >= 3 and "DIFFER" not in result.stdout


def test_walkforward_refuses_a_span_without_a_test_window(run_slt: SltRunner) -> None:
    result = run_slt(
        "walkforward", "--symbol", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-02-01",
        "--train-days", "60", "--report-dir", "out",
    )  # fmt: skip
    assert result.returncode == 2
    assert "holds no test window" in result.stderr


def test_walkforward_on_a_symbol_the_store_lacks_says_what_to_do(
    run_slt: SltRunner, tmp_path: Path
) -> None:
    result = run_slt(
        "walkforward", "--symbol", "SOLUSDT", "--start", "2024-01-01", "--end", "2024-04-01",
        "--report-dir", "out",
    )  # fmt: skip
    assert result.returncode == 2
    assert "the store holds no SOLUSDT futures 5m candles" in result.stderr
    assert not (tmp_path / "out").exists()


def _registered_schemas(data_dir: Path) -> list[str]:
    async def read() -> list[str]:
        engine = create_engine(database_url(None, data_dir))
        try:
            return list(await FeatureSchemaStore(engine).get([RUNNING.hash, "other"]))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_stored_virtual_trades_train_a_champion_and_an_identical_retrain_stays_challenger(
    run_slt: SltRunner, tmp_path: Path
) -> None:
    assert run_slt("demo").returncode == 0
    assert run_slt("db", "upgrade").returncode == 0
    walk = (
        "walkforward", "--symbol", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-04-30",
        "--train-days", "30", "--strategy", "ema_cross", "--report-dir", "wf", "--store",
        "--json",
    )  # fmt: skip
    first = run_slt(*walk)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["stored"] > 500
    assert json.loads(run_slt(*walk).stdout)["stored"] == 0  # nothing new to store
    assert _registered_schemas(tmp_path / "user_data") == [RUNNING.hash]

    trained = run_slt("model", "train")
    again = run_slt("model", "train")

    assert trained.returncode == 0, trained.stderr
    assert "stored as champion (no champion yet)" in trained.stdout
    assert "stored as challenger (log-loss" in again.stdout  # same data, same model: no gain
    models = json.loads(run_slt("model", "list", "--json").stdout)
    assert [m["status"] for m in models] == ["champion", "challenger"]
