"""The lab's Docker images, imported from the cached root filesystems and tagged by input hash.

``regtk-lab-host:<hash>`` boots systemd; ``regtk-lab-registry:<hash>`` runs the distribution
registry and is also tagged ``registry:2`` and ``registry:2.8.2``, the names a deployment expects.
Every image carries the label ``regtk-lab`` so the lab removes only what it made.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabfile.lab import rootfs
from fabfile.lab.commands import docker, docker_ok

LABEL = "regtk-lab"
HOST_REPO = "regtk-lab-host"
REGISTRY_REPO = "regtk-lab-registry"
REGISTRY_TAGS = ("registry:2", "registry:2.8.2")

_HOST_CHANGES = [f"LABEL {LABEL}=host", 'CMD ["/sbin/init"]']
_REGISTRY_CHANGES = [
    f"LABEL {LABEL}=registry",
    "ENV PATH=/usr/bin:/bin",
    "VOLUME /var/lib/registry",
    "EXPOSE 5000",
    'ENTRYPOINT ["registry"]',
    'CMD ["serve", "/etc/docker/registry/config.yml"]',
]


@dataclass(frozen=True)
class Built:
    """An image the lab needs: its reference and whether this run built or retagged it."""

    ref: str
    changed: bool


def host_image() -> Built:
    """Return the host image, importing it from the host root filesystem if it is missing."""
    key = rootfs.digest_of(rootfs.host_rootfs_key(), *_HOST_CHANGES)
    ref = f"{HOST_REPO}:{key}"
    if _exists(ref):
        return Built(ref, False)
    tarball, _ = rootfs.host_rootfs()
    _import(str(tarball), ref, _HOST_CHANGES)
    return Built(ref, True)


def registry_image() -> Built:
    """Return the registry image, importing and tagging it ``registry:2`` if anything is missing."""
    key = rootfs.digest_of(rootfs.registry_rootfs_key(), *_REGISTRY_CHANGES)
    ref = f"{REGISTRY_REPO}:{key}"
    changed = False
    if not _exists(ref):
        tarball, _ = rootfs.registry_rootfs()
        _import(str(tarball), ref, _REGISTRY_CHANGES)
        changed = True
    image_id = image_id_of(ref)
    for tag in REGISTRY_TAGS:
        if image_id_of(tag) != image_id:
            docker("tag", ref, tag)
            changed = True
    return Built(ref, changed)


def prune_older(keep: list[str]) -> list[str]:
    """Remove the lab's images made from older inputs (no longer in ``keep``) that no container
    uses; return their references."""
    refs = docker(
        "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"label={LABEL}"
    ).split()
    used = set(docker("container", "ls", "--all", "--format", "{{.Image}}").split())
    stale = [
        ref
        for ref in refs
        if ref.split(":")[0] in (HOST_REPO, REGISTRY_REPO) and ref not in keep and ref not in used
    ]
    if stale:
        docker("image", "rm", *stale)
    return stale


def image_id_of(ref: str) -> str | None:
    """The image ID ``ref`` names on the engine, or None if there is no such image."""
    out = docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return out if out.startswith("sha256:") else None


def remove_all() -> list[str]:
    """Remove every image labelled by the lab (and the registry tags pointing at them)."""
    ids = docker("image", "ls", "--quiet", "--no-trunc", "--filter", f"label={LABEL}").split()
    refs = docker(
        "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"label={LABEL}"
    ).split()
    refs = [ref for ref in refs if not ref.endswith(":<none>")]
    if refs:
        docker("image", "rm", "--force", *refs)
    left = [i for i in dict.fromkeys(ids) if image_id_of(i)]
    if left:
        docker("image", "rm", "--force", *left)
    return refs


def _exists(ref: str) -> bool:
    return docker_ok("image", "inspect", ref)


def _import(source: str, ref: str, changes: list[str]) -> None:
    argv = ["import"]
    for change in changes:
        argv += ["--change", change]
    docker(*argv, source, ref, timeout=900)
