"""``DISABLE_REST_FALLBACK``: the market-data stream client's REST back-fill of candles the
streams missed is on unless the setting turns it off (docs/exchange.md "Market data by
streams")."""

from __future__ import annotations

from pathlib import Path

from slt.runtime.config import load_settings, settings_sources


def test_the_rest_back_fill_is_on_when_nothing_says_otherwise() -> None:
    settings = load_settings(None, {})

    assert settings.disable_rest_fallback is False
    assert settings_sources(settings)["disable_rest_fallback"] == "default"


def test_disable_rest_fallback_in_the_environment_turns_the_back_fill_off_and_wins_over_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "slt.toml"
    path.write_text("disable_rest_fallback = false\n", encoding="utf-8")

    settings = load_settings(path, {"DISABLE_REST_FALLBACK": "true"})

    assert settings.disable_rest_fallback is True
    assert settings_sources(settings)["disable_rest_fallback"] == "env"


def test_disable_rest_fallback_false_in_the_environment_keeps_the_back_fill_on() -> None:
    assert load_settings(None, {"DISABLE_REST_FALLBACK": "false"}).disable_rest_fallback is False
