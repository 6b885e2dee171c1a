"""Run the toolkit's tasks as a user would (``inv ...``) and look at lab hosts from outside.

Observations go through ``docker exec`` into the host's container, independent of the toolkit's
own SSH layer, so a test never trusts the code it checks to report on itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INV = str(REPO / ".venv" / "bin" / "inv")
NODES = ("node1", "node2", "node3", "node4")
REGISTRY = "127.0.1.2:5000"


def inv(*args: str, ok: bool = True, env: dict[str, str] | None = None, timeout: float = 600):
    """Run ``inv ARGS`` from the repository root; assert its exit status when ``ok`` is set."""
    result = subprocess.run(
        [INV, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if ok is not None:
        assert (result.returncode == 0) == ok, (
            f"inv {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result


def inv_json(*args: str, ok: bool = True, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a task with ``--json`` and return what it printed."""
    out = inv(*args, "--json", ok=ok, env=env).stdout
    return json.loads(out[out.index("{") :])


def by_host(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in results["hosts"]}


def on(host: str, command: str, check: bool = True) -> str:
    """Run ``command`` as root inside the lab host's container."""
    result = subprocess.run(
        ["docker", "exec", f"regtk-lab-{host}", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"{host}: {command}: {result.stderr}"
    return result.stdout


def kubelet_state(host: str) -> tuple[str, str]:
    """(MainPID, the running kubelet's command line)."""
    pid = on(host, "systemctl show -p MainPID --value kubelet").strip()
    cmdline = on(host, f"tr '\\0' ' ' < /proc/{pid}/cmdline", check=False)
    return pid, cmdline


def snapshot(host: str, paths: list[str]) -> dict[str, str]:
    """Checksums of files and the start times of the services that read them."""
    state = {}
    for path in paths:
        out = on(host, f"cat {path} 2>/dev/null || echo ABSENT", check=False)
        state[path] = hashlib.sha256(out.encode()).hexdigest()
    for unit in ("containerd", "docker", "kubelet"):
        state[unit] = on(host, f"systemctl show -p ActiveEnterTimestamp,MainPID {unit}", False)
    return state


def lab_inventory(tmp_path: Path, extra: str = "", **replace: str) -> Path:
    """A copy of hosts.yml with absolute paths, edited by plain text replacements."""
    text = (REPO / "hosts.yml").read_text().replace(".lab/", f"{REPO}/.lab/")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "hosts.yml"
    path.write_text(text + extra)
    return path
