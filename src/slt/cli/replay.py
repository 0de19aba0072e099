"""``slt replay``: rebuild a session from its journal, with the report of a backtest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from slt.cli.options import ReportDir
from slt.cli.output import stderr, stdout


def replay(
    journal: Annotated[Path, typer.Argument(help="The journal (slt backtest --journal FILE).")],
    report_dir: ReportDir,
) -> None:
    """Rebuild the state and commands from a journal's events, and a backtest's report.

    The same events through the same reducer give the same commands; the report equals the
    one the session wrote, apart from its timing.
    """
    began = time.perf_counter()
    from slt.adapters.journal import JsonlJournal
    from slt.adapters.report.writer import write_reports
    from slt.engine.replay import replay as replay_journal
    from slt.errors import SltError

    source = JsonlJournal(journal)
    header = source.header()
    if source.torn_tail():
        stderr().print(
            f"warning: the last line of {journal} was cut short (the writer stopped mid-line); "
            "that event was never applied and is left out"
        )
    done = replay_journal(header, source.entries())
    state = done.state
    out = stdout()
    out.print(
        f"Replayed {done.events:,} events of run {state.run_id}: "
        f"{sum(1 for c in done.commands if type(c).__name__ == 'Persist'):,} trades closed, "
        f"wallet {state.wallet:,.2f}"
    )
    if done.result is None:
        raise SltError(
            f"{journal} has no step marks (not a backtest journal): there is no report to write"
        )
    run = dict(header.get("report_run", {}))
    run["events"] = done.events
    run["elapsed_s"] = round(time.perf_counter() - began, 3)
    json_path, html_path = write_reports(report_dir, done.result, run)
    out.print(f"Report: {json_path}\n        {html_path}")
