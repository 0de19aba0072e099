"""report.json: a fixed field set, deterministic bytes, nulls for non-finite numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slt.adapters.report.report_json import (
    EXIT_FIELDS,
    TRADE_FIELDS,
    iso_utc,
    render_report_json,
)
from slt.domain.metrics import METRIC_KEYS, SYMBOL_METRIC_KEYS
from tests.unit.report.sample import HOUR, RUN, T0, sample_result


def test_report_json_round_trips_with_the_fixed_field_set() -> None:
    result = sample_result()
    doc = json.loads(render_report_json(result, RUN))
    assert list(doc) == [
        "schema_version", "metrics", "per_symbol", "trades", "equity", "monthly_returns", "run",
    ]  # fmt: skip
    assert doc["schema_version"] == 2
    assert tuple(doc["metrics"]) == METRIC_KEYS
    assert list(doc["per_symbol"]) == ["TESTUSDT"]
    assert tuple(doc["per_symbol"]["TESTUSDT"]) == SYMBOL_METRIC_KEYS
    assert [tuple(t) for t in doc["trades"]] == [TRADE_FIELDS, TRADE_FIELDS]
    assert [tuple(e) for e in doc["trades"][0]["exits"]] == [EXIT_FIELDS, EXIT_FIELDS]
    assert list(doc["equity"]) == ["time_ms", "equity"]
    assert doc["run"] == RUN


def test_trades_keep_ms_times_and_add_iso_utc_strings() -> None:
    doc = json.loads(render_report_json(sample_result(), RUN))
    first = doc["trades"][0]
    assert first["entry_time_ms"] == T0 + HOUR
    assert first["entry_time"] == "2024-01-01T01:00:00.000Z"
    assert first["exit_time"] == "2024-01-01T03:00:00.000Z"
    assert first["exits"][0] == {
        "time_ms": T0 + 2 * HOUR,
        "price": 101.0,
        "quantity": 5.0,
        "reason": "partial_take_profit",
        "fee": 0.1,
    }


def test_iso_times_are_exact_to_the_millisecond() -> None:
    assert iso_utc(T0 + 1) == "2024-01-01T00:00:00.001Z"
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"


def test_equity_has_one_point_per_bar_at_the_bar_close() -> None:
    result = sample_result()
    doc = json.loads(render_report_json(result, RUN))
    assert doc["equity"]["time_ms"] == result.equity_time_ms.tolist()
    assert doc["equity"]["equity"] == result.equity.tolist()


def test_monthly_returns_are_month_and_percent_objects() -> None:
    doc = json.loads(render_report_json(sample_result(), RUN))
    (january,) = doc["monthly_returns"]
    assert january["month"] == "2024-01"
    assert january["return_pct"] == pytest.approx(doc["metrics"]["total_return_pct"])


def test_the_same_input_gives_byte_identical_json() -> None:
    assert render_report_json(sample_result(), RUN) == render_report_json(sample_result(), RUN)


def test_non_finite_metrics_and_equity_become_null() -> None:
    result = sample_result()
    result.equity[-1] = np.nan
    result.equity[0] = np.inf
    raw = render_report_json(result, {"elapsed_s": float("nan")})
    doc = json.loads(raw)
    assert doc["metrics"]["total_return_pct"] is None
    assert doc["equity"]["equity"][0] is None
    assert doc["equity"]["equity"][-1] is None
    assert doc["run"] == {"elapsed_s": None}
    assert b"NaN" not in raw
    assert b"Infinity" not in raw


def test_a_run_value_json_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError):
        render_report_json(sample_result(), {"bad": object()})
