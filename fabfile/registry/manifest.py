"""Manifests as raw bytes: media types, digests, and what a manifest refers to.

A manifest is kept exactly as the registry served it. Re-serialising the JSON would change its
digest, so parsing here only reads the body; it never produces the bytes that get pushed, except
when a platform subset is asked for, which writes a new index on purpose.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fabfile.registry.errors import UnsupportedMediaType

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """A reference from a manifest to a blob or a child manifest."""

    media_type: str
    digest: str
    size: int
    platform: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        platform = data.get("platform")
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=str(data["digest"]),
            size=int(data["size"]),
            platform=format_platform(platform) if isinstance(platform, dict) else None,
        )


def format_platform(platform: dict[str, Any]) -> str:
    """`os/architecture[/variant]`, the form `--platform` flags use."""
    text = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    if platform.get("variant"):
        text += f"/{platform['variant']}"
    return text


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes with its media type and digest."""

    raw: bytes
    media_type: str
    digest: str

    @classmethod
    def from_bytes(cls, raw: bytes, content_type: str | None = None) -> Manifest:
        """Build from a body; the media type comes from `content_type`, else from the body."""
        declared = media_type = (content_type or "").split(";")[0].strip()
        if media_type not in INDEX_TYPES | IMAGE_TYPES:
            body = _load(raw)
            media_type = str(body.get("mediaType") or "")
            if not media_type and body.get("schemaVersion") == 2:
                # OCI allows leaving mediaType out; the shape says which of the two it is.
                media_type = OCI_INDEX if "manifests" in body else OCI_MANIFEST
        if media_type not in INDEX_TYPES | IMAGE_TYPES:
            raise UnsupportedMediaType(
                f"manifest media type {media_type or declared or 'unknown'!r} is not an OCI or"
                " Docker v2 manifest or index; schema 1 and other types are not copied"
            )
        return cls(raw, media_type, sha256_digest(raw))

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def children(self) -> list[Descriptor]:
        """The manifests an index lists (empty for an image manifest)."""
        if not self.is_index:
            return []
        return [Descriptor.from_json(d) for d in _load(self.raw).get("manifests", [])]

    @property
    def blobs(self) -> list[Descriptor]:
        """Config then layers of an image manifest (empty for an index)."""
        if self.is_index:
            return []
        body = _load(self.raw)
        found = [Descriptor.from_json(body["config"])] if "config" in body else []
        return found + [Descriptor.from_json(d) for d in body.get("layers", [])]

    @property
    def platforms(self) -> list[str]:
        return [c.platform for c in self.children if c.platform]

    def select_platforms(self, wanted: set[str]) -> Manifest:
        """A new index listing only the children whose platform is in `wanted`.

        The bytes differ from the source, so the digest changes; callers must say so.
        """
        body = _load(self.raw)
        kept = [
            d
            for d in body.get("manifests", [])
            if isinstance(d.get("platform"), dict) and format_platform(d["platform"]) in wanted
        ]
        if not kept:
            raise UnsupportedMediaType(
                f"index {self.digest} has none of the platforms {sorted(wanted)};"
                f" it has {self.platforms}"
            )
        body["manifests"] = kept
        raw = json.dumps(body, indent=3).encode()
        return Manifest(raw, self.media_type, sha256_digest(raw))


def _load(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise UnsupportedMediaType(f"manifest body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise UnsupportedMediaType("manifest body is not a JSON object")
    return body
