"""``slt config show`` end to end: effective values, sources, clear errors and no secret leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SECRET_MARKERS, TEST_SECRETS

SECRETS = TEST_SECRETS


def _slt(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``slt`` with only the given variables (plus PATH), so the developer's own
    environment can neither leak into nor change the result."""
    controlled = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        # Wide enough that no secret could be split across wrapped table lines unnoticed.
        "COLUMNS": "400",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "slt", *args],
        capture_output=True,
        text=True,
        env=controlled,
        cwd=tmp_path,
        timeout=120,
    )


def _leaks(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [m for m in SECRET_MARKERS if m in result.stdout or m in result.stderr]


def test_config_show_prints_every_setting_with_its_value_and_source(tmp_path: Path) -> None:
    result = _slt(tmp_path, "config", "show", env={"SLT_MODE": "paper"})

    assert result.returncode == 0, result.stderr
    assert "SLT_MODE" in result.stdout
    assert "paper" in result.stdout
    for name in ("DATABASE_URL", "RATE_LIMIT_REQUESTS", "SLT_DATA_DIR", "SLT_LOG_MODE"):
        assert name in result.stdout


def test_config_show_json_gives_values_and_sources_from_file_and_environment(
    tmp_path: Path,
) -> None:
    config = tmp_path / "slt.toml"
    config.write_text('data_dir = "/srv/slt"\nrate_limit_requests = 600\n', encoding="utf-8")

    result = _slt(
        tmp_path,
        "--config",
        str(config),
        "config",
        "show",
        "--json",
        env={"RATE_LIMIT_REQUESTS": "300"},
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["config_file"] == str(config)
    assert document["settings"]["data_dir"] == "/srv/slt"
    assert document["settings"]["rate_limit_requests"] == 300
    assert document["sources"]["data_dir"] == "file"
    assert document["sources"]["rate_limit_requests"] == "env"
    assert document["sources"]["mode"] == "default"


def test_config_file_can_be_named_by_the_slt_config_variable(tmp_path: Path) -> None:
    config = tmp_path / "slt.toml"
    config.write_text('mode = "live"\n', encoding="utf-8")

    result = _slt(tmp_path, "config", "show", "--json", env={"SLT_CONFIG": str(config)})

    assert json.loads(result.stdout)["settings"]["mode"] == "live"


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["table", "json"])
def test_config_show_never_prints_a_secret(tmp_path: Path, json_flag: list[str]) -> None:
    result = _slt(tmp_path, "config", "show", *json_flag, env=SECRETS)

    assert result.returncode == 0, result.stderr
    assert _leaks(result) == []
    assert "postgresql://slt:***@db.example.com:5432/slt?sslmode=require" in result.stdout
    assert "***" in result.stdout


def test_an_invalid_config_exits_with_code_2_listing_each_bad_field_without_traceback(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('log_mode = "loud"\nrate_limt = 5\n', encoding="utf-8")

    result = _slt(
        tmp_path,
        "--config",
        str(config),
        "config",
        "show",
        env={"RATE_LIMIT_REQUESTS": "-1", "DISABLE_WEBSOCKET": "maybe"},
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: invalid configuration (4 problems):")
    for name in ("SLT_LOG_MODE", "rate_limt", "RATE_LIMIT_REQUESTS", "DISABLE_WEBSOCKET"):
        assert name in result.stderr


def test_a_missing_config_file_exits_with_code_2_and_names_the_file(tmp_path: Path) -> None:
    result = _slt(tmp_path, "--config", "absent.toml", "config", "show", env={})

    assert result.returncode == 2
    assert "absent.toml: not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_value_beside_configured_secrets_keeps_the_secrets_out_of_the_error(
    tmp_path: Path,
) -> None:
    config = tmp_path / "secrets.toml"
    config.write_text(
        'binance_api_secret = "apisecret-2b8d4f6a0c"\nlog_level = "LOUD"\n', encoding="utf-8"
    )

    result = _slt(
        tmp_path,
        "--config",
        str(config),
        "config",
        "show",
        env={**SECRETS, "RATE_LIMIT_REQUESTS": "abc"},
    )

    assert result.returncode == 2
    assert "RATE_LIMIT_REQUESTS" in result.stderr
    assert "SLT_LOG_LEVEL" in result.stderr
    assert _leaks(result) == []
