"""Copy images between registries the way an index-aware copier must: byte for byte.

Per image: the destination manifest is HEADed first, and an image already there with the same
digest costs nothing more. Otherwise every blob is checked with HEAD, then mounted from another
repository of the target that is known to hold it (from earlier in this run, or the source's
repository name), and only then uploaded, streamed and verified. Manifests are pushed with their
exact bytes, children before the index, so every digest stays the upstream one. Several images
and several blobs move at once, each through a bounded thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from fabfile.registry.client import Endpoint, RegistryClient
from fabfile.registry.errors import (
    AccessDenied,
    AuthenticationRequired,
    DigestMismatch,
    RegistryError,
    RegistryUnavailable,
)
from fabfile.registry.manifest import Descriptor, Manifest
from fabfile.registry.reference import Reference


class ImageSource(Protocol):
    """Where images come from: a registry client, or an OCI layout (see bundle.py)."""

    def get_manifest(self, repository: str, reference: str) -> Manifest: ...

    def open_blob(
        self, repository: str, digest: str
    ) -> AbstractContextManager[Iterator[bytes]]: ...


SourceResolver = Callable[[Reference], tuple[ImageSource, str]]
"""Maps a source reference to the source holding it and the repository name to ask it for."""


class ClientPool:
    """One RegistryClient per registry name, made on first use; a SourceResolver for copies."""

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint] | None = None,
        default: Callable[[str], Endpoint] = Endpoint.for_registry,
    ) -> None:
        self._endpoints = dict(endpoints or {})
        self._default = default
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def client(self, registry: str) -> RegistryClient:
        with self._lock:
            if registry not in self._clients:
                endpoint = self._endpoints.get(registry) or self._default(registry)
                self._clients[registry] = RegistryClient(endpoint)
            return self._clients[registry]

    def __call__(self, reference: Reference) -> tuple[ImageSource, str]:
        return self.client(reference.registry), reference.repository

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


@dataclass(frozen=True)
class CopyOptions:
    """`platforms` (like `linux/arm64`) copies only those children of an index: a new digest."""

    blob_workers: int = 4
    image_workers: int = 4
    platforms: frozenset[str] | None = None
    blob_attempts: int = 3


@dataclass(frozen=True)
class ProgressEvent:
    """`kind` is image-start, image-done, blob-start, blob-bytes or blob-done."""

    kind: str
    image: str
    digest: str = ""
    total: int = 0
    advance: int = 0
    outcome: str = ""


Progress = Callable[[ProgressEvent], None]


@dataclass
class ImageResult:
    """What happened to one image. `present` means it was already there: nothing was sent."""

    source: str
    target: str
    source_digest: str = ""
    target_digest: str = ""
    media_type: str = ""
    platforms: list[str] = field(default_factory=list)
    present: bool = False
    digest_changed: bool = False
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_sent: int = 0
    error: str = ""


@dataclass
class CopyReport:
    images: list[ImageResult]

    @property
    def ok(self) -> bool:
        return all(not image.error for image in self.images)

    @property
    def bytes_sent(self) -> int:
        return sum(image.bytes_sent for image in self.images)


def copy_images(
    pairs: Sequence[tuple[Reference, Reference]],
    sources: SourceResolver,
    target: RegistryClient,
    options: CopyOptions | None = None,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy each (source, target) pair into `target`; failures are reported per image."""
    copier = _Copier(sources, target, options or CopyOptions(), progress)
    with (
        ThreadPoolExecutor(copier.options.image_workers, "copy-image") as images,
        ThreadPoolExecutor(copier.options.blob_workers, "copy-blob") as blobs,
    ):
        copier.blob_pool = blobs
        futures = [images.submit(copier.copy_image, src, dst) for src, dst in pairs]
        return CopyReport([future.result() for future in futures])


class _Copier:
    def __init__(
        self,
        sources: SourceResolver,
        target: RegistryClient,
        options: CopyOptions,
        progress: Progress | None,
    ) -> None:
        self.sources = sources
        self.target = target
        self.options = options
        self.progress = progress
        self.blob_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._digest_locks: dict[str, threading.Lock] = {}
        self._holders: dict[str, set[str]] = {}

    def _emit(self, event: ProgressEvent) -> None:
        if self.progress:
            self.progress(event)

    def copy_image(self, source: Reference, target: Reference) -> ImageResult:
        result = ImageResult(str(source), str(target))
        self._emit(ProgressEvent("image-start", result.target))
        try:
            self._copy(source, target, result)
        except RegistryError as exc:
            result.error = str(exc)
        self._emit(ProgressEvent("image-done", result.target, result.target_digest))
        return result

    def _copy(self, source: Reference, target: Reference, result: ImageResult) -> None:
        origin, source_repository = self.sources(source)
        top = origin.get_manifest(source_repository, source.reference)
        if source.digest and top.digest != source.digest:
            raise DigestMismatch(
                f"source manifest is {top.digest}",
                registry=source.registry,
                reference=source.digest,
            )
        result.source_digest = top.digest
        result.media_type = top.media_type
        wanted = top
        if self.options.platforms and top.is_index:
            wanted = top.select_platforms(set(self.options.platforms))
            result.digest_changed = wanted.digest != top.digest
        result.platforms = wanted.platforms
        tag_or_digest = target.tag or wanted.digest

        present = self.target.head_manifest(target.repository, tag_or_digest)
        if present and present.digest == wanted.digest and self._children_present(target, wanted):
            result.present = True
            result.target_digest = present.digest
            return

        children = self._children(origin, source_repository, wanted)
        unique: dict[str, Descriptor] = {}
        for manifest in children or [wanted]:
            for blob in manifest.blobs:
                unique.setdefault(blob.digest, blob)
        assert self.blob_pool is not None
        futures: list[Future[None]] = [
            self.blob_pool.submit(
                self._ensure_blob, origin, source_repository, target.repository, blob, result
            )
            for blob in unique.values()
        ]
        for future in futures:
            future.result()
        for child in children:
            self.target.put_manifest(target.repository, child.digest, child)
        result.target_digest = self.target.put_manifest(target.repository, tag_or_digest, wanted)

    def _children_present(self, target: Reference, manifest: Manifest) -> bool:
        """An index counts as present only with every platform manifest it lists (a GC with
        --delete-untagged on 2.x can remove them and leave the index)."""
        return all(
            self.target.head_manifest(target.repository, child.digest) is not None
            for child in manifest.children
        )

    def _children(self, origin: ImageSource, repository: str, index: Manifest) -> list[Manifest]:
        """Every manifest below `index`, depth first, so nested indexes come after their own."""
        found: list[Manifest] = []
        for descriptor in index.children:
            child = origin.get_manifest(repository, descriptor.digest)
            if child.is_index:
                found.extend(self._children(origin, repository, child))
            found.append(child)
        return found

    def _digest_lock(self, digest: str) -> threading.Lock:
        with self._lock:
            return self._digest_locks.setdefault(digest, threading.Lock())

    def _record(self, digest: str, repository: str, result: ImageResult, outcome: str) -> None:
        with self._lock:
            self._holders.setdefault(digest, set()).add(repository)
            if outcome == "copied":
                result.blobs_copied += 1
            elif outcome == "mounted":
                result.blobs_mounted += 1
            else:
                result.blobs_skipped += 1

    def _ensure_blob(
        self,
        origin: ImageSource,
        source_repository: str,
        repository: str,
        blob: Descriptor,
        result: ImageResult,
    ) -> None:
        """Make `blob` present in `repository`: skip, mount, or upload, in that order."""
        self._emit(ProgressEvent("blob-start", result.target, blob.digest, blob.size))
        with self._digest_lock(blob.digest):
            outcome = self._place_blob(origin, source_repository, repository, blob, result)
            self._record(blob.digest, repository, result, outcome)
        self._emit(ProgressEvent("blob-done", result.target, blob.digest, blob.size, 0, outcome))

    def _place_blob(
        self,
        origin: ImageSource,
        source_repository: str,
        repository: str,
        blob: Descriptor,
        result: ImageResult,
    ) -> str:
        with self._lock:
            holders = set(self._holders.get(blob.digest, ()))
        if repository in holders or self.target.blob_exists(repository, blob.digest):
            return "skipped"

        candidates = sorted(holders - {repository})
        if source_repository != repository and source_repository not in candidates:
            candidates.append(source_repository)
        location: str | None = None
        for candidate in candidates[:3]:
            if location:
                self.target.cancel_upload(repository, location)
                location = None
            try:
                location = self.target.start_upload(repository, blob.digest, candidate)
            except (AccessDenied, AuthenticationRequired):
                continue  # no pull access to the candidate: a plain upload still works
            if location is None:
                return "mounted"

        def sent(count: int) -> None:
            with self._lock:
                result.bytes_sent += count
            self._emit(ProgressEvent("blob-bytes", result.target, blob.digest, blob.size, count))

        attempt = 1
        while True:
            try:
                with origin.open_blob(source_repository, blob.digest) as chunks:
                    self.target.upload_blob(
                        repository, blob.digest, blob.size, chunks, location, sent
                    )
                return "copied"
            except RegistryUnavailable:
                if attempt >= self.options.blob_attempts:
                    raise
                attempt += 1
                location = None
