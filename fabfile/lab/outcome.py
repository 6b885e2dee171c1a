"""What one step of bringing the lab up did: changed something or found it as wanted."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One item of the lab (an image, a host, a file) and whether this run changed it, and why."""

    item: str
    changed: bool
    detail: str

    def line(self) -> str:
        """The one-line report of this outcome."""
        state = "changed" if self.changed else "ok"
        return f"[lab] {self.item}: {state} ({self.detail})"
