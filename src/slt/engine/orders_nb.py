"""The order lifecycle: an explicit table of allowed status transitions (NautilusTrader's style).

``TRANSITIONS[status, event]`` is the status an order moves to, or -1 when the event is not
allowed in that status: the kernel then refuses the event as an integrity error and changes
nothing. A fill moves an order to ``PARTIALLY_FILLED`` or ``FILLED`` by its quantity; the
table only says whether a fill is allowed at all, the kernel picks which. A cancel refused
while ``PENDING_CANCEL`` returns the order to the status it had before the cancel was asked.
An order the core decided but holds back (a reversal entry waiting for its close) is
INITIALIZED and marked ``held``: dropping it needs no word to the exchange.
"""

from __future__ import annotations

import numpy as np

from slt.domain.features.jit import step_jit
from slt.engine.records import (
    ACCEPTED,
    CANCELED,
    EV_CANCEL_REQUESTED,
    EV_ORDER_ACCEPTED,
    EV_ORDER_CANCEL_REJECTED,
    EV_ORDER_CANCELED,
    EV_ORDER_EXPIRED,
    EV_ORDER_FILLED,
    EV_ORDER_REJECTED,
    EV_ORDER_SUBMITTED,
    EXPIRED,
    FILLED,
    INITIALIZED,
    N_EVENT_KINDS,
    N_STATUSES,
    PARTIALLY_FILLED,
    PENDING_CANCEL,
    REJECTED,
    SUBMITTED,
)

# (status, event) -> next status. FILLED here stands for "a fill is allowed".
_ALLOWED: dict[tuple[int, int], int] = {
    (INITIALIZED, EV_ORDER_SUBMITTED): SUBMITTED,
    (INITIALIZED, EV_ORDER_REJECTED): REJECTED,  # refused before it left
    (INITIALIZED, EV_CANCEL_REQUESTED): PENDING_CANCEL,  # sent, not yet acknowledged
    (SUBMITTED, EV_ORDER_ACCEPTED): ACCEPTED,
    (SUBMITTED, EV_ORDER_REJECTED): REJECTED,
    (SUBMITTED, EV_ORDER_FILLED): FILLED,  # a market order may fill before its acknowledgement
    (SUBMITTED, EV_ORDER_CANCELED): CANCELED,
    (SUBMITTED, EV_ORDER_EXPIRED): EXPIRED,
    (SUBMITTED, EV_CANCEL_REQUESTED): PENDING_CANCEL,
    (ACCEPTED, EV_ORDER_FILLED): FILLED,
    (ACCEPTED, EV_ORDER_CANCELED): CANCELED,
    (ACCEPTED, EV_ORDER_EXPIRED): EXPIRED,
    (ACCEPTED, EV_CANCEL_REQUESTED): PENDING_CANCEL,
    (PARTIALLY_FILLED, EV_ORDER_FILLED): FILLED,
    (PARTIALLY_FILLED, EV_ORDER_CANCELED): CANCELED,
    (PARTIALLY_FILLED, EV_ORDER_EXPIRED): EXPIRED,
    (PARTIALLY_FILLED, EV_CANCEL_REQUESTED): PENDING_CANCEL,
    (PENDING_CANCEL, EV_ORDER_CANCELED): CANCELED,
    (PENDING_CANCEL, EV_ORDER_EXPIRED): EXPIRED,
    (PENDING_CANCEL, EV_ORDER_FILLED): FILLED,  # it filled before the cancel reached it
    (PENDING_CANCEL, EV_ORDER_CANCEL_REJECTED): ACCEPTED,  # back to where it was (see below)
    (PENDING_CANCEL, EV_ORDER_REJECTED): REJECTED,  # the placement failed after all
    # The placement is acknowledged after the cancel was asked for: still waiting for it.
    (PENDING_CANCEL, EV_ORDER_SUBMITTED): PENDING_CANCEL,
    (PENDING_CANCEL, EV_ORDER_ACCEPTED): PENDING_CANCEL,
    (PENDING_CANCEL, EV_CANCEL_REQUESTED): PENDING_CANCEL,
    # A cancel the exchange refused because the order had already finished.
    (FILLED, EV_ORDER_CANCEL_REJECTED): FILLED,
    (CANCELED, EV_ORDER_CANCEL_REJECTED): CANCELED,
    (EXPIRED, EV_ORDER_CANCEL_REJECTED): EXPIRED,
    (REJECTED, EV_ORDER_CANCEL_REJECTED): REJECTED,
    # Asking to cancel an order that already finished changes nothing.
    (FILLED, EV_CANCEL_REQUESTED): FILLED,
    (CANCELED, EV_CANCEL_REQUESTED): CANCELED,
    (EXPIRED, EV_CANCEL_REQUESTED): EXPIRED,
    (REJECTED, EV_CANCEL_REQUESTED): REJECTED,
}


def transition_table() -> np.ndarray:
    table = np.full((N_STATUSES, N_EVENT_KINDS), -1, dtype=np.int64)
    for (status, event), after in _ALLOWED.items():
        table[status, event] = after
    return table


TRANSITIONS = transition_table()
TERMINAL = (FILLED, CANCELED, REJECTED, EXPIRED)


@step_jit
def is_terminal_nb(status: int) -> bool:
    return status in (FILLED, CANCELED, REJECTED, EXPIRED)


@step_jit
def is_live_nb(status: int) -> bool:
    """Sent or about to be sent, and not finished: it may still fill."""
    return status in (INITIALIZED, SUBMITTED, ACCEPTED, PARTIALLY_FILLED, PENDING_CANCEL)


@step_jit
def next_status_nb(table: np.ndarray, status: int, event: int) -> int:
    """The status after ``event``, or -1 if the transition is illegal."""
    if status < 0 or status >= table.shape[0] or event < 0 or event >= table.shape[1]:
        return -1
    after: int = table[status, event]
    return after
