"""The garbage-collect runbook on the registry host, with the registry put back whatever fails.

1. Preflight: the registry's version; refuse ``--delete-untagged`` on 2.x while any index or
   manifest list is stored (2.x sweeps the children of an index as untagged), unless forced.
2. Read-only mode on (config patch + restart), so no push can race the mark-and-sweep.
3. A dry run: what would go, and how many bytes, measured on the host.
4. The real run (unless only a dry run was asked for).
5. Read-only mode off: the old config.yml back, and a restart, which also drops the in-memory
   blob cache that would otherwise claim deleted layers still exist.
6. Proof: every remaining tag, and every platform of every index, is fetched.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from ..core.errors import HostError
from ..core.probe import Probe
from ..core.steps import Backup, FileSpec, HostContext, ensure_files, restore
from ..registry.client import RegistryClient
from ..registry.config import patch_config
from ..registry.errors import RegistryError
from ..registry.manifest import INDEX_TYPES
from . import container
from .container import Engine
from .settings import RegistrySettings

_BLOB = re.compile(r"blob eligible for deletion: (sha256:[0-9a-f]{64})")
_MANIFEST = re.compile(r"manifest eligible for deletion: (sha256:[0-9a-f]{64})")
_VERSION = re.compile(r"\s(v?(\d+)\.\d+\.\d+)")


@dataclass
class GcResult:
    version: str = ""
    blobs: int = 0
    manifests: int = 0
    bytes_eligible: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    verified_tags: int = 0
    verified_children: int = 0
    problems: list[str] = field(default_factory=list)


def stored_indexes(client: RegistryClient) -> list[str]:
    """``repo:tag`` of every tag that points at an index or manifest list."""
    found = []
    for repository in client.catalog():
        for tag in client.tags(repository):
            head = client.head_manifest(repository, tag)
            if head is not None and head.media_type in INDEX_TYPES:
                found.append(f"{repository}:{tag}")
    return found


def verify_all(client: RegistryClient, result: GcResult) -> None:
    """Fetch every tag and every child of every index; record what is missing."""
    for repository in client.catalog():
        for tag in client.tags(repository):
            try:
                top = client.get_manifest(repository, tag)
                result.verified_tags += 1
                for child in top.children:
                    client.get_manifest(repository, child.digest)
                    for blob in client.get_manifest(repository, child.digest).blobs:
                        if not client.blob_exists(repository, blob.digest):
                            result.problems.append(f"{repository}:{tag} lost blob {blob.digest}")
                    result.verified_children += 1
                for blob in top.blobs:
                    if not client.blob_exists(repository, blob.digest):
                        result.problems.append(f"{repository}:{tag} lost blob {blob.digest}")
            except RegistryError as exc:
                result.problems.append(f"{repository}:{tag}: {exc}")


def _sizes_script(data_dir: str, digests: list[str]) -> str:
    root = f"{data_dir}/docker/registry/v2/blobs/sha256"
    lines = ["total=0"]
    for digest in digests:
        hexd = digest.split(":", 1)[1]
        path = shlex.quote(f"{root}/{hexd[:2]}/{hexd}/data")
        lines.append(f"[ -f {path} ] && total=$((total + $(stat -c %s {path})))")
    lines.append('echo "$total"')
    return "\n".join(lines) + "\n"


def garbage_collect(
    ctx: HostContext,
    settings: RegistrySettings,
    client: RegistryClient,
    *,
    delete_untagged: bool,
    force: bool,
    dry_run: bool,
) -> GcResult:
    """The whole runbook on ``ctx.host``; the registry ends in normal mode whatever happens."""
    result = GcResult()
    running = container.locate(ctx, settings)
    engine, inside, host_path = running.engine, running.inside, running.host_path
    said = ctx.run(engine.argv("exec", settings.container, "registry", "--version")).stdout
    match = _VERSION.search(" " + said)
    result.version = match.group(1) if match else said.strip()
    major = int(match.group(2)) if match else 2
    ctx.report.add("version", "unchanged", f"registry {result.version}")

    if delete_untagged and major < 3:
        indexes = stored_indexes(client)
        if indexes and not force:
            raise HostError(
                ctx.host.name,
                f"--delete-untagged on registry {result.version} deletes the platform manifests "
                f"of stored indexes ({', '.join(indexes[:5])}); 3.0 fixed that. Run without "
                "--delete-untagged, or pass --force if you accept the loss",
            )
    backup = Backup()
    if not dry_run:
        # A dry run deletes nothing, so only the real sweep needs pushes stopped.
        current = Probe().file(host_path).run(ctx.session).file(host_path)
        patched = patch_config(
            current.text, {"storage.maintenance.readonly.enabled": True}, host_path
        )
        spec = FileSpec(
            host_path, patched.text.encode(), current.mode, current.owner, current.group
        )
        backup = ensure_files(ctx, [spec], {host_path: current}, "read-only on")
    data = shlex.quote(settings.data_dir)
    try:
        if not dry_run:
            _restart(ctx, engine, settings, "read-only mode on")
        result.bytes_before = int(ctx.run(["sh", "-c", f"du -sb {data} | cut -f1"]).stdout.strip())
        args = ["registry", "garbage-collect", "--dry-run"]
        if delete_untagged:
            args.append("--delete-untagged")
        dry = ctx.run(engine.argv("exec", settings.container, *args, inside)).stdout
        blobs = _BLOB.findall(dry)
        result.blobs, result.manifests = len(blobs), len(_MANIFEST.findall(dry))
        sizes = ctx.session.run(
            "sh -s", sudo=True, stdin=_sizes_script(settings.data_dir, blobs).encode()
        )
        result.bytes_eligible = int(sizes.stdout.strip() or 0)
        ctx.report.add(
            "dry run",
            "unchanged",
            f"{result.manifests} manifests and {result.blobs} blobs ({result.bytes_eligible} "
            "bytes) eligible",
        )
        if not dry_run:
            args.remove("--dry-run")
            ctx.run(engine.argv("exec", settings.container, *args, inside))
            ctx.report.add("garbage-collect", "changed", "swept")
    finally:
        if backup:
            restore(ctx, backup)
        if not dry_run:
            _restart(ctx, engine, settings, "read-only mode off")
    result.bytes_after = int(ctx.run(["sh", "-c", f"du -sb {data} | cut -f1"]).stdout.strip())
    verify_all(client, result)
    if result.problems:
        ctx.report.add("verify", "failed", "; ".join(result.problems[:5]))
    else:
        ctx.report.add(
            "verify",
            "unchanged",
            f"{result.verified_tags} tags and {result.verified_children} index children fetched",
        )
    freed = result.bytes_before - result.bytes_after
    ctx.report.data.update(freed_bytes=freed, **{k: v for k, v in vars(result).items()})
    return result


def _restart(ctx: HostContext, engine: Engine, settings: RegistrySettings, why: str) -> None:
    ctx.session.run(engine.argv("restart", settings.container), sudo=True)
    problem = container.health(settings, settings.health_timeout)
    if problem is not None:
        raise HostError(ctx.host.name, f"after {why}: {problem}")
    ctx.report.add("restart", "changed", why)
