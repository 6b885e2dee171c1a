"""The registry's settings, read from the inventory variable ``registry`` and checked.

Every value a deploy needs lives in the inventory (all, group or host level) or in a task flag,
never in code. Unknown keys and wrong types are errors naming the inventory file and the key.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InventoryError
from ..core.inventory import Host, Inventory
from ..core.secrets import read_secret

KEYS = {
    "address": "the name or IP that nodes and image references use for the registry",
    "port": "the port the registry listens on (default 5000)",
    "image": "the registry image (default registry:2)",
    "container": "the container's name (default registry)",
    "publish": "host (host network, bound to address:port) or port (-p port:5000)",
    "data_dir": "the image store on the host (default /var/lib/registry)",
    "config_dir": "config.yml, certs/ and auth/ on the host (default /etc/regtk/registry)",
    "delete": "allow deleting manifests (default true)",
    "readonly": "read-only maintenance mode (default false)",
    "proxy": "pull-through cache: {remoteurl, username, password_env, password_file}",
    "headers": "extra HTTP response headers, name: [values]",
    "tls": "{cert_file, key_file} to use, or {generate: true, dir: PATH} to make a CA and cert",
    "users": "basic auth users: [{name, password_env | password_file}]",
    "engine": "auto, docker or podman (default auto: docker, else podman)",
    "image_archive": "a local image archive to upload when the host cannot pull the image",
    "pull": "try to pull a missing image on the host first (default true; false when air-gapped)",
    "health_timeout": "seconds to wait for GET /v2/ to answer (default 60)",
    "config": "extra config.yml keys, dotted or nested, applied after the template",
}


@dataclass(frozen=True)
class User:
    name: str
    password: str


@dataclass(frozen=True)
class Tls:
    cert_file: Path | None = None
    key_file: Path | None = None
    generate: bool = False
    dir: Path | None = None
    ca_file: Path | None = None


@dataclass(frozen=True)
class RegistrySettings:
    """One registry, as the inventory describes it."""

    address: str
    port: int = 5000
    image: str = "registry:2"
    container: str = "registry"
    publish: str = "host"
    data_dir: str = "/var/lib/registry"
    config_dir: str = "/etc/regtk/registry"
    delete: bool = True
    readonly: bool = False
    proxy: Mapping[str, Any] | None = None
    headers: Mapping[str, list[str]] = field(default_factory=dict)
    tls: Tls | None = None
    users: tuple[User, ...] = ()
    engine: str = "auto"
    image_archive: Path | None = None
    pull: bool = True
    health_timeout: float = 60.0
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        """``host:port`` as image references name the registry."""
        return f"{self.address}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.endpoint}"

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate nodes must trust (None for plain HTTP or a public CA)."""
        return self.tls.ca_file if self.tls else None

    @property
    def credentials(self) -> tuple[str, str] | None:
        return (self.users[0].name, self.users[0].password) if self.users else None


def _fail(inventory: Inventory, key: str, message: str) -> InventoryError:
    return InventoryError(str(inventory.path), f"vars.registry.{key}", message)


def _path(inventory: Inventory, value: Any) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else inventory.path.parent / path


def registry_settings(inventory: Inventory, host: Host | None = None) -> RegistrySettings:
    """The registry settings as ``host`` sees them (default: the first registry host)."""
    if host is None:
        members = inventory.groups.get("registry") or []
        if not members:
            raise InventoryError(
                str(inventory.path), "groups.registry", "no registry group: add one with a host"
            )
        host = inventory.hosts[members[0]]
    raw = host.vars.get("registry")
    if not isinstance(raw, Mapping):
        raise _fail(inventory, "", "missing: give at least registry.address")
    for key in raw:
        if key not in KEYS:
            near = difflib.get_close_matches(str(key), list(KEYS), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise _fail(inventory, str(key), f"unknown key{hint}; valid: {', '.join(KEYS)}")
    values: dict[str, Any] = {}
    for key in ("address", "image", "container", "publish", "data_dir", "config_dir", "engine"):
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key]:
                raise _fail(inventory, key, f"expected text: {KEYS[key]}")
            values[key] = raw[key]
    if "address" not in values:
        raise _fail(inventory, "address", f"missing: {KEYS['address']}")
    for key in ("delete", "readonly", "pull"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise _fail(inventory, key, f"expected true or false, got {raw[key]!r}")
            values[key] = raw[key]
    port = raw.get("port", 5000)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise _fail(inventory, "port", f"{port!r} is not a port number (1-65535)")
    values["port"] = port
    if values.get("publish", "host") not in ("host", "port"):
        raise _fail(inventory, "publish", f"{values['publish']!r}: use host or port")
    if values.get("engine", "auto") not in ("auto", "docker", "podman"):
        raise _fail(inventory, "engine", f"{values['engine']!r}: use auto, docker or podman")
    if "health_timeout" in raw:
        values["health_timeout"] = float(raw["health_timeout"])
    if raw.get("image_archive"):
        values["image_archive"] = _path(inventory, raw["image_archive"])
    for key in ("headers", "config", "proxy"):
        if raw.get(key) is not None:
            if not isinstance(raw[key], Mapping):
                raise _fail(inventory, key, f"expected a mapping: {KEYS[key]}")
            values[key] = raw[key]
    if values.get("proxy") and not values["proxy"].get("remoteurl"):
        raise _fail(inventory, "proxy.remoteurl", "missing: the upstream registry's URL")
    if raw.get("tls"):
        values["tls"] = _tls(inventory, raw["tls"])
    if raw.get("users"):
        values["users"] = _users(inventory, raw["users"])
    return RegistrySettings(**values)


def _tls(inventory: Inventory, raw: Any) -> Tls:
    if not isinstance(raw, Mapping):
        raise _fail(inventory, "tls", "expected {cert_file, key_file} or {generate: true}")
    unknown = set(raw) - {"cert_file", "key_file", "generate", "dir", "ca_file"}
    if unknown:
        raise _fail(inventory, f"tls.{sorted(unknown)[0]}", "unknown key")
    if raw.get("generate"):
        where = _path(inventory, raw.get("dir", ".regtk/pki"))
        return Tls(generate=True, dir=where, ca_file=where / "ca.crt")
    if not raw.get("cert_file") or not raw.get("key_file"):
        raise _fail(inventory, "tls", "give cert_file and key_file, or generate: true")
    return Tls(
        cert_file=_path(inventory, raw["cert_file"]),
        key_file=_path(inventory, raw["key_file"]),
        ca_file=_path(inventory, raw["ca_file"]) if raw.get("ca_file") else None,
    )


def _users(inventory: Inventory, raw: Any) -> tuple[User, ...]:
    if not isinstance(raw, list):
        raise _fail(inventory, "users", "expected a list of {name, password_env | password_file}")
    users = []
    for i, entry in enumerate(raw):
        key = f"users[{i}]"
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise _fail(inventory, key, "expected {name, password_env | password_file}")
        if any(c in str(entry["name"]) for c in ": \t\n"):
            raise _fail(inventory, f"{key}.name", "a user name cannot hold ':' or white space")
        file = _path(inventory, entry["password_file"]) if entry.get("password_file") else None
        password = read_secret(entry.get("password_env"), file)
        if password is None:
            source = entry.get("password_env") or entry.get("password_file") or "nothing"
            raise _fail(inventory, key, f"no password for {entry['name']}: {source} is empty")
        users.append(User(str(entry["name"]), password))
    return tuple(users)
