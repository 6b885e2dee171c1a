"""Invoke tasks for the local lab: ``lab.up``, ``lab.down``, ``lab.status``."""

from __future__ import annotations

import json as jsonlib
import time

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from fabfile.core.errors import ToolkitError
from fabfile.lab import lifecycle
from fabfile.lab.outcome import Outcome


def _print(outcome: Outcome) -> None:
    print(outcome.line(), flush=True)


@task
def up(c: Context) -> None:
    """Build what is missing and start the lab: Docker engine, images, hosts, upstream registry.

    Safe to run again: a second run changes nothing and says so. Everything the lab writes goes
    to .lab/ (root filesystems and synthetic images are cached in .lab/cache/).
    """
    started = time.monotonic()
    try:
        outcomes = lifecycle.up(report=_print)
    except ToolkitError as exc:
        raise Exit(f"lab.up failed: {exc}", code=1) from exc
    changed = sum(o.changed for o in outcomes)
    took = time.monotonic() - started
    summary = f"{changed} changed" if changed else "nothing changed"
    print(f"[lab] up in {took:.1f} s: {summary}; hosts listed by `inv lab.status`")


@task(
    iterable=["host"],
    help={"host": "a host to make anew (repeatable); every host when none is given"},
)
def reset(c: Context, host: list[str] | None = None) -> None:
    """Make lab hosts anew from their image, undoing every change made on them since lab.up.

    The hosts get new SSH host keys (known_hosts is rewritten); images, cache and the upstream
    registry stay as they are.
    """
    started = time.monotonic()
    try:
        lifecycle.reset(host or None, report=_print)
    except (ToolkitError, KeyError) as exc:
        raise Exit(f"lab.reset failed: {exc}", code=1) from exc
    print(f"[lab] reset in {time.monotonic() - started:.1f} s")


@task(help={"purge": "also remove the lab's images and its cache (.lab/ entirely)"})
def down(c: Context, purge: bool = False) -> None:
    """Stop and remove the lab's containers and its state in .lab/ (the cache stays).

    With --purge, also remove the lab's images and cache, so nothing of the lab remains. The
    Docker engine itself keeps running.
    """
    try:
        removed = lifecycle.down(purge=purge)
    except ToolkitError as exc:
        raise Exit(f"lab.down failed: {exc}", code=1) from exc
    for item in removed:
        print(f"[lab] removed {item}")
    print(
        f"[lab] down: removed {len(removed)} items" if removed else "[lab] down: nothing to remove"
    )


@task(help={"json": "print the table as JSON"})
def status(c: Context, json: bool = False) -> None:
    """List the lab's hosts: name, role, address, SSH user, container name and state."""
    rows = lifecycle.status_dicts()
    if json:
        print(jsonlib.dumps(rows, indent=2))
        return
    columns = ["name", "role", "address", "user", "container", "state"]
    widths = {col: max(len(col), *(len(row[col]) for row in rows)) for col in columns}
    print("  ".join(col.upper().ljust(widths[col]) for col in columns).rstrip())
    for row in rows:
        print("  ".join(row[col].ljust(widths[col]) for col in columns).rstrip())


ns = Collection("lab", up, reset, down, status)
