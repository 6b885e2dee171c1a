"""The core on the lab: failures stay on their host, secrets stay out of every output."""

from __future__ import annotations

import os
import pty
import select
import time
from pathlib import Path

import pytest

from fabfile.lab import paths

from .helpers import REPO, by_host, inv, inv_json, lab_inventory, on

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True, scope="module")
def deployed(lab: object) -> None:
    inv("deploy-registry", "--skip-node-check")


def test_a_down_host_a_changed_key_and_a_wrong_sudo_password_each_fail_alone(tmp_path):
    known = tmp_path / "known_hosts"
    lines = paths.KNOWN_HOSTS.read_text().splitlines()
    other = next(ln for ln in lines if ln.startswith("[127.0.1.13]:")).split(" ", 1)[1]
    node1 = "[127.0.1.11]:2222"
    known.write_text(
        "\n".join(f"{node1} {other}" if ln.startswith(node1) else ln for ln in lines) + "\n"
    )
    inventory = lab_inventory(
        tmp_path,
        extra="  ghost:\n    address: 127.0.1.99\n",
        **{
            f"known_hosts: {REPO}/.lab/ssh/known_hosts": f"known_hosts: {known}",
            "sudo_password_file: ": "sudo_password_env: REGTK_TEST_WRONG\n    sudo_password_file: ",
        },
    )
    result = inv_json(
        "run",
        "-i",
        str(inventory),
        "--sudo",
        "--connect-timeout",
        "3",
        "true",
        ok=False,
        env={"REGTK_TEST_WRONG": "not-the-password"},
    )
    hosts = by_host(result)
    assert "cannot connect to root@127.0.1.99:2222" in hosts["ghost"]["error"]
    assert "differs from the one in" in hosts["node1"]["error"]
    assert "ssh-keygen -R" in hosts["node1"]["error"]
    assert "sudo rejected the password" in hosts["node2"]["error"]
    for name in ("gw1", "registry1", "node3", "node4"):
        assert hosts[name]["status"] == "changed", hosts[name]


def test_secrets_never_reach_any_output(tmp_path: Path) -> None:
    sudo_password = paths.DEPLOY_PASSWORD.read_text().strip()
    registry_password = paths.UPSTREAM_PASSWORD.read_text().strip()
    result = inv("run", "-H", "node2", "--sudo", "-vv", "echo done")
    assert "[node2] done" in result.stdout
    mirror = inv("mirror", "-vv", "--json")
    for text in (result.stdout, result.stderr, mirror.stdout, mirror.stderr):
        assert sudo_password not in text
        assert registry_password not in text


def test_a_command_that_waits_forever_is_stopped_at_the_timeout() -> None:
    result = inv_json("run", "-H", "node1", "--command-timeout", "2", "sleep 60", ok=False)
    assert "did not finish in 2s" in by_host(result)["node1"]["error"]
    assert on("node1", "pgrep -f 'sleep [6]0' || true").strip() == ""


def test_every_task_is_listed_and_every_flag_documented() -> None:
    listing = inv("--list").stdout
    for task in (
        "deploy-registry",
        "prepare-nodes",
        "trust-registry",
        "mirror",
        "bundle",
        "run",
        "put",
        "get",
        "registry.config",
        "registry.catalog",
        "registry.tags",
        "registry.inspect",
        "registry.delete",
        "registry.untag",
        "registry.gc",
        "nodes.report",
        "lab.up",
        "lab.down",
        "lab.status",
    ):
        assert f"  {task} " in listing, task
        helptext = inv("--help", task).stdout
        options = [ln for ln in helptext.splitlines() if ln.strip().startswith("-")]
        for line in options:
            assert len(line.split(None, 2)) >= 2, f"{task}: undocumented flag {line!r}"


def test_the_sudo_password_can_be_typed_at_a_prompt(tmp_path: Path) -> None:
    password = paths.DEPLOY_PASSWORD.read_text().strip()
    inventory = lab_inventory(
        tmp_path,
        **{f"sudo_password_file: {REPO}/.lab/secrets/deploy-sudo-password": "port: 2222"},
    )
    argv = [f"{REPO}/.venv/bin/inv", "run", "-i", str(inventory), "-H", "node2", "--sudo"]
    argv += ["--ask-sudo-password", "id -un"]
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(REPO)
        os.execv(argv[0], argv)
    seen = b""
    typed = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if not typed and b"sudo password:" in seen:
            os.write(fd, password.encode() + b"\n")
            typed = True
    _, status = os.waitpid(pid, 0)
    text = seen.decode("utf-8", "replace")
    assert typed and os.waitstatus_to_exitcode(status) == 0, text
    assert "[node2] root" in text
    assert password not in text
