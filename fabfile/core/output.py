"""What a run prints: one log line per host per step, then a table with one row per host.

Log lines go to stderr, each prefixed with its host; ``-v`` adds the commands, ``-vv`` their
output. With ``--json`` the results go to stdout as JSON and nothing else is printed there.
Every line passes through the secret filter.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from .results import HostReport
from .secrets import RedactingFilter, redact

log = logging.getLogger("regtk")

OUTPUT_LEVEL = logging.DEBUG - 1
STYLES = {"changed": "yellow", "unchanged": "green", "failed": "bold red", "skipped": "dim"}


def setup_logging(verbose: int = 0) -> None:
    """Configure the ``regtk`` logger for a task run (idempotent)."""
    level = {0: logging.INFO, 1: logging.DEBUG}.get(verbose, OUTPUT_LEVEL)
    log.setLevel(level)
    log.propagate = False
    if not any(getattr(h, "_regtk", False) for h in log.handlers):
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(RedactingFilter())
        handler._regtk = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    for handler in log.handlers:
        handler.setLevel(level)


def console(stderr: bool = False) -> Console:
    """A rich console; when the output is not a terminal, wide enough for the tables."""
    out = Console(stderr=stderr, highlight=False)
    return out if out.is_terminal else Console(stderr=stderr, highlight=False, width=160)


def print_diffs(reports: Sequence[HostReport], out: Console) -> None:
    """Print every diff a run recorded, under its host and step."""
    for report in reports:
        for step in report.steps:
            if step.diff:
                out.print(f"[bold]--- {report.host}: {step.step}[/bold]")
                out.print(step.diff, markup=False, end="")


def summary_table(reports: Sequence[HostReport], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("host", "status", "changed", "unchanged", "failed", "why"):
        table.add_column(column, overflow="fold")
    for report in reports:
        counts = {s: sum(1 for x in report.steps if x.status == s) for s in STYLES}
        status = report.status
        table.add_row(
            report.host,
            f"[{STYLES[status]}]{status}[/]",
            str(counts["changed"]),
            str(counts["unchanged"]),
            str(counts["failed"] + (1 if report.error else 0)),
            redact(report.why),
        )
    return table


def emit(
    reports: Sequence[HostReport],
    title: str,
    as_json: bool = False,
    show_diffs: bool = False,
    extra: dict[str, Any] | None = None,
) -> None:
    """Print the results of a run: diffs when asked, then the table, or JSON on stdout."""
    if as_json:
        payload: dict[str, Any] = {"task": title, "hosts": [r.as_dict() for r in reports]}
        if extra:
            payload.update(extra)
        sys.stdout.write(redact(json.dumps(payload, indent=2, default=str)) + "\n")
        return
    out = console()
    if show_diffs:
        print_diffs(reports, out)
    out.print(summary_table(reports, title))
    for report in reports:
        for warning in report.warnings:
            out.print(f"[yellow]{report.host}: warning:[/] {warning}", markup=True)
