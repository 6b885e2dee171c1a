"""``mirror`` and ``bundle``: images into the private registry, or into a bundle for an air gap."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from invoke import Context
from invoke.exceptions import Exit

from ..core.cli import Fleet, finish, fleet_task
from ..core.output import console
from ..deploy.settings import RegistrySettings, registry_settings
from ..mirror.plan import (
    inventory_images,
    pairs_for,
    parse_list,
    pause_reference,
    private_endpoint,
    upstream_endpoints,
)
from ..mirror.remote import copy_on_host
from ..mirror.run import mirror as run_mirror
from ..mirror.run import no_default_endpoint, summary
from ..registry.bundle import OciLayout, write_bundle
from ..registry.client import RegistryClient
from ..registry.copy import ClientPool, CopyOptions
from ..registry.errors import RegistryError
from ..registry.reference import Reference


def default_sources(fleet: Fleet) -> list[Reference]:
    """The pause image each node needs, then ``vars.mirror_images``."""
    inv = fleet.inventory
    nodes = [inv.hosts[n] for n in inv.groups.get("nodes", [])]
    refs = [pause_reference(h, inv) for h in nodes]
    for host in nodes or list(inv.hosts.values())[:1]:
        refs += inventory_images(host)
    return refs


@fleet_task(
    changes=False,
    help={
        "images": "images to copy, comma-separated (default: the pause images the nodes need)",
        "file": "a file listing images to copy, one a line",
        "source": "push from this bundle (OCI layout or its tar) instead of the upstream",
        "tunnel": "reach the private registry through SSH to the registry host",
        "prefix": "put every image under this path in the private registry",
        "platforms": "copy only these platforms (changes the digest), e.g. linux/amd64",
        "on_registry_host": "run the copy on the registry host (only it reaches the upstream)",
        "check": "show what would be copied and copy nothing",
    },
)
def mirror(
    c: Context,
    images: str = "",
    file: str = "",
    source: str = "",
    tunnel: bool = False,
    prefix: str = "",
    platforms: str = "",
    check: bool = False,
    on_registry_host: bool = False,
    *,
    fleet: Fleet,
) -> None:
    """Copy images into the private registry, byte-identical, every platform of an index.

    With no list it copies the pause image that each node's Kubernetes version expects. Images
    already present with the same digest cost a HEAD and send nothing.
    """
    settings = registry_settings(fleet.inventory)
    bundle = Path(source) if source else None
    if bundle is not None and not images and not file:
        sources = OciLayout(bundle).references()
    else:
        sources = parse_list(images, file or None) or default_sources(fleet)
    pairs = pairs_for(sources, settings, prefix)
    if check:
        _plan(fleet, settings, pairs, bundle)
        return
    for src, dst in pairs:
        print(f"{src} -> {dst}", file=sys.stderr)
    if on_registry_host:
        registry_host = fleet.inventory.hosts[fleet.inventory.groups["registry"][0]]
        endpoints = upstream_endpoints(fleet.inventory, registry_host)
        fleet.hosts = [registry_host]
        finish(fleet.run(lambda ctx: copy_on_host(ctx, settings, pairs, endpoints), "mirror"))
        return
    subset = frozenset(p.strip() for p in platforms.split(",") if p.strip()) or None
    registry_host = fleet.inventory.hosts[fleet.inventory.groups["registry"][0]]
    connector = fleet.connector() if tunnel else None
    try:
        report = run_mirror(
            fleet.inventory,
            settings,
            pairs,
            bundle=bundle,
            tunnel_via=registry_host if tunnel else None,
            connector=connector,
            options=CopyOptions(platforms=subset),
        )
    finally:
        if connector is not None:
            connector.close()
    if fleet.as_json:
        print(json.dumps([asdict(i) for i in report.images], indent=2))
    else:
        console().print(summary(report))
    if not report.ok:
        raise Exit("some images were not copied", 1)


def _plan(
    fleet: Fleet,
    settings: RegistrySettings,
    pairs: list[tuple[Reference, Reference]],
    bundle: Path | None,
) -> None:
    """What a mirror would do: each pair, with its digest on both sides; nothing is copied."""
    registry_host = fleet.inventory.hosts[fleet.inventory.groups["registry"][0]]
    sources: ClientPool | OciLayout = (
        OciLayout(bundle)
        if bundle
        else ClientPool(upstream_endpoints(fleet.inventory, registry_host), no_default_endpoint)
    )
    with RegistryClient(private_endpoint(settings)) as target:
        for src, dst in pairs:
            origin, repository = sources(src)
            have = target.head_manifest(dst.repository, dst.reference)
            try:
                want = origin.get_manifest(repository, src.reference).digest
            except RegistryError as exc:
                print(f"{src} -> {dst}: cannot read the source: {exc}")
                continue
            if have is not None and have.digest == want:
                print(f"{src} -> {dst}: present ({want[:19]}), nothing to copy")
            else:
                print(f"{src} -> {dst}: would copy {want[:19]}")
    if isinstance(sources, ClientPool):
        sources.close()


@fleet_task(
    changes=False,
    help={
        "images": "images to bundle, comma-separated (default: the pause images the nodes need)",
        "file": "a file listing images to bundle, one a line",
        "out": "the OCI layout directory to write (added to if it exists)",
        "archive": "also write a tar of the layout here",
    },
)
def bundle(
    c: Context, out: str, images: str = "", file: str = "", archive: str = "", *, fleet: Fleet
) -> None:
    """Write images, whole, to an OCI layout on a connected machine, for `mirror --source`."""
    sources = list(dict.fromkeys(parse_list(images, file or None) or default_sources(fleet)))
    registry_host = fleet.inventory.hosts[fleet.inventory.groups["registry"][0]]
    pool = ClientPool(upstream_endpoints(fleet.inventory, registry_host), no_default_endpoint)
    try:
        written = write_bundle(sources, pool, Path(out), archive=Path(archive) if archive else None)
    finally:
        pool.close()
    for image in written:
        print(f"{image.reference} {image.digest} {','.join(image.platforms)}")
