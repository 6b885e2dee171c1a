"""The test suite's own guard: a connection to anything but loopback fails before it is made."""

from __future__ import annotations

import socket

import pytest


def test_a_non_loopback_address_is_refused_before_connecting() -> None:
    with socket.socket() as sock, pytest.raises(AssertionError, match=r"127\.0\.0\.0/8 only"):
        sock.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed; refused before any packet


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
