"""Contender F, the practical floor: bare paramiko, one connection and one command per host.

Not a product: no backups, no validation, no per-step report. Each host gets one connection
(socket with TCP_NODELAY, host key checked against known_hosts, which is parsed once for all
hosts) and one ``sh -s`` whose script, sent over stdin, compares each file with its content,
writes the ones that differ (temporary file, chmod, rename), pulls the image when the marker is
missing, and restarts the kubelet stand-in when a file changed. A pool of 64 workers runs the
hosts.

    bench/.env/floor/bin/python -m bench.nodeprep.contenders.floor --inventory FILE.json

Prints one JSON document: the status of every host, any errors, and the seconds spent on the
hosts (the rest of the wall time is interpreter start and imports).
"""

from __future__ import annotations

import argparse
import base64
import json
import shlex
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import paramiko

from bench.nodeprep import work

_PUT = r"""
put() {
  if [ -f "$1" ] && [ "$(stat -c %a "$1")" = 644 ] && printf '%s' "$2" | base64 -d | cmp -s - "$1"
  then return 0; fi
  mkdir -p "$(dirname "$1")"
  printf '%s' "$2" | base64 -d > "$1.floor-new"
  chmod 644 "$1.floor-new"
  mv -f "$1.floor-new" "$1"
  changed="$changed $1"
}
changed=
"""


def script(name: str, host_vars: dict[str, str]) -> str:
    root = f"{host_vars['root_base']}/{name}"
    lines = ["set -e", _PUT]
    for rel, data in work.render(name, host_vars).items():
        content = base64.b64encode(data).decode()
        lines.append(f"put {shlex.quote(f'{root}/{rel}')} {shlex.quote(content)}")
    pull = shlex.join([f"{host_vars['fleet_bin']}/fleet-pull", root, host_vars["image_digest"]])
    marker = shlex.quote(f"{root}/images/{host_vars['image_digest']}")
    restart = shlex.join([f"{host_vars['fleet_bin']}/fleet-kubelet", "restart", root])
    lines += [
        f"[ -e {marker} ] || {pull}",
        f'[ -z "$changed" ] || {restart}',
        'echo "changed:$changed"',
    ]
    return "\n".join(lines) + "\n"


def one(host: dict[str, Any], key: paramiko.PKey, known: paramiko.HostKeys) -> tuple[bool, str]:
    sock = socket.create_connection((host["address"], 22), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=10)
        offered = transport.get_remote_server_key()
        entry = known.lookup(host["address"])
        if entry is None or entry.get(offered.get_name()) != offered:
            raise RuntimeError(f"the host key of {host['address']} is not the one in known_hosts")
        transport.auth_publickey("root", key)
        channel = transport.open_session()
        channel.exec_command("sh -s")
        channel.sendall(script(host["name"], host["vars"]).encode())
        channel.shutdown_write()
        out = channel.makefile("rb").read().decode()
        err = channel.makefile_stderr("rb").read().decode()
        code = channel.recv_exit_status()
    finally:
        transport.close()
    if code != 0:
        raise RuntimeError(f"exit {code}: {err.strip()}")
    changed = out.strip().rpartition("changed:")[2].strip()
    return bool(changed), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args()
    with open(args.inventory, encoding="utf-8") as fh:
        inventory = json.load(fh)
    key = paramiko.Ed25519Key.from_private_key_file(inventory["key_file"])
    known = paramiko.HostKeys(inventory["known_hosts"])
    hosts = inventory["hosts"]
    started = time.perf_counter()
    statuses: dict[str, str] = {}
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=min(args.workers, len(hosts))) as pool:
        futures = {h["name"]: pool.submit(one, h, key, known) for h in hosts}
        for name, future in futures.items():
            try:
                changed, _ = future.result()
                statuses[name] = "changed" if changed else "unchanged"
            except Exception as exc:  # report every host, whatever went wrong on one
                statuses[name] = "failed"
                errors[name] = f"{type(exc).__name__}: {exc}"
    engine = round(time.perf_counter() - started, 4)
    json.dump({"hosts": statuses, "errors": errors, "engine_s": engine}, sys.stdout)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
