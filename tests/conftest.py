"""Fixtures shared by every test folder."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

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


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _loopback_only(sock: socket.socket, address: object) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host = str(address[0])
        try:
            loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise AssertionError(f"a test tried to reach {address}: tests talk to 127.0.0.0/8 only")


def _guarded_connect(sock: socket.socket, address: object) -> None:
    _loopback_only(sock, address)
    _real_connect(sock, address)  # type: ignore[arg-type]


def _guarded_connect_ex(sock: socket.socket, address: object) -> int:
    _loopback_only(sock, address)
    return _real_connect_ex(sock, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Every connection a test makes from this process goes to a loopback address, or fails."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
