"""Bring the whole lab up, take it down, and report its state.

``up`` is idempotent: each step looks first and changes only what differs, and the outcomes say
which. ``down`` removes the lab's containers (with their volumes) and its state under ``.lab/``;
``down(purge=True)`` also removes its images and the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from fabfile.lab import credentials, engine, images, paths, provision, upstream
from fabfile.lab.commands import docker
from fabfile.lab.hosts import HOSTS, UPSTREAM_ADDRESS, UPSTREAM_CONTAINER, UPSTREAM_PORT, by_name
from fabfile.lab.outcome import Outcome


@dataclass(frozen=True)
class HostStatus:
    """One row of ``lab.status``."""

    name: str
    role: str
    address: str
    user: str
    container: str
    state: str


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """Hold the lab's lock: one ``up`` or ``down`` at a time, across processes (tests, benches
    and tasks may bring the same lab up at once)."""
    paths.LAB.mkdir(parents=True, exist_ok=True)
    with paths.LOCK.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[lab] waiting for another lab.up or lab.down to finish ({paths.LOCK})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def up(report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Start the engine if needed, build what is missing, start the hosts and seed the upstream.

    ``report`` is called with each outcome as it is known; all outcomes are returned.
    """
    with _exclusive():
        return _up(report)


def reset(
    names: Iterable[str] | None = None, report: Callable[[Outcome], None] | None = None
) -> list[Outcome]:
    """Make the named hosts (every host when none is named) anew, as ``up`` first makes them.

    This undoes whatever was changed on them since (a deployed registry, a prepared node); the
    hosts get new SSH host keys, and known_hosts follows. The images and the upstream stay.
    """
    chosen = [by_name(name) for name in names] if names else list(HOSTS)
    with _exclusive():
        engine.start()
        for host in chosen:
            if provision.container_state(host.container)[0] != "absent":
                docker("container", "rm", "--force", "--volumes", host.container)
                message = f"removed to be made anew ({host.container})"
                if report is not None:
                    report(Outcome(host.name, True, message))
        return _up(report)


def _up(report: Callable[[Outcome], None] | None) -> list[Outcome]:
    outcomes: list[Outcome] = []

    def note(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if report is not None:
            report(outcome)

    started = engine.start()
    note(Outcome("docker engine", started, "started" if started else "answers"))
    host_image, registry_image = images.host_image(), images.registry_image()
    for built in (host_image, registry_image):
        detail = "imported" if built.changed else "present"
        note(Outcome(f"image {built.ref}", built.changed, detail))
    public_key, key_outcome = credentials.client_key()
    note(key_outcome)

    with ThreadPoolExecutor(max_workers=len(HOSTS) + 1) as pool:
        futures = [pool.submit(provision.ensure, h, host_image.ref, public_key) for h in HOSTS]
        seeded = pool.submit(upstream.ensure, registry_image.ref)
        for future in futures:
            for outcome in future.result():
                note(outcome)
        keys = {h.address: provision.host_keys(h) for h in HOSTS}
        for outcome in seeded.result():
            note(outcome)
    note(credentials.write_known_hosts(keys))
    for ref in images.prune_older([host_image.ref, registry_image.ref]):
        note(Outcome(f"image {ref}", True, "removed: made from older inputs"))
    return outcomes


def down(purge: bool = False) -> list[str]:
    """Remove the lab's containers and state; with ``purge`` also its images and cache.

    Returns what was removed. The engine itself is left running.
    """
    with _exclusive():
        return _down(purge)


def _down(purge: bool) -> list[str]:
    removed: list[str] = []
    # The containers and images live in the engine: start it for the removal if it is down,
    # and stop it again afterwards.
    started = engine.start()
    names = docker(
        "container",
        "ls",
        "--all",
        "--format",
        "{{.Names}}",
        "--filter",
        f"label={images.LABEL}",
    ).split()
    if names:
        docker("container", "rm", "--force", "--volumes", *names)
        removed += [f"container {name}" for name in names]
    if purge:
        removed += [f"image {ref}" for ref in images.remove_all()]
    if started:
        engine.stop()
    if paths.LAB.exists():
        for entry in sorted(paths.LAB.iterdir()):
            if entry == paths.CACHE and not purge:
                continue
            if entry in (paths.DOCKERD_LOG, paths.DOCKERD_PID, paths.LOCK) and not purge:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(str(entry))
        if purge:
            shutil.rmtree(paths.LAB, ignore_errors=True)
    return removed


def status() -> list[HostStatus]:
    """The lab's hosts and the upstream registry, with each container's state."""
    rows = [
        HostStatus(
            h.name,
            h.role,
            h.address,
            h.user,
            h.container,
            _state(h.container),
        )
        for h in HOSTS
    ]
    rows.append(
        HostStatus(
            "upstream",
            "upstream",
            f"{UPSTREAM_ADDRESS}:{UPSTREAM_PORT}",
            "-",
            UPSTREAM_CONTAINER,
            _state(UPSTREAM_CONTAINER),
        )
    )
    return rows


def status_dicts() -> list[dict[str, str]]:
    """:func:`status` as plain dictionaries, for JSON."""
    return [asdict(row) for row in status()]


def _state(container: str) -> str:
    if not engine.answers():
        return "engine down"
    return provision.container_state(container)[0]
