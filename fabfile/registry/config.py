"""The distribution registry's `config.yml`: which path an image reads, patching, validation.

`registry:2` (2.x) reads `/etc/docker/registry/config.yml`; `registry:3` (3.x, and `latest`)
reads `/etc/distribution/config.yml`. A file mounted at the other path is silently not read, so
the path is worked out from the container's command line when known, else from the tag.

Edits go through ruamel.yaml's round-trip mode, which keeps comments and key order. Values are
typed by YAML rules (`true` is a boolean, `5` an integer, `:5000` a string). Validation catches
what makes the registry crash-loop or ignore a setting: syntax errors (with line and column),
tabs, a missing or wrong `version`, unknown keys (with the nearest known ones) and values of the
wrong type. Environment variables `REGISTRY_<PATH>` on the container override the file; the
effective-config helpers take them into account.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from fabfile.core.inventory import plain
from fabfile.runtimes.findings import Finding, RuntimeConfigError, Severity

V2_PATH = "/etc/docker/registry/config.yml"
V3_PATH = "/etc/distribution/config.yml"


class RegistryConfigError(RuntimeConfigError):
    """The registry's config.yml cannot be located, parsed, patched or validated."""


# --- which file the image reads ------------------------------------------------------------


def _tag_of(image: str) -> str | None:
    """The tag of an image reference (None when it has only a digest)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.split(":", 1)[1]
    return None if "@" in image else "latest"


def config_path_for_image(image: str, command: Sequence[str] | None = None) -> str:
    """The config path a registry container reads.

    `command` is the container's arguments after the entrypoint (`docker inspect` `.Args`, or
    `.Config.Cmd`); a `.yml`/`.yaml` argument there wins. Otherwise the tag decides: 2 and 2.x
    mean the v2 path; 3, 3.x and `latest` the v3 path.
    """
    for argument in command or ():
        if argument.endswith((".yml", ".yaml")):
            return argument
    tag = _tag_of(image)
    if tag == "latest" or (tag and re.match(r"^3(\.|$|-)", tag)):
        return V3_PATH
    if tag and re.match(r"^2(\.|$|-)", tag):
        return V2_PATH
    raise RegistryConfigError(
        image,
        "image",
        f"cannot tell from the tag {tag!r} which config path the image reads",
        "Pass the container's command (docker inspect .Args) or use a registry:2 or registry:3 "
        "tag.",
    )


# --- parsing and patching ------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def load(text: str, path: str) -> Any:
    """Parse YAML round-trip; a syntax error becomes RegistryConfigError with line and column."""
    _reject_tabs(text, path)
    try:
        return _yaml().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else 0
        raise RegistryConfigError(
            path,
            "(file)",
            f"not valid YAML at column {column}: {error.problem}",
            "Fix the syntax; the registry refuses to start with this file.",
            line,
        ) from None
    except YAMLError as error:
        raise RegistryConfigError(
            path, "(file)", f"not valid YAML: {error}", "Fix the syntax."
        ) from None


def _tab_findings(text: str, path: str) -> list[Finding]:
    """One error per line indented with a tab (the registry fails with "found character that
    cannot start any token")."""
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            key = line.strip().split(":", 1)[0] or "(indentation)"
            findings.append(
                Finding(
                    Severity.ERROR,
                    path,
                    key,
                    "the line is indented with a tab, which YAML does not allow; indent with "
                    "spaces only",
                    number,
                )
            )
    return findings


def _reject_tabs(text: str, path: str) -> None:
    for finding in _tab_findings(text, path)[:1]:
        raise RegistryConfigError(finding.path, finding.key, finding.message, "", finding.line)


def _missing_version(path: str) -> Finding:
    return Finding(
        Severity.ERROR,
        path,
        "version",
        'missing; the registry stops with `unsupported version: ""`. Add version: 0.1',
    )


def dump(data: Any) -> str:
    stream = io.StringIO()
    _yaml().dump(data, stream)
    return stream.getvalue()


def parse_value(text: str) -> Any:
    """A command-line value typed by YAML rules: `true`, `5`, `[a, b]`, `{k: v}`, strings."""
    if text == "":
        return ""
    try:
        value = YAML(typ="safe").load(text)
    except YAMLError:
        return text
    return text if value is None and text not in ("null", "~") else value


def parse_assignments(items: Iterable[str], path: str = "command line") -> dict[str, Any]:
    """`KEY=VALUE` strings into a dict of dotted key to typed value."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RegistryConfigError(
                path, item, "not KEY=VALUE", "Write, for example, storage.delete.enabled=true."
            )
        result[key.strip()] = parse_value(value.strip())
    return result


@dataclass
class PatchResult:
    """`patch_config`'s answer: the new text, each change as (key, old, new), and findings."""

    text: str
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


_MISSING = object()


def patch_config(text: str, assignments: Mapping[str, Any], path: str) -> PatchResult:
    """Set dotted keys (`storage.delete.enabled`) to values, keeping comments and order.

    Missing sections are created. The result is validated; an error-level finding is raised as
    RegistryConfigError naming the key, so a patch that would break the registry is never
    returned.
    """
    data = load(text, path) if text.strip() else CommentedMap()
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise RegistryConfigError(
            path,
            "(file)",
            "the top level is not a mapping",
            "Start from a config with version: 0.1.",
        )
    changes: list[tuple[str, Any, Any]] = []
    for dotted, value in assignments.items():
        parts = dotted.split(".")
        node: Any = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part, _MISSING)
            if child is _MISSING or child is None:
                child = CommentedMap()
                node[part] = child
            elif not isinstance(child, dict):
                raise RegistryConfigError(
                    path,
                    ".".join(parts[: depth + 1]),
                    f"holds the value {child!r}, so {dotted} cannot be set under it",
                    "Patch the parent key itself, or fix the file.",
                )
            node = child
        old = node.get(parts[-1], _MISSING)
        if old is not _MISSING and old == value and type(old) is type(value):
            continue
        node[parts[-1]] = value
        changes.append((dotted, None if old is _MISSING else old, value))
    new_text = dump(data) if changes else text
    findings = validate_config(new_text, path)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        first = errors[0]
        raise RegistryConfigError(
            path, first.key, first.message, "The file was not changed.", first.line
        )
    return PatchResult(new_text, changes, findings)


# --- the schema of known keys ---------------------------------------------------------------

_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
ANY = "any"  # any value, not checked further
MAP = "map"  # a mapping whose keys are free (headers, driver parameters)
LIST = "list"

_TLS = {
    "certificate": str,
    "key": str,
    "clientcas": LIST,
    "clientauth": str,
    "minimumtls": str,
    "ciphersuites": LIST,
    "letsencrypt": {"cachefile": str, "email": str, "hosts": LIST, "directoryurl": str},
}

SCHEMA: dict[str, Any] = {
    "version": ANY,
    "log": {
        "accesslog": {"disabled": bool},
        "level": str,
        "formatter": str,
        "fields": MAP,
        "hooks": LIST,
        "reportcaller": bool,
    },
    "loglevel": str,
    "storage": {
        "filesystem": {"rootdirectory": str, "maxthreads": int},
        "inmemory": ANY,
        "s3": MAP,
        "azure": MAP,
        "gcs": MAP,
        "swift": MAP,
        "oss": MAP,
        "delete": {"enabled": bool},
        "maintenance": {
            "uploadpurging": {
                "enabled": bool,
                "age": "duration",
                "interval": "duration",
                "dryrun": bool,
            },
            "readonly": {"enabled": bool},
        },
        "redirect": {"disable": bool},
        "cache": {"blobdescriptor": str, "blobdescriptorsize": int},
        "tag": {"concurrencylimit": int},
    },
    "auth": {
        "htpasswd": {"realm": str, "path": str},
        "token": {
            "realm": str,
            "service": str,
            "issuer": str,
            "rootcertbundle": str,
            "autoredirect": bool,
            "autoredirectpath": str,
            "jwks": str,
            "signingalgorithms": LIST,
        },
        "silly": {"realm": str, "service": str},
    },
    "middleware": MAP,
    "http": {
        "addr": str,
        "net": str,
        "host": str,
        "prefix": str,
        "secret": str,
        "relativeurls": bool,
        "draintimeout": "duration",
        "tls": _TLS,
        "debug": {"addr": str, "prometheus": {"enabled": bool, "path": str}},
        "headers": MAP,
        "http2": {"disabled": bool},
        "h2c": {"enabled": bool},
    },
    "notifications": {"events": {"includereferences": bool}, "endpoints": LIST},
    "redis": MAP,
    "health": {
        "storagedriver": {"enabled": bool, "interval": "duration", "threshold": int},
        "file": LIST,
        "http": LIST,
        "tcp": LIST,
    },
    "proxy": {"remoteurl": str, "username": str, "password": str, "ttl": "duration", "exec": MAP},
    "catalog": {"maxentries": int},
    "validation": {
        "enabled": bool,
        "disabled": bool,
        "manifests": {"urls": {"allow": LIST, "deny": LIST}, "indexes": MAP},
    },
    "compatibility": {"schema1": {"signingkeyfile": str, "enabled": bool}},
    "reporting": MAP,
    "policy": {"repository": {"classes": LIST}},
}

STORAGE_DRIVERS = ("filesystem", "inmemory", "s3", "azure", "gcs", "swift", "oss")


def _type_name(expected: Any) -> str:
    if isinstance(expected, dict):
        return "a mapping"
    if expected is MAP:
        return "a mapping"
    if expected is LIST:
        return "a list"
    if expected == "duration":
        return "a duration such as 10s or 24h"
    return {str: "a string", bool: "true or false", int: "an integer"}.get(expected, str(expected))


def _type_ok(value: Any, expected: Any) -> bool:
    if expected is ANY or value is None:
        return True
    if isinstance(expected, dict) or expected is MAP:
        return isinstance(value, dict)
    if expected is LIST:
        return isinstance(value, list)
    if expected == "duration":
        return (isinstance(value, int) and not isinstance(value, bool)) or bool(
            isinstance(value, str) and _DURATION.match(value)
        )
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    return isinstance(value, expected)


def _line_of(node: Any, key: str) -> int | None:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return None


def _walk(
    node: Any, schema: dict[str, Any], prefix: str, path: str, findings: list[Finding]
) -> None:
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        line = _line_of(node, key)
        if key not in schema:
            near = difflib.get_close_matches(str(key), list(schema), n=3, cutoff=0.5)
            hint = (
                f"did you mean {', '.join(prefix + n for n in near)}?"
                if near
                else (f"known keys here: {', '.join(prefix + n for n in schema)}")
            )
            findings.append(
                Finding(Severity.ERROR, path, dotted, f"not a key the registry knows; {hint}", line)
            )
            continue
        expected = schema[key]
        if not _type_ok(value, expected):
            findings.append(
                Finding(
                    Severity.ERROR,
                    path,
                    dotted,
                    f"should be {_type_name(expected)}, found {value!r}",
                    line,
                )
            )
        elif isinstance(expected, dict) and isinstance(value, dict):
            _walk(value, expected, dotted + ".", path, findings)


def validate_config(text: str, path: str) -> list[Finding]:
    """Every problem of a config.yml as findings; a syntax error is raised instead.

    Errors: lines indented with tabs (then the file is not parsed further), not a mapping,
    `version` missing or not 0.1, unknown keys (with suggestions), wrong value types, no storage
    driver or more than one.
    """
    tabs = _tab_findings(text, path)
    if tabs:
        if not re.search(r"^version\s*:", text, re.MULTILINE):
            tabs.append(_missing_version(path))
        return tabs
    data = load(text, path)
    if not isinstance(data, dict):
        raise RegistryConfigError(
            path,
            "(file)",
            "the top level is not a mapping",
            "Start from a config with version: 0.1.",
        )
    findings: list[Finding] = []
    version = data.get("version")
    if version is None:
        findings.append(_missing_version(path))
    elif str(version) != "0.1":
        findings.append(
            Finding(
                Severity.ERROR,
                path,
                "version",
                f"is {version!r}; the registry only reads version 0.1",
                _line_of(data, "version"),
            )
        )
    _walk(data, SCHEMA, "", path, findings)
    storage = data.get("storage")
    if isinstance(storage, dict):
        drivers = [d for d in STORAGE_DRIVERS if d in storage]
        if len(drivers) != 1:
            findings.append(
                Finding(
                    Severity.ERROR,
                    path,
                    "storage",
                    f"needs exactly one storage driver, found {', '.join(drivers) or 'none'}",
                    _line_of(data, "storage"),
                )
            )
    elif storage is None:
        findings.append(
            Finding(
                Severity.ERROR, path, "storage", "missing; add storage.filesystem.rootdirectory"
            )
        )
    return findings


# --- the effective configuration ------------------------------------------------------------


def apply_environment(
    data: Mapping[str, Any], env: Iterable[str] | Mapping[str, str]
) -> dict[str, Any]:
    """The configuration the registry runs with: the file overridden by `REGISTRY_*` variables.

    Like the registry, variables are applied in sorted order, `_` separates levels, names match
    keys case-insensitively, and each value is parsed as YAML. `version` cannot be overridden.
    """
    pairs = env.items() if isinstance(env, Mapping) else (e.partition("=")[::2] for e in env)
    result: dict[str, Any] = plain(data)
    for name, value in sorted(pairs):
        if not name.startswith("REGISTRY_") or name == "REGISTRY_VERSION":
            continue
        parts = [p.lower() for p in name.split("_")[1:]]
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = parse_value(value)
    return result


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


@dataclass(frozen=True)
class EffectiveSettings:
    """What a running registry does, from the file and the container's environment."""

    delete_enabled: bool
    proxy_mode: bool
    read_only: bool
    proxy_remote: str | None

    @property
    def can_delete(self) -> bool:
        """A pull-through cache refuses every manifest delete whatever the storage setting."""
        return self.delete_enabled and not self.proxy_mode

    def delete_refusal(self) -> str | None:
        """Why a DELETE gets 405 UNSUPPORTED, or None when deletes are allowed."""
        if self.proxy_mode:
            return f"the registry is a pull-through cache of {self.proxy_remote}"
        if not self.delete_enabled:
            return "deletion is disabled (storage.delete.enabled is not true)"
        return None


def effective_settings(
    text: str, path: str, env: Iterable[str] | Mapping[str, str] = ()
) -> EffectiveSettings:
    """Deletion, proxy mode and read-only mode as the registry will apply them."""
    data = apply_environment(load(text, path) or {}, env)
    remote = _get(data, "proxy.remoteurl")
    return EffectiveSettings(
        delete_enabled=_get(data, "storage.delete.enabled") is True,
        proxy_mode=bool(remote),
        read_only=_get(data, "storage.maintenance.readonly.enabled") is True,
        proxy_remote=str(remote) if remote else None,
    )
