"""What each lab host gets before its first boot (no running lab needed)."""

from __future__ import annotations

import io
import tarfile

import pytest

from fabfile.lab import hostfiles
from fabfile.lab.hosts import by_name

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxhYmtleWxhYmtleWxhYmtleWxhYmtleWxhYmtleQ test"
UNITS = "etc/systemd/system"


def _members(name: str) -> dict[str, tarfile.TarInfo]:
    data = hostfiles.archive(by_name(name), KEY)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {member.name: member for member in tar.getmembers()}


def _text(name: str, path: str) -> str:
    data = hostfiles.archive(by_name(name), KEY)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        extracted = tar.extractfile(path)
        assert extracted is not None
        return extracted.read().decode()


MASK_CASES = [
    ("gw1", {"docker.service", "docker.socket", "containerd.service"}),
    ("registry1", set()),
    ("node1", {"docker.service", "docker.socket"}),
    ("node3", set()),
    ("node4", {"docker.service", "docker.socket"}),
]


@pytest.mark.parametrize(("name", "masked"), MASK_CASES)
def test_role_masks_the_services_it_must_not_run(name: str, masked: set[str]) -> None:
    members = _members(name)
    found = {
        path.rsplit("/", 1)[1]
        for path, member in members.items()
        if member.issym() and member.linkname == "/dev/null"
    }
    assert found - {"apt-daily.timer", "apt-daily-upgrade.timer"} == masked


FILE_CASES = [
    ("node1", "var/lib/kubelet/kubeadm-flags.env", "--container-runtime-endpoint=unix:///run"),
    (
        "node1",
        f"{UNITS}/kubelet.service.d/10-kubeadm.conf",
        "EnvironmentFile=-/etc/default/kubelet",
    ),
    ("node1", "etc/default/kubelet", "KUBELET_EXTRA_ARGS="),
    ("node1", "etc/kubelet-standin/version", "1.28.15"),
    ("node4", "etc/kubelet-standin/version", "1.35.0"),
    ("node3", "etc/sysconfig/kubelet", 'KUBELET_EXTRA_ARGS="--container-runtime=docker"'),
    ("node3", f"{UNITS}/kubelet.service", "EnvironmentFile=-/etc/sysconfig/kubelet"),
    ("node3", "etc/docker/daemon.json", '"bridge": "none"'),
    ("registry1", "etc/docker/daemon.json", '"iptables": false'),
    ("node2", "etc/sudoers.d/deploy", "deploy ALL=(ALL:ALL) ALL"),
    ("gw1", "etc/ssh/sshd_config.d/10-regtk-lab.conf", "ListenAddress 127.0.1.1:2222\n"),
    ("node2", "root/.ssh/authorized_keys", KEY),
]


@pytest.mark.parametrize(("name", "path", "holds"), FILE_CASES)
def test_host_file_holds(name: str, path: str, holds: str) -> None:
    assert holds in _text(name, path)


def test_kubeadm_flags_never_carry_the_pause_image_flag() -> None:
    for name in ("node1", "node2", "node4"):
        assert "pod-infra-container-image" not in _text(name, "var/lib/kubelet/kubeadm-flags.env")


def test_sudoers_file_is_read_only_and_kubelet_executable() -> None:
    members = _members("node2")
    assert members["etc/sudoers.d/deploy"].mode == 0o440
    assert members["usr/bin/kubelet"].mode == 0o755
    assert members["root/.ssh"].mode == 0o700


def test_archive_is_deterministic() -> None:
    host = by_name("node3")
    assert hostfiles.archive(host, KEY) == hostfiles.archive(host, KEY)
