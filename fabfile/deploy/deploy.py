"""``deploy-registry`` on one host: files, image, container, health, and rollback on failure."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..core.errors import HostError
from ..core.probe import Probe
from ..core.secrets import read_secret
from ..core.steps import Backup, FileSpec, HostContext, differs, ensure_files
from ..registry.config import RegistryConfigError, patch_config, validate_config
from ..runtimes.findings import Severity
from . import container, htpasswd, pki
from .container import SPEC_LABEL, Engine
from .settings import RegistrySettings

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def render_config(settings: RegistrySettings, mount: str) -> str:
    """config.yml from ``templates/config.yml.j2`` and the inventory, extra keys applied."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    proxy = dict(settings.proxy or {})
    text = env.get_template("config.yml.j2").render(
        delete=settings.delete,
        readonly=settings.readonly,
        addr=container.listen_addr(settings),
        tls=settings.tls is not None,
        mount=mount,
        headers=dict(settings.headers),
        users=bool(settings.users),
        realm=f"{settings.endpoint} registry",
        proxy=proxy,
        proxy_username=proxy.get("username") or "",
        proxy_password=_proxy_password(proxy) if proxy.get("username") else "",
    )
    extra = _flatten(settings.config)
    path = f"{settings.config_dir}/config.yml"
    if extra:
        text = patch_config(text, extra, path).text
    errors = [f for f in validate_config(text, path) if f.severity is Severity.ERROR]
    if errors:
        raise RegistryConfigError.from_finding(errors[0], "Fix vars.registry in the inventory.")
    return text


def _proxy_password(proxy: dict[str, Any]) -> str:
    file = Path(proxy["password_file"]) if proxy.get("password_file") else None
    return read_secret(proxy.get("password_env"), file) or ""


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in (values or {}).items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def file_specs(settings: RegistrySettings, mount: str, current_htpasswd: str) -> list[FileSpec]:
    """Every file the registry container reads from ``config_dir``."""
    base = settings.config_dir
    specs = [
        FileSpec(
            f"{base}/config.yml",
            render_config(settings, mount).encode(),
            validate="grep -q '^version: 0.1' {path}",
            reason="config.yml from the inventory",
        )
    ]
    if settings.users:
        specs.append(
            FileSpec(
                f"{base}/auth/htpasswd",
                htpasswd.render(settings.users, current_htpasswd),
                mode="0600",
                reason="basic auth users",
            )
        )
    if settings.tls:
        cert, key = _tls_files(settings)
        specs.append(FileSpec(f"{base}/certs/server.crt", cert.read_bytes(), reason="TLS"))
        specs.append(FileSpec(f"{base}/certs/server.key", key.read_bytes(), mode="0600"))
    return specs


def _tls_files(settings: RegistrySettings) -> tuple[Path, Path]:
    tls = settings.tls
    assert tls is not None
    if tls.generate:
        assert tls.dir is not None
        return pki.registry_tls(tls.dir, [settings.address])
    assert tls.cert_file is not None and tls.key_file is not None
    return tls.cert_file, tls.key_file


def deploy(ctx: HostContext, settings: RegistrySettings) -> None:
    """Bring the registry on ``ctx.host`` to what the inventory says."""
    base = settings.config_dir
    probe = Probe()
    probe.command("engine", container.engine_snippet(settings.engine))
    probe.command("image", container.inspect_snippet("image", settings.image))
    probe.command("container", container.inspect_snippet("container", settings.container))
    probe.command("data_dir", ["test", "-d", settings.data_dir])
    probe.file(f"{base}/config.yml", f"{base}/auth/htpasswd")
    probe.file(f"{base}/certs/server.crt", f"{base}/certs/server.key")
    facts = probe.run(ctx.session)
    binary = facts.out("engine").text.strip().splitlines()
    if not facts.out("engine").ok or not binary:
        raise HostError(ctx.host.name, "neither docker nor podman is installed on this host")
    engine = Engine(binary[0])
    ctx.report.data["engine"] = engine.binary

    image = container.parse_inspect(facts, "image")
    if image is None:
        if ctx.check:
            ctx.report.add("image", "changed", f"would pull or load {settings.image}")
        else:
            ctx.report.add("image", "changed", container.load_image(ctx, engine, settings))
            image = _inspect(ctx, engine, "image", settings.image)
    else:
        ctx.report.add("image", "unchanged", f"{settings.image} present")
    mount = container.mount_dir(settings, image)

    if facts.out("data_dir").ok:
        ctx.report.add("data dir", "unchanged", f"{settings.data_dir} exists")
    else:
        ctx.change(["mkdir", "-p", settings.data_dir], "data dir", f"created {settings.data_dir}")

    specs = file_specs(settings, mount, facts.file(f"{base}/auth/htpasswd").text)
    files_changed = any(differs(s, facts.file(s.path)) for s in specs)
    backup = ensure_files(ctx, specs, facts.files, "file")

    argv = container.run_argv(engine, settings, mount)
    image_id = str((image or {}).get("Id", ""))
    want = container.spec_hash(argv, image_id)
    current = container.parse_inspect(facts, "container")
    _converge_container(ctx, engine, settings, argv, want, current, files_changed, backup)


def _inspect(ctx: HostContext, engine: Engine, kind: str, name: str) -> dict[str, Any] | None:
    out = ctx.session.run(engine.argv(kind, "inspect", name), sudo=True, check=False)
    if not out.ok:
        return None
    data = json.loads(out.stdout)
    return data[0] if data else None


def _converge_container(
    ctx: HostContext,
    engine: Engine,
    settings: RegistrySettings,
    argv: list[str],
    want: str,
    current: dict[str, Any] | None,
    files_changed: bool,
    backup: Backup,
) -> None:
    name = settings.container
    labels = ((current or {}).get("Config") or {}).get("Labels") or {}
    running = bool(((current or {}).get("State") or {}).get("Running"))
    create = [*argv[:2], "--label", f"{SPEC_LABEL}={want}", *argv[2:]]
    if current is None:
        action, reason = [create], f"created {name} from {settings.image}"
    elif labels.get(SPEC_LABEL) != want:
        action = [engine.argv("rm", "-f", name), create]
        reason = f"recreated {name}: image, ports or volumes changed"
    elif files_changed:
        action, reason = [engine.argv("restart", name)], f"restarted {name}: its files changed"
    elif not running:
        action, reason = [engine.argv("start", name)], f"started {name}: it was stopped"
    else:
        started = (current.get("State") or {}).get("StartedAt", "")
        ctx.report.add("container", "unchanged", f"{name} running since {started}")
        ctx.report.data["started_at"] = started
        _check_health(ctx, engine, settings, backup=Backup())
        return
    if ctx.check:
        ctx.report.add("container", "changed", "would run: " + " && ".join(map(shlex.join, action)))
        return
    for command in action:
        ctx.session.run(command, sudo=True)
    ctx.report.add("container", "changed", reason)
    _check_health(ctx, engine, settings, backup)


def _check_health(
    ctx: HostContext, engine: Engine, settings: RegistrySettings, backup: Backup
) -> None:
    problem = container.health(settings, settings.health_timeout)
    if problem is None:
        ctx.report.add("health", "unchanged", f"{settings.url}/v2/ answers")
        return
    said = container.logs_tail(ctx, engine, settings.container, lines=6)
    ctx.report.add("health", "failed", f"{problem}; the registry logged: {said}")
    if backup:
        container.roll_back(ctx, engine, settings, backup)
