"""Bringing each lab host up: create its container, copy its files in, boot it, finish it.

A host's container carries a label with the hash of everything it was made from (image, files,
run options). ``ensure`` keeps a container whose hash matches (starting it if an earlier run left
it stopped) and replaces one whose hash differs, so a second run changes nothing.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import time

from fabfile.lab import credentials, hostfiles, images, paths, rootfs
from fabfile.lab.commands import LabError, docker, run
from fabfile.lab.hosts import SSH_PORT, LabHost
from fabfile.lab.outcome import Outcome

SPEC_LABEL = "regtk-lab.spec"
BOOT_TIMEOUT = 120.0
_FINISHED = "/etc/regtk-lab-finished"

# The flags that boot systemd in a container here; host networking with one address a host.
_RUN_OPTIONS = [
    "--network=host",
    "--cap-add=SYS_ADMIN",
    "--security-opt=seccomp=unconfined",
    "--security-opt=apparmor=unconfined",
    "--tmpfs=/run",
    "--tmpfs=/run/lock",
    "--volume=/sys/fs/cgroup:/sys/fs/cgroup:ro",
    # systemd shuts down cleanly on this signal.
    "--stop-signal=SIGRTMIN+3",
]
# An engine's storage must not sit on the container's overlay root: give it a volume. A Docker
# engine inside also needs NET_ADMIN, or every `docker run` fails with "failed to create default
# sandbox: operation not permitted" (checked here, even with --network host).
_ENGINE_VOLUMES = {
    "docker": ["--cap-add=NET_ADMIN", "--volume=/var/lib/docker", "--volume=/var/lib/containerd"],
    "containerd": ["--volume=/var/lib/containerd"],
}


def container_state(name: str) -> tuple[str, str | None]:
    """The container's state (``running``, ``exited``, ..., or ``absent``) and its spec label."""
    out = docker(
        "container",
        "inspect",
        "--format",
        '{{.State.Status}} {{index .Config.Labels "' + SPEC_LABEL + '"}}',
        name,
        check=False,
    )
    if not out:
        return "absent", None
    state, _, spec = out.partition(" ")
    return state, spec or None


def ensure(host: LabHost, image: str, client_public_key: str) -> list[Outcome]:
    """Make ``host`` run from ``image`` with its files; return what changed."""
    files = hostfiles.archive(host, client_public_key)
    options = [*_RUN_OPTIONS, *_ENGINE_VOLUMES.get(host.runtime or "", [])]
    spec = rootfs.digest_of(image, files, json.dumps(options))
    state, found = container_state(host.container)

    outcomes: list[Outcome] = []
    if state != "absent" and found != spec:
        docker("container", "rm", "--force", "--volumes", host.container)
        detail = f"removed: made from other inputs (spec {found}, now {spec})"
        outcomes.append(Outcome(host.name, True, detail))
        state = "absent"
    if state == "absent":
        _create(host, image, options, spec, files)
        done = f"created at {host.address}"
    elif state != "running":
        docker("container", "start", host.container)
        done = f"started at {host.address} (was {state})"
    else:
        done = ""
    _boot(host)
    if not _finished(host):
        _finish(host)
        done = done or f"finished setting up at {host.address}"
    outcomes.append(Outcome(host.name, bool(done), done or f"running at {host.address}"))
    if host.role == "registry":
        outcomes.append(_load_registry_image(host))
    return outcomes


def host_keys(host: LabHost) -> list[str]:
    """The host's public SSH host keys as ``"type base64"`` strings."""
    out = exec_in(host, ["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"])
    keys = [" ".join(line.split()[:2]) for line in out.splitlines() if line.strip()]
    if not keys:
        raise LabError(f"{host.name}: no SSH host key in /etc/ssh; see `journalctl -u ssh` there")
    return keys


def exec_in(host: LabHost, argv: list[str], input: bytes | None = None) -> str:
    """Run ``argv`` inside the host's container and return its stdout."""
    flags = ["--interactive"] if input is not None else []
    return docker("exec", *flags, host.container, *argv, input=input, timeout=BOOT_TIMEOUT)


def _create(host: LabHost, image: str, options: list[str], spec: str, files: bytes) -> None:
    docker(
        "container",
        "create",
        f"--name={host.container}",
        f"--label={images.LABEL}=host",
        f"--label={SPEC_LABEL}={spec}",
        *options,
        image,
    )
    docker("container", "cp", "-", f"{host.container}:/", input=files)
    docker("container", "start", host.container)


def _boot(host: LabHost) -> None:
    """Wait until systemd in the host reports ``running`` and sshd answers."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        done = run(
            ["docker", "exec", host.container, "systemctl", "is-system-running", "--wait"],
            check=False,
            timeout=BOOT_TIMEOUT,
        )
        state = done.stdout.decode().strip()
        if state in ("running", "degraded", "maintenance", "stopping"):
            break
        # systemd's bus is not up yet ("offline" or no answer): ask again shortly.
        time.sleep(0.2)
    if state != "running":
        failed = docker(
            "exec", host.container, "systemctl", "--failed", "--no-legend", "--plain", check=False
        )
        raise LabError(
            f"{host.name}: systemd reached {state or 'no state'} instead of running; failed "
            f"units: {failed or 'none listed'}; see `docker exec {host.container} journalctl -b`"
        )
    _wait_for_sshd(host)


def _wait_for_sshd(host: LabHost, wait: float = 30.0) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            with socket.create_connection((host.address, SSH_PORT), timeout=2):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise LabError(
                    f"{host.name}: sshd does not answer on {host.address}:{SSH_PORT} ({exc}); see "
                    f"`docker exec {host.container} journalctl -u ssh`"
                ) from exc
            time.sleep(0.2)


def _finished(host: LabHost) -> bool:
    done = run(["docker", "exec", host.container, "test", "-e", _FINISHED], check=False)
    return done.returncode == 0


def _finish(host: LabHost) -> None:
    """Steps that need the booted host, done once a container; a marker file records them."""
    if host.user != "root":
        _add_login(host)
    exec_in(host, ["touch", _FINISHED])


def _add_login(host: LabHost) -> None:
    user = shlex.quote(host.user)
    ssh_dir = shlex.quote(f"/home/{host.user}/.ssh")
    script = (
        f"(id -u {user} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {user}) && "
        f"install -d -m 700 -o {user} -g {user} {ssh_dir} && "
        f"install -m 600 -o {user} -g {user} /root/.ssh/authorized_keys {ssh_dir}/"
    )
    exec_in(host, ["sh", "-c", script])
    password, _ = credentials.password(paths.DEPLOY_PASSWORD)
    exec_in(host, ["chpasswd"], input=f"{host.user}:{password}\n".encode())


def _load_registry_image(host: LabHost) -> Outcome:
    """Load the lab's ``registry:2`` image into the host's own engine unless it is there."""
    want = images.image_id_of(images.REGISTRY_TAGS[0])
    item = f"{host.name} {images.REGISTRY_TAGS[0]}"
    have = [
        docker(
            "exec",
            host.container,
            "docker",
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            tag,
            check=False,
        )
        for tag in images.REGISTRY_TAGS
    ]
    if all(found == want for found in have):
        return Outcome(item, False, "loaded in its engine")
    save = subprocess.Popen(
        ["docker", "save", *images.REGISTRY_TAGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    load = subprocess.run(
        ["docker", "exec", "--interactive", host.container, "docker", "load"],
        stdin=save.stdout,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if save.stdout is not None:
        save.stdout.close()
    save.wait(timeout=60)
    if save.returncode != 0 or load.returncode != 0:
        said = (load.stderr or b"").decode(errors="replace").strip()
        raise LabError(f"{host.name}: loading {item} into its engine failed: {said}")
    return Outcome(item, True, "loaded into its engine")
