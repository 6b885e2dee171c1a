"""SSH into lab hosts with paramiko directly: the lab's client key, its known_hosts, no agent."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import paramiko

from fabfile.lab import paths
from fabfile.lab.hosts import SSH_PORT, LabHost, by_name


@dataclass(frozen=True)
class Result:
    """What a remote command printed and how it exited."""

    code: int
    out: str
    err: str


def _client() -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(paths.KNOWN_HOSTS))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def _connect(client: paramiko.SSHClient, host: LabHost, sock: paramiko.Channel | None) -> None:
    client.connect(
        host.address,
        port=SSH_PORT,
        username=host.user,
        pkey=paramiko.Ed25519Key.from_private_key_file(str(paths.CLIENT_KEY)),
        sock=sock,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )


@contextlib.contextmanager
def session(host: LabHost) -> Iterator[paramiko.SSHClient]:
    """An SSH session to ``host`` as its inventory user, through its jump host if it has one."""
    with contextlib.ExitStack() as stack:
        sock = None
        if host.jump is not None:
            jump = stack.enter_context(_client())
            _connect(jump, by_name(host.jump), None)
            transport = jump.get_transport()
            assert transport is not None
            target = (host.address, SSH_PORT)
            sock = transport.open_channel("direct-tcpip", target, ("127.0.0.1", 0))
        client = stack.enter_context(_client())
        _connect(client, host, sock)
        yield client


def run(client: paramiko.SSHClient, command: str, stdin: str | None = None) -> Result:
    """Run ``command`` and return its exit code and output; ``stdin`` is written then closed."""
    channel_in, out, err = client.exec_command(command, timeout=60)
    if stdin is not None:
        channel_in.write(stdin)
        channel_in.channel.shutdown_write()
    code = out.channel.recv_exit_status()
    return Result(code, out.read().decode(), err.read().decode())


def run_as_root(client: paramiko.SSHClient, host: LabHost, command: str) -> Result:
    """Run ``command`` as root: directly for root logins, through ``sudo -S`` otherwise."""
    if host.user == "root":
        return run(client, command)
    password = paths.DEPLOY_PASSWORD.read_text().strip()
    return run(client, f"sudo -S -p '' {command}", stdin=password + "\n")
