"""Check that the nodes reach the registry: ``GET /v2/`` with curl, run on each node."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence

from ..core.cli import Fleet
from ..core.inventory import Host
from ..core.results import HostReport
from ..core.runner import run_hosts
from ..core.steps import HostContext
from .settings import RegistrySettings


def curl_argv(settings: RegistrySettings, ca_path: str | None) -> list[str]:
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]
    if ca_path:
        argv += ["--cacert", ca_path]
    return [*argv, f"{settings.url}/v2/"]


def check_from_nodes(
    fleet: Fleet, nodes: Sequence[Host], settings: RegistrySettings
) -> list[HostReport]:
    """One report per node: did ``GET /v2/`` answer 200 (401 with auth) from there."""
    want = "401" if settings.users else "200"

    def one(ctx: HostContext) -> None:
        ca = None
        if settings.ca_file is not None:
            ca = f"/tmp/regtk-ca-{ctx.run_id}.crt"
            ctx.session.run(
                ["sh", "-c", f"cat > {shlex.quote(ca)}"], stdin=settings.ca_file.read_bytes()
            )
        result = ctx.session.run(curl_argv(settings, ca), check=False)
        if ca:
            ctx.session.run(["rm", "-f", ca], check=False)
        code = result.stdout.strip()
        if code == want:
            ctx.report.add("reach registry", "unchanged", f"GET /v2/ answered {code}")
        else:
            said = result.stderr.strip() or f"HTTP {code}"
            ctx.report.add("reach registry", "failed", f"GET {settings.url}/v2/: {said}")

    options = dataclasses.replace(fleet.options, check=False)
    return run_hosts(fleet.inventory, list(nodes), one, options)
