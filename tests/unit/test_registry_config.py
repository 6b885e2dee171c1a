"""The registry's config.yml: the path an image reads, patching, validation, effective settings.

Cases 2 and 3 of the field cases are here with their inputs. Where the distribution registry
binary is installed (`docker-registry`, 2.8.x), the verdicts are checked against the real
registry: a file the validator refuses for syntax or version stops the registry, and a file it
accepts lets the registry start and listen on a loopback port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fabfile.registry.config import (
    V2_PATH,
    V3_PATH,
    RegistryConfigError,
    apply_environment,
    config_path_for_image,
    effective_settings,
    parse_assignments,
    parse_value,
    patch_config,
    validate_config,
)
from fabfile.runtimes.findings import Severity

PATH = V2_PATH

IMAGE_CASES = [
    ("registry:2", None, V2_PATH),
    ("registry:2.8.3", None, V2_PATH),
    ("docker.io/library/registry:2", None, V2_PATH),
    ("127.0.0.1:5000/mirror/registry:2.8", None, V2_PATH),
    ("registry:3", None, V3_PATH),
    ("registry:3.0.0", None, V3_PATH),
    ("registry", None, V3_PATH),
    ("registry:latest", None, V3_PATH),
    ("regtk-lab-registry:local", ["serve", "/etc/docker/registry/config.yml"], V2_PATH),
    ("registry:3", ["serve", "/srv/registry.yaml"], "/srv/registry.yaml"),
]


@pytest.mark.parametrize(("image", "command", "expected"), IMAGE_CASES)
def test_config_path_for_image(image, command, expected):
    assert config_path_for_image(image, command) == expected


@pytest.mark.parametrize("image", ["regtk-lab-registry:local", "registry@sha256:" + "a" * 64])
def test_config_path_unknown_tag_asks_for_the_command(image):
    with pytest.raises(RegistryConfigError, match="docker inspect"):
        config_path_for_image(image)


# Case 2: the sloppy patch (tab before "enabled", version line lost).
CASE2 = """\
# config.yml after a sloppy patch (tab before "enabled", version line lost)
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
\tenabled: true
http:
  addr: :5000
"""

# Case 3's starting config, and its pull-through variant.
CASE3 = """\
version: 0.1
storage:
  filesystem: {rootdirectory: /var/lib/registry}
http: {addr: ":5000"}
"""
CASE3_PROXY = CASE3.replace(
    'http: {addr: ":5000"}',
    'http: {addr: ":5000"}\nproxy: {remoteurl: https://upstream.example.test}',
).replace(
    "{rootdirectory: /var/lib/registry}",
    "{rootdirectory: /var/lib/registry}\n  delete:\n    enabled: true",
)

GOOD = """\
version: 0.1
log:
  level: info  # keep
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
  maintenance:
    uploadpurging: {enabled: true, age: 168h, interval: 24h, dryrun: false}
    readonly:
      enabled: false
http:
  addr: 127.0.2.1:5000
  headers:
    X-Content-Type-Options: [nosniff]
  tls:
    certificate: /certs/server.crt
    key: /certs/server.key
auth:
  htpasswd: {realm: regtk, path: /auth/htpasswd}
"""

VALIDATE_CASES = [
    ("good", GOOD, []),
    ("case 3", CASE3, []),
    ("case 2: tab and lost version", CASE2, [("enabled", 6), ("version", None)]),
    ("version missing", CASE3.replace("version: 0.1\n", ""), [("version", None)]),
    ("version wrong", CASE3.replace("0.1", "0.2"), [("version", 1)]),
    (
        "unknown key with a close match",
        CASE3 + "storage2: {}\n",
        [("storage2", 5)],
    ),
    (
        "nested unknown key",
        GOOD.replace("rootdirectory:", "rootdir:"),
        [("storage.filesystem.rootdir", 6)],
    ),
    (
        "wrong type",
        GOOD.replace("enabled: true", "enabled: 'yes'", 1),
        [("storage.delete.enabled", 8)],
    ),
    (
        "bad duration",
        GOOD.replace("age: 168h", "age: a week"),
        [("storage.maintenance.uploadpurging.age", 10)],
    ),
    ("two drivers", CASE3.replace("http:", "  inmemory: {}\nhttp:"), [("storage", 2)]),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in VALIDATE_CASES], ids=[c[0] for c in VALIDATE_CASES]
)
def test_validate_config(text, expected):
    findings = validate_config(text, PATH)
    assert [(f.key, f.line) for f in findings] == expected
    assert all(f.severity is Severity.ERROR for f in findings)


def test_unknown_key_suggests_nearest():
    findings = validate_config(CASE3 + "htpp: {}\n", PATH)
    assert "did you mean http?" in findings[0].message


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("version: 0.1\nhttp: {addr: @x}\n", 2, "column 14"),
        ("version: 0.1\nhttp:\n  addr: [1\n", None, ""),
    ],
)
def test_syntax_errors_name_line_and_column(text, line, column):
    with pytest.raises(RegistryConfigError) as raised:
        validate_config(text, PATH)
    if line is not None:
        assert raised.value.line == line
        assert column in str(raised.value)
    assert str(raised.value).startswith(PATH)


VALUE_CASES = [
    ("true", True),
    ("false", False),
    ("5", 5),
    ("0.1", 0.1),
    (":5000", ":5000"),
    ("https://upstream.example.test", "https://upstream.example.test"),
    ("[a, b]", ["a", "b"]),
    ("24h", "24h"),
    ("", ""),
    ("null", None),
]


@pytest.mark.parametrize(("text", "value"), VALUE_CASES)
def test_parse_value_uses_yaml_types(text, value):
    assert parse_value(text) == value


def test_case3_enable_delete_keeps_the_rest():
    result = patch_config(CASE3, parse_assignments(["storage.delete.enabled=true"]), PATH)
    assert result.text == CASE3.replace("http:", "  delete:\n    enabled: true\nhttp:")
    assert result.changes == [("storage.delete.enabled", None, True)]
    assert effective_settings(result.text, PATH).can_delete


def test_patch_keeps_comments_and_order():
    result = patch_config(
        GOOD, {"storage.maintenance.readonly.enabled": True, "log.level": "debug"}, PATH
    )
    assert result.text == GOOD.replace("enabled: false", "enabled: true").replace(
        "level: info  # keep", "level: debug # keep"
    )
    assert [c[0] for c in result.changes] == ["storage.maintenance.readonly.enabled", "log.level"]


def test_patch_twice_equals_once():
    once = patch_config(CASE3, {"storage.delete.enabled": True}, PATH)
    twice = patch_config(once.text, {"storage.delete.enabled": True}, PATH)
    assert twice.text == once.text
    assert not twice.changed


PATCH_REFUSED = [
    ("unknown key", {"storage.delete.enable": True}, "did you mean storage.delete.enabled"),
    ("wrong type", {"storage.delete.enabled": "please"}, "true or false"),
    ("under a scalar", {"http.addr.port": 5000}, "holds the value"),
    ("dropping version", {"version": "0.2"}, "only reads version 0.1"),
]


@pytest.mark.parametrize(
    ("assignments", "message"), [c[1:] for c in PATCH_REFUSED], ids=[c[0] for c in PATCH_REFUSED]
)
def test_patch_refuses_a_breaking_value(assignments, message):
    with pytest.raises(RegistryConfigError, match=message) as raised:
        patch_config(CASE3, assignments, PATH)
    assert str(raised.value).startswith(PATH)


def test_patch_of_case2_is_refused_with_the_tab_line():
    with pytest.raises(RegistryConfigError, match=r"config.yml:6: enabled: .*tab"):
        patch_config(CASE2, {"storage.delete.enabled": True}, PATH)


def test_bad_assignment_syntax():
    with pytest.raises(RegistryConfigError, match="KEY=VALUE"):
        parse_assignments(["storage.delete.enabled"])


EFFECTIVE_CASES = [
    ("case 3: delete off by default", CASE3, [], (False, False, False), "deletion is disabled"),
    ("case 3 variant: proxy mode", CASE3_PROXY, [], (True, True, False), "pull-through cache"),
    (
        "env override enables delete",
        CASE3,
        ["REGISTRY_STORAGE_DELETE_ENABLED=true", "PATH=/usr/bin"],
        (True, False, False),
        None,
    ),
    (
        "env override disables what the file enables",
        GOOD,
        ["REGISTRY_STORAGE_DELETE_ENABLED=false"],
        (False, False, False),
        "deletion is disabled",
    ),
    (
        "env turns on read-only and proxy",
        GOOD,
        [
            "REGISTRY_STORAGE_MAINTENANCE_READONLY={enabled: true}",
            "REGISTRY_PROXY_REMOTEURL=https://upstream.example.test",
        ],
        (True, True, True),
        "pull-through cache",
    ),
]


@pytest.mark.parametrize(
    ("text", "env", "expected", "refusal"),
    [c[1:] for c in EFFECTIVE_CASES],
    ids=[c[0] for c in EFFECTIVE_CASES],
)
def test_effective_settings(text, env, expected, refusal):
    settings = effective_settings(text, PATH, env)
    assert (settings.delete_enabled, settings.proxy_mode, settings.read_only) == expected
    assert settings.delete_refusal() == refusal or refusal in (settings.delete_refusal() or "")


def test_env_is_applied_in_sorted_order():
    data = apply_environment(
        {"storage": {"filesystem": {"rootdirectory": "/a"}}},
        {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/b", "REGISTRY_STORAGE": "{inmemory: {}}"},
    )
    assert data["storage"] == {"inmemory": {}, "filesystem": {"rootdirectory": "/b"}}


@given(st.booleans(), st.sampled_from(["info", "debug", "warn"]))
def test_patch_is_idempotent(enabled, level):
    assignments = {"storage.delete.enabled": enabled, "log.level": level}
    once = patch_config(CASE3, assignments, PATH)
    assert patch_config(once.text, assignments, PATH).text == once.text


REGISTRY = shutil.which("docker-registry") or shutil.which("registry")
real_registry = pytest.mark.skipif(REGISTRY is None, reason="no distribution registry binary")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _registry_starts(tmp_path: Path, text: str) -> tuple[bool, str]:
    """Run the real registry on the file; True once it listens, False when it exits."""
    assert REGISTRY is not None
    config = tmp_path / "config.yml"
    config.write_text(text)
    log = tmp_path / "registry.log"
    with log.open("w") as out:
        process = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if "listening on" in log.read_text():
                    return True, log.read_text()
                if process.poll() is not None:
                    return False, log.read_text()
                time.sleep(0.05)
            raise AssertionError(f"the registry neither listened nor exited: {log.read_text()}")
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)


def _loopback(text: str, tmp_path: Path) -> str:
    return text.replace("/var/lib/registry", str(tmp_path / "data")).replace(
        ":5000", f"127.0.0.1:{_free_port()}"
    )


REAL_CASES = [
    ("case 2 sloppy patch", CASE2, False),
    ("case 3", CASE3, True),
    (
        "case 3 with delete enabled",
        CASE3.replace("http:", "  delete:\n    enabled: true\nhttp:"),
        True,
    ),
    ("version missing", CASE3.replace("version: 0.1\n", ""), False),
]


@real_registry
@pytest.mark.parametrize(
    ("text", "valid"), [c[1:] for c in REAL_CASES], ids=[c[0] for c in REAL_CASES]
)
def test_real_registry_agrees(tmp_path, text, valid):
    text = _loopback(text, tmp_path)
    assert (validate_config(text, PATH) == []) is valid
    started, log = _registry_starts(tmp_path, text)
    assert started is valid, log
