"""Docker daemon.json merging, entry normalisation (case 1) and flag conflicts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fabfile.runtimes.docker import (
    apply_action,
    docker_ca_path,
    flag_conflicts,
    merge_daemon_json,
    normalise_registry_entry,
)
from fabfile.runtimes.findings import ConfigParseError, DockerConfigError, Severity

REGISTRY = "registry.example.test:5000"

NORMALISE_CASES = [
    (" registry.example.test:5000", REGISTRY),
    ("http://registry.example.test:5000", REGISTRY),
    ("https://registry.example.test:5000/", REGISTRY),
    ("registry.example.test:5000/v2/", REGISTRY),
    ("127.0.1.10:5000", "127.0.1.10:5000"),
    ("10.0.0.0/8", "10.0.0.0/8"),
]


@pytest.mark.parametrize(("entry", "expected"), NORMALISE_CASES)
def test_normalise_registry_entry(entry, expected):
    assert normalise_registry_entry(entry) == expected


@given(st.text(alphabet="abc.:/ 0123456789htps", max_size=40))
def test_normalise_is_idempotent(entry):
    once = normalise_registry_entry(entry)
    assert normalise_registry_entry(once) == once


# Case 1's three broken variants of node1:/etc/docker/daemon.json, one at a time.
CASE1 = [
    ("leading space", '{"insecure-registries": [" registry.example.test:5000"]}', [REGISTRY], 1),
    ("scheme", '{"insecure-registries": ["http://registry.example.test:5000"]}', [REGISTRY], 1),
    (
        "IP while images use the hostname",
        '{"insecure-registries": ["127.0.1.10:5000"]}',
        ["127.0.1.10:5000", REGISTRY],
        0,
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "problems"), [c[1:] for c in CASE1], ids=[c[0] for c in CASE1]
)
def test_case1_variants(text, expected, problems):
    edit = merge_daemon_json(text, [REGISTRY])
    assert json.loads(edit.text)["insecure-registries"] == expected
    assert len(edit.problems) == problems
    assert edit.findings, "every variant is reported"
    assert edit.action == "reload"


def test_ip_form_added_when_asked():
    edit = merge_daemon_json(None, [REGISTRY], extra_forms={REGISTRY: ["127.0.1.10:5000"]})
    assert edit.after == {"insecure-registries": [REGISTRY, "127.0.1.10:5000"]}
    assert edit.findings == []


def test_other_keys_and_order_are_kept():
    text = (
        '{\n  "bridge": "none",\n  "iptables": false,\n  "insecure-registries": ["a:1", "a:1"]\n}\n'
    )
    edit = merge_daemon_json(text, [REGISTRY])
    assert list(edit.after) == ["bridge", "iptables", "insecure-registries"]
    assert edit.after["insecure-registries"] == ["a:1", REGISTRY]
    assert edit.after["bridge"] == "none" and edit.after["iptables"] is False


def test_unchanged_file_keeps_its_bytes():
    text = '{"insecure-registries":["registry.example.test:5000"]}'
    edit = merge_daemon_json(text, [REGISTRY])
    assert edit.text == text
    assert not edit.changed
    assert edit.action == "none"


@given(st.lists(st.sampled_from(["a:1", " a:1", "http://a:1/", "b:2", "c:3/"]), max_size=6))
def test_merge_is_idempotent(entries):
    first = merge_daemon_json(json.dumps({"insecure-registries": entries}), [REGISTRY])
    second = merge_daemon_json(first.text, [REGISTRY])
    assert second.text == first.text
    assert not second.changed


def test_invalid_json_names_line_and_column():
    with pytest.raises(
        ConfigParseError, match=r"daemon.json:3: \(file\): not valid JSON at column"
    ):
        merge_daemon_json('{\n  "bridge": "none",\n  "iptables": false,,\n}\n', [REGISTRY])


def test_wrong_type_is_refused():
    with pytest.raises(DockerConfigError, match="insecure-registries"):
        merge_daemon_json('{"insecure-registries": "a:1"}', [REGISTRY])


ACTION_CASES = [
    ({}, {}, "none"),
    ({}, {"insecure-registries": ["a:1"]}, "reload"),
    ({"registry-mirrors": []}, {"registry-mirrors": ["https://m"]}, "reload"),
    ({}, {"insecure-registries": ["a:1"], "data-root": "/d"}, "restart"),
]


@pytest.mark.parametrize(("before", "after", "action"), ACTION_CASES)
def test_apply_action(before, after, action):
    assert apply_action(before, after) == action


def test_ca_path():
    assert docker_ca_path(REGISTRY) == f"/etc/docker/certs.d/{REGISTRY}/ca.crt"


UNIT_PLAIN = """\
# /lib/systemd/system/docker.service
[Unit]
Description=Docker Application Container Engine

[Service]
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
"""

UNIT_FLAG = """\
# /lib/systemd/system/docker.service
[Service]
ExecStart=/usr/bin/dockerd -H fd://

# /etc/systemd/system/docker.service.d/registry.conf
[Service]
ExecStart=
ExecStart=/usr/bin/dockerd -H fd:// --insecure-registry=registry.example.test:5000
"""

UNIT_ENV = """\
# /lib/systemd/system/docker.service
[Service]
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/bin/dockerd -H fd:// $DOCKER_OPTS
"""

LEGACY = 'DOCKER_OPTS="--insecure-registry registry.example.test:5000"\n'

CONFLICT_CASES = [
    ("no flags", UNIT_PLAIN, {}, {"insecure-registries": [REGISTRY]}, []),
    (
        "hosts in both",
        UNIT_PLAIN,
        {},
        {"hosts": ["unix:///run/docker.sock"]},
        [(Severity.ERROR, "hosts")],
    ),
    (
        "drop-in flag and daemon.json key",
        UNIT_FLAG,
        {},
        {"insecure-registries": [REGISTRY]},
        [(Severity.ERROR, "insecure-registries")],
    ),
    (
        "legacy file the unit ignores",
        UNIT_PLAIN,
        {"/etc/default/docker": LEGACY, "/etc/sysconfig/docker": None},
        {},
        [(Severity.WARNING, "DOCKER_OPTS")],
    ),
    (
        "legacy file the unit loads conflicts",
        UNIT_ENV,
        {"/etc/default/docker": LEGACY},
        {"insecure-registries": [REGISTRY]},
        [(Severity.ERROR, "insecure-registries")],
    ),
]


@pytest.mark.parametrize(
    ("unit", "env", "daemon", "expected"),
    [c[1:] for c in CONFLICT_CASES],
    ids=[c[0] for c in CONFLICT_CASES],
)
def test_flag_conflicts(unit, env, daemon, expected):
    findings = flag_conflicts(daemon, unit, env)
    assert [(f.severity, f.key) for f in findings] == expected
