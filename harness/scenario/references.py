"""What a scenario file's words mean on one run: `node` roles (leader,
non-leader, holder:IP) as pnns, `after` as an event on the timeline, the
named bounds (detection, takeover, ...) as seconds from this run's tunables,
and a step's filters (has, match, by) as one timeline predicate.

The file is checked without a cluster (harness.scenario.loader); its names
can only be given values once the cluster runs, and some - a fault's apply
mark, an expectation's event - only as the steps play. `References` keeps
them for the run, so the fault steps (fault_steps) and the expectations
(expectations) ask one object and agree on what a name means.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

from harness.assertions import Bounds, has_flag
from harness.faults import Fault, Flap, Triggered
from harness.lab import Lab
from harness.record import Event, Predicate
from harness.scenario.model import (
    HOLDER,
    ROLES,
    START,
    UNDO_SUFFIX,
    Bound,
    FaultStep,
    NodeRef,
    Scenario,
)
from harness.scenario.report import StepResult

# What a step may fail with: assertions (with their timeline window), faults
# that cannot act, daemons that do not answer. Anything else is a bug and
# keeps its traceback.
STEP_ERRORS = (AssertionError, RuntimeError, OSError, ValueError)


class StepFailed(AssertionError):
    """A step's expectation was not met; the message shows the timeline around it."""


@dataclass
class FaultRun:
    """A fault step in flight: the catalogue's fault, its trigger, its undo timer.

    It lives here because `after = ID` and `after = ID.undo` are read from it."""

    step: FaultStep
    fault: Fault
    trigger: Triggered | None = None
    due: float | None = None  # the node's next monitor run, s after the apply (native)
    undo_due: float | None = None
    timer: threading.Thread | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    error: str = ""

    def undo_wait(self) -> float:
        """How long the undo timer may still need, at most."""
        trigger = self.step.on.timeout if self.step.on is not None else 0.0
        if isinstance(self.fault, Flap):
            return trigger + self.fault.count * self.fault.period + 15
        return trigger + (self.step.for_s or 0.0) + 15


class References:
    """The values of a scenario's names on one lab, filled in as the steps play:
    roles once at the start, `start` when the first step is due, a fault step's
    FaultRun and an expectation's event as each one ends."""

    def __init__(self, scenario: Scenario, lab: Lab) -> None:
        self.scenario, self.lab = scenario, lab
        self.tl = lab.timeline
        self.bounds = Bounds.of(lab.backend, slack=scenario.slack)
        self.roles: dict[str, int] = {}
        self.faults: dict[str, FaultRun] = {}  # fault step id -> the fault in flight
        self.events: dict[str, Event] = {}  # expectation id -> the event it found
        self.start: Event | None = None

    # -- nodes -------------------------------------------------------------------------
    def resolve_roles(self) -> dict[str, int]:
        """The pnn of every role the file names (leader, non-leader, holder:IP), once."""
        refs = sorted({r for r in self.scenario.node_refs() if isinstance(r, str)})
        roles: dict[str, int] = {}
        backend = self.lab.backend
        if any(r in ROLES for r in refs):
            leader = backend.agreed_leader()
            roles["leader"] = leader
            roles["non-leader"] = max(p for p in range(self.scenario.topology.nodes)
                                      if p != leader)
        holders = {str(ip): pnn for ip, pnn in backend.ips(0).items()} \
            if any(r.startswith(HOLDER) for r in refs) else {}
        for ref in refs:
            if ref.startswith(HOLDER):
                pnn = holders.get(ref[len(HOLDER):], -1)
                if pnn < 0:
                    raise StepFailed(f"nobody holds {ref[len(HOLDER):]} at the start")
                roles[ref] = pnn
        return {r: roles[r] for r in refs}

    def node(self, ref: NodeRef) -> int:
        """The pnn a `node` value names: a number as is, a role as resolved."""
        return ref if isinstance(ref, int) else self.roles[ref]

    # -- bounds ------------------------------------------------------------------------
    def due(self, pnn: int | None) -> float | None:
        """Seconds until node pnn's next monitor run, if the implementation says."""
        if pnn is None:
            return None
        with contextlib.suppress(*STEP_ERRORS):
            return self.lab.backend.monitor_due(pnn)
        return None

    def named(self, due: float | None) -> dict[str, float]:
        """The named bounds in seconds; `detection` counts from the monitor's due time."""
        b = self.bounds
        return {"detection": b.detection(due), "takeover": b.takeover, "recovery": b.recovery,
                "keepalive": b.keepalive, "gap": b.monitor_gap,
                "startup": self.lab.backend.convergence_timeout()}

    def span(self, bounds: tuple[Bound, Bound], due: float | None, r: StepResult
             ) -> tuple[float, float]:
        """A `within` as [lo, hi] seconds, noted on the step's result; empty fails."""
        named = self.named(due)
        lo, hi = bounds[0].value(named), bounds[1].value(named)
        r.bound, r.bound_text = (lo, hi), f"{bounds[0]}, {bounds[1]}"
        if lo > hi:
            raise StepFailed(f"the bound [{bounds[0]}, {bounds[1]}] = [{lo:.2f}, {hi:.2f}] s is "
                             "empty with these tunables")
        return lo, hi

    # -- `after` -----------------------------------------------------------------------
    def reference(self, name: str) -> tuple[Event, float | None]:
        """The event `after = name` means, and the due time for `detection` after it."""
        assert self.start is not None
        if name == START:
            return self.start, None
        base, undo, _ = name.partition(UNDO_SUFFIX)
        fr = self.faults.get(base)
        if fr is None:
            return self.events[name], None
        if undo:
            if fr.timer is not None:
                fr.timer.join(fr.undo_wait())
            if fr.fault.undo_event is None:
                raise StepFailed(f'fault "{base}" was not undone'
                                 + (f": {fr.error}" if fr.error else ""))
            return fr.fault.undo_event, fr.undo_due
        if fr.trigger is not None:
            armed = fr.trigger.apply_event.t if fr.trigger.apply_event else time.monotonic()
            left = max(0.0, armed + fr.trigger.timeout - time.monotonic())
            if not fr.trigger.wait_fired(left + 1.0) or fr.fault.apply_event is None:
                on = fr.step.on
                assert on is not None
                raise StepFailed(f'fault "{base}" never fired: no {on.describe()} within '
                                 f"{on.timeout:g} s of arming\n"
                                 + self.tl.window(time.monotonic(), before=on.timeout, after=0.5,
                                                  ref=fr.trigger.apply_event))
        assert fr.fault.apply_event is not None
        return fr.fault.apply_event, fr.due

    # -- filters -----------------------------------------------------------------------
    def predicate(self, *, has: str | None = None, ok: bool = False,
                  match: dict | None = None, by: tuple[NodeRef, ...] | str | None = None,
                  subject: int | None = None) -> Predicate | None:
        """One `where` for the timeline from a step's filters."""
        tests: list[Predicate] = []
        if has is not None:
            tests.append(has_flag(has))
        if ok:
            tests.append(lambda e: list(e.data.get("flags", ())) == ["OK"])
        if match:
            want = dict(match)
            tests.append(lambda e: all(e.data.get(k) == v for k, v in want.items()))
        if by == "others":
            tests.append(lambda e: e.data.get("by") != subject)
        elif isinstance(by, tuple):
            seen_by = {self.node(b) for b in by}
            tests.append(lambda e: e.data.get("by") in seen_by)
        if not tests:
            return None
        return lambda e: all(t(e) for t in tests)
