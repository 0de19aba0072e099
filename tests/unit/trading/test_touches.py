"""The per-bar test of the exchange (``touches_nb``) agrees with the fills it stands in for."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from slt.domain.trading.exits_nb import FILL_COLUMNS, resolve_segment_nb, touches_nb
from slt.domain.trading.position_nb import POSITION_DT

price = st.floats(50.0, 150.0, allow_nan=False)
maybe_level = st.one_of(st.just(np.nan), price)


@settings(max_examples=600, deadline=None)
@given(
    side=st.sampled_from([-1, 0, 1]),
    qty=st.sampled_from([0.0, 0.5, 2.0]),
    stop=price,
    liq=st.one_of(st.just(0.0), price),
    emergency=st.one_of(st.just(0.0), price),
    partial=maybe_level,
    partial_qty=st.sampled_from([0.0, 0.25, 3.0]),
    target=maybe_level,
    bar=st.lists(price, min_size=3, max_size=3),
)
def test_touches_is_true_exactly_when_the_segment_fills_something(
    side: int,
    qty: float,
    stop: float,
    liq: float,
    emergency: float,
    partial: float,
    partial_qty: float,
    target: float,
    bar: list[float],
) -> None:
    pos = np.zeros(1, dtype=POSITION_DT)
    row = pos[0]
    row["side"], row["qty"], row["stop"], row["liq"] = side, qty, stop, liq
    row["emergency"], row["partial_price"], row["partial_qty"] = emergency, partial, partial_qty
    row["target"] = target
    low, open_, high = sorted(bar)
    out = np.zeros((2, FILL_COLUMNS))
    fills = resolve_segment_nb(pos[0], open_, high, low, out)
    assert touches_nb(pos[0], open_, high, low) == (fills > 0)
