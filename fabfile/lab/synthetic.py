"""Synthetic container images for the upstream registry, written as one OCI image layout.

No public image can be pulled here, so the lab makes its own: a multi-arch ``pause`` (an OCI
index with linux/amd64 and linux/arm64 manifests, one small layer each) under the tags kubeadm
expects, and single-arch images with several layers of a few MB. Layer content comes from a
random generator seeded by the image's name, so rebuilding gives the same digests.

The layers are real gzip-compressed tar archives (one file of random bytes each), so a runtime
can pull and unpack them; the random bytes keep them incompressible, like real binaries.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabfile.lab import paths, rootfs

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Spec:
    """One synthetic image: repository, tag, platforms (``os/arch``) and layer sizes in bytes."""

    repository: str
    tag: str
    platforms: tuple[str, ...]
    layers: tuple[int, ...]

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


SPECS: tuple[Spec, ...] = (
    *(
        Spec("pause", tag, ("linux/amd64", "linux/arm64"), (48 * KIB,))
        for tag in ("3.6", "3.9", "3.10", "3.10.1")
    ),
    Spec("lab/app", "1.0", ("linux/amd64",), (2 * MIB, 3 * MIB, 4 * MIB)),
    Spec("lab/tools", "1.0", ("linux/amd64",), (1 * MIB, 2 * MIB)),
)


def layout_key() -> str:
    """The hash naming the layout: changes when any image's definition changes."""
    return rootfs.digest_of("oci-layout-v1", json.dumps([vars(s) for s in SPECS]))


def layout() -> tuple[Path, dict[str, Any], bool]:
    """Return the OCI layout folder, the expected digests by image, and whether it was built."""
    target = paths.CACHE / f"oci-{layout_key()}"
    digests_file = target / "regtk-lab-digests.json"
    if digests_file.exists():
        return target, json.loads(digests_file.read_text()), False
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "blobs" / "sha256").mkdir(parents=True)
    writer = _Writer(partial)
    entries = []
    expected: dict[str, Any] = {}
    for spec in SPECS:
        descriptor, info = _image(writer, spec)
        entries.append({**descriptor, "annotations": {REF_ANNOTATION: spec.ref}})
        expected[spec.ref] = info
    (partial / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (partial / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}, indent=2)
    )
    (partial / "regtk-lab-digests.json").write_text(json.dumps(expected, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    return target, expected, True


class _Writer:
    """Writes blobs into a layout and returns their descriptors."""

    def __init__(self, root: Path) -> None:
        self.blobs = root / "blobs" / "sha256"

    def blob(self, media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data), **extra}


def _image(writer: _Writer, spec: Spec) -> tuple[dict[str, Any], dict[str, Any]]:
    manifests = []
    per_platform: dict[str, Any] = {}
    for platform in spec.platforms:
        os_name, arch = platform.split("/")
        rng = random.Random(f"{spec.ref} {platform}")
        descriptor, layers = _manifest(writer, spec, os_name, arch, rng)
        manifests.append({**descriptor, "platform": {"os": os_name, "architecture": arch}})
        per_platform[platform] = {"digest": descriptor["digest"], "layers": layers}
    if len(spec.platforms) == 1:
        only = manifests[0]
        info = {"media_type": MANIFEST, "digest": only["digest"], **per_platform[spec.platforms[0]]}
        return {k: only[k] for k in ("mediaType", "digest", "size")}, info
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}
    descriptor = writer.blob(INDEX, _canonical(index))
    info = {"media_type": INDEX, "digest": descriptor["digest"], "platforms": per_platform}
    return descriptor, info


def _manifest(
    writer: _Writer, spec: Spec, os_name: str, arch: str, rng: random.Random
) -> tuple[dict[str, Any], list[str]]:
    layers = []
    diff_ids = []
    for number, size in enumerate(spec.layers, start=1):
        raw = _tar(
            f"regtk-lab/{spec.repository.replace('/', '-')}/layer{number}", rng.randbytes(size)
        )
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        layers.append(writer.blob(LAYER, gzip.compress(raw, compresslevel=1, mtime=0)))
    config = {
        "architecture": arch,
        "os": os_name,
        "config": {"Entrypoint": ["/regtk-lab/idle"], "Labels": {"regtk-lab": "synthetic"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "regtk lab synthetic layer"} for _ in layers],
    }
    config_descriptor = writer.blob(CONFIG, _canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config_descriptor,
        "layers": layers,
    }
    return writer.blob(MANIFEST, _canonical(manifest)), [layer["digest"] for layer in layers]


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            folder = tarfile.TarInfo("/".join(parts[:depth]))
            folder.type = tarfile.DIRTYPE
            folder.mode = 0o755
            tar.addfile(folder)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
