"""Registry upkeep on the lab: delete shows siblings, untag keeps them, gc frees measured bytes."""

from __future__ import annotations

import pytest

from fabfile.core import inventory
from fabfile.deploy.settings import registry_settings
from fabfile.mirror.plan import private_endpoint, upstream_endpoints
from fabfile.registry.client import RegistryClient
from fabfile.registry.copy import ClientPool, copy_images
from fabfile.registry.reference import parse_reference

from .helpers import NODES, REGISTRY, REPO, by_host, inv, inv_json, on

pytestmark = pytest.mark.lab

UPSTREAM = "127.0.3.1:5443"


@pytest.fixture(scope="module")
def client(lab: object):
    inv("deploy-registry", "--skip-node-check")
    inv("registry.config", "storage.delete.enabled=true")
    inv("mirror")
    inv_ = inventory.load(REPO / "hosts.yml")
    settings = registry_settings(inv_)
    pool = ClientPool(upstream_endpoints(inv_, inv_.hosts["registry1"]))
    with RegistryClient(private_endpoint(settings)) as target:
        yield target, pool
    pool.close()


def push_three_tags(target: RegistryClient, pool: ClientPool) -> None:
    """lab/app:1.0 and lab/app:same share a digest; lab/app:2.0 is another image."""
    pairs = [
        (parse_reference(f"{UPSTREAM}/lab/app:1.0"), parse_reference(f"{REGISTRY}/lab/app:1.0")),
        (parse_reference(f"{UPSTREAM}/lab/tools:1.0"), parse_reference(f"{REGISTRY}/lab/app:2.0")),
    ]
    assert copy_images(pairs, pool, target).ok
    target.put_manifest("lab/app", "same", target.get_manifest("lab/app", "1.0"))


def test_delete_shows_the_sibling_and_takes_it_along(client) -> None:
    target, pool = client
    push_three_tags(target, pool)
    result = inv("registry.delete", "lab/app:1.0", "--yes")
    assert "same" in result.stderr and "1.0" in result.stderr
    assert sorted(target.tags("lab/app")) == ["2.0"]


def test_untag_keeps_the_sibling(client) -> None:
    target, pool = client
    push_three_tags(target, pool)
    inv("registry.untag", "lab/app:same")
    assert sorted(target.tags("lab/app")) == ["1.0", "2.0"]
    assert target.head_manifest("lab/app", "1.0") is not None


def test_delete_on_a_registry_with_deletion_disabled_says_so(client) -> None:
    inv("registry.config", "storage.delete.enabled=false")
    try:
        result = inv("registry.delete", "lab/app:2.0", "--yes", ok=False)
        assert "deletion is disabled" in result.stderr
    finally:
        inv("registry.config", "storage.delete.enabled=true")


def test_gc_frees_space_and_every_platform_of_pause_still_pulls(client) -> None:
    target, pool = client
    push_three_tags(target, pool)
    inv("registry.delete", "lab/app:2.0", "--yes")
    results = by_host(inv_json("registry.gc"))["registry1"]
    assert results["status"] != "failed", results
    assert results["data"]["freed_bytes"] > 0
    assert results["data"]["problems"] == []
    for tag in ("3.6", "3.9", "3.10.1"):
        index = target.get_manifest("pause", tag)
        assert sorted(index.platforms) == ["linux/amd64", "linux/arm64"]
        for child in index.children:
            manifest = target.get_manifest("pause", child.digest)
            assert all(target.blob_exists("pause", b.digest) for b in manifest.blobs)
    on(
        "node1",
        f"ctr -n k8s.io images pull --plain-http --platform linux/arm64 {REGISTRY}/pause:3.9",
    )
    assert "readonly" not in on("registry1", "cat /etc/regtk/registry/config.yml").replace(
        "readonly:\n      enabled: false", ""
    )


def test_gc_refuses_delete_untagged_while_indexes_are_stored(client) -> None:
    result = inv("registry.gc", "--delete-untagged", ok=False)
    assert "--delete-untagged" in result.stdout + result.stderr
    assert "3.0" in result.stdout + result.stderr


def test_run_on_all_nodes_prints_output_and_exit_codes(client) -> None:
    result = inv("run", "-g", "nodes", "echo hello-from-$(cat /etc/hostname 2>/dev/null || echo x)")
    for node in NODES:
        assert f"[{node}] hello-from" in result.stdout
    assert "exit codes" in result.stdout
    failing = inv("run", "-g", "nodes", "systemctl is-active -q docker", ok=False)
    assert "failed on 3 of 4 host(s): node1, node2, node4" in failing.stderr
