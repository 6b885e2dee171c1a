"""Every lab host answers SSH with its own key and runs its role's software."""

from __future__ import annotations

import pytest

from fabfile.lab import HostStatus, images, paths
from fabfile.lab.hosts import HOSTS, SSH_PORT, LabHost, by_name
from tests.lab.hostssh import run, run_as_root, session

pytestmark = pytest.mark.lab

KUBELET_NODES = [h for h in HOSTS if h.kubelet is not None]
CONTAINERD_NODES = [h for h in HOSTS if h.runtime == "containerd"]


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.name)
def test_ssh_reaches_host_as_its_user(lab: list[HostStatus], host: LabHost) -> None:
    with session(host) as ssh:
        result = run(ssh, "id -un; cat /etc/ssh/sshd_config.d/10-regtk-lab.conf")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == host.user
    assert f"ListenAddress {host.address}" in result.out


def test_every_host_has_its_own_host_key(lab: list[HostStatus]) -> None:
    keys: dict[str, str] = {}
    for line in paths.KNOWN_HOSTS.read_text().splitlines():
        address, kind, key = line.split()
        if kind == "ssh-ed25519":
            keys[address] = key
    assert sorted(keys) == sorted(f"[{h.address}]:{SSH_PORT}" for h in HOSTS)
    assert len(set(keys.values())) == len(HOSTS)


def test_registry_host_engine_holds_registry_image(lab: list[HostStatus]) -> None:
    host = by_name("registry1")
    with session(host) as ssh:
        listed = run(ssh, "docker image ls --format '{{.Repository}}:{{.Tag}}'")
    assert listed.code == 0, listed.err
    assert set(images.REGISTRY_TAGS) <= set(listed.out.split())


@pytest.mark.parametrize("host", CONTAINERD_NODES, ids=lambda h: h.name)
def test_containerd_node_answers_ctr_version(lab: list[HostStatus], host: LabHost) -> None:
    with session(host) as ssh:
        version = run_as_root(ssh, host, "ctr version")
        docker = run(ssh, "systemctl is-enabled docker.service")
    assert version.code == 0, version.err
    assert "Version:  1.6." in version.out
    assert docker.out.strip() == "masked"


def test_docker_node_answers_docker_info(lab: list[HostStatus]) -> None:
    host = by_name("node3")
    with session(host) as ssh:
        info = run(ssh, "docker info --format '{{.ServerVersion}} {{.Driver}}'")
        bridge = run(ssh, "ip link show docker0")
    assert info.code == 0, info.err
    assert info.out.split()[0].startswith("20.10")
    assert bridge.code != 0, "the docker node's engine must not create a bridge"


@pytest.mark.parametrize("host", KUBELET_NODES, ids=lambda h: h.name)
def test_kubelet_standin_is_active_with_claimed_version(
    lab: list[HostStatus], host: LabHost
) -> None:
    assert host.kubelet is not None
    with session(host) as ssh:
        active = run(ssh, "systemctl is-active kubelet")
        version = run(ssh, "kubelet --version")
        pid = run(ssh, "systemctl show --property MainPID --value kubelet").out.strip()
        cmdline = run_as_root(ssh, host, f"cat /proc/{pid}/cmdline")
    assert active.out.strip() == "active"
    assert version.out.strip() == f"Kubernetes v{host.kubelet.version}"
    flags = cmdline.out.split("\0")
    if host.kubelet.layout == "kubeadm":
        assert "--container-runtime-endpoint=unix:///run/containerd/containerd.sock" in flags
    else:
        assert "--container-runtime=docker" in flags
    if int(host.kubelet.version.split(".")[1]) >= 35:
        assert not any(f.startswith("--pod-infra-container-image") for f in flags)


KUBELET_FLAG_CASES = [
    ("node4", "--pod-infra-container-image=pause:3.10 --version", 1, "unknown flag: --pod-infra"),
    ("node1", "--pod-infra-container-image=pause:3.9 --version", 0, "Kubernetes v1.28.15"),
    ("node3", "--container-runtime=docker --version", 0, "Kubernetes v1.23.17"),
    ("node1", "--container-runtime=docker --version", 1, "unknown flag: --container-runtime"),
    ("node4", "--version", 0, "Kubernetes v1.35.0"),
]


@pytest.mark.parametrize(("name", "flags", "code", "said"), KUBELET_FLAG_CASES)
def test_kubelet_standin_refuses_flags_its_version_dropped(
    lab: list[HostStatus], name: str, flags: str, code: int, said: str
) -> None:
    with session(by_name(name)) as ssh:
        result = run(ssh, f"/usr/bin/kubelet {flags}")
    assert result.code == code
    assert said in result.out + result.err


def test_kubelet_restart_is_visible(lab: list[HostStatus]) -> None:
    host = by_name("node1")
    show = "systemctl show --property MainPID --property ActiveEnterTimestampMonotonic kubelet"
    with session(host) as ssh:
        before = run(ssh, f"{show}; cat /run/kubelet-standin/started").out
        assert run(ssh, "systemctl restart kubelet").code == 0
        after = run(ssh, f"{show}; cat /run/kubelet-standin/started").out
    before_lines, after_lines = before.splitlines(), after.splitlines()
    assert all(b != a for b, a in zip(before_lines, after_lines, strict=True)), (before, after)


def test_sudo_on_node2_asks_for_the_password(lab: list[HostStatus]) -> None:
    host = by_name("node2")
    with session(host) as ssh:
        without = run(ssh, "sudo -n true")
        wrong = run(ssh, "sudo -S -p '' true", stdin="not-the-password\n")
        right = run_as_root(ssh, host, "id -un")
    assert without.code != 0
    assert "a password is required" in without.err
    assert wrong.code != 0
    assert right.code == 0
    assert right.out.strip() == "root"


def test_node2_is_reached_through_gw1(lab: list[HostStatus]) -> None:
    host = by_name("node2")
    assert host.jump == "gw1"
    with session(host) as ssh:
        seen = run(ssh, "echo $SSH_CONNECTION").out.split()
    assert seen[2] == host.address
