"""Run one scenario on one implementation: build the cluster through
harness.lab.running_cluster, play the steps in file order on its timeline,
and end with the invariant check.

Steps run one after the other. A fault or undo step acts and returns
(fault_steps); a wait step sleeps; an expectation waits on the timeline,
measured from its `after` reference (expectations). What the file's names
mean on this run - roles, references, bounds - is kept in one References
(references). The first failed step ends the run; the invariant check runs
only when every step passed.

runner, references, fault_steps and expectations are the modules of
harness.scenario that work on a running lab; the others read and report
without one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from harness.assertions import assert_invariants
from harness.backends.base import Backend, NotConverged
from harness.cluster import Cluster
from harness.lab import BackendUnavailable, Lab, LeakError, running_cluster
from harness.record import Timeline
from harness.report import write_report
from harness.report.runs import info_for
from harness.scenario.expectations import check_expectation
from harness.scenario.fault_steps import apply_fault, stop_timers, undo_fault
from harness.scenario.model import FaultStep, Scenario, Step, UndoStep, WaitStep
from harness.scenario.references import STEP_ERRORS, References
from harness.scenario.report import FAILED, OK, RunResult, StepResult, indent, invariants_line


def run_scenario(scenario: Scenario, implementation: str, *, out: Path | None = None,
                 save_always: bool = True, echo: Callable[[str], None] = print,
                 keep: Callable[[], bool] = lambda: False,
                 hand_over: Callable[[Cluster, Backend], str | None] | None = None
                 ) -> RunResult:
    """Run `scenario` once on `implementation`; echo a line per step as it ends.

    With `out`, the timeline (timeline.jsonl + timeline.txt), the daemons' logs
    and summary.json are written there - always, or only when the run failed
    (save_always=False, as pytest's --artifacts does). `keep()` true at the
    end leaves a failed run's cluster up (pytest's --keep-on-failure), running
    as a lab when `hand_over` is given (see running_cluster).
    Raises lab.BackendUnavailable when the implementation cannot run here.
    """
    result = RunResult(scenario.name, str(scenario.path), implementation)
    t0 = time.monotonic()
    timeline: Timeline | None = None
    backend: Backend | None = None
    try:
        with running_cluster(scenario.topology, implementation, scenario.tunables,
                             scenario.script_options, event_mode=scenario.event_mode,
                             name=scenario.name, keep=lambda: keep() and not result.passed,
                             hand_over=hand_over,
                             poll_interval=0.1, probe=True) as lab:  # as pytest's recorder
            timeline, backend = lab.timeline, lab.backend
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
            verdict = "passed" if result.passed else \
                "failed: " + (result.failure_text().splitlines() or [""])[0]
            write_report(timeline, info_for(f"scenario {scenario.name} on {implementation}",
                                            backend, verdict), out)
        result.artifacts = out
        result.write_summary(out)
    return result


class _Run:
    """The steps of one scenario played on one lab."""

    def __init__(self, scenario: Scenario, lab: Lab, result: RunResult,
                 echo: Callable[[str], None]) -> None:
        self.scenario, self.lab, self.result, self.echo = scenario, lab, result, echo
        self.refs = References(scenario, lab)

    def run(self) -> None:
        """Resolve the roles, play the steps until one fails, then the invariants."""
        refs = self.refs
        try:
            refs.roles = refs.resolve_roles()
        except STEP_ERRORS as e:
            self.result.error = f"cannot name the nodes the file refers to: {e}"
            return
        if refs.roles:
            self.echo("  nodes: " + ", ".join(f"{ref} = node {pnn}"
                                              for ref, pnn in refs.roles.items()))
        refs.start = refs.tl.note("scenario start", scenario=self.scenario.name)
        failed = False
        try:
            for step in self.scenario.steps:
                r = StepResult(step.number, step.id, step.describe(refs.roles))
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
            # also on Ctrl-C: a pending timer would hold its fault's lock
            stop_timers(refs.faults.values())
        self.invariants(failed)

    def invariants(self, failed: bool) -> None:
        """The whole-run check, only after every step passed (or off by the file)."""
        s, r = self.scenario, self.result
        if not s.invariants:
            r.invariants = f"off: {s.invariants_reason}"
        elif failed:
            r.invariants = "NOT RUN (a step failed)"
        else:
            if self.lab.recorder is not None:
                self.lab.recorder.stop()
            try:
                assert_invariants(self.refs.tl, s.public_ips(),
                                  takeover_bound=self.refs.bounds.takeover,
                                  allow_duplicates_on=[self.refs.node(n)
                                                       for n in s.duplicates_allowed_on])
                r.invariants = OK
            except AssertionError as e:
                r.invariants, r.invariants_message = FAILED, str(e)
        self.echo(invariants_line(r, len(s.public_ips())))
        if r.invariants == FAILED:
            self.echo(indent(r.invariants_message))

    def do(self, step: Step, r: StepResult) -> None:
        """Play one step; a failure raises one of STEP_ERRORS."""
        if isinstance(step, FaultStep):
            apply_fault(self.refs, step, r)
        elif isinstance(step, UndoStep):
            undo_fault(self.refs, step, r)
        elif isinstance(step, WaitStep):
            seconds = step.seconds.value(self.refs.named(None))
            r.bound_text, r.note = str(step.seconds), f"waited {seconds:.2f} s"
            time.sleep(seconds)
        else:
            check_expectation(self.refs, step, r)
