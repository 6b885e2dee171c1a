"""``prepare-nodes``, ``trust-registry`` and ``nodes.report``: the nodes' side of the main job."""

from __future__ import annotations

import logging

from invoke import Context
from invoke.exceptions import Exit

from ..core.cli import Fleet, finish, fleet_task
from ..core.output import console
from ..core.steps import HostContext, ensure_files, restart_and_verify
from ..deploy.settings import RegistrySettings, registry_settings
from ..mirror.plan import pairs_for, pause_reference, private_endpoint
from ..mirror.run import mirror, summary
from ..nodes.facts import gather_runtime
from ..nodes.prepare import PauseImage, prepare, runtime_plan, verify_runtime
from ..nodes.report import node_report, report_table
from ..registry.client import RegistryClient
from ..registry.errors import RegistryError

log = logging.getLogger("regtk")


def pause_images(
    fleet: Fleet, settings: RegistrySettings, copy: bool
) -> tuple[dict[str, PauseImage], dict[str, str]]:
    """The private pause image each chosen node needs, mirrored first when ``copy``."""
    inv = fleet.inventory
    wanted = {h.name: pause_reference(h, inv) for h in fleet.hosts}
    pairs = pairs_for(wanted.values(), settings)
    failures: dict[str, str] = {}
    if copy:
        report = mirror(inv, settings, pairs)
        console(stderr=True).print(summary(report))
        failures = {image.source: image.error for image in report.images if image.error}
    images: dict[str, PauseImage] = {}
    with RegistryClient(private_endpoint(settings)) as client:
        for source, target in pairs:
            try:
                top = client.get_manifest(target.repository, target.reference)
                for child in top.children:
                    client.get_manifest(target.repository, child.digest)
                digest, platforms, problem = top.digest, tuple(top.platforms), ""
            except RegistryError as exc:
                digest, platforms = "", ()
                problem = f"{target} is not usable in the private registry ({exc})"
                if str(source) in failures:
                    problem += f"; mirroring it failed: {failures[str(source)]}"
            if str(source) in failures and not problem:
                log.warning(
                    "using %s already in the private registry: %s", target, failures[str(source)]
                )
            images[str(source)] = PauseImage(str(target), str(source), digest, platforms, problem)
    return images, {name: str(ref) for name, ref in wanted.items()}


@fleet_task(
    default_group="nodes",
    help={"skip_mirror": "the pause image is already in the private registry: do not copy it"},
)
def prepare_nodes(c: Context, skip_mirror: bool = False, *, fleet: Fleet) -> None:
    """Make every node start pods with no public registry: trust, pause image, kubelet flag.

    Mirrors the pause image each node's Kubernetes version expects (unless --skip-mirror), then
    on each node: trusts the private registry, points the runtime's sandbox image at the private
    copy, pre-pulls it under both names, and sets or removes --pod-infra-container-image as the
    kubelet's version needs. Restarts only what changed, and restores the old files of a node
    whose runtime or kubelet does not come back.
    """
    settings = registry_settings(fleet.inventory)
    pauses, pause_for = pause_images(
        fleet, settings, copy=not skip_mirror and not fleet.options.check
    )

    def one(ctx: HostContext) -> None:
        prepare(ctx, settings, pauses, pause_for[ctx.host.name])

    finish(fleet.run(one, "prepare-nodes"))


@fleet_task(help={})
def trust_registry(c: Context, *, fleet: Fleet) -> None:
    """Make Docker or containerd on the chosen hosts trust the private registry (-g/-H).

    For machines that only push or pull (build hosts, workstations): containerd gets its
    certs.d hosts.toml and config_path (restarted only when config.toml changed); Docker gets
    daemon.json merged (reloaded) or the CA under certs.d. The kubelet is not touched.
    """
    if not fleet.hosts:
        raise Exit("choose hosts with -g GROUP or -H host1,host2", 2)
    settings = registry_settings(fleet.inventory)

    def one(ctx: HostContext) -> None:
        facts = gather_runtime(ctx, settings.endpoint)
        plan = runtime_plan(ctx, facts, settings, None)
        ensure_files(ctx, plan.live_files, facts.files, "trust")
        changed = any(facts.files[s.path].content != s.content for s in plan.config_files)
        backup = ensure_files(ctx, plan.config_files, facts.files, f"{plan.service} config")
        if changed:
            restart_and_verify(
                ctx,
                plan.service,
                backup,
                "its config changed",
                lambda: verify_runtime(ctx, facts, settings, None),
                action=plan.action,
            )

    finish(fleet.run(one, "trust-registry"))


@fleet_task(default_group="nodes", changes=False, help={})
def report(c: Context, *, fleet: Fleet) -> None:
    """Per node: runtime, sandbox image, pause image present and protected, trust, kubelet flag.

    The last column says whether all of it matches what prepare-nodes would set up.
    """
    settings = registry_settings(fleet.inventory)
    pauses, pause_for = pause_images(fleet, settings, copy=False)
    rows = {}

    def one(ctx: HostContext) -> None:
        rows[ctx.host.name] = node_report(ctx, settings, pauses[pause_for[ctx.host.name]])

    reports = fleet.run(one, "nodes.report", show=fleet.as_json)
    if not fleet.as_json:
        unreached = {"runtime": "not reached", "ready": False}
        table = [rows.get(r.host, {"host": r.host, **unreached}) for r in reports]
        console().print(report_table(table))
        for row in table:
            if row.get("note"):
                console().print(f"{row['host']}: {row['note']}")
        for failed in (r for r in reports if r.error):
            console().print(f"[red]{failed.host}: {failed.error}[/]")
    finish(reports)
