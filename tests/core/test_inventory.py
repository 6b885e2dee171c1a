"""Inventory loading and validation, cases as data."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fabfile.core import inventory
from fabfile.core.errors import InventoryError

REPO = Path(__file__).resolve().parents[2]

GOOD = """
defaults:
  user: deploy
  key_file: keys/id
vars:
  registry: {address: r.example.internal, port: 5000}
  level: all
groups:
  registry:
    hosts: [reg]
  nodes:
    user: admin
    vars: {level: group, registry: {port: 5001}}
    hosts: [n1, n2]
hosts:
  reg: {address: registry.example.internal}
  n1: {address: node1.example.internal, port: 2222}
  n2:
    address: node2.example.internal
    jump: reg
    vars: {level: host}
"""

BAD_CASES = [
    (
        "unknown top key",
        "hostz: {}\nhosts: {a: {address: x}}",
        r"hosts.yml:1: hostz: unknown key \(did you mean 'hosts'\?\)",
    ),
    (
        "unknown host key",
        "hosts:\n  a: {address: x, prot: 22}",
        r"hosts\.a\.prot: unknown key \(did you mean 'port'\?\).*valid keys: address, port",
    ),
    ("missing address", "hosts:\n  a: {port: 22}", r"hosts\.a\.address: missing"),
    (
        "bad port",
        "hosts:\n  a: {address: x, port: 70000}",
        r"hosts\.a\.port: 70000 is not a port number",
    ),
    (
        "port as text",
        "hosts:\n  a: {address: x, port: ssh}",
        r"hosts\.a\.port: 'ssh' is not a port number",
    ),
    ("duplicate host", "hosts:\n  a: {address: x}\n  a: {address: y}", r"yaml: .*duplicate key"),
    (
        "group names unknown host",
        "groups:\n  nodes: {hosts: [a, b]}\nhosts:\n  a: {address: x}",
        r":2: groups\.nodes\.hosts: unknown host 'b'.*valid: a",
    ),
    (
        "host twice in a group",
        "groups:\n  nodes: {hosts: [a, a]}\nhosts:\n  a: {address: x}",
        r"listed twice",
    ),
    (
        "undefined jump",
        "hosts:\n  a: {address: x, jump: gw}",
        r"hosts\.a\.jump: unknown jump host 'gw'",
    ),
    ("own jump", "hosts:\n  a: {address: x, jump: a}", r"cannot be its own jump host"),
    ("no hosts", "vars: {}", r"hosts: no hosts defined"),
    ("not yaml", "hosts: [\n", r"hosts.yml:\d+: yaml:"),
    (
        "vars not a mapping",
        "hosts:\n  a: {address: x, vars: [1]}",
        r"hosts\.a\.vars: expected a mapping, got a list",
    ),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_levels_merge_with_the_host_winning(tmp_path: Path) -> None:
    inv = inventory.load(write(tmp_path, GOOD))
    reg, n1, n2 = inv.hosts["reg"], inv.hosts["n1"], inv.hosts["n2"]
    assert (reg.user, n1.user) == ("deploy", "admin")
    assert n1.port == 2222 and reg.port is None
    assert reg.key_file == tmp_path / "keys/id"
    assert [reg.vars["level"], n1.vars["level"], n2.vars["level"]] == ["all", "group", "host"]
    assert n1.vars["registry"] == {"address": "r.example.internal", "port": 5001}
    assert n2.jump == "reg"
    assert inv.groups == {"registry": ["reg"], "nodes": ["n1", "n2"]}


@pytest.mark.parametrize(("name", "text", "pattern"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_inventories_name_the_file_and_key(tmp_path: Path, name: str, text: str, pattern: str):
    with pytest.raises(InventoryError, match=pattern) as err:
        inventory.load(write(tmp_path, text))
    assert str(tmp_path / "hosts.yml") in str(err.value)


SELECT_CASES = [
    ({"default_group": "nodes"}, ["n1", "n2"]),
    ({}, ["reg", "n1", "n2"]),
    ({"group": "registry", "default_group": "nodes"}, ["reg"]),
    ({"hosts": "n2,reg", "default_group": "nodes"}, ["n2", "reg"]),
    ({"hosts": "n2,reg", "group": "nodes"}, ["n2"]),
]


@pytest.mark.parametrize(("kwargs", "expected"), SELECT_CASES)
def test_select(tmp_path: Path, kwargs: dict[str, str], expected: list[str]) -> None:
    inv = inventory.load(write(tmp_path, GOOD))
    assert [h.name for h in inv.select(**kwargs)] == expected


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"group": "nodez"}, r"unknown group 'nodez' \(did you mean 'nodes'\?\)"),
        ({"hosts": "n3"}, r"unknown host 'n3'"),
    ],
)
def test_select_unknown_names(tmp_path: Path, kwargs: dict[str, str], pattern: str) -> None:
    inv = inventory.load(write(tmp_path, GOOD))
    with pytest.raises(InventoryError, match=pattern):
        inv.select(**kwargs)


KUBESPRAY = """
all:
  vars:
    registry: {address: registry.example.internal, port: 5000}
    ansible_user: core
    ansible_port: 2200
    ansible_become_password: never-carried-over
  hosts:
    cp1: {ansible_host: 10.0.0.1, ansible_user: ubuntu, ip: 10.0.0.1}
    w1: {ansible_host: 10.0.0.2, ansible_port: 2222, ansible_user: ubuntu}
    w2: {ansible_host: 10.0.0.3}
  children:
    kube_control_plane:
      hosts: {cp1: }
    kube_node:
      hosts: {w1: , w2: }
    etcd:
      hosts: {cp1: }
    k8s_cluster:
      children: {kube_control_plane: , kube_node: }
      vars: {kube_version: v1.30.2, ansible_ssh_private_key_file: keys/cluster}
"""


def test_kubespray_inventory_maps_onto_the_same_groups(tmp_path: Path) -> None:
    inv = inventory.load(write(tmp_path, KUBESPRAY))
    assert inv.groups["nodes"] == ["cp1", "w1", "w2"]
    assert inv.groups["k8s_cluster"] == ["cp1", "w1", "w2"]
    w1 = inv.hosts["w1"]
    assert (w1.address, w1.port, w1.user) == ("10.0.0.2", 2222, "ubuntu")
    assert inv.hosts["cp1"].vars["ip"] == "10.0.0.1"
    assert w1.vars["kubernetes_version"] == "1.30.2"
    assert w1.vars["registry"]["port"] == 5000
    w2 = inv.hosts["w2"]
    assert (w2.user, w2.port, w2.key_file) == ("core", 2200, tmp_path / "keys/cluster")
    assert "never-carried-over" not in repr(inv)


@pytest.mark.parametrize("name", ["hosts.yml", "hosts.example.yml"])
def test_shipped_inventories_load(name: str) -> None:
    path = REPO / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    inv = inventory.load(path)
    assert "registry" in inv.groups and "nodes" in inv.groups
