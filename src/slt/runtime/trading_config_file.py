"""The trading configuration of a backtest (or paper session) from its TOML file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from slt.errors import ConfigError
from slt.runtime.trading_config import TradingConfig, trading_config_from_mapping


def load_trading_config(path: Path | None) -> TradingConfig:
    """Defaults without a file; every problem of the file reported at once, by name."""
    if path is None:
        return TradingConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"trading configuration {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"trading configuration {path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"trading configuration {path}: invalid TOML ({exc})") from None
    return trading_config_from_mapping(data, str(path))
