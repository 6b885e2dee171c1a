"""prepare-nodes end to end: trust, pause image, sandbox setting, kubelet flag by version."""

from __future__ import annotations

import pytest

import fabfile.lab

from .helpers import (
    NODES,
    REGISTRY,
    by_host,
    inv,
    inv_json,
    kubelet_state,
    on,
    snapshot,
)

pytestmark = pytest.mark.lab

FLAG = "--pod-infra-container-image"
PAUSE = {"node1": "3.9", "node2": "3.9", "node3": "3.6", "node4": "3.10.1"}
WATCHED = [
    "/etc/containerd/config.toml",
    f"/etc/containerd/certs.d/{REGISTRY}/hosts.toml",
    "/etc/docker/daemon.json",
    "/var/lib/kubelet/kubeadm-flags.env",
    "/etc/default/kubelet",
    "/etc/sysconfig/kubelet",
]


@pytest.fixture(scope="module")
def first_run(lab: object) -> dict[str, object]:
    inv("deploy-registry", "--skip-node-check")
    fabfile.lab.reset(NODES)
    # node4 claims kubelet 1.35 but was left with the flag an older kubeadm wrote: it cannot
    # start until the flag is gone.
    stale = f"{FLAG}=registry.k8s.io/pause:3.9"
    on(
        "node4",
        f"sed -i 's|^KUBELET_KUBEADM_ARGS=\"|&{stale} |' /var/lib/kubelet/kubeadm-flags.env"
        "; systemctl restart kubelet",
    )
    before = {n: kubelet_state(n)[0] for n in NODES}
    results = inv_json("prepare-nodes")
    return {"results": results, "pids_before": before}


def test_every_node_is_ready_after_one_run(first_run: dict) -> None:
    hosts = by_host(first_run["results"])
    for node in NODES:
        assert hosts[node]["status"] in ("changed", "unchanged"), hosts[node]
    report = by_host(inv_json("nodes.report"))
    for node in NODES:
        assert report[node]["data"]["ready"] is True, report[node]["data"]["problems"]


@pytest.mark.parametrize("node", ["node1", "node2", "node4"])
def test_containerd_nodes_trust_the_registry_and_name_the_private_pause(first_run, node) -> None:
    private = f"{REGISTRY}/pause:{PAUSE[node]}"
    dump = on(node, "containerd config dump")
    assert f'sandbox_image = "{private}"' in dump
    assert 'config_path = "/etc/containerd/certs.d"' in dump
    hosts_toml = on(node, f"cat /etc/containerd/certs.d/{REGISTRY}/hosts.toml")
    assert f'server = "http://{REGISTRY}"' in hosts_toml
    images = on(node, "ctr -n k8s.io images ls -q")
    assert private in images.split()
    assert f"registry.k8s.io/pause:{PAUSE[node]}" in images.split()


def test_docker_node_trusts_the_registry_and_holds_both_names(first_run: dict) -> None:
    config = on("node3", "cat /etc/docker/daemon.json")
    assert REGISTRY in config and '"bridge": "none"' in config
    assert REGISTRY in on("node3", "docker info --format '{{json .RegistryConfig.IndexConfigs}}'")
    names = on("node3", "docker images --format '{{.Repository}}:{{.Tag}}'").split()
    assert f"{REGISTRY}/pause:3.6" in names and "registry.k8s.io/pause:3.6" in names


@pytest.mark.parametrize(
    ("node", "has_flag"), [("node1", True), ("node2", True), ("node3", True), ("node4", False)]
)
def test_kubelet_restarted_once_with_the_flag_its_version_needs(first_run, node, has_flag):
    pid, cmdline = kubelet_state(node)
    assert pid != first_run["pids_before"][node], "the kubelet was not restarted"
    assert on(node, "systemctl is-active kubelet").strip() == "active"
    if has_flag:
        assert f"{FLAG}={REGISTRY}/pause:{PAUSE[node]}" in cmdline
    else:
        assert FLAG not in cmdline


def test_a_second_run_changes_and_restarts_nothing(first_run: dict) -> None:
    before = {n: snapshot(n, WATCHED) for n in NODES}
    again = by_host(inv_json("prepare-nodes"))
    for node in NODES:
        assert again[node]["status"] == "unchanged", again[node]
        assert snapshot(node, WATCHED) == before[node]


def test_check_mode_changes_nothing_on_a_drifted_node(first_run: dict) -> None:
    on("node1", "sed -i 's|/pause:3.9\"|/pause:3.8\"|' /etc/containerd/config.toml")
    before = {n: snapshot(n, WATCHED) for n in NODES}
    result = inv("prepare-nodes", "--check")
    assert "would" in result.stdout + result.stderr
    assert "pause:3.8" in result.stdout
    for node in NODES:
        assert snapshot(node, WATCHED) == before[node]
    inv("prepare-nodes", "-H", "node1")


def test_a_config_containerd_cannot_read_is_refused_before_anything_changes(first_run) -> None:
    on("node1", "sed -i '1a oom_score = \"not a number\"' /etc/containerd/config.toml")
    on("node1", "sed -i 's|/pause:3.9\"|/pause:3.8\"|' /etc/containerd/config.toml")
    damaged = on("node1", "sha256sum /etc/containerd/config.toml")
    pid = on("node1", "systemctl show -p MainPID --value containerd")
    try:
        results = by_host(inv_json("prepare-nodes", "--skip-mirror", ok=False))
        assert "validation of /etc/containerd/config.toml failed" in results["node1"]["error"]
        assert on("node1", "sha256sum /etc/containerd/config.toml") == damaged
        assert on("node1", "systemctl show -p MainPID --value containerd") == pid
        for node in ("node2", "node3", "node4"):
            assert results[node]["status"] == "unchanged"
    finally:
        on("node1", "sed -i '/^oom_score = \"not a number\"/d' /etc/containerd/config.toml")
        inv("prepare-nodes", "-H", "node1", "--skip-mirror")


def test_a_runtime_that_will_not_start_is_rolled_back_and_the_others_finish(first_run) -> None:
    broken = '[grpc]\n  address = "/proc/regtk-cannot-create/containerd.sock"\n'
    on("node1", f"printf '{broken}' >> /etc/containerd/config.toml")
    on("node1", "sed -i 's|/pause:3.9\"|/pause:3.8\"|' /etc/containerd/config.toml")
    damaged = on("node1", "sha256sum /etc/containerd/config.toml")
    try:
        results = by_host(inv_json("prepare-nodes", "--skip-mirror", ok=False))
        assert results["node1"]["status"] == "failed"
        steps = {s["step"]: s for s in results["node1"]["steps"]}
        assert steps["restart containerd"]["status"] == "failed"
        assert "restore" in steps
        assert on("node1", "sha256sum /etc/containerd/config.toml") == damaged
        for node in ("node2", "node3", "node4"):
            assert results[node]["status"] == "unchanged"
    finally:
        on("node1", "sed -i '/^\\[grpc\\]/,$d' /etc/containerd/config.toml")
        on("node1", "systemctl restart containerd")
        inv("prepare-nodes", "-H", "node1", "--skip-mirror")


def test_trust_registry_alone_on_a_build_host(first_run: dict) -> None:
    results = by_host(inv_json("trust-registry", "-H", "registry1,node1"))
    assert results["node1"]["status"] == "unchanged", results["node1"]
    assert results["registry1"]["status"] in ("changed", "unchanged")
    assert REGISTRY in on(
        "registry1", "docker info --format '{{json .RegistryConfig.IndexConfigs}}'"
    )
    again = by_host(inv_json("trust-registry", "-H", "registry1,node1"))
    assert all(h["status"] == "unchanged" for h in again.values()), again
    assert by_host(inv_json("trust-registry", "-H", "gw1", ok=False))["gw1"]["error"].startswith(
        "neither Docker nor containerd runs"
    )
