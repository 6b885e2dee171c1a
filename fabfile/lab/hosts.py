"""The lab's hosts: name, role, address, login and what runs on each.

This table matches ``hosts.yml`` at the repository root (a unit test holds them together): the
inventory says how the toolkit reaches each host, this table says how the lab builds it.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTAINER_PREFIX = "regtk-lab-"
# Not 22: a machine that runs its own sshd on 0.0.0.0:22 would keep the hosts from binding it.
SSH_PORT = 2222


@dataclass(frozen=True)
class Kubelet:
    """The kubelet stand-in on a node: the version it claims and the unit layout it is in.

    ``kubeadm`` is the layout of kubeadm's packages (a unit under /lib plus a drop-in reading
    /var/lib/kubelet/kubeadm-flags.env and /etc/default/kubelet); ``sysconfig`` is the older
    single unit reading /etc/sysconfig/kubelet.
    """

    version: str
    layout: str


@dataclass(frozen=True)
class LabHost:
    """One host of the lab. ``runtime`` is the engine that runs on it: containerd, docker, or
    None; ``jump`` names the host SSH goes through; ``user`` is the login the toolkit uses."""

    name: str
    role: str
    address: str
    user: str = "root"
    jump: str | None = None
    runtime: str | None = None
    kubelet: Kubelet | None = None

    @property
    def container(self) -> str:
        """The name of the container that is this host."""
        return CONTAINER_PREFIX + self.name


HOSTS: tuple[LabHost, ...] = (
    LabHost("gw1", "jump", "127.0.1.1"),
    LabHost("registry1", "registry", "127.0.1.2", runtime="docker"),
    LabHost(
        "node1", "node", "127.0.1.11", runtime="containerd", kubelet=Kubelet("1.28.15", "kubeadm")
    ),
    LabHost(
        "node2",
        "node",
        "127.0.1.12",
        user="deploy",
        jump="gw1",
        runtime="containerd",
        kubelet=Kubelet("1.28.15", "kubeadm"),
    ),
    LabHost(
        "node3", "node", "127.0.1.13", runtime="docker", kubelet=Kubelet("1.23.17", "sysconfig")
    ),
    LabHost(
        "node4", "node", "127.0.1.14", runtime="containerd", kubelet=Kubelet("1.35.0", "kubeadm")
    ),
)

UPSTREAM_NAME = "upstream"
UPSTREAM_ADDRESS = "127.0.3.1"
UPSTREAM_PORT = 5443
UPSTREAM_HOSTNAME = "upstream.regtk-lab.internal"
UPSTREAM_USER = "lab"
UPSTREAM_CONTAINER = CONTAINER_PREFIX + UPSTREAM_NAME


def by_name(name: str) -> LabHost:
    """The lab host called ``name``."""
    for host in HOSTS:
        if host.name == name:
            return host
    known = ", ".join(h.name for h in HOSTS)
    raise KeyError(f"no lab host named {name!r}; the lab has {known}")
