"""containerd certs.d hosts.toml: rendering and the checks for case 9."""

from __future__ import annotations

import pytest
import tomlkit

from fabfile.runtimes.findings import ContainerdConfigError, Severity
from fabfile.runtimes.hosts import (
    basic_authorization,
    check_hosts_toml,
    default_ca_path,
    hosts_toml_path,
    parse_registry_address,
    render_hosts_toml,
)

REGISTRY = "127.0.2.1:5000"

RENDER_CASES = [
    (
        "plain http",
        {"tls": False},
        f'server = "http://{REGISTRY}"\n\n'
        f'[host."http://{REGISTRY}"]\ncapabilities = ["pull", "resolve"]\n',
    ),
    (
        "https with the CA beside the file",
        {"tls": True},
        f'server = "https://{REGISTRY}"\n\n'
        f'[host."https://{REGISTRY}"]\ncapabilities = ["pull", "resolve"]\n'
        f'ca = "/etc/containerd/certs.d/{REGISTRY}/ca.crt"\n',
    ),
    (
        "https with skip_verify when asked",
        {"tls": True, "skip_verify": True, "ca_file": "/etc/ssl/reg.pem"},
        f'server = "https://{REGISTRY}"\n\n'
        f'[host."https://{REGISTRY}"]\ncapabilities = ["pull", "resolve"]\n'
        'ca = "/etc/ssl/reg.pem"\nskip_verify = true\n',
    ),
    (
        "credentials as a header when asked",
        {"tls": True, "authorization": basic_authorization("puller", "s3cret")},
        f'server = "https://{REGISTRY}"\n\n'
        f'[host."https://{REGISTRY}"]\ncapabilities = ["pull", "resolve"]\n'
        f'ca = "/etc/containerd/certs.d/{REGISTRY}/ca.crt"\n\n'
        f'[host."https://{REGISTRY}".header]\nAuthorization = "Basic cHVsbGVyOnMzY3JldA=="\n',
    ),
]


@pytest.mark.parametrize(
    ("options", "expected"), [c[1:] for c in RENDER_CASES], ids=[c[0] for c in RENDER_CASES]
)
def test_render_hosts_toml(options, expected):
    text = render_hosts_toml(REGISTRY, **options)
    assert text == expected
    assert check_hosts_toml(REGISTRY, text, REGISTRY, tls=options["tls"]) == []
    tomlkit.parse(text)


def test_tls_settings_for_plain_registry_are_refused():
    with pytest.raises(ContainerdConfigError, match="skip_verify"):
        render_hosts_toml(REGISTRY, tls=False, skip_verify=True)


def test_paths():
    assert hosts_toml_path(REGISTRY) == f"/etc/containerd/certs.d/{REGISTRY}/hosts.toml"
    assert default_ca_path("reg.test:443") == "/etc/containerd/certs.d/reg.test:443/ca.crt"


CASE9 = """\
server = "registry.example.test:5000"
[host."registry.example.test:5000"]      # wrong: no http:// scheme
  capabilities = ["pull", "resolve"]
  skip_verify = true
"""

CHECK_CASES = [
    (
        "case 9: directory without port, host and server without scheme, skip_verify",
        "registry.example.test",
        CASE9,
        False,
        [
            (Severity.ERROR, "(directory)"),
            (Severity.ERROR, "server"),
            (Severity.ERROR, 'host."registry.example.test:5000"'),
            (Severity.WARNING, 'host."registry.example.test:5000".skip_verify'),
        ],
    ),
    (
        "https server for a plain registry",
        "registry.example.test:5000",
        'server = "https://registry.example.test:5000"\n',
        False,
        [(Severity.ERROR, "server")],
    ),
    (
        "correct form",
        "registry.example.test:5000",
        render_hosts_toml("registry.example.test:5000", tls=False),
        False,
        [],
    ),
]


@pytest.mark.parametrize(
    ("dir_name", "text", "tls", "expected"),
    [c[1:] for c in CHECK_CASES],
    ids=[c[0] for c in CHECK_CASES],
)
def test_check_hosts_toml(dir_name, text, tls, expected):
    findings = check_hosts_toml(dir_name, text, "registry.example.test:5000", tls=tls)
    assert [(f.severity, f.key) for f in findings] == expected


ADDRESS_CASES = [
    ("127.0.0.1:5000", "127.0.0.1", 5000),
    (" registry.example.test:5000 ", "registry.example.test", 5000),
    ("registry.example.test", "registry.example.test", None),
    ("[::1]:5000", "[::1]", 5000),
]


@pytest.mark.parametrize(("text", "host", "port"), ADDRESS_CASES)
def test_parse_registry_address(text, host, port):
    address = parse_registry_address(text)
    assert (address.host, address.port) == (host, port)


@pytest.mark.parametrize(
    "text", ["http://127.0.0.1:5000", "127.0.0.1:5000/", "127.0.0.1:99999", "", "reg test:5000"]
)
def test_bad_registry_address(text):
    with pytest.raises(ContainerdConfigError, match="host:port"):
        parse_registry_address(text)
