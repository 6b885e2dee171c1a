"""The task layer: common flags for every task that works on hosts, and a clean exit on errors.

A fleet task is written with only its own parameters plus a ``fleet`` parameter; the
:func:`fleet_task` decorator adds the common flags (``-i``, ``-H``, ``-g``, ``--check``,
``--diff``, ``--json``, ``-v``, ``--parallel``, ``--batch``, ``--max-fail``, timeouts, host keys)
to what ``inv --help TASK`` shows, and hands the task a :class:`Fleet` built from them.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoke import Context, Task
from invoke.exceptions import Exit

from . import inventory as inventory_mod
from .errors import ToolkitError
from .inventory import Host, Inventory
from .output import emit, setup_logging
from .results import HostReport
from .runner import HostFn, RunOptions, run_hosts
from .secrets import redact, register
from .ssh import SUDO_PASSWORD_ENV, Connector, SSHOptions

log = logging.getLogger("regtk")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INVENTORY = str(REPO_ROOT / "hosts.yml")

SHORT_FLAGS = {"inventory": "i", "hosts": "H", "group": "g", "verbose": "v"}

COMMON: list[tuple[str, Any, str]] = [
    ("inventory", DEFAULT_INVENTORY, "inventory file (default: hosts.yml at the repository root)"),
    ("hosts", "", "only these hosts, comma-separated"),
    ("group", "", "only the hosts of this group"),
    ("verbose", 0, "-v shows the commands, -vv their output too"),
    ("json", False, "print the results as JSON on stdout"),
    ("parallel", 32, "how many hosts to work on at once"),
    ("connect_timeout", 10.0, "seconds to wait for an SSH connection"),
    ("command_timeout", 120.0, "seconds a remote command may take"),
    ("accept_new_host_keys", False, "accept and save host keys never seen before (logged)"),
    ("ssh_config", "", "read this ssh_config file instead of ~/.ssh/config"),
    ("ask_sudo_password", False, f"prompt for the sudo password (else ${SUDO_PASSWORD_ENV})"),
]
CHANGING: list[tuple[str, Any, str]] = [
    ("check", False, "show what would change, with diffs, and change nothing"),
    ("diff", False, "show the diffs of the files changed"),
    ("batch", "", "change hosts in batches of N hosts or P% (restarts roll through the fleet)"),
    ("max_fail", "0", "stop starting new batches once more than N hosts (or P%) failed"),
]


class FleetTask(Task):
    """A task whose common flags get their conventional short names (-i, -H, -g, -v)."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS:
            opts["names"].append(SHORT_FLAGS[name])
        return opts


@dataclass
class Fleet:
    """What a fleet task gets: the inventory, the chosen hosts, and how to run on them."""

    inventory: Inventory
    hosts: list[Host]
    options: RunOptions
    as_json: bool
    verbose: int

    def run(
        self, fn: HostFn, title: str, connector: Connector | None = None, show: bool = True
    ) -> list[HostReport]:
        """Run ``fn`` on every chosen host; print the results (JSON, or the table) if ``show``."""
        reports = run_hosts(self.inventory, self.hosts, fn, self.options, connector)
        if show:
            self.emit(reports, title)
        return reports

    def emit(self, reports: Sequence[HostReport], title: str) -> None:
        emit(reports, title, self.as_json, show_diffs=self.options.check or self.options.diff)

    def connector(self) -> Connector:
        return Connector(self.inventory, self.options.ssh)


def finish(reports: Sequence[HostReport]) -> None:
    """Exit non-zero when any host failed."""
    failed = [r.host for r in reports if r.status == "failed"]
    if failed:
        raise Exit(f"failed on {len(failed)} of {len(reports)} host(s): {', '.join(failed)}", 1)


def fleet_task(
    default_group: str | None = None, changes: bool = True, **task_kwargs: Any
) -> Callable[[Callable[..., Any]], FleetTask]:
    """Declare an Invoke task that works on hosts of the inventory.

    The wrapped function takes ``(c, <its own parameters>, fleet)``; ``default_group`` is the
    group it works on when neither ``-H`` nor ``-g`` is given (None: every host).
    """
    common = COMMON + (CHANGING if changes else [])

    def decorate(fn: Callable[..., Any]) -> FleetTask:
        own = [p for p in inspect.signature(fn).parameters.values() if p.name != "fleet"]
        extra = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default, _ in common
        ]
        own = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in own]
        extra = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in extra]

        @functools.wraps(fn)
        def wrapper(c: Context, *args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name, default) for name, default, _ in common}
            setup_logging(int(values["verbose"]))
            if values["ask_sudo_password"]:
                try:
                    password = getpass.getpass("sudo password: ")
                except EOFError:
                    raise Exit("no sudo password was typed", 2) from None
                os.environ[SUDO_PASSWORD_ENV] = register(password)
            try:
                inv = inventory_mod.load(values["inventory"])
                hosts = inv.select(values["hosts"] or None, values["group"] or None, default_group)
                options = RunOptions(
                    check=bool(values.get("check", False)),
                    diff=bool(values.get("diff", False)),
                    parallel=int(values["parallel"]),
                    batch=values.get("batch") or None,
                    max_fail=str(values.get("max_fail", "0")),
                    ssh=SSHOptions(
                        connect_timeout=float(values["connect_timeout"]),
                        command_timeout=float(values["command_timeout"]),
                        accept_new_host_keys=bool(values["accept_new_host_keys"]),
                        ssh_config=Path(values["ssh_config"]) if values["ssh_config"] else None,
                    ),
                )
                fleet = Fleet(inv, hosts, options, bool(values["json"]), int(values["verbose"]))
                return fn(c, *args, fleet=fleet, **kwargs)
            except ToolkitError as exc:
                print(redact(f"error: {exc}"), file=sys.stderr)
                raise Exit(code=2) from None

        wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
        helps = {name: text for name, _, text in common}
        helps.update(task_kwargs.pop("help", {}))
        return FleetTask(
            wrapper,
            help=helps,
            auto_shortflags=False,
            incrementable=["verbose"],
            **task_kwargs,
        )

    return decorate
