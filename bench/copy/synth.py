"""Synthetic image sets for the copy benchmark, written as one OCI layout on disk.

Layers are real gzip tars of random (incompressible) bytes, generated and hashed in a stream,
so a 512 MB layer never sits in memory. Each image gets a valid config with its diff_ids, so
docker can pull and push the images too.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    diff_id: str = ""

    def descriptor(self, media_type: str) -> dict[str, object]:
        return {"mediaType": media_type, "digest": self.digest, "size": self.size}


class Layout:
    """An OCI layout under construction; `finish()` writes index.json."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.blobs = directory / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.entries: list[dict[str, object]] = []

    def put(self, data: bytes) -> Blob:
        digest = hashlib.sha256(data).hexdigest()
        (self.blobs / digest).write_bytes(data)
        return Blob(f"sha256:{digest}", len(data))

    def layer(self, size: int) -> Blob:
        """A gzip tar holding one file of `size` random bytes, streamed to disk."""
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        outer, inner = hashlib.sha256(), hashlib.sha256()
        temporary = self.blobs / f"layer-{os.getpid()}.part"
        written = 0
        with temporary.open("wb") as out:

            def emit(raw: bytes) -> None:
                nonlocal written
                inner.update(raw)
                packed = compressor.compress(raw)
                outer.update(packed)
                out.write(packed)
                written += len(packed)

            info = tarfile.TarInfo("payload.bin")
            info.size = size
            info.mode = 0o644
            emit(info.tobuf(format=tarfile.GNU_FORMAT))
            remaining = size
            while remaining:
                step = min(remaining, 4 * MB)
                emit(os.urandom(step))
                remaining -= step
            emit(b"\0" * ((512 - size % 512) % 512) + b"\0" * 1024)
            tail = compressor.flush()
            outer.update(tail)
            out.write(tail)
            written += len(tail)
        digest = outer.hexdigest()
        temporary.replace(self.blobs / digest)
        return Blob(f"sha256:{digest}", written, f"sha256:{inner.hexdigest()}")

    def image(self, layers: list[Blob], arch: str = "amd64") -> Blob:
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/payload.bin"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
        config_blob = self.put(json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_blob.descriptor(CONFIG),
            "layers": [layer.descriptor(LAYER) for layer in layers],
        }
        return self.put(json.dumps(manifest, indent=2).encode())

    def index(self, children: list[tuple[Blob, str]]) -> Blob:
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {**blob.descriptor(OCI_MANIFEST), "platform": {"os": "linux", "architecture": a}}
                for blob, a in children
            ],
        }
        return self.put(json.dumps(body, indent=2).encode())

    def name(self, ref: str, blob: Blob, media_type: str) -> None:
        self.entries.append(
            {
                **blob.descriptor(media_type),
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        )

    def finish(self) -> None:
        index = {"schemaVersion": 2, "manifests": self.entries}
        (self.directory / "index.json").write_text(json.dumps(index, indent=2))


@dataclass(frozen=True)
class SetImage:
    """One benchmark image: its name in the layout and registries, its set, its bytes."""

    name: str
    set_name: str
    digest: str
    blob_bytes: int
    is_index: bool = False


def build_sets(directory: Path, big_mb: int) -> list[SetImage]:
    """S1 pause-like, S2 tooling, S3 big, S4 family sharing a base layer, S5 2-platform index."""
    layout = Layout(directory)
    images: list[SetImage] = []

    def single(name: str, set_name: str, layers: list[Blob]) -> None:
        manifest = layout.image(layers)
        layout.name(name, manifest, OCI_MANIFEST)
        images.append(SetImage(name, set_name, manifest.digest, sum(x.size for x in layers)))

    single("s1-pause", "S1", [layout.layer(700 * 1024)])
    single("s2-tooling", "S2", [layout.layer(s * MB) for s in (5, 10, 15, 20, 30)])
    single("s3-big", "S3", [layout.layer(big_mb * MB), *(layout.layer(MB) for _ in range(3))])
    base = layout.layer(100 * MB)
    for number in range(5):
        unique = [layout.layer(20 * MB) for _ in range(1 + number % 2)]
        single(f"s4-family-{number}", "S4", [base, *unique])
    children = []
    total = 0
    for arch in ("amd64", "arm64"):
        layers = [layout.layer(2 * MB), layout.layer(3 * MB)]
        total += sum(x.size for x in layers)
        children.append((layout.image(layers, arch), arch))
    index = layout.index(children)
    layout.name("s5-multiarch", index, OCI_INDEX)
    images.append(SetImage("s5-multiarch", "S5", index.digest, total, is_index=True))
    layout.finish()
    return images
