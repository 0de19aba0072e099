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


# -- orders (reference §5; messages marked * are the real exchange's wording as peers log it,
# not in the reference: docs/exchange.md lists them) -------------------------------------


def not_required(name: str) -> ExchangeRejected:
    return ExchangeRejected(-1106, f"Parameter '{name}' sent when not required.")


def bad_precision() -> ExchangeRejected:
    return ExchangeRejected(-1111, "Precision is over the maximum defined for this asset.")


def bad_order_type() -> ExchangeRejected:
    return ExchangeRejected(-1116, "Invalid orderType.")  # *


def bad_side() -> ExchangeRejected:
    return ExchangeRejected(-1117, "Invalid side.")  # *


def bad_time_in_force() -> ExchangeRejected:
    return ExchangeRejected(-1115, "Invalid timeInForce.")  # *


def either_id(names: tuple[str, str]) -> ExchangeRejected:
    return ExchangeRejected(
        -1102, f"Param '{names[1]}' or '{names[0]}' must be sent, but both were empty/null!"
    )  # *


def unknown_order_sent() -> ExchangeRejected:
    return ExchangeRejected(-2011, "Unknown order sent.")


def no_such_order() -> ExchangeRejected:
    return ExchangeRejected(-2013, "Order does not exist.")


def margin_insufficient() -> ExchangeRejected:
    return ExchangeRejected(-2019, "Margin is insufficient.")


def would_trigger() -> ExchangeRejected:
    return ExchangeRejected(-2021, "Order would immediately trigger.")


def reduce_only_rejected() -> ExchangeRejected:
    return ExchangeRejected(-2022, "ReduceOnly Order is rejected.")


def max_open_orders() -> ExchangeRejected:
    return ExchangeRejected(-2025, "Reach max open order limit.")  # *


def max_position() -> ExchangeRejected:
    return ExchangeRejected(-2027, "Exceeded the maximum allowable position at current leverage.")


def position_side_mismatch() -> ExchangeRejected:
    return ExchangeRejected(-4061, "Order's position side does not match user's setting.")  # *


def qty_not_positive() -> ExchangeRejected:
    return ExchangeRejected(-4003, "Quantity less than or equal to zero.")


def qty_too_large() -> ExchangeRejected:
    return ExchangeRejected(-4005, "Quantity greater than max quantity.")  # *


def price_off_tick() -> ExchangeRejected:
    return ExchangeRejected(-4014, "Price not increased by tick size.")  # *


def client_id_too_long() -> ExchangeRejected:
    return ExchangeRejected(-4015, "Client order id length should be less than 36 chars")  # *


def price_above_band(limit: str) -> ExchangeRejected:
    return ExchangeRejected(-4016, f"Limit price can't be higher than {limit}.")  # *


def qty_off_step() -> ExchangeRejected:
    return ExchangeRejected(-4023, "Quantity not increased by step size.")  # *


def price_below_band(limit: str) -> ExchangeRejected:
    return ExchangeRejected(-4024, f"Limit price can't be lower than {limit}.")  # *


def bad_leverage(leverage: str) -> ExchangeRejected:
    return ExchangeRejected(-4028, f"Leverage {leverage} is not valid")  # *


def margin_type_unchanged() -> ExchangeRejected:
    return ExchangeRejected(-4046, "No need to change margin type.")


def margin_type_open_orders() -> ExchangeRejected:
    return ExchangeRejected(
        -4047, "Margin type cannot be changed if there exists open orders."
    )  # *


def margin_type_position() -> ExchangeRejected:
    return ExchangeRejected(-4048, "Margin type cannot be changed if there exists position.")  # *


def position_side_unchanged() -> ExchangeRejected:
    return ExchangeRejected(-4059, "No need to change position side.")  # *


def hedge_mode_unsupported() -> ExchangeRejected:
    return ExchangeRejected(
        -1130,
        "Data sent for parameter 'dualSidePosition' is not valid: this local exchange trades "
        "One-way Mode only (Hedge Mode is not supported yet).",
    )


def bad_batch_size() -> ExchangeRejected:
    return ExchangeRejected(-4082, "Invalid number of batch place orders.")  # *


def client_id_duplicated() -> ExchangeRejected:
    return ExchangeRejected(-4116, "ClientOrderId is duplicated.")


def use_algo_api() -> ExchangeRejected:
    return ExchangeRejected(
        -4120,
        "Order type not supported for this endpoint. Please use the Algo Order API endpoints "
        "instead.",
    )


def min_notional(notional: str) -> ExchangeRejected:
    return ExchangeRejected(
        -4164,
        f"Order's notional must be no smaller than {notional} (unless you choose reduce only).",
    )


def fok_rejected() -> ExchangeRejected:
    return ExchangeRejected(
        -5021, "Due to the order could not be filled immediately, the FOK order has been rejected."
    )


def gtx_rejected() -> ExchangeRejected:
    return ExchangeRejected(
        -5022,
        "Due to the order could not be executed as maker, the Post Only order will be rejected.",
    )
