"""Writing series in other tools' formats: freqtrade files and Binance archive CSVs.

The demo uses these to build a source folder to import; tests use them to turn real data into
every format the importer reads.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from slt.adapters.importers.readers import ARCHIVE_KLINE_COLUMNS
from slt.domain.series import Candles, FundingRates, Kind, Market, Series, SeriesKey
from slt.domain.timeframes import timeframe_ms

_FREQTRADE_SUFFIX = {Kind.CANDLES: "-futures", Kind.MARK: "-mark", Kind.FUNDING: "-funding_rate"}


def freqtrade_name(key: SeriesKey, ext: str = "feather") -> str:
    """``BTC_USDT_USDT-5m-futures.feather`` style name (quote asset guessed from common ones)."""
    base, quote = _split_symbol(key.symbol)
    if key.market is Market.SPOT and key.kind is Kind.CANDLES:
        return f"{base}_{quote}-{key.timeframe}.{ext}"
    return f"{base}_{quote}_{quote}-{key.timeframe}{_FREQTRADE_SUFFIX[key.kind]}.{ext}"


def _split_symbol(symbol: str) -> tuple[str, str]:
    for quote in ("USDT", "USDC", "BUSD", "BTC", "ETH", "BNB"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4], symbol[-4:]


def _freqtrade_table(series: Series) -> pa.Table:
    if isinstance(series, FundingRates):
        zeros = np.zeros(len(series))
        times, cols = series.time_ms, [series.rate, zeros, zeros, zeros, zeros]
    else:
        times = series.open_time_ms
        cols = [series.open, series.high, series.low, series.close, series.volume]
    data: dict[str, pa.Array] = {
        "date": pa.array(times.astype("datetime64[ms]"), pa.timestamp("ms", tz="UTC"))
    }
    for name, values in zip(("open", "high", "low", "close", "volume"), cols, strict=True):
        data[name] = pa.array(values, pa.float64())
    return pa.table(data)


def write_freqtrade(series: Series, folder: Path, ext: str = "feather") -> Path:
    """Write as freqtrade does: futures files go into ``futures/``."""
    target = folder / ("futures" if series.key.market is Market.FUTURES else "")
    target.mkdir(parents=True, exist_ok=True)
    path = target / freqtrade_name(series.key, ext)
    table = _freqtrade_table(series)
    if ext == "feather":
        feather.write_feather(table, path, compression="lz4")
    elif ext == "parquet":
        pq.write_table(table, path)
    elif ext in ("json", "json.gz"):
        times = table.column("date").cast(pa.int64()).to_pylist()
        rows = [
            [t, *vals]
            for t, *vals in zip(
                times, *(table.column(c).to_pylist() for c in table.column_names[1:]), strict=True
            )
        ]
        payload = json.dumps(rows).encode()
        path.write_bytes(gzip.compress(payload) if ext == "json.gz" else payload)
    else:
        raise ValueError(f"unknown freqtrade format {ext}")
    return path


def write_binance_archive(
    candles: Candles, path: Path, *, header: bool, microseconds: bool = False
) -> Path:
    """A Binance public-archive kline file (``.zip`` holding one CSV, or a bare ``.csv``)."""
    scale = 1000 if microseconds else 1
    step = timeframe_ms(candles.key.timeframe)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(ARCHIVE_KLINE_COLUMNS)
    columns = (candles.open, candles.high, candles.low, candles.close, candles.volume)
    for i in range(len(candles)):
        t = int(candles.open_time_ms[i])
        o, h, low, c, v = (float(col[i]) for col in columns)
        writer.writerow([t * scale, o, h, low, c, v, (t + step - 1) * scale, v * c, 100, 0, 0, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(path.stem + ".csv", out.getvalue())
    else:
        path.write_text(out.getvalue())
    return path
