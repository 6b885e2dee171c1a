"""Mirroring on the lab: identical digests from the TLS + auth upstream, no bytes on a second
run, a bundle pushed with the upstream stopped, and the SSH tunnel path."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from fabfile.lab import paths

from .helpers import REGISTRY, inv

pytestmark = pytest.mark.lab


def mirror_json(*args: str) -> list[dict]:
    out = inv("mirror", "--json", *args).stdout
    return json.loads(out[out.index("[") :])


@pytest.fixture(scope="module")
def upstream(lab: object) -> dict:
    inv("deploy-registry", "--skip-node-check")
    return json.loads(paths.UPSTREAM_JSON.read_text())["images"]


def test_pause_arrives_with_upstream_digests_and_both_platforms(upstream: dict) -> None:
    results = mirror_json()
    assert results, "the default list is the pause images the nodes need"
    for image in results:
        tag = image["source"].rsplit(":", 1)[1]
        assert image["target_digest"] == upstream[f"pause:{tag}"]["digest"]
        assert image["source_digest"] == image["target_digest"]
        assert sorted(image["platforms"]) == ["linux/amd64", "linux/arm64"]
        assert image["error"] == ""


def test_a_second_run_sends_no_blob_bytes(upstream: dict) -> None:
    mirror_json()
    again = mirror_json()
    assert all(i["present"] and i["bytes_sent"] == 0 for i in again)


def test_a_bundle_made_while_upstream_is_reachable_is_pushed_with_it_stopped(
    upstream: dict, tmp_path: Path
) -> None:
    images = "127.0.3.1:5443/lab/app:1.0,registry.k8s.io/pause:3.9"
    inv("bundle", "--out", str(tmp_path / "layout"), "--images", images)
    subprocess.run(["docker", "stop", "regtk-lab-upstream"], check=True, capture_output=True)
    try:
        results = mirror_json("--source", str(tmp_path / "layout"), "--prefix", "airgap")
    finally:
        subprocess.run(["docker", "start", "regtk-lab-upstream"], check=True, capture_output=True)
        _wait_upstream()
    by_target = {r["target"]: r for r in results}
    app = by_target[f"{REGISTRY}/airgap/lab/app:1.0"]
    assert app["target_digest"] == upstream["lab/app:1.0"]["digest"]
    pause = by_target[f"{REGISTRY}/airgap/pause:3.9"]
    assert pause["target_digest"] == upstream["pause:3.9"]["digest"]


def test_the_tunnel_path_works_when_forced(upstream: dict) -> None:
    results = mirror_json(
        "--tunnel", "--prefix", "tunnelled", "--images", "registry.k8s.io/pause:3.9"
    )
    assert results[0]["target"] == f"{REGISTRY}/tunnelled/pause:3.9"
    assert results[0]["target_digest"] == upstream["pause:3.9"]["digest"]
    listing = inv("registry.catalog", "--tunnel").stdout.split()
    assert "tunnelled/pause" in listing


def _wait_upstream() -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ca = ssl.create_default_context(cafile=str(paths.CA_CERT))
            httpx.get("https://127.0.3.1:5443/v2/", verify=ca, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)


def test_copy_on_the_registry_host_with_docker_says_what_it_loses(upstream: dict) -> None:
    result = inv(
        "mirror", "--on-registry-host", "--prefix", "onhost", "--images",
        "registry.k8s.io/pause:3.9",
    )  # fmt: skip
    assert "only this host's platform is kept" in result.stdout + result.stderr
    info = inv("registry.inspect", "onhost/pause:3.9", "--json").stdout
    copied = json.loads(info[info.index("{") :])
    assert copied["platforms"] == [] and copied["digest"] != upstream["pause:3.9"]["digest"]


def test_an_index_that_lost_a_platform_is_repaired_not_reported_present(upstream: dict) -> None:
    mirror_json("--images", "registry.k8s.io/pause:3.9")
    child = upstream["pause:3.9"]["platforms"]["linux/arm64"]["digest"]
    inv("registry.delete", f"pause@{child}", "--yes", "--force")
    results = mirror_json("--images", "registry.k8s.io/pause:3.9")
    assert results[0]["present"] is False
    assert results[0]["target_digest"] == upstream["pause:3.9"]["digest"]
    assert mirror_json("--images", "registry.k8s.io/pause:3.9")[0]["present"] is True
