"""Logging: modes, business filtering, reconfiguration and redaction of every secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from slt.runtime.config import Settings
from slt.runtime.logging import configure_logging, get_logger
from tests.conftest import SECRET_MARKERS, TEST_SECRETS

# Settings fields take the lower-case names; the database URL here has no query string.
SECRETS = {name.lower(): value for name, value in TEST_SECRETS.items()}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging touches the root logger and structlog; put both back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _configured(mode: str, stream: io.StringIO | None = None, **fields: str) -> io.StringIO:
    out = io.StringIO() if stream is None else stream
    configure_logging(Settings.model_validate({"log_mode": mode, **SECRETS, **fields}), out)
    return out


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _log_secrets_everywhere() -> None:
    log = get_logger("slt.test")
    log.error(f"connecting to {SECRETS['database_url']}")
    log.error("placing order", api_key=SECRETS["binance_api_key"], note=SECRETS["redis_url"])
    log.error("nested", request={"auth": [SECRETS["binance_api_secret"], {"t": "telegramtoken"}]})
    log.error("token", token_text=f"bot{SECRETS['telegram_token']}/sendMessage")
    log.error("hook", part="webhooktoken-9d1f3b5e7a", obj=ValueError(SECRETS["binance_api_key"]))
    try:
        raise RuntimeError(f"exchange refused key {SECRETS['binance_api_secret']}")
    except RuntimeError:
        log.exception("order_failed")
    logging.getLogger("ccxt.base").error("library saw %s", SECRETS["discord_webhook_url"])


@pytest.mark.parametrize("mode", ["auto", "console", "json", "business"])
def test_no_secret_appears_in_log_output_in_any_mode(mode: str) -> None:
    out = _configured(mode)

    _log_secrets_everywhere()

    text = out.getvalue()
    assert [marker for marker in SECRET_MARKERS if marker in text] == []
    assert "***" in text
    assert "exchange refused key ***" in text


def test_secrets_are_redacted_when_logging_to_a_terminal_in_colour() -> None:
    out = _configured("auto", _Terminal())

    _log_secrets_everywhere()

    assert [marker for marker in SECRET_MARKERS if marker in out.getvalue()] == []


def test_binance_signatures_and_api_key_headers_are_redacted_in_text() -> None:
    out = _configured("json")

    get_logger().warning(
        "request",
        url="https://fapi.binance.com/fapi/v1/order?symbol=BTCUSDT&signature=ab12cd34ef&x=1",
        headers="{'X-MBX-APIKEY': 'hdrkey-0a1b2c'}",
        raw={"X-MBX-APIKEY": "dictkey-3d4e5f", "signature": "dictsig-6a7b8c"},
    )

    text = out.getvalue()
    for leaked in ("ab12cd34ef", "hdrkey-0a1b2c", "dictkey-3d4e5f", "dictsig-6a7b8c"):
        assert leaked not in text
    assert "signature=***&x=1" in text


def test_business_mode_drops_info_events_that_are_not_business_events() -> None:
    out = _configured("business")

    get_logger().info("candle_closed", symbol="BTCUSDT")
    get_logger().warning("slow_response", ms=900)

    assert out.getvalue() == ""


def test_business_mode_keeps_named_business_events_flagged_events_and_errors() -> None:
    out = _configured("business")

    log = get_logger()
    log.info("order_filled", symbol="BTCUSDT")
    log.info("weekly_report", business=True)
    log.error("stream_lost")

    events = [line["event"] for line in _json_lines(out.getvalue())]
    assert events == ["order_filled", "weekly_report", "stream_lost"]


def test_business_mode_keeps_business_events_even_when_the_level_is_warning() -> None:
    out = _configured("business", log_level="WARNING")

    get_logger().info("position_opened", symbol="ETHUSDT")

    assert [line["event"] for line in _json_lines(out.getvalue())] == ["position_opened"]


def test_json_mode_writes_one_json_object_per_line_with_level_and_time() -> None:
    out = _configured("json")

    get_logger("slt.engine").info("signal", score=0.71)
    get_logger("slt.engine").warning("late_candle")

    lines = _json_lines(out.getvalue())
    assert [line["event"] for line in lines] == ["signal", "late_candle"]
    assert lines[0]["level"] == "info"
    assert lines[0]["logger"] == "slt.engine"
    assert lines[0]["score"] == 0.71
    assert "timestamp" in lines[0]


def test_console_mode_writes_human_readable_lines_that_are_not_json() -> None:
    out = _configured("console")

    get_logger().info("signal", score=0.71)

    line = out.getvalue().strip()
    assert "signal" in line
    assert "score=0.71" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_auto_mode_writes_json_when_the_stream_is_not_a_terminal() -> None:
    out = _configured("auto")

    get_logger().info("signal")

    assert _json_lines(out.getvalue())[0]["event"] == "signal"


def test_auto_mode_writes_console_lines_when_the_stream_is_a_terminal() -> None:
    out = _configured("auto", _Terminal())

    get_logger().info("signal")

    assert "signal" in out.getvalue()
    assert not out.getvalue().lstrip().startswith("{")


def test_the_log_level_drops_lower_events() -> None:
    out = _configured("json", log_level="WARNING")

    get_logger().info("chatty")
    get_logger().warning("important")

    assert [line["event"] for line in _json_lines(out.getvalue())] == ["important"]


def test_reconfiguring_sends_logs_only_to_the_new_stream_in_the_new_mode() -> None:
    first = _configured("console")
    logger = get_logger("slt.early")  # made before the second configuration
    second = _configured("json")

    logger.info("after_reconfigure")

    assert first.getvalue() == ""
    assert _json_lines(second.getvalue())[0]["event"] == "after_reconfigure"
    streams = [getattr(h, "stream", None) for h in logging.getLogger().handlers]
    assert (streams.count(first), streams.count(second)) == (0, 1)


def test_reconfiguring_redacts_the_secrets_of_the_new_settings_not_the_old() -> None:
    out = io.StringIO()
    configure_logging(
        Settings.model_validate({"log_mode": "json", "binance_api_key": "oldkey-1a2b3c"}),
        io.StringIO(),
    )
    configure_logging(
        Settings.model_validate({"log_mode": "json", "binance_api_key": "newkey-4d5e6f"}), out
    )

    get_logger().info("keys", old="oldkey-1a2b3c", new="newkey-4d5e6f")

    line = _json_lines(out.getvalue())[0]
    assert (line["old"], line["new"]) == ("oldkey-1a2b3c", "***")
