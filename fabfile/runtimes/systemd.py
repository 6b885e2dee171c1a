"""Reading `systemctl cat UNIT` output and the environment files a unit loads.

`systemctl cat` prints the unit file and each drop-in, each preceded by a `# /path` line. What a
service really runs is the last `ExecStart=` after any empty `ExecStart=` reset, with `$VAR` and
`${VAR}` filled from `Environment=` and `EnvironmentFile=` (a `-` prefix means the file may be
missing). Both dockerd and the kubelet take flags this way, so their editors share this reader.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from fabfile.runtimes.findings import ConfigParseError

_FILE_HEADER = re.compile(r"^# (/\S+\.(?:service|conf))\s*$")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_ASSIGNMENT = re.compile(
    r"^(?P<indent>\s*)(?P<export>export\s+)?(?P<name>[A-Za-z_]\w*)=(?P<rest>.*)$"
)


@dataclass(frozen=True)
class UnitFile:
    """One file shown by `systemctl cat`: the unit itself or a drop-in."""

    path: str
    text: str


@dataclass(frozen=True)
class EnvironmentFileRef:
    """An `EnvironmentFile=` entry; `optional` when written with the `-` prefix."""

    path: str
    optional: bool


@dataclass
class ServiceUnit:
    """The parts of a service's definition that decide its command line."""

    files: list[UnitFile]
    exec_start: str | None = None
    exec_start_file: str | None = None
    environment_files: list[EnvironmentFileRef] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def exec_tokens(self) -> list[str]:
        """ExecStart split into words, its `-@:+!` prefixes removed from the program."""
        if self.exec_start is None:
            return []
        tokens = shlex.split(self.exec_start)
        if tokens:
            tokens[0] = tokens[0].lstrip("-@:+!")
        return tokens

    @property
    def variables_used(self) -> list[str]:
        """Names of the variables ExecStart expands, in order of first use."""
        if self.exec_start is None:
            return []
        names: list[str] = []
        for braced, plain in _VARIABLE.findall(self.exec_start):
            name = braced or plain
            if name not in names:
                names.append(name)
        return names

    def file_text(self, path: str) -> str:
        for unit_file in self.files:
            if unit_file.path == path:
                return unit_file.text
        raise KeyError(path)


def split_systemctl_cat(text: str) -> list[UnitFile]:
    """Cut `systemctl cat` output into the files it shows, keeping each file's own text."""
    files: list[UnitFile] = []
    current: str | None = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        header = _FILE_HEADER.match(line.rstrip("\n"))
        if header is not None:
            if current is not None:
                files.append(UnitFile(current, _strip_separator("".join(lines))))
            current, lines = header.group(1), []
            continue
        lines.append(line)
    if current is not None:
        files.append(UnitFile(current, _strip_separator("".join(lines))))
    return files


def _strip_separator(text: str) -> str:
    """`systemctl cat` puts one blank line between files; it is not part of the file."""
    return text[:-1] if text.endswith("\n\n") else text


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Unit lines with backslash continuations joined, each with its first line number."""
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not pending:
            start = number
            if line.lstrip().startswith(("#", ";")):
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        result.append((start, " ".join(part.strip() for part in pending)))
        pending = []
    if pending:
        result.append((start, " ".join(part.strip() for part in pending)))
    return result


def parse_service(systemctl_cat: str, unit: str) -> ServiceUnit:
    """Read a service's ExecStart, Environment= and EnvironmentFile= from `systemctl cat` text."""
    files = split_systemctl_cat(systemctl_cat)
    if not files:
        raise ConfigParseError(
            f"systemctl cat {unit}",
            unit,
            "the output shows no unit file (no `# /path` line)",
            f"Check that the {unit} service is installed: `systemctl cat {unit}`.",
        )
    service = ServiceUnit(files=files)
    for unit_file in files:
        section = ""
        for _, line in _logical_lines(unit_file.text):
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            if section != "Service" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            if key == "ExecStart":
                service.exec_start = value or None
                service.exec_start_file = unit_file.path if value else None
            elif key == "EnvironmentFile":
                if value:
                    service.environment_files.append(
                        EnvironmentFileRef(value.lstrip("-"), value.startswith("-"))
                    )
                else:
                    service.environment_files.clear()
            elif key == "Environment":
                for item in shlex.split(value):
                    name, _, val = item.partition("=")
                    service.environment[name] = val
    return service


@dataclass(frozen=True)
class EnvAssignment:
    """`NAME=value` in an environment file, with where its value sits in the line."""

    name: str
    value: str
    line: int
    quote: str
    value_start: int
    value_end: int


def parse_env_file(text: str, path: str) -> list[EnvAssignment]:
    """Assignments of an environment file (`NAME=value`, `NAME="value"`, `NAME='value'`).

    Offsets are into the line, so an editor can change the value and keep the quotes, the
    comments and every other line as they were.
    """
    assignments: list[EnvAssignment] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        match = _ASSIGNMENT.match(line)
        if match is None:
            raise ConfigParseError(
                path,
                stripped.split("=", 1)[0],
                "the line is not a NAME=value assignment",
                "Fix or remove the line; systemd ignores what it cannot read.",
                number,
            )
        rest = match.group("rest")
        start = match.start("rest")
        quote = rest[:1] if rest[:1] in ("'", '"') else ""
        if quote:
            end_in_rest = rest.find(quote, 1)
            if end_in_rest < 0:
                raise ConfigParseError(
                    path,
                    match.group("name"),
                    f"the value opens a {quote} quote that is never closed",
                    "Close the quote on the same line.",
                    number,
                )
            value_start, value_end = start + 1, start + end_in_rest
        else:
            comment = re.search(r"\s#", rest)
            value_start = start
            value_end = start + (comment.start() if comment else len(rest.rstrip()))
        assignments.append(
            EnvAssignment(
                match.group("name"),
                line[value_start:value_end],
                number,
                quote,
                value_start,
                value_end,
            )
        )
    return assignments


def env_values(text: str, path: str) -> dict[str, str]:
    """The variables an environment file sets; a later assignment wins."""
    return {a.name: a.value for a in parse_env_file(text, path)}
