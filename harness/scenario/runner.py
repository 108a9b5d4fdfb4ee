"""Run one scenario on one implementation: build the cluster through
harness.lab.running_cluster, play the steps in file order on its timeline,
and end with the invariant check.

Steps run one after the other. A fault step applies its fault (at its `at`
time, or arms its `on` trigger) and returns; a fault with `for` is undone
in the background that many seconds after it acted, and a flap undoes
itself after its last cycle, so expectations can watch the fault while it
lasts. An expectation waits on the timeline (deadlines, not sleeps) and is
measured from its `after` reference: a fault's apply mark (for a triggered
fault, the moment it fired), `ID.undo` its undo mark, or an earlier
expectation's event. The first failed step ends the run; the invariant
check runs only when every step passed.

This is the one module of harness.scenario that imports harness.record.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.assertions import (
    Bounds,
    assert_invariants,
    expect,
    expect_moved,
    expect_none,
    has_flag,
)
from harness.backends.base import NotConverged
from harness.faults import Fault, FaultCancelled, Flap, Triggered, build_fault
from harness.lab import BackendUnavailable, Lab, LeakError, running_cluster
from harness.record import Event, Predicate, Timeline, address_holders, outages
from harness.scenario.model import (
    HOLDER,
    ROLES,
    START,
    UNDO_SUFFIX,
    Bound,
    ExpectStep,
    FaultStep,
    NodeRef,
    Scenario,
    Step,
    UndoStep,
    WaitStep,
)
from harness.scenario.report import FAILED, OK, RunResult, StepResult, indent, invariants_line
from harness.wait import WaitTimeout, wait_until

# What a step may fail with: assertions (with their timeline window), faults
# that cannot act, daemons that do not answer. Anything else is a bug and
# keeps its traceback.
STEP_ERRORS = (AssertionError, RuntimeError, OSError, ValueError)


class StepFailed(AssertionError):
    """A step's expectation was not met; the message shows the timeline around it."""


@dataclass
class _FaultRun:
    """A fault step in flight: the catalogue's fault, its trigger, its undo timer."""

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


def run_scenario(scenario: Scenario, implementation: str, *, out: Path | None = None,
                 save_always: bool = True, echo: Callable[[str], None] = print,
                 keep: Callable[[], bool] = lambda: False) -> RunResult:
    """Run `scenario` once on `implementation`; echo a line per step as it ends.

    With `out`, the timeline (timeline.jsonl + timeline.txt), the daemons' logs
    and summary.json are written there - always, or only when the run failed
    (save_always=False, as pytest's --artifacts does). `keep()` true at the
    end leaves a failed run's cluster up (pytest's --keep-on-failure).
    Raises lab.BackendUnavailable when the implementation cannot run here.
    """
    result = RunResult(scenario.name, str(scenario.path), implementation)
    t0 = time.monotonic()
    timeline: Timeline | None = None
    try:
        with running_cluster(scenario.topology, implementation, scenario.tunables,
                             scenario.script_options, event_mode=scenario.event_mode,
                             name=scenario.name, keep=lambda: keep() and not result.passed,
                             poll_interval=0.1, probe=True) as lab:  # as pytest's recorder
            timeline = lab.timeline
            result.converged_s = lab.ready_at - t0
            tunables = " ".join(f"{k}={v}" for k, v in scenario.tunables.items()) or "defaults"
            echo(f"{scenario.name} on {implementation}: {scenario.topology.nodes} nodes "
                 f"({scenario.topology_source}), tunables {tunables}; converged after "
                 f"{result.converged_s:.1f} s")
            _Run(scenario, lab, result, echo).run()
            if out is not None and (save_always or not result.passed):
                lab.backend.collect(out)
    except BackendUnavailable:
        raise
    except (NotConverged, LeakError, RuntimeError, OSError, TimeoutError) as e:
        result.error = " ".join(f"{type(e).__name__}: {e}".split())
    result.duration_s = time.monotonic() - t0
    if timeline is not None and not result.passed:
        result.timeline_table = timeline.table()
    if out is not None and (save_always or not result.passed):
        if timeline is not None:
            timeline.save(out, "timeline")
        result.artifacts = out
        result.write_summary(out)
    return result


class _Run:
    """The steps of one scenario played on one lab."""

    def __init__(self, scenario: Scenario, lab: Lab, result: RunResult,
                 echo: Callable[[str], None]) -> None:
        self.scenario, self.lab, self.result, self.echo = scenario, lab, result, echo
        self.tl = lab.timeline
        self.bounds = Bounds.of(lab.backend, slack=scenario.slack)
        self.roles: dict[str, int] = {}
        self.faults: dict[str, _FaultRun] = {}
        self.events: dict[str, Event] = {}  # expectation id -> the event it found
        self.start: Event | None = None

    # -- the whole run -------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.roles = self.resolve_roles()
        except STEP_ERRORS as e:
            self.result.error = f"cannot name the nodes the file refers to: {e}"
            return
        if self.roles:
            self.echo("  nodes: " + ", ".join(f"{ref} = node {pnn}"
                                              for ref, pnn in self.roles.items()))
        self.start = self.tl.note("scenario start", scenario=self.scenario.name)
        failed = False
        try:
            for step in self.scenario.steps:
                r = StepResult(step.number, step.id, step.describe(self.roles))
                self.result.steps.append(r)
                if failed:
                    continue
                try:
                    self.do(step, r)
                    r.status = OK
                except STEP_ERRORS as e:
                    r.status, r.message = FAILED, str(e) or type(e).__name__
                    failed = True
                self.echo(r.line())
                if failed:
                    self.echo(indent(r.message))
        finally:
            self.stop_timers()  # also on Ctrl-C: a pending timer would hold its fault's lock
        self.invariants(failed)

    def invariants(self, failed: bool) -> None:
        s, r = self.scenario, self.result
        if not s.invariants:
            r.invariants = f"off: {s.invariants_reason}"
        elif failed:
            r.invariants = "NOT RUN (a step failed)"
        else:
            if self.lab.recorder is not None:
                self.lab.recorder.stop()
            try:
                assert_invariants(self.tl, s.public_ips(), takeover_bound=self.bounds.takeover,
                                  allow_duplicates_on=[self.node(n)
                                                       for n in s.duplicates_allowed_on])
                r.invariants = OK
            except AssertionError as e:
                r.invariants, r.invariants_message = FAILED, str(e)
        self.echo(invariants_line(r, len(s.public_ips())))
        if r.invariants == FAILED:
            self.echo(indent(r.invariants_message))

    def stop_timers(self) -> None:
        """Call off pending undo timers (the lab undoes whatever is still applied)."""
        for fr in self.faults.values():
            if fr.timer is None or not fr.timer.is_alive():
                continue
            fr.cancel.set()
            if isinstance(fr.fault, Flap):
                fr.fault.undo()
            else:
                fr.fault.abort.set()
            fr.timer.join(15)
            fr.fault.abort.clear()

    def do(self, step: Step, r: StepResult) -> None:
        if isinstance(step, FaultStep):
            self.fault(step, r)
        elif isinstance(step, UndoStep):
            self.undo(step, r)
        elif isinstance(step, WaitStep):
            seconds = step.seconds.value(self.named(None))
            r.bound_text, r.note = str(step.seconds), f"waited {seconds:.2f} s"
            time.sleep(seconds)
        else:
            self.expectation(step, r)

    # -- nodes, references, bounds ----------------------------------------------------
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
        return ref if isinstance(ref, int) else self.roles[ref]

    def due(self, pnn: int | None) -> float | None:
        """Seconds until node pnn's next monitor run, if the implementation says."""
        if pnn is None:
            return None
        with contextlib.suppress(*STEP_ERRORS):
            return self.lab.backend.monitor_due(pnn)
        return None

    def named(self, due: float | None) -> dict[str, float]:
        b = self.bounds
        return {"detection": b.detection(due), "takeover": b.takeover, "recovery": b.recovery,
                "keepalive": b.keepalive, "gap": b.monitor_gap,
                "startup": self.lab.backend.convergence_timeout()}

    def span(self, bounds: tuple[Bound, Bound], due: float | None, r: StepResult
             ) -> tuple[float, float]:
        named = self.named(due)
        lo, hi = bounds[0].value(named), bounds[1].value(named)
        r.bound, r.bound_text = (lo, hi), f"{bounds[0]}, {bounds[1]}"
        if lo > hi:
            raise StepFailed(f"the bound [{bounds[0]}, {bounds[1]}] = [{lo:.2f}, {hi:.2f}] s is "
                             "empty with these tunables")
        return lo, hi

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

    # -- faults ----------------------------------------------------------------------------
    def fault(self, step: FaultStep, r: StepResult) -> None:
        assert self.start is not None
        args = {k: self.node(v) if k == "node" else v for k, v in step.args.items()}
        fault = build_fault(self.lab.faults, step.fault, args)
        fr = _FaultRun(step, fault)
        if step.on is not None:
            on = step.on
            fr.trigger = self.lab.faults.on(
                on.kind, fault, where=self.predicate(has=on.has, match=on.match),
                node=... if on.node is None else self.node(on.node), offset=on.offset,
                timeout=on.timeout)
            fr.trigger.apply()
            r.note = "armed"
        else:
            target = None if step.at is None else self.start.t + step.at
            if target is not None:  # the monitor's due time is read just before the fault
                time.sleep(max(0.0, target - 0.2 - time.monotonic()))
            fr.due = self.due(fault.node)
            fault.apply(at=target)
            assert fault.apply_event is not None
            applied = fault.apply_event.t - self.start.t
            late = 0.0 if target is None else fault.apply_event.t - target
            r.note = f"applied at +{applied:.3f} s" + (f", late by {late:.3f} s"
                                                       if late > 0.05 else "")
        if step.id is not None:
            self.faults[step.id] = fr
        if step.for_s is not None or isinstance(fault, Flap):
            fr.timer = threading.Thread(target=self.undo_later, args=(fr,), daemon=True,
                                        name=f"undo-{step.id or step.number}")
            fr.timer.start()

    def undo_later(self, fr: _FaultRun) -> None:
        """The background undo of a fault with `for`, and the end of a flap."""
        fault = fr.fault
        try:
            if fr.trigger is not None:
                deadline = time.monotonic() + fr.trigger.timeout + 1
                while not fr.trigger.fired.wait(0.1):
                    if fr.cancel.is_set() or time.monotonic() > deadline:
                        fr.error = "it never fired"
                        return
                if fr.trigger.error is not None:
                    fr.error = f"it failed to apply: {fr.trigger.error}"
                    return
            if isinstance(fault, Flap):
                fault.wait()
                if not fr.cancel.is_set():
                    fault.undo()
                return
            assert fault.t_applied is not None and fr.step.for_s is not None
            fault.undo(at=fault.t_applied[0] + fr.step.for_s)
        except FaultCancelled:
            fr.error = "its undo was called off at the end of the run"
        except STEP_ERRORS as e:
            fr.error = f"{type(e).__name__}: {e}"

    def undo(self, step: UndoStep, r: StepResult) -> None:
        assert self.start is not None
        fr = self.faults[step.target]
        fr.undo_due = self.due(fr.fault.node)
        if fr.trigger is not None:
            fr.trigger.undo()
        else:
            fr.fault.undo()
        if fr.fault.undo_event is None:
            r.note = "it had not fired: disarmed"
        else:
            r.note = f"undone at +{fr.fault.undo_event.t - self.start.t:.3f} s"

    # -- expectations -------------------------------------------------------------------
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

    def expectation(self, step: ExpectStep, r: StepResult) -> None:
        ref, due = self.reference(step.after)
        pnn = None if step.node is None else self.node(step.node)
        if step.expect == "none":
            assert step.for_ is not None
            seconds = step.for_.value(self.named(due))
            r.bound_text = str(step.for_)
            where = self.predicate(has=step.flag, match=step.match, by=step.by, subject=pnn)
            expect_none(self.tl, "flags" if step.flag else str(step.kind), after=ref,
                        for_s=seconds, node=... if pnn is None else pnn, where=where)
            found = self.tl.mark("test", "note", pnn, t=ref.t + seconds,
                                 text=f"step {step.number}: nothing for {seconds:.2f} s")
            r.note = f"none for {seconds:.2f} s" + (f" ({step.for_})" if step.for_.names else "")
        else:
            assert step.within is not None
            lo, hi = self.span(step.within, due, r)
            found = self.awaited(step, ref, pnn, lo, hi, r)
            r.delay = found.t - ref.t
        if step.id is not None:
            self.events[step.id] = found

    def awaited(self, step: ExpectStep, ref: Event, pnn: int | None, lo: float, hi: float,
                r: StepResult) -> Event:
        """The event an expectation (other than "none") waited for, within [lo, hi]."""
        if step.expect == "event":
            return self.expect_event(step, ref, pnn, lo, hi)
        if step.expect == "converged":
            return self.expect_converged(step, ref, lo, hi)
        assert pnn is not None  # the loader requires `node` for the others
        if step.expect == "flag":
            return self.expect_flag(step, ref, pnn, lo, hi)
        if step.expect == "ok":
            return self.expect_ok(step, ref, pnn, lo, hi)
        if step.expect == "moved":
            return self.expect_moved(step, ref, pnn, lo, hi, r)
        return self.expect_reachable(step, ref, pnn, lo, hi, r)

    def expect_flag(self, step: ExpectStep, ref: Event, pnn: int, lo: float, hi: float
                    ) -> Event:
        return expect(self.tl, "flags", node=pnn, after=ref, within=(lo, hi),
                      where=self.predicate(has=step.flag, by=step.by, subject=pnn))

    def expect_ok(self, step: ExpectStep, ref: Event, pnn: int, lo: float, hi: float
                  ) -> Event:
        return expect(self.tl, "flags", node=pnn, after=ref, within=(lo, hi),
                      where=self.predicate(ok=True, by=step.by, subject=pnn))

    def expect_event(self, step: ExpectStep, ref: Event, pnn: int | None, lo: float, hi: float
                     ) -> Event:
        return expect(self.tl, str(step.kind), node=... if pnn is None else pnn, after=ref,
                      within=(lo, hi), where=self.predicate(match=step.match))

    def held_at(self, ref: Event, pnn: int, step: ExpectStep) -> list[str]:
        """The public IPs node pnn held (in its kernel) at the reference."""
        wanted = list(step.ips) or self.scenario.public_ips()
        held = address_holders(self.tl, at=ref, ips=wanted)
        ips = sorted(ip for ip, holders in held.items() if f"n{pnn}" in holders)
        if not ips:
            raise StepFailed(f"node {pnn} held none of {', '.join(wanted)} at {step.after}: "
                             "nothing to watch\n" + self.tl.window(ref, before=1.0, after=0.5))
        return ips

    def expect_moved(self, step: ExpectStep, ref: Event, pnn: int, lo: float, hi: float,
                     r: StepResult) -> Event:
        ips = self.held_at(ref, pnn, step)
        flagged = self.events[step.flagged] if step.flagged else ref
        takeover = self.bounds.takeover if step.flagged else hi
        adds = expect_moved(self.tl, ips, off=pnn, after=ref, within=hi, ref=flagged,
                            takeover=takeover)
        last = max(adds, key=lambda e: e.t)
        early = [a for a in adds if a.t - ref.t < lo]
        if early:
            raise StepFailed(f"{early[0].data['ip']} moved {early[0].t - ref.t:.3f} s after "
                             f"{step.after}, before the lower bound {lo:.2f} s\n"
                             + self.tl.window(early[0], before=lo + 1, after=0.5, ref=ref))
        r.note = ", ".join(f"{a.data['ip']} -> {a.data['ns']}" for a in adds)
        if step.flagged:
            r.note += f"; {last.t - flagged.t:.3f} s after {step.flagged} (takeover " \
                      f"{takeover:.2f} s)"
        return last

    def expect_reachable(self, step: ExpectStep, ref: Event, pnn: int, lo: float, hi: float,
                         r: StepResult) -> Event:
        ips = self.held_at(ref, pnn, step)

        def ended() -> dict[str, tuple[float, float]] | None:
            out = {}
            for ip in ips:
                seen = outages(self.tl, ip, since=ref)
                last = seen[-1] if seen else None
                if last is None or last.end is None or last.duration is None:
                    return None
                out[ip] = (last.end.t, last.duration)
            return out

        try:
            _, ends = wait_until(ended, max(0.0, ref.t + hi - time.monotonic()) + 0.3,
                                 f"the client reaches {', '.join(ips)} again")
        except WaitTimeout as e:
            raise StepFailed(f"{e}\n" + self.tl.window(time.monotonic(), before=hi + 0.5,
                                                       after=0.5, ref=ref,
                                                       kind=("probe.*", "addr.*", "fault.*",
                                                             "flags"))) from None
        assert ends is not None
        t_end = max(t for t, _ in ends.values())
        r.note = "outage " + ", ".join(f"{ip} {d:.2f} s" for ip, (_, d) in ends.items())
        found = self.tl.mark("test", "note", pnn, t=t_end,
                             text=f"step {step.number}: the client reaches {', '.join(ips)}")
        if not lo <= t_end - ref.t <= hi:
            raise StepFailed(f"the client reached {', '.join(ips)} again {t_end - ref.t:.3f} s "
                             f"after {step.after}, outside [{lo:.2f}, {hi:.2f}] s\n"
                             + self.tl.window(found, before=hi + 0.5, after=0.5, ref=ref))
        return found

    def expect_converged(self, step: ExpectStep, ref: Event, lo: float, hi: float) -> Event:
        backend = self.lab.backend
        last: list[str] = []

        def converged() -> bool:
            why = backend.converged()
            last[:] = [why or ""]
            return why is None

        try:
            seen, _ = wait_until(converged, max(0.0, ref.t + hi - time.monotonic()) + 0.2,
                                 "converged", period=0.1)
        except WaitTimeout:
            raise StepFailed(f"not converged within {hi:.2f} s of {step.after}: "
                             f"{last[0] if last else 'never checked'}\n"
                             + self.tl.window(time.monotonic(), before=3.0, after=0.5,
                                              ref=ref)) from None
        found = self.tl.mark("test", "note", None, t=seen, text=f"step {step.number}: converged")
        if not lo <= seen - ref.t <= hi:
            raise StepFailed(f"converged {seen - ref.t:.3f} s after {step.after}, outside "
                             f"[{lo:.2f}, {hi:.2f}] s\n"
                             + self.tl.window(found, before=3.0, after=0.5, ref=ref))
        return found
