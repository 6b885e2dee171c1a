"""Fixtures that start real registries (and sshd) on loopback and stop them afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fabfile.registry.client import RegistryClient
from tests.registry import servers


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator[Callable[..., servers.Registry]]:
    """Start registries with `start_registry(name, **options)`; all stop at teardown."""
    started: list[servers.Registry] = []

    def start(name: str = "registry", **options: Any) -> servers.Registry:
        registry = servers.start_registry(tmp_path / name, **options)
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()


@pytest.fixture
def ca(tmp_path: Path) -> tuple[servers.Certificate, servers.Certificate, str]:
    """A CA, a server certificate for the TLS name and the loopback IP, and the CA file path."""
    authority = servers.make_certificate("regtk test CA", is_ca=True)
    server = servers.make_certificate(servers.TLS_NAME, authority)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(authority.cert_pem)
    return authority, server, str(ca_file)


@pytest.fixture
def clients() -> Iterator[Callable[[Any], RegistryClient]]:
    """Make RegistryClients that are closed at teardown."""
    made: list[RegistryClient] = []

    def make(endpoint: Any) -> RegistryClient:
        client = RegistryClient(endpoint)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
