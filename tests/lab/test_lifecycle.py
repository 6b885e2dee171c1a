"""``lab.up`` is idempotent and ``lab.status`` lists every host."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import fabfile.lab
from fabfile.lab import HostStatus, paths
from fabfile.lab.hosts import HOSTS

pytestmark = pytest.mark.lab


def test_second_up_changes_nothing_and_is_fast(lab: list[HostStatus]) -> None:
    started = time.monotonic()
    outcomes = fabfile.lab.up()
    took = time.monotonic() - started
    changed = [o.line() for o in outcomes if o.changed]
    assert changed == []
    assert took < 30, f"a second lab.up took {took:.1f} s"


def test_status_lists_every_host_running(lab: list[HostStatus]) -> None:
    rows = {row.name: row for row in fabfile.lab.status()}
    for host in HOSTS:
        row = rows[host.name]
        assert (row.role, row.address, row.user, row.container, row.state) == (
            host.role,
            host.address,
            host.user,
            host.container,
            "running",
        )
    assert rows["upstream"].state == "running"


def test_status_task_prints_json(lab: list[HostStatus]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(paths.REPO), "lab.status", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=paths.REPO,
    )
    if "No idea what 'lab.status' is" in done.stderr:
        pytest.skip("tasks.py does not include the lab collection yet")
    assert done.returncode == 0, done.stderr
    names = {row["name"] for row in json.loads(done.stdout)}
    assert names == {h.name for h in HOSTS} | {"upstream"}
