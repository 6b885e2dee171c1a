"""The copy engine against real distribution registries on loopback."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fabfile.registry.client import RegistryClient
from fabfile.registry.copy import ClientPool, CopyOptions, ProgressEvent, copy_images
from fabfile.registry.reference import parse_reference
from tests.registry import images
from tests.registry.servers import Registry

Start = Callable[..., Registry]
Clients = Callable[[Any], RegistryClient]


def _writes(registry: Registry) -> list[str]:
    """Access-log lines of requests that upload or change something."""
    return [
        line
        for line in registry.access_log()
        if any(f'"{verb} ' in line for verb in ("POST", "PUT", "PATCH", "DELETE"))
    ]


def _copy(src: Registry, dst: Registry, pairs: list[tuple[str, str]], **options: Any) -> Any:
    pool = ClientPool({src.address: src.endpoint(), dst.address: dst.endpoint()})
    events: list[ProgressEvent] = []
    try:
        report = copy_images(
            [(parse_reference(a), parse_reference(b)) for a, b in pairs],
            pool,
            pool.client(dst.address),
            CopyOptions(**options),
            events.append,
        )
    finally:
        pool.close()
    return report, events


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-list"])
def test_multi_arch_copy_is_byte_identical_and_second_copy_sends_nothing(
    start_registry: Start, clients: Clients, tmp_path: Path, docker: bool
) -> None:
    src, dst = start_registry("src"), start_registry("dst")
    image = images.make_index(docker=docker)
    if docker:  # skopeo's OCI layout reader finds only OCI media types
        with RegistryClient(src.endpoint()) as client:
            images.push(client, "pause", "3.10", image)
    else:
        images.write_layout(tmp_path / "layout", "3.10", image)
        subprocess.run(
            ["skopeo", "copy", "--all", "--quiet", "--dest-tls-verify=false",
             f"oci:{tmp_path / 'layout'}:3.10", f"docker://{src.address}/pause:3.10"],
            check=True,
        )  # fmt: skip
    pair = (f"{src.address}/pause:3.10", f"{dst.address}/pause:3.10")

    first, events = _copy(src, dst, [pair])
    result = first.images[0]
    assert first.ok, result.error
    assert result.source_digest == result.target_digest == image.digest
    assert result.platforms == ["linux/amd64", "linux/arm64"]
    assert result.blobs_copied == len(image.blobs)
    assert result.bytes_sent == sum(len(b) for b in image.blobs.values())
    assert sum(e.advance for e in events if e.kind == "blob-bytes") == result.bytes_sent
    target = clients(dst.endpoint())
    assert target.get_manifest("pause", "3.10").raw == image.top.raw
    for child in image.children:
        assert target.get_manifest("pause", child.digest).raw == child.raw

    writes_before = len(_writes(dst))
    second, _ = _copy(src, dst, [pair])
    again = second.images[0]
    assert again.present and again.bytes_sent == 0 and again.target_digest == image.digest
    assert len(_writes(dst)) == writes_before


def test_copy_into_second_repository_mounts_every_blob(start_registry: Start) -> None:
    src, dst = start_registry("src"), start_registry("dst")
    image = images.make_index()
    with RegistryClient(src.endpoint()) as client:
        images.push(client, "pause", "3.10", image)

    _copy(src, dst, [(f"{src.address}/pause:3.10", f"{dst.address}/pause:3.10")])
    report, _ = _copy(src, dst, [(f"{src.address}/pause:3.10", f"{dst.address}/k8s/pause:3.10")])
    result = report.images[0]
    assert report.ok, result.error
    assert result.blobs_mounted == len(image.blobs)
    assert result.blobs_copied == 0 and result.bytes_sent == 0
    assert result.target_digest == image.digest


def test_images_sharing_a_layer_upload_it_once(start_registry: Start) -> None:
    src, dst = start_registry("src"), start_registry("dst")
    base = images.make_layer(50_000)
    family = [images.make_image((4000,), shared_layers=(base,)) for _ in range(4)]
    with RegistryClient(src.endpoint()) as client:
        for number, image in enumerate(family):
            images.push(client, f"app{number}", "1", image)

    pairs = [(f"{src.address}/app{n}:1", f"{dst.address}/app{n}:1") for n in range(4)]
    report, _ = _copy(src, dst, pairs, image_workers=4, blob_workers=4)
    assert report.ok, [r.error for r in report.images]
    assert report.bytes_sent == len(base) + sum(
        len(data) for image in family for d, data in image.blobs.items() if data is not base
    )
    assert sum(r.blobs_mounted for r in report.images) == 3


def test_tampered_blob_is_detected_and_never_committed(
    start_registry: Start, clients: Clients
) -> None:
    src, dst = start_registry("src"), start_registry("dst")
    image = images.make_image((20_000,))
    with RegistryClient(src.endpoint()) as client:
        images.push(client, "victim", "1", image)
    layer = image.top.blobs[-1].digest
    hexdigest = layer.removeprefix("sha256:")
    stored = src.root / f"data/docker/registry/v2/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"
    data = bytearray(stored.read_bytes())
    data[-100] ^= 0xFF
    stored.write_bytes(bytes(data))

    report, _ = _copy(src, dst, [(f"{src.address}/victim:1", f"{dst.address}/victim:1")])
    result = report.images[0]
    assert not report.ok
    assert "hashes to" in result.error and layer in result.error
    target = clients(dst.endpoint())
    assert not target.blob_exists("victim", layer)
    assert target.head_manifest("victim", "1") is None


def test_platform_subset_is_reported_as_a_new_digest(start_registry: Start) -> None:
    src, dst = start_registry("src"), start_registry("dst")
    image = images.make_index(("amd64", "arm64", "s390x"))
    with RegistryClient(src.endpoint()) as client:
        images.push(client, "pause", "3.10", image)

    report, _ = _copy(
        src,
        dst,
        [(f"{src.address}/pause:3.10", f"{dst.address}/pause:3.10")],
        platforms=frozenset({"linux/arm64"}),
    )
    result = report.images[0]
    assert report.ok, result.error
    assert result.digest_changed and result.target_digest != image.digest
    assert result.platforms == ["linux/arm64"]
    assert result.blobs_copied == 3


def test_missing_source_is_a_per_image_error(start_registry: Start) -> None:
    src, dst = start_registry("src"), start_registry("dst")
    report, _ = _copy(src, dst, [(f"{src.address}/nothing:1", f"{dst.address}/nothing:1")])
    assert not report.ok
    assert f"{src.address}/nothing:1" in report.images[0].error
    assert "404" in report.images[0].error
