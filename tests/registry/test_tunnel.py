"""Reaching a TLS registry through an SSH port forward, verifying its real name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from fabfile.registry.client import Endpoint, RegistryClient
from fabfile.registry.copy import ClientPool, copy_images
from fabfile.registry.errors import RegistryUnavailable
from fabfile.registry.reference import parse_reference
from fabfile.registry.tunnel import Tunnel
from tests.registry import images
from tests.registry.servers import TLS_NAME, Certificate, Registry, start_sshd

PASSWORD = "tunnel-Pa55"


@pytest.fixture
def ssh(tmp_path: Path) -> Iterator[paramiko.Transport]:
    sshd = start_sshd(tmp_path / "sshd")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        sshd.host,
        sshd.port,
        username=sshd.user,
        key_filename=str(sshd.key_file),
        look_for_keys=False,
        allow_agent=False,
    )
    transport = client.get_transport()
    assert transport is not None
    yield transport
    client.close()
    sshd.stop()


def test_copy_through_tunnel_keeps_tls_name_verification(
    start_registry: Callable[..., Registry],
    ca: tuple[Certificate, Certificate, str],
    ssh: paramiko.Transport,
) -> None:
    _, server, ca_file = ca
    src = start_registry("src")
    private = start_registry("private", tls=server, ca_file=ca_file, htpasswd={"ops": PASSWORD})
    image = images.make_index()
    with RegistryClient(src.endpoint()) as client:
        images.push(client, "pause", "3.10", image)

    with Tunnel(ssh, (private.host, private.port)) as tunnel:
        assert tunnel.address[0] == "127.0.0.1"
        endpoint = Endpoint(
            f"https://{TLS_NAME}:{private.port}",
            ca_file=ca_file,
            username="ops",
            password=PASSWORD,
            connect_to=tunnel.address,
        )
        pool = ClientPool({src.address: src.endpoint(), endpoint.host: endpoint})
        try:
            target = pool.client(endpoint.host)
            assert target.ping().status == 200
            report = copy_images(
                [
                    (
                        parse_reference(f"{src.address}/pause:3.10"),
                        parse_reference(f"{endpoint.host}/pause:3.10"),
                    )
                ],
                pool,
                target,
            )
        finally:
            pool.close()
        assert report.ok, report.images[0].error
        assert report.images[0].target_digest == image.digest

        wrong_name = Endpoint(
            f"https://wrong.regtk.test:{private.port}", ca_file=ca_file, connect_to=tunnel.address
        )
        with (
            RegistryClient(wrong_name) as client,
            pytest.raises(RegistryUnavailable, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.ping()

    with RegistryClient(private.endpoint(username="ops", password=PASSWORD)) as direct:
        assert direct.head_manifest("pause", "3.10") is not None
