"""The lab's host table and hosts.yml describe the same hosts (no running lab needed)."""

from __future__ import annotations

from typing import Any

import pytest
from ruamel.yaml import YAML

from fabfile.lab import paths
from fabfile.lab.hosts import HOSTS, LabHost


def _inventory() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load((paths.REPO / "hosts.yml").read_text())
    return data


def test_inventory_lists_exactly_the_lab_hosts() -> None:
    assert sorted(_inventory()["hosts"]) == sorted(h.name for h in HOSTS)


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.name)
def test_inventory_entry_matches_lab_host(host: LabHost) -> None:
    inventory = _inventory()
    entry = inventory["hosts"][host.name]
    default_user = inventory["defaults"]["user"]
    assert entry["address"] == host.address
    assert entry.get("user", default_user) == host.user
    assert entry.get("jump") == host.jump
    if host.kubelet is not None:
        version = entry.get("vars", {}).get(
            "kubernetes_version", inventory["vars"]["kubernetes_version"]
        )
        assert version == host.kubelet.version


def test_inventory_files_are_where_the_lab_writes_them() -> None:
    inventory = _inventory()
    defaults = inventory["defaults"]
    assert paths.REPO / defaults["key_file"] == paths.CLIENT_KEY
    assert paths.REPO / defaults["known_hosts"] == paths.KNOWN_HOSTS
    endpoint = inventory["vars"]["upstream_endpoints"]["registry.k8s.io"]
    assert endpoint["url"] == "https://127.0.3.1:5443"
    assert paths.REPO / endpoint["ca_file"] == paths.CA_CERT
    assert paths.REPO / endpoint["password_file"] == paths.UPSTREAM_PASSWORD
    assert paths.REPO / inventory["hosts"]["node2"]["sudo_password_file"] == paths.DEPLOY_PASSWORD
