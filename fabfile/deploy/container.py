"""The registry container on its host: engine, image, the container's spec and health.

The container is identified by its name; its spec (image, network, ports, volumes, restart
policy) is hashed into a label. A second deploy with the same spec leaves the container running
untouched; a changed config file only restarts it; a changed spec recreates it.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
import ssl
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..core.errors import HostError
from ..core.probe import Facts, Probe
from ..core.steps import Backup, HostContext, restore
from ..registry.config import config_path_for_image
from .settings import RegistrySettings

SPEC_LABEL = "regtk.spec"


@dataclass(frozen=True)
class Engine:
    """docker or podman on the registry host."""

    binary: str

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *args]


def engine_snippet(choice: str) -> str:
    """Shell that prints the engine binary to use on the host (empty when none)."""
    if choice == "auto":
        return "command -v docker || command -v podman"
    return f"command -v {shlex.quote(choice)}"


def inspect_snippet(kind: str, name: str) -> str:
    """Shell that prints ``docker {kind} inspect NAME`` as JSON, with whichever engine exists."""
    engine = "$(command -v docker || command -v podman)"
    return f"{engine} {kind} inspect {shlex.quote(name)}"


def parse_inspect(facts: Facts, name: str) -> dict[str, Any] | None:
    """The first object of an ``inspect`` output, or None when the object does not exist."""
    out = facts.out(name)
    if not out.ok:
        return None
    try:
        data = json.loads(out.text)
    except json.JSONDecodeError:
        return None
    return data[0] if isinstance(data, list) and data else None


def mount_dir(settings: RegistrySettings, image_info: dict[str, Any] | None) -> str:
    """The directory inside the container the image reads its config.yml from."""
    command = ((image_info or {}).get("Config") or {}).get("Cmd") or []
    return posixpath.dirname(config_path_for_image(settings.image, command))


def run_argv(engine: Engine, settings: RegistrySettings, mount: str) -> list[str]:
    """``docker run`` for the registry, without the spec label."""
    if settings.publish == "host":
        network = ["--network", "host"]
    else:
        network = ["-p", f"{settings.port}:5000"]
    return engine.argv(
        "run",
        "-d",
        "--name",
        settings.container,
        "--restart",
        "always",
        *network,
        "-v",
        f"{settings.data_dir}:/var/lib/registry",
        "-v",
        f"{settings.config_dir}:{mount}:ro",
        settings.image,
    )


def spec_hash(argv: list[str], image_id: str) -> str:
    return hashlib.sha256(json.dumps([argv, image_id]).encode()).hexdigest()[:16]


def listen_addr(settings: RegistrySettings) -> str:
    """``http.addr`` in config.yml: the host's own address with host networking."""
    return f"{settings.address}:{settings.port}" if settings.publish == "host" else ":5000"


def load_image(ctx: HostContext, engine: Engine, settings: RegistrySettings) -> str:
    """Make the image present on the host: pull it, else upload an archive and load it."""
    why = "pulling is off (registry.pull: false)"
    if settings.pull:
        pulled = ctx.session.run(engine.argv("pull", settings.image), sudo=True, check=False)
        if pulled.ok:
            return f"pulled {settings.image}"
        why = f"the host cannot pull it ({pulled.stderr.strip()[-200:]})"
    if settings.image_archive is not None:
        if not settings.image_archive.exists():
            raise HostError(ctx.host.name, f"image_archive {settings.image_archive} does not exist")
        data = settings.image_archive.read_bytes()
        source = str(settings.image_archive)
    else:
        local = subprocess.run(["docker", "save", settings.image], capture_output=True, check=False)
        if local.returncode != 0:
            raise HostError(
                ctx.host.name,
                f"{settings.image} is not on the host, {why}, and this machine's engine does not "
                "have it either: set registry.image_archive to an archive made with `docker save`",
            )
        data = local.stdout
        source = "this machine's engine"
    ctx.session.run(engine.argv("load"), sudo=True, stdin=data)
    return f"loaded {settings.image} from {source} ({len(data) // 1024} KiB)"


def tls_verify(settings: RegistrySettings) -> ssl.SSLContext | bool:
    """What httpx should verify the registry's certificate against."""
    if settings.ca_file is None:
        return True
    return ssl.create_default_context(cafile=str(settings.ca_file))


def health(settings: RegistrySettings, timeout: float) -> str | None:
    """Wait for ``GET /v2/`` to answer 200 (401 with auth); None when it does, else what it saw."""
    want = 401 if settings.users else 200
    verify = tls_verify(settings)
    deadline = time.monotonic() + timeout
    seen = "no answer"
    with httpx.Client(verify=verify, timeout=5.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                status = client.get(f"{settings.url}/v2/").status_code
            except httpx.HTTPError as exc:
                seen = f"{type(exc).__name__}: {exc}"
            else:
                if status == want:
                    return None
                seen = f"HTTP {status}"
            time.sleep(0.3)
    return f"GET {settings.url}/v2/ did not answer {want} within {timeout:.0f}s (last: {seen})"


def logs_tail(ctx: HostContext, engine: Engine, name: str, lines: int = 4) -> str:
    """The last lines the container logged, on one line (for a failure message)."""
    logs = ctx.session.run(engine.argv("logs", "--tail", "20", name), sudo=True, check=False)
    return " | ".join((logs.stdout + logs.stderr).strip().splitlines()[-lines:]) or "nothing"


@dataclass(frozen=True)
class Running:
    """A deployed registry container: its engine, inspect data, image and config file."""

    engine: Engine
    info: dict[str, Any]
    image: str
    inside: str
    """The config path the container reads."""
    host_path: str
    """The host file mounted there."""


def locate(ctx: HostContext, settings: RegistrySettings) -> Running:
    """The registry container on ``ctx.host`` and the host file its config.yml comes from."""
    facts = (
        Probe()
        .command("engine", engine_snippet(settings.engine))
        .command("container", inspect_snippet("container", settings.container))
        .run(ctx.session)
    )
    info = parse_inspect(facts, "container")
    binary = facts.out("engine").text.strip().splitlines()
    if info is None or not binary:
        raise HostError(ctx.host.name, f"no container {settings.container}: deploy it first")
    image = str((info.get("Config") or {}).get("Image") or settings.image)
    inside, host_path = config_source(info, image)
    if host_path is None:
        raise HostError(
            ctx.host.name,
            f"{settings.container} reads {inside}, which is not mounted from the host; redeploy "
            "it with `inv deploy-registry` so its configuration lives in a host file",
        )
    return Running(Engine(binary[0]), info, image, inside, host_path)


def config_source(info: Mapping[str, Any], image: str) -> tuple[str, str | None]:
    """(config path inside the container, host path of the file mounted there, if any)."""
    args = list(info.get("Args") or []) or list((info.get("Config") or {}).get("Cmd") or [])
    inside = config_path_for_image(image, args)
    for mount in info.get("Mounts") or []:
        destination = str(mount.get("Destination", "")).rstrip("/")
        if destination == inside:
            return inside, str(mount["Source"])
        if inside.startswith(destination + "/"):
            return inside, posixpath.join(str(mount["Source"]), inside[len(destination) + 1 :])
    return inside, None


def roll_back(ctx: HostContext, engine: Engine, settings: RegistrySettings, backup: Backup) -> None:
    """Put the old files back, restart the registry, and report whether it is healthy again."""
    restore(ctx, backup)
    ctx.session.run(engine.argv("restart", settings.container), sudo=True, check=False)
    again = health(settings, settings.health_timeout)
    if again is None:
        ctx.report.add("rollback", "changed", "old files restored; the registry is healthy")
    else:
        ctx.report.add("rollback", "failed", f"old files restored but: {again}")
