"""RESULTS.md: the figures of one bench run, the ratios against the peers measured in that same
run, and each target of issue 8 marked met or missed (and by how much).

Everything above the analysis marker is rewritten on every run; the hand-written analysis
below the marker is kept.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.nodeprep.bench import SCENARIOS, Cell

MARKER = "<!-- analysis below: written by hand, kept when the bench rewrites this file -->"


@dataclass
class Context:
    date: str
    command: str
    versions: dict[str, str]
    machine: dict[str, str]
    titles: dict[str, str]
    latency: dict[str, dict[str, float]]
    notes: list[str]


def _spread(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def _f(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _find(cells: Sequence[Cell], n: int, tool: str, scenario: str) -> Cell | None:
    for cell in cells:
        if (cell.n, cell.tool, cell.scenario) == (n, tool, scenario):
            return cell
    return None


def _wall(cells: Sequence[Cell], n: int, tool: str, scenario: str) -> float | None:
    cell = _find(cells, n, tool, scenario)
    return cell.median("wall") if cell and cell.ok else None


def figures_table(cells: Sequence[Cell]) -> list[str]:
    rows = [
        "| N | scenario | tool | wall s (median) | wall min–max | runs | tool CPU s | sshd CPU s "
        "| peak RSS MB | conns/host | cmds/host | hosts changed | end state | dir modes | check |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        if cell.skipped:
            rows.append(
                f"| {cell.n} | {cell.scenario} | {cell.tool} | — | — | 0 | — | — | — | — | — "
                f"| — | — | — | skipped: {cell.skipped} |"
            )
            continue
        walls = [r.wall for r in cell.runs]
        conns = [c for r in cell.runs for c in r.connections]
        cmds = [c for r in cell.runs for c in r.sessions]
        problems = [p for r in cell.runs for p in r.problems]
        check = "ok" if cell.ok else "FAILED: " + "; ".join(problems[:2]).replace("|", "/")
        trees = sorted({r.tree for r in cell.runs})
        dirs = sorted({m for r in cell.runs for m in r.dir_modes})
        rows.append(
            f"| {cell.n} | {cell.scenario} | {cell.tool} | {_f(cell.median('wall'), 3)} "
            f"| {min(walls):.3f}–{max(walls):.3f} | {len(cell.runs)} | {_f(cell.median('cpu'))} "
            f"| {_f(cell.median('sshd_cpu'))} | {_f(cell.median('maxrss_mb'), 0)} "
            f"| {_spread(conns)} | {_spread(cmds)} | {cell.runs[0].changed_hosts} "
            f"| {' '.join(trees)} | {' '.join(f'{m:o}' for m in dirs)} | {check} |"
        )
    return rows


def engine_table(cells: Sequence[Cell]) -> list[str]:
    """Time inside the host loop vs the whole process, for the two contenders that report it."""
    rows = [
        "| N | scenario | tool | wall s | inside the host loop s | start-up and output s "
        "| loop ms per host |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        engine = cell.median_extra("engine_s")
        wall = cell.median("wall")
        if engine is None or wall is None:
            continue
        rows.append(
            f"| {cell.n} | {cell.scenario} | {cell.tool} | {wall:.3f} | {engine:.3f} "
            f"| {wall - engine:.3f} | {engine / cell.n * 1000:.1f} |"
        )
    return rows


def ratio_table(cells: Sequence[Cell], sizes: Sequence[int], tools: Sequence[str]) -> list[str]:
    peers = [t for t in tools if t != "T"]
    head = "| N | scenario | T wall s | " + " | ".join(f"{p} / T" for p in peers) + " |"
    rows = [head, "|" + "---|" * (3 + len(peers))]
    for n in sizes:
        for scenario in SCENARIOS:
            base = _wall(cells, n, "T", scenario)
            if base is None:
                continue
            ratios = []
            for peer in peers:
                other = _wall(cells, n, peer, scenario)
                ratios.append("—" if other is None else f"{other / base:.2f}")
            rows.append(f"| {n} | {scenario} | {base:.3f} | " + " | ".join(ratios) + " |")
    return rows


def _verdict(value: float | None, goal: float, at_least: bool) -> str:
    if value is None:
        return "not measured"
    if at_least:
        if value >= goal:
            return "met"
        return f"missed: {goal / value:.2f}× short"
    if value <= goal:
        return "met"
    return f"missed: {value / goal:.2f}× the limit"


def targets_table(cells: Sequence[Cell], sizes: Sequence[int]) -> list[str]:
    rows = ["| target | measured | verdict |", "|---|---|---|"]
    n = 20 if 20 in sizes else max(sizes)
    for scenario in SCENARIOS:
        t = _wall(cells, n, "T", scenario)
        for peer, goal, at_least, label in (
            ("A*", 10.0, True, f"N={n} {scenario}: tuned Ansible / T ≥ 10"),
            ("P", 3.0, True, f"N={n} {scenario}: pyinfra / T ≥ 3"),
            ("F", 1.5, False, f"N={n} {scenario}: T / floor ≤ 1.5"),
        ):
            other = _wall(cells, n, peer, scenario)
            if t is None or other is None:
                rows.append(f"| {label} | — | not measured |")
                continue
            value = other / t if peer != "F" else t / other
            rows.append(f"| {label} | {value:.2f} | {_verdict(value, goal, at_least)} |")
    if 1 in sizes:
        for scenario in SCENARIOS:
            one, big = _wall(cells, 1, "T", scenario), _wall(cells, n, "T", scenario)
            value = big / one if one and big else None
            rows.append(
                f"| T {scenario}: wall(N={n}) / wall(N=1) ≤ 2 | {_f(value)} "
                f"| {_verdict(value, 2.0, False)} |"
            )
    for size in sizes:
        cold, warm = _wall(cells, size, "T", "cold"), _wall(cells, size, "T", "warm")
        value = warm / cold if cold and warm else None
        rows.append(
            f"| N={size}: T warm / T cold ≤ 0.25 | {_f(value)} | {_verdict(value, 0.25, False)} |"
        )
        cell = _find(cells, size, "T", "warm")
        if cell and cell.runs:
            conns = max(c for r in cell.runs for c in r.connections)
            cmds = max(c for r in cell.runs for c in r.sessions)
            ok = conns == 1 and cmds <= 2
            rows.append(
                f"| N={size}: T warm, 1 connection and ≤ 2 commands per host "
                f"| {conns} connection, {cmds} command(s) | {'met' if ok else 'missed'} |"
            )
    return rows


def latency_table(latency: dict[str, dict[str, float]]) -> list[str]:
    rows = ["| what | median ms | p90 ms | samples |", "|---|---|---|---|"]
    for name, figures in latency.items():
        rows.append(
            f"| {name} | {figures['median_ms']:.2f} | {figures['p90_ms']:.2f} | {figures['n']} |"
        )
    return rows


def scaling_table(cells: Sequence[Cell], sizes: Sequence[int], tools: Sequence[str]) -> list[str]:
    rows = [
        "| tool | scenario | " + " | ".join(f"N={n}" for n in sizes) + " | ms per added host |",
        "|---|---|" + "---|" * (len(sizes) + 1),
    ]
    for tool in tools:
        for scenario in SCENARIOS:
            walls = [_wall(cells, n, tool, scenario) for n in sizes]
            if all(w is None for w in walls):
                continue
            points = [(n, w) for n, w in zip(sizes, walls, strict=True) if w is not None]
            slope = "—"
            if len(points) >= 2:
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                slope = f"{statistics.linear_regression(xs, ys).slope * 1000:.1f}"
            cols = " | ".join(_f(w) for w in walls)
            rows.append(f"| {tool} | {scenario} | {cols} | {slope} |")
    return rows


def write(
    path: Path,
    cells: Sequence[Cell],
    sizes: Sequence[int],
    tools: Sequence[str],
    ctx: Context,
) -> None:
    kept = ""
    if path.exists():
        text = path.read_text()
        if MARKER in text:
            kept = text.split(MARKER, 1)[1]
    lines = [
        "# Node-preparation benchmark (Bench A) results",
        "",
        f"Date: {ctx.date}. Command: `{ctx.command}`.",
        "",
        "## Versions and machine",
        "",
        *(f"- {k}: {v}" for k, v in ctx.versions.items()),
        *(f"- {k}: {v}" for k, v in ctx.machine.items()),
        "",
        "## Contenders",
        "",
        *(f"- **{label}**: {title}" for label, title in ctx.titles.items()),
        "",
        "## How it was measured",
        "",
        *(f"- {note}" for note in ctx.notes),
        "",
        "## Figures",
        "",
        *figures_table(cells),
        "",
        "## Ratios against the peers, same run (peer wall / toolkit wall; above 1: T is faster)",
        "",
        *ratio_table(cells, sizes, tools),
        "",
        "## Targets (issue 8)",
        "",
        *targets_table(cells, sizes),
        "",
        "## Scaling: median wall seconds by N",
        "",
        *scaling_table(cells, sizes, tools),
        "",
        "## Where the toolkit's and the floor's time goes",
        "",
        *engine_table(cells),
        "",
        "## Per-command latency on an open connection (host n001)",
        "",
        *latency_table(ctx.latency),
        "",
        MARKER,
    ]
    path.write_text("\n".join(lines) + (kept if kept else "\n"))
