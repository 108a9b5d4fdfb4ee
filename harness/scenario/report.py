"""What one run of a scenario found, as data (for summary.json and the pytest
item) and as the lines `harness run` prints: one per step with the measured
delay next to its bound, then the invariants and a verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OK, FAILED, NOT_RUN = "OK", "FAILED", "NOT RUN"


@dataclass
class StepResult:
    """One step's outcome. `delay` is seconds from its reference (an expectation)
    or from the scenario's start (a fault, an undo); `bound` the [lo, hi] in
    force, `bound_text` the file's words for it."""

    number: int
    id: str | None
    what: str
    status: str = NOT_RUN
    delay: float | None = None
    bound: tuple[float, float] | None = None
    bound_text: str = ""
    note: str = ""
    message: str = ""  # why it failed: the assertion, with the timeline window

    def label(self) -> str:
        return f"step {self.number}" + (f" ({self.id})" if self.id else "")

    def line(self) -> str:
        """`step 3 (bad)  UNHEALTHY on node 2 after cut  OK  1.234 s  in [0, 4.10] s (...)`"""
        measured = ""
        if self.delay is not None:
            measured = f"  {self.delay:.3f} s"
        if self.bound is not None:
            lo, hi = self.bound
            named = f"[{self.bound_text}] = " if any(c.isalpha() for c in self.bound_text) \
                else ""
            measured += f"  within {named}[{lo:.2f}, {hi:.2f}] s"
        note = f"  - {self.note}" if self.note else ""
        return f"  {self.label():<18} {self.what:<52} {self.status}{measured}{note}"

    def to_json(self) -> dict[str, Any]:
        return {"step": self.number, "id": self.id, "what": self.what, "status": self.status,
                "delay_s": None if self.delay is None else round(self.delay, 4),
                "bound_s": None if self.bound is None else [round(b, 4) for b in self.bound],
                "bound": self.bound_text or None, "note": self.note or None,
                "message": self.message or None}


@dataclass
class RunResult:
    """A scenario's run on one implementation."""

    scenario: str
    path: str
    implementation: str
    steps: list[StepResult] = field(default_factory=list)
    invariants: str = NOT_RUN  # OK, FAILED, NOT RUN, or "off: REASON"
    invariants_message: str = ""
    error: str = ""  # the run itself broke: no convergence, a leak at teardown, ...
    converged_s: float | None = None  # build start -> converged
    duration_s: float = 0.0
    artifacts: Path | None = None
    timeline_table: str = ""  # the whole timeline, kept only when the run failed

    @property
    def passed(self) -> bool:
        return (not self.error and all(s.status == OK for s in self.steps)
                and self.invariants != FAILED)

    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == FAILED), None)

    def failure_text(self) -> str:
        """What broke, with the timeline window the assertion printed."""
        parts = []
        step = self.failed_step()
        if step is not None:
            parts.append(f"{self.scenario} on {self.implementation}: {step.label()} FAILED: "
                         f"{step.what}\n{step.message}")
        if self.invariants == FAILED:
            parts.append(f"{self.scenario} on {self.implementation}: invariants FAILED\n"
                         f"{self.invariants_message}")
        if self.error:
            parts.append(f"{self.scenario} on {self.implementation}: {self.error}")
        return "\n\n".join(parts)

    def verdict(self) -> str:
        """The last line: PASSED/FAILED, where, how long, where the artifacts are."""
        step = self.failed_step()
        if self.passed:
            word = f"PASSED ({len(self.steps)} steps)"
        elif step is not None:
            word = f"FAILED at {step.label()}"
        elif self.invariants == FAILED:
            word = "FAILED: invariants"
        else:
            word = f"FAILED: {self.error}"
        where = f"; artifacts in {self.artifacts}" if self.artifacts else ""
        return f"{self.implementation}: {word} in {self.duration_s:.1f} s{where}"

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "file": self.path,
                "implementation": self.implementation, "passed": self.passed,
                "duration_s": round(self.duration_s, 3),
                "converged_s": None if self.converged_s is None else round(self.converged_s, 3),
                "steps": [s.to_json() for s in self.steps],
                "invariants": self.invariants,
                "invariants_message": self.invariants_message or None,
                "error": self.error or None}

    def write_summary(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "summary.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def invariants_line(result: RunResult, ips: int) -> str:
    return f"  {'invariants':<18} {f'over {ips} public IPs':<52} {result.invariants}"


def indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
