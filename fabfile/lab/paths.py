"""Where the lab keeps its files: everything it writes lives under ``.lab/`` in the repository.

``.lab/cache/`` holds what is slow to rebuild (root filesystems, synthetic images) and survives
``lab.down``; the rest is state of the running lab and goes with it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "lab"
LAB = REPO / ".lab"
CACHE = LAB / "cache"
SSH = LAB / "ssh"
SECRETS = LAB / "secrets"
CA = LAB / "ca"
UPSTREAM = LAB / "upstream"

CLIENT_KEY = SSH / "id_ed25519"
KNOWN_HOSTS = SSH / "known_hosts"
CA_CERT = CA / "ca.crt"
CA_KEY = SECRETS / "ca.key"
UPSTREAM_PASSWORD = SECRETS / "upstream-password"
UPSTREAM_AUTHFILE = SECRETS / "upstream-auth.json"
DEPLOY_PASSWORD = SECRETS / "deploy-sudo-password"
UPSTREAM_JSON = LAB / "upstream.json"
DOCKERD_LOG = LAB / "dockerd.log"
DOCKERD_PID = LAB / "dockerd.pid"
LOCK = LAB / "lock"


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``path`` readable by its owner only, creating its folder (mode 700) if needed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(raw)
    tmp.replace(path)


def write_if_changed(path: Path, data: str | bytes, private: bool = False) -> bool:
    """Write ``path`` unless it already holds ``data``; return whether it was written."""
    raw = data.encode() if isinstance(data, str) else data
    if path.exists() and path.read_bytes() == raw:
        return False
    if private:
        write_private(path, raw)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(raw)
        tmp.replace(path)
    return True
