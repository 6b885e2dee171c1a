"""Streaming digest verification for blobs.

Blobs pass through in chunks and are never held whole. The last chunk is held back until the
sha256 and the size of everything before it are checked, so a consumer that commits on the final
byte (an upload that the registry completes, a file that gets renamed into place) never commits
content that does not match its digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator

from fabfile.registry.errors import DigestMismatch, ProtocolError

CHUNK_SIZE = 1024 * 1024


def check_digest(digest: str) -> None:
    """Refuse digests this client cannot verify (only sha256 is in use by registries today)."""
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or len(hexpart) != 64:
        raise ProtocolError(f"digest {digest!r} is not a sha256 digest; only sha256 is supported")


def verified_chunks(
    chunks: Iterable[bytes],
    digest: str,
    size: int,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield `chunks` unchanged; raise DigestMismatch before the last one if they are wrong."""
    check_digest(digest)
    hasher = hashlib.sha256()
    seen = 0
    held: bytes | None = None
    for chunk in chunks:
        if not chunk:
            continue
        if held is not None:
            yield held
            if on_bytes:
                on_bytes(len(held))
        hasher.update(chunk)
        seen += len(chunk)
        held = chunk
        if seen > size:
            raise DigestMismatch(f"blob {digest} is longer than its announced {size} bytes")
    actual = "sha256:" + hasher.hexdigest()
    if seen != size:
        raise DigestMismatch(f"blob {digest} ended after {seen} of its {size} bytes")
    if actual != digest:
        raise DigestMismatch(f"blob content hashes to {actual}, not to its digest {digest}")
    if held is not None:
        yield held
        if on_bytes:
            on_bytes(len(held))
