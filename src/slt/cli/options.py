"""Options several commands share, spelled and explained once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slt.domain.series import Market

Symbol = Annotated[str, typer.Option("--symbol", help="BTCUSDT or BTC/USDT:USDT.")]
End = Annotated[str, typer.Option(help="End (UTC, exclusive), e.g. 2024-05-01.")]
ReportDir = Annotated[Path, typer.Option("--report-dir", help="Where to write the report.")]
MarketOption = Annotated[Market, typer.Option("--market", help="spot or futures.")]
Timeframe = Annotated[str, typer.Option("--timeframe", help="Base timeframe.")]
StrategyName = Annotated[
    str | None, typer.Option("--strategy", help="Built-in strategy: smc or ema_cross.")
]
StrategyFile = Annotated[
    Path | None, typer.Option("--strategy-file", help="Your strategy in a Python file.")
]
TradingConfigFile = Annotated[
    Path | None, typer.Option("--config", help="Trading configuration (TOML).")
]
