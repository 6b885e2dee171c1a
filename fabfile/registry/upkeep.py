"""Registry upkeep that does not hurt: inspect, delete with pre-checks, and untag.

A manifest delete takes every tag on that digest with it, deletes nothing that garbage-collect
has not swept, and on a registry that negotiates content types it is easy to aim at the wrong
digest. So: digests are resolved with every manifest type accepted; a digest that an index in
the repository lists is refused unless forced; and after each delete the tags are listed again
and the result is reported as observed, not as the 202 claimed.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fabfile.registry.client import RegistryClient
from fabfile.registry.errors import NotFound, ProtocolError, RegistryError
from fabfile.registry.manifest import OCI_MANIFEST, Manifest, sha256_digest


class UnsafeDelete(RegistryError):
    """A delete the pre-checks refused; `force` overrides it."""


@dataclass(frozen=True)
class ImageInfo:
    """What `inspect` shows about one reference."""

    repository: str
    reference: str
    digest: str
    media_type: str
    platforms: list[str]
    children: list[tuple[str, str]]
    size: int
    tags: list[str]


@dataclass(frozen=True)
class DeletePlan:
    """What a delete of `reference` would do: the digest, and every tag that goes with it."""

    repository: str
    reference: str
    digest: str
    media_type: str
    tags: list[str]
    parents: list[str]


@dataclass
class DeleteOutcome:
    """The state after the delete, as observed by listing and HEAD, not as the 202 claimed."""

    plan: DeletePlan
    digest_gone: bool
    tags_gone: list[str] = field(default_factory=list)
    tags_left: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.digest_gone and not self.tags_left


@dataclass(frozen=True)
class UntagOutcome:
    repository: str
    tag: str
    digest: str
    method: str
    siblings: list[str]


def tags_sharing_digest(
    client: RegistryClient, repository: str, digest: str, workers: int = 8
) -> list[str]:
    """Every tag of `repository` that resolves to `digest` (one HEAD per tag, in parallel)."""
    tags = client.tags(repository)

    def resolves(tag: str) -> bool:
        head = client.head_manifest(repository, tag)
        return head is not None and head.digest == digest

    with ThreadPoolExecutor(workers, "tag-head") as pool:
        return sorted(t for t, same in zip(tags, pool.map(resolves, tags), strict=True) if same)


def index_parents(
    client: RegistryClient, repository: str, digest: str, workers: int = 8
) -> list[str]:
    """Tags of `repository` whose index (or manifest list) lists `digest` as a child."""
    tags = client.tags(repository)

    def lists_it(tag: str) -> bool:
        try:
            manifest = client.get_manifest(repository, tag)
        except NotFound:
            return False
        return any(child.digest == digest for child in manifest.children)

    with ThreadPoolExecutor(workers, "tag-get") as pool:
        return sorted(t for t, hit in zip(tags, pool.map(lists_it, tags), strict=True) if hit)


def inspect(client: RegistryClient, repository: str, reference: str) -> ImageInfo:
    """Media type, digest, platforms, total size and sibling tags of one reference."""
    top = client.get_manifest(repository, reference)
    children: list[tuple[str, str]] = []
    manifests = [top]
    for descriptor in top.children:
        children.append((descriptor.platform or "unknown", descriptor.digest))
        manifests.append(client.get_manifest(repository, descriptor.digest))
    blobs = {b.digest: b.size for m in manifests for b in m.blobs}
    size = sum(len(m.raw) for m in manifests) + sum(blobs.values())
    return ImageInfo(
        repository=repository,
        reference=reference,
        digest=top.digest,
        media_type=top.media_type,
        platforms=top.platforms,
        children=children,
        size=size,
        tags=tags_sharing_digest(client, repository, top.digest),
    )


def plan_delete(client: RegistryClient, repository: str, reference: str) -> DeletePlan:
    """Resolve the digest with every manifest type accepted, and find what it takes along."""
    head = client.head_manifest(repository, reference)
    if head is None:
        raise NotFound(
            "no manifest to delete", registry=client.registry, repository=repository,
            reference=reference,
        )  # fmt: skip
    return DeletePlan(
        repository=repository,
        reference=reference,
        digest=head.digest,
        media_type=head.media_type,
        tags=tags_sharing_digest(client, repository, head.digest),
        parents=index_parents(client, repository, head.digest),
    )


def delete(client: RegistryClient, plan: DeletePlan, force: bool = False) -> DeleteOutcome:
    """Delete `plan.digest` and report what is really gone afterwards.

    Refuses (UnsafeDelete) when an index in the repository lists the digest, unless `force`:
    deleting a platform's manifest breaks the multi-platform image that lists it.
    """
    if plan.parents and not force:
        raise UnsafeDelete(
            f"{plan.digest} is a platform manifest listed by the index tagged"
            f" {', '.join(plan.parents)}; deleting it would break that image. Delete the index"
            " instead, or force the delete",
            registry=client.registry,
            repository=plan.repository,
            reference=plan.reference,
        )
    client.delete_manifest(plan.repository, plan.digest)
    remaining = set(client.tags(plan.repository))
    outcome = DeleteOutcome(plan, client.head_manifest(plan.repository, plan.digest) is None)
    for tag in plan.tags:
        head = client.head_manifest(plan.repository, tag) if tag in remaining else None
        (outcome.tags_left if head is not None else outcome.tags_gone).append(tag)
    return outcome


def untag(client: RegistryClient, repository: str, tag: str) -> UntagOutcome:
    """Remove one tag and keep every other tag on the same digest.

    Registries that delete tags (`DELETE /manifests/<tag>`, distribution 3) do it directly.
    Elsewhere (distribution 2.x) the tag is first moved to a throw-away manifest of its own,
    which is then deleted by digest; that takes only this tag with it.
    """
    head = client.head_manifest(repository, tag)
    if head is None:
        raise NotFound(
            "no such tag", registry=client.registry, repository=repository, reference=tag
        )
    siblings = [t for t in tags_sharing_digest(client, repository, head.digest) if t != tag]
    client.require_deletion(repository)
    try:
        client.delete_manifest(repository, tag)
        method = "tag delete"
    except (ProtocolError, NotFound):
        throwaway = _throwaway_manifest(client, repository, tag)
        client.put_manifest(repository, tag, throwaway)
        client.delete_manifest(repository, throwaway.digest)
        method = "moved to a throw-away manifest, deleted by digest"

    if tag in client.tags(repository) or client.head_manifest(repository, tag) is not None:
        raise ProtocolError(
            f"the tag is still present after the delete ({method})",
            registry=client.registry, repository=repository, reference=tag,
        )  # fmt: skip
    for sibling in siblings:
        kept = client.head_manifest(repository, sibling)
        if kept is None or kept.digest != head.digest:
            raise ProtocolError(
                f"sibling tag {sibling} no longer resolves to {head.digest} after the untag",
                registry=client.registry, repository=repository, reference=tag,
            )  # fmt: skip
    return UntagOutcome(repository, tag, head.digest, method, siblings)


def _throwaway_manifest(client: RegistryClient, repository: str, tag: str) -> Manifest:
    """A config-only OCI manifest, unique to this call, pushed nowhere but under `tag`."""
    config = json.dumps({"regtk": "untag placeholder", "tag": tag, "nonce": os.urandom(16).hex()})
    data = config.encode()
    digest = sha256_digest(data)
    client.upload_blob(repository, digest, len(data), [data])
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest,
            "size": len(data),
        },
        "layers": [],
    }
    raw = json.dumps(body).encode()
    return Manifest(raw, OCI_MANIFEST, sha256_digest(raw))
