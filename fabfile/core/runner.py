"""Run a per-host function over many hosts: a bounded pool, optional batches, a failure threshold.

Each host goes through all its steps without waiting for the others (no barrier after each
step). With ``batch`` the hosts go through in batches, each batch finishing before the next
starts, and the run stops once more hosts failed than ``max_fail`` allows; hosts not reached are
reported as skipped. A failing host never stops or hides the others.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import secrets
from .errors import ToolkitError
from .inventory import Host, Inventory
from .results import HostReport
from .ssh import Connector, SSHOptions
from .steps import HostContext

log = logging.getLogger("regtk")

HostFn = Callable[[HostContext], None]


@dataclass
class RunOptions:
    """How a task runs over its hosts (the common task flags)."""

    check: bool = False
    diff: bool = False
    parallel: int = 32
    batch: str | None = None
    max_fail: str = "0"
    ssh: SSHOptions = field(default_factory=SSHOptions)


def _count(spec: str | None, total: int, name: str) -> int:
    """``"5"`` or ``"20%"`` of ``total``; percentages round up, so a batch is never empty."""
    if spec is None:
        return total
    text = str(spec).strip()
    try:
        value = math.ceil(total * float(text[:-1]) / 100) if text.endswith("%") else int(text)
    except ValueError:
        raise ToolkitError(
            f"--{name} {spec!r}: give a number or a percentage such as 25%"
        ) from None
    if value < 0:
        raise ToolkitError(f"--{name} {spec!r}: must not be negative")
    return value


def run_hosts(
    inventory: Inventory,
    hosts: Sequence[Host],
    fn: HostFn,
    options: RunOptions,
    connector: Connector | None = None,
) -> list[HostReport]:
    """Run ``fn`` on every host; return one report per host, in the order given."""
    own = connector is None
    connector = connector or Connector(inventory, options.ssh)
    reports = {h.name: HostReport(h.name) for h in hosts}
    jump_failures = connector.open_jumps(hosts)
    batch_size = max(1, _count(options.batch, len(hosts), "batch")) if hosts else 1
    allowed = _count(options.max_fail, len(hosts), "max-fail")
    failed = 0
    try:
        for start in range(0, len(hosts), batch_size):
            batch = hosts[start : start + batch_size]
            if failed > allowed:
                for host in batch:
                    reports[host.name].add(
                        "run", "skipped", f"not started: {failed} host(s) failed (max {allowed})"
                    )
                continue
            workers = max(1, min(options.parallel, len(batch)))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="host") as pool:
                for host in batch:
                    pool.submit(
                        _one, connector, host, fn, options, reports[host.name], jump_failures
                    )
            failed = sum(1 for r in reports.values() if r.status == "failed")
    finally:
        if own:
            connector.close()
    return [reports[h.name] for h in hosts]


def _one(
    connector: Connector,
    host: Host,
    fn: HostFn,
    options: RunOptions,
    report: HostReport,
    jump_failures: dict[str, str],
) -> None:
    if host.jump and host.jump in jump_failures:
        report.fail(f"jump host {host.jump} is unreachable: {jump_failures[host.jump]}")
        return
    try:
        session = connector.session(host)
        fn(HostContext(host, session, report, check=options.check, diff=options.diff))
    except ToolkitError as exc:
        report.fail(_strip_host(str(exc), host.name))
    except Exception as exc:  # one host's surprise must not hide the others
        log.debug("[%s] unexpected error", host.name, exc_info=True)
        report.fail(secrets.redact(f"unexpected {type(exc).__name__}: {exc}"))


def _strip_host(message: str, host: str) -> str:
    prefix = f"{host}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
