"""Bundles for air gaps: images written to an OCI image layout (or a tar of one) and read back.

A bundle holds every image whole, index and all platforms, with its full source reference in
the `org.opencontainers.image.ref.name` and `io.containerd.image.name` annotations. Read back,
an `OciLayout` is an image source for `copy_images`, so a registry can be filled from the bundle
while the upstream registry is out of reach.
"""

from __future__ import annotations

import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabfile.registry.blobs import CHUNK_SIZE, check_digest, verified_chunks
from fabfile.registry.copy import ImageSource, SourceResolver
from fabfile.registry.errors import NotFound, ProtocolError
from fabfile.registry.manifest import Descriptor, Manifest
from fabfile.registry.reference import Reference, parse_reference

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_LAYOUT_VERSION = '{"imageLayoutVersion": "1.0.0"}'


@dataclass(frozen=True)
class BundledImage:
    """One image in a bundle: its source reference, digest, media type and platforms."""

    reference: str
    digest: str
    media_type: str
    platforms: tuple[str, ...]
    blob_bytes: int


def write_bundle(
    references: Sequence[Reference],
    sources: SourceResolver,
    directory: Path,
    *,
    archive: Path | None = None,
    blob_workers: int = 4,
    on_bytes: Callable[[int], None] | None = None,
) -> list[BundledImage]:
    """Write `references` (all platforms) into the layout at `directory`, then tar it if asked.

    An existing layout is added to: blobs already there are kept, and an image with the same
    reference replaces the older entry in `index.json`.
    """
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text(_LAYOUT_VERSION)
    index_path = directory / "index.json"
    index: dict[str, Any] = (
        json.loads(index_path.read_text())
        if index_path.exists()
        else {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    )
    entries: list[dict[str, Any]] = index.setdefault("manifests", [])
    written: list[BundledImage] = []
    with ThreadPoolExecutor(blob_workers, "bundle-blob") as pool:
        for reference in references:
            source, repository = sources(reference)
            top = source.get_manifest(repository, reference.reference)
            manifests = [top, *_descendants(source, repository, top)]
            unique: dict[str, Descriptor] = {}
            for manifest in manifests:
                _store(blobs, manifest.digest, manifest.raw)
                for blob in manifest.blobs:
                    unique.setdefault(blob.digest, blob)
            futures = [
                pool.submit(_fetch_blob, source, repository, blob, blobs, on_bytes)
                for blob in unique.values()
            ]
            for future in futures:
                future.result()
            name = str(reference)
            entries[:] = [e for e in entries if e.get("annotations", {}).get(REF_NAME) != name]
            entries.append(
                {
                    "mediaType": top.media_type,
                    "digest": top.digest,
                    "size": len(top.raw),
                    "annotations": {REF_NAME: name, CONTAINERD_NAME: name},
                }
            )
            written.append(
                BundledImage(
                    name,
                    top.digest,
                    top.media_type,
                    tuple(top.platforms),
                    sum(b.size for b in unique.values()),
                )
            )
    temporary = index_path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(index, indent=2))
    temporary.replace(index_path)
    if archive is not None:
        with tarfile.open(archive, "w") as tar:
            for path in sorted(directory.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return written


def _descendants(source: ImageSource, repository: str, index: Manifest) -> list[Manifest]:
    found: list[Manifest] = []
    for descriptor in index.children:
        child = source.get_manifest(repository, descriptor.digest)
        found.append(child)
        if child.is_index:
            found.extend(_descendants(source, repository, child))
    return found


def _store(blobs: Path, digest: str, data: bytes) -> None:
    path = blobs / digest.removeprefix("sha256:")
    if not path.exists():
        temporary = path.with_name(path.name + ".part")
        temporary.write_bytes(data)
        temporary.replace(path)


def _fetch_blob(
    source: ImageSource,
    repository: str,
    blob: Descriptor,
    blobs: Path,
    on_bytes: Callable[[int], None] | None,
) -> None:
    """Stream one blob into the layout; it only gets its final name once verified."""
    check_digest(blob.digest)
    path = blobs / blob.digest.removeprefix("sha256:")
    if path.exists() and path.stat().st_size == blob.size:
        return
    temporary = path.with_name(f"{path.name}.{threading.get_ident()}.part")
    try:
        with source.open_blob(repository, blob.digest) as chunks, temporary.open("wb") as out:
            for chunk in verified_chunks(chunks, blob.digest, blob.size, on_bytes):
                out.write(chunk)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


class OciLayout:
    """An OCI layout directory, or an uncompressed tar of one, read as an image source.

    Repository names are the full `registry/repository` of the source reference, so
    `OciLayout(path)` is itself a SourceResolver for `copy_images`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._members: dict[str, tuple[int, int]] | None = None
        if path.is_file():
            with tarfile.open(path, "r:") as tar:
                self._members = {
                    os.path.normpath(m.name): (m.offset_data, m.size) for m in tar if m.isfile()
                }
        try:
            self._index = json.loads(self._read("index.json"))
        except (NotFound, ValueError) as exc:
            raise ProtocolError(f"{path} is not an OCI image layout ({exc})") from None

    def references(self) -> list[Reference]:
        """The source references of the images in the bundle, in the order they were written."""
        found = []
        for entry in self._index.get("manifests", []):
            name = entry.get("annotations", {}).get(REF_NAME, "")
            if name:
                found.append(parse_reference(name))
        return found

    def __call__(self, reference: Reference) -> tuple[ImageSource, str]:
        return self, reference.name

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        digest, media_type = reference, None
        if not reference.startswith("sha256:"):
            wanted = f"{repository}:{reference}"
            for entry in self._index.get("manifests", []):
                name = entry.get("annotations", {}).get(REF_NAME, "")
                if name in (wanted, f"{wanted}@{entry.get('digest')}"):
                    digest, media_type = entry["digest"], entry.get("mediaType")
                    break
            else:
                raise NotFound(f"the bundle {self.path} has no image {wanted}")
        check_digest(digest)
        manifest = Manifest.from_bytes(self._read(_blob_path(digest)), media_type)
        if manifest.digest != digest:
            raise ProtocolError(f"the bundle {self.path} holds a damaged manifest {digest}")
        return manifest

    @contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[Iterator[bytes]]:
        check_digest(digest)
        name = _blob_path(digest)
        if self._members is None:
            try:
                handle = (self.path / name).open("rb")
            except FileNotFoundError:
                raise NotFound(f"the bundle {self.path} lacks blob {digest}") from None
            with handle:
                yield iter(lambda: handle.read(CHUNK_SIZE), b"")
            return
        offset, size = self._member(name)
        with self.path.open("rb") as handle:
            handle.seek(offset)
            yield _limited(handle, size)

    def _member(self, name: str) -> tuple[int, int]:
        assert self._members is not None
        try:
            return self._members[name]
        except KeyError:
            raise NotFound(f"the bundle {self.path} lacks {name}") from None

    def _read(self, name: str) -> bytes:
        if self._members is None:
            try:
                return (self.path / name).read_bytes()
            except FileNotFoundError:
                raise NotFound(f"the bundle {self.path} lacks {name}") from None
        offset, size = self._member(name)
        with self.path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(size)


def _blob_path(digest: str) -> str:
    return f"blobs/sha256/{digest.removeprefix('sha256:')}"


def _limited(handle: Any, size: int) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        chunk = handle.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk
