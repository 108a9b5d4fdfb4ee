"""Applying a chaos plan to a running cluster, round by round.

In a round each fault is applied at its offset and undone after its
duration; meanwhile the invariant auditor looks at the timeline every
second (an overlap of two holders or an IP left on an UNHEALTHY node is
caught while it lasts, not only at the end). After the round the cluster
must converge again, with a leader all nodes name; then the round's window
is audited once more and a lone fault's detection and takeover are measured
against their bounds. The first round with a problem stops the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.assertions import Bounds, has_flag
from harness.backends.base import NotConverged
from harness.chaos.audit import LOCK_KEEPING, Measure, invariant_problems, measure
from harness.chaos.plan import STEADY_KINDS, Plan, Round
from harness.faults import FaultError
from harness.faults.base import Fault
from harness.faults.kinds import build_fault
from harness.lab import Lab
from harness.record import Timeline

AUDIT_EVERY = 1.0


@dataclass
class RoundResult:
    index: int
    round: Round
    measures: list[Measure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bans: list[str] = field(default_factory=list)  # nodes banned during the round


@dataclass
class SoakResult:
    plan: Plan
    rounds: list[RoundResult] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> RoundResult | None:
        return next((r for r in self.rounds if r.problems), None)

    def worst(self, what: str) -> Measure | None:
        ms = [m for r in self.rounds for m in r.measures if m.what.startswith(what)]
        return max(ms, key=lambda m: m.took / m.bound, default=None)


def _public_ips(lab: Lab) -> list[str]:
    return [str(pa.address.ip) for pa in lab.cluster.topology.public_addresses]


def run_round(lab: Lab, rnd: Round, index: int, b: Bounds) -> RoundResult:
    res = RoundResult(index, rnd)
    tl, ips = lab.timeline, _public_ips(lab)
    excused = {p for s in rnd.steps for p in s.excuse}
    kinds = frozenset(s.kind for s in rnd.steps)
    t0 = time.monotonic()
    tl.note(f"chaos round {index}: {rnd.describe()}")
    # (when, apply?, step index); undo of a self-undoing fault is only its end
    todo = sorted([(t0 + s.offset, True, k) for k, s in enumerate(rnd.steps)]
                  + [(t0 + s.offset + s.duration, False, k) for k, s in enumerate(rnd.steps)])
    applied: dict[int, Fault] = {}
    undone: dict[int, float] = {}
    leader = None
    if len(rnd.steps) == 1 and rnd.steps[0].kind in LOCK_KEEPING:
        try:
            leader = lab.backend.agreed_leader(5.0)
        except NotConverged:
            leader = None
    next_audit = t0 + AUDIT_EVERY
    try:
        for when, is_apply, k in todo:
            while time.monotonic() < when:
                time.sleep(max(0.0, min(when, next_audit) - time.monotonic()))
                if time.monotonic() >= next_audit:
                    next_audit += AUDIT_EVERY
                    res.problems += invariant_problems(tl, ips, b, t0, time.monotonic(), excused,
                                                       kinds)
                    if res.problems:
                        return res
            step = rnd.steps[k]
            if is_apply:
                applied[k] = build_fault(lab.faults, step.kind, step.args).apply()
            else:
                if step.kind not in STEADY_KINDS and applied[k].applied:
                    applied[k].undo()
                undone[k] = time.monotonic()
    except FaultError as e:
        res.problems.append(f"fault machinery: {e}")
        return res
    finally:
        for k, f in applied.items():
            if f.applied and rnd.steps[k].kind not in STEADY_KINDS:
                try:
                    f.undo()
                except FaultError as e:
                    res.problems.append(f"undo of {rnd.steps[k].describe()} failed: {e}")
    try:
        lab.backend.wait_converged(lab.backend.convergence_timeout())
        # and a leader every node names: converged without one (a leader
        # that resigned, the others still waiting out its silence), the next
        # round's takeover would include an election its bound has not got
        # (seed 901, round 81: 2.37 s against 2.00 s)
        lab.backend.agreed_leader(lab.backend.convergence_timeout())
    except NotConverged as e:
        res.problems.append(f"no convergence after the round: {e}")
    t1 = time.monotonic()
    res.bans = banned(tl, t0, t1)
    res.problems += invariant_problems(tl, ips, b, t0, t1, excused, kinds)
    if len(rnd.steps) == 1 and 0 in applied and applied[0].apply_event is not None:
        ms, problems = measure(tl, rnd.steps[0], applied[0].apply_event, undone.get(0, t1),
                               b, ips, leader)
        res.measures += ms
        res.problems += problems + [f"{m.describe()} ({rnd.describe()})"
                                    for m in ms if not m.ok]
    return res


def banned(tl: Timeline, since: float, until: float) -> list[str]:
    """Nodes that turned BANNED in [since, until], by their own account."""
    out = []
    for e in tl.events("flags"):
        if (since <= e.t <= until and e.data.get("by") == e.node and has_flag("BANNED")(e)
                and f"node {e.node}" not in out):
            out.append(f"node {e.node}")
    return out


def daemon_crashes(lab: Lab) -> list[str]:
    """Tracebacks in the daemons' logs: a bug, whether or not a supervisor restarted it."""
    out = []
    for n in lab.cluster.nodes:
        path = Path(lab.backend.log_path(n.pnn))
        if path.exists():
            text = path.read_text(errors="replace")
            count = text.count("Traceback (most recent call last)")
            if count:
                out.append(f"node {n.pnn}: {count} traceback(s) in {path}")
    return out


def run_plan(lab: Lab, plan: Plan, report: Callable[[RoundResult], None] = lambda r: None,
             out_dir: Path | None = None,
             should_stop: Callable[[], bool] = lambda: False) -> SoakResult:
    """Every round in order, stopping at the first with a problem; then, if
    out_dir is given and a round failed, the timeline and the daemons' logs go
    there (the cluster is gone once the run ends)."""
    b = Bounds.of(lab.backend)
    out = SoakResult(plan)
    for k, rnd in enumerate(plan.rounds, 1):
        if should_stop():
            break
        res = run_round(lab, rnd, k, b)
        out.rounds.append(res)
        report(res)
        if res.problems:
            break
    out.crashes = daemon_crashes(lab)
    if out_dir is not None and (out.failed or out.crashes):
        lab.timeline.save(out_dir, "timeline")
        lab.backend.collect(out_dir)
    return out
