"""A throwaway sshd on a loopback address, for testing the SSH layer without the lab."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ADDRESS = "127.0.5.1"


@dataclass
class Sshd:
    address: str
    port: int
    key_file: Path
    known_hosts: Path
    host_key: Path
    workdir: Path

    def inventory(self, tmp: Path, **host: object) -> Path:
        box: dict[str, object] = {"address": self.address, "port": self.port}
        box.update(host)
        data = {
            "defaults": {
                "user": "root",
                "key_file": str(self.key_file),
                "known_hosts": str(self.known_hosts),
            },
            "hosts": {"box": box},
        }
        path = tmp / "hosts.yml"
        path.write_text(json.dumps(data, indent=2))
        return path


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs root and /usr/sbin/sshd")
    work = tmp_path_factory.mktemp("sshd")
    host_key = work / "host_ed25519"
    client_key = work / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    auth = work / "authorized_keys"
    auth.write_text(client_key.with_suffix(".pub").read_text())
    auth.chmod(0o600)
    port = _free_port(ADDRESS)
    config = work / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {ADDRESS}:{port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {auth}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "UsePAM no",
                "StrictModes no",
                f"PidFile {work}/sshd.pid",
                "Subsystem sftp internal-sftp",
                "MaxStartups 100:30:200",
                "MaxSessions 100",
            ]
        )
        + "\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((ADDRESS, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    known = work / "known_hosts"
    pub = host_key.with_suffix(".pub").read_text().split()
    known.write_text(f"[{ADDRESS}]:{port} {pub[0]} {pub[1]}\n")
    try:
        yield Sshd(ADDRESS, port, client_key, known, host_key, work)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
