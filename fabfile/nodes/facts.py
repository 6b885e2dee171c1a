"""What a node runs, read in one round trip: runtimes, kubelet, their files, and their images."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import HostError
from ..core.probe import Facts, Output, Probe, RemoteFile
from ..core.steps import HostContext
from ..runtimes.containerd import CONFIG_PATH
from ..runtimes.docker import DAEMON_JSON, docker_ca_path
from ..runtimes.hosts import default_ca_path, hosts_toml_path
from ..runtimes.systemd import parse_service
from ..runtimes.versions import (
    Version,
    parse_containerd_version,
    parse_docker_version,
    parse_kubelet_version,
)

KUBELET_ENV_FILES = (
    "/var/lib/kubelet/kubeadm-flags.env",
    "/etc/default/kubelet",
    "/etc/sysconfig/kubelet",
    "/etc/kubernetes/kubelet",
)
DOCKER_ENV_FILES = ("/etc/default/docker", "/etc/sysconfig/docker")
DOCKER_CLIENT_CONFIG = "/root/.docker/config.json"
_ENDPOINT = re.compile(r"--container-runtime-endpoint[= ]+[\"']?([^\s\"']+)")
_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


@dataclass
class RuntimeFacts:
    """A host's container runtimes and their files, as read by :func:`gather_runtime`."""

    arch: str
    containerd: Version | None
    docker: Version | None
    tools: frozenset[str]
    docker_unit: str
    active: dict[str, str]
    files: dict[str, RemoteFile]
    images: str

    def text(self, path: str) -> str | None:
        found = self.files.get(path)
        return found.text if found is not None and found.exists else None

    @property
    def runtime(self) -> str:
        """The engine that pulls on this host: Docker when it runs, else containerd if it runs."""
        for engine in ("docker", "containerd"):
            if self.active.get(engine) == "active":
                return engine
        return ""


@dataclass
class NodeFacts(RuntimeFacts):
    """A Kubernetes node as read by :func:`gather`: the runtimes and the kubelet."""

    kubelet: Version
    kubelet_unit: str
    kubelet_pid: int
    kubelet_cmdline: str

    @property
    def runtime(self) -> str:
        """The runtime the kubelet talks to: containerd, docker or cri-o."""
        texts = [self.kubelet_unit, *(self.text(p) or "" for p in KUBELET_ENV_FILES)]
        match = _ENDPOINT.search("\n".join(texts))
        if match:
            endpoint = match.group(1)
            if "cri-dockerd" in endpoint:
                return "docker"
            if "crio" in endpoint:
                return "cri-o"
            return "containerd"
        if self.kubelet < Version(1, 24, 0) and self.docker is not None:
            return "docker"
        return "containerd"


def registry_paths(endpoint: str) -> tuple[str, ...]:
    return (
        hosts_toml_path(endpoint),
        default_ca_path(endpoint),
        docker_ca_path(endpoint),
    )


def _runtime_probe(endpoint: str) -> Probe:
    return (
        Probe()
        .command("arch", ["uname", "-m"])
        .command("containerd", ["containerd", "--version"])
        .command("docker", ["dockerd", "--version"])
        .command("tools", "for t in crictl ctr cri-dockerd crio docker; do command -v $t; done")
        .command("docker_unit", ["systemctl", "cat", "docker"])
        .command("active", ["systemctl", "is-active", "containerd", "docker", "kubelet"])
        .command(
            "images",
            "if command -v ctr >/dev/null; then ctr -n k8s.io images ls; fi; "
            "if systemctl -q is-active docker 2>/dev/null; then "
            "docker images --digests --format '{{.Repository}}:{{.Tag}} {{.Digest}}'; fi",
        )
        .file(CONFIG_PATH, DAEMON_JSON, DOCKER_CLIENT_CONFIG, *registry_paths(endpoint))
        .file(*DOCKER_ENV_FILES)
    )


def _runtime_fields(facts: Facts) -> dict[str, Any]:
    arch = facts.out("arch").text.strip()
    return {
        "arch": _ARCH.get(arch, arch),
        "containerd": _version(facts.out("containerd"), parse_containerd_version),
        "docker": _version(facts.out("docker"), parse_docker_version),
        "tools": frozenset(p.rsplit("/", 1)[-1] for p in facts.out("tools").text.split()),
        "docker_unit": facts.out("docker_unit").text if facts.out("docker_unit").ok else "",
        "active": dict(
            zip(("containerd", "docker", "kubelet"), facts.out("active").text.split(), strict=False)
        ),
        "files": dict(facts.files),
        "images": facts.out("images").text,
    }


def gather_runtime(ctx: HostContext, endpoint: str) -> RuntimeFacts:
    """Read a host's runtimes and their files (a build host or workstation: no kubelet)."""
    return RuntimeFacts(**_runtime_fields(_runtime_probe(endpoint).run(ctx.session)))


def gather(ctx: HostContext, endpoint: str) -> NodeFacts:
    """Read everything prepare-nodes and nodes.report need from ``ctx.host``."""
    probe = (
        _runtime_probe(endpoint)
        .command("kubelet", ["kubelet", "--version"])
        .command("kubelet_unit", ["systemctl", "cat", "kubelet"])
        .command(
            "kubelet_cmdline",
            'p=$(systemctl show -p MainPID --value kubelet); echo "$p"; '
            '[ "$p" -gt 0 ] 2>/dev/null && tr "\\0" " " < /proc/$p/cmdline',
        )
        .file(*KUBELET_ENV_FILES)
    )
    facts = probe.run(ctx.session)
    kubelet = facts.out("kubelet")
    if not kubelet.ok:
        raise HostError(ctx.host.name, f"no kubelet here (`kubelet --version`: {kubelet.text})")
    unit = facts.out("kubelet_unit")
    if not unit.ok:
        raise HostError(ctx.host.name, f"systemd has no kubelet unit: {unit.text}")
    fields = _runtime_fields(facts)
    extra = [
        ref.path
        for ref in parse_service(unit.text, "kubelet").environment_files
        if ref.path not in facts.files
    ]
    if extra:
        fields["files"].update(Probe().file(*extra).run(ctx.session).files)
    pid_line, _, cmdline = facts.out("kubelet_cmdline").text.partition("\n")
    return NodeFacts(
        **fields,
        kubelet=parse_kubelet_version(kubelet.text),
        kubelet_unit=unit.text,
        kubelet_pid=int(pid_line.strip()) if pid_line.strip().isdigit() else 0,
        kubelet_cmdline=cmdline,
    )


def _version(output: Output, parse: Callable[[str], Version]) -> Version | None:
    if not output.ok or not output.text.strip():
        return None
    return parse(output.text)


def image_digests(facts: RuntimeFacts) -> dict[str, str]:
    """Image name -> manifest digest, from ``ctr images ls`` and ``docker images --digests``."""
    found: dict[str, str] = {}
    for line in facts.images.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("sha256:"):
            found[fields[0]] = fields[2]
        elif len(fields) == 2 and fields[1].startswith("sha256:"):
            found[fields[0]] = fields[1]
    return found


def image_names(facts: RuntimeFacts) -> set[str]:
    """Every image name the node's runtimes hold."""
    names = set()
    for line in facts.images.splitlines():
        fields = line.split()
        if fields and fields[0] not in ("REF",) and ":" in fields[0]:
            names.add(fields[0])
    return names


def pinned_images(facts: RuntimeFacts) -> set[str]:
    """Images that carry containerd's ``io.cri-containerd.pinned=pinned`` label."""
    return {
        line.split()[0]
        for line in facts.images.splitlines()
        if "io.cri-containerd.pinned=pinned" in line
    }
