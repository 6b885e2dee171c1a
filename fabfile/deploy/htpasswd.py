"""The registry's htpasswd file: bcrypt entries, kept as they are while the password matches.

bcrypt salts every hash, so hashing again would change the file on every run. An entry already
on the host is kept when the password still verifies against it; only a new user or a changed
password gets a new hash. Passwords never leave this module except as hashes.
"""

from __future__ import annotations

from collections.abc import Sequence

import bcrypt

from .settings import User


def render(users: Sequence[User], current: str) -> bytes:
    """The htpasswd content for ``users``, reusing ``current`` entries that still verify."""
    existing: dict[str, bytes] = {}
    for line in current.splitlines():
        name, sep, stored = line.partition(":")
        if sep:
            existing[name] = stored.strip().encode()
    lines = []
    for user in users:
        secret = user.password.encode()
        old = existing.get(user.name)
        if old is not None and old.startswith(b"$2") and bcrypt.checkpw(secret, old):
            entry = old
        else:
            entry = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=10))
        lines.append(f"{user.name}:{entry.decode()}")
    return ("\n".join(lines) + "\n").encode()
