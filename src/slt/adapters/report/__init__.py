"""Backtest reports: report.json (all the data) and report.html (a self-contained page)."""

from slt.adapters.report.report_html import render_report_html
from slt.adapters.report.report_json import render_report_json, report_document
from slt.adapters.report.writer import write_reports

__all__ = ["render_report_html", "render_report_json", "report_document", "write_reports"]
