"""Structured logging for every process: console, JSON or business lines, secrets redacted.

structlog renders through one stdlib handler on the root logger, so third-party libraries
(ccxt, HTTP clients) get the same format and the same redaction as our own events.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from slt.runtime.config import MASK, Settings, secret_values

# Events a trader follows in business mode, whatever their level (log them at INFO or above).
BUSINESS_EVENTS = frozenset(
    {
        "order_placed",
        "order_filled",
        "order_canceled",
        "position_opened",
        "position_closed",
        "virtual_position_opened",
        "virtual_position_closed",
        "model_learning_count",
        "model_cumulative_score",
        "account_state",
    }
)

# Binance request signatures and API-key headers, wherever they show up in text.
_SIGNATURE = re.compile(r"(signature=)[^&\s'\"]+", re.IGNORECASE)
_API_KEY_HEADER = re.compile(r"(x-mbx-apikey['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}&]+", re.IGNORECASE)
_SECRET_KEYS = frozenset({"signature", "x-mbx-apikey", "api_key", "api_secret", "password"})


class SecretRedactor:
    """A processor that replaces secrets in every string of an event dict, nested or not."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact_text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _SIGNATURE.sub(rf"\g<1>{MASK}", text)
        return _API_KEY_HEADER.sub(rf"\g<1>{MASK}", text)

    def redact(self, value: object) -> object:
        if isinstance(value, str):
            return self.redact_text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {
                self.redact_text(str(key)): MASK
                if str(key).lower() in _SECRET_KEYS
                else self.redact(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.redact(item) for item in value]
        # Renderers would call repr() later, past redaction: render it now instead.
        return self.redact_text(repr(value))

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {
            key: MASK if key.lower() in _SECRET_KEYS else self.redact(value)
            for key, value in event_dict.items()
        }

    def redact_rendered(self, logger: WrappedLogger, method_name: str, rendered: Any) -> Any:
        """Last-line safety net, after the renderer, for anything the structured pass missed."""
        return self.redact_text(rendered) if isinstance(rendered, str) else rendered


_LEADING_KEYS = ("timestamp", "level", "logger", "event")


def _leading_keys_first(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """Put when/what first so JSON lines read well in a terminal and a log viewer alike."""
    lead = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    return {**lead, **{k: v for k, v in event_dict.items() if k not in lead}}


def is_business_event(event_dict: Mapping[str, Any]) -> bool:
    """Business events: flagged ``business=True`` or named in ``BUSINESS_EVENTS``."""
    return event_dict.get("business") is True or event_dict.get("event") in BUSINESS_EVENTS


class _BusinessFilter(logging.Filter):
    """Keeps errors and business events; stdlib records from libraries count as non-business."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return isinstance(record.msg, Mapping) and is_business_event(record.msg)


class _SltHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so reconfiguring replaces only it."""


def _renderer(settings: Settings, stream: TextIO) -> Processor:
    mode = settings.log_mode
    is_tty = _is_tty(stream)
    if mode == "console" or (mode == "auto" and is_tty):
        return structlog.dev.ConsoleRenderer(
            colors=is_tty and "NO_COLOR" not in os.environ,
            exception_formatter=structlog.dev.plain_traceback,
        )
    return structlog.processors.JSONRenderer(sort_keys=False)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or file-like without isatty
        return False


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """(Re)configure structlog and the root logger; safe to call again with new settings."""
    out = sys.stderr if stream is None else stream
    redactor = SecretRedactor(secret_values(settings))
    level = logging.getLevelNamesMapping()[settings.log_level]
    if settings.log_mode == "business":
        level = min(level, logging.INFO)  # business events are INFO; let them reach the filter

    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redactor,
            _leading_keys_first,
            _renderer(settings, out),
            redactor.redact_rendered,
        ],
    )
    handler = _SltHandler(out)
    handler.setFormatter(formatter)
    if settings.log_mode == "business":
        handler.addFilter(_BusinessFilter())

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SltHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(ignore_frame_names=[__name__]),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: loggers made at import time must follow the next configure call.
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; ``name`` is the stdlib logger name (the caller's module if None)."""
    if name is None:
        return structlog.stdlib.get_logger()
    return structlog.stdlib.get_logger(name)
