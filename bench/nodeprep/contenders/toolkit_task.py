"""Contender T: the bench's node preparation written as a toolkit task (an Invoke fleet task).

Per host, on the one connection the :class:`~fabfile.core.ssh.Connector` opens: one
:class:`~fabfile.core.probe.Probe` reads the three files and tests the image marker; one
:func:`~fabfile.core.steps.ensure_files` writes whatever differs (staged, backed up, renamed);
one more command pulls the image and/or restarts the kubelet stand-in, only when needed. So a
warm host costs 1 command, a drifted host 2 and a cold host 3.

    PYTHONPATH=. .venv/bin/inv -r bench/nodeprep/contenders -c toolkit_task \\
        bench-prepare -i INVENTORY --json [--parallel N]

With ``--json`` it prints the toolkit's usual JSON document, plus a ``bench`` entry with the
connector's counters and the seconds spent inside ``run_hosts`` (the rest of the wall time is
interpreter start, imports and Invoke's parsing).
"""

from __future__ import annotations

import shlex
import time

from invoke import Collection, Context

from bench.nodeprep import work
from fabfile.core import steps
from fabfile.core.cli import Fleet, finish, fleet_task
from fabfile.core.output import emit
from fabfile.core.probe import Probe
from fabfile.core.steps import FileSpec, HostContext, ensure_files


def prepare(ctx: HostContext) -> None:
    """Files, image marker, and a kubelet restart only when a file changed."""
    host_vars = {k: str(v) for k, v in ctx.host.vars.items()}
    root = f"{host_vars['root_base']}/{ctx.host.name}"
    specs = [
        FileSpec(f"{root}/{rel}", data, "0644")
        for rel, data in work.render(ctx.host.name, host_vars).items()
    ]
    digest = host_vars["image_digest"]
    facts = (
        Probe()
        .file(*(spec.path for spec in specs))
        .command("image", ["test", "-e", f"{root}/images/{digest}"])
        .run(ctx.session)
    )
    backup = ensure_files(ctx, specs, facts.files, "config")
    bin_dir = host_vars["fleet_bin"]
    commands: list[list[str]] = []
    reasons: list[str] = []
    if facts.out("image").ok:
        ctx.report.add("image", "unchanged", "already present")
    else:
        commands.append([f"{bin_dir}/fleet-pull", root, digest])
        reasons.append(f"{digest} was missing")
    if backup:
        commands.append([f"{bin_dir}/fleet-kubelet", "restart", root])
        reasons.append("a config file changed")
    if commands:
        script = " && ".join(shlex.join(command) for command in commands)
        ctx.change(script, "image and kubelet", "; ".join(reasons))


@fleet_task(help={})
def bench_prepare(c: Context, *, fleet: Fleet) -> None:
    """Write the bench's three node files, ensure the image marker, restart on change."""
    # Backups of replaced files go beside the bench's hosts, not to /var/backups on this machine.
    steps.BACKUP_ROOT = str(work.BACKUPS)
    connector = fleet.connector()
    started = time.perf_counter()
    try:
        reports = fleet.run(prepare, "bench-prepare", connector, show=False)
    finally:
        connector.close()
    engine = time.perf_counter() - started
    counters = connector.counters
    bench = {
        "engine_s": round(engine, 4),
        "connections": counters.connections,
        "commands": counters.commands,
    }
    emit(reports, "bench-prepare", fleet.as_json, extra={"bench": bench})
    finish(reports)


ns = Collection(bench_prepare)
