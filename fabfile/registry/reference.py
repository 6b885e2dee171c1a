"""Image references: parsing, Docker Hub normalisation, and target names for mirroring.

A reference is `[registry/]repository[:tag][@digest]`. The first path component is a registry
when it contains a dot or a colon or is `localhost`; otherwise the image is on Docker Hub, where a
one-component name lives under `library/`. Target names keep the repository path (minus Docker
Hub's `library/`), so `registry.k8s.io/pause:3.10` becomes `<private>/[prefix/]pause:3.10`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fabfile.core.errors import ToolkitError

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_REGISTRY = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


class InvalidReference(ToolkitError, ValueError):
    """A string that is not a valid image reference; the message says which part is wrong."""


@dataclass(frozen=True)
class Reference:
    """A parsed image reference. At least one of `tag` and `digest` is set."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What goes after `/manifests/`: the digest when known, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse `text`; a reference with neither tag nor digest gets the tag `latest`."""
    original = text
    text = text.strip()
    if not text or text != original or any(c.isspace() for c in text):
        raise InvalidReference(f"image reference {original!r} is empty or contains whitespace")
    if "://" in text:
        raise InvalidReference(f"image reference {text!r} must not carry a URL scheme")

    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(
                f"image reference {original!r}: {digest!r} is not a sha256 digest"
            )

    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidReference(f"image reference {original!r}: {tag!r} is not a valid tag")

    parts = text.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, parts[1:]
        if not _REGISTRY.match(registry):
            raise InvalidReference(f"image reference {original!r}: bad registry {registry!r}")
    else:
        registry, path = DOCKER_HUB, parts
    if registry.lower() in _HUB_ALIASES:
        registry = DOCKER_HUB
        if len(path) == 1:
            path = ["library", *path]
    for component in path:
        if not _COMPONENT.match(component):
            raise InvalidReference(
                f"image reference {original!r}: repository component {component!r} must be"
                " lower-case letters, digits and separators"
            )
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry, "/".join(path), tag, digest)


def target_reference(source: Reference, registry: str, prefix: str = "") -> Reference:
    """The name `source` gets in the private `registry` (host:port), under optional `prefix`.

    The tag is kept; a digest-only source keeps its digest, so the copy stays addressable.
    """
    repository = source.repository
    if source.registry == DOCKER_HUB and repository.startswith("library/"):
        repository = repository.removeprefix("library/")
    prefix = prefix.strip("/")
    if prefix:
        repository = f"{prefix}/{repository}"
    digest = None if source.tag else source.digest
    target = Reference(registry, repository, source.tag, digest)
    parse_reference(str(target))
    return target
