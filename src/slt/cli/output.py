"""Rich consoles for results (stdout) and warnings (stderr), shared by the commands."""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Piped output (files, CI logs) gets a fixed width wide enough for every table's columns.
PIPED_WIDTH = 160


def _width(stream_is_tty: bool) -> int | None:
    return None if stream_is_tty or os.environ.get("COLUMNS") else PIPED_WIDTH


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True, width=_width(sys.stdout.isatty()))


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr.isatty()))
