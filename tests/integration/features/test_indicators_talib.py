"""Indicator kernels against TA-Lib on four real Binance files (two full CATMAN 5m futures
series of 143,900 bars, Filimonov 1m spot, Roshan 1h spot with outage gaps that both sides
simply read as consecutive rows): same NaN positions, values within 1e-9 relative."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import talib

from slt.adapters.importers.readers import RawRows
from slt.domain.features.indicators_nb import (
    INDICATOR_COLUMNS,
    IndicatorParams,
    atr_nb,
    bbands_nb,
    ema_nb,
    indicator_batch_nb,
    macd_nb,
    realized_vol_nb,
    rsi_nb,
    sma_nb,
    stddev_nb,
    volume_zscore_nb,
)
from slt.domain.series import F64
from tests.conftest import (
    CATMAN_BTC_5M,
    CATMAN_ETH_5M,
    FILIMONOV_BTC_1M,
    ROSHAN_BTC_SPOT_1H,
    real_ohlcv,
)

pytestmark = pytest.mark.shared_data

FILES = {
    "catman-btc-5m": CATMAN_BTC_5M,
    "catman-eth-5m": CATMAN_ETH_5M,
    "filimonov-btc-1m": FILIMONOV_BTC_1M,
    "roshan-btc-1h": ROSHAN_BTC_SPOT_1H,
}
RTOL = 1e-9


@cache
def _rows(path: Path) -> RawRows:
    return real_ohlcv(path)


@pytest.fixture(params=list(FILES), scope="module")
def rows(request: pytest.FixtureRequest) -> RawRows:
    return _rows(FILES[request.param])


def _max_error(ours: F64, ref: F64, scale: F64 | float | None = None) -> float:
    """Largest |ours - ref| / (|ref| + scale). The scale defaults to the series' RMS, so values
    near 0 (a MACD histogram crossing zero) are held to the size of their series; a composite
    passes the magnitude of its operands (a difference is only as precise as its operands)."""
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), "NaN positions differ"
    ok = ~np.isnan(ref)
    assert ok.sum() > 0.9 * len(ref)
    if scale is None:
        scale = float(np.sqrt(np.mean(ref[ok] ** 2)))
    size = np.abs(ref) + np.maximum(scale, np.finfo(np.float64).tiny)
    return float(np.max(np.abs(ours[ok] - ref[ok]) / size[ok]))


def _talib_volume_z(v: F64, period: int) -> F64:
    std = talib.STDDEV(v, period, 1.0)
    z = (v - talib.SMA(v, period)) / np.where(std > 0.0, std, 1.0)
    return np.where(std > 0.0, z, np.where(np.isnan(std), np.nan, 0.0))


def _talib_realized_vol(c: F64, period: int) -> F64:
    returns = np.log(c[1:] / c[:-1])
    return np.concatenate([[np.nan], talib.STDDEV(returns, period, 1.0) * 100.0])


@pytest.mark.parametrize("period", [2, 14, 50])
def test_sma_ema_and_rsi_match_talib(rows: RawRows, period: int) -> None:
    c = rows.close

    assert _max_error(sma_nb(c, period), talib.SMA(c, period)) <= RTOL
    assert _max_error(ema_nb(c, period), talib.EMA(c, period)) <= RTOL
    assert _max_error(rsi_nb(c, period), talib.RSI(c, period)) <= RTOL


@pytest.mark.parametrize("period", [1, 14, 30])
def test_atr_matches_talib(rows: RawRows, period: int) -> None:
    h, low, c = rows.high, rows.low, rows.close

    assert _max_error(atr_nb(h, low, c, period), talib.ATR(h, low, c, period)) <= RTOL


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (26, 12, 1)])
def test_macd_line_signal_and_histogram_match_talib(
    rows: RawRows, fast: int, slow: int, signal: int
) -> None:
    ours = macd_nb(rows.close, fast, slow, signal)
    ref = talib.MACD(rows.close, fast, slow, signal)

    for name, a, b in zip(("macd", "signal", "hist"), ours, ref, strict=True):
        assert _max_error(a, b) <= RTOL, name


@pytest.mark.parametrize(("period", "nbdev"), [(20, 2.0), (5, 1.0), (50, 2.5)])
def test_bollinger_bands_and_stddev_match_talib(rows: RawRows, period: int, nbdev: float) -> None:
    c = rows.close
    ref = talib.BBANDS(c, period, nbdev, nbdev, 0)

    for name, a, b in zip(
        ("upper", "middle", "lower"), bbands_nb(c, period, nbdev), ref, strict=True
    ):
        assert _max_error(a, b) <= RTOL, name
    assert _max_error(stddev_nb(c, period), talib.STDDEV(c, period, 1.0)) <= RTOL
    assert (
        _max_error(stddev_nb(rows.volume, period), talib.STDDEV(rows.volume, period, 1.0)) <= RTOL
    )


def test_volume_zscore_matches_its_talib_definition(rows: RawRows) -> None:
    v = rows.volume
    operands = (v + talib.SMA(v, 20)) / talib.STDDEV(v, 20, 1.0)  # v - SMA, in stddevs

    assert _max_error(volume_zscore_nb(v, 20), _talib_volume_z(v, 20), operands) <= RTOL


def test_realized_volatility_matches_stddev_of_log_returns_from_talib(rows: RawRows) -> None:
    c = rows.close

    assert _max_error(realized_vol_nb(c, 20), _talib_realized_vol(c, 20)) <= RTOL


def test_family_columns_match_their_definitions_computed_with_talib(rows: RawRows) -> None:
    o, h, low, c, v = rows.open, rows.high, rows.low, rows.close, rows.volume
    p = IndicatorParams()
    atr = talib.ATR(h, low, c, p.atr_period)
    ema_fast, ema_slow = talib.EMA(c, p.ema_fast), talib.EMA(c, p.ema_slow)
    line, signal, hist = talib.MACD(c, p.macd_fast, p.macd_slow, p.macd_signal)
    upper, middle, lower = talib.BBANDS(c, p.bb_period, p.bb_dev, p.bb_dev, 0)
    prev = np.concatenate([[np.nan], c[:-1]])
    want = {
        "rsi": talib.RSI(c, p.rsi_period),
        "atr_pct": atr / c * 100.0,
        "ema_fast_dist_atr": (c - ema_fast) / atr,
        "ema_slow_dist_atr": (c - ema_slow) / atr,
        "ema_spread_atr": (ema_fast - ema_slow) / atr,
        "macd_atr": line / atr,
        "macd_signal_atr": signal / atr,
        "macd_hist_atr": hist / atr,
        "bb_width_pct": (upper - lower) / middle * 100.0,
        "bb_position": (c - lower) / (upper - lower),
        "volume_z": _talib_volume_z(v, p.volume_z_period),
        "realized_vol_pct": _talib_realized_vol(c, p.realized_vol_period),
        "return_atr": (c - prev) / atr,
    }

    # Operands in the column's units: prices in ATRs for the ATR-normalised differences, the
    # close in band widths for the position (TA-Lib's close - lower rounds at the price's
    # scale, which matters when a flat market makes the band cents wide).
    in_atrs = c / atr
    scales: dict[str, F64 | None] = {name: None for name in INDICATOR_COLUMNS}
    scales.update({name: in_atrs for name in INDICATOR_COLUMNS if name.endswith("_atr")})
    scales["bb_position"] = c / (upper - lower)
    scales["volume_z"] = (v + talib.SMA(v, p.volume_z_period)) / talib.STDDEV(v, p.volume_z_period)

    got = indicator_batch_nb(o, h, low, c, v, p)

    for k, name in enumerate(INDICATOR_COLUMNS):
        ref = want[name]
        if name == "bb_position":  # zero-width bands: TA-Lib gives no position, we give 0.5
            flat = (upper == lower) & ~np.isnan(middle)
            assert np.all(got[flat, k] == 0.5)
            ref = np.where(flat, 0.5, ref)
        assert _max_error(got[:, k], ref, scales[name]) <= RTOL, name
