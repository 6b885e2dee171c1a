"""Registry upkeep through the v2 API: catalog, tags, inspect, delete, untag, garbage-collect."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from invoke import Context
from invoke.exceptions import Exit
from rich.table import Table

from ..core.cli import Fleet, finish, fleet_task
from ..core.output import console
from ..core.ssh import Connector
from ..core.steps import HostContext
from ..deploy.gc import garbage_collect
from ..deploy.settings import registry_settings
from ..mirror.run import target_client
from ..registry import upkeep
from ..registry.client import RegistryClient
from ..registry.reference import parse_reference

TUNNEL_HELP = "reach the registry through SSH to the registry host"


@contextlib.contextmanager
def registry_client(fleet: Fleet, tunnel: bool) -> Iterator[RegistryClient]:
    """A client for the private registry, directly or through the registry host."""
    settings = registry_settings(fleet.inventory)
    host = fleet.inventory.hosts[fleet.inventory.groups["registry"][0]]
    connector: Connector | None = fleet.connector() if tunnel else None
    try:
        with target_client(settings, host if tunnel else None, connector) as client:
            yield client
    finally:
        if connector is not None:
            connector.close()


def _split(reference: str) -> tuple[str, str]:
    """``repo:tag`` or ``repo@sha256:...`` into (repository, tag or digest), checked.

    A name the distribution spec does not allow (``..``, upper case, a bad tag) is refused here,
    so no request path can step outside the repository named.
    """
    parsed = parse_reference(f"registry.invalid/{reference}")
    return parsed.repository, parsed.reference


def _print(
    fleet: Fleet, data: Any, table: Table | None = None, lines: list[str] | None = None
) -> None:
    if fleet.as_json:
        print(json.dumps(data, indent=2, default=str))
    elif table is not None:
        console().print(table)
    else:
        for line in lines or []:
            print(line)


@fleet_task(changes=False, help={"tunnel": TUNNEL_HELP})
def catalog(c: Context, tunnel: bool = False, *, fleet: Fleet) -> None:
    """List every repository in the private registry (follows pagination to the end)."""
    with registry_client(fleet, tunnel) as client:
        names = client.catalog()
    _print(fleet, names, lines=names)


@fleet_task(
    changes=False,
    positional=["repository"],
    help={"repository": "the repository, e.g. pause", "tunnel": TUNNEL_HELP},
)
def tags(c: Context, repository: str, tunnel: bool = False, *, fleet: Fleet) -> None:
    """List the tags of REPOSITORY."""
    repository = _split(repository)[0]
    with registry_client(fleet, tunnel) as client:
        found = client.tags(repository)
    _print(fleet, found, lines=found)


@fleet_task(
    changes=False,
    positional=["reference"],
    help={"reference": "repo:tag or repo@sha256:...", "tunnel": TUNNEL_HELP},
)
def inspect(c: Context, reference: str, tunnel: bool = False, *, fleet: Fleet) -> None:
    """Show REFERENCE (repo:tag or repo@digest): media type, digest, platforms, size, tags."""
    repository, ref = _split(reference)
    with registry_client(fleet, tunnel) as client:
        info = upkeep.inspect(client, repository, ref)
    table = Table(title=reference, title_justify="left", show_header=False)
    for key, value in asdict(info).items():
        if key == "children":
            value = [f"{platform} {digest}" for platform, digest in value]
        table.add_row(key, "\n".join(map(str, value)) if isinstance(value, list) else str(value))
    _print(fleet, asdict(info), table=table)


@fleet_task(
    changes=False,
    positional=["reference"],
    help={
        "reference": "repo:tag or repo@sha256:..., what to delete",
        "yes": "do not ask before deleting",
        "force": "delete even a platform manifest that an index lists",
        "tunnel": TUNNEL_HELP,
        "check": "show what the delete would take and delete nothing",
    },
)
def delete(
    c: Context, reference: str, yes: bool = False, force: bool = False, tunnel: bool = False,
    check: bool = False, *, fleet: Fleet,
) -> None:  # fmt: skip
    """Delete the manifest REFERENCE points at, and with it every tag on the same digest.

    Resolves the digest with every manifest type accepted, shows every tag the delete takes
    along and asks, then checks what is really gone. Space is freed only by registry.gc.
    """
    repository, ref = _split(reference)
    with registry_client(fleet, tunnel) as client:
        plan = upkeep.plan_delete(client, repository, ref)
        print(
            f"{repository}@{plan.digest} ({plan.media_type}) carries the tags: "
            f"{', '.join(plan.tags) or 'none'}; deleting it removes all of them",
            file=sys.stderr,
        )
        if check:
            return
        if not yes:
            if not sys.stdin.isatty():
                raise Exit("not confirmed: pass --yes to delete without a prompt", 1)
            if input("delete? [y/N] ").strip().lower() not in ("y", "yes"):
                raise Exit("not deleted", 1)
        outcome = upkeep.delete(client, plan, force=force)
    _print(
        fleet,
        asdict(outcome),
        lines=[
            f"deleted {plan.digest}: gone={outcome.digest_gone}; tags gone: "
            f"{', '.join(outcome.tags_gone) or 'none'}; tags left: "
            f"{', '.join(outcome.tags_left) or 'none'}",
            "the space is freed by `inv registry.gc`",
        ],
    )
    if not outcome.ok:
        raise Exit("the registry still serves what was deleted", 1)


@fleet_task(
    changes=False,
    positional=["reference"],
    help={
        "reference": "repo:tag, the one tag to remove",
        "tunnel": TUNNEL_HELP,
        "check": "show the tag and the siblings it keeps, and remove nothing",
    },
)
def untag(
    c: Context, reference: str, tunnel: bool = False, check: bool = False, *, fleet: Fleet
) -> None:
    """Remove one tag (repo:tag) and keep every other tag on the same digest."""
    repository, tag = _split(reference)
    with registry_client(fleet, tunnel) as client:
        if check:
            plan = upkeep.plan_delete(client, repository, tag)
            kept = [t for t in plan.tags if t != tag]
            print(f"would remove {repository}:{tag}; kept: {', '.join(kept) or 'no other tags'}")
            return
        outcome = upkeep.untag(client, repository, tag)
    _print(
        fleet,
        asdict(outcome),
        lines=[
            f"removed {repository}:{tag} ({outcome.method}); kept: "
            f"{', '.join(outcome.siblings) or 'no other tags'}"
        ],
    )


@fleet_task(
    default_group="registry",
    changes=False,
    help={
        "delete_untagged": "also remove manifests no tag points at (refused on 2.x with indexes)",
        "force": "with --delete-untagged on 2.x, go ahead even when indexes are stored",
        "dry_run": "stop after the dry run: report what would go, delete nothing",
        "tunnel": TUNNEL_HELP,
    },
)
def gc(
    c: Context,
    delete_untagged: bool = False,
    force: bool = False,
    dry_run: bool = False,
    tunnel: bool = False,
    *,
    fleet: Fleet,
) -> None:
    """Garbage-collect the registry safely: read-only, dry run, sweep, normal mode, verify.

    Reports what was eligible, the disk space freed (measured on the host), and proves every
    remaining tag and every platform of every index still resolves.
    """
    settings = registry_settings(fleet.inventory)

    def one(ctx: HostContext) -> None:
        with registry_client(fleet, tunnel) as client:
            result = garbage_collect(
                ctx,
                settings,
                client,
                delete_untagged=delete_untagged,
                force=force,
                dry_run=dry_run,
            )
        freed = result.bytes_before - result.bytes_after
        ctx.report.add("disk", "changed" if freed > 0 else "unchanged", f"freed {freed} bytes")

    finish(fleet.run(one, "registry.gc"))
