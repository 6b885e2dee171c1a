"""One-off remote work: run a command, put a file, get a file, on a group or a list of hosts."""

from __future__ import annotations

from pathlib import Path

from invoke import Context
from rich.table import Table

from ..core.cli import Fleet, finish, fleet_task
from ..core.errors import ToolkitError
from ..core.output import console
from ..core.probe import Probe
from ..core.secrets import redact
from ..core.steps import FileSpec, HostContext, ensure_files

PUT_LIMIT = 16 * 1024 * 1024


@fleet_task(
    positional=["command"],
    help={
        "command": "the shell command to run on each host",
        "sudo": "run it as root (asks sudo for non-root logins)",
        "timeout": "seconds the command may take on each host (default: --command-timeout)",
    },
)
def run(
    c: Context, command: str, sudo: bool = False, timeout: float = 0.0, *, fleet: Fleet
) -> None:
    """Run COMMAND on every chosen host in parallel: output per host, then an exit-code table."""
    codes: dict[str, int] = {}

    def one(ctx: HostContext) -> None:
        if ctx.check:
            ctx.report.add("run", "changed", f"would run: {command}")
            return
        result = ctx.session.run(command, sudo=sudo, timeout=timeout or None, check=False)
        codes[ctx.host.name] = result.exit_code
        for line in (result.stdout + result.stderr).splitlines():
            print(redact(f"[{ctx.host.name}] {line}"), flush=True)
        if result.exit_code == 0:
            ctx.report.add("run", "changed", "exit 0")
        else:
            ctx.report.add("run", "failed", f"exit {result.exit_code}")

    reports = fleet.run(one, "run")
    if not fleet.as_json:
        table = Table(title="exit codes", title_justify="left")
        table.add_column("host")
        table.add_column("exit")
        for report in reports:
            code = codes.get(report.host)
            table.add_row(report.host, "-" if code is None else str(code))
        console().print(table)
    finish(reports)


@fleet_task(
    positional=["local", "remote"],
    help={
        "local": "the local file to send",
        "remote": "where it goes on each host (an absolute path)",
        "mode": "file mode on the host, for example 0644",
        "owner": "owner:group on the host",
    },
)
def put(
    c: Context,
    local: str,
    remote: str,
    mode: str = "0644",
    owner: str = "root:root",
    *,
    fleet: Fleet,
) -> None:
    """Send LOCAL to REMOTE on every chosen host: only where it differs, backed up, atomically."""
    source = Path(local)
    if not source.is_file():
        raise ToolkitError(f"{local}: no such file")
    if source.stat().st_size > PUT_LIMIT:
        raise ToolkitError(f"{local}: larger than {PUT_LIMIT // 2**20} MiB; copy it with scp/rsync")
    if not remote.startswith("/"):
        raise ToolkitError(f"{remote}: give an absolute path on the host")
    user, _, group = owner.partition(":")
    spec = FileSpec(remote, source.read_bytes(), mode, user, group or user, reason=f"from {local}")

    def one(ctx: HostContext) -> None:
        facts = Probe().file(remote).run(ctx.session)
        ensure_files(ctx, [spec], facts.files, "put")

    finish(fleet.run(one, "put"))


@fleet_task(
    changes=False,
    positional=["remote", "local"],
    help={
        "remote": "the file to fetch from each host",
        "local": "a local directory: each host's copy lands in LOCAL/<host>/<file name>",
    },
)
def get(c: Context, remote: str, local: str, *, fleet: Fleet) -> None:
    """Fetch REMOTE from every chosen host into LOCAL/<host>/."""

    def one(ctx: HostContext) -> None:
        facts = Probe().file(remote).run(ctx.session)
        found = facts.file(remote)
        if not found.exists:
            ctx.report.add("get", "failed", f"{remote} does not exist or is not a regular file")
            return
        target = Path(local) / ctx.host.name / Path(remote).name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.read_bytes() == found.content:
            ctx.report.add("get", "unchanged", f"{target} already has this content")
            return
        target.write_bytes(found.content)
        ctx.report.add("get", "changed", f"saved {len(found.content)} bytes to {target}")

    finish(fleet.run(one, "get"))
