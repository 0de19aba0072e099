"""write_reports: both files or none, never a temp file left, old reports kept on failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from slt.adapters.report import writer
from slt.adapters.report.writer import write_reports
from tests.unit.report.sample import RUN, sample_result


def _boom(*_args: object, **_kwargs: object) -> str:
    raise RuntimeError("html renderer failed")


def test_reports_are_written_into_a_new_folder(tmp_path: Path) -> None:
    json_path, html_path = write_reports(tmp_path / "runs" / "a", sample_result(), RUN)
    assert (json_path.name, html_path.name) == ("report.json", "report.html")
    assert json.loads(json_path.read_bytes())["schema_version"] == 2
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["report.html", "report.json"]


def test_the_same_input_writes_byte_identical_reports(tmp_path: Path) -> None:
    first = write_reports(tmp_path / "a", sample_result(), RUN)
    second = write_reports(tmp_path / "b", sample_result(), RUN)
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()


def test_a_failing_html_writer_leaves_no_report_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "render_report_html", _boom)
    report_dir = tmp_path / "run"
    report_dir.mkdir()
    with pytest.raises(RuntimeError, match="html renderer failed"):
        write_reports(report_dir, sample_result(), RUN)
    assert list(report_dir.iterdir()) == []


def test_a_failing_html_writer_leaves_the_previous_reports_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "report.json").write_text("old json")
    (tmp_path / "report.html").write_text("old html")
    monkeypatch.setattr(writer, "render_report_html", _boom)
    with pytest.raises(RuntimeError):
        write_reports(tmp_path, sample_result(), RUN)
    assert (tmp_path / "report.json").read_text() == "old json"
    assert (tmp_path / "report.html").read_text() == "old html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]


def test_a_failed_rename_of_the_second_file_puts_the_first_old_report_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "report.json").write_text("old json")
    (tmp_path / "report.html").write_text("old html")
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "report.html" and str(src).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space"):
        write_reports(tmp_path, sample_result(), RUN)
    assert (tmp_path / "report.json").read_text() == "old json"
    assert (tmp_path / "report.html").read_text() == "old html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]


def test_a_failed_rename_without_previous_reports_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "report.html":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        write_reports(tmp_path, sample_result(), RUN)
    assert list(tmp_path.iterdir()) == []


def test_new_reports_replace_old_ones_and_leave_no_backup(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("old json")
    write_reports(tmp_path, sample_result(), RUN)
    assert json.loads((tmp_path / "report.json").read_bytes())["run"] == RUN
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]
