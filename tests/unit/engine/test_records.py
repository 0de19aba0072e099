"""The engine's record types and its order lifecycle table."""

from __future__ import annotations

from slt.engine.orders_nb import TRANSITIONS, is_live_nb, is_terminal_nb
from slt.engine.records import (
    ACCEPTED,
    CANCELED,
    COMMAND_DT,
    EV_CANCEL_REQUESTED,
    EV_ORDER_ACCEPTED,
    EV_ORDER_CANCEL_REJECTED,
    EV_ORDER_CANCELED,
    EV_ORDER_EXPIRED,
    EV_ORDER_FILLED,
    EV_ORDER_REJECTED,
    EV_ORDER_SUBMITTED,
    EVENT_DT,
    EXPIRED,
    FILLED,
    INITIALIZED,
    PARTIALLY_FILLED,
    PENDING_CANCEL,
    REJECTED,
    SUBMITTED,
    CommandRow,
    EventRow,
)


def test_the_python_rows_name_the_record_fields_in_order() -> None:
    assert CommandRow._fields == COMMAND_DT.names
    assert EventRow._fields == EVENT_DT.names


def test_an_order_moves_from_submitted_through_accepted_to_filled() -> None:
    assert TRANSITIONS[INITIALIZED, EV_ORDER_SUBMITTED] == SUBMITTED
    assert TRANSITIONS[SUBMITTED, EV_ORDER_ACCEPTED] == ACCEPTED
    assert TRANSITIONS[ACCEPTED, EV_ORDER_FILLED] == FILLED
    assert TRANSITIONS[PARTIALLY_FILLED, EV_ORDER_FILLED] == FILLED
    assert TRANSITIONS[ACCEPTED, EV_CANCEL_REQUESTED] == PENDING_CANCEL
    assert TRANSITIONS[PENDING_CANCEL, EV_ORDER_CANCELED] == CANCELED


def test_a_finished_order_takes_no_further_lifecycle_event() -> None:
    for status in (FILLED, CANCELED, REJECTED, EXPIRED):
        assert is_terminal_nb(status) and not is_live_nb(status)
        for event in (
            EV_ORDER_SUBMITTED, EV_ORDER_ACCEPTED, EV_ORDER_FILLED, EV_ORDER_CANCELED,
            EV_ORDER_EXPIRED, EV_ORDER_REJECTED,
        ):  # fmt: skip
            assert TRANSITIONS[status, event] == -1, (status, event)
        # a cancel the exchange refuses because the order already finished changes nothing
        assert TRANSITIONS[status, EV_ORDER_CANCEL_REJECTED] == status


def test_an_order_not_yet_submitted_cannot_be_accepted_or_filled() -> None:
    assert TRANSITIONS[INITIALIZED, EV_ORDER_ACCEPTED] == -1
    assert TRANSITIONS[INITIALIZED, EV_ORDER_FILLED] == -1
    assert TRANSITIONS[SUBMITTED, EV_ORDER_CANCEL_REJECTED] == -1
