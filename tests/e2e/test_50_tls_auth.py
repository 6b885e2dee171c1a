"""The TLS + basic auth variant: the toolkit makes the CA, the registry asks for a login, and
every node pulls with the CA and the credentials the toolkit placed. Ends back on plain HTTP."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers import NODES, REGISTRY, by_host, inv, inv_json, lab_inventory, on

pytestmark = pytest.mark.lab

PASSWORD = "tls-test-password"


@pytest.fixture(scope="module")
def tls_inventory(lab: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("tls")
    (work / "password").write_text(PASSWORD + "\n")
    block = (
        "    pull: false\n"
        "    tls:\n"
        "      generate: true\n"
        f"      dir: {work}/pki\n"
        "    users:\n"
        "      - name: ci\n"
        f"        password_file: {work}/password\n"
    )
    path = lab_inventory(work, **{"    pull: false\n": block})
    yield path
    inv("deploy-registry", "--skip-node-check")
    inv("prepare-nodes")


def test_deploy_with_tls_and_auth(tls_inventory: Path) -> None:
    results = by_host(inv_json("deploy-registry", "-i", str(tls_inventory)))
    assert results["registry1"]["status"] == "changed"
    for node in NODES:
        assert results[node]["status"] == "unchanged", results[node]
    ca = ssl.create_default_context(cafile=str(tls_inventory.parent / "pki" / "ca.crt"))
    assert httpx.get(f"https://{REGISTRY}/v2/", verify=ca).status_code == 401
    assert httpx.get(f"https://{REGISTRY}/v2/", verify=ca, auth=("ci", PASSWORD)).status_code == 200
    assert PASSWORD not in on("registry1", "cat /etc/regtk/registry/auth/htpasswd")


def test_nodes_log_in_and_pull_with_the_ca_the_toolkit_placed(tls_inventory: Path) -> None:
    results = by_host(inv_json("prepare-nodes", "-i", str(tls_inventory)))
    for node in NODES:
        assert results[node]["status"] != "failed", results[node]
    hosts_toml = on("node1", f"cat /etc/containerd/certs.d/{REGISTRY}/hosts.toml")
    assert f'server = "https://{REGISTRY}"' in hosts_toml and "ca = " in hosts_toml
    assert on("node1", f"stat -c %a /etc/containerd/certs.d/{REGISTRY}/hosts.toml").strip() == "600"
    on("node1", f"ctr -n k8s.io images rm {REGISTRY}/pause:3.9 >/dev/null")
    on(
        "node1",
        f"ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d {REGISTRY}/pause:3.9",
    )
    assert on("node3", f"ls /etc/docker/certs.d/{REGISTRY}/").split() == ["ca.crt"]
    on("node3", f"docker rmi {REGISTRY}/pause:3.6 >/dev/null")
    on("node3", f"docker pull {REGISTRY}/pause:3.6")
    report = by_host(inv_json("nodes.report", "-i", str(tls_inventory)))
    for node in NODES:
        assert report[node]["data"]["ready"] is True, report[node]["data"]["problems"]
