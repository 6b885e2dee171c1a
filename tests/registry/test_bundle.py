"""Bundles: write an OCI layout (and tar) from a registry, push it with the upstream stopped."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fabfile.registry.bundle import OciLayout, write_bundle
from fabfile.registry.client import RegistryClient
from fabfile.registry.copy import ClientPool, copy_images
from fabfile.registry.reference import parse_reference, target_reference
from tests.registry import images
from tests.registry.servers import Registry


@pytest.mark.parametrize("as_tar", [False, True], ids=["directory", "tar"])
def test_bundle_pushes_with_upstream_stopped(
    start_registry: Callable[..., Registry], tmp_path: Path, as_tar: bool
) -> None:
    upstream, private = start_registry("upstream"), start_registry("private")
    pause, tool = images.make_index(), images.make_image((10_000, 20_000), docker=True)
    with RegistryClient(upstream.endpoint()) as client:
        images.push(client, "k8s/pause", "3.10", pause)
        images.push(client, "tools/tool", "1.0", tool)
    references = [
        parse_reference(f"{upstream.address}/k8s/pause:3.10"),
        parse_reference(f"{upstream.address}/tools/tool:1.0"),
    ]
    pool = ClientPool({upstream.address: upstream.endpoint()})
    try:
        written = write_bundle(
            references, pool, tmp_path / "bundle", archive=tmp_path / "bundle.tar"
        )
    finally:
        pool.close()
    assert [w.digest for w in written] == [pause.digest, tool.digest]
    assert written[0].platforms == ("linux/amd64", "linux/arm64")
    upstream.stop()

    layout = OciLayout(tmp_path / ("bundle.tar" if as_tar else "bundle"))
    assert layout.references() == references
    pairs = [(r, target_reference(r, private.address, "mirror")) for r in layout.references()]
    with RegistryClient(private.endpoint()) as target:
        report = copy_images(pairs, layout, target)
        assert report.ok, [i.error for i in report.images]
        assert [i.target_digest for i in report.images] == [pause.digest, tool.digest]
        assert target.get_manifest("mirror/k8s/pause", "3.10").raw == pause.top.raw


def test_bundle_directory_is_readable_by_skopeo(
    start_registry: Callable[..., Registry], tmp_path: Path
) -> None:
    upstream = start_registry("upstream")
    pause = images.make_index()
    with RegistryClient(upstream.endpoint()) as client:
        images.push(client, "pause", "3.10", pause)
    reference = parse_reference(f"{upstream.address}/pause:3.10")
    pool = ClientPool({upstream.address: upstream.endpoint()})
    try:
        write_bundle([reference], pool, tmp_path / "bundle")
    finally:
        pool.close()
    result = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{tmp_path / 'bundle'}:{reference}"],
        check=True,
        capture_output=True,
    )
    assert result.stdout == pause.top.raw
