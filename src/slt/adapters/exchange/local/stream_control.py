"""Control messages on a stream connection, read as Binance reads them (DOC
``.../websocket-market-streams/Live-Subscribing-Unsubscribing-to-streams``):
``{"method": ..., "params": [...], "id": ...}``, and the error frames that page lists. Pure:
the hub applies what ``parse`` returns."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from slt.adapters.exchange.local import stream_frames

SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS = "SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS"
SET_PROPERTY, GET_PROPERTY = "SET_PROPERTY", "GET_PROPERTY"
METHODS = (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY)
COMBINED = "combined"  # the only property there is
MAX_ID = 2**64 - 1
# Binance documents an unsigned integer id; its own SDK sends UUID strings, which fstream
# accepts, so strings of up to 36 letters, digits, '-' and '_' are accepted too.
_STRING_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")

RequestId = int | str | None


class BadRequest(Exception):
    """A control message Binance answers with an error frame; the connection keeps working."""

    def __init__(self, code: int, msg: str, request_id: RequestId = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.request_id = request_id

    def frame(self) -> str:
        return stream_frames.error(self.code, self.msg, self.request_id)


@dataclass(frozen=True)
class Request:
    method: str
    params: list[Any]
    id: RequestId


def valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):  # a JSON true is no id, although Python calls it an int
        return False
    if isinstance(value, int):
        return 0 <= value <= MAX_ID
    return isinstance(value, str) and _STRING_ID.match(value) is not None


def parse(text: str) -> Request:
    """The request in ``text``, or ``BadRequest`` with Binance's code and message."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}"
        ) from exc
    except (ValueError, RecursionError) as exc:  # e.g. nesting too deep to read
        raise BadRequest(3, "Invalid JSON: expected value at line 1 column 1") from exc
    if not isinstance(body, dict):
        raise BadRequest(2, "Invalid request: expected a JSON object")
    request_id = body.get("id")
    if "id" not in body or not valid_id(request_id):
        raise BadRequest(2, "Invalid request: request ID must be an unsigned integer")
    if "method" not in body:
        raise BadRequest(
            2, f"Invalid request: missing field method at line 1 column {len(text)}", request_id
        )
    method = body["method"]
    if not isinstance(method, str) or method not in METHODS:
        shown = method if isinstance(method, str) else json.dumps(method)
        raise BadRequest(
            2,
            f"Invalid request: unknown variant {shown}, expected one of "
            f"{', '.join(METHODS)} at line 1 column {_column_after(text, method)}",
            request_id,
        )
    params = body.get("params")
    if params is None:
        params = []
    if not isinstance(params, list):
        raise BadRequest(2, "Invalid request: params must be a list", request_id)
    return Request(method, params, request_id)


def stream_names(request: Request) -> list[str]:
    """SUBSCRIBE / UNSUBSCRIBE: the names, in order, without repeats."""
    if not all(isinstance(p, str) for p in request.params):
        raise BadRequest(2, "Invalid request: stream names must be strings", request.id)
    return list(dict.fromkeys(request.params))


def no_params(request: Request) -> None:
    """LIST_SUBSCRIPTIONS takes none."""
    if request.params:
        raise BadRequest(2, "Invalid request: too many parameters", request.id)


def property_name(request: Request, count: int) -> str:
    """GET_PROPERTY (``count`` 1) and SET_PROPERTY (``count`` 2): the property named."""
    if len(request.params) > count:
        raise BadRequest(2, "Invalid request: too many parameters", request.id)
    if not request.params or not isinstance(request.params[0], str):
        raise BadRequest(2, "Invalid request: property name must be a string", request.id)
    name = request.params[0]
    if name != COMBINED:
        raise BadRequest(0, "Unknown property", request.id)
    return name


def property_value(request: Request) -> bool:
    """SET_PROPERTY's value: true or false only."""
    if len(request.params) < 2 or not isinstance(request.params[1], bool):
        raise BadRequest(1, "Invalid value type: expected Boolean", request.id)
    return bool(request.params[1])


def _column_after(text: str, method: Any) -> int:
    shown = json.dumps(method)
    at = text.find(shown)
    return at + len(shown) + 1 if at >= 0 else len(text)
