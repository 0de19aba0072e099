"""What each process of a paper or live runtime needs to start, in one picklable value (the
children are spawned: they get it through a pipe, never a copy of the parent's memory).

Secrets travel inside ``Keys``, whose repr hides them, so a spec logged by mistake shows no
key. Strategy and trading configuration travel as what the user named (a built-in name or a
file, a config file), and each process builds its own from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from slt.domain.strategies.base import Strategy
from slt.engine.config import EngineConfig

Mode = Literal["paper", "live"]

# A child's exit codes that end the whole runtime instead of restarting the child.
EXIT_FINISHED = 65  # a rehearsal reached its last candle and stopped cleanly
EXIT_REFUSED = 66  # the exchange holds what the bot cannot explain (see RefusedToTrade)


@dataclass(frozen=True)
class Keys:
    key: str = ""
    secret: str = ""

    def __repr__(self) -> str:
        return "Keys(key=***, secret=***)" if self.key else "Keys(none)"


@dataclass(frozen=True)
class TradingSpec:
    mode: Mode
    symbols: tuple[str, ...]
    timeframe: str
    run_id: str
    rest_url: str
    ws_url: str
    state_dir: str  # the run's journal and the executor's fill mark live here
    keys: Keys = Keys()
    strategy: str = "smc"
    strategy_file: str | None = None
    relaxed: bool = False
    config_file: str | None = None
    records: bool = True  # the brain records into the settings' database (DATABASE_URL)
    adopt: bool = False
    warmup_candles: int = 300
    warmup_from_ms: int | None = None
    trade_from_ms: int | None = None
    until_ms: int | None = None
    market_options: dict[str, Any] = field(default_factory=dict)
    gateway_options: dict[str, Any] = field(default_factory=dict)
    user_options: dict[str, Any] = field(default_factory=dict)

    @property
    def paper(self) -> bool:
        return self.mode == "paper"

    def ring_name(self, ring: str) -> str:
        return f"slt-{self.run_id}-{ring}"

    @property
    def run_dir(self) -> Path:
        return Path(self.state_dir)

    def strategy_and_engine(self) -> tuple[Strategy, EngineConfig]:
        """Built in the process that uses them (a strategy file is Python: it is loaded
        there, not pickled)."""
        from slt.runtime.bootstrap import choose_strategy
        from slt.runtime.trading_config_file import load_trading_config

        trading = load_trading_config(Path(self.config_file) if self.config_file else None)
        strategy = choose_strategy(self.strategy, Path(self.strategy_file)
                                   if self.strategy_file else None, self.relaxed)  # fmt: skip
        engine = trading.engine()
        return strategy, engine._replace(adopt_unknown=self.adopt)
