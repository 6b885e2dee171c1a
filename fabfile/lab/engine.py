"""The Docker engine that runs the lab: started in the background when its socket does not answer.

The engine runs with no bridge and no iptables rules, so every address the lab uses stays in
127.0.0.0/8. A pid file left by an engine that no longer runs (machines here do not keep processes
between sessions) is removed first, since dockerd refuses to start beside it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from fabfile.lab import paths
from fabfile.lab.commands import LabError

SOCKET = Path("/var/run/docker.sock")
PID_FILE = Path("/var/run/docker.pid")
DOCKERD = ["dockerd", "--bridge=none", "--iptables=false"]


def answers(timeout: float = 2.0) -> bool:
    """Say whether an engine answers ``GET /_ping`` on the socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(SOCKET))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK")


def start(wait: float = 60.0) -> bool:
    """Start dockerd unless one answers; return whether this call started it.

    The engine's output goes to ``.lab/dockerd.log`` and its pid to ``.lab/dockerd.pid``, which
    :func:`stop` uses to stop only an engine the lab started.
    """
    if answers():
        return False
    _remove_stale_pid_file()
    paths.LAB.mkdir(parents=True, exist_ok=True)
    with paths.DOCKERD_LOG.open("ab") as log:
        proc = subprocess.Popen(
            DOCKERD, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    paths.DOCKERD_PID.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if answers():
            return True
        if proc.poll() is not None:
            raise LabError(
                f"dockerd exited with {proc.returncode} while starting; see {paths.DOCKERD_LOG}"
            )
        time.sleep(0.2)
    raise LabError(
        f"dockerd did not answer on {SOCKET} within {wait:.0f} s; see {paths.DOCKERD_LOG}"
    )


def stop(wait: float = 60.0) -> bool:
    """Stop the engine if the lab started it (per ``.lab/dockerd.pid``); return whether it did."""
    pid = _read_pid(paths.DOCKERD_PID)
    paths.DOCKERD_PID.unlink(missing_ok=True)
    if pid is None or not _is_dockerd(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not _is_dockerd(pid):
            return True
        time.sleep(0.2)
    raise LabError(f"dockerd (pid {pid}) did not stop within {wait:.0f} s after SIGTERM")


def _remove_stale_pid_file() -> None:
    pid = _read_pid(PID_FILE)
    if pid is None:
        return
    if _is_dockerd(pid):
        raise LabError(
            f"dockerd (pid {pid}, per {PID_FILE}) runs but does not answer on {SOCKET}; "
            "stop it or wait for it, then run lab.up again"
        )
    PID_FILE.unlink(missing_ok=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_dockerd(pid: int) -> bool:
    """Say whether ``pid`` is a live dockerd (an exited child not yet reaped does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    state = stat[stat.rindex(")") + 2 :].split()[0]
    return name == "dockerd" and state not in ("Z", "X")
