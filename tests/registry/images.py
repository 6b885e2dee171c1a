"""Synthetic images for the registry tests: real gzip tar layers of random bytes.

Images are built in memory (tests use small layers), written as OCI layouts for skopeo, or
pushed blob by blob with the client under test.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from fabfile.registry.client import RegistryClient
from fabfile.registry.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    sha256_digest,
)

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


@dataclass
class TestImage:
    """A top-level manifest, its child manifests (for an index), and every blob by digest."""

    top: Manifest
    children: list[Manifest] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.top.digest


def make_layer(size: int) -> bytes:
    """A gzip tar holding one file of `size` random bytes."""
    payload = os.urandom(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("data.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(payload))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


def make_image(
    layer_sizes: tuple[int, ...] = (2048,),
    arch: str = "amd64",
    docker: bool = False,
    shared_layers: tuple[bytes, ...] = (),
) -> TestImage:
    """A single-platform image: `shared_layers` first, then fresh random layers."""
    layers = [*shared_layers, *(make_layer(s) for s in layer_sizes)]
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(x) for x in layers]},
            "config": {},
            "nonce": os.urandom(8).hex(),
        }
    ).encode()
    media, config_type, layer_type = (
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER) if docker else (OCI_MANIFEST, CONFIG, LAYER)
    )
    body = {
        "schemaVersion": 2,
        "mediaType": media,
        "config": _descriptor(config_type, config),
        "layers": [_descriptor(layer_type, x) for x in layers],
    }
    raw = json.dumps(body, indent=2).encode()
    blobs = {sha256_digest(b): b for b in [config, *layers]}
    return TestImage(Manifest(raw, media, sha256_digest(raw)), [], blobs)


def make_index(arches: tuple[str, ...] = ("amd64", "arm64"), docker: bool = False) -> TestImage:
    """A multi-platform index over one fresh image per architecture."""
    images = [make_image((3000, 5000), arch=arch, docker=docker) for arch in arches]
    media = DOCKER_LIST if docker else OCI_INDEX
    body = {
        "schemaVersion": 2,
        "mediaType": media,
        "manifests": [
            {
                **_descriptor(image.top.media_type, image.top.raw),
                "platform": {"architecture": arch, "os": "linux"},
            }
            for image, arch in zip(images, arches, strict=True)
        ],
    }
    raw = json.dumps(body, indent=2).encode()
    blobs: dict[str, bytes] = {}
    for image in images:
        blobs.update(image.blobs)
    return TestImage(Manifest(raw, media, sha256_digest(raw)), [i.top for i in images], blobs)


def push(client: RegistryClient, repository: str, tag: str, image: TestImage) -> None:
    for digest, data in image.blobs.items():
        client.upload_blob(repository, digest, len(data), [data])
    for child in image.children:
        client.put_manifest(repository, child.digest, child)
    client.put_manifest(repository, tag, image.top)


def write_layout(directory: Path, tag: str, image: TestImage) -> None:
    """An OCI image layout holding `image` under `tag`, for `skopeo copy oci:DIR:TAG`."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    contents = {**image.blobs, **{m.digest: m.raw for m in [image.top, *image.children]}}
    for digest, data in contents.items():
        (blobs / digest.removeprefix("sha256:")).write_bytes(data)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": image.top.media_type,
                "digest": image.top.digest,
                "size": len(image.top.raw),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
