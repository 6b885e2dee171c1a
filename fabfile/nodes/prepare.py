"""``prepare-nodes`` on one node: trust, sandbox image, pre-pull, kubelet flag, in that order.

1. Trust the private registry and point the runtime's sandbox image at the private pause copy
   (containerd: config.toml + certs.d/<host:port>/hosts.toml; Docker: daemon.json or the CA under
   certs.d). Restart the runtime only when its config file changed, verify the effective
   settings, and put the old files back if it does not come up right.
2. Pre-pull the pause image from the private registry into the namespace the kubelet uses, tag
   it with the upstream name too, and mark it pinned where the runtime honours that.
3. Set, leave or remove ``--pod-infra-container-image`` by the kubelet's version, restart the
   kubelet only when its flags changed, and check the running process's flags.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from ..core.errors import HostError
from ..core.probe import Probe
from ..core.steps import Backup, FileSpec, HostContext, ensure_files, restart_and_verify
from ..deploy.settings import RegistrySettings
from ..runtimes import containerd, docker, hosts
from ..runtimes.containerd import CONFIG_PATH
from ..runtimes.docker import DAEMON_JSON
from ..runtimes.findings import Finding, Severity
from ..runtimes.kubelet import plan_kubelet_flag
from ..runtimes.systemd import parse_service
from ..runtimes.versions import FlagAction, containerd_pins_sandbox
from .facts import (
    DOCKER_CLIENT_CONFIG,
    DOCKER_ENV_FILES,
    NodeFacts,
    RuntimeFacts,
    gather,
    image_digests,
    image_names,
)

PIN_LABEL = "io.cri-containerd.pinned=pinned"
FLAG = "--pod-infra-container-image"


@dataclass(frozen=True)
class PauseImage:
    """The pause image a node should use: its private copy and the upstream name."""

    private: str
    upstream: str
    digest: str
    platforms: tuple[str, ...]
    problem: str = ""
    """Why the private copy cannot be used (empty when it can)."""


@dataclass
class RuntimePlan:
    """Files for the runtime and which service they feed."""

    service: str
    config_files: list[FileSpec] = field(default_factory=list)
    """Files whose change needs the service restarted (or reloaded)."""
    live_files: list[FileSpec] = field(default_factory=list)
    """Files the runtime reads on use (certs.d), no restart needed."""
    action: str = "restart"


def _note(ctx: HostContext, findings: list[Finding]) -> None:
    """Warnings go to the report; an error-level finding stops this host before any change."""
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        raise HostError(ctx.host.name, str(errors[0]).removeprefix("error: "))
    for finding in findings:
        if finding.severity is Severity.WARNING:
            ctx.report.warn(str(finding).removeprefix("warning: "))


def runtime_plan(
    ctx: HostContext, facts: RuntimeFacts, settings: RegistrySettings, sandbox: str | None
) -> RuntimePlan:
    """What the node's runtime files should say."""
    endpoint = settings.endpoint
    ca = settings.ca_file.read_bytes() if settings.ca_file else None
    if not facts.runtime:
        raise HostError(ctx.host.name, "neither Docker nor containerd runs on this host")
    if facts.runtime == "containerd":
        if facts.containerd is None:
            raise HostError(ctx.host.name, "the kubelet uses containerd, which is not installed")
        edit = containerd.update_config(facts.text(CONFIG_PATH), facts.containerd, sandbox)
        _note(ctx, edit.findings)
        plan = RuntimePlan("containerd")
        plan.config_files.append(
            FileSpec(
                CONFIG_PATH,
                edit.text.encode(),
                validate="containerd --config {path} config dump >/dev/null",
                reason="; ".join(edit.changes),
            )
        )
        authorization = None
        if settings.credentials:
            authorization = hosts.basic_authorization(*settings.credentials)
        toml = hosts.render_hosts_toml(
            endpoint, tls=settings.tls is not None, authorization=authorization
        )
        mode = "0600" if authorization else "0644"
        plan.live_files.append(
            FileSpec(hosts.hosts_toml_path(endpoint), toml.encode(), mode=mode, reason="trust")
        )
        if ca is not None:
            plan.live_files.append(FileSpec(hosts.default_ca_path(endpoint), ca, reason="CA"))
        return plan
    if facts.runtime == "docker":
        plan = RuntimePlan("docker")
        conflicts = docker.flag_conflicts(
            docker.parse_daemon_json(facts.text(DAEMON_JSON)),
            facts.docker_unit,
            {p: facts.text(p) for p in DOCKER_ENV_FILES},
        )
        _note(ctx, conflicts)
        if ca is None:
            merged = docker.merge_daemon_json(facts.text(DAEMON_JSON), [endpoint])
            _note(ctx, merged.findings)
            for problem in merged.problems:
                ctx.report.warn(
                    f"{DAEMON_JSON}: insecure-registries entry {problem.entry!r}: "
                    f"{'; '.join(problem.reasons)} (now {problem.normalised!r})"
                )
            plan.config_files.append(
                FileSpec(DAEMON_JSON, merged.text.encode(), reason="; ".join(merged.changes))
            )
            plan.action = "reload" if merged.action == "reload" else "restart"
        else:
            plan.live_files.append(FileSpec(docker.docker_ca_path(endpoint), ca, reason="CA"))
        if settings.credentials:
            plan.live_files.append(_docker_auth(facts, endpoint, settings.credentials))
        return plan
    raise HostError(
        ctx.host.name,
        f"the kubelet uses {facts.runtime}, which this toolkit does not configure yet",
    )


def _docker_auth(facts: RuntimeFacts, endpoint: str, credentials: tuple[str, str]) -> FileSpec:
    """Merge the registry's credentials into root's Docker client config."""
    current = json.loads(facts.text(DOCKER_CLIENT_CONFIG) or "{}")
    token = base64.b64encode(":".join(credentials).encode()).decode()
    current.setdefault("auths", {})[endpoint] = {"auth": token}
    text = json.dumps(current, indent=2) + "\n"
    return FileSpec(DOCKER_CLIENT_CONFIG, text.encode(), mode="0600", reason="registry login")


def verify_runtime(
    ctx: HostContext, facts: RuntimeFacts, settings: RegistrySettings, sandbox: str | None
) -> str | None:
    """The runtime runs with the settings asked for; None when it does, else what is wrong."""
    if facts.runtime == "containerd":
        dump = ctx.run(["containerd", "config", "dump"], check=False)
        if not dump.ok:
            return f"`containerd config dump` failed: {dump.stderr.strip()}"
        wanted = [v for v in (sandbox, containerd.CERTS_D) if v is not None]
        missing = [v for v in wanted if f'"{v}"' not in dump.stdout]
        return f"containerd's effective config lacks {', '.join(missing)}" if missing else None
    info = ctx.run(
        ["docker", "info", "--format", "{{json .RegistryConfig.IndexConfigs}}"], check=False
    )
    if not info.ok:
        return f"`docker info` failed: {info.stderr.strip()}"
    if settings.tls is None and f'"{settings.endpoint}"' not in info.stdout:
        return f"docker info does not list {settings.endpoint} among its registries"
    return None


def prepull(ctx: HostContext, facts: NodeFacts, pause: PauseImage) -> None:
    """The pause image present under both names, from the private registry, pinned if possible."""
    digests = image_digests(facts)
    names = image_names(facts)
    have = digests.get(pause.private) == pause.digest and pause.upstream in names
    if facts.runtime == "containerd":
        upstream_ok = digests.get(pause.upstream) == pause.digest
        pins = facts.containerd is not None and containerd_pins_sandbox(facts.containerd)
        if have and upstream_ok:
            ctx.report.add(
                "pause image", "unchanged", f"{pause.private} present ({pause.digest[:19]})"
            )
        else:
            pull = (
                ["crictl", "pull", pause.private]
                if "crictl" in facts.tools
                else [
                    "ctr",
                    "-n",
                    "k8s.io",
                    "images",
                    "pull",
                    "--hosts-dir",
                    containerd.CERTS_D,
                    pause.private,
                ]
            )
            tag = ["ctr", "-n", "k8s.io", "images", "tag", "--force", pause.private, pause.upstream]
            if ctx.change(pull, "pause image", f"pulled {pause.private}") is not None:
                ctx.change(tag, "pause tag", f"tagged {pause.upstream}")
        label = ["ctr", "-n", "k8s.io", "images", "label"]
        pinned = {line.split()[0] for line in facts.images.splitlines() if PIN_LABEL in line}
        if {pause.private, pause.upstream} - pinned:
            for name in (pause.private, pause.upstream):
                ctx.change([*label, name, PIN_LABEL], f"pin label {name}", "labelled pinned")
        else:
            ctx.report.add("pin label", "unchanged", "both names carry the pinned label")
        if pins:
            ctx.report.data["protected"] = "yes"
        else:
            ctx.report.data["protected"] = "no"
            ctx.report.warn(
                f"containerd {facts.containerd} does not honour the pinned label (1.6.22, 1.7.3 "
                "and 2.x do): kubelet image GC may remove the pause image"
            )
        return
    if have:
        ctx.report.add("pause image", "unchanged", f"{pause.private} present")
    else:
        if ctx.change(["docker", "pull", pause.private], "pause image", f"pulled {pause.private}"):
            ctx.change(
                ["docker", "tag", pause.private, pause.upstream],
                "pause tag",
                f"tagged {pause.upstream}",
            )
    ctx.report.data["protected"] = "kubelet flag" if facts.kubelet.minor < 24 else "no"


def kubelet_step(ctx: HostContext, facts: NodeFacts, pause: PauseImage) -> bool:
    """Bring the kubelet's flag to what its version needs; restart it only if it changed."""
    unit = parse_service(facts.kubelet_unit, "kubelet")
    env_files = {ref.path: facts.text(ref.path) for ref in unit.environment_files}
    plan = plan_kubelet_flag(
        facts.kubelet, facts.runtime, pause.private, facts.kubelet_unit, env_files
    )
    _note(ctx, plan.findings)
    ctx.report.data["kubelet_flag"] = plan.action.value
    if not plan.files:
        ctx.report.add(
            "kubelet flags", "unchanged", f"{FLAG} already right for kubelet {facts.kubelet}"
        )
        return True
    specs = [
        FileSpec(path, text.encode(), reason="; ".join(plan.changes))
        for path, text in plan.files.items()
    ]
    unread = [s.path for s in specs if s.path not in facts.files]
    current = dict(facts.files)
    if unread:
        current.update(Probe().file(*unread).run(ctx.session).files)
    backup = ensure_files(ctx, specs, current, "kubelet flags")
    if plan.daemon_reload_needed and not ctx.check:
        ctx.session.run(["systemctl", "daemon-reload"], sudo=True)

    def flags_ok() -> str | None:
        cmdline = ctx.run(
            [
                "sh",
                "-c",
                'tr "\\0" " " < /proc/$(systemctl show -p MainPID --value kubelet)/cmdline',
            ],
            check=False,
        ).stdout
        if plan.action is FlagAction.SET and f"{FLAG}={pause.private}" not in cmdline:
            return f"the kubelet runs without {FLAG}={pause.private}"
        if plan.action is FlagAction.REMOVE and FLAG in cmdline:
            return f"the kubelet still runs with {FLAG}"
        return None

    ok = restart_and_verify(ctx, "kubelet", backup, "its flags changed", flags_ok)
    if not ok and plan.daemon_reload_needed:
        ctx.session.run(["systemctl", "daemon-reload"], sudo=True, check=False)
    return ok


def prepare(
    ctx: HostContext, settings: RegistrySettings, pauses: dict[str, PauseImage], pause_for: str
) -> None:
    """Everything prepare-nodes does on one node."""
    pause = pauses[pause_for]
    if pause.problem and not ctx.check:
        raise HostError(ctx.host.name, f"{pause.problem}; this node was not touched")
    facts = gather(ctx, settings.endpoint)
    claimed = str(ctx.host.vars.get("kubernetes_version", ""))
    if claimed and not claimed.startswith(f"{facts.kubelet.major}.{facts.kubelet.minor}."):
        ctx.report.warn(
            f"the inventory says kubernetes_version {claimed} but the kubelet is "
            f"{facts.kubelet}: the pause tag follows the inventory, the flag rule the kubelet"
        )
    if pause.platforms and f"linux/{facts.arch}" not in pause.platforms:
        raise HostError(
            ctx.host.name,
            f"{pause.private} has no linux/{facts.arch} image (it has "
            f"{', '.join(pause.platforms)}): mirror the whole index",
        )
    ctx.report.data.update(runtime=facts.runtime, kubelet=str(facts.kubelet), sandbox=pause.private)
    plan = runtime_plan(ctx, facts, settings, pause.private)
    ensure_files(ctx, plan.live_files, facts.files, "trust")
    backup: Backup = ensure_files(ctx, plan.config_files, facts.files, f"{plan.service} config")
    config_changed = any(facts.files[s.path].content != s.content for s in plan.config_files)
    if config_changed:
        ok = restart_and_verify(
            ctx,
            plan.service,
            backup,
            f"{plan.service} config changed",
            lambda: verify_runtime(ctx, facts, settings, pause.private),
            action=plan.action,
        )
        if not ok:
            return
    else:
        ctx.report.add(plan.service, "unchanged", "config unchanged, not restarted")
    prepull(ctx, facts, pause)
    kubelet_step(ctx, facts, pause)
