"""``slt backtest`` end to end on real futures candles, funding and mark prices."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CATMAN, CATMAN_BTC_5M, CATMAN_ETH_5M, SltRunner

SPAN = ("--symbol", "BTCUSDT", "--start", "2023-03-01", "--end", "2023-05-01")
METRICS = {
    "total_return_pct", "cagr_pct", "sharpe", "sortino", "max_drawdown_pct", "profit_factor",
    "win_rate", "exposure_pct", "n_trades", "fees_paid", "funding_paid",
}  # fmt: skip
TRADE_FIELDS = {
    "symbol", "side", "entry_time_ms", "entry_price", "exit_time_ms", "exit_price", "quantity",
    "leverage", "pnl", "pnl_pct", "fees", "funding", "exit_reason",
}  # fmt: skip


@pytest.fixture()
def imported(shared_data: Path, run_slt: SltRunner) -> SltRunner:
    files = [
        CATMAN_BTC_5M,
        CATMAN_ETH_5M,
        CATMAN / "BTC_USDT_USDT-8h-funding_rate.feather",
        CATMAN / "BTC_USDT_USDT-8h-mark.feather",
        CATMAN / "ETH_USDT_USDT-8h-funding_rate.feather",
        CATMAN / "ETH_USDT_USDT-8h-mark.feather",
    ]
    result = run_slt("data", "import", *files)
    assert result.returncode == 0, result.stderr
    return run_slt


def test_backtest_writes_the_same_report_twice_with_funding_from_the_real_file(
    imported: SltRunner, tmp_path: Path
) -> None:
    reports = [tmp_path / "a", tmp_path / "b"]
    for folder in reports:
        result = imported("backtest", *SPAN, "--strategy", "ema_cross", "--report-dir", folder)
        assert result.returncode == 0, result.stderr
        assert str(folder / "report.html") in result.stdout
    first, second = (json.loads((f / "report.json").read_text()) for f in reports)
    assert set(first["metrics"]) == METRICS
    assert first["metrics"]["n_trades"] == len(first["trades"]) > 100
    assert set(first["trades"][0]) >= TRADE_FIELDS
    run = first["run"]
    assert run["bars_processed"] == {"BTCUSDT": 61 * 288}
    assert len(first["equity"]["equity"]) == 61 * 288
    assert run["funding_source"]["BTCUSDT"].startswith("funding file")
    assert first["metrics"]["funding_paid"] != 0
    assert {f["role"] for f in run["data_files"]} == {"candles", "funding", "mark"}
    assert list(first["per_symbol"]) == ["BTCUSDT"]
    assert all(len(f["sha256"]) == 64 for f in run["data_files"])
    # Byte-identical apart from the timing field.
    texts = [
        re.sub(r'"elapsed_s":[0-9.eE+-]+', "", (f / "report.json").read_text()) for f in reports
    ]
    assert texts[0] == texts[1]
    assert first["trades"] == second["trades"]
    html = (reports[0] / "report.html").read_text()
    assert "<script src=" not in html


def test_backtest_of_a_span_the_store_does_not_hold_fails_before_writing(
    imported: SltRunner, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    result = imported(
        "backtest", "--symbol", "BTCUSDT", "--start", "2022-01-01", "--end", "2023-02-01",
        "--strategy", "ema_cross", "--report-dir", out,
    )  # fmt: skip
    assert result.returncode == 2
    assert "missing data" in result.stderr and "2023-01-01" in result.stderr
    assert not out.exists()


def test_backtest_with_a_strategy_file_that_raises_names_the_error_and_writes_nothing(
    imported: SltRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad_strategy.py"
    bad.write_text(
        "class S:\n    name = 'bad'\n    uses_features = False\n"
        "    def signals(self, candles, features):\n        raise ValueError('boom')\n"
        "strategy = S()\n"
    )
    out = tmp_path / "r"
    result = imported("backtest", *SPAN, "--strategy-file", bad, "--report-dir", out)
    assert result.returncode == 2
    assert "ValueError" in result.stderr and "boom" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[risk]\nmax_position_pct = 150\n", "risk.max_position_pct"),
        ("[risk]\nleverage_min = 50\nleverage_max = 50\n[exits]\nstop_loss_pct = 3\n", "liquid"),
        ("[exits]\nstop_los_pct = 1\n", "unknown setting"),
    ],
)
def test_backtest_refuses_an_impossible_configuration_before_any_work(
    imported: SltRunner, tmp_path: Path, toml: str, expected: str
) -> None:
    config = tmp_path / "trading.toml"
    config.write_text(toml)
    out = tmp_path / "r"
    result = imported("backtest", *SPAN, "--config", config, "--report-dir", out)
    assert result.returncode == 2
    assert expected in result.stderr
    assert not out.exists()


def test_backtest_help_lists_its_options(run_slt: SltRunner) -> None:
    result = run_slt("backtest", "--help")
    assert result.returncode == 0
    for option in (
        "--strategy", "--strategy-file", "--config", "--report-dir", "--timeframe", "--symbols",
        "--engine", "--journal",
    ):  # fmt: skip
        assert option in result.stdout
    assert isinstance(result, subprocess.CompletedProcess)


def _without_timing(path: Path) -> str:
    return re.sub(r'"elapsed_s":[0-9.eE+-]+', "", path.read_text())


def test_two_symbols_trade_from_one_account_with_portfolio_and_per_symbol_metrics(
    imported: SltRunner, tmp_path: Path
) -> None:
    out = tmp_path / "pair"
    result = imported(
        "backtest", "--symbols", "BTCUSDT,ETHUSDT", "--start", "2023-03-01", "--end",
        "2023-05-01", "--strategy", "ema_cross", "--report-dir", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert list(report["per_symbol"]) == ["BTCUSDT", "ETHUSDT"]
    symbols = [t["symbol"] for t in report["trades"]]
    assert {"BTCUSDT", "ETHUSDT"} == set(symbols)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert report["per_symbol"][symbol]["n_trades"] == symbols.count(symbol) > 50
    pnl = sum(t["pnl"] for t in report["trades"])
    final = report["equity"]["equity"][-1]
    assert final == pytest.approx(report["run"]["config"]["initial_equity"] + pnl, rel=1e-9)
    html = (out / "report.html").read_text()
    assert "Per symbol" in html and "ETHUSDT: price and trades" in html


def test_the_events_engine_and_its_replay_give_the_compiled_report(
    imported: SltRunner, tmp_path: Path
) -> None:
    span = ("--symbols", "BTCUSDT,ETHUSDT", "--start", "2023-03-01", "--end", "2023-04-01",
            "--strategy", "ema_cross")  # fmt: skip
    compiled, events, replayed = tmp_path / "compiled", tmp_path / "events", tmp_path / "replay"
    journal = tmp_path / "session.jsonl"
    assert imported("backtest", *span, "--report-dir", compiled).returncode == 0
    result = imported(
        "backtest", *span, "--report-dir", events, "--engine", "events", "--journal", journal
    )
    assert result.returncode == 0, result.stderr
    assert _without_timing(events / "report.json") == _without_timing(compiled / "report.json")
    result = imported("replay", journal, "--report-dir", replayed)
    assert result.returncode == 0, result.stderr
    assert "Replayed" in result.stdout
    assert _without_timing(replayed / "report.json") == _without_timing(events / "report.json")


def _journaled(imported: SltRunner, tmp_path: Path, name: str, end: str) -> Path:
    """An ema_cross session from 2023-03-01 to ``end`` through the events engine, journaled."""
    journal = tmp_path / name
    result = imported(
        "backtest", "--symbol", "BTCUSDT", "--start", "2023-03-01", "--end", end,
        "--strategy", "ema_cross", "--report-dir", tmp_path / "r", "--engine", "events",
        "--journal", journal,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return journal


def test_replay_of_a_journal_cut_mid_line_warns_and_replays_what_was_written(
    imported: SltRunner, tmp_path: Path
) -> None:
    journal = _journaled(imported, tmp_path, "session.jsonl", "2023-03-05")
    whole = journal.read_bytes()
    journal.write_bytes(whole[: len(whole) - 17])  # the writer died mid-line
    result = imported("replay", journal, "--report-dir", tmp_path / "again")
    assert result.returncode == 0, result.stderr
    assert "cut short" in result.stderr


def test_replay_of_a_corrupt_journal_names_the_line_and_writes_nothing(
    imported: SltRunner, tmp_path: Path
) -> None:
    journal = _journaled(imported, tmp_path, "bad.jsonl", "2023-03-02")
    lines = journal.read_text().splitlines()
    lines[2] = lines[2][:-9] + "garbage"
    journal.write_text("\n".join(lines) + "\n")
    out = tmp_path / "again"
    result = imported("replay", journal, "--report-dir", out)
    assert result.returncode == 2
    assert "bad.jsonl:3" in result.stderr and "corrupt" in result.stderr
    assert not out.exists()


def test_a_journal_without_the_events_engine_is_refused_before_any_work(
    imported: SltRunner, tmp_path: Path
) -> None:
    result = imported("backtest", *SPAN, "--report-dir", tmp_path / "r", "--journal",
                      tmp_path / "j.jsonl")  # fmt: skip
    assert result.returncode == 2
    assert "--engine events" in result.stderr
    assert not (tmp_path / "j.jsonl").exists()


def test_replay_of_a_fill_for_an_order_never_placed_stops_with_an_integrity_error(
    imported: SltRunner, tmp_path: Path
) -> None:
    """A diverged journal is not bad input: exit 3, one line naming the order, no report."""
    journal = _journaled(imported, tmp_path, "session.jsonl", "2023-03-02")
    lines = journal.read_text().splitlines()
    at, fill = next((k, json.loads(x)) for k, x in enumerate(lines) if '"OrderFilled"' in x)
    run, symbol, _seq = fill["client_order_id"].split("-")
    fill["client_order_id"] = f"{run}-{symbol}-999999"
    lines.insert(at, json.dumps(fill))
    journal.write_text("\n".join(lines) + "\n")
    out = tmp_path / "again"
    result = imported("replay", journal, "--report-dir", out)
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and "integrity error" in result.stderr
    assert "999999" in result.stderr
    assert not out.exists()
