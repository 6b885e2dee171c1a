"""SSH sessions: one connection per host per run, opened once and reused by every step.

Fabric's :class:`fabric.Connection` resolves what ``~/.ssh/config`` says (HostName, User, Port,
IdentityFile, ProxyJump); this module adds what a fleet run needs on top of it:

* host keys checked against known_hosts; an unknown key stops the host unless accepting new keys
  was asked for (and that is logged), a changed key always stops it;
* TCP_NODELAY on every socket, which takes a command on an open connection from ~44 ms (Nagle's
  algorithm meeting delayed ACKs) to ~2 ms;
* jump hosts opened once, serially, before the fan-out, so parallel workers never race one
  gateway's handshake;
* commands run on raw channels with a deadline, and sudo driven by a unique prompt, so an
  unexpected prompt fails with a clear message instead of hanging.
"""

from __future__ import annotations

import logging
import math
import secrets as pysecrets
import select
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import paramiko.hostkeys
from fabric import Config, Connection

from . import secrets
from .errors import CommandError, CommandTimeout, ConnectError, HostKeyError, SudoError
from .inventory import Host, Inventory

log = logging.getLogger("regtk")

SUDO_PASSWORD_ENV = "REGTK_SUDO_PASSWORD"


@dataclass
class SSHOptions:
    """Settings for every connection of a run (task flags)."""

    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    accept_new_host_keys: bool = False
    sudo_timeout: float = 10.0
    ssh_config: Path | None = None
    """An ssh_config file to read instead of ~/.ssh/config."""


@dataclass
class Result:
    """What a remote command did."""

    host: str
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class _Counters:
    connections: int = 0
    commands: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """Accept a key never seen before, save it to known_hosts, and say so in the log."""

    def __init__(self, path: Path | None, lock: threading.Lock) -> None:
        self.path = path
        self.lock = lock

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        if self.path is not None:
            with self.lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="ascii") as fh:
                    fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        log.warning(
            "[%s] accepted new host key %s %s (saved to %s)",
            hostname,
            key.get_name(),
            key.fingerprint,
            self.path or "memory only",
        )


def _nodelay_socket(address: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((address, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _known_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


class Session:
    """An open SSH connection to one host, with command execution and sudo."""

    def __init__(
        self, host: Host, connection: Connection, options: SSHOptions, counters: _Counters
    ):
        self.host = host
        self.connection = connection
        self.options = options
        self._counters = counters
        self._sudo_password: str | None = None
        self._sudo_password_read = False

    @property
    def transport(self) -> paramiko.Transport:
        transport = self.connection.client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectError(self.host.name, "the SSH connection was closed")
        return transport

    @property
    def is_root(self) -> bool:
        return (self.connection.user or "root") == "root"

    def sudo_password(self) -> str | None:
        if not self._sudo_password_read:
            self._sudo_password = secrets.read_secret(
                self.host.sudo_password_env, self.host.sudo_password_file
            ) or secrets.read_secret(SUDO_PASSWORD_ENV)
            self._sudo_password_read = True
        return self._sudo_password

    def run(
        self,
        command: Sequence[str] | str,
        *,
        sudo: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> Result:
        """Run ``command`` (an argument list, or a shell script string) and wait for it.

        With ``sudo`` and a non-root login, the command runs through ``sudo -S`` with a prompt
        unique to this call; the password is sent only when that prompt appears, then ``stdin``.
        """
        text = command if isinstance(command, str) else shlex.join(command)
        limit = max(1, math.ceil(timeout or self.options.command_timeout))
        started = time.monotonic()
        # The host stops the command itself at the limit (and kills it 5 s later), so a command
        # that outlives its deadline does not go on running after this side gave up on it.
        bounded = f"exec timeout -k 5 {limit} sh -c {shlex.quote(text)}"
        deadline = started + limit + 8
        use_sudo = sudo and not self.is_root
        marker = pysecrets.token_hex(8)
        prompt = f"[regtk sudo {marker}] password:"
        remote = bounded
        if use_sudo:
            inner = f"echo {marker}-ok >&2; {bounded}"
            remote = shlex.join(["sudo", "-S", "-p", prompt, "--", "sh", "-c", inner])
        log.debug("[%s] run: %s", self.host.name, secrets.redact(text))
        with self._counters.lock:
            self._counters.commands += 1
        channel = self.transport.open_session(timeout=self.options.connect_timeout)
        try:
            channel.exec_command(remote)
            stdout, stderr = bytearray(), bytearray()
            if use_sudo:
                self._sudo_handshake(channel, stdout, stderr, prompt, f"{marker}-ok", deadline)
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            _drain(channel, stdout, stderr, deadline, self.host.name, text)
            code = channel.recv_exit_status()
        finally:
            channel.close()
        if code in (124, 137) and time.monotonic() - started >= limit - 0.5:
            raise CommandTimeout(
                self.host.name,
                f"`{secrets.redact(text)}` did not finish in {limit}s; it was stopped",
            )
        result = Result(
            self.host.name,
            text,
            code,
            stdout.decode("utf-8", "replace"),
            secrets.redact(stderr.decode("utf-8", "replace")),
        )
        if log.isEnabledFor(logging.DEBUG - 1):
            for line in (result.stdout + result.stderr).splitlines():
                log.log(logging.DEBUG - 1, "[%s]   %s", self.host.name, secrets.redact(line))
        if check and code != 0:
            raise CommandError(self.host.name, secrets.redact(text), code, result.stderr)
        return result

    def _sudo_handshake(
        self,
        channel: paramiko.Channel,
        stdout: bytearray,
        stderr: bytearray,
        prompt: str,
        ok: str,
        deadline: float,
    ) -> None:
        """Answer sudo's prompt once; stop at the success marker; fail on anything else."""
        sent = False
        pending = bytearray()
        sudo_deadline = min(deadline, time.monotonic() + self.options.sudo_timeout)
        while True:
            remaining = sudo_deadline - time.monotonic()
            if remaining <= 0:
                raise SudoError(
                    self.host.name,
                    f"sudo did not answer within {self.options.sudo_timeout:.0f}s "
                    "(an unexpected prompt?); check sudo on this host by hand",
                )
            select.select([channel], [], [], remaining)
            while channel.recv_stderr_ready():
                pending += channel.recv_stderr(65536)
            while channel.recv_ready():
                stdout += channel.recv(65536)
            text = pending.decode("utf-8", "replace")
            if ok in text:
                rest = text.partition(ok)[2]
                tail = rest[1:] if rest.startswith("\n") else rest
                stderr += tail.encode()
                return
            if prompt in text:
                if sent:
                    raise SudoError(self.host.name, "sudo rejected the password")
                password = self.sudo_password()
                if password is None:
                    raise SudoError(
                        self.host.name,
                        f"sudo asks for a password for {self.connection.user}; set "
                        f"{self.host.sudo_password_env or SUDO_PASSWORD_ENV} or "
                        "sudo_password_file in the inventory",
                    )
                channel.sendall((password + "\n").encode())
                sent = True
                pending = bytearray(text.replace(prompt, "", 1).encode())
            if channel.exit_status_ready() and not channel.recv_stderr_ready():
                said = secrets.redact(text.strip()) or "nothing"
                raise SudoError(self.host.name, f"sudo failed: {said}")

    def close(self) -> None:
        self.connection.close()


def _drain(
    channel: paramiko.Channel,
    stdout: bytearray,
    stderr: bytearray,
    deadline: float,
    host: str,
    command: str,
) -> None:
    while True:
        while channel.recv_ready():
            stdout += channel.recv(65536)
        while channel.recv_stderr_ready():
            stderr += channel.recv_stderr(65536)
        if channel.exit_status_ready() and channel.eof_received:
            while channel.recv_ready():
                stdout += channel.recv(65536)
            while channel.recv_stderr_ready():
                stderr += channel.recv_stderr(65536)
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CommandTimeout(
                host, f"`{secrets.redact(command)}` did not finish in time; it was stopped"
            )
        select.select([channel], [], [], min(remaining, 1.0))


class Connector:
    """Opens and caches one session per host; jump hosts are opened before the fan-out."""

    def __init__(self, inventory: Inventory, options: SSHOptions | None = None) -> None:
        self.inventory = inventory
        self.options = options or SSHOptions()
        self._sessions: dict[str, Session] = {}
        self._gateways: dict[str, Connection] = {}
        self._lock = threading.Lock()
        self._known_hosts_lock = threading.Lock()
        self._parsed: dict[Path, paramiko.HostKeys] = {}
        self.counters = _Counters()

    def _connection(self, host: Host) -> Connection:
        config = Config(
            overrides={"timeouts": {"connect": int(self.options.connect_timeout)}},
            runtime_ssh_path=str(self.options.ssh_config) if self.options.ssh_config else None,
        )
        kwargs: dict[str, object] = {
            "banner_timeout": self.options.connect_timeout,
            "auth_timeout": self.options.connect_timeout,
        }
        if host.key_file is not None:
            kwargs["key_filename"] = [str(host.key_file)]
            kwargs["look_for_keys"] = False
            kwargs["allow_agent"] = False
        gateway = self._gateways.get(host.jump) if host.jump else None
        conn = Connection(
            host.address,
            user=host.user,
            port=host.port,
            config=config,
            gateway=gateway,
            connect_kwargs=kwargs,
        )
        self._check_host_keys(conn, host)
        if isinstance(conn.gateway, Connection) and host.jump is None:
            # A ProxyJump from ssh_config: its hop gets the same host key checks.
            self._check_host_keys(conn.gateway, host)
        return conn

    def _known_hosts(self, path: Path, host: str) -> paramiko.HostKeys:
        """The known_hosts file at ``path``, parsed once per run (paramiko's parser is slow)."""
        with self._known_hosts_lock:
            if path not in self._parsed:
                try:
                    self._parsed[path] = paramiko.HostKeys(str(path) if path.exists() else None)
                except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError) as exc:
                    raise ConnectError(
                        host, f"{path} has a line that cannot be read: {exc}"
                    ) from None
            return self._parsed[path]

    def _check_host_keys(self, conn: Connection, host: Host) -> None:
        client = conn.client
        known = host.known_hosts
        if known is None and conn.ssh_config.get("userknownhostsfile"):
            known = Path(str(conn.ssh_config["userknownhostsfile"]).split()[0]).expanduser()
        known = known or Path("~/.ssh/known_hosts").expanduser()
        name = _known_name(conn.host, int(conn.port))
        for kind, key in (self._known_hosts(known, host.name).lookup(name) or {}).items():
            client.get_host_keys().add(name, kind, key)
        if self.options.accept_new_host_keys:
            client.set_missing_host_key_policy(
                _AcceptNewPolicy(host.known_hosts, self._known_hosts_lock)
            )
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())

    def _open(self, host: Host, conn: Connection) -> None:
        known = host.known_hosts or Path("~/.ssh/known_hosts").expanduser()
        name = _known_name(conn.host, int(conn.port))
        try:
            if conn.gateway is None and "proxycommand" not in conn.ssh_config:
                # Our own socket, with TCP_NODELAY; Fabric would make one without it.
                conn.connect_kwargs["sock"] = _nodelay_socket(
                    conn.host, int(conn.port), self.options.connect_timeout
                )
            conn.open()
        except paramiko.BadHostKeyException:
            raise HostKeyError(
                host.name,
                f"the SSH host key of {name} differs from the one in {known}. If the host was "
                f"rebuilt, remove the old key with `ssh-keygen -R '{name}' -f {known}` and "
                "connect again; otherwise do not connect",
            ) from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise HostKeyError(
                    host.name,
                    f"the SSH host key of {name} is unknown ({known} has no entry). Check the "
                    f"key's fingerprint, then add it with `ssh-keyscan -p {conn.port} "
                    f"{conn.host} >> {known}`, or run again with --accept-new-host-keys",
                ) from None
            raise ConnectError(host.name, f"SSH to {host.login} failed: {exc}") from None
        except (OSError, EOFError) as exc:
            raise ConnectError(host.name, f"cannot connect to {host.login}: {exc}") from None
        with self.counters.lock:
            self.counters.connections += 1

    def open_jumps(self, hosts: Sequence[Host]) -> dict[str, str]:
        """Open every jump host the given hosts need, one at a time. Returns failures by jump."""
        failed: dict[str, str] = {}
        for name in dict.fromkeys(h.jump for h in hosts if h.jump):
            if name is None or name in self._gateways:
                continue
            jump = self.inventory.hosts[name]
            conn = self._connection(jump)
            try:
                self._open(jump, conn)
            except ConnectError as exc:
                failed[name] = exc.detail
                continue
            self._gateways[name] = conn
        return failed

    def session(self, host: Host) -> Session:
        """The open session to ``host``, connecting on first use."""
        with self._lock:
            existing = self._sessions.get(host.name)
        if existing is not None:
            return existing
        if host.jump and host.jump not in self._gateways:
            failures = self.open_jumps([host])
            if host.jump in failures:
                raise ConnectError(
                    host.name, f"jump host {host.jump} is unreachable: {failures[host.jump]}"
                )
        conn = self._connection(host)
        self._open(host, conn)
        session = Session(host, conn, self.options, self.counters)
        with self._lock:
            self._sessions[host.name] = session
        return session

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.close()
        for gateway in self._gateways.values():
            gateway.close()
        self._gateways.clear()
