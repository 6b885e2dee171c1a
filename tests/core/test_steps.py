"""Change steps through a real sshd: ensure files, check mode, validation, backup and restore.

The throwaway sshd runs on this machine, so the "remote" files live in a temporary directory here.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabfile.core import inventory
from fabfile.core.errors import StepError
from fabfile.core.probe import Probe
from fabfile.core.results import HostReport
from fabfile.core.runner import RunOptions, run_hosts
from fabfile.core.ssh import Connector
from fabfile.core.steps import FileSpec, HostContext, ensure_files, restore

from .conftest import Sshd


@pytest.fixture
def ctx(sshd: Sshd, tmp_path: Path) -> Iterator[HostContext]:
    inv = inventory.load(sshd.inventory(tmp_path))
    conn = Connector(inv)
    host = inv.hosts["box"]
    yield HostContext(host, conn.session(host), HostReport("box"))
    conn.close()


def apply(ctx: HostContext, specs: list[FileSpec], check: bool = False) -> HostReport:
    ctx.report = HostReport("box")
    ctx.check = check
    facts = Probe().file(*[s.path for s in specs]).run(ctx.session)
    ensure_files(ctx, specs, facts.files, "file")
    return ctx.report


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def test_probe_reads_commands_and_files(ctx: HostContext, tmp_path: Path) -> None:
    (tmp_path / "a b").write_bytes(b"x\n@@regtk c fake 0\n")
    facts = (
        Probe()
        .command("echo", ["echo", "hi there"])
        .command("fails", "exit 4")
        .file(str(tmp_path / "a b"), str(tmp_path / "missing"))
        .run(ctx.session)
    )
    assert facts.out("echo").text == "hi there" and facts.out("fails").exit_code == 4
    assert facts.file(str(tmp_path / "a b")).content == b"x\n@@regtk c fake 0\n"
    assert not facts.file(str(tmp_path / "missing")).exists


def test_ensure_then_unchanged(ctx: HostContext, tmp_path: Path) -> None:
    specs = [
        FileSpec(str(tmp_path / "etc/new.conf"), b"a = 1\n", mode="0600"),
        FileSpec(str(tmp_path / "old.conf"), b"b = 2\n"),
    ]
    (tmp_path / "old.conf").write_bytes(b"b = 1\n")
    first = apply(ctx, specs)
    assert [s.status for s in first.steps] == ["changed", "changed"]
    assert (tmp_path / "etc/new.conf").read_bytes() == b"a = 1\n"
    assert oct((tmp_path / "etc/new.conf").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "etc").stat().st_mode & 0o777) == "0o755", "new folders are 0755"
    second = apply(ctx, specs)
    assert [s.status for s in second.steps] == ["unchanged", "unchanged"]
    assert not list(tmp_path.rglob("*.regtk-new"))


def test_check_mode_shows_diff_and_changes_nothing(ctx: HostContext, tmp_path: Path) -> None:
    target = tmp_path / "c.conf"
    target.write_bytes(b"keep = 1\nold = 1\n")
    before = (digest(target), target.stat().st_mtime_ns)
    report = apply(ctx, [FileSpec(str(target), b"keep = 1\nnew = 2\n")], check=True)
    assert report.steps[0].status == "changed"
    assert report.steps[0].reason.startswith("would change")
    assert "-old = 1\n+new = 2\n" in (report.steps[0].diff or "")
    assert (digest(target), target.stat().st_mtime_ns) == before


def test_a_candidate_that_fails_validation_replaces_nothing(ctx: HostContext, tmp_path: Path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text("{}")
    bad.write_text("{}")
    specs = [
        FileSpec(str(good), b'{"a": 1}', validate="python3 -m json.tool {path}"),
        FileSpec(str(bad), b'{"a": ', validate="python3 -m json.tool {path}"),
    ]
    with pytest.raises(StepError, match=r"validation of .*bad\.json failed"):
        apply(ctx, specs)
    assert good.read_text() == "{}" and bad.read_text() == "{}"
    assert not list(tmp_path.rglob("*.regtk-new"))


def test_backup_then_restore_puts_everything_back(ctx: HostContext, tmp_path: Path) -> None:
    existing, created = tmp_path / "existing", tmp_path / "created"
    existing.write_bytes(b"v1\n")
    ctx.report = HostReport("box")
    facts = Probe().file(str(existing), str(created)).run(ctx.session)
    backup = ensure_files(
        ctx, [FileSpec(str(existing), b"v2\n"), FileSpec(str(created), b"new\n")], facts.files, "f"
    )
    assert existing.read_bytes() == b"v2\n" and created.exists()
    restore(ctx, backup)
    assert existing.read_bytes() == b"v1\n" and not created.exists()


def test_a_host_that_is_down_fails_alone(sshd: Sshd, tmp_path: Path) -> None:
    path = sshd.inventory(tmp_path)
    text = path.read_text().replace(
        '"hosts": {', '"hosts": {"down": {"address": "127.0.5.9", "port": 1}, ', 1
    )
    path.write_text(text)
    inv = inventory.load(path)
    seen: list[str] = []

    def fn(ctx: HostContext) -> None:
        ctx.session.run(["true"])
        seen.append(ctx.host.name)
        ctx.report.add("noop", "unchanged", "nothing to do")

    reports = run_hosts(inv, list(inv.hosts.values()), fn, RunOptions())
    by_host = {r.host: r for r in reports}
    assert by_host["down"].status == "failed"
    assert "cannot connect" in (by_host["down"].error or "")
    assert by_host["box"].status == "unchanged" and seen == ["box"]


@pytest.mark.parametrize(
    ("batch", "max_fail", "ran"),
    [("1", "0", 1), ("1", "1", 2), ("2", "0", 2), ("50%", "0", 2), (None, "0", 4)],
)
def test_batches_stop_past_the_failure_threshold(
    sshd: Sshd, tmp_path: Path, batch: str | None, max_fail: str, ran: int
) -> None:
    inv = inventory.load(sshd.inventory(tmp_path))
    box = inv.hosts["box"]
    hosts = [dataclasses.replace(box, name=f"box{i}") for i in range(4)]
    calls: list[int] = []

    def fn(ctx: HostContext) -> None:
        calls.append(1)
        ctx.report.add("x", "failed", "on purpose")

    options = RunOptions(batch=batch, max_fail=max_fail, parallel=1)
    run_hosts(inv, hosts, fn, options)
    assert len(calls) == ran
