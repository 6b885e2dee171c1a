"""Reach a registry that only its own host can reach: a local port forward over SSH.

`Tunnel` listens on 127.0.0.1 on an ephemeral port and carries each accepted connection through
a `direct-tcpip` channel of an existing paramiko Transport to the registry's address as seen from
the SSH host. Give its address to `Endpoint(connect_to=...)` (see forwarding.py), so the URL, the
Host header, SNI and the certificate check keep the registry's real name.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading

import paramiko

log = logging.getLogger(__name__)

_BUFFER = 256 * 1024


class Tunnel:
    """A local port forward to `remote` (host, port) over `transport`; use as a context manager."""

    def __init__(
        self,
        transport: paramiko.Transport,
        remote: tuple[str, int],
        bind_host: str = "127.0.0.1",
    ) -> None:
        self._transport = transport
        self._remote = remote
        self._listener = socket.create_server((bind_host, 0))
        host, port = self._listener.getsockname()[:2]
        self.address: tuple[str, int] = (host, port)
        self.last_error = ""
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket | paramiko.Channel] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"tunnel-{port}", daemon=True
        )

    def start(self) -> Tunnel:
        self._acceptor.start()
        return self

    def __enter__(self) -> Tunnel:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, close every forwarded connection, and wait for the threads."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._listener.close()
        with self._lock:
            for end in list(self._open):
                end.close()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, peer = self._listener.accept()
            except OSError:
                return
            try:
                channel = self._transport.open_channel(
                    "direct-tcpip", self._remote, peer[:2], timeout=15
                )
            except (paramiko.SSHException, OSError) as exc:
                self.last_error = (
                    f"the SSH host could not open a connection to {self._remote[0]}:"
                    f"{self._remote[1]} ({exc})"
                )
                log.warning("tunnel: %s", self.last_error)
                client.close()
                continue
            with self._lock:
                self._open.update((client, channel))
            thread = threading.Thread(target=self._pump, args=(client, channel), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _pump(self, client: socket.socket, channel: paramiko.Channel) -> None:
        """Copy bytes both ways until either side closes."""
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ)
        selector.register(channel, selectors.EVENT_READ)
        try:
            while not self._closed.is_set():
                for key, _ in selector.select(timeout=0.5):
                    if key.fileobj is client:
                        data = client.recv(_BUFFER)
                        if not data:
                            return
                        channel.sendall(data)
                    else:
                        data = channel.recv(_BUFFER)
                        if not data:
                            return
                        client.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            with self._lock:
                self._open.discard(client)
                self._open.discard(channel)
            channel.close()
            client.close()
