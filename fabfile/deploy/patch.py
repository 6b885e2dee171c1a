"""``registry.config KEY=VALUE ...`` on one host: patch config.yml safely, or put it back.

The file patched is the one the running container actually reads: the host file mounted over
the image's config path (found from ``docker inspect``), so a patch can never land in a path the
registry ignores. The candidate is checked (parses, ``version``, no tabs, known keys, types),
optionally by starting a throwaway container of the same image with it; then the old file is
backed up, the new one moved into place, the registry restarted, and its health and the effect
checked. If the registry does not come back, the backup is restored and the task fails naming
the key and what the registry logged.
"""

from __future__ import annotations

import posixpath
import shlex
import time
from collections.abc import Mapping
from typing import Any

import httpx

from ..core.errors import HostError
from ..core.probe import Probe
from ..core.steps import Backup, FileSpec, HostContext, ensure_files
from ..registry.config import patch_config
from . import container
from .container import Engine
from .settings import RegistrySettings

ZERO_DIGEST = "sha256:" + "0" * 64


def delete_effect(settings: RegistrySettings, want_enabled: bool) -> str | None:
    """After toggling deletion: a DELETE must no longer be refused with 405 (or must be)."""
    verify = container.tls_verify(settings)
    auth = settings.credentials
    url = f"{settings.url}/v2/regtk-probe/manifests/{ZERO_DIGEST}"
    with httpx.Client(verify=verify, auth=auth, timeout=10.0, trust_env=False) as client:
        status = client.delete(url).status_code
    refused = status == 405
    if refused == want_enabled:
        state = "still refused with 405" if want_enabled else f"answered {status}, not 405"
        return f"a DELETE was {state} after setting storage.delete.enabled={want_enabled}"
    return None


def validate_in_container(
    ctx: HostContext, engine: Engine, image: str, inside: str, source_dir: str, text: str
) -> str | None:
    """Start a throwaway container of ``image`` with the candidate; None when it stays up."""
    work = f"/tmp/regtk-validate-{ctx.run_id}"
    candidate = patch_config(text, {"http.addr": "127.0.0.1:0"}, "candidate").text
    ctx.session.run(
        [
            "sh",
            "-c",
            f"rm -rf {work} && cp -a {shlex.quote(source_dir)} {work} && cat > {work}/"
            + shlex.quote(posixpath.basename(inside)),
        ],
        sudo=True,
        stdin=candidate.encode(),
    )
    name = f"regtk-validate-{ctx.run_id.lower()}"
    mount = f"{work}:{posixpath.dirname(inside)}:ro"
    try:
        ctx.session.run(
            engine.argv("run", "-d", "--name", name, "--network", "none", "-v", mount, image),
            sudo=True,
        )
        time.sleep(2.0)
        state = ctx.session.run(
            engine.argv("inspect", "--format", "{{.State.Running}}", name), sudo=True
        ).stdout.strip()
        if state == "true":
            return None
        return container.logs_tail(ctx, engine, name)
    finally:
        ctx.session.run(engine.argv("rm", "-f", name), sudo=True, check=False)
        ctx.session.run(["rm", "-rf", work], sudo=True, check=False)


def patch(
    ctx: HostContext,
    settings: RegistrySettings,
    assignments: Mapping[str, Any],
    try_container: bool,
) -> None:
    """Patch the registry's config.yml on ``ctx.host`` with ``assignments``."""
    running = container.locate(ctx, settings)
    engine, image, inside, host_path = (
        running.engine,
        running.image,
        running.inside,
        running.host_path,
    )
    current = Probe().file(host_path).run(ctx.session).file(host_path)
    if not current.exists:
        raise HostError(ctx.host.name, f"{host_path} (mounted at {inside}) does not exist")
    result = patch_config(current.text, assignments, host_path)
    for finding in result.findings:
        ctx.report.warn(str(finding))
    if not result.changed:
        ctx.report.add("config.yml", "unchanged", f"{host_path} already has these values")
        return
    keys = ", ".join(f"{k}={v!r}" for k, _, v in result.changes)
    if try_container and not ctx.check:
        problem = validate_in_container(
            ctx, engine, image, inside, posixpath.dirname(host_path), result.text
        )
        if problem is not None:
            ctx.report.add(
                "validate", "failed", f"{keys}: a test container did not stay up: {problem}"
            )
            return
        ctx.report.add("validate", "unchanged", "a test container started with the candidate")
    spec = FileSpec(host_path, result.text.encode(), current.mode, current.owner, current.group)
    backup = ensure_files(ctx, [spec], {host_path: current}, "config.yml")
    if ctx.check:
        ctx.report.add("restart", "changed", f"would restart {settings.container}")
        return
    _restart_checked(ctx, engine, settings, backup, assignments, keys)
    ctx.report.warn(
        "deploy-registry renders config.yml from the inventory; to keep this change, add it "
        "under vars.registry.config (or the matching vars.registry key)"
    )


def _restart_checked(
    ctx: HostContext,
    engine: Engine,
    settings: RegistrySettings,
    backup: Backup,
    assignments: Mapping[str, Any],
    keys: str,
) -> None:
    ctx.session.run(engine.argv("restart", settings.container), sudo=True)
    problem = container.health(settings, settings.health_timeout)
    if problem is None and "storage.delete.enabled" in assignments:
        problem = delete_effect(settings, assignments["storage.delete.enabled"] is True)
    if problem is None:
        ctx.report.add("restart", "changed", f"{settings.container} healthy with {keys}")
        return
    said = container.logs_tail(ctx, engine, settings.container)
    ctx.report.add("restart", "failed", f"after {keys}: {problem}; the registry logged: {said}")
    container.roll_back(ctx, engine, settings, backup)
