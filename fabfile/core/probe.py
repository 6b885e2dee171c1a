"""Read many facts from a host in one round trip.

A probe collects commands and files to read, sends one POSIX sh script over stdin, and parses
one record per item back. Outputs and file contents travel base64-encoded, so no content can be
mistaken for a record boundary.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import HostError
from .ssh import Session

_PRELUDE = r"""
r() {
  n=$1; shift; o=$("$@" 2>&1); c=$?
  printf '@@regtk c %s %s\n' "$n" "$c"; printf '%s' "$o" | base64 | tr -d '\n'; echo
}
f() {
  if [ -f "$1" ]; then
    printf '@@regtk f %s 1 %s\n' "$2" "$(stat -c '%a %U %G' "$1")"; base64 < "$1" | tr -d '\n'; echo
  else
    printf '@@regtk f %s 0\n' "$2"; echo
  fi
}
"""


@dataclass(frozen=True)
class RemoteFile:
    """A file as it is on the host: absent, or its bytes with mode and owner."""

    path: str
    exists: bool
    content: bytes = b""
    mode: str = ""
    owner: str = ""
    group: str = ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@dataclass(frozen=True)
class Output:
    """A command's exit code and combined output (trailing newlines stripped)."""

    exit_code: int
    text: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class Facts:
    """What a probe read: outputs by name, files by path."""

    outputs: dict[str, Output]
    files: dict[str, RemoteFile]

    def out(self, name: str) -> Output:
        return self.outputs[name]

    def file(self, path: str) -> RemoteFile:
        return self.files[path]


class Probe:
    """Commands and files to read from a host in a single command."""

    def __init__(self) -> None:
        self._commands: list[tuple[str, str]] = []
        self._files: list[str] = []

    def command(self, name: str, command: Sequence[str] | str) -> Probe:
        """Run ``command`` (an argument list or a shell snippet); keep its output as ``name``."""
        if isinstance(command, str):
            command = ["sh", "-c", command]
        self._commands.append((name, shlex.join(command)))
        return self

    def file(self, *paths: str) -> Probe:
        """Read each regular file in ``paths`` (absent files are recorded as absent)."""
        self._files.extend(p for p in paths if p not in self._files)
        return self

    def script(self) -> str:
        lines = [_PRELUDE]
        lines += [f"r {shlex.quote(name)} {command}" for name, command in self._commands]
        lines += [f"f {shlex.quote(path)} {i}" for i, path in enumerate(self._files)]
        return "\n".join(lines) + "\n"

    def run(self, session: Session, sudo: bool = True) -> Facts:
        result = session.run("sh -s", sudo=sudo, stdin=self.script().encode(), check=False)
        if result.exit_code != 0:
            raise HostError(session.host.name, f"reading facts failed: {result.stderr.strip()}")
        return self.parse(session.host.name, result.stdout)

    def parse(self, host: str, stdout: str) -> Facts:
        outputs: dict[str, Output] = {}
        files: dict[str, RemoteFile] = {}
        lines = stdout.split("\n")
        for i, line in enumerate(lines):
            if not line.startswith("@@regtk "):
                continue
            fields = line.split(" ")
            payload = lines[i + 1] if i + 1 < len(lines) else ""
            try:
                data = base64.b64decode(payload) if payload else b""
            except binascii.Error:
                raise HostError(host, f"unreadable fact record: {line}") from None
            if fields[1] == "c":
                outputs[fields[2]] = Output(int(fields[3]), data.decode("utf-8", "replace"))
            elif fields[1] == "f":
                path = self._files[int(fields[2])]
                if fields[3] == "1":
                    mode, owner, group = fields[4:7]
                    files[path] = RemoteFile(path, True, data, mode.zfill(4), owner, group)
                else:
                    files[path] = RemoteFile(path, False)
        missing = [n for n, _ in self._commands if n not in outputs]
        missing += [p for p in self._files if p not in files]
        if missing:
            raise HostError(host, f"reading facts returned no record for {', '.join(missing)}")
        return Facts(outputs, files)
