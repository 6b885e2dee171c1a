"""Registry deploy pieces without a host: settings, config.yml rendering, htpasswd, TLS files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from cryptography import x509

from fabfile.core import inventory
from fabfile.core.errors import InventoryError
from fabfile.deploy import htpasswd, pki
from fabfile.deploy.deploy import render_config
from fabfile.deploy.settings import RegistrySettings, User, registry_settings
from fabfile.registry.config import effective_settings, load, validate_config


def settings_from(tmp_path: Path, registry: dict[str, Any]) -> RegistrySettings:
    data = {
        "vars": {"registry": registry},
        "groups": {"registry": {"hosts": ["r"]}},
        "hosts": {"r": {"address": "127.0.0.1"}},
    }
    path = tmp_path / "hosts.yml"
    path.write_text(json.dumps(data))
    return registry_settings(inventory.load(path))


RENDER_CASES = [
    ({"address": "127.0.1.2"}, {"http.addr": "127.0.1.2:5000", "delete": True, "tls": False}),
    ({"address": "r.example.internal", "publish": "port"}, {"http.addr": ":5000"}),
    ({"address": "a", "delete": False, "readonly": True}, {"delete": False, "readonly": True}),
    ({"address": "a", "config": {"log": {"level": "debug"}}}, {"log.level": "debug"}),
    ({"address": "a", "config": {"storage.delete.enabled": False}}, {"delete": False}),
    ({"address": "a", "proxy": {"remoteurl": "https://up.example.internal"}}, {"proxy": True}),
    ({"address": "a", "headers": {"X-Site": ["lab"]}}, {"http.headers.X-Site": ["lab"]}),
]


@pytest.mark.parametrize(("registry", "expected"), RENDER_CASES)
def test_rendered_config_is_valid_and_says_what_the_inventory_says(
    tmp_path: Path, registry: dict[str, Any], expected: dict[str, Any]
) -> None:
    settings = settings_from(tmp_path, registry)
    text = render_config(settings, "/etc/docker/registry")
    assert [f for f in validate_config(text, "config.yml") if f.severity.value == "error"] == []
    data = load(text, "config.yml")
    effective = effective_settings(text, "config.yml")
    for key, value in expected.items():
        if key == "delete":
            assert effective.delete_enabled is value
        elif key == "readonly":
            assert effective.read_only is value
        elif key == "proxy":
            assert effective.proxy_mode is value
        elif key == "tls":
            assert ("tls" in data["http"]) is value
        else:
            node: Any = data
            for part in key.split("."):
                node = node[part]
            assert node == value


def test_tls_and_auth_paths_follow_the_mount(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    registry = {
        "address": "127.0.1.2",
        "tls": {"generate": True, "dir": str(tmp_path / "pki")},
        "users": [{"name": "ci", "password_file": str(tmp_path / "pw")}],
    }
    settings = settings_from(tmp_path, registry)
    text = render_config(settings, "/etc/distribution")
    data = load(text, "config.yml")
    assert data["http"]["tls"]["certificate"] == "/etc/distribution/certs/server.crt"
    assert data["auth"]["htpasswd"]["path"] == "/etc/distribution/auth/htpasswd"
    assert "s3cret" not in text


SETTINGS_ERRORS = [
    ({}, r"vars\.registry\.address: missing"),
    ({"address": "a", "prot": 1}, r"vars\.registry\.prot: unknown key \(did you mean 'port'\?\)"),
    ({"address": "a", "port": 0}, r"vars\.registry\.port: 0 is not a port number"),
    ({"address": "a", "delete": "yes"}, r"vars\.registry\.delete: expected true or false"),
    ({"address": "a", "publish": "nat"}, r"vars\.registry\.publish: 'nat': use host or port"),
    (
        {"address": "a", "tls": {"cert_file": "x"}},
        r"vars\.registry\.tls: give cert_file and key_file",
    ),
    (
        {"address": "a", "users": [{"name": "u", "password_env": "REGTK_TEST_UNSET"}]},
        r"users\[0\]: no password for u",
    ),
    ({"address": "a", "proxy": {"username": "u"}}, r"proxy\.remoteurl: missing"),
    ({"address": "a", "users": [{"name": "ci:admin"}]}, r"users\[0\]\.name: a user name cannot"),
]


@pytest.mark.parametrize(("registry", "pattern"), SETTINGS_ERRORS)
def test_bad_registry_settings_name_the_key(tmp_path: Path, registry: dict[str, Any], pattern: str):
    with pytest.raises(InventoryError, match=pattern):
        settings_from(tmp_path, registry)


def test_htpasswd_keeps_a_hash_while_the_password_matches() -> None:
    first = htpasswd.render([User("ci", "one"), User("ro", "two")], "").decode()
    again = htpasswd.render([User("ci", "one"), User("ro", "two")], first).decode()
    assert again == first
    changed = htpasswd.render([User("ci", "one"), User("ro", "three")], first).decode()
    ci_line, ro_line = changed.splitlines()
    assert ci_line == first.splitlines()[0]
    assert bcrypt.checkpw(b"three", ro_line.split(":", 1)[1].encode())
    assert "three" not in changed


def test_server_certificate_is_reused_until_its_names_change(tmp_path: Path) -> None:
    cert, key = pki.registry_tls(tmp_path, ["127.0.1.2"])
    before = cert.read_bytes()
    assert pki.registry_tls(tmp_path, ["127.0.1.2"])[0].read_bytes() == before
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    pki.registry_tls(tmp_path, ["127.0.1.2", "registry.example.internal"])
    renewed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = renewed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "registry.example.internal" in names.get_values_for_type(x509.DNSName)
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    assert renewed.issuer == ca.subject
