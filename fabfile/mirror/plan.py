"""What to mirror and where from: image lists, the pause image each node needs, and endpoints.

Upstream registries are named as image references name them (``registry.k8s.io``); the
inventory variable ``upstream_endpoints`` says how to reach each one (URL, CA, credentials),
which is how a site points the toolkit at an internal mirror and how the lab points it at its own
upstream. The private registry comes from ``vars.registry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import InventoryError
from ..core.inventory import Host, Inventory
from ..core.secrets import read_secret
from ..deploy.settings import RegistrySettings
from ..registry.client import Endpoint
from ..registry.reference import Reference, parse_reference, target_reference
from ..runtimes.versions import kubeadm_pause_version, parse_version

DEFAULT_PAUSE_REPOSITORY = "registry.k8s.io/pause"
ENDPOINT_KEYS = ("url", "ca_file", "username", "password_env", "password_file", "insecure")


def private_endpoint(settings: RegistrySettings) -> Endpoint:
    """How the operator's machine reaches the private registry."""
    credentials = settings.credentials
    return Endpoint(
        settings.url,
        ca_file=str(settings.ca_file) if settings.ca_file else None,
        username=credentials[0] if credentials else None,
        password=credentials[1] if credentials else None,
    )


def upstream_endpoints(inventory: Inventory, host: Host) -> dict[str, Endpoint]:
    """``vars.upstream_endpoints`` as the toolkit's endpoints, keyed by registry name."""
    raw = host.vars.get("upstream_endpoints") or {}
    if not isinstance(raw, Mapping):
        raise InventoryError(str(inventory.path), "vars.upstream_endpoints", "expected a mapping")
    endpoints = {}
    for name, entry in raw.items():
        key = f"vars.upstream_endpoints.{name}"
        if not isinstance(entry, Mapping) or not entry.get("url"):
            raise InventoryError(str(inventory.path), key, "expected {url, ca_file, username, ...}")
        unknown = sorted(set(entry) - set(ENDPOINT_KEYS))
        if unknown:
            raise InventoryError(
                str(inventory.path), f"{key}.{unknown[0]}", f"unknown key; valid: {ENDPOINT_KEYS}"
            )
        base = inventory.path.parent
        ca = _path(base, entry.get("ca_file"))
        file = _path(base, entry.get("password_file"))
        password = (
            read_secret(entry.get("password_env"), file)
            if (file or entry.get("password_env"))
            else None
        )
        endpoints[str(name)] = Endpoint(
            str(entry["url"]),
            ca_file=str(ca) if ca else None,
            username=entry.get("username"),
            password=password,
            verify=not entry.get("insecure", False),
        )
    return endpoints


def _path(base: Path, value: Any) -> Path | None:
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def pause_reference(host: Host, inventory: Inventory) -> Reference:
    """The upstream pause image ``host`` needs: ``pause_tag``, else the one kubeadm pins."""
    repository = str(host.vars.get("pause_repository") or DEFAULT_PAUSE_REPOSITORY)
    tag = host.vars.get("pause_tag")
    if not tag:
        version = host.vars.get("kubernetes_version")
        if not version:
            raise InventoryError(
                str(inventory.path),
                f"hosts.{host.name}.vars.kubernetes_version",
                "missing: the cluster's Kubernetes version decides the pause tag "
                "(or set pause_tag)",
            )
        tag = kubeadm_pause_version(parse_version(str(version), "kubernetes_version"))
    return parse_reference(f"{repository}:{tag}")


def private_reference(source: Reference, settings: RegistrySettings, prefix: str = "") -> Reference:
    """Where ``source`` lives in the private registry."""
    return target_reference(source, settings.endpoint, prefix)


def pairs_for(
    sources: Iterable[Reference], settings: RegistrySettings, prefix: str = ""
) -> list[tuple[Reference, Reference]]:
    """(source, target) pairs, each source once, in the order first seen."""
    unique = list(dict.fromkeys(sources))
    return [(s, private_reference(s, settings, prefix)) for s in unique]


def parse_list(text: str | None, file: str | None) -> list[Reference]:
    """Images from a comma-separated flag and/or a file (one a line, # comments)."""
    names: list[str] = [n.strip() for n in (text or "").split(",") if n.strip()]
    if file:
        for line in Path(file).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return [parse_reference(n) for n in names]


def inventory_images(host: Host) -> Sequence[Reference]:
    """``vars.mirror_images``: extra images every run of ``inv mirror`` copies."""
    return [parse_reference(str(n)) for n in host.vars.get("mirror_images") or []]
