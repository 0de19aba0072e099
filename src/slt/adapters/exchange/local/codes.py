"""Binance's error answers as the local exchange sends them: code, message, HTTP status.

Codes and messages follow ../shared/reference/binance-usdm-protocol.md §3-§5; where the
reference has no message for a code, the message is the one Binance's other products document
for it (docs/exchange.md lists which).
"""

from __future__ import annotations

from slt.errors import ExchangeRejected


def unknown() -> ExchangeRejected:
    return ExchangeRejected(-1000, "An unknown error occurred while processing the request.", 500)


def too_many_requests(limit: int, retry_after_s: int) -> ExchangeRejected:
    return ExchangeRejected(
        -1003,
        f"Too many requests; current limit is {limit} requests per minute. Please use the "
        "websocket for live updates to avoid polling the API.",
        429,
        retry_after_s,
    )


def banned(until_ms: int, retry_after_s: int) -> ExchangeRejected:
    return ExchangeRejected(
        -1003,
        f"Way too many requests; IP banned until {until_ms}. Please use the websocket for live "
        "updates to avoid bans.",
        418,
        retry_after_s,
    )


def too_many_orders(limit: int, interval: str, retry_after_s: int) -> ExchangeRejected:
    return ExchangeRejected(
        -1015, f"Too many new orders; current limit is {limit} orders per {interval}.", 429,
        retry_after_s,
    )  # fmt: skip


def timestamp_outside_window() -> ExchangeRejected:
    return ExchangeRejected(-1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> ExchangeRejected:
    return ExchangeRejected(
        -1021, "Timestamp for this request was 1000ms ahead of the server's time."
    )


def bad_signature() -> ExchangeRejected:
    return ExchangeRejected(-1022, "Signature for this request is not valid.")


def illegal_chars(name: str, legal: str) -> ExchangeRejected:
    return ExchangeRejected(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def duplicate_param(name: str) -> ExchangeRejected:
    return ExchangeRejected(-1101, f"Duplicate values for parameter '{name}'.")


def mandatory(name: str) -> ExchangeRejected:
    return ExchangeRejected(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def bad_interval() -> ExchangeRejected:
    return ExchangeRejected(-1120, "Invalid interval.")


def bad_symbol() -> ExchangeRejected:
    return ExchangeRejected(-1121, "Invalid symbol.")


def invalid_value(name: str) -> ExchangeRejected:
    return ExchangeRejected(-1130, f"Data sent for parameter '{name}' is not valid.")


def recv_window_too_long() -> ExchangeRejected:
    return ExchangeRejected(-1131, "recvWindow must be less than 60000")


def api_key_format() -> ExchangeRejected:
    return ExchangeRejected(-2014, "API-key format invalid.", 401)


def api_key_rejected() -> ExchangeRejected:
    return ExchangeRejected(-2015, "Invalid API-key, IP, or permissions for action.", 401)
