"""containerd's config.toml: the sandbox image and the registry `config_path`, per schema.

Where the two settings live depends on the file's `version =` header (a non-empty file without
one is version 1):

| schema | sandbox image | registry hosts directory |
|---|---|---|
| 1 | `[plugins.cri] sandbox_image` | `[plugins.cri.registry] config_path` |
| 2 | `[plugins."io.containerd.grpc.v1.cri"] sandbox_image` | `[<same>.registry] config_path` |
| 3, 4 | `[plugins.'io.containerd.cri.v1.images'.pinned_images] sandbox` | `[<images>.registry]` |

(`<images>` is `plugins.'io.containerd.cri.v1.images'`; its `registry` table holds `config_path`.)

A value written under another schema's table is silently ignored by containerd, which is the most
common reason a private pause image "does not take". The editor writes the right table, keeps
every other line of the file (comments, order, other settings) and reports what it found.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import InlineTable, Table

from fabfile.runtimes.findings import (
    ConfigParseError,
    ContainerdConfigError,
    Finding,
    Severity,
    raise_first_error,
)
from fabfile.runtimes.versions import (
    Version,
    containerd_default_sandbox,
    containerd_default_schema,
    containerd_has_legacy_registry_tables,
    containerd_readable_schemas,
    containerd_refuses_tag_and_digest,
)

CONFIG_PATH = "/etc/containerd/config.toml"
CERTS_D = "/etc/containerd/certs.d"

_V1 = ("plugins", "cri")
_V2 = ("plugins", "io.containerd.grpc.v1.cri")
_IMAGES = ("plugins", "io.containerd.cri.v1.images")


@dataclass(frozen=True)
class SchemaKeys:
    """Where one schema keeps the two settings, and how to write their table headers."""

    sandbox_table: tuple[str, ...]
    sandbox_key: str
    registry_table: tuple[str, ...]
    sandbox_header: str
    registry_header: str


SCHEMAS: dict[int, SchemaKeys] = {
    1: SchemaKeys(
        _V1, "sandbox_image", (*_V1, "registry"), "[plugins.cri]", "[plugins.cri.registry]"
    ),
    2: SchemaKeys(
        _V2,
        "sandbox_image",
        (*_V2, "registry"),
        '[plugins."io.containerd.grpc.v1.cri"]',
        '[plugins."io.containerd.grpc.v1.cri".registry]',
    ),
    3: SchemaKeys(
        (*_IMAGES, "pinned_images"),
        "sandbox",
        (*_IMAGES, "registry"),
        "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
        "[plugins.'io.containerd.cri.v1.images'.registry]",
    ),
}
SCHEMAS[4] = SCHEMAS[3]

# Plugin names whose presence in disabled_plugins leaves the kubelet without a CRI.
_CRI_PLUGINS = frozenset(
    {
        "cri",
        "io.containerd.grpc.v1.cri",
        "io.containerd.cri.v1.images",
        "io.containerd.cri.v1.runtime",
    }
)


@dataclass(frozen=True)
class ContainerdSettings:
    """What a config.toml sets (None when the file leaves the key at containerd's default)."""

    schema: int | None
    sandbox_image: str | None
    config_path: str | None
    imports: tuple[str, ...] = ()


@dataclass
class ContainerdInspection:
    """`inspect_config`'s answer: the settings the file yields, and what is wrong with it."""

    settings: ContainerdSettings
    effective_sandbox_image: str
    findings: list[Finding] = field(default_factory=list)


@dataclass
class ContainerdEdit:
    """`update_config`'s answer: the new text, what changed and why, and the findings."""

    text: str
    before: ContainerdSettings
    after: ContainerdSettings
    changes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """config.toml changes need a containerd restart (hosts.toml changes do not)."""
        return bool(self.changes)


def _parse(text: str, path: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except ParseError as error:
        raise ConfigParseError(
            path,
            "(file)",
            f"not valid TOML at column {error.col}: {error}",
            "Fix the syntax; containerd refuses to start with this file.",
            error.line,
        ) from None


def _get(node: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _dotted(keys: tuple[str, ...]) -> str:
    """A key path as TOML writes it: parts holding a dot are quoted."""
    return ".".join(f'"{k}"' if "." in k else k for k in keys)


def _is_empty(document: tomlkit.TOMLDocument) -> bool:
    return len(document) == 0


def detect_schema(text: str | None, path: str = CONFIG_PATH) -> int | None:
    """The file's config schema: its `version =`, 1 for a non-empty file without it, None when
    the file is missing or holds no settings."""
    if text is None:
        return None
    document = _parse(text, path)
    if _is_empty(document):
        return None
    version = document.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version not in SCHEMAS:
        raise ContainerdConfigError(
            path,
            "version",
            f"unknown config version {version!r}",
            "Use version = 2 for containerd 1.x, 3 for 2.0-2.2 or 4 for 2.3 and later.",
        )
    return int(version)


def read_settings(text: str | None, path: str = CONFIG_PATH) -> ContainerdSettings:
    """The sandbox image and config_path a file sets, read from its own schema's tables."""
    schema = detect_schema(text, path)
    if schema is None or text is None:
        return ContainerdSettings(None, None, None)
    document = _parse(text, path)
    keys = SCHEMAS[schema]
    sandbox = _get(document, (*keys.sandbox_table, keys.sandbox_key))
    config_path = _get(document, (*keys.registry_table, "config_path"))
    imports = document.get("imports", [])
    return ContainerdSettings(
        schema,
        str(sandbox) if sandbox is not None else None,
        str(config_path) if config_path is not None else None,
        tuple(str(i) for i in imports),
    )


def is_tag_and_digest(reference: str) -> bool:
    """`name:tag@sha256:...`: a tag and a digest together."""
    name, at, _ = reference.partition("@")
    return bool(at) and ":" in name.rsplit("/", 1)[-1]


def _check(
    document: tomlkit.TOMLDocument,
    settings: ContainerdSettings,
    version: Version,
    path: str,
) -> list[Finding]:
    """Everything wrong with a parsed file for this containerd version."""
    findings: list[Finding] = []
    schema = settings.schema
    if schema is None:
        return findings
    if schema not in containerd_readable_schemas(version):
        readable = " and ".join(str(s) for s in sorted(containerd_readable_schemas(version)))
        remedy = (
            "Run `containerd config migrate` to convert it"
            if schema < min(containerd_readable_schemas(version))
            else f"Write the file in schema {containerd_default_schema(version)}"
        )
        findings.append(
            Finding(
                Severity.ERROR,
                path,
                "version",
                f"containerd {version} reads config versions {readable}, not {schema}. {remedy}",
            )
        )
    if schema == 1:
        findings.append(
            Finding(
                Severity.WARNING,
                path,
                "version",
                "config version 1 is deprecated and containerd 2 does not read it; "
                "`containerd config migrate` converts it",
            )
        )
    keys = SCHEMAS[schema]
    others = {k.sandbox_table[:2]: (n, k) for n, k in SCHEMAS.items() if k != keys}
    for other, other_keys in others.values():
        for table, key in (
            (other_keys.sandbox_table, other_keys.sandbox_key),
            (other_keys.registry_table, "config_path"),
        ):
            if _get(document, (*table, key)) is None:
                continue
            right = _dotted((*_table_for(keys, key), _key_for(keys, key)))
            if schema == 2 and other >= 3 and version.major >= 2:
                why = (
                    f"containerd {version} migrates this version 2 file at start-up and may let "
                    f"this table override {right}; keep one of the two"
                )
            else:
                why = (
                    f"this is a version {other} table; containerd ignores it in a version "
                    f"{schema} file, where the key is {right}"
                )
            findings.append(Finding(Severity.WARNING, path, _dotted((*table, key)), why))

    registry = _get(document, keys.registry_table)
    legacy = [name for name in ("mirrors", "configs", "auths") if _get(registry, (name,))]
    if legacy and not containerd_has_legacy_registry_tables(version):
        findings.append(
            Finding(
                Severity.ERROR,
                path,
                _dotted((*keys.registry_table, legacy[0])),
                f"containerd {version} no longer has registry.{'/'.join(legacy)}. Move those "
                f"hosts to {CERTS_D}/<host:port>/hosts.toml and remove the tables",
            )
        )
    elif legacy and settings.config_path:
        findings.append(
            Finding(
                Severity.ERROR,
                path,
                _dotted((*keys.registry_table, legacy[0])),
                f"registry.{'/'.join(legacy)} is set together with config_path, and containerd "
                f"refuses to start with both. Move those hosts to {CERTS_D}/<host:port>/hosts.toml "
                "and remove the tables",
            )
        )

    disabled = [str(p) for p in document.get("disabled_plugins", [])]
    for name in disabled:
        if name in _CRI_PLUGINS:
            findings.append(
                Finding(
                    Severity.WARNING,
                    path,
                    "disabled_plugins",
                    f'"{name}" is disabled, so the kubelet cannot use containerd',
                )
            )
    image = settings.sandbox_image
    if image and containerd_refuses_tag_and_digest(version) and is_tag_and_digest(image):
        findings.append(_tag_digest_finding(path, keys, version, image))
    for entry in settings.imports:
        findings.append(
            Finding(
                Severity.INFO,
                path,
                "imports",
                f"imports {entry}; a file there may override these settings. "
                "`containerd config dump` shows the values that win",
            )
        )
    return findings


def _table_for(keys: SchemaKeys, key: str) -> tuple[str, ...]:
    return keys.registry_table if key == "config_path" else keys.sandbox_table


def _key_for(keys: SchemaKeys, key: str) -> str:
    return "config_path" if key == "config_path" else keys.sandbox_key


def _tag_digest_finding(path: str, keys: SchemaKeys, version: Version, image: str) -> Finding:
    return Finding(
        Severity.ERROR,
        path,
        _dotted((*keys.sandbox_table, keys.sandbox_key)),
        f"{image} names a tag and a digest; containerd {version} fails every pod sandbox with "
        "such a reference. Use the tag alone or the digest alone",
    )


def inspect_config(
    text: str | None, version: Version, path: str = CONFIG_PATH
) -> ContainerdInspection:
    """Read a config.toml for the report: its settings, the sandbox image containerd will use,
    and every problem found, as findings (nothing is raised for problems, only for syntax)."""
    settings = read_settings(text, path)
    findings = _check(_parse(text or "", path), settings, version, path)
    effective = settings.sandbox_image or containerd_default_sandbox(version)
    return ContainerdInspection(settings, effective, findings)


def minimal_config(version: Version, sandbox_image: str | None, config_path: str | None) -> str:
    """A new config.toml holding only the two settings, in the schema this containerd writes."""
    schema = containerd_default_schema(version)
    keys = SCHEMAS[schema]
    parts = [f"version = {schema}\n"]
    if sandbox_image is not None:
        parts.append(
            f"\n{keys.sandbox_header}\n  {keys.sandbox_key} = {_toml_string(sandbox_image)}\n"
        )
    if config_path is not None:
        parts.append(f"\n{keys.registry_header}\n  config_path = {_toml_string(config_path)}\n")
    return "".join(parts)


def _toml_string(value: str) -> str:
    return tomlkit.item(value).as_string()


def update_config(
    text: str | None,
    version: Version,
    sandbox_image: str | None,
    config_path: str | None = CERTS_D,
    path: str = CONFIG_PATH,
) -> ContainerdEdit:
    """Set the sandbox image and the registry hosts directory in a config.toml.

    `text` is the current file (None when missing); a None setting is left as it is. The keys are
    written in the tables of the file's own schema; a missing or empty file becomes a minimal file
    in the schema this containerd writes. `"cri"` is taken out of `disabled_plugins`.
    Raises `ContainerdConfigError` (or `ConfigParseError`) when the result could not work.
    """
    before = read_settings(text, path)
    if (
        sandbox_image
        and containerd_refuses_tag_and_digest(version)
        and is_tag_and_digest(sandbox_image)
    ):
        keys = SCHEMAS[before.schema or containerd_default_schema(version)]
        raise ContainerdConfigError.from_finding(
            _tag_digest_finding(path, keys, version, sandbox_image)
        )

    if before.schema is None:
        new_text = (text or "") + ("\n" if text and not text.endswith("\n") else "")
        new_text += minimal_config(version, sandbox_image, config_path)
        after = read_settings(new_text, path)
        new_findings = _check(_parse(new_text, path), after, version, path)
        raise_first_error(new_findings, ContainerdConfigError)
        what = "missing" if text is None else "empty"
        return ContainerdEdit(
            new_text,
            before,
            after,
            [f"{path}: the file was {what}; wrote schema {after.schema} with the settings"],
            new_findings,
        )

    document = _parse(text or "", path)
    keys = SCHEMAS[before.schema]
    changes: list[str] = []
    appended: list[str] = []
    for table, key, value in (
        (keys.sandbox_table, keys.sandbox_key, sandbox_image),
        (keys.registry_table, "config_path", config_path),
    ):
        if value is None:
            continue
        container = _get(document, table)
        dotted = _dotted((*table, key))
        # A table split in two places of the file (as after a sub-table appended at the end)
        # comes back from tomlkit as a mapping proxy rather than a Table; both take keys.
        if isinstance(container, MutableMapping):
            if container.get(key) == value:
                continue
            old = container.get(key)
            item = tomlkit.item(value)
            if key not in container:
                item.trivia.indent = _indent_of(container)
            container[key] = item
            changes.append(f"{path}: {dotted}: {old!r} -> {value!r}")
        elif container is None:
            header = keys.sandbox_header if table == keys.sandbox_table else keys.registry_header
            appended.append(f"\n{header}\n  {key} = {_toml_string(value)}\n")
            changes.append(f"{path}: {dotted}: added {value!r}")
        else:
            raise ContainerdConfigError(
                path,
                _dotted(table),
                f"expected a table, found a {type(container).__name__}",
                "Fix the file by hand so that this name is a table.",
            )

    findings: list[Finding] = []
    disabled = document.get("disabled_plugins")
    if disabled is not None and any(str(p) in _CRI_PLUGINS for p in disabled):
        removed = [str(p) for p in disabled if str(p) in _CRI_PLUGINS]
        for name in removed:
            disabled.remove(name)
        changes.append(f"{path}: disabled_plugins: removed {', '.join(removed)}")
        findings.append(
            Finding(
                Severity.WARNING,
                path,
                "disabled_plugins",
                f"{', '.join(removed)} was disabled, which leaves the kubelet without a CRI; "
                "removed it",
            )
        )

    new_text = tomlkit.dumps(document)
    if appended:
        new_text = new_text + ("" if new_text.endswith("\n") else "\n") + "".join(appended)
    after = read_settings(new_text, path)
    for finding in _check(_parse(new_text, path), after, version, path):
        if finding.key.startswith(_dotted(_V2)) and before.schema >= 3:
            finding = Finding(
                finding.severity,
                finding.path,
                finding.key,
                finding.message + "; the setting was written to the right table",
            )
        findings.append(finding)
    raise_first_error(findings, ContainerdConfigError)
    _verify(after, sandbox_image, config_path, path)
    return ContainerdEdit(new_text, before, after, changes, findings)


def _indent_of(container: Any) -> str:
    """The indentation the table's own keys use, so an added key lines up with them."""
    if not isinstance(container, (Table, InlineTable)):
        return "  "
    for _, item in container.value.body:
        trivia = getattr(item, "trivia", None)
        if trivia is not None and not isinstance(item, Table):
            return str(trivia.indent)
    return "  "


def _verify(
    after: ContainerdSettings, sandbox: str | None, config_path: str | None, path: str
) -> None:
    """Read the written text back: the editor must yield exactly what was asked."""
    for key, wanted, got in (
        ("sandbox image", sandbox, after.sandbox_image),
        ("config_path", config_path, after.config_path),
    ):
        if wanted is not None and got != wanted:
            raise ContainerdConfigError(
                path,
                key,
                f"the edited file yields {got!r} instead of {wanted!r}",
                "Edit the file by hand; its layout defeats the editor.",
            )
