"""Local commands the lab runs (docker, mmdebstrap, skopeo), and the lab's error type.

Commands are argument lists, never shell strings. Input that may hold a secret goes through stdin
and never appears in an error message.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from fabfile.core.errors import ToolkitError


class LabError(ToolkitError):
    """Building or running the lab failed; the message names the step and what to do."""


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` locally and capture its output; raise :class:`LabError` if it fails.

    ``input`` goes to the command's stdin and never into a message, so it may carry a secret.
    """
    try:
        done = subprocess.run(
            list(argv), input=input, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise LabError(
            f"`{argv[0]}` is not installed; run scripts/setup-machine.sh to install it"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{_show(argv)}` did not finish within {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        raise LabError(_failure(argv, done))
    return done


def docker(*args: str, input: bytes | None = None, check: bool = True, timeout: float = 600) -> str:
    """Run the docker CLI with ``args`` and return its stdout, stripped."""
    return run(["docker", *args], input=input, check=check, timeout=timeout).stdout.decode().strip()


def docker_ok(*args: str) -> bool:
    """Run the docker CLI with ``args`` and say whether it succeeded (output discarded)."""
    return run(["docker", *args], check=False, timeout=120).returncode == 0


def _show(argv: Sequence[str]) -> str:
    return " ".join(argv)


def _failure(argv: Sequence[str], done: subprocess.CompletedProcess[bytes]) -> str:
    tail = done.stderr.decode(errors="replace").strip().splitlines()[-6:]
    said = ("; it said: " + " | ".join(tail)) if tail else ""
    return f"`{_show(argv)}` exited with {done.returncode}{said}"
