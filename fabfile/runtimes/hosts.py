"""containerd's per-registry `certs.d/<host:port>/hosts.toml`.

containerd's CRI looks up `<config_path>/<host:port>/hosts.toml` for the registry part of an image
reference, so the directory name must be exactly `host:port` as the references spell it. Inside,
the scheme decides the protocol: a plain-HTTP registry needs `http://` on both `server` and the
`[host."..."]` table; `skip_verify` only relaxes TLS checks and never switches to HTTP. Changes
under certs.d take effect without restarting containerd.
"""

from __future__ import annotations

import base64
import posixpath
import re
from dataclasses import dataclass

import tomlkit
from tomlkit.exceptions import ParseError

from fabfile.runtimes.containerd import CERTS_D
from fabfile.runtimes.findings import ConfigParseError, ContainerdConfigError, Finding, Severity

_HOST_PORT = re.compile(
    r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(?P<port>\d{1,5}))?$"
)


@dataclass(frozen=True)
class RegistryAddress:
    """`host[:port]` as image references name the registry."""

    host: str
    port: int | None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" if self.port is not None else self.host


def parse_registry_address(text: str, where: str = "registry") -> RegistryAddress:
    """Parse `host:port` (no scheme, no path); raises with the remedy when it is not one."""
    value = text.strip()
    match = _HOST_PORT.match(value)
    if match is None or (match.group("port") and not 0 < int(match.group("port")) < 65536):
        raise ContainerdConfigError(
            where,
            "registry",
            f"{text!r} is not host:port",
            "Give the registry as image references name it, for example 127.0.0.1:5000, "
            "without a scheme or a path.",
        )
    port = match.group("port")
    return RegistryAddress(match.group("host"), int(port) if port else None)


def hosts_toml_path(registry: str, certs_d: str = CERTS_D) -> str:
    """`<certs_d>/<host:port>/hosts.toml` for the registry."""
    return posixpath.join(certs_d, str(parse_registry_address(registry)), "hosts.toml")


def default_ca_path(registry: str, certs_d: str = CERTS_D) -> str:
    """Where the registry's CA certificate goes beside its hosts.toml."""
    return posixpath.join(certs_d, str(parse_registry_address(registry)), "ca.crt")


def basic_authorization(username: str, password: str) -> str:
    """The value of an `Authorization` header for basic auth.

    containerd's hosts.toml has no credentials field; a static header is the way to give them
    there. The file then holds a secret: write it mode 0600 and never log its text.
    """
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


def render_hosts_toml(
    registry: str,
    *,
    tls: bool,
    ca_file: str | None = None,
    skip_verify: bool = False,
    authorization: str | None = None,
    capabilities: tuple[str, ...] = ("pull", "resolve"),
    certs_d: str = CERTS_D,
) -> str:
    """The hosts.toml text for one private registry.

    Plain HTTP: `server` and the host table use `http://`. HTTPS: `https://` with `ca` (by default
    the `ca.crt` beside this file); `skip_verify` only when asked. `authorization` (for example
    from `basic_authorization`) becomes a static header.
    """
    address = parse_registry_address(registry)
    if not tls and (skip_verify or ca_file):
        raise ContainerdConfigError(
            hosts_toml_path(registry, certs_d),
            "skip_verify" if skip_verify else "ca",
            "TLS settings were asked for a plain-HTTP registry; containerd would then try HTTPS "
            "first",
            "Drop the TLS settings, or deploy the registry with TLS.",
        )
    scheme = "https" if tls else "http"
    url = f"{scheme}://{address}"
    document = tomlkit.document()
    document.add("server", url)
    host = tomlkit.table()
    host.add("capabilities", list(capabilities))
    if tls:
        host.add("ca", ca_file or default_ca_path(registry, certs_d))
        if skip_verify:
            host.add("skip_verify", True)
    if authorization is not None:
        header = tomlkit.table()
        header.add("Authorization", authorization)
        host.add("header", header)
    hosts = tomlkit.table(is_super_table=True)
    hosts.add(url, host)
    document.add(tomlkit.nl())
    document.add("host", hosts)
    return tomlkit.dumps(document)


def check_hosts_toml(dir_name: str, text: str, registry: str, *, tls: bool) -> list[Finding]:
    """Problems with an existing `certs.d/<dir_name>/hosts.toml` meant for `registry`.

    Finds a directory name that does not match the registry exactly (a missing port), a
    `server` or host entry without a scheme, the wrong scheme for the registry, and
    `skip_verify` used in the hope of reaching a plain-HTTP registry.
    """
    path = posixpath.join(CERTS_D, dir_name, "hosts.toml")
    address = parse_registry_address(registry)
    findings: list[Finding] = []
    if dir_name != str(address):
        findings.append(
            Finding(
                Severity.ERROR,
                path,
                "(directory)",
                f"the directory is {dir_name!r} but image references name {address}; containerd "
                f"only reads {CERTS_D}/{address}/hosts.toml",
            )
        )
    try:
        document = tomlkit.parse(text)
    except ParseError as error:
        raise ConfigParseError(
            path, "(file)", f"not valid TOML: {error}", "Rewrite the file.", error.line
        ) from None
    wanted = "https" if tls else "http"
    server = document.get("server")
    entries: list[tuple[str, str]] = []
    if server is not None:
        entries.append(("server", str(server)))
    hosts = document.get("host", {})
    entries.extend((f'host."{name}"', str(name)) for name in hosts)
    for key, url in entries:
        scheme, sep, _ = url.partition("://")
        if not sep:
            findings.append(
                Finding(
                    Severity.ERROR,
                    path,
                    key,
                    f"{url!r} has no scheme; write {wanted}://{address} so containerd uses "
                    f"{wanted.upper()}",
                )
            )
        elif scheme != wanted:
            findings.append(
                Finding(
                    Severity.ERROR,
                    path,
                    key,
                    f"{url!r} uses {scheme} but the registry speaks {wanted}",
                )
            )
    for name, host in hosts.items():
        if not tls and host.get("skip_verify"):
            findings.append(
                Finding(
                    Severity.WARNING,
                    path,
                    f'host."{name}".skip_verify',
                    "skip_verify only relaxes TLS verification and does not switch to plain HTTP",
                )
            )
    return findings
