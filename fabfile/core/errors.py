"""One small error hierarchy. The task layer turns these into a clean exit with the message."""

from __future__ import annotations


class ToolkitError(Exception):
    """An error whose message is meant for the operator, already specific and actionable."""


class InventoryError(ToolkitError):
    """The inventory file is not valid: names the file, the key and, where known, the line."""

    def __init__(self, path: str, key: str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {key}: {message}")
        self.path = path
        self.key = key
        self.line = line


class HostError(ToolkitError):
    """Something failed on one host; the message is prefixed with the host's name."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host
        self.detail = message


class ConnectError(HostError):
    """The host could not be reached or authenticated."""


class HostKeyError(ConnectError):
    """The host's SSH key is unknown or differs from the one in known_hosts."""


class SudoError(HostError):
    """sudo refused, asked for a password nobody gave, or asked for something unexpected."""


class CommandError(HostError):
    """A remote command exited non-zero where success was required."""

    def __init__(self, host: str, command: str, exit_code: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-5:]
        said = ("; it said: " + " | ".join(tail)) if tail else ""
        super().__init__(host, f"`{command}` exited with {exit_code}{said}")
        self.command = command
        self.exit_code = exit_code
        self.stderr = stderr


class CommandTimeout(HostError):
    """A remote command did not finish within its timeout."""


class StepError(HostError):
    """A change step failed after it had started changing the host."""
