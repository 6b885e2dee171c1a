"""One timed, checked run of one contender, and a cell of runs (one tool, one N, one scenario).

A run is started through :mod:`bench.nodeprep.measure` (wall time and the CPU of the tool's
whole process tree), with the sshd logs and the sshd listeners' CPU read before and after. It is
then checked: the tool exited 0 in time; every host's ROOT holds exactly what it should (content
and mode); the kubelet stand-in restarted exactly on the hosts whose files had to change; a warm
run wrote nothing (inode and mtime of every file unchanged), and a drift run touched no host
that had not drifted; the tool's own report names the same hosts as changed. A run that fails a
check counts as failed, whatever its time.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.nodeprep import work
from bench.nodeprep.contenders import Contender
from bench.nodeprep.hosts import SshdFleet

SCENARIOS = ("cold", "warm", "drift")


@dataclass
class Run:
    wall: float
    cpu: float
    maxrss_mb: float
    sshd_cpu: float
    connections: list[int]
    sessions: list[int]
    changed_hosts: int
    tree: str
    dir_modes: list[int]
    problems: list[str]
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Cell:
    n: int
    tool: str
    scenario: str
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs)

    @property
    def good(self) -> list[Run]:
        return [r for r in self.runs if r.ok]

    def median(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.good]
        return statistics.median(values) if values else None

    def median_extra(self, name: str) -> float | None:
        values = [r.extra[name] for r in self.good if name in r.extra]
        return statistics.median(values) if values else None

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "tool": self.tool,
            "scenario": self.scenario,
            "skipped": self.skipped,
            "runs": [asdict(r) for r in self.runs],
        }


def drifted(hosts: list[work.Node]) -> list[work.Node]:
    """One host in ten (at least one): the hosts whose file the drift scenario edits."""
    return hosts[::10]


class Bench:
    def __init__(self, fleet: SshdFleet, run_dir: Path, timeout: float) -> None:
        self.fleet = fleet
        self.run_dir = run_dir
        self.timeout = timeout
        self.counter = 0

    def run(self, contender: Contender, hosts: list[work.Node], scenario: str) -> Run:
        if scenario == "cold":
            work.wipe(hosts)
            should_change = {n.name for n in hosts}
        elif scenario == "drift":
            edited = drifted(hosts)
            for node in edited:
                work.drift(node)
            should_change = {n.name for n in edited}
        else:
            should_change = set()
        before = {n.name: work.snapshot(n) for n in hosts}
        restarts_before = {n.name: work.restarts(n) for n in hosts}
        self.counter += 1
        launch = contender.launch(hosts, self.counter)
        stdout = self.run_dir / f"run{self.counter}.out"
        stderr = self.run_dir / f"run{self.counter}.err"
        marks = self.fleet.marks()
        sshd_cpu = self.fleet.cpu_seconds()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=str(work.BASE / ".pycache"), **launch.env)
        measured = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.nodeprep.measure",
                "--stdout",
                str(stdout),
                "--stderr",
                str(stderr),
                "--timeout",
                str(self.timeout),
                *(["--cwd", str(launch.cwd)] if launch.cwd else []),
                "--",
                *launch.argv,
            ],
            env=env,
            cwd=str(Path(__file__).resolve().parents[2]),
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(measured.stdout)
        sshd_cpu = self.fleet.cpu_seconds() - sshd_cpu
        counts = self.fleet.counts(marks, hosts)
        found: list[str] = []
        states: dict[str, dict[str, work.FileState]] = {}
        modes: set[int] = set()
        if figures["timed_out"]:
            found.append(f"timed out after {self.timeout:.0f}s")
        elif figures["rc"] != 0:
            tail = stderr.read_text(errors="replace")[-600:] or stdout.read_text()[-600:]
            found.append(f"exit {figures['rc']}: {tail.strip()}")
        for node in hosts:
            after = states[node.name] = work.snapshot(node)
            modes.update(work.dir_modes(node))
            found += work.problems(node, after)
            restarted = work.restarts(node) - restarts_before[node.name]
            want = 1 if node.name in should_change else 0
            if restarted != want:
                found.append(f"{node.name}: kubelet restarted {restarted} times, not {want}")
            if node.name not in should_change:
                moved = [
                    rel
                    for rel, fs in after.items()
                    if rel in before[node.name]
                    and (fs.inode, fs.mtime_ns)
                    != (before[node.name][rel].inode, before[node.name][rel].mtime_ns)
                ]
                if moved:
                    found.append(f"{node.name}: rewrote {', '.join(moved)} with nothing to change")
        text = stdout.read_text(errors="replace")
        statuses = None
        extra: dict[str, float] = {}
        if figures["rc"] == 0:
            try:
                statuses = contender.statuses(text)
                extra = contender.extra(text)
            except (ValueError, KeyError) as exc:
                found.append(f"could not read the tool's own report: {exc}")
        if statuses is not None:
            said = {h for h, s in statuses.items() if s == "changed"}
            if said != should_change:
                found.append(
                    f"the tool reported {len(said)} host(s) changed, {len(should_change)} did"
                )
        return Run(
            wall=figures["wall"],
            cpu=figures["cpu_user"] + figures["cpu_sys"],
            maxrss_mb=figures["maxrss_mb"],
            sshd_cpu=sshd_cpu,
            connections=[counts[n.name].connections for n in hosts],
            sessions=[counts[n.name].sessions for n in hosts],
            changed_hosts=len(should_change),
            tree=work.tree_hash(states)[:12],
            dir_modes=sorted(modes),
            problems=found[:20],
            extra=extra,
        )

    def cells(
        self, entrants: list[Contender], hosts: list[work.Node], runs: int, budget: float
    ) -> list[Cell]:
        """Cold, warm and drift cells for every contender at one N, their runs interleaved.

        Within a scenario, run i goes through the contenders in an order rotated by i, so a
        burst of load from elsewhere on the machine falls on all of them alike. A cell gets
        ``runs`` runs, fewer once it has used ``budget`` seconds (at least one), and stops at its
        first failed run. Warm and drift runs start from the state the previous run left (the
        same for every tool when it passed; rebuilt by the bench when it did not) and are
        skipped for a contender whose cold runs failed.
        """
        cells = {(c.label, s): Cell(len(hosts), c.label, s) for c in entrants for s in SCENARIOS}
        spent = dict.fromkeys(cells, 0.0)
        for scenario in SCENARIOS:
            for index in range(runs):
                shift = index % len(entrants)
                for contender in entrants[shift:] + entrants[:shift]:
                    key = (contender.label, scenario)
                    cell = cells[key]
                    if scenario != "cold" and not cells[(contender.label, "cold")].ok:
                        cell.skipped = "the cold runs failed"
                        continue
                    if (cell.runs and not cell.runs[-1].ok) or (index and spent[key] > budget):
                        continue
                    if scenario != "cold":
                        work.establish(hosts)
                    run = self.run(contender, hosts, scenario)
                    spent[key] += run.wall
                    cell.runs.append(run)
                    status = "ok" if run.ok else "FAILED: " + "; ".join(run.problems[:3])
                    print(
                        f"  N={len(hosts):<3} {contender.label:<8} {scenario:<5} "
                        f"wall {run.wall:7.3f}s cpu {run.cpu:7.3f}s {status}",
                        file=sys.stderr,
                        flush=True,
                    )
        return [cells[(c.label, s)] for c in entrants for s in SCENARIOS]
