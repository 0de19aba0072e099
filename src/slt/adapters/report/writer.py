"""Write report.json and report.html together or not at all.

Both are rendered in memory, written to temporary files beside their targets, and only then
renamed into place. Any failure removes the temporary files; if one report was already renamed
when the other fails, the previous version is put back, so old reports stay as they were.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from slt.adapters.report.report_html import render_report_html
from slt.adapters.report.report_json import render_report_json
from slt.domain.results import BacktestResult

JSON_NAME = "report.json"
HTML_NAME = "report.html"


def write_reports(
    report_dir: Path, result: BacktestResult, run: Mapping[str, object]
) -> tuple[Path, Path]:
    """Write a backtest's ``report.json`` and ``report.html`` in ``report_dir``."""
    json_bytes = render_report_json(result, run)
    html_bytes = render_report_html(result, run).encode("utf-8")
    return write_report_pair(report_dir, json_bytes, html_bytes)


def write_report_pair(report_dir: Path, json_bytes: bytes, html_bytes: bytes) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` in ``report_dir`` (created if missing), both
    or neither."""
    report_dir.mkdir(parents=True, exist_ok=True)
    contents = {report_dir / JSON_NAME: json_bytes, report_dir / HTML_NAME: html_bytes}
    token = uuid.uuid4().hex
    staged: dict[Path, Path] = {}
    backups: dict[Path, Path] = {}
    replaced: list[Path] = []
    try:
        for target, data in contents.items():
            temp = target.with_name(f".{target.name}.{token}.tmp")
            staged[target] = temp
            _write_synced(temp, data)
        for target in contents:
            if target.exists():
                backups[target] = target.with_name(f".{target.name}.{token}.bak")
                _keep_copy(target, backups[target])
        for target, temp in staged.items():
            os.replace(temp, target)
            replaced.append(target)
        _fsync_dir(report_dir)
    except BaseException:
        _roll_back(replaced, staged, backups)
        raise
    for backup in backups.values():
        backup.unlink(missing_ok=True)
    return report_dir / JSON_NAME, report_dir / HTML_NAME


def _roll_back(replaced: list[Path], staged: dict[Path, Path], backups: dict[Path, Path]) -> None:
    """Put previous reports back (or remove new ones that had none) and drop temporary files."""
    for target in replaced:
        with contextlib.suppress(OSError):
            if target in backups:
                os.replace(backups[target], target)
            else:
                target.unlink(missing_ok=True)
    for path in (*staged.values(), *backups.values()):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _keep_copy(target: Path, backup: Path) -> None:
    """A second name for the current report (a hard link, or a copy where links are refused)."""
    try:
        os.link(target, backup)
    except OSError:
        shutil.copy2(target, backup)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse fsync on a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
