"""Docker Engine: merging `daemon.json`, and finding options that dockerd is given twice.

Trust for a private registry belongs to the daemon that pulls or pushes, on every node. A plain
HTTP registry goes into `insecure-registries` as exactly the `host:port` image references use; an
entry with a scheme, a slash or stray blanks never matches (or, on some engines, is refused or
stripped). A TLS registry with its own CA needs `/etc/docker/certs.d/<host:port>/ca.crt` instead,
and no restart.

dockerd refuses to start when an option is set both as a flag and in daemon.json. Flags come
from the unit's ExecStart and, only when the unit loads them, from `/etc/default/docker` or
`/etc/sysconfig/docker`; on systemd hosts those files are often not read at all.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fabfile.runtimes.findings import (
    ConfigParseError,
    DockerConfigError,
    Finding,
    Severity,
)
from fabfile.runtimes.flags import flag_values
from fabfile.runtimes.systemd import env_values, parse_service

DAEMON_JSON = "/etc/docker/daemon.json"
CERTS_D = "/etc/docker/certs.d"
LEGACY_ENV_FILES = ("/etc/default/docker", "/etc/sysconfig/docker")
# Options dockerd can reload on SIGHUP without a restart (that matter here).
RELOADABLE = frozenset({"insecure-registries", "registry-mirrors"})

# daemon.json keys and the dockerd flags that set the same option.
FLAG_FOR_KEY: dict[str, tuple[str, ...]] = {
    "insecure-registries": ("--insecure-registry",),
    "registry-mirrors": ("--registry-mirror",),
    "data-root": ("--data-root", "-g", "--graph"),
    "storage-driver": ("--storage-driver", "-s"),
    "storage-opts": ("--storage-opt",),
    "exec-opts": ("--exec-opt",),
    "log-driver": ("--log-driver",),
    "log-opts": ("--log-opt",),
    "log-level": ("--log-level", "-l"),
    "hosts": ("--host", "-H"),
    "bridge": ("--bridge", "-b"),
    "iptables": ("--iptables",),
    "ip-forward": ("--ip-forward",),
    "debug": ("--debug", "-D"),
    "live-restore": ("--live-restore",),
    "tls": ("--tls",),
    "tlsverify": ("--tlsverify",),
    "tlscacert": ("--tlscacert",),
    "tlscert": ("--tlscert",),
    "tlskey": ("--tlskey",),
    "mtu": ("--mtu",),
    "dns": ("--dns",),
    "group": ("--group", "-G"),
    "containerd": ("--containerd",),
    "cgroup-parent": ("--cgroup-parent",),
}


def docker_ca_path(registry: str) -> str:
    """`/etc/docker/certs.d/<host:port>/ca.crt` for a TLS registry with its own CA."""
    return posixpath.join(CERTS_D, registry.strip(), "ca.crt")


@dataclass(frozen=True)
class EntryProblem:
    """Why one `insecure-registries` entry would not match the references it was meant for."""

    entry: str
    normalised: str
    reasons: tuple[str, ...]


def normalise_registry_entry(entry: str) -> str:
    """`host:port` from an entry: blanks trimmed, scheme and trailing `/` dropped.

    CIDR entries (`10.0.0.0/8`) keep their prefix length.
    """
    value = entry.strip()
    while re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
        value = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", value).strip()
    value = value.rstrip("/").strip()
    if re.fullmatch(r"[0-9.]+/\d{1,2}|[0-9a-fA-F:]+/\d{1,3}", value):
        return value
    return value.split("/", 1)[0].strip()


def entry_problems(entry: str) -> tuple[str, ...]:
    """Why an entry is broken as written (empty when it is fine)."""
    reasons: list[str] = []
    if entry != entry.strip():
        reasons.append("leading or trailing blanks")
    if re.match(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://", entry):
        reasons.append("a scheme (dockerd wants host:port only)")
    stripped = re.sub(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://", "", entry.strip())
    if stripped.endswith("/") or ("/" in stripped and not re.search(r"/\d{1,3}$", stripped)):
        reasons.append("a path or trailing slash")
    return tuple(reasons)


@dataclass
class DaemonJsonEdit:
    """`merge_daemon_json`'s answer."""

    text: str
    before: dict[str, Any]
    after: dict[str, Any]
    changes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    problems: list[EntryProblem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def action(self) -> str:
        """`none`, `reload` (SIGHUP is enough) or `restart` for the change made."""
        return apply_action(self.before, self.after)


def parse_daemon_json(text: str | None, path: str = DAEMON_JSON) -> dict[str, Any]:
    """daemon.json as a dict (empty for a missing or blank file); raises with line and column."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigParseError(
            path,
            "(file)",
            f"not valid JSON at column {error.colno}: {error.msg}",
            "Fix the syntax; dockerd refuses to start with this file.",
            error.lineno,
        ) from None
    if not isinstance(data, dict):
        raise ConfigParseError(
            path, "(file)", "the top level is not a JSON object", "Make it an object: { ... }."
        )
    return data


def merge_daemon_json(
    text: str | None,
    registries: list[str],
    *,
    extra_forms: Mapping[str, list[str]] | None = None,
    path: str = DAEMON_JSON,
) -> DaemonJsonEdit:
    """daemon.json with `registries` (plain-HTTP, `host:port`) in `insecure-registries`.

    Every existing entry is normalised and duplicates dropped; other keys and their order are
    kept. `extra_forms` maps a registry to other spellings to add too (its IP form, say), for
    references that use them. Entries that were broken as written are reported in `problems`.
    """
    before = parse_daemon_json(text, path)
    after: dict[str, Any] = json.loads(json.dumps(before))
    existing = after.get("insecure-registries", [])
    if not isinstance(existing, list) or not all(isinstance(e, str) for e in existing):
        raise DockerConfigError(
            path,
            "insecure-registries",
            "is not a list of strings",
            'Make it a list such as ["127.0.0.1:5000"].',
        )

    problems: list[EntryProblem] = []
    findings: list[Finding] = []
    merged: list[str] = []
    for entry in existing:
        normalised = normalise_registry_entry(entry)
        reasons = entry_problems(entry)
        if reasons:
            problems.append(EntryProblem(entry, normalised, reasons))
            findings.append(
                Finding(
                    Severity.WARNING,
                    path,
                    "insecure-registries",
                    f"entry {entry!r} has {', '.join(reasons)} and never matches; "
                    f"rewritten as {normalised!r}",
                )
            )
        if normalised and normalised not in merged:
            merged.append(normalised)

    wanted: list[str] = []
    for registry in registries:
        wanted.append(normalise_registry_entry(registry))
        wanted.extend(normalise_registry_entry(e) for e in (extra_forms or {}).get(registry, []))
    for registry in wanted:
        if registry not in merged:
            merged.append(registry)
    for entry in merged:
        if entry not in wanted and _same_port_other_name(entry, wanted):
            findings.append(
                Finding(
                    Severity.WARNING,
                    path,
                    "insecure-registries",
                    f"entry {entry!r} only matches references that spell the registry that way; "
                    f"images named {', '.join(wanted)} need their own entry (added)",
                )
            )
    after["insecure-registries"] = merged

    changes: list[str] = []
    if before.get("insecure-registries") != merged:
        changes.append(
            f"{path}: insecure-registries: {before.get('insecure-registries')} -> {merged}"
        )
    new_text = text or ""
    if after != before or text is None or not (text or "").strip():
        new_text = json.dumps(after, indent=2) + "\n"
    return DaemonJsonEdit(new_text, before, after, changes, findings, problems)


def _same_port_other_name(entry: str, wanted: list[str]) -> bool:
    port = entry.rpartition(":")[2]
    return any(w.rpartition(":")[2] == port and w != entry for w in wanted if ":" in w)


def apply_action(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """`none` when equal, `reload` when only reloadable keys differ, else `restart`."""
    keys = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    if not keys:
        return "none"
    return "reload" if keys <= RELOADABLE else "restart"


def flag_conflicts(
    daemon: Mapping[str, Any],
    systemctl_cat: str,
    env_files: Mapping[str, str | None],
    path: str = DAEMON_JSON,
) -> list[Finding]:
    """Options set both in daemon.json and as dockerd flags, and env files systemd ignores.

    `env_files` maps paths (the legacy `/etc/default/docker`, `/etc/sysconfig/docker` and any
    EnvironmentFile= of the unit) to their text, or None when missing. A conflict is an error:
    dockerd would not start. A legacy file with flags the unit never loads is a warning.
    """
    unit = parse_service(systemctl_cat, "docker")
    loaded = {ref.path for ref in unit.environment_files}
    used = set(unit.variables_used)
    sources: list[tuple[str, str]] = [
        (unit.exec_start_file or unit.files[0].path, unit.exec_start or "")
    ]
    findings: list[Finding] = []
    for env_path, text in env_files.items():
        if text is None:
            continue
        values = env_values(text, env_path)
        if env_path in loaded:
            sources.extend((env_path, v) for n, v in values.items() if n in used)
            continue
        flags = [
            n
            for n, v in values.items()
            if any(_flag_given(v, f) for fl in FLAG_FOR_KEY.values() for f in fl)
        ]
        if flags:
            findings.append(
                Finding(
                    Severity.WARNING,
                    env_path,
                    ", ".join(flags),
                    "holds dockerd flags, but the docker unit does not load this file, so they "
                    f"are ignored; put the settings in {path} instead",
                )
            )
    for key in daemon:
        for source, text in sources:
            given = [f for f in FLAG_FOR_KEY.get(key, ()) if _flag_given(text, f)]
            if given:
                findings.append(
                    Finding(
                        Severity.ERROR,
                        path,
                        key,
                        f"is also given as {given[0]} in {source}; dockerd refuses to start with "
                        "both. Keep one: remove the flag or the key",
                    )
                )
    return findings


def _flag_given(text: str, flag: str) -> bool:
    """Whether `text` passes `flag` (long `--name[=| ]value`, or short `-X[=| ]value`)."""
    if flag.startswith("--"):
        return bool(flag_values(text, flag))
    return re.search(rf"(?<![^\s\"']){re.escape(flag)}(?=[\s=\"']|$)", text) is not None
