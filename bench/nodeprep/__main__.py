"""Bench A, node preparation: the toolkit against tuned Ansible, pyinfra and a bare-paramiko floor.

    .venv/bin/python -m bench.nodeprep [--sizes 1,10,20,50,100] [--runs 5] [--runs-large 3]
        [--budget 150] [--tools T,F,A*,P] [--extras A*free,P-nowait,T-p64] [--extras-at 20]
        [--realistic-shell] [--out bench/nodeprep/RESULTS.md]

Makes the peers' environments under bench/.env/ (first run only), starts one sshd per host on
127.0.6.1..N, runs every contender cold, warm and drift at every N (each run timed and
checked), measures the per-command latency of the toolkit's sessions, writes RESULTS.md (and
the raw runs to bench/results/), and stops every sshd and kubelet stand-in it started, also on
failure or interrupt. Needs root: each sshd binds port 22 of its address and the contenders log
in as root. Not a test: nothing runs it in CI.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from bench.nodeprep import contenders, peers, report, work
from bench.nodeprep.bench import Bench, Cell
from bench.nodeprep.hosts import SshdFleet

REPO = Path(__file__).resolve().parents[2]
WORKDIR = work.BASE / ".work"

NOTES = [
    "Each host is its own sshd (OpenSSH, `UsePAM no`, `MaxStartups 200:30:400`, `MaxSessions "
    "64`, `LogLevel VERBOSE`, internal-sftp) on 127.0.6.i:22, all on this machine: the "
    "contenders and every sshd share the same 2 cores, so sshd CPU is part of every wall time.",
    "Login is as root with the bench's key. Root's login shell is bash, which sources `.bashrc` "
    "(here `pyenv init`, ~100 ms) for every command that comes over SSH; each sshd therefore "
    "sets `HOME` to an empty directory (`SetEnv`), so every tool's every command starts bash "
    "with no rc file and all tools pay the same. `--realistic-shell` drops that.",
    "Same work in every tool: under /tmp/regtk-bench/<host>/ three files (containerd "
    "config.toml ~2 KB templated with host variables, kubelet config ~1 KB, sysctl file ~200 B; "
    "mode 0644; written only when the content differs), `images/<digest>` ensured by the shared "
    "`fleet-pull` script (a local copy of a 64 KiB blob checked with sha256sum), and the shared "
    "`fleet-kubelet restart` stub (stops the stand-in `sleep infinity`, starts a new one) only "
    "when a file changed.",
    "Scenarios: cold = every ROOT removed before each run; warm = nothing to change; drift = "
    "the containerd config of one host in ten (at least one) edited in place before each run. "
    "At each N the contenders' runs are interleaved (run i of every tool, in an order rotated "
    "by i); warm and drift start from the state the previous run left, whichever tool left it "
    "(the checks make it the same for all), with the directories set to 0755, the mode every "
    "peer leaves, so no tool is made to undo another's directory modes.",
    "Wall time: from start to exit of the tool's process (interpreter start and imports "
    "included; median of the runs). Tool CPU: user + system of the tool's whole process tree, "
    "including processes it leaves behind (Ansible's ControlPersist masters are stopped and "
    "reaped after each run by a subreaper wrapper). sshd CPU: what the sshd listeners' "
    "children used during the run (connections and the commands they ran).",
    "conns/host counts `Accepted publickey` and cmds/host `Starting session:` lines in each "
    "host's sshd log (a command, or an sftp subsystem), min–max over hosts and runs.",
    "Checks on every run (a run that fails one counts as failed): exit 0; every ROOT holds "
    "exactly the expected files with the expected content and mode; the kubelet stand-in "
    "restarted exactly once on each host that had to change and never elsewhere; a host with "
    "nothing to change had no file rewritten (inode and mtime unchanged); the tool's own report "
    "names the same hosts as changed (T, F, A*).",
    "Bytecode: the contenders run with `PYTHONPYCACHEPREFIX` under /tmp/regtk-bench and without "
    "`PYTHONDONTWRITEBYTECODE`, after one untimed warm-up run each, so no tool pays for "
    "compiling its modules; the toolkit's task runs with `inv --write-pyc`, because Invoke "
    "otherwise never writes bytecode for the task modules it loads.",
    "The page cache is warm; no CPU pinning (contenders and sshd share both cores).",
]


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"bench: stopped by signal {signum}; cleaning up")


def _machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        "unknown",
    )
    mem = next(
        line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "machine": f"{os.cpu_count()} CPUs ({model}), sha_ni "
        f"{'yes' if ' sha_ni' in cpuinfo else 'no'}, {int(mem) // 1024 // 1024} GiB",
        "kernel": platform.release(),
    }


def _git_state() -> str:
    """The commit of fabfile/core the toolkit ran from, and whether its files were modified."""

    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *argv], capture_output=True, text=True, check=True
        ).stdout.strip()

    commit = git("log", "-1", "--format=%h", "--", "fabfile/core")
    dirty = git("status", "--porcelain", "--", "fabfile/core")
    return f"fabfile/core at {commit}" + (" with uncommitted changes" if dirty else "")


def _versions() -> dict[str, str]:
    ssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    toolkit = {p: importlib.metadata.version(p) for p in ("paramiko", "fabric", "invoke")}
    peer = peers.installed("peers")
    floor = peers.installed("floor")
    return {
        "python": platform.python_version(),
        "toolkit source": _git_state(),
        "OpenSSH (client and sshd)": ssh,
        "toolkit (.venv)": ", ".join(f"{k} {v}" for k, v in toolkit.items())
        + f", cryptography {importlib.metadata.version('cryptography')}",
        "peers (bench/.env/peers)": f"ansible-core {peer.get('ansible-core')}, "
        f"pyinfra {peer.get('pyinfra')}, paramiko {peer.get('paramiko')} (pyinfra's), "
        f"gevent {peer.get('gevent')}",
        "floor (bench/.env/floor)": f"paramiko {floor.get('paramiko')}",
    }


def _latency(fleet: SshdFleet, run_dir: Path, host: work.Node) -> dict[str, dict[str, float]]:
    toolkit = contenders.make("T", fleet, run_dir)
    toolkit.setup([host])
    out = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "python"),
            "-m",
            "bench.nodeprep.latency",
            "--inventory",
            str(toolkit.run_dir / "toolkit-hosts.yml"),
            "--host",
            host.name,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, dict[str, float]] = json.loads(out)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,20,50,100")
    parser.add_argument("--runs", type=int, default=5, help="runs per cell up to N=20")
    parser.add_argument("--runs-large", type=int, default=3, help="runs per cell above N=20")
    parser.add_argument("--budget", type=float, default=150.0, help="seconds per cell (≥1 run)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--tools", default="T,F,A*,P")
    parser.add_argument("--extras", default="A*free,P-nowait,T-p64")
    parser.add_argument("--extras-at", default="20")
    parser.add_argument("--realistic-shell", action="store_true")
    parser.add_argument("--out", default=str(REPO / "bench" / "nodeprep" / "RESULTS.md"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root (sshd binds port 22; logins are as root)", file=sys.stderr)
        return 2
    sizes = sorted(int(s) for s in args.sizes.split(","))
    tools = [t for t in args.tools.split(",") if t]
    extras = [t for t in args.extras.split(",") if t]
    extras_at = {int(s) for s in args.extras_at.split(",") if s}
    all_hosts = work.nodes(max(sizes))

    peers.ensure("peers")
    peers.ensure("floor")
    signal.signal(signal.SIGTERM, _stop)
    shutil.rmtree(WORKDIR, ignore_errors=True)
    run_dir = WORKDIR / "runs"
    run_dir.mkdir(parents=True)
    work.wipe(all_hosts)
    work.install_fleet()
    fleet = SshdFleet(WORKDIR / "sshd", all_hosts, args.realistic_shell)
    bench = Bench(fleet, run_dir, args.timeout)
    cells: list[Cell] = []
    titles: dict[str, str] = {}
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        fleet.start()
        print("bench: per-command latency", file=sys.stderr)
        latency = _latency(fleet, run_dir, all_hosts[0])
        for label in dict.fromkeys(tools + extras):
            contender = contenders.make(label, fleet, run_dir)
            titles[contender.label] = contender.title
            contender.setup(all_hosts[:1])
            warmup = bench.run(contender, all_hosts[:1], "cold")
            print(f"bench: warm-up {label}: {warmup.wall:.2f}s", file=sys.stderr)
        for n in sizes:
            hosts = all_hosts[:n]
            entrants = [
                contenders.make(label, fleet, run_dir)
                for label in tools + (extras if n in extras_at else [])
            ]
            for contender in entrants:
                contender.setup(hosts)
            runs = args.runs if n <= 20 else args.runs_large
            cells += bench.cells(entrants, hosts, runs, args.budget)
    finally:
        work.wipe(all_hosts)
        fleet.stop()
    elapsed = time.monotonic() - started
    load_after = os.getloadavg()[0]
    now = datetime.datetime.now(datetime.UTC)
    raw = REPO / "bench" / "results" / f"nodeprep-{now:%Y%m%dT%H%M%S}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"latency": latency, "cells": [c.as_dict() for c in cells]}))
    command = ".venv/bin/python -m bench.nodeprep " + shlex.join(sys.argv[1:])
    ctx = report.Context(
        date=f"{now:%Y-%m-%d} (whole bench {elapsed / 60:.0f} min)",
        command=command.strip(),
        versions=_versions(),
        machine=_machine(),
        titles=titles,
        latency=latency,
        notes=[
            *NOTES,
            f"Machine load (1-min load average) when the bench started: {load_before:.1f}, "
            f"when it ended: {load_after:.1f}; other work on this shared machine adds noise.",
            *(["Realistic shell: root's rc files ran."] if args.realistic_shell else []),
        ],
    )
    report.write(Path(args.out), cells, sizes, list(dict.fromkeys(tools + extras)), ctx)
    shutil.rmtree(work.BASE, ignore_errors=True)
    print(f"bench: wrote {args.out} and {raw}", file=sys.stderr)
    failed = [c for c in cells if not c.ok and not c.skipped]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
