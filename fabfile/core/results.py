"""Per-host, per-step results: changed, unchanged, failed or skipped, always with a reason."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from . import secrets

log = logging.getLogger("regtk")

Status = Literal["changed", "unchanged", "failed", "skipped"]


@dataclass
class StepResult:
    """What one step did on one host."""

    step: str
    status: Status
    reason: str
    diff: str | None = None


@dataclass
class HostReport:
    """Every step result of one host, plus warnings and data a task wants to show."""

    host: str
    steps: list[StepResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def status(self) -> Status:
        if self.error is not None or any(s.status == "failed" for s in self.steps):
            return "failed"
        if self.steps and all(s.status == "skipped" for s in self.steps):
            return "skipped"
        if any(s.status == "changed" for s in self.steps):
            return "changed"
        return "unchanged"

    @property
    def why(self) -> str:
        """One line: the error, else the failed step, else what changed."""
        if self.error is not None:
            return self.error
        failed = [s for s in self.steps if s.status == "failed"]
        if failed:
            return f"{failed[0].step}: {failed[0].reason}"
        changed = [s.step for s in self.steps if s.status == "changed"]
        if changed:
            return "changed: " + ", ".join(changed)
        if self.steps:
            return self.steps[-1].reason
        return "nothing to do"

    def add(self, step: str, status: Status, reason: str, diff: str | None = None) -> StepResult:
        result = StepResult(step, status, secrets.redact(reason), diff and secrets.redact(diff))
        self.steps.append(result)
        level = logging.ERROR if status == "failed" else logging.INFO
        log.log(level, "[%s] %s: %s (%s)", self.host, step, status, result.reason)
        return result

    def warn(self, message: str) -> None:
        message = secrets.redact(message)
        self.warnings.append(message)
        log.warning("[%s] warning: %s", self.host, message)

    def fail(self, message: str) -> None:
        self.error = secrets.redact(message)
        log.error("[%s] failed: %s", self.host, self.error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "why": self.why,
            "error": self.error,
            "warnings": self.warnings,
            "steps": [asdict(s) for s in self.steps],
            "data": self.data,
        }
