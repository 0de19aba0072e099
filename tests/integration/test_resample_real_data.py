"""Resampling real lower-timeframe candles reproduces the same source's higher-timeframe files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slt.adapters.importers.importer import plan_import
from slt.domain.clock import format_utc_ms
from slt.domain.resample import resample
from slt.domain.series import Candles
from tests.conftest import CATMAN, FILIMONOV

pytestmark = pytest.mark.shared_data

# Candles that catman77's freqtrade download saved before they closed, and never rewrote:
# its 5m bars of 2023-11-10 15:05 (BTC volume 206 of ~1,253; ETH likewise) and its 15m BTC bars
# of 15:00 and 16:30. The independent Roshan 1h file agrees with catman77's 1h bar, not with the
# unclosed 5m bar, so the source is wrong there, not the aggregation. Every other bar must match.
KNOWN_UNCLOSED_SOURCE_BARS = {
    "btc-5m-15m": {"2023-11-10 15:00", "2023-11-10 16:30"},
    "btc-5m-1h": {"2023-11-10 15:00"},
    "eth-5m-1h": {"2023-11-10 15:00"},
}


def _load(path: Path) -> Candles:
    (planned,) = plan_import([path]).files
    assert isinstance(planned.series, Candles)
    return planned.series


@pytest.mark.parametrize(
    ("base", "target", "tf"),
    [
        (FILIMONOV / "BTC_USDT-1m.feather", FILIMONOV / "BTC_USDT-5m.feather", "5m"),
        (FILIMONOV / "BTC_USDT-1m.feather", FILIMONOV / "BTC_USDT-15m.feather", "15m"),
        (FILIMONOV / "ETH_USDT-1m.feather", FILIMONOV / "ETH_USDT-5m.feather", "5m"),
        (
            CATMAN / "BTC_USDT_USDT-5m-futures.feather",
            CATMAN / "BTC_USDT_USDT-15m-futures.feather",
            "15m",
        ),
        (
            CATMAN / "BTC_USDT_USDT-5m-futures.feather",
            CATMAN / "BTC_USDT_USDT-1h-futures.feather",
            "1h",
        ),
        (
            CATMAN / "ETH_USDT_USDT-5m-futures.feather",
            CATMAN / "ETH_USDT_USDT-1h-futures.feather",
            "1h",
        ),
    ],
    ids=["btc-1m-5m", "btc-1m-15m", "eth-1m-5m", "btc-5m-15m", "btc-5m-1h", "eth-5m-1h"],
)
def test_resampling_real_candles_reproduces_the_real_higher_timeframe_bar_for_bar(
    request: pytest.FixtureRequest, shared_data: Path, base: Path, target: Path, tf: str
) -> None:
    ours = resample(_load(base), tf)
    real = _load(target)
    common = np.intersect1d(ours.open_time_ms, real.open_time_ms)
    # Over the common span every real bar must be reproduced (none missing, none extra).
    lo, hi = common[0], common[-1]
    ours = ours.between(lo, hi + 1)
    real = real.between(lo, hi + 1)
    assert len(common) > 8_000 or (tf == "1h" and len(common) > 2_000)
    np.testing.assert_array_equal(ours.open_time_ms, real.open_time_ms)
    differs = ~np.isclose(ours.volume, real.volume, rtol=1e-9, atol=0)
    for name in ("open", "high", "low", "close"):
        differs |= getattr(ours, name) != getattr(real, name)
    mismatched = {format_utc_ms(int(t)) for t in ours.open_time_ms[differs]}
    case = request.node.callspec.id
    assert mismatched == KNOWN_UNCLOSED_SOURCE_BARS.get(case, set())
