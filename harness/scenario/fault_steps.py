"""The fault and undo steps of a scenario, and their background undo.

A fault step applies its fault (at its `at` time, or arms its `on` trigger)
and returns; a fault with `for` is undone in the background that many
seconds after it acted, and a flap undoes itself after its last cycle, so
the expectations after it can watch the fault while it lasts. Each fault
step with an id is kept in References.faults, where `after = ID` and
`after = ID.undo` find it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from harness.faults import FaultCancelled, Flap, build_fault
from harness.scenario.model import FaultStep, UndoStep
from harness.scenario.references import STEP_ERRORS, FaultRun, References
from harness.scenario.report import StepResult


def apply_fault(refs: References, step: FaultStep, r: StepResult) -> None:
    """Apply (or arm) the step's fault and start its undo timer if it has one."""
    assert refs.start is not None
    args = {k: refs.node(v) if k == "node" else v for k, v in step.args.items()}
    fault = build_fault(refs.lab.faults, step.fault, args)
    fr = FaultRun(step, fault)
    if step.on is not None:
        on = step.on
        fr.trigger = refs.lab.faults.on(
            on.kind, fault, where=refs.predicate(has=on.has, match=on.match),
            node=... if on.node is None else refs.node(on.node), offset=on.offset,
            timeout=on.timeout)
        fr.trigger.apply()
        r.note = "armed"
    else:
        target = None if step.at is None else refs.start.t + step.at
        if target is not None:  # the monitor's due time is read just before the fault
            time.sleep(max(0.0, target - 0.2 - time.monotonic()))
        fr.due = refs.due(fault.node)
        fault.apply(at=target)
        assert fault.apply_event is not None
        applied = fault.apply_event.t - refs.start.t
        late = 0.0 if target is None else fault.apply_event.t - target
        r.note = f"applied at +{applied:.3f} s" + (f", late by {late:.3f} s"
                                                   if late > 0.05 else "")
    if step.id is not None:
        refs.faults[step.id] = fr
    if step.for_s is not None or isinstance(fault, Flap):
        fr.timer = threading.Thread(target=_undo_later, args=(fr,), daemon=True,
                                    name=f"undo-{step.id or step.number}")
        fr.timer.start()


def _undo_later(fr: FaultRun) -> None:
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


def undo_fault(refs: References, step: UndoStep, r: StepResult) -> None:
    """Undo (or disarm, if it has not fired) the fault step `step.target`."""
    assert refs.start is not None
    fr = refs.faults[step.target]
    fr.undo_due = refs.due(fr.fault.node)
    if fr.trigger is not None:
        fr.trigger.undo()
    else:
        fr.fault.undo()
    if fr.fault.undo_event is None:
        r.note = "it had not fired: disarmed"
    else:
        r.note = f"undone at +{fr.fault.undo_event.t - refs.start.t:.3f} s"


def stop_timers(faults: Iterable[FaultRun]) -> None:
    """Call off pending undo timers (the lab undoes whatever is still applied)."""
    for fr in faults:
        if fr.timer is None or not fr.timer.is_alive():
            continue
        fr.cancel.set()
        if isinstance(fr.fault, Flap):
            fr.fault.undo()
        else:
            fr.fault.abort.set()
        fr.timer.join(15)
        fr.fault.abort.clear()
