"""Settings: source precedence, original env names, error reports, masking and secret lists."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from slt.errors import ConfigError
from slt.runtime.config import (
    Settings,
    config_file,
    load_settings,
    masked_settings,
    secret_values,
    settings_sources,
)
from tests.conftest import SECRET_MARKERS, TEST_SECRETS

SECRETS = TEST_SECRETS


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slt.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _config_error(config_path: Path | None = None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_path, environ or {})
    return str(caught.value)


def test_defaults_apply_when_there_is_no_file_and_no_environment() -> None:
    settings = load_settings(None, {})

    assert settings.data_dir == Path("./user_data")
    assert (settings.log_mode, settings.log_level, settings.mode) == ("auto", "INFO", "backtest")
    assert (settings.rate_limit_requests, settings.rate_limit_period) == (1200, 60.0)
    assert settings.database_url is None
    assert settings.binance_futures_url == "https://fapi.binance.com"


def test_file_value_overrides_the_default_for_an_slt_setting(tmp_path: Path) -> None:
    path = _write(tmp_path, 'data_dir = "/srv/from-file"\n')

    settings = load_settings(path, {})

    assert settings.data_dir == Path("/srv/from-file")


def test_environment_overrides_the_file_for_an_slt_setting(tmp_path: Path) -> None:
    path = _write(tmp_path, 'data_dir = "/srv/from-file"\n')

    settings = load_settings(path, {"SLT_DATA_DIR": "/srv/from-env"})

    assert settings.data_dir == Path("/srv/from-env")


def test_file_value_overrides_the_default_for_an_original_system_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "rate_limit_requests = 600\n")

    settings = load_settings(path, {})

    assert settings.rate_limit_requests == 600


def test_environment_overrides_the_file_for_an_original_system_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "rate_limit_requests = 600\n")

    settings = load_settings(path, {"RATE_LIMIT_REQUESTS": "300"})

    assert settings.rate_limit_requests == 300


def test_config_file_path_can_come_from_the_slt_config_variable(tmp_path: Path) -> None:
    path = _write(tmp_path, 'mode = "paper"\n')

    settings = load_settings(None, {"SLT_CONFIG": str(path)})

    assert settings.mode == "paper"
    assert config_file(settings) == path


@pytest.mark.parametrize(
    ("env", "raw", "field", "expected"),
    [
        ("DATABASE_URL", "sqlite:///x.db", "database_url", "sqlite:///x.db"),
        ("REDIS_URL", "redis://localhost:6379/0", "redis_url", "redis://localhost:6379/0"),
        ("BINANCE_API_KEY", "k", "binance_api_key", "k"),
        ("BINANCE_API_SECRET", "s", "binance_api_secret", "s"),
        ("DISCORD_WEBHOOK_URL", "https://d/x", "discord_webhook_url", "https://d/x"),
        ("TELEGRAM_TOKEN", "1:abc", "telegram_token", "1:abc"),
        ("TELEGRAM_CHAT_ID", "-1001", "telegram_chat_id", "-1001"),
        ("DISABLE_MODEL_TRAINING", "true", "disable_model_training", True),
        ("DISABLE_WEBSOCKET", "1", "disable_websocket", True),
        ("DISABLE_REST_FALLBACK", "yes", "disable_rest_fallback", True),
        ("RELAXED_SIGNAL_MODE", "on", "relaxed_signal_mode", True),
        ("BINANCE_TESTNET", "true", "binance_testnet", True),
        (
            "BINANCE_FUTURES_REST_URL",
            "http://127.0.0.1:8090/",
            "binance_futures_rest_url",
            "http://127.0.0.1:8090",
        ),
        (
            "BINANCE_FUTURES_WS_URL",
            "ws://127.0.0.1:8090",
            "binance_futures_ws_url",
            "ws://127.0.0.1:8090",
        ),
        ("RATE_LIMIT_REQUESTS", "2400", "rate_limit_requests", 2400),
        ("RATE_LIMIT_PERIOD", "30.5", "rate_limit_period", 30.5),
        ("SLT_DATA_DIR", "/data", "data_dir", Path("/data")),
        ("SLT_LOG_MODE", "business", "log_mode", "business"),
        ("SLT_LOG_LEVEL", "warning", "log_level", "WARNING"),
        ("SLT_BINANCE_FUTURES_URL", "http://fake:9/", "binance_futures_url", "http://fake:9"),
        ("SLT_BINANCE_SPOT_URL", "http://127.0.0.1:8", "binance_spot_url", "http://127.0.0.1:8"),
        ("SLT_MODE", "live", "mode", "live"),
    ],
)
def test_each_environment_name_sets_its_field(
    env: str, raw: str, field: str, expected: object
) -> None:
    settings = load_settings(None, {env: raw})

    value = getattr(settings, field)
    shown = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    assert shown == expected


def test_an_empty_environment_value_counts_as_unset() -> None:
    settings = load_settings(None, {"RATE_LIMIT_REQUESTS": "", "DATABASE_URL": ""})

    assert settings.rate_limit_requests == 1200
    assert settings.database_url is None


def test_several_bad_fields_are_reported_together_in_one_error(tmp_path: Path) -> None:
    path = _write(tmp_path, 'log_mode = "loud"\n')
    environ = {"RATE_LIMIT_REQUESTS": "-5", "DISABLE_WEBSOCKET": "maybe", "SLT_LOG_LEVEL": "x"}

    message = _config_error(path, environ)

    first, *lines = message.splitlines()
    assert first == "invalid configuration (4 problems):"
    for name in ("RATE_LIMIT_REQUESTS", "DISABLE_WEBSOCKET", "SLT_LOG_LEVEL", "SLT_LOG_MODE"):
        assert sum(name in line for line in lines) == 1


def test_a_bad_file_value_is_reported_with_the_file_as_its_source(tmp_path: Path) -> None:
    path = _write(tmp_path, "rate_limit_period = 0\n")

    message = _config_error(path)

    assert f"RATE_LIMIT_PERIOD (file {path}): Input should be greater than 0" in message


def test_an_unknown_key_in_the_config_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, 'data_dri = "/typo"\n')

    message = _config_error(path)

    assert "data_dri" in message
    assert "unknown setting" in message


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    message = _config_error(tmp_path / "absent.toml")

    assert "absent.toml: not found" in message


def test_a_toml_syntax_error_is_reported_together_with_bad_environment_values(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "data_dir = \n")

    message = _config_error(path, {"RATE_LIMIT_REQUESTS": "abc"})

    assert "invalid configuration (2 problems):" in message
    assert "invalid TOML" in message
    assert "RATE_LIMIT_REQUESTS" in message


def test_an_unreadable_config_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, 'mode = "paper"\n')

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)  # chmod 000 does not stop root, who runs CI here

    message = _config_error(path)

    assert "cannot be read" in message


def test_a_config_error_never_contains_the_secrets_of_other_fields(tmp_path: Path) -> None:
    path = _write(tmp_path, 'log_mode = "loud"\nunknown_key = "apikey-7f3c9e1d5b"\n')

    message = _config_error(path, {**SECRETS, "RATE_LIMIT_PERIOD": "-1"})

    assert "invalid configuration (3 problems):" in message
    assert [marker for marker in SECRET_MARKERS if marker in message] == []


def test_a_wrongly_typed_secret_is_reported_without_its_value(tmp_path: Path) -> None:
    path = _write(tmp_path, "binance_api_secret = 98765432123\n")

    message = _config_error(path)

    assert "BINANCE_API_SECRET" in message
    assert "98765432123" not in message


def test_masked_urls_keep_scheme_host_port_and_database_but_hide_the_password() -> None:
    settings = load_settings(None, SECRETS)

    shown = masked_settings(settings)

    assert shown["database_url"] == "postgresql://slt:***@db.example.com:5432/slt?sslmode=require"
    assert shown["redis_url"] == "redis://:***@cache.example.com:6379/0"


def test_api_keys_tokens_and_webhook_are_masked_entirely() -> None:
    settings = load_settings(None, SECRETS)

    shown = masked_settings(settings)

    for field in ("binance_api_key", "binance_api_secret", "discord_webhook_url", "telegram_token"):
        assert shown[field] == "***"


def test_masked_settings_show_unset_secrets_as_none_and_paths_as_text() -> None:
    shown = masked_settings(load_settings(None, {}))

    assert shown["binance_api_key"] is None
    assert shown["data_dir"] == "user_data"


def test_a_password_passed_as_a_url_query_parameter_is_masked_too() -> None:
    settings = Settings.model_validate(
        {"database_url": "postgresql://db.example.com/slt?user=slt&password=qp-1234"}
    )

    assert masked_settings(settings)["database_url"] == (
        "postgresql://db.example.com/slt?user=slt&password=***"
    )
    assert "qp-1234" in secret_values(settings)


def test_secret_values_include_whole_secrets_and_url_passwords() -> None:
    settings = load_settings(None, SECRETS)

    values = secret_values(settings)

    assert set(SECRETS.values()) <= set(values)
    assert {"dbpass-5e7a9c1b3d", "redispass-8c2e4a6f0b", "webhooktoken-9d1f3b5e7a"} <= set(values)


def test_secret_values_include_the_percent_decoded_password() -> None:
    settings = Settings.model_validate({"redis_url": "redis://user:p%40ss-word@cache:6379/0"})

    assert {"p%40ss-word", "p@ss-word"} <= set(secret_values(settings))


def test_settings_sources_say_where_each_value_came_from(tmp_path: Path) -> None:
    path = _write(tmp_path, 'data_dir = "/srv"\nmode = "paper"\n')

    settings = load_settings(path, {"SLT_MODE": "live", "BINANCE_API_KEY": "k"})

    sources = settings_sources(settings)
    assert (sources["data_dir"], sources["mode"], sources["binance_api_key"]) == (
        "file",
        "env",
        "env",
    )
    assert sources["log_level"] == "default"


def test_loaded_settings_are_a_plain_picklable_settings_object(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, 'mode = "paper"\n'), {"DATABASE_URL": "sqlite://"})

    copy = pickle.loads(pickle.dumps(settings))

    assert type(settings) is Settings
    assert copy == settings
    assert settings_sources(copy)["mode"] == "file"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("https://fapi.binance.com", "wss://fstream.binance.com")),
        ({"BINANCE_TESTNET": "true"},
         ("https://testnet.binancefuture.com", "wss://fstream.binancefuture.com")),
        ({"BINANCE_TESTNET": "true", "BINANCE_FUTURES_REST_URL": "http://127.0.0.1:8090",
          "BINANCE_FUTURES_WS_URL": "ws://127.0.0.1:8090"},
         ("http://127.0.0.1:8090", "ws://127.0.0.1:8090")),
    ],
)  # fmt: skip
def test_trading_endpoints_are_binance_its_testnet_or_the_urls_given(
    env: dict[str, str], expected: tuple[str, str]
) -> None:
    assert load_settings(None, env).futures_endpoints() == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BINANCE_FUTURES_REST_URL": "ws://x"}, "must start with http:// or https://"),
        ({"BINANCE_FUTURES_WS_URL": "http://x"}, "must start with ws:// or wss://"),
    ],
)
def test_a_wrong_scheme_for_an_endpoint_is_refused_by_name(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, env)
