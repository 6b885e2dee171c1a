"""Run a copy into the private registry: directly, through an SSH tunnel, or from a bundle."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ..core.inventory import Host, Inventory
from ..core.output import console
from ..core.ssh import Connector
from ..deploy.settings import RegistrySettings
from ..registry.bundle import OciLayout
from ..registry.client import Endpoint, RegistryClient
from ..registry.copy import ClientPool, CopyOptions, CopyReport, ProgressEvent, copy_images
from ..registry.reference import Reference
from ..registry.tunnel import Tunnel
from .plan import private_endpoint, upstream_endpoints


@contextlib.contextmanager
def target_client(
    settings: RegistrySettings, tunnel_via: Host | None, connector: Connector | None
) -> Iterator[RegistryClient]:
    """A client for the private registry; through an SSH tunnel to ``tunnel_via`` when given."""
    endpoint = private_endpoint(settings)
    if tunnel_via is None:
        with RegistryClient(endpoint) as client:
            yield client
        return
    assert connector is not None
    session = connector.session(tunnel_via)
    with Tunnel(session.transport, (settings.address, settings.port)) as tunnel:
        forwarded = dataclasses.replace(endpoint, connect_to=tunnel.address)
        with RegistryClient(forwarded) as client:
            yield client


def no_default_endpoint(registry: str) -> Endpoint:
    """Refuse registries the inventory does not describe, rather than guess an address."""
    from ..core.errors import ToolkitError

    raise ToolkitError(
        f"no endpoint for registry {registry}: add it under vars.upstream_endpoints "
        "(url, ca_file, username, password_env) in the inventory"
    )


def mirror(
    inventory: Inventory,
    settings: RegistrySettings,
    pairs: Sequence[tuple[Reference, Reference]],
    *,
    bundle: Path | None = None,
    tunnel_via: Host | None = None,
    connector: Connector | None = None,
    options: CopyOptions | None = None,
    show_progress: bool = True,
) -> CopyReport:
    """Copy each (source, target) pair into the private registry."""
    registry_host = inventory.hosts[inventory.groups["registry"][0]]
    sources: ClientPool | OciLayout
    if bundle is not None:
        sources = OciLayout(bundle)
    else:
        sources = ClientPool(upstream_endpoints(inventory, registry_host), no_default_endpoint)
    try:
        with (
            target_client(settings, tunnel_via, connector) as target,
            _progress(show_progress) as on_event,
        ):
            return copy_images(pairs, sources, target, options or CopyOptions(), on_event)
    finally:
        if isinstance(sources, ClientPool):
            sources.close()


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[ProgressEvent], None] | None]:
    out = console(stderr=True)
    if not enabled or not out.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=out, transient=True) as bar:
        images = bar.add_task("images", total=None)
        blobs = bar.add_task("bytes", total=0)

        def on_event(event: ProgressEvent) -> None:
            if event.kind == "image-done":
                bar.advance(images)
            elif event.kind == "blob-start":
                task = bar.tasks[blobs]
                bar.update(blobs, total=(task.total or 0) + event.total)
            elif event.kind == "blob-bytes":
                bar.advance(blobs, event.advance)

        yield on_event


def summary(report: CopyReport) -> Table:
    table = Table(title="mirror", title_justify="left")
    for column in ("source", "target", "digest", "platforms", "result"):
        table.add_column(column, overflow="fold")
    for image in report.images:
        if image.error:
            result = f"[red]failed:[/] {image.error}"
        elif image.present:
            result = "present, nothing sent"
        else:
            result = (
                f"copied {image.blobs_copied}, mounted {image.blobs_mounted}, "
                f"skipped {image.blobs_skipped} blobs; {image.bytes_sent} bytes sent"
            )
        if image.digest_changed:
            result += " [yellow](digest changed: platform subset)[/]"
        same = image.source_digest == image.target_digest
        digest = image.target_digest[:19] + (
            "" if same or not image.target_digest else " (differs)"
        )
        table.add_row(image.source, image.target, digest, ", ".join(image.platforms), result)
    return table
