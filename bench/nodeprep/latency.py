"""Per-command latency on an open connection, and connect time, with and without TCP_NODELAY.

    PYTHONPATH=. .venv/bin/python -m bench.nodeprep.latency --inventory FILE --host NAME

Three ways to run ``true`` on one host, each on one connection opened beforehand:

* ``Session.run`` as built (the :class:`~fabfile.core.ssh.Connector` sets TCP_NODELAY);
* ``Session.run`` on a socket without TCP_NODELAY (the bench swaps the connector's socket
  factory for a plain ``socket.create_connection``: what paramiko and Fabric do by default);
* a raw paramiko channel on the NODELAY connection (``exec_command`` then the exit status),
  the lower bound for one command.

Prints one JSON document with the median and 90th percentile in milliseconds.
"""

from __future__ import annotations

import argparse
import functools
import json
import socket
import statistics
import sys
import time
from collections.abc import Callable

from fabfile.core import inventory, ssh


def _plain_socket(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout=timeout)


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 2),
        "n": len(ordered),
    }


def _time(fn: Callable[[], object], count: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def _raw(session: ssh.Session) -> None:
    channel = session.transport.open_session()
    try:
        channel.exec_command("true")
        channel.recv_exit_status()
    finally:
        channel.close()


def measure(path: str, name: str, count: int, connects: int) -> dict[str, dict[str, float]]:
    inv = inventory.load(path)
    host = inv.hosts[name]
    out: dict[str, dict[str, float]] = {}
    for label, factory in (("nodelay", ssh._nodelay_socket), ("default", _plain_socket)):
        ssh._nodelay_socket = factory
        connect_times = []
        for _ in range(connects):
            connector = ssh.Connector(inv)
            started = time.perf_counter()
            connector.session(host)
            connect_times.append(time.perf_counter() - started)
            connector.close()
        connector = ssh.Connector(inv)
        session = connector.session(host)
        try:
            out[f"Session.run, {label} socket"] = _stats(
                _time(functools.partial(session.run, "true"), count)
            )
            out[f"raw channel, {label} socket"] = _stats(
                _time(functools.partial(_raw, session), count)
            )
        finally:
            connector.close()
        out[f"connect + auth, {label} socket"] = _stats(connect_times)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--connects", type=int, default=20)
    args = parser.parse_args()
    json.dump(measure(args.inventory, args.host, args.count, args.connects), sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
