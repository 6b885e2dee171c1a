"""The files each lab host gets before its first boot, as one tar archive copied into it.

Everything a role needs is a file here: the sshd drop-in binding the host's own address, the
authorized client key, the unit that makes the host's own SSH keys, the kubelet stand-in in its
unit layout, the Docker engine's daemon.json, and masks (links to /dev/null) for the services a
role must not run. The archive is deterministic, so its hash tells whether a host is up to date.
"""

from __future__ import annotations

import io
import tarfile

from fabfile.lab import paths
from fabfile.lab.hosts import SSH_PORT, LabHost

_MTIME = 1_700_000_000
_UNITS = "etc/systemd/system"
_KUBEADM = paths.ASSETS / "kubelet" / "kubeadm"
_SYSCONFIG = paths.ASSETS / "kubelet" / "sysconfig"

# Timers that would reach for package mirrors; a lab host never updates itself.
_ALWAYS_MASKED = ("apt-daily.timer", "apt-daily-upgrade.timer")
_MASKED_BY_RUNTIME: dict[str | None, tuple[str, ...]] = {
    None: ("docker.service", "docker.socket", "containerd.service"),
    "containerd": ("docker.service", "docker.socket"),
    "docker": (),
}


class _Archive:
    """A tar archive built in memory, with fixed owners and times."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.tar = tarfile.TarFile(fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT)

    def folder(self, name: str, mode: int = 0o755) -> None:
        info = self._info(name, mode)
        info.type = tarfile.DIRTYPE
        self.tar.addfile(info)

    def file(self, name: str, data: str | bytes, mode: int = 0o644) -> None:
        raw = data.encode() if isinstance(data, str) else data
        info = self._info(name, mode)
        info.size = len(raw)
        self.tar.addfile(info, io.BytesIO(raw))

    def link(self, name: str, target: str) -> None:
        info = self._info(name, 0o777)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        self.tar.addfile(info)

    def close(self) -> bytes:
        self.tar.close()
        return self.buffer.getvalue()

    @staticmethod
    def _info(name: str, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode = mode
        info.mtime = _MTIME
        return info


def archive(host: LabHost, client_public_key: str) -> bytes:
    """The tar archive of every file ``host`` needs, to be extracted at its root."""
    out = _Archive()

    out.file("etc/ssh/sshd_config.d/10-regtk-lab.conf", _sshd_dropin(host))
    out.folder("root/.ssh", 0o700)
    out.file("root/.ssh/authorized_keys", client_public_key + "\n", 0o600)
    hostkeys = "regtk-lab-hostkeys.service"
    out.file(f"{_UNITS}/{hostkeys}", (paths.ASSETS / "systemd" / hostkeys).read_text())
    out.folder(f"{_UNITS}/ssh.service.requires")
    out.link(f"{_UNITS}/ssh.service.requires/{hostkeys}", f"/{_UNITS}/{hostkeys}")

    for unit in (*_ALWAYS_MASKED, *_MASKED_BY_RUNTIME[host.runtime]):
        out.link(f"{_UNITS}/{unit}", "/dev/null")
    if host.runtime == "docker":
        out.folder("etc/docker")
        out.file("etc/docker/daemon.json", (paths.ASSETS / "docker" / "daemon.json").read_text())
    if host.user != "root":
        out.file(f"etc/sudoers.d/{host.user}", _sudoers(host.user), 0o440)
    if host.kubelet is not None:
        _kubelet(out, host.kubelet.version, host.kubelet.layout)
    return out.close()


def _sshd_dropin(host: LabHost) -> str:
    return (
        f"# {host.name} listens on its own loopback address only: every lab host shares one\n"
        "# network namespace.\n"
        f"ListenAddress {host.address}:{SSH_PORT}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "UseDNS no\n"
    )


def _sudoers(user: str) -> str:
    text = (paths.ASSETS / "sudoers" / "deploy").read_text()
    return text.replace("deploy ", f"{user} ")


def _kubelet(out: _Archive, version: str, layout: str) -> None:
    out.file("usr/bin/kubelet", (paths.ASSETS / "kubelet" / "kubelet").read_bytes(), 0o755)
    out.folder("etc/kubelet-standin")
    out.file("etc/kubelet-standin/version", version + "\n")
    wants = f"{_UNITS}/multi-user.target.wants/kubelet.service"
    if layout == "kubeadm":
        # /lib is /usr/lib on a merged-/usr system; the archive writes through the real folder.
        unit = (_KUBEADM / "kubelet.service").read_text()
        out.file("usr/lib/systemd/system/kubelet.service", unit)
        out.folder(f"{_UNITS}/kubelet.service.d")
        dropin = (_KUBEADM / "10-kubeadm.conf").read_text()
        out.file(f"{_UNITS}/kubelet.service.d/10-kubeadm.conf", dropin)
        out.folder("var/lib/kubelet", 0o700)
        out.file("var/lib/kubelet/kubeadm-flags.env", (_KUBEADM / "kubeadm-flags.env").read_text())
        out.file("etc/default/kubelet", (_KUBEADM / "default-kubelet").read_text())
        out.link(wants, "/lib/systemd/system/kubelet.service")
    elif layout == "sysconfig":
        out.file(f"{_UNITS}/kubelet.service", (_SYSCONFIG / "kubelet.service").read_text())
        out.folder("etc/sysconfig")
        out.file("etc/sysconfig/kubelet", (_SYSCONFIG / "sysconfig-kubelet").read_text())
        out.link(wants, f"/{_UNITS}/kubelet.service")
    else:
        raise ValueError(f"unknown kubelet layout {layout!r}; expected kubeadm or sysconfig")
