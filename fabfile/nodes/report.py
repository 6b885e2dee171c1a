"""``nodes.report``: what each node runs and whether it matches what prepare-nodes sets up."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from ..core.steps import HostContext
from ..deploy.settings import RegistrySettings
from ..runtimes import containerd, docker, hosts
from ..runtimes.containerd import CONFIG_PATH
from ..runtimes.docker import DAEMON_JSON
from ..runtimes.versions import (
    FlagAction,
    Version,
    containerd_pins_sandbox,
    kubelet_flag_action,
)
from .facts import gather, image_digests, image_names, pinned_images
from .prepare import FLAG, PauseImage

_FLAG_VALUE = re.compile(re.escape(FLAG) + r"[= ]+(\S+)")


def node_report(ctx: HostContext, settings: RegistrySettings, pause: PauseImage) -> dict[str, Any]:
    """One row of the report; also recorded as the host's result (failed when not ready)."""
    facts = gather(ctx, settings.endpoint)
    row: dict[str, Any] = {"host": ctx.host.name, "runtime": facts.runtime}
    problems: list[str] = []
    found_flag = _FLAG_VALUE.search(facts.kubelet_cmdline)
    flag = found_flag.group(1) if found_flag else None
    old_kubelet = facts.kubelet < Version(1, 29, 0)
    if facts.runtime == "containerd" and facts.containerd is not None:
        row["runtime"] = f"containerd {facts.containerd}"
        found = containerd.inspect_config(facts.text(CONFIG_PATH), facts.containerd)
        row["sandbox"] = found.effective_sandbox_image
        toml = facts.text(hosts.hosts_toml_path(settings.endpoint))
        trusted = toml is not None and found.settings.config_path == containerd.CERTS_D
        pinned = containerd_pins_sandbox(facts.containerd) and pause.private in pinned_images(facts)
        row["protected"] = pinned or (old_kubelet and flag == pause.private)
    else:
        row["runtime"] = f"docker {facts.docker}"
        row["sandbox"] = flag or "(runtime default)"
        listed = docker.parse_daemon_json(facts.text(DAEMON_JSON)).get("insecure-registries", [])
        ca = facts.text(docker.docker_ca_path(settings.endpoint))
        trusted = settings.endpoint in listed if settings.tls is None else ca is not None
        row["protected"] = old_kubelet and flag == pause.private
    digests = image_digests(facts)
    row["present"] = digests.get(pause.private) == pause.digest and pause.upstream in image_names(
        facts
    )
    row["trusted"] = trusted
    row["kubelet"] = f"{facts.kubelet} ({facts.active.get('kubelet', '?')})"
    row["flag"] = flag or "absent"
    action = kubelet_flag_action(facts.kubelet)
    if row["sandbox"] != pause.private:
        problems.append(f"sandbox image is {row['sandbox']}, want {pause.private}")
    if not row["present"]:
        problems.append(f"{pause.private} not present under both names")
    if not trusted:
        problems.append("the runtime does not trust the registry")
    if facts.active.get("kubelet") != "active":
        problems.append("kubelet is not active")
    if action is FlagAction.SET and row["flag"] != pause.private:
        problems.append(f"kubelet {facts.kubelet} should run with {FLAG}={pause.private}")
    if action is FlagAction.REMOVE and flag:
        problems.append(f"kubelet {facts.kubelet} must not have {FLAG}")
    if not row["protected"]:
        row["note"] = (
            f"the pause image is not protected from the kubelet's image GC: {row['runtime']} does "
            "not pin it (containerd pins from 1.6.22, 1.7.3 and 2.x)"
            + ("" if old_kubelet else f", and kubelet {facts.kubelet} has no flag for it")
        )
    row["ready"] = not problems
    row["problems"] = problems
    ctx.report.data.update(row)
    if problems:
        ctx.report.add("report", "failed", "; ".join(problems))
    else:
        ctx.report.add("report", "unchanged", "ready")
    return row


def report_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="nodes", title_justify="left")
    columns = (
        "host",
        "runtime",
        "sandbox",
        "present",
        "protected",
        "trusted",
        "kubelet",
        "flag",
        "ready",
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            if isinstance(value, bool):
                value = "[green]yes[/]" if value else "[red]no[/]"
            cells.append(str(value))
        table.add_row(*cells)
    return table
