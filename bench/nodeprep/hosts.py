"""N plain sshd "hosts" on 127.0.6.1..N, each its own sshd process, config and log.

Every sshd runs in the foreground as a child of the bench (so it is stopped by its pid), with
its config, host key, authorized key, pid file and log in a temporary directory: nothing under
/etc/ssh or /root/.ssh is read or written. Logins are as root with the bench's own key.

Root's login shell here is bash, and bash sources ``~/.bashrc`` for commands that come over
SSH; root's ``.bashrc`` runs ``pyenv init``, which costs about 100 ms per command. Unless the
realistic shell is asked for, each sshd sets ``HOME`` to an empty directory for its sessions
(``SetEnv``), so every contender's every command starts bash with no rc file: all tools pay the
same, and what is measured is orchestration, not this machine's rc files.

The logs are at LogLevel VERBOSE: ``Accepted publickey`` marks each SSH connection and
``Starting session:`` each command or subsystem (sftp) a client opens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.nodeprep.work import Node

SSHD = "/usr/sbin/sshd"

_CONFIG = """\
ListenAddress {address}:22
HostKey {dir}/host_key
PidFile {dir}/sshd-{name}.pid
AuthorizedKeysFile {dir}/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
MaxStartups 200:30:400
MaxSessions 64
LogLevel VERBOSE
Subsystem sftp internal-sftp
{setenv}"""


@dataclass
class Counts:
    """What one host's sshd saw during a run."""

    connections: int
    sessions: int


class SshdFleet:
    """Start, watch and stop one sshd per bench host."""

    def __init__(self, workdir: Path, hosts: list[Node], realistic_shell: bool = False) -> None:
        self.dir = workdir
        self.hosts = hosts
        self.realistic_shell = realistic_shell
        self.key_file = workdir / "client_key"
        self.known_hosts = workdir / "known_hosts"
        self.home = workdir / "home"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def log(self, node: Node) -> Path:
        return self.dir / f"sshd-{node.name}.log"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        for key in ("host_key", "client_key"):
            if not (self.dir / key).exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / key)],
                    check=True,
                )
        (self.dir / "authorized_keys").write_text((self.dir / "client_key.pub").read_text())
        host_pub = " ".join((self.dir / "host_key.pub").read_text().split()[:2])
        self.known_hosts.write_text("".join(f"{n.address} {host_pub}\n" for n in self.hosts))
        setenv = "" if self.realistic_shell else f"SetEnv HOME={self.home}\n"
        for node in self.hosts:
            config = self.dir / f"sshd-{node.name}.conf"
            config.write_text(
                _CONFIG.format(address=node.address, dir=self.dir, name=node.name, setenv=setenv)
            )
            self._procs[node.name] = subprocess.Popen(
                [SSHD, "-D", "-f", str(config), "-E", str(self.log(node))],
                stdin=subprocess.DEVNULL,
            )
        for node in self.hosts:
            self._wait_listening(node)

    def _wait_listening(self, node: Node, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = self._procs[node.name]
            if proc.poll() is not None:
                raise RuntimeError(
                    f"sshd for {node.name} ({node.address}) exited with {proc.returncode}; "
                    f"see {self.log(node)}"
                )
            try:
                socket.create_connection((node.address, 22), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"sshd for {node.name} does not listen on {node.address}:22 after "
                        f"{timeout:.0f}s; see {self.log(node)}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop every sshd this fleet started, by pid; safe to call twice."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

    def marks(self) -> dict[str, int]:
        """Where each host's log ends now; :meth:`counts` reads what comes after."""
        return {n.name: self.log(n).stat().st_size for n in self.hosts}

    def counts(self, marks: dict[str, int], hosts: list[Node]) -> dict[str, Counts]:
        found: dict[str, Counts] = {}
        for node in hosts:
            with self.log(node).open("rb") as fh:
                fh.seek(marks[node.name])
                text = fh.read().decode("utf-8", "replace")
            found[node.name] = Counts(
                text.count("Accepted publickey for "), text.count("Starting session: ")
            )
        return found

    def cpu_seconds(self) -> float:
        """CPU used so far by the sshd children (connections, sessions) the listeners reaped."""
        total = 0
        for proc in self._procs.values():
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
        return total / os.sysconf("SC_CLK_TCK")
