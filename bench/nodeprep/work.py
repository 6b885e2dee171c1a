"""The per-host work every contender does, and how the bench checks that it was done.

Under ``ROOT = /tmp/regtk-bench/<host>`` each contender writes three files (a containerd config
templated with host variables, a kubelet config, a sysctl file; mode 0644, changed only when the
content differs), makes sure ``ROOT/images/<digest>`` exists (running the shared ``fleet-pull``
when it does not), and runs the shared ``fleet-kubelet restart`` when any file changed.

This module renders what each host should end up with, installs the shared scripts, reads a
host's ROOT back (content hash, mode, inode, mtime) and counts its kubelet restarts. It needs
only the standard library and jinja2, so the floor contender's environment imports it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import jinja2

BASE = Path("/tmp/regtk-bench")
FLEET = BASE / ".fleet"
FLEET_BIN = FLEET / "bin"
BLOB = FLEET / "pause.blob"
BACKUPS = BASE / ".backups"
FILES = Path(__file__).resolve().parent / "files"

CONTAINERD = "etc/containerd/config.toml"
KUBELET = "var/lib/kubelet/config.yaml"
SYSCTL = "etc/sysctl.d/99-kubernetes.conf"
TEMPLATE = "containerd-config.toml.j2"
STATIC = {KUBELET: "kubelet-config.yaml", SYSCTL: "99-kubernetes.conf"}
MODE = 0o644
DIR_MODE = 0o755

SANDBOX_IMAGE = "127.0.6.250:5000/pause:3.9"
"""Only written into the config; nothing connects to it."""

ADDRESS_PREFIX = "127.0.6."


def _blob_bytes() -> bytes:
    """A 64 KiB stand-in for the pause image, the same on every run."""
    return random.Random(20261204).randbytes(64 * 1024)


IMAGE_DIGEST = "sha256:" + hashlib.sha256(_blob_bytes()).hexdigest()


@dataclass(frozen=True)
class Node:
    """One bench host: its inventory name and its loopback address."""

    name: str
    address: str

    @property
    def root(self) -> Path:
        return BASE / self.name

    @property
    def vars(self) -> dict[str, str]:
        """The host variables every contender's inventory gives this host."""
        return {"node_ip": self.address}


def nodes(count: int) -> list[Node]:
    if not 1 <= count <= 250:
        raise ValueError(f"{count} hosts: the bench uses 127.0.6.1-127.0.6.250, so 1 to 250")
    return [Node(f"n{i:03d}", f"{ADDRESS_PREFIX}{i}") for i in range(1, count + 1)]


def common_vars() -> dict[str, str]:
    """The variables shared by every host (group ``all`` in each contender's inventory)."""
    return {
        "root_base": str(BASE),
        "fleet_bin": str(FLEET_BIN),
        "image_digest": IMAGE_DIGEST,
        "sandbox_image": SANDBOX_IMAGE,
    }


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(FILES)),
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
    autoescape=False,
)


def render(name: str, host_vars: dict[str, str]) -> dict[str, bytes]:
    """The three files host ``name`` should have, by path relative to its ROOT."""
    values = {**common_vars(), **host_vars, "node_name": name}
    files = {CONTAINERD: _ENV.get_template(TEMPLATE).render(values).encode()}
    files.update({rel: (FILES / src).read_bytes() for rel, src in STATIC.items()})
    return files


def install_fleet() -> None:
    """Put the shared scripts and the image blob where every contender's remote side finds them."""
    FLEET_BIN.mkdir(parents=True, exist_ok=True)
    for script in ("fleet-pull", "fleet-kubelet"):
        target = FLEET_BIN / script
        shutil.copyfile(FILES / script, target)
        target.chmod(0o755)
    BLOB.write_bytes(_blob_bytes())


@dataclass(frozen=True)
class FileState:
    sha256: str
    mode: int
    inode: int
    mtime_ns: int


def snapshot(node: Node) -> dict[str, FileState]:
    """Every regular file under the host's ROOT except ``run/`` (the kubelet stand-in's state)."""
    found: dict[str, FileState] = {}
    if not node.root.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(node.root):
        rel_dir = Path(dirpath).relative_to(node.root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d != "run"]
        for filename in filenames:
            path = Path(dirpath) / filename
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(rel_dir / filename)] = FileState(
                digest, st.st_mode & 0o7777, st.st_ino, st.st_mtime_ns
            )
    return found


def dir_modes(node: Node) -> list[int]:
    """The modes of ROOT and the directories under it (except ``run/``), distinct and sorted.

    The spec fixes the files' mode only; how a tool creates the directories it needs is
    reported, not judged.
    """
    if not node.root.exists():
        return []
    modes = {node.root.stat().st_mode & 0o7777}
    for dirpath, dirnames, _ in os.walk(node.root):
        if Path(dirpath) == node.root:
            dirnames[:] = [d for d in dirnames if d != "run"]
        modes.update((Path(dirpath) / d).stat().st_mode & 0o7777 for d in dirnames)
    return sorted(modes)


def expected(node: Node) -> dict[str, tuple[str, int]]:
    """What :func:`snapshot` must show after a run: content hash and mode by path."""
    want = {
        rel: (hashlib.sha256(data).hexdigest(), MODE)
        for rel, data in render(node.name, node.vars).items()
    }
    want[f"images/{IMAGE_DIGEST}"] = (IMAGE_DIGEST.removeprefix("sha256:"), MODE)
    return want


def problems(node: Node, state: dict[str, FileState]) -> list[str]:
    """How the host's ROOT differs from what it should be (empty when it is right)."""
    want = expected(node)
    out = [f"{node.name}: {rel} missing" for rel in want if rel not in state]
    for rel, fs in state.items():
        if rel not in want:
            out.append(f"{node.name}: unexpected file {rel}")
        elif want[rel][0] != fs.sha256:
            out.append(f"{node.name}: {rel} has other content")
        elif want[rel][1] != fs.mode:
            out.append(f"{node.name}: {rel} has mode {fs.mode:o}, not {MODE:o}")
    return out


def establish(hosts: list[Node]) -> None:
    """Put right every host whose ROOT is not what a correct run leaves (others are untouched).

    Warm and drift runs start from the state the previous run left; after a failed run this
    rebuilds it, so the next contender is not judged on another one's mistake. Directories get
    mode 0755 (what a shell's ``mkdir -p`` and the peers leave), so a tool that would set that
    mode is not made to change what another tool created otherwise.
    """
    for node in hosts:
        for dirpath, dirnames, _ in os.walk(node.root):
            if Path(dirpath) == node.root:
                dirnames[:] = [d for d in dirnames if d != "run"]
            Path(dirpath).chmod(DIR_MODE)
        state = snapshot(node)
        if not problems(node, state):
            continue
        for rel in state:
            (node.root / rel).unlink()
        files = render(node.name, node.vars)
        files[f"images/{IMAGE_DIGEST}"] = _blob_bytes()
        for rel, data in files.items():
            path = node.root / rel
            path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(MODE)


def tree_hash(states: dict[str, dict[str, FileState]]) -> str:
    """One hash over every host's paths, contents and modes (inodes and times left out)."""
    h = hashlib.sha256()
    for host in sorted(states):
        for rel in sorted(states[host]):
            fs = states[host][rel]
            h.update(f"{host}/{rel} {fs.sha256} {fs.mode:o}\n".encode())
    return h.hexdigest()


def restarts(node: Node) -> int:
    """How many times the kubelet stand-in of this host was restarted since ROOT was made."""
    log = node.root / "run" / "restarts"
    return len(log.read_text().splitlines()) if log.exists() else 0


def drift(node: Node) -> None:
    """Change one file the way a hand edit would (in place, same inode)."""
    with (node.root / CONTAINERD).open("a") as fh:
        fh.write("# edited by hand\n")


def stop_kubelet(node: Node) -> None:
    """Stop this host's kubelet stand-in, by the pid in its pidfile, if it is still ours."""
    pidfile = node.root / "run" / "kubelet.pid"
    try:
        pid = int(pidfile.read_text().strip())
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if f"FLEET_KUBELET_ROOT={node.root}".encode() in environ:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def wipe(hosts: list[Node]) -> None:
    """Back to nothing done: stand-ins stopped, every ROOT and the toolkit's backups removed."""
    for node in hosts:
        stop_kubelet(node)
        shutil.rmtree(node.root, ignore_errors=True)
    shutil.rmtree(BACKUPS, ignore_errors=True)
