"""Per-invocation state shared by subcommands: settings are loaded lazily, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from slt.runtime.config import Settings, load_settings
from slt.runtime.logging import configure_logging


@dataclass
class AppContext:
    config_path: Path | None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Load settings and configure logging once; raises ConfigError listing bad fields."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            configure_logging(self._settings)
        return self._settings


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # a subcommand app run on its own, as in some tests
        obj = AppContext(config_path=None)
        ctx.find_root().obj = obj
    return obj
