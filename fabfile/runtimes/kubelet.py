"""Where the kubelet's flags live, and what to do with `--pod-infra-container-image`.

Installs put the kubelet's flags in one of a few places:

- kubeadm: the drop-in `10-kubeadm.conf` loads `/var/lib/kubelet/kubeadm-flags.env`
  (`KUBELET_KUBEADM_ARGS`) and `/etc/default/kubelet` or `/etc/sysconfig/kubelet`
  (`KUBELET_EXTRA_ARGS`);
- packages without kubeadm: `/etc/sysconfig/kubelet` or `/etc/kubernetes/kubelet`
  (`KUBELET_ARGS`);
- the flags written straight into `ExecStart`.

The flag's meaning changed with the kubelet's version (see `versions.kubelet_flag_action`): below
1.29 it keeps the sandbox image from the kubelet's image GC (and, with dockershim below 1.24, picks
the image), so it is set to exactly the runtime's sandbox reference; 1.29 to 1.34 ignore it, so it
is left alone with a warning; 1.35 refuses to start with it, so it is removed everywhere.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from fabfile.runtimes.findings import Finding, KubeletConfigError, Severity
from fabfile.runtimes.flags import append_flag, flag_values, remove_flag, set_flag
from fabfile.runtimes.systemd import ServiceUnit, parse_env_file, parse_service
from fabfile.runtimes.versions import FlagAction, Version, kubelet_flag_action

FLAG = "--pod-infra-container-image"
KUBEADM_FLAGS_ENV = "/var/lib/kubelet/kubeadm-flags.env"
EXTRA_ARGS_FILES = ("/etc/default/kubelet", "/etc/sysconfig/kubelet")
SYSCONFIG_FILES = ("/etc/sysconfig/kubelet", "/etc/kubernetes/kubelet")
# /etc/kubernetes/config holds the shared KUBE_* settings of the packaged (non-kubeadm) layout.
KNOWN_ENV_FILES = frozenset(
    {KUBEADM_FLAGS_ENV, *EXTRA_ARGS_FILES, *SYSCONFIG_FILES, "/etc/kubernetes/config"}
)
# Variables that carry kubelet flags, in the order the toolkit prefers to add a flag to them.
FLAG_VARIABLES = ("KUBELET_KUBEADM_ARGS", "KUBELET_ARGS", "KUBELET_EXTRA_ARGS", "KUBELET_OPTS")


@dataclass(frozen=True)
class FlagSite:
    """One place where the flag is, or could be, given to the kubelet."""

    path: str
    variable: str | None
    values: tuple[str, ...]


@dataclass
class KubeletLayout:
    """How this node's kubelet gets its flags."""

    name: str
    unit: ServiceUnit
    env_files: dict[str, str | None]
    sites: list[FlagSite] = field(default_factory=list)
    add_to: tuple[str, str | None] = ("", None)

    @property
    def flag_values(self) -> list[str]:
        """Every value the flag has across the sites, in command-line order."""
        return [value for site in self.sites for value in site.values]


@dataclass
class KubeletFlagPlan:
    """The outcome of `plan_kubelet_flag`: new texts for the files that change, and why."""

    action: FlagAction
    layout: KubeletLayout
    files: dict[str, str] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def restart_needed(self) -> bool:
        return bool(self.files)

    @property
    def daemon_reload_needed(self) -> bool:
        """A changed unit file needs `systemctl daemon-reload` before the restart."""
        return any(path in {f.path for f in self.layout.unit.files} for path in self.files)


def locate_kubelet_flags(systemctl_cat: str, env_files: Mapping[str, str | None]) -> KubeletLayout:
    """Work out the layout from `systemctl cat kubelet` and the texts of the env files it loads.

    `env_files` maps each `EnvironmentFile=` path to its text, or None when the file is missing.
    Raises `KubeletConfigError` for a layout the toolkit does not know, saying what it found.
    """
    unit = parse_service(systemctl_cat, "kubelet")
    unit_path = unit.files[0].path
    tokens = unit.exec_tokens
    if not tokens:
        raise KubeletConfigError(
            unit_path, "ExecStart", "the kubelet unit has no ExecStart", _UNKNOWN_REMEDY
        )
    if posixpath.basename(tokens[0]) != "kubelet":
        raise KubeletConfigError(
            unit.exec_start_file or unit_path,
            "ExecStart",
            f"ExecStart runs {tokens[0]!r}, not the kubelet binary, so its flags cannot be found",
            _UNKNOWN_REMEDY,
        )
    texts: dict[str, str | None] = {}
    for ref in unit.environment_files:
        if ref.path not in env_files:
            raise KubeletConfigError(
                ref.path,
                "EnvironmentFile",
                "the unit loads this file but its text was not given",
                "Read every EnvironmentFile= of the unit (None for a missing one) and try again.",
            )
        text = env_files[ref.path]
        if text is None and not ref.optional:
            raise KubeletConfigError(
                ref.path,
                "EnvironmentFile",
                "the unit requires this file (no `-` prefix) but it is missing",
                "Create the file or fix the unit; the kubelet cannot start as it is.",
            )
        texts[ref.path] = text

    used = unit.variables_used
    defined_in = {
        path: {a.name for a in parse_env_file(text, path)}
        for path, text in texts.items()
        if text is not None
    }
    unknown = [
        p for p, names in defined_in.items() if p not in KNOWN_ENV_FILES and names & set(used)
    ]
    if unknown:
        raise KubeletConfigError(
            unknown[0],
            "EnvironmentFile",
            f"the kubelet takes variables from {', '.join(unknown)}, which is not a known layout "
            f"(ExecStart uses {', '.join('$' + v for v in used) or 'no variables'})",
            _UNKNOWN_REMEDY,
        )

    layout = KubeletLayout(_layout_name(unit, texts), unit, texts)
    layout.sites = _sites(unit, texts, used)
    layout.add_to = _add_target(layout, used)
    return layout


_UNKNOWN_REMEDY = (
    "Supported layouts: kubeadm (kubeadm-flags.env with /etc/default/kubelet or "
    "/etc/sysconfig/kubelet), /etc/sysconfig/kubelet or /etc/kubernetes/kubelet with KUBELET_ARGS, "
    "or flags written in ExecStart. Set the flag by hand on this node."
)


def _layout_name(unit: ServiceUnit, texts: Mapping[str, str | None]) -> str:
    if KUBEADM_FLAGS_ENV in texts:
        return "kubeadm"
    if any(path in texts for path in SYSCONFIG_FILES + EXTRA_ARGS_FILES):
        return "sysconfig"
    return "inline"


def _sites(unit: ServiceUnit, texts: Mapping[str, str | None], used: list[str]) -> list[FlagSite]:
    """Flag values in ExecStart order: unit Environment= and env files per variable, then inline."""
    sites: list[FlagSite] = []
    for path, text in texts.items():
        if text is None:
            continue
        for assignment in parse_env_file(text, path):
            if assignment.name in used:
                values = tuple(flag_values(assignment.value, FLAG))
                if values:
                    sites.append(FlagSite(path, assignment.name, values))
    for name, value in unit.environment.items():
        if name in used and flag_values(value, FLAG):
            sites.append(
                FlagSite(_environment_file(unit, name), name, tuple(flag_values(value, FLAG)))
            )
    inline = flag_values(unit.exec_start or "", FLAG)
    if inline:
        sites.append(FlagSite(unit.exec_start_file or unit.files[0].path, None, tuple(inline)))
    return sites


def _environment_file(unit: ServiceUnit, name: str) -> str:
    """The unit file whose Environment= line sets `name` (the last one shown)."""
    found = unit.files[0].path
    for unit_file in unit.files:
        for line in unit_file.text.splitlines():
            if line.strip().startswith("Environment=") and f"{name}=" in line:
                found = unit_file.path
    return found


def _add_target(layout: KubeletLayout, used: list[str]) -> tuple[str, str | None]:
    """Where a missing flag is added: kubeadm's own flags file first (kubeadm strips the flag from
    it when upgrading to 1.35), then the extra-args file, else ExecStart itself."""
    candidates = [KUBEADM_FLAGS_ENV, *SYSCONFIG_FILES, *EXTRA_ARGS_FILES]
    for variable in FLAG_VARIABLES:
        if variable not in used:
            continue
        for path in candidates:
            if path not in layout.env_files:
                continue
            text = layout.env_files[path]
            names = {a.name for a in parse_env_file(text, path)} if text is not None else set()
            if variable in names:
                return (path, variable)
    for variable in FLAG_VARIABLES:
        if variable in used:
            for path in candidates:
                if path in layout.env_files:
                    return (path, variable)
    return (layout.unit.exec_start_file or layout.unit.files[0].path, None)


def edit_env_flag(text: str | None, path: str, variable: str, value: str | None) -> str:
    """`text` of an env file with the flag in `variable` set to `value`, or removed when None.

    Keeps quotes, other flags, comments and other lines. Adds the flag (or the assignment, or the
    file) when it is missing and a value is given.
    """
    text = text or ""
    assignments = [a for a in parse_env_file(text, path) if a.name == variable]
    lines = text.splitlines(keepends=True)
    if not assignments:
        if value is None:
            return text
        separator = "" if not text or text.endswith("\n") else "\n"
        return f'{text}{separator}{variable}="{FLAG}={value}"\n'
    for index, assignment in enumerate(assignments):
        line = lines[assignment.line - 1]
        old = assignment.value
        if value is None:
            new = remove_flag(old, FLAG)
        elif flag_values(old, FLAG):
            new = set_flag(old, FLAG, value)
        elif index == len(assignments) - 1:
            new = append_flag(old, FLAG, value)
        else:
            new = old
        if new != old and not assignment.quote and " " in new:
            new = f'"{new}"'
        lines[assignment.line - 1] = (
            line[: assignment.value_start] + new + line[assignment.value_end :]
        )
    return "".join(lines)


def edit_unit_flag(text: str, value: str | None) -> str:
    """A unit file's text with the flag in ExecStart= and Environment= lines set or removed.

    Comment lines are left as they are; a continuation line left holding only `\\` is dropped.
    """
    out: list[str] = []
    in_command = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        starts = stripped.startswith(("ExecStart=", "Environment="))
        if (starts or in_command) and not stripped.startswith(("#", ";")):
            edited = remove_flag(line, FLAG) if value is None else set_flag(line, FLAG, value)
            in_command = edited.rstrip().endswith("\\")
            if edited.strip() == "\\" and line.strip() != "\\":
                continue
            out.append(edited)
            continue
        in_command = False
        out.append(line)
    return "".join(out)


def plan_kubelet_flag(
    kubelet_version: Version,
    runtime: str,
    sandbox_image: str,
    systemctl_cat: str,
    env_files: Mapping[str, str | None],
) -> KubeletFlagPlan:
    """Decide and prepare the change to `--pod-infra-container-image` for one node.

    `runtime` is `containerd`, `docker` (dockershim below 1.24, cri-dockerd from 1.24) or `cri-o`;
    `sandbox_image` is the runtime's sandbox reference (the private copy of pause).
    Returns the new text of each file that changes; files that stay the same are not listed.
    """
    layout = locate_kubelet_flags(systemctl_cat, env_files)
    action = kubelet_flag_action(kubelet_version)
    plan = KubeletFlagPlan(action, layout)
    where = ", ".join(sorted({s.path for s in layout.sites})) or "nowhere"

    if action is FlagAction.LEAVE:
        if layout.sites:
            plan.findings.append(
                Finding(
                    Severity.WARNING,
                    layout.sites[0].path,
                    FLAG,
                    f"kubelet {kubelet_version} ignores the flag (set in {where}); the runtime "
                    "must pin the sandbox image instead. Remove the flag before upgrading to "
                    "1.35, which refuses to start with it",
                )
            )
        return plan

    value = sandbox_image if action is FlagAction.SET else None
    targets: dict[str, str | None] = {s.path: s.variable for s in layout.sites}
    if action is FlagAction.SET and not layout.sites:
        path, variable = layout.add_to
        targets[path] = variable
    for site in layout.sites:
        if action is FlagAction.SET and set(site.values) == {sandbox_image}:
            targets.pop(site.path, None)

    unit_paths = {f.path for f in layout.unit.files}
    for path in targets:
        if path in unit_paths:
            new = edit_unit_flag(layout.unit.file_text(path), value)
        else:
            new = layout.env_files.get(path) or ""
            variables = {s.variable for s in layout.sites if s.path == path} or {targets[path]}
            for variable in sorted(v for v in variables if v is not None):
                new = edit_env_flag(new, path, variable, value)
        old = layout.env_files.get(path) if path not in unit_paths else layout.unit.file_text(path)
        if new != (old or ""):
            plan.files[path] = new
            plan.changes.append(_change_text(action, kubelet_version, runtime, path, value))

    if action is FlagAction.SET and runtime == "docker" and kubelet_version >= Version(1, 24):
        plan.findings.append(
            Finding(
                Severity.INFO,
                layout.add_to[0],
                FLAG,
                "with cri-dockerd the kubelet flag only keeps the image from GC; cri-dockerd's "
                f"own {FLAG} flag picks the sandbox image",
            )
        )
    return plan


def _change_text(
    action: FlagAction, kubelet: Version, runtime: str, path: str, value: str | None
) -> str:
    if action is FlagAction.REMOVE:
        return f"{path}: removed {FLAG}: kubelet {kubelet} refuses to start with it"
    if runtime == "docker" and kubelet < Version(1, 24):
        why = "with dockershim it picks the sandbox image"
    else:
        why = "it keeps the runtime's sandbox image from the kubelet's image GC"
    return f"{path}: set {FLAG}={value}: on kubelet {kubelet} {why}"
