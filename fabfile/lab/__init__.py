"""The local lab: real test hosts on this machine, as systemd containers on a local Docker engine.

Each host has its own loopback address and sshd; ``hosts.yml`` at the repository root describes
them for the toolkit. :func:`up` builds what is missing and starts everything (idempotent),
:func:`reset` makes chosen hosts anew, :func:`down` removes it all, :func:`status`
reports it. The Invoke tasks are in
:mod:`fabfile.lab.tasks`.
"""

from __future__ import annotations

from fabfile.lab.lifecycle import HostStatus, down, reset, status, status_dicts, up

__all__ = ["HostStatus", "down", "reset", "status", "status_dicts", "up"]
