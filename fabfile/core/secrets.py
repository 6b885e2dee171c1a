"""Secrets known to this run, and redaction of them from every line the toolkit prints or logs.

Every password the toolkit reads (sudo, registry credentials) is registered here the moment it is
read. The logging filter and the error printer pass text through :func:`redact`, so a secret that
reaches a message by accident is masked rather than shown.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

MASK = "********"

_lock = threading.Lock()
_secrets: set[str] = set()


def register(value: str) -> str:
    """Remember ``value`` as a secret and return it unchanged."""
    if value:
        with _lock:
            _secrets.add(value)
    return value


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by a mask."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def read_secret(env: str | None = None, file: Path | None = None) -> str | None:
    """Read a secret from an environment variable or a file (first line), registering it."""
    if env and os.environ.get(env):
        return register(os.environ[env])
    if file is not None:
        value = file.read_text(encoding="utf-8").splitlines()[0] if file.exists() else ""
        if value:
            return register(value)
    return None


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        return True
