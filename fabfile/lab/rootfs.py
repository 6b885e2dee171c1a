"""Root filesystems for the lab's images, built locally and cached as tarballs.

The host root filesystem is a Debian bookworm made by mmdebstrap with systemd, sshd, containerd
and the Docker engine; each host's role decides which of them run. The registry root filesystem
holds only Debian's distribution registry binary, the C library and the dynamic loader, since the
public ``registry:2`` image cannot be pulled here.

Each tarball is named by a hash of its inputs, so a change of inputs builds a new one and an
unchanged input reuses the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
from pathlib import Path

from fabfile.lab import paths
from fabfile.lab.commands import LabError, run

SUITE = "bookworm"
HOST_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "ca-certificates",
    "curl",
    "sudo",
    "procps",
    "containerd",
    "docker.io",
]
_MMDEBSTRAP_OPTIONS = [
    "--variant=apt",
    "--aptopt=Apt::Install-Recommends false",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    # Every host makes its own SSH host keys at first boot; the image must carry none.
    '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_*',
]

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
REGISTRY_CONFIG = """\
# The distribution registry's configuration in this image. The listening address defaults to
# loopback; a deployment sets its own (REGISTRY_HTTP_ADDR or a mounted config).
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: 127.0.0.1:5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


def digest_of(*parts: str | bytes) -> str:
    """A short, stable hash of the given inputs, used to name cached builds."""
    h = hashlib.sha256()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
    return h.hexdigest()[:12]


def host_rootfs_key() -> str:
    """The hash naming the host root filesystem for the current package list and options."""
    return digest_of(SUITE, json.dumps(HOST_PACKAGES), json.dumps(_MMDEBSTRAP_OPTIONS))


def host_rootfs() -> tuple[Path, bool]:
    """Return the host root filesystem tarball, building it if missing, and whether it was built."""
    target = paths.CACHE / f"host-rootfs-{host_rootfs_key()}.tar"
    if target.exists():
        return target, False
    paths.CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.tar")
    partial.unlink(missing_ok=True)
    argv = ["mmdebstrap", "--format=tar", *_MMDEBSTRAP_OPTIONS]
    argv.append("--include=" + ",".join(HOST_PACKAGES))
    try:
        run([*argv, SUITE, str(partial)], timeout=1800)
    except LabError as exc:
        partial.unlink(missing_ok=True)
        raise LabError(f"building the host root filesystem failed: {exc}") from exc
    partial.replace(target)
    return target, True


def registry_files() -> dict[str, Path]:
    """Map each path in the registry image to the file on this machine that provides it."""
    if not REGISTRY_BINARY.exists():
        raise LabError(
            f"{REGISTRY_BINARY} is missing; install the docker-registry package "
            "(scripts/setup-machine.sh does)"
        )
    ldd = run(["ldd", str(REGISTRY_BINARY)]).stdout.decode()
    files = {"/usr/bin/registry": REGISTRY_BINARY}
    for line in ldd.splitlines():
        match = re.search(r"(/\S+) \(0x", line)
        if match:
            files[match.group(1)] = Path(match.group(1)).resolve()
    return files


def registry_rootfs_key() -> str:
    """The hash naming the registry root filesystem: the binary, its libraries and its config."""
    parts: list[str | bytes] = [REGISTRY_CONFIG]
    for inside, source in sorted(registry_files().items()):
        parts += [inside, hashlib.sha256(source.read_bytes()).hexdigest()]
    return digest_of(*parts)


def registry_rootfs() -> tuple[Path, bool]:
    """Return the registry root filesystem tarball, building it if missing, and whether it was."""
    target = paths.CACHE / f"registry-rootfs-{registry_rootfs_key()}.tar"
    if target.exists():
        return target, False
    paths.CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.tar")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for folder, mode in [
            ("etc", 0o755),
            ("etc/docker", 0o755),
            ("etc/docker/registry", 0o755),
            ("tmp", 0o1777),
            ("var", 0o755),
            ("var/lib", 0o755),
            ("var/lib/registry", 0o755),
        ]:
            _add_dir(tar, folder, mode)
        _add_bytes(tar, "etc/docker/registry/config.yml", REGISTRY_CONFIG.encode(), 0o644)
        for inside, source in sorted(registry_files().items()):
            parents = Path(inside.lstrip("/")).parents
            for parent in reversed([p for p in parents if str(p) != "."]):
                if str(parent) not in tar.getnames():
                    _add_dir(tar, str(parent), 0o755)
            _add_bytes(tar, inside.lstrip("/"), source.read_bytes(), 0o755)
    partial.replace(target)
    return target, True


def _add_dir(tar: tarfile.TarFile, name: str, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def remove_cache() -> None:
    """Remove every cached root filesystem and synthetic image."""
    shutil.rmtree(paths.CACHE, ignore_errors=True)
