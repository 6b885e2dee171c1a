"""Version parsing and the version facts the node preparation depends on.

Every rule that changes with a release of Kubernetes, kubeadm or containerd lives here, so the
editors and the report agree on one table:

- which pause image kubeadm expects for a Kubernetes minor version;
- whether a containerd release pins the sandbox image it pulls through the CRI (so the kubelet's
  image garbage collector leaves it alone);
- which config schema (`version = N` in config.toml) a containerd release writes by default and
  which ones it reads;
- what the kubelet's `--pod-infra-container-image` flag does on each kubelet version.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from fabfile.runtimes.findings import UnsupportedVersionError

_NUMBERS = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


class Version(NamedTuple):
    """A release number; compares as a tuple, prints as `major.minor.patch`."""

    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def minor_version(self) -> tuple[int, int]:
        return (self.major, self.minor)


def parse_version(text: str, what: str = "version") -> Version:
    """The first `N.N[.N]` in `text` (a leading `v` and suffixes like `~ds1` are ignored)."""
    match = _NUMBERS.search(text)
    if match is None:
        raise UnsupportedVersionError(
            what, "version", f"no version number found in {text.strip()!r}", "Check the command."
        )
    major, minor, patch = match.groups()
    return Version(int(major), int(minor), int(patch or 0))


def parse_kubelet_version(text: str) -> Version:
    """`kubelet --version` prints `Kubernetes v1.28.15`."""
    return parse_version(text, "kubelet --version")


def parse_containerd_version(text: str) -> Version:
    """`containerd --version` prints `containerd <package> <version> <revision>`.

    The package field differs by build (`containerd.io`, `github.com/containerd/containerd`,
    `.../containerd/v2`) and Debian's version carries `~ds1`; the third field is the version.
    """
    fields = text.split()
    if len(fields) >= 3 and fields[0] == "containerd":
        return parse_version(fields[2], "containerd --version")
    return parse_version(text, "containerd --version")


def parse_docker_version(text: str) -> Version:
    """`docker --version` prints `Docker version 20.10.24+dfsg1, build 297e128`."""
    return parse_version(text.replace("Docker version", ""), "docker --version")


# kubeadm's PauseVersion per Kubernetes minor version (kubeadm constants.go).
_KUBEADM_PAUSE: dict[tuple[int, int], str] = {
    (1, 23): "3.6",
    (1, 24): "3.7",
    (1, 25): "3.8",
    (1, 26): "3.9",
    (1, 27): "3.9",
    (1, 28): "3.9",
    (1, 29): "3.9",
    (1, 30): "3.9",
    (1, 31): "3.10",
    (1, 32): "3.10",
    (1, 33): "3.10",
    (1, 34): "3.10.1",
    (1, 35): "3.10.1",
    (1, 36): "3.10.2",
}


def kubeadm_pause_version(kubernetes: Version) -> str:
    """The pause tag kubeadm expects for a Kubernetes version (1.23 to 1.36).

    Outside that range no guess is made: the tag then has to come from
    `kubeadm config images list` on the node (see `pause_from_kubeadm_images`) or be given.
    """
    try:
        return _KUBEADM_PAUSE[kubernetes.minor_version]
    except KeyError:
        known = f"{min(_KUBEADM_PAUSE)[1]} to 1.{max(_KUBEADM_PAUSE)[1]}"
        raise UnsupportedVersionError(
            "kubeadm pause table",
            f"Kubernetes {kubernetes.major}.{kubernetes.minor}",
            f"the pause version is only known for Kubernetes 1.{known}",
            "Give the pause tag explicitly, or read it from `kubeadm config images list`.",
        ) from None


def pause_from_kubeadm_images(text: str) -> str:
    """The pause reference in `kubeadm config images list` output (one image a line)."""
    for line in text.splitlines():
        name = line.strip()
        if re.search(r"(^|/)pause:[^/\s]+$", name):
            return name
    raise UnsupportedVersionError(
        "kubeadm config images list",
        "pause",
        "no pause image in the listed images",
        "Run `kubeadm config images list` on the node and check its output.",
    )


def containerd_pins_sandbox(containerd: Version) -> bool:
    """Whether containerd labels the sandbox image pinned when it is pulled through the CRI.

    Present from 1.6.22 in the 1.6 line, 1.7.3 in the 1.7 line, and in every 2.x release.
    """
    if containerd.major >= 2:
        return True
    if containerd.minor_version == (1, 6):
        return containerd >= Version(1, 6, 22)
    if containerd.minor_version == (1, 7):
        return containerd >= Version(1, 7, 3)
    return containerd >= Version(1, 8, 0)


def containerd_default_schema(containerd: Version) -> int:
    """The config.toml `version` that `containerd config default` writes: 1.x 2, 2.0-2.2 3, 2.3+ 4.

    Schema 4 keeps the CRI image plugin tables of schema 3 (only server-level sections moved), so
    the sandbox image and `config_path` keys are written the same way in both.
    """
    if containerd.major < 2:
        return 2
    if containerd < Version(2, 3, 0):
        return 3
    return 4


def containerd_readable_schemas(containerd: Version) -> frozenset[int]:
    """The config.toml versions a release reads.

    1.x reads 1 and 2 (1 deprecated) and silently ignores the plugin tables of a newer file; 2.x
    migrates 2 to 3 at start-up and no longer reads 1; schema 4 needs 2.3 or later.
    """
    if containerd.major < 2:
        return frozenset({1, 2})
    if containerd < Version(2, 3, 0):
        return frozenset({2, 3})
    return frozenset({2, 3, 4})


def containerd_refuses_tag_and_digest(containerd: Version) -> bool:
    """containerd 2.3.x fails every pod sandbox whose image is `name:tag@sha256:...`."""
    return containerd.minor_version == (2, 3)


def containerd_has_legacy_registry_tables(containerd: Version) -> bool:
    """`registry.mirrors`, `configs` and `auths` exist up to 2.3 and are removed in 2.4."""
    return containerd < Version(2, 4, 0)


def containerd_default_sandbox(containerd: Version) -> str:
    """The sandbox image a containerd release uses when its config names none."""
    if containerd < Version(1, 6, 9):
        return "k8s.gcr.io/pause:3.6"
    if containerd.major == 1 and containerd.minor == 6:
        return "registry.k8s.io/pause:3.6"
    if containerd.major == 1:
        return "registry.k8s.io/pause:3.8"
    if containerd < Version(2, 2, 0):
        return "pause:3.10"
    if containerd < Version(2, 3, 0):
        return "pause:3.10.1"
    return "pause:3.10.2"


class FlagAction(StrEnum):
    """What the toolkit does with the kubelet's `--pod-infra-container-image` flag."""

    SET = "set"
    LEAVE = "leave"
    REMOVE = "remove"


def kubelet_flag_action(kubelet: Version) -> FlagAction:
    """Below 1.29 the flag protects the image from the kubelet's GC (and on dockershim, below
    1.24, picks it), so it is set; 1.29 to 1.34 ignore it; 1.35 refuses to start with it."""
    if kubelet < Version(1, 29, 0):
        return FlagAction.SET
    if kubelet < Version(1, 35, 0):
        return FlagAction.LEAVE
    return FlagAction.REMOVE
