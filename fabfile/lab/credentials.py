"""The lab's client SSH key, known_hosts file and generated passwords.

Each is made once and kept under ``.lab/`` (secrets mode 600), so bringing the lab up again
reuses them and changes nothing.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from fabfile.lab import paths
from fabfile.lab.hosts import SSH_PORT
from fabfile.lab.outcome import Outcome


def client_key() -> tuple[str, Outcome]:
    """Return the lab client's public key line, making the key pair if it is missing."""
    pub = paths.CLIENT_KEY.with_suffix(".pub")
    if paths.CLIENT_KEY.exists() and pub.exists():
        return pub.read_text().strip(), Outcome(str(paths.CLIENT_KEY), False, "present")
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = public.decode() + " regtk-lab"
    paths.write_private(paths.CLIENT_KEY, private)
    pub.write_text(line + "\n")
    return line, Outcome(str(paths.CLIENT_KEY), True, "generated an ed25519 key pair")


def password(path: Path) -> tuple[str, bool]:
    """Return the password kept in ``path``, generating one if the file is missing or empty."""
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value, False
    value = secrets.token_urlsafe(18)
    paths.write_private(path, value + "\n")
    return value, True


def write_known_hosts(keys: dict[str, list[str]]) -> Outcome:
    """Write known_hosts with each address's host keys (``"type base64"`` strings)."""
    lines = [
        f"[{address}]:{SSH_PORT} {key}" for address, found in sorted(keys.items()) for key in found
    ]
    text = "".join(line + "\n" for line in lines)
    changed = paths.write_if_changed(paths.KNOWN_HOSTS, text)
    detail = f"{len(lines)} keys for {len(keys)} hosts"
    return Outcome(str(paths.KNOWN_HOSTS), changed, detail)
