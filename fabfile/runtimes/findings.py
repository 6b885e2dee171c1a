"""Findings and errors shared by the runtime configuration editors.

The editors in this package never touch a host: they take file texts and facts, and return new
texts with a list of findings. A finding is something the operator should read (a warning, or a
note about what was changed and why). Anything that makes a correct result impossible is raised as
a `RuntimeConfigError` subclass instead, whose message names the file, the key, the line when the
parser knows it, and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fabfile.core.errors import ToolkitError


class Severity(StrEnum):
    """How much a finding matters: an error blocks the change, a warning does not."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One observation about one key of one file."""

    severity: Severity
    path: str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{self.severity.value}: {where}: {self.key}: {self.message}"


class RuntimeConfigError(ToolkitError):
    """A configuration file cannot be read or changed safely.

    `path` and `key` say where; `remedy` says what the operator should do.
    """

    def __init__(
        self, path: str, key: str, problem: str, remedy: str, line: int | None = None
    ) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        self.remedy = remedy
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        end = "" if problem.endswith((".", "?")) else "."
        text = f"{where}: {key}: {problem}{end}"
        super().__init__(f"{text} {remedy}" if remedy else text)

    @classmethod
    def from_finding(cls, finding: Finding, remedy: str = "") -> RuntimeConfigError:
        """Turn an error finding into the exception that blocks the change."""
        return cls(finding.path, finding.key, finding.message, remedy, finding.line)


class ConfigParseError(RuntimeConfigError):
    """The file is not valid TOML, JSON, YAML or env-file syntax."""


class ContainerdConfigError(RuntimeConfigError):
    """containerd's config.toml or a hosts.toml cannot be written correctly."""


class DockerConfigError(RuntimeConfigError):
    """daemon.json or dockerd's flags conflict or cannot be merged."""


class KubeletConfigError(RuntimeConfigError):
    """The kubelet's flags cannot be located or edited."""


class UnsupportedVersionError(RuntimeConfigError):
    """A version outside the facts this toolkit encodes."""


def raise_first_error(findings: list[Finding], error: type[RuntimeConfigError]) -> None:
    """Raise `error` for the first error-level finding, naming how many others there are."""
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if not errors:
        return
    first = errors[0]
    more = f" ({len(errors) - 1} more error(s) in the same check)" if len(errors) > 1 else ""
    raise error(first.path, first.key, first.message.rstrip(".") + more, "", first.line)
