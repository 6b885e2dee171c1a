"""Copy images on the registry host, for networks where only that host reaches the upstream.

With skopeo on the host the copy keeps every platform and the digests (``skopeo copy --all``).
Without it the host's Docker engine pulls, tags and pushes, which keeps one platform and may
change the digest; each image copied that way is reported with a warning. Upstream credentials
and CA certificates go to a private temporary directory on the host, removed afterwards; no
password is ever on a command line.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Sequence

import httpx

from ..core.probe import Probe
from ..core.steps import HostContext
from ..deploy.settings import RegistrySettings
from ..registry.client import Endpoint
from ..registry.reference import Reference


def upstream_name(source: Reference, endpoints: dict[str, Endpoint]) -> tuple[str, Endpoint | None]:
    """The reference as the registry host fetches it: through the endpoint the inventory names."""
    endpoint = endpoints.get(source.registry)
    if endpoint is None:
        return str(source), None
    host = httpx.URL(endpoint.url).netloc.decode("ascii")
    tail = f":{source.tag}" if source.tag else f"@{source.digest}"
    return f"{host}/{source.repository}{tail}", endpoint


def _setup_files(workdir: str, endpoints: Sequence[Endpoint]) -> str:
    """Shell that writes an auth file and per-registry CA directories under ``workdir``."""
    auths = {}
    lines = [f"umask 077; rm -rf {workdir}; mkdir -p {workdir}/certs"]
    for endpoint in endpoints:
        host = httpx.URL(endpoint.url).netloc.decode("ascii")
        if endpoint.username:
            pair = f"{endpoint.username}:{endpoint.password or ''}".encode()
            auths[host] = {"auth": base64.b64encode(pair).decode()}
        if endpoint.ca_file:
            with open(endpoint.ca_file, encoding="ascii") as handle:
                ca = handle.read()
            base = shlex.quote(f"{workdir}/certs/{host}")
            lines.append(f"mkdir -p {base}")
            lines.append(f"printf '%s' {shlex.quote(ca)} > {base}/ca.crt")
    auth = json.dumps({"auths": auths})
    lines.append(f"printf '%s' {shlex.quote(auth)} > {workdir}/auth.json")
    return "\n".join(lines) + "\n"


def copy_on_host(
    ctx: HostContext,
    settings: RegistrySettings,
    pairs: Sequence[tuple[Reference, Reference]],
    endpoints: dict[str, Endpoint],
) -> None:
    """Copy each pair from the registry host itself, reporting one step per image."""
    tools = Probe().command("tools", "command -v skopeo; command -v docker").run(ctx.session)
    found = tools.out("tools").text
    skopeo = "skopeo" in found
    if not skopeo and "docker" not in found:
        ctx.report.add("mirror", "failed", "neither skopeo nor docker is on the registry host")
        return
    workdir = f"/root/.regtk-mirror-{ctx.run_id}"
    named = [(upstream_name(src, endpoints), dst) for src, dst in pairs]
    used = [e for (_, e), _ in named if e is not None]
    if settings.users or settings.ca_file:
        used.append(
            Endpoint(
                settings.url,
                ca_file=str(settings.ca_file) if settings.ca_file else None,
                username=settings.credentials[0] if settings.credentials else None,
                password=settings.credentials[1] if settings.credentials else None,
            )
        )
    ctx.session.run("sh -s", sudo=True, stdin=_setup_files(workdir, used).encode())
    try:
        for (source, _), target in named:
            if skopeo:
                _skopeo(ctx, settings, workdir, source, str(target))
            else:
                _docker(ctx, workdir, source, str(target))
    finally:
        ctx.session.run(["rm", "-rf", workdir], sudo=True, check=False)


def _skopeo(
    ctx: HostContext, settings: RegistrySettings, workdir: str, source: str, target: str
) -> None:
    argv = [
        "skopeo",
        "copy",
        "--all",
        "--preserve-digests",
        "--authfile",
        f"{workdir}/auth.json",
        "--src-cert-dir",
        f"{workdir}/certs/{source.split('/', 1)[0]}",
    ]
    if settings.tls is None:
        argv.append("--dest-tls-verify=false")
    else:
        argv += ["--dest-cert-dir", f"{workdir}/certs/{settings.endpoint}"]
    result = ctx.session.run(
        [*argv, f"docker://{source}", f"docker://{target}"], sudo=True, check=False
    )
    if result.ok:
        ctx.report.add(f"mirror {target}", "changed", f"skopeo copied every platform of {source}")
    else:
        ctx.report.add(f"mirror {target}", "failed", result.stderr.strip()[-300:])


def _docker(ctx: HostContext, workdir: str, source: str, target: str) -> None:
    env = f"DOCKER_CONFIG={workdir}"
    upstream = source.split("/", 1)[0]
    trusted = f"/etc/docker/certs.d/{upstream}"
    script = (
        f"if [ -f {workdir}/certs/{upstream}/ca.crt ] && [ ! -f {trusted}/ca.crt ]; then "
        f"mkdir -p {trusted} && cp {workdir}/certs/{upstream}/ca.crt {trusted}/ && "
        f"echo trusted >&2; fi; "
        f"cp {workdir}/auth.json {workdir}/config.json && "
        f"{env} docker pull -q {shlex.quote(source)} && docker tag {shlex.quote(source)} "
        f"{shlex.quote(target)} && {env} docker push -q {shlex.quote(target)}"
    )
    result = ctx.session.run(["sh", "-c", script], sudo=True, check=False)
    if not result.ok:
        ctx.report.add(f"mirror {target}", "failed", result.stderr.strip()[-300:])
        return
    if "trusted" in result.stderr.splitlines():
        ctx.report.add("upstream CA", "changed", f"Docker now trusts {upstream} ({trusted})")
    ctx.report.add(f"mirror {target}", "changed", f"docker pull/tag/push of {source}")
    ctx.report.warn(
        f"{target} was copied with docker pull/push: only this host's platform is kept and the "
        "digest may differ from upstream; install skopeo on the registry host to copy every "
        "platform byte for byte"
    )
