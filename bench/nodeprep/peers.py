"""The peers' own environments under ``bench/.env/``, never the toolkit's ``.venv``.

Two virtual environments, because pyinfra 3.10 requires paramiko < 5 while the floor must use
the paramiko the toolkit uses (5.1.0), so that T and F differ only in what is built on top:

* ``bench/.env/peers``: ansible-core and pyinfra (with the paramiko pyinfra brings);
* ``bench/.env/floor``: paramiko and jinja2 at the toolkit's versions, and py-spy for profiles.

Each is made once with the Python running the bench and filled by package name at pinned
versions; an environment whose pins changed is made anew.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENV_ROOT = Path(__file__).resolve().parents[1] / ".env"

PINS: dict[str, list[str]] = {
    "peers": ["ansible-core==2.17.14", "pyinfra==3.10.0"],
    "floor": ["paramiko==5.1.0", "jinja2==3.1.6", "py-spy==0.4.3"],
}


def env_dir(name: str) -> Path:
    return ENV_ROOT / name


def python(name: str) -> Path:
    return env_dir(name) / "bin" / "python"


def tool(name: str, executable: str) -> Path:
    return env_dir(name) / "bin" / executable


def ensure(name: str) -> Path:
    """Make (or re-make) the environment ``name`` with its pins; return its directory."""
    directory = env_dir(name)
    stamp = directory / "bench-pins.txt"
    wanted = "\n".join(PINS[name]) + "\n"
    if stamp.exists() and stamp.read_text() == wanted and python(name).exists():
        return directory
    print(f"bench: installing {', '.join(PINS[name])} into {directory}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(directory)], check=True)
    subprocess.run(
        [str(python(name)), "-m", "pip", "install", "--quiet", *PINS[name]],
        check=True,
    )
    stamp.write_text(wanted)
    return directory


def installed(name: str) -> dict[str, str]:
    """Package versions in the environment, from pip's own list."""
    out = subprocess.run(
        [str(python(name)), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("==", 1) for line in out.splitlines() if "==" in line)
