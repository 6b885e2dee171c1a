"""The contenders: how each one's inventory and settings are written, how it is started, and
how its own report says which hosts it changed.

Labels: ``T`` the toolkit (an Invoke fleet task on ``fabfile.core``), ``F`` the floor (bare
paramiko), ``A*`` tuned ansible-playbook (linear; ``A*free`` with the free strategy), ``P``
pyinfra with its default parallelism (``P-nowait`` adds ``--no-wait``, which lifts its per-operation
barrier).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from bench.nodeprep import peers, work
from bench.nodeprep.hosts import SshdFleet

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


@dataclass
class Launch:
    """How to start one run of a contender."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


class Contender:
    label = ""
    title = ""

    def __init__(self, fleet: SshdFleet, run_dir: Path) -> None:
        self.fleet = fleet
        self.run_dir = run_dir

    def setup(self, hosts: list[work.Node]) -> None:
        """Write this contender's inventory and settings for ``hosts``."""

    def launch(self, hosts: list[work.Node], run: int) -> Launch:
        raise NotImplementedError

    def statuses(self, stdout: str) -> dict[str, str] | None:
        """``changed``, ``unchanged`` or ``failed`` by host, from the tool's own report if any."""
        return None

    def extra(self, stdout: str) -> dict[str, float]:
        """Figures the tool reports about itself (the toolkit: time inside ``run_hosts``)."""
        return {}


class Toolkit(Contender):
    label = "T"
    title = "toolkit: Invoke fleet task on fabfile.core (Connector, Probe, ensure_files)"

    def __init__(self, fleet: SshdFleet, run_dir: Path, parallel: int | None = None) -> None:
        super().__init__(fleet, run_dir)
        self.parallel = parallel
        if parallel is not None:
            self.label = f"T-p{parallel}"
            self.title = f"toolkit with --parallel {parallel}"

    def setup(self, hosts: list[work.Node]) -> None:
        lines = [
            "defaults:",
            "  user: root",
            f"  key_file: {self.fleet.key_file}",
            f"  known_hosts: {self.fleet.known_hosts}",
            "vars:",
            *(f'  {k}: "{v}"' for k, v in work.common_vars().items()),
            "hosts:",
        ]
        for node in hosts:
            lines += [f"  {node.name}:", f"    address: {node.address}", "    vars:"]
            lines += [f'      {k}: "{v}"' for k, v in node.vars.items()]
        (self.run_dir / "toolkit-hosts.yml").write_text("\n".join(lines) + "\n")

    def launch(self, hosts: list[work.Node], run: int) -> Launch:
        argv = [
            str(REPO / ".venv" / "bin" / "inv"),
            "-r",
            str(HERE),
            "-c",
            "toolkit_task",
            "--write-pyc",
            "bench-prepare",
            "-i",
            str(self.run_dir / "toolkit-hosts.yml"),
            "--json",
        ]
        if self.parallel is not None:
            argv += ["--parallel", str(self.parallel)]
        return Launch(argv, {"PYTHONPATH": str(REPO)}, REPO)

    def statuses(self, stdout: str) -> dict[str, str] | None:
        doc = json.loads(stdout)
        return {h["host"]: h["status"] for h in doc["hosts"]}

    def extra(self, stdout: str) -> dict[str, float]:
        bench = json.loads(stdout)["bench"]
        return {"engine_s": bench["engine_s"], "commands": bench["commands"]}


class Floor(Contender):
    label = "F"
    title = "floor: paramiko + TCP_NODELAY, 1 connection and 1 command per host, 64 workers"

    def setup(self, hosts: list[work.Node]) -> None:
        inventory = {
            "key_file": str(self.fleet.key_file),
            "known_hosts": str(self.fleet.known_hosts),
            "hosts": [
                {"name": n.name, "address": n.address, "vars": {**work.common_vars(), **n.vars}}
                for n in hosts
            ],
        }
        (self.run_dir / "floor-hosts.json").write_text(json.dumps(inventory, indent=1))

    def launch(self, hosts: list[work.Node], run: int) -> Launch:
        argv = [
            str(peers.python("floor")),
            "-m",
            "bench.nodeprep.contenders.floor",
            "--inventory",
            str(self.run_dir / "floor-hosts.json"),
        ]
        return Launch(argv, {"PYTHONPATH": str(REPO)}, REPO)

    def statuses(self, stdout: str) -> dict[str, str] | None:
        return dict(json.loads(stdout)["hosts"])

    def extra(self, stdout: str) -> dict[str, float]:
        return {"engine_s": json.loads(stdout)["engine_s"]}


_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


class Ansible(Contender):
    label = "A*"
    title = "ansible-playbook tuned: forks=N, pipelining, ControlPersist 60s, no facts, linear"
    strategy = "linear"

    def __init__(self, fleet: SshdFleet, run_dir: Path, strategy: str = "linear") -> None:
        super().__init__(fleet, run_dir)
        self.strategy = strategy
        if strategy != "linear":
            self.label = f"A*{strategy}"
            self.title = self.title.replace("linear", f"strategy {strategy}")

    def setup(self, hosts: list[work.Node]) -> None:
        common = {
            **work.common_vars(),
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.fleet.key_file),
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        lines = ["all:", "  vars:", *(f'    {k}: "{v}"' for k, v in common.items())]
        lines.append("  hosts:")
        for node in hosts:
            lines += [f"    {node.name}:", f"      ansible_host: {node.address}"]
            lines += [f'      {k}: "{v}"' for k, v in node.vars.items()]
        (self.run_dir / "ansible-hosts.yml").write_text("\n".join(lines) + "\n")
        ssh_args = (
            "-F /dev/null -o ControlMaster=auto -o ControlPersist=60s "
            f"-o UserKnownHostsFile={self.fleet.known_hosts} -o StrictHostKeyChecking=yes "
            "-o IdentitiesOnly=yes"
        )
        config = [
            "[defaults]",
            f"forks = {len(hosts)}",
            f"strategy = {self.strategy}",
            "host_key_checking = True",
            "gathering = explicit",
            "retry_files_enabled = False",
            f"remote_tmp = {work.BASE}/.ansible-remote",
            f"local_tmp = {self.run_dir}/ansible-local",
            "",
            "[ssh_connection]",
            "pipelining = True",
            f"ssh_args = {ssh_args}",
        ]
        (self.run_dir / "ansible.cfg").write_text("\n".join(config) + "\n")

    def launch(self, hosts: list[work.Node], run: int) -> Launch:
        control = self.run_dir / f"cp{run}"
        control.mkdir(exist_ok=True)
        argv = [
            str(peers.tool("peers", "ansible-playbook")),
            "-i",
            str(self.run_dir / "ansible-hosts.yml"),
            "-e",
            f"files={work.FILES}",
            str(HERE / "playbook.yml"),
        ]
        env = {
            "ANSIBLE_CONFIG": str(self.run_dir / "ansible.cfg"),
            "ANSIBLE_HOME": str(self.run_dir / "ansible-home"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
            "ANSIBLE_NOCOLOR": "1",
        }
        return Launch(argv, env, self.run_dir)

    def statuses(self, stdout: str) -> dict[str, str] | None:
        found: dict[str, str] = {}
        for line in stdout.splitlines():
            match = _RECAP.match(line)
            if match:
                name, _, changed, unreachable, failed = match.groups()
                bad = int(unreachable) or int(failed)
                found[name] = "failed" if bad else "changed" if int(changed) else "unchanged"
        return found or None


class Pyinfra(Contender):
    label = "P"
    title = "pyinfra, default parallelism"

    def __init__(self, fleet: SshdFleet, run_dir: Path, no_wait: bool = False) -> None:
        super().__init__(fleet, run_dir)
        self.no_wait = no_wait
        if no_wait:
            self.label = "P-nowait"
            self.title = "pyinfra --no-wait (no barrier between operations)"

    def setup(self, hosts: list[work.Node]) -> None:
        common = {
            **work.common_vars(),
            "files": str(work.FILES),
            "ssh_user": "root",
            "ssh_key": str(self.fleet.key_file),
            "ssh_known_hosts_file": str(self.fleet.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "ssh_look_for_keys": False,
            "ssh_allow_agent": False,
        }
        entries = [(n.name, {"ssh_hostname": n.address, **common, **n.vars}) for n in hosts]
        text = (
            '"""pyinfra inventory written by the node-preparation bench."""\n\n'
            f"hosts = {entries!r}\n"
        )
        (self.run_dir / "pyinfra_hosts.py").write_text(text)

    def launch(self, hosts: list[work.Node], run: int) -> Launch:
        argv = [str(peers.tool("peers", "pyinfra")), "-y"]
        if self.no_wait:
            argv.append("--no-wait")
        argv += [str(self.run_dir / "pyinfra_hosts.py"), str(HERE / "pyinfra_deploy.py")]
        return Launch(argv, {}, self.run_dir)


def make(label: str, fleet: SshdFleet, runs_dir: Path) -> Contender:
    """The contender named by ``label`` (T, T-p64, F, A*, A*free, P, P-nowait).

    Its inventory, settings and outputs go to a directory of its own under ``runs_dir``.
    """
    run_dir = runs_dir / label.replace("*", "-tuned")
    run_dir.mkdir(parents=True, exist_ok=True)
    if label == "T":
        return Toolkit(fleet, run_dir)
    if label.startswith("T-p"):
        return Toolkit(fleet, run_dir, int(label[3:]))
    if label == "F":
        return Floor(fleet, run_dir)
    if label in ("A*", "A"):
        return Ansible(fleet, run_dir)
    if label in ("A*free", "Afree"):
        return Ansible(fleet, run_dir, "free")
    if label == "P":
        return Pyinfra(fleet, run_dir)
    if label == "P-nowait":
        return Pyinfra(fleet, run_dir, no_wait=True)
    raise ValueError(f"unknown contender {label!r}; known: T, T-p<N>, F, A*, A*free, P, P-nowait")
