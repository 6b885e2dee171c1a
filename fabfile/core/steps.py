"""Change steps: ensure files, restart services, and put things back when a service will not start.

Every step reads first (the caller hands it what a :class:`~fabfile.core.probe.Probe` read),
changes only what differs, and records changed or unchanged with a reason. In check mode the
steps compute the same diffs and record what would change, and run nothing that changes a host.

Files are written the careful way: each new content goes to a temporary file beside its target,
gets its mode and owner, is validated, and only when every file of the batch validated are the
old ones backed up under ``/var/backups/regtk/`` and the new ones renamed into place. A
:class:`Backup` can put every file of the batch back as it was.
"""

from __future__ import annotations

import base64
import difflib
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .errors import HostError, StepError
from .inventory import Host
from .probe import RemoteFile
from .results import HostReport
from .ssh import Result, Session

BACKUP_ROOT = "/var/backups/regtk"


@dataclass
class HostContext:
    """What a task's per-host function works with: the host, its session and its report."""

    host: Host
    session: Session
    report: HostReport
    check: bool = False
    diff: bool = False
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%S"))

    def run(self, command: Sequence[str] | str, **kwargs: object) -> Result:
        """Run a command that changes nothing (safe in check mode), as root."""
        return self.session.run(command, sudo=True, **kwargs)  # type: ignore[arg-type]

    def change(self, command: Sequence[str] | str, step: str, reason: str) -> Result | None:
        """Run a command that changes the host; in check mode record it and run nothing."""
        text = command if isinstance(command, str) else shlex.join(command)
        if self.check:
            self.report.add(step, "changed", f"would run: {text} ({reason})")
            return None
        result = self.session.run(command, sudo=True)
        self.report.add(step, "changed", reason)
        return result


@dataclass
class FileSpec:
    """The content a file should have, and how to check a candidate before it replaces the old."""

    path: str
    content: bytes
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    validate: str | None = None
    """A shell command run on the candidate; ``{path}`` stands for the candidate's path."""
    reason: str = ""


@dataclass
class Backup:
    """Where the old versions of a batch of files went, so they can be put back."""

    entries: list[tuple[str, str | None]] = field(default_factory=list)
    """(path, backup path) pairs; ``None`` means the file did not exist before."""

    def __bool__(self) -> bool:
        return bool(self.entries)

    def extend(self, other: Backup) -> None:
        self.entries.extend(other.entries)


def unified_diff(old: RemoteFile, new: bytes, path: str) -> str:
    before = old.text.splitlines(keepends=True) if old.exists else []
    after = new.decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(
        before, after, f"{path} (on host)" if old.exists else "/dev/null", f"{path} (new)"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def differs(spec: FileSpec, current: RemoteFile) -> str | None:
    """Why the file must change, or None when it is already right."""
    if not current.exists:
        return "absent"
    if current.content != spec.content:
        return "content differs"
    if current.mode.lstrip("0") != spec.mode.lstrip("0"):
        return f"mode {current.mode} -> {spec.mode}"
    if (current.owner, current.group) != (spec.owner, spec.group):
        return f"owner {current.owner}:{current.group} -> {spec.owner}:{spec.group}"
    return None


def ensure_files(
    ctx: HostContext, specs: Sequence[FileSpec], current: dict[str, RemoteFile], step: str
) -> Backup:
    """Bring every file in ``specs`` to its content, in one command; report each one.

    Returns the backup of the files it replaced (empty when nothing changed or in check mode).
    """
    pending: list[tuple[FileSpec, RemoteFile]] = []
    for spec in specs:
        old = current[spec.path]
        why = differs(spec, old)
        name = f"{step} {spec.path}"
        if why is None:
            ctx.report.add(name, "unchanged", "already as wanted")
            continue
        diff = unified_diff(old, spec.content, spec.path) if old.content != spec.content else None
        reason = f"{why}; {spec.reason}" if spec.reason else why
        if ctx.check:
            ctx.report.add(name, "changed", f"would change: {reason}", diff)
        else:
            pending.append((spec, old))
            ctx.report.add(name, "changed", reason, diff if ctx.diff else None)
    if not pending or ctx.check:
        return Backup()
    backup_dir = f"{BACKUP_ROOT}/{ctx.run_id}"
    result = ctx.session.run(
        "sh -s", sudo=True, stdin=_write_script(pending, backup_dir).encode(), check=False
    )
    if result.exit_code != 0:
        for spec, _ in pending:
            ctx.report.steps = [s for s in ctx.report.steps if s.step != f"{step} {spec.path}"]
        detail = result.stderr.strip() or f"exit {result.exit_code}"
        raise StepError(ctx.host.name, f"{step}: writing files failed, nothing replaced: {detail}")
    return Backup([(s.path, f"{backup_dir}{s.path}" if old.exists else None) for s, old in pending])


def _write_script(pending: Sequence[tuple[FileSpec, RemoteFile]], backup_dir: str) -> str:
    """Stage every file, validate each candidate, then back up and rename them all into place."""
    stage: list[str] = [
        "set -e",
        "umask 077",
        "cleanup() { rm -f "
        + " ".join(shlex.quote(f"{s.path}.regtk-new") for s, _ in pending)
        + "; }",
        "trap cleanup EXIT",
    ]
    commit: list[str] = []
    for spec, old in pending:
        path = shlex.quote(spec.path)
        tmp = shlex.quote(f"{spec.path}.regtk-new")
        data = base64.b64encode(spec.content).decode()
        stage += [
            f'(umask 022; mkdir -p "$(dirname {path})")',
            f"printf '%s' {shlex.quote(data)} | base64 -d > {tmp}",
            f"chmod {shlex.quote(spec.mode)} {tmp}",
            f"chown {shlex.quote(spec.owner + ':' + spec.group)} {tmp}",
        ]
        if spec.validate:
            check = spec.validate.format(path=tmp)
            stage.append(
                f'if ! out=$({check} 2>&1); then echo "validation of {spec.path} failed: '
                f'$out" >&2; exit 3; fi'
            )
        if old.exists:
            saved = shlex.quote(f"{backup_dir}{spec.path}")
            commit += [f'(umask 022; mkdir -p "$(dirname {saved})")', f"cp -p {path} {saved}"]
        commit.append(f"mv -f {tmp} {path}")
    return "\n".join([*stage, *commit, "trap - EXIT"]) + "\n"


def restore(ctx: HostContext, backup: Backup) -> None:
    """Put every file of ``backup`` back as it was (remove the ones that did not exist)."""
    lines = ["set -e"]
    for path, saved in backup.entries:
        if saved is None:
            lines.append(f"rm -f {shlex.quote(path)}")
        else:
            tmp = shlex.quote(f"{path}.regtk-restore")
            lines += [f"cp -p {shlex.quote(saved)} {tmp}", f"mv -f {tmp} {shlex.quote(path)}"]
    ctx.session.run("sh -s", sudo=True, stdin=("\n".join(lines) + "\n").encode())
    ctx.report.add("restore", "changed", "put back " + ", ".join(p for p, _ in backup.entries))


@dataclass(frozen=True)
class ServiceState:
    active: str
    sub: str
    main_pid: int
    restarts: int
    since: str


def service_state(session: Session, name: str) -> ServiceState:
    out = session.run(
        [
            "systemctl",
            "show",
            "-p",
            "ActiveState,SubState,MainPID,NRestarts,ActiveEnterTimestamp",
            name,
        ],
        sudo=True,
    ).stdout
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return ServiceState(
        props.get("ActiveState", ""),
        props.get("SubState", ""),
        int(props.get("MainPID", "0") or 0),
        int(props.get("NRestarts", "0") or 0),
        props.get("ActiveEnterTimestamp", ""),
    )


def wait_running(
    session: Session, name: str, settle: float = 2.0, timeout: float = 30.0
) -> str | None:
    """Wait until ``name`` is active with the same main process for ``settle`` seconds.

    Returns None when it is, else what was seen (for the failure message).
    """
    deadline = time.monotonic() + timeout
    stable_since: float | None = None
    last: ServiceState | None = None
    while time.monotonic() < deadline:
        state = service_state(session, name)
        if state.active == "active" and state.main_pid > 0:
            if last is None or state.main_pid != last.main_pid or last.active != "active":
                stable_since = time.monotonic()
            elif stable_since is not None and time.monotonic() - stable_since >= settle:
                return None
        else:
            stable_since = None
            if state.active == "failed":
                break
        last = state
        time.sleep(0.25)
    seen = f"{last.active}/{last.sub}" if last else "unknown"
    journal = session.run(
        ["journalctl", "-u", name, "-n", "8", "--no-pager", "-o", "cat"], sudo=True, check=False
    ).stdout.strip()
    return f"{name} is {seen}" + (
        f"; its log ends: {' | '.join(journal.splitlines())}" if journal else ""
    )


def restart_and_verify(
    ctx: HostContext,
    service: str,
    backup: Backup,
    reason: str,
    verify: Callable[[], str | None] | None = None,
    action: str = "restart",
) -> bool:
    """Restart (or reload) ``service`` and check it runs; on failure restore ``backup`` and retry.

    ``verify`` may check more than "running" (the settings took effect); it returns None when
    all is well, else what is wrong. Returns True when the service runs as intended.
    """
    step = f"{action} {service}"
    if ctx.check:
        ctx.report.add(step, "changed", f"would {action}: {reason}")
        return True
    if action == "reload" and service_state(ctx.session, service).active != "active":
        action, step = "restart", f"restart {service}"
    problem: str | None
    try:
        ctx.session.run(["systemctl", action, service], sudo=True, check=False)
        problem = wait_running(ctx.session, service)
    except HostError as exc:
        problem = exc.detail
    if problem is None and verify is not None:
        problem = verify()
    if problem is None:
        ctx.report.add(step, "changed", reason)
        return True
    ctx.report.add(step, "failed", problem)
    if backup:
        restore(ctx, backup)
        ctx.session.run(["systemctl", "restart", service], sudo=True, check=False)
        after = wait_running(ctx.session, service)
        if after is None:
            ctx.report.add(f"{step} after restore", "changed", "running again with the old files")
        else:
            ctx.report.add(f"{step} after restore", "failed", after)
    return False
