"""The inventory: hosts, groups and variables, loaded from ``hosts.yml`` and validated before use.

Two formats are read:

* the toolkit's own (``defaults``, ``vars``, ``groups``, ``hosts``; see ``hosts.example.yml``);
* a Kubespray / Ansible YAML inventory (``all.hosts``, ``all.children``, ``ansible_host`` ...),
  mapped onto the same model: ``kube_control_plane`` and ``kube_node`` hosts form ``nodes``.

Variables are merged at three levels, all < group < host; nested mappings merge key by key, and a
host in several groups takes the groups in the order the file lists them. Nothing connects until
the whole file is valid, and every error names the file, the key and the line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError

from .errors import InventoryError

CONNECTION_KEYS = (
    "address",
    "port",
    "user",
    "key_file",
    "jump",
    "known_hosts",
    "sudo_password_env",
    "sudo_password_file",
)
HOST_KEYS = (*CONNECTION_KEYS, "vars")
GROUP_KEYS = ("hosts", "vars", *[k for k in CONNECTION_KEYS if k != "address"])
TOP_KEYS = ("defaults", "vars", "groups", "hosts")
PATH_KEYS = ("key_file", "known_hosts", "sudo_password_file")

ANSIBLE_CONNECTION = {
    "ansible_host": "address",
    "ansible_port": "port",
    "ansible_user": "user",
    "ansible_ssh_private_key_file": "key_file",
}
NODE_GROUPS = ("kube_control_plane", "kube_node")


@dataclass(frozen=True)
class Host:
    """One host: how to reach it, which groups it is in, and its merged variables."""

    name: str
    address: str
    port: int | None = None
    """None: ``~/.ssh/config`` decides (else 22)."""
    user: str | None = None
    key_file: Path | None = None
    jump: str | None = None
    known_hosts: Path | None = None
    sudo_password_env: str | None = None
    sudo_password_file: Path | None = None
    groups: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)

    @property
    def login(self) -> str:
        """``user@address:port`` for messages."""
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.address}:{self.port or 22}"


@dataclass
class Inventory:
    """Hosts by name and groups by name, in file order."""

    path: Path
    hosts: dict[str, Host]
    groups: dict[str, list[str]]

    def select(
        self,
        hosts: str | None = None,
        group: str | None = None,
        default_group: str | None = None,
    ) -> list[Host]:
        """The hosts a task runs on: ``-H a,b`` and/or ``-g group``, else ``default_group``.

        With both, the hosts named that are also in the group. Unknown names are an error that
        lists the valid choices.
        """
        chosen_group = group or (None if hosts else default_group)
        if chosen_group is not None and chosen_group not in self.groups:
            raise InventoryError(
                str(self.path),
                f"group {chosen_group!r}",
                _unknown("group", chosen_group, self.groups),
            )
        selected = list(self.groups[chosen_group]) if chosen_group else list(self.hosts)
        if hosts:
            names = [n.strip() for n in hosts.split(",") if n.strip()]
            for name in names:
                if name not in self.hosts:
                    raise InventoryError(
                        str(self.path), f"host {name!r}", _unknown("host", name, self.hosts)
                    )
            selected = [n for n in names if n in selected]
        return [self.hosts[n] for n in selected]


def load(path: str | Path) -> Inventory:
    """Load and validate an inventory file; raise :class:`InventoryError` on the first problem."""
    path = Path(path)
    if not path.exists():
        raise InventoryError(str(path), "file", "not found; pass -i/--inventory PATH")
    try:
        data = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise InventoryError(str(path), "yaml", str(exc.problem), line) from None
    if not isinstance(data, CommentedMap):
        raise InventoryError(
            str(path), "top level", "expected a mapping of defaults/vars/groups/hosts"
        )
    if "all" in data and len(data) == 1:
        data = _from_ansible(path, data)
    return _Builder(path, data).build()


def _unknown(kind: str, name: str, valid: Iterable[str]) -> str:
    choices = sorted(valid)
    near = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"unknown {kind} {name!r}{hint}; valid: {', '.join(choices) or 'none'}"


def _line(mapping: Any, key: str) -> int | None:
    if isinstance(mapping, CommentedMap) and key in mapping:
        try:
            return int(mapping.lc.key(key)[0]) + 1
        except (KeyError, TypeError):
            return None
    return None


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` onto ``base``: nested mappings key by key, everything else replaced."""
    merged: dict[str, Any] = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = plain(value)
    return merged


def plain(value: Any) -> Any:
    """Turn ruamel's round-trip containers into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class _Builder:
    def __init__(self, path: Path, data: CommentedMap) -> None:
        self.path = path
        self.data = data
        self.base = path.parent

    def fail(self, key: str, message: str, where: Any = None, name: str | None = None) -> None:
        line = _line(where, name) if name is not None else None
        raise InventoryError(str(self.path), key, message, line)

    def mapping(self, value: Any, key: str, parent: Any, name: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            kind = "a list" if isinstance(value, list) else repr(value)
            self.fail(key, f"expected a mapping, got {kind}", parent, name)
        return value

    def check_keys(self, mapping: Any, allowed: Iterable[str], key: str) -> None:
        allowed = tuple(allowed)
        for name in mapping:
            if name not in allowed:
                near = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                self.fail(
                    f"{key}.{name}" if key else str(name),
                    f"unknown key{hint}; valid keys: {', '.join(allowed)}",
                    mapping,
                    name,
                )

    def build(self) -> Inventory:
        data = self.data
        self.check_keys(data, TOP_KEYS, "")
        defaults = self.mapping(data.get("defaults"), "defaults", data, "defaults")
        self.check_keys(defaults, [k for k in CONNECTION_KEYS if k != "address"], "defaults")
        all_vars = self.mapping(data.get("vars"), "vars", data, "vars")
        raw_hosts = self.mapping(data.get("hosts"), "hosts", data, "hosts")
        raw_groups = self.mapping(data.get("groups"), "groups", data, "groups")
        if not raw_hosts:
            self.fail("hosts", "no hosts defined", data, "hosts")

        groups: dict[str, list[str]] = {}
        for gname, graw in raw_groups.items():
            graw = self.mapping(graw, f"groups.{gname}", raw_groups, gname)
            self.check_keys(graw, GROUP_KEYS, f"groups.{gname}")
            self.mapping(graw.get("vars"), f"groups.{gname}.vars", graw, "vars")
            members = graw.get("hosts") or []
            if not isinstance(members, list):
                self.fail(f"groups.{gname}.hosts", "expected a list of host names", graw, "hosts")
            for member in members:
                if member not in raw_hosts:
                    self.fail(
                        f"groups.{gname}.hosts",
                        _unknown("host", str(member), raw_hosts),
                        graw,
                        "hosts",
                    )
            if len(set(members)) != len(members):
                self.fail(f"groups.{gname}.hosts", "a host is listed twice", graw, "hosts")
            groups[str(gname)] = [str(m) for m in members]

        hosts: dict[str, Host] = {}
        for hname, hraw in raw_hosts.items():
            hraw = self.mapping(hraw, f"hosts.{hname}", raw_hosts, hname)
            self.check_keys(hraw, HOST_KEYS, f"hosts.{hname}")
            self.mapping(hraw.get("vars"), f"hosts.{hname}.vars", hraw, "vars")
            in_groups = [g for g, members in groups.items() if hname in members]
            settings: dict[str, Any] = dict(defaults)
            merged_vars = deep_merge({}, all_vars)
            for gname in in_groups:
                graw = raw_groups[gname] or {}
                settings.update({k: v for k, v in graw.items() if k in CONNECTION_KEYS})
                merged_vars = deep_merge(merged_vars, graw.get("vars") or {})
            settings.update({k: v for k, v in hraw.items() if k in CONNECTION_KEYS})
            merged_vars = deep_merge(merged_vars, hraw.get("vars") or {})
            hosts[str(hname)] = self.host(
                str(hname), hraw, raw_hosts, settings, in_groups, merged_vars
            )

        for host in hosts.values():
            if host.jump is not None and host.jump not in hosts:
                self.fail(f"hosts.{host.name}.jump", _unknown("jump host", host.jump, hosts))
            if host.jump == host.name:
                self.fail(f"hosts.{host.name}.jump", "a host cannot be its own jump host")
        return Inventory(self.path, hosts, groups)

    def host(
        self,
        name: str,
        raw: Mapping[str, Any],
        parent: Any,
        settings: dict[str, Any],
        groups: list[str],
        merged_vars: dict[str, Any],
    ) -> Host:
        key = f"hosts.{name}"
        address = settings.get("address")
        if not address or not isinstance(address, str):
            self.fail(f"{key}.address", "missing: give the host's name or IP address", parent, name)
        port = settings.get("port")
        bad = isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
        if port is not None and bad:
            self.fail(f"{key}.port", f"{port!r} is not a port number (1-65535)", raw, "port")
        for text_key in ("user", "jump", "sudo_password_env"):
            value = settings.get(text_key)
            if value is not None and not isinstance(value, str):
                self.fail(f"{key}.{text_key}", "expected a string", raw, text_key)
        paths = {k: self.resolve(settings[k]) for k in PATH_KEYS if settings.get(k)}
        return Host(
            name=name,
            address=str(address),
            port=port,
            user=settings.get("user"),
            key_file=paths.get("key_file"),
            jump=settings.get("jump"),
            known_hosts=paths.get("known_hosts"),
            sudo_password_env=settings.get("sudo_password_env"),
            sudo_password_file=paths.get("sudo_password_file"),
            groups=tuple(groups),
            vars=merged_vars,
        )

    def resolve(self, value: Any) -> Path:
        path = Path(str(value)).expanduser()
        return path if path.is_absolute() else (self.base / path)


def _split_ansible(raw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ansible variables as (connection settings, other variables).

    ``ansible_host/port/user/ssh_private_key_file`` and the toolkit's own connection keys
    become connection settings; Kubespray's ``kube_version`` becomes ``kubernetes_version``;
    other ``ansible_*`` variables (passwords among them) are not carried over.
    """
    connection: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        name = str(key)
        if name in ANSIBLE_CONNECTION:
            connection[ANSIBLE_CONNECTION[name]] = value
        elif name in CONNECTION_KEYS and name != "address":
            connection[name] = value
        elif name == "kube_version":
            variables["kubernetes_version"] = str(value).lstrip("v")
        elif not name.startswith("ansible_"):
            variables[name] = plain(value)
    return connection, variables


def _from_ansible(path: Path, data: CommentedMap) -> CommentedMap:
    """Map a Kubespray/Ansible YAML inventory onto the toolkit's own format."""
    root = data["all"] or {}
    out = CommentedMap()
    hosts: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {}
    group_settings: dict[str, dict[str, Any]] = {}

    def add_host(name: str, raw: Any) -> None:
        entry = hosts.setdefault(str(name), {"vars": {}})
        connection, variables = _split_ansible(raw)
        entry.update(connection)
        entry["vars"].update(variables)

    def walk(name: str, raw: Any) -> list[str]:
        raw = raw or {}
        members: list[str] = []
        for hname, hraw in (raw.get("hosts") or {}).items():
            add_host(hname, hraw)
            members.append(str(hname))
        for cname, craw in (raw.get("children") or {}).items():
            for member in walk(str(cname), craw):
                if member not in members:
                    members.append(member)
        if name != "all":
            # A group may be defined in one place and named as a child (empty) in another.
            known = groups.setdefault(name, [])
            known.extend(m for m in members if m not in known)
            members = known
            if raw.get("vars"):
                connection, variables = _split_ansible(raw["vars"])
                group_settings[name] = {**connection, "vars": variables}
        return members

    walk("all", root)
    if "nodes" not in groups:
        nodes = [h for g in NODE_GROUPS for h in groups.get(g, [])]
        if nodes:
            groups["nodes"] = list(dict.fromkeys(nodes))
    for entry in hosts.values():
        entry.setdefault("address", None)
    for hname, entry in hosts.items():
        if entry["address"] is None:
            entry["address"] = hname
        if not entry["vars"]:
            del entry["vars"]
    defaults, variables = _split_ansible(root.get("vars"))
    if defaults:
        out["defaults"] = defaults
    out["vars"] = variables
    out["groups"] = {g: {"hosts": m, **group_settings.get(g, {})} for g, m in groups.items()}
    out["hosts"] = hosts
    return out
