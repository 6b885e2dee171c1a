"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest

import fabfile.lab
from fabfile.lab import HostStatus


@pytest.fixture(scope="session")
def lab() -> list[HostStatus]:
    """The running lab: brought up (idempotent, seconds when it already runs), then its status."""
    fabfile.lab.up()
    rows = fabfile.lab.status()
    down = [row.name for row in rows if row.state != "running"]
    assert not down, f"lab hosts not running after lab.up: {down}"
    return rows
