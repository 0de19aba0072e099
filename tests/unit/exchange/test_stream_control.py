"""Control messages on a stream connection, read as Binance's "Live Subscribing/Unsubscribing
to streams" page documents them, with its error codes and messages."""

from __future__ import annotations

import json

import pytest

from slt.adapters.exchange.local import stream_control as control
from slt.adapters.exchange.local.stream_control import BadRequest


def error_of(text: str) -> tuple[int, str, object]:
    with pytest.raises(BadRequest) as raised:
        control.parse(text)
    frame = json.loads(raised.value.frame())
    return frame["error"]["code"], frame["error"]["msg"], frame["id"]


def test_a_documented_subscribe_is_read_with_its_streams_and_id() -> None:
    request = control.parse(
        '{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],"id":1}'
    )
    assert request == control.Request("SUBSCRIBE", ["btcusdt@aggTrade", "btcusdt@depth"], 1)
    assert control.stream_names(request) == ["btcusdt@aggTrade", "btcusdt@depth"]


def test_ids_are_unsigned_integers_or_the_uuid_strings_binances_sdk_sends() -> None:
    for good in (0, 2**64 - 1, "3f2b9a64-6c1e-4a8e-9d1c-2f7b8e5a1c3d", None):
        assert control.parse(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": good})).id == good
    for bad in (-1, 2**64, 1.5, True, "x" * 37, "no spaces", [1], {"a": 1}):
        code, msg, request_id = error_of(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": bad}))
        assert (code, msg, request_id) == (
            2, "Invalid request: request ID must be an unsigned integer", None,
        )  # fmt: skip
    assert error_of('{"method":"LIST_SUBSCRIPTIONS"}')[0] == 2  # no id at all


def test_text_that_is_not_json_is_code_3_with_its_position() -> None:
    assert error_of("hello") == (3, "Invalid JSON: expected value at line 1 column 1", None)
    assert error_of('{"method":\n  }')[1] == "Invalid JSON: expected value at line 2 column 3"
    assert error_of("[" * 100_000)[0] == 3  # nested too deep to read: still an answer


def test_an_unknown_or_missing_method_is_code_2_with_the_ids_echo() -> None:
    code, msg, request_id = error_of('{"method":"FLY","id":7}')
    assert (code, request_id) == (2, 7)
    assert msg == (
        "Invalid request: unknown variant FLY, expected one of SUBSCRIBE, UNSUBSCRIBE, "
        "LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY at line 1 column 16"
    )
    assert error_of('{"params":[],"id":8}')[:2] == (
        2, "Invalid request: missing field method at line 1 column 20",
    )  # fmt: skip


def test_params_must_be_a_list_and_stream_names_strings() -> None:
    assert error_of('{"method":"SUBSCRIBE","params":"a@kline_1m","id":1}')[0] == 2
    with pytest.raises(BadRequest, match="stream names must be strings"):
        control.stream_names(control.parse('{"method":"SUBSCRIBE","params":[1],"id":1}'))
    request = control.parse('{"method":"SUBSCRIBE","params":["a","b","a"],"id":1}')
    assert control.stream_names(request) == ["a", "b"]


def test_properties_follow_the_documented_errors() -> None:
    def request(params: list[object]) -> control.Request:
        return control.Request("SET_PROPERTY", params, 5)

    assert control.property_name(request(["combined", True]), 2) == "combined"
    assert control.property_value(request(["combined", False])) is False
    cases = [
        (lambda: control.property_name(request(["colour", True]), 2), 0, "Unknown property"),
        (lambda: control.property_value(request(["combined", "yes"])), 1,
         "Invalid value type: expected Boolean"),
        (lambda: control.property_name(request([5, True]), 2), 2,
         "Invalid request: property name must be a string"),
        (lambda: control.property_name(request([]), 1), 2,
         "Invalid request: property name must be a string"),
        (lambda: control.property_name(request(["combined", 1, 2]), 2), 2,
         "Invalid request: too many parameters"),
    ]  # fmt: skip
    for call, code, msg in cases:
        with pytest.raises(BadRequest) as raised:
            call()
        assert (raised.value.code, raised.value.msg, raised.value.request_id) == (code, msg, 5)


def test_list_subscriptions_takes_no_params() -> None:
    control.no_params(control.parse('{"method":"LIST_SUBSCRIPTIONS","id":3}'))
    with pytest.raises(BadRequest, match="too many parameters"):
        control.no_params(control.parse('{"method":"LIST_SUBSCRIPTIONS","params":["x"],"id":3}'))
