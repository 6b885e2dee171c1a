"""Copy benchmark: the toolkit's engine vs `skopeo copy --all` vs docker pull/tag/push.

    .venv/bin/python -m bench.copy.run [--runs 3] [--big-mb 512] [--out bench/copy/RESULTS.md]

Two `docker-registry` instances on 127.0.4.1 (SRC seeded by skopeo from a synthetic OCI layout,
DST emptied by a restart on fresh storage before every cold run). Docker takes part only when a
dockerd already answers; its images are removed afterwards. Every run is checked: a contender
whose destination digests differ from the source is reported as such, not timed as a success.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.copy.synth import SetImage, build_sets
from fabfile.registry.client import Endpoint, RegistryClient
from tests.registry.servers import Registry, start_registry

TAG = "1"


@dataclass
class Measure:
    wall_s: float
    rss_mb: float
    uploads: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    bytes_sent: int | None = None
    digests_ok: bool = True
    note: str = ""
    cpu_s: float = 0.0


CPU_USED: list[float] = []


def timed(command: list[str]) -> tuple[float, float, str]:
    """Run `command`; return wall seconds, its peak RSS in MB, and its stdout.

    Its user + system CPU seconds are appended to CPU_USED.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    CPU_USED.append(usage.ru_utime + usage.ru_stime)
    if process.returncode:
        raise RuntimeError(f"{command[:3]} failed: {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out.decode()


class Bench:
    def __init__(self, workdir: Path, images: list[SetImage]) -> None:
        self.workdir = workdir
        self.images = images
        self.src = start_registry(workdir / "src")
        self.dst: Registry | None = None
        self.generation = 0

    def fresh_dst(self) -> Registry:
        if self.dst:
            self.dst.stop()
            shutil.rmtree(self.dst.root)
        self.generation += 1
        self.dst = start_registry(self.workdir / f"dst{self.generation}")
        return self.dst

    def close(self) -> None:
        for registry in (self.src, self.dst):
            if registry:
                registry.stop()

    def log_mark(self) -> int:
        assert self.dst is not None
        return len(self.dst.access_log())

    def requests_since(self, mark: int) -> tuple[dict[str, int], int]:
        assert self.dst is not None
        counts: dict[str, int] = {}
        uploads = 0
        for line in self.dst.access_log()[mark:]:
            verb = line.split('"')[1].split()[0]
            counts[verb] = counts.get(verb, 0) + 1
            if verb in ("PUT", "PATCH") and "/blobs/uploads/" in line:
                uploads += 1
        return counts, uploads

    def digests_match(self, images: list[SetImage], prefix: str = "") -> bool:
        assert self.dst is not None
        with RegistryClient(Endpoint(self.dst.url)) as client:
            for image in images:
                head = client.head_manifest(f"{prefix}{image.name}", TAG)
                if head is None or head.digest != image.digest:
                    return False
        return True

    # -- contenders ----------------------------------------------------------------------------

    def toolkit(self, images: list[SetImage], prefix: str = "") -> Measure:
        assert self.dst is not None
        command = [sys.executable, "-m", "bench.copy.toolkit_copy", self.src.address]
        command += [self.dst.address, "--prefix", prefix, *[f"{i.name}:{TAG}" for i in images]]
        mark = self.log_mark()
        wall, rss, out = timed(command)
        requests, uploads = self.requests_since(mark)
        report = json.loads(out)
        sent = sum(r["bytes_sent"] for r in report["images"])
        ok = self.digests_match(images, f"{prefix}/" if prefix else "")
        note = f"engine {report['engine_s']:.2f} s"
        return Measure(wall, rss, uploads, requests, sent, ok, note)

    def skopeo(self, images: list[SetImage], prefix: str = "") -> Measure:
        assert self.dst is not None
        mark = self.log_mark()
        wall = rss = 0.0
        for image in images:
            target = f"{self.dst.address}/{prefix + '/' if prefix else ''}{image.name}:{TAG}"
            seconds, peak, _ = timed(
                ["skopeo", "copy", "--all", "--quiet", "--src-tls-verify=false",
                 "--dest-tls-verify=false", f"docker://{self.src.address}/{image.name}:{TAG}",
                 f"docker://{target}"]
            )  # fmt: skip
            wall += seconds
            rss = max(rss, peak)
        requests, uploads = self.requests_since(mark)
        ok = self.digests_match(images, f"{prefix}/" if prefix else "")
        return Measure(wall, rss, uploads, requests, None, ok)

    def docker(self, images: list[SetImage]) -> Measure:
        assert self.dst is not None
        mark = self.log_mark()
        wall = 0.0
        made: list[str] = []
        try:
            for image in images:
                source = f"{self.src.address}/{image.name}:{TAG}"
                target = f"{self.dst.address}/{image.name}:{TAG}"
                for command in (
                    ["docker", "pull", "-q", source],
                    ["docker", "tag", source, target],
                    ["docker", "push", "-q", target],
                ):
                    made.append(source if command[1] == "pull" else target)
                    wall += timed(command)[0]
        finally:
            subprocess.run(["docker", "rmi", "-f", *sorted(set(made))], capture_output=True)
        requests, uploads = self.requests_since(mark)
        ok = self.digests_match(images)
        return Measure(wall, 0.0, uploads, requests, None, ok, "RSS is in dockerd, not measured")


def docker_answers() -> bool:
    try:
        result = subprocess.run(["docker", "version"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def median(measures: list[Measure]) -> Measure:
    chosen = sorted(measures, key=lambda m: m.wall_s)[len(measures) // 2]
    if len(measures) > 1:
        runs = ", ".join(f"{m.wall_s:.2f}" for m in measures)
        chosen.note = f"{chosen.note}; runs {runs} s" if chosen.note else f"runs {runs} s"
    chosen.digests_ok = all(m.digests_ok for m in measures)
    chosen.rss_mb = max(m.rss_mb for m in measures)
    chosen.cpu_s = statistics.median(m.cpu_s for m in measures)
    return chosen


def versions() -> dict[str, str]:
    def first_line(command: list[str]) -> str:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return "not available"
        lines = (result.stdout or result.stderr).strip().splitlines()
        return lines[0] if lines else "not available"

    import httpx

    cpu = "unknown"
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and cpu == "unknown":
            cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line
    return {
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "skopeo": first_line(["skopeo", "--version"]),
        "registry": first_line(["/usr/bin/docker-registry", "--version"]),
        "docker": first_line(["docker", "info", "--format", "{{.ServerVersion}}"]),
        "machine": f"{os.cpu_count()} CPUs, {cpu}, sha_ni {'yes' if 'sha_ni' in flags else 'no'}",
        "kernel": platform.release(),
        "load average at the end (1, 5, 15 min)": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("bench/copy/RESULTS.md"))
    parser.add_argument("--no-docker", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="regtk-bench-copy-"))
    rows: list[tuple[str, str, Measure]] = []
    try:
        print("building synthetic images ...", flush=True)
        started = time.perf_counter()
        images = build_sets(workdir / "layout", args.big_mb)
        print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
        bench = Bench(workdir, images)
        for image in images:
            subprocess.run(
                ["skopeo", "copy", "--all", "--quiet", "--dest-tls-verify=false",
                 f"oci:{workdir / 'layout'}:{image.name}",
                 f"docker://{bench.src.address}/{image.name}:{TAG}"],
                check=True,
            )  # fmt: skip
        by_set = {s: [i for i in images if i.set_name == s] for s in ("S2", "S3", "S5")}
        with_docker = not args.no_docker and docker_answers()

        def cold(label: str, subset: list[SetImage],
                 runs: list[Callable[[list[SetImage]], Measure]], count: int) -> None:  # fmt: skip
            """Cold runs, contenders interleaved so that load changes hit them alike."""
            measures: dict[str, list[Measure]] = {run.__name__: [] for run in runs}
            for _ in range(count):
                for run in runs:
                    bench.fresh_dst()
                    CPU_USED.clear()
                    measure = run(subset)
                    measure.cpu_s = sum(CPU_USED)
                    measures[run.__name__].append(measure)
            for name, found in measures.items():
                rows.append((label, name, median(found)))
                print(f"  {label:34} {name:8} {rows[-1][2].wall_s:7.2f} s", flush=True)

        try:
            contenders = [bench.toolkit, bench.skopeo]
            scenarios = [
                ("cold S2 tooling (5 layers, 80 MB)", by_set["S2"]),
                (f"cold S3 big ({args.big_mb} MB layer)", by_set["S3"]),
                ("cold S5 2-platform index", by_set["S5"]),
                ("cold whole set S1-S5 (9 images)", images),
            ]
            for label, subset in scenarios:
                cold(label, subset, contenders, args.runs)

            def measured(run: Callable[..., Measure], *args: object, **kw: str) -> Measure:
                CPU_USED.clear()
                measure = run(*args, **kw)
                measure.cpu_s = sum(CPU_USED)
                return measure

            for contender in contenders:
                bench.fresh_dst()
                first = measured(contender, images)
                warm = median([measured(contender, images) for _ in range(args.runs)])
                share = 100 * warm.wall_s / first.wall_s
                warm.note = f"{warm.note}; first copy {first.wall_s:.2f} s, warm = {share:.1f} %"
                warm.note = warm.note.lstrip("; ")
                rows.append(("warm whole set (all present)", contender.__name__, warm))
                cross = measured(contender, images, prefix="copy2")
                rows.append(("whole set into a 2nd repository", contender.__name__, cross))
                print(f"  warm/cross {contender.__name__}: {warm.wall_s:.2f} s / "
                      f"{cross.wall_s:.2f} s", flush=True)  # fmt: skip
            # Docker last: its image removal keeps dockerd busy for a while afterwards.
            if with_docker:
                for label, subset in scenarios[:3]:
                    cold(label, subset, [bench.docker], 1)
        finally:
            bench.close()
        write_results(args.out, rows, versions(), args, images)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def write_results(
    out: Path,
    rows: list[tuple[str, str, Measure]],
    facts: dict[str, str],
    args: argparse.Namespace,
    images: list[SetImage],
) -> None:
    lines = [
        "# Copy benchmark results",
        "",
        f"Date: {datetime.date.today().isoformat()}. Command: `.venv/bin/python -m bench.copy.run"
        f" --runs {args.runs} --big-mb {args.big_mb}`.",
        "",
        *[f"- {key}: {value}" for key, value in facts.items()],
        "",
        "Both registries are `docker-registry` on 127.0.4.1 (filesystem storage, same disk, page"
        " cache warm). Wall time is the median of the runs listed in the notes; for skopeo and"
        " docker it is the sum of one command per image. Peak RSS is the largest of the"
        " contender's processes; CPU is user + system of the contender's own processes (for"
        " docker only the CLI; the daemon's work is not counted). `uploads` counts PUT/PATCH"
        " requests to `/blobs/uploads/` in the"
        " destination's access log (0 means no blob bytes were sent). `digests` checks every"
        " destination manifest digest against the source. For the toolkit, `engine` is the time"
        " spent inside `copy_images`; the rest of its wall time is interpreter start and imports"
        " (one process per scenario, where skopeo and docker run one process per image).",
        "",
        "| scenario | contender | wall s | CPU s | peak RSS MB | blob bytes sent | uploads"
        " | requests | digests | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, contender, m in rows:
        sent = "-" if m.bytes_sent is None else f"{m.bytes_sent:,}"
        requests = " ".join(f"{k} {v}" for k, v in sorted(m.requests.items()))
        rss = f"{m.rss_mb:.0f}" if m.rss_mb else "-"
        lines.append(
            f"| {scenario} | {contender} | {m.wall_s:.2f} | {m.cpu_s:.2f} | {rss} | {sent} |"
            f" {m.uploads} |"
            f" {requests} | {'same' if m.digests_ok else 'CHANGED'} | {m.note.strip()} |"
        )
    lines += ["", "## Against the targets", ""]
    by_key = {(scenario, contender): m for scenario, contender, m in rows}
    for scenario, contender, m in rows:
        if contender != "toolkit":
            continue
        other = by_key.get((scenario, "skopeo"))
        if other and scenario.startswith("cold"):
            lines.append(
                f"- {scenario}: toolkit {m.wall_s:.2f} s vs skopeo {other.wall_s:.2f} s"
                f" ({m.wall_s / other.wall_s:.2f}x); CPU {m.cpu_s:.2f} vs {other.cpu_s:.2f} s."
            )
        elif scenario.startswith("warm"):
            lines.append(f"- {scenario}: {m.note}, {m.uploads} uploads, {m.bytes_sent} blob bytes.")
        else:
            lines.append(f"- {scenario}: {m.uploads} uploads, {m.bytes_sent} blob bytes sent.")
    peak = max(m.rss_mb for _, contender, m in rows if contender == "toolkit")
    lines.append(f"- Toolkit peak RSS over every scenario, the {args.big_mb} MB layer included:"
                 f" {peak:.0f} MB.")  # fmt: skip
    lines += [
        "",
        "Image sets: "
        + ", ".join(f"{i.name} ({i.blob_bytes / 2**20:.0f} MB)" for i in images)
        + ".",
        "",
    ]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
