"""deploy-registry and registry.config on the lab's registry host, end to end."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .helpers import REGISTRY, by_host, inv, inv_json, lab_inventory, on

pytestmark = pytest.mark.lab

CONFIG = "/etc/regtk/registry/config.yml"


@pytest.fixture(scope="module")
def deployed(lab: object) -> dict[str, object]:
    return inv_json("deploy-registry")


def started_at() -> str:
    return on("registry1", "docker inspect -f '{{.State.StartedAt}}' registry").strip()


def test_deploy_serves_the_catalog_to_the_operator_and_the_nodes(deployed: dict) -> None:
    hosts = by_host(deployed)
    assert hosts["registry1"]["status"] in ("changed", "unchanged")
    for node in ("node1", "node2", "node3", "node4"):
        assert hosts[node]["status"] == "unchanged", hosts[node]
    assert httpx.get(f"http://{REGISTRY}/v2/_catalog").status_code == 200
    assert (
        on("node3", f"curl -s -o /dev/null -w '%{{http_code}}' http://{REGISTRY}/v2/_catalog")
        == "200"
    )


def test_a_second_deploy_changes_nothing_and_keeps_the_container(deployed: dict) -> None:
    before = started_at()
    again = by_host(inv_json("deploy-registry", "--skip-node-check"))["registry1"]
    assert again["status"] == "unchanged", again
    assert all(s["status"] == "unchanged" for s in again["steps"])
    assert started_at() == before


def test_check_mode_changes_nothing(deployed: dict) -> None:
    before = (started_at(), on("registry1", f"sha256sum {CONFIG}"))
    result = inv("registry.config", "storage.delete.enabled=false", "--check")
    assert "-    enabled: true" in result.stdout and "+    enabled: false" in result.stdout
    assert (started_at(), on("registry1", f"sha256sum {CONFIG}")) == before


def test_deletion_toggled_through_config_patch(deployed: dict) -> None:
    inv("registry.config", "storage.delete.enabled=false")
    assert "enabled: false" in on("registry1", f"cat {CONFIG}")
    assert "# Managed by regtk" in on("registry1", f"cat {CONFIG}"), "comments must survive"
    url = f"http://{REGISTRY}/v2/regtk-probe/manifests/sha256:{'0' * 64}"
    assert httpx.delete(url).status_code == 405
    inv("registry.config", "storage.delete.enabled=true")
    assert httpx.delete(url).status_code == 404
    second = by_host(inv_json("registry.config", "storage.delete.enabled=true"))["registry1"]
    assert second["status"] == "unchanged"


def test_a_value_that_breaks_the_registry_is_rolled_back(deployed: dict) -> None:
    before = on("registry1", f"sha256sum {CONFIG}")
    result = inv(
        "registry.config", "http.tls.certificate=/nope.crt http.tls.key=/nope.key", ok=False
    )
    text = result.stdout + result.stderr
    assert "http.tls.certificate" in text
    assert "restored" in text or "rollback" in text
    assert on("registry1", f"sha256sum {CONFIG}") == before
    assert httpx.get(f"http://{REGISTRY}/v2/").status_code == 200


def test_unknown_key_is_refused_before_anything_changes(deployed: dict) -> None:
    before = (started_at(), on("registry1", f"sha256sum {CONFIG}"))
    result = inv("registry.config", "storage.delete.enable=true", ok=False)
    assert "storage.delete.enable" in result.stdout + result.stderr
    assert "enabled" in result.stdout + result.stderr
    assert (started_at(), on("registry1", f"sha256sum {CONFIG}")) == before


def test_an_air_gapped_host_gets_the_image_uploaded(deployed: dict, tmp_path: Path) -> None:
    block = (
        "    port: 5001\n"
        "    image: registry:2.8.2\n"
        "    container: registry-airgap\n"
        "    data_dir: /var/lib/registry-airgap\n"
        "    config_dir: /etc/regtk/registry-airgap\n"
    )
    inventory = lab_inventory(tmp_path, **{"    port: 5000\n": block})
    on("registry1", "docker rm -f registry-airgap >/dev/null 2>&1; docker rmi registry:2.8.2")
    try:
        results = by_host(inv_json("deploy-registry", "-i", str(inventory), "--skip-node-check"))
        steps = {s["step"]: s for s in results["registry1"]["steps"]}
        assert "loaded registry:2.8.2 from this machine's engine" in steps["image"]["reason"]
        assert httpx.get("http://127.0.1.2:5001/v2/").status_code == 200
    finally:
        on("registry1", "docker rm -f registry-airgap >/dev/null 2>&1 || true")
