"""The expectation steps of a scenario: wait on the timeline (deadlines, not
sleeps) for what the step names, measured from its `after` reference, and
fail with the timeline window around it when it comes too early, too late
or not at all.

`expect = "none"` watches for `for` seconds that nothing matching happens;
every other kind waits for one event within its `within` bounds. The event
found is kept in References.events under the step's id, for later steps'
`after` and `flagged`.
"""

from __future__ import annotations

import time

from harness.assertions import expect, expect_moved, expect_none
from harness.record import Event, address_holders, outages
from harness.scenario.model import ExpectStep
from harness.scenario.references import References, StepFailed
from harness.scenario.report import StepResult
from harness.wait import WaitTimeout, wait_until


def check_expectation(refs: References, step: ExpectStep, r: StepResult) -> None:
    """Play one expectation step; its measured delay and note go on `r`."""
    ref, due = refs.reference(step.after)
    pnn = None if step.node is None else refs.node(step.node)
    if step.expect == "none":
        assert step.for_ is not None
        seconds = step.for_.value(refs.named(due))
        r.bound_text = str(step.for_)
        where = refs.predicate(has=step.flag, match=step.match, by=step.by, subject=pnn)
        expect_none(refs.tl, "flags" if step.flag else str(step.kind), after=ref,
                    for_s=seconds, node=... if pnn is None else pnn, where=where)
        found = refs.tl.mark("test", "note", pnn, t=ref.t + seconds,
                             text=f"step {step.number}: nothing for {seconds:.2f} s")
        r.note = f"none for {seconds:.2f} s" + (f" ({step.for_})" if step.for_.names else "")
    else:
        assert step.within is not None
        lo, hi = refs.span(step.within, due, r)
        found = _awaited(refs, step, ref, pnn, lo, hi, r)
        r.delay = found.t - ref.t
    if step.id is not None:
        refs.events[step.id] = found


def _awaited(refs: References, step: ExpectStep, ref: Event, pnn: int | None, lo: float,
             hi: float, r: StepResult) -> Event:
    """The event an expectation (other than "none") waited for, within [lo, hi]."""
    if step.expect == "event":
        return _event(refs, step, ref, pnn, lo, hi)
    if step.expect == "converged":
        return _converged(refs, step, ref, lo, hi)
    assert pnn is not None  # the loader requires `node` for the others
    if step.expect == "flag":
        return _flag(refs, step, ref, pnn, lo, hi)
    if step.expect == "ok":
        return _ok(refs, step, ref, pnn, lo, hi)
    if step.expect == "moved":
        return _moved(refs, step, ref, pnn, lo, hi, r)
    return _reachable(refs, step, ref, pnn, lo, hi, r)


def _flag(refs: References, step: ExpectStep, ref: Event, pnn: int, lo: float, hi: float
          ) -> Event:
    """`expect = "flag"`: node pnn's flags gain the step's flag."""
    return expect(refs.tl, "flags", node=pnn, after=ref, within=(lo, hi),
                  where=refs.predicate(has=step.flag, by=step.by, subject=pnn))


def _ok(refs: References, step: ExpectStep, ref: Event, pnn: int, lo: float, hi: float
        ) -> Event:
    """`expect = "ok"`: node pnn's flags are exactly OK."""
    return expect(refs.tl, "flags", node=pnn, after=ref, within=(lo, hi),
                  where=refs.predicate(ok=True, by=step.by, subject=pnn))


def _event(refs: References, step: ExpectStep, ref: Event, pnn: int | None, lo: float,
           hi: float) -> Event:
    """`expect = "event"`: a timeline event of the step's kind (and match)."""
    return expect(refs.tl, str(step.kind), node=... if pnn is None else pnn, after=ref,
                  within=(lo, hi), where=refs.predicate(match=step.match))


def _held_at(refs: References, ref: Event, pnn: int, step: ExpectStep) -> list[str]:
    """The public IPs node pnn held (in its kernel) at the reference."""
    wanted = list(step.ips) or refs.scenario.public_ips()
    held = address_holders(refs.tl, at=ref, ips=wanted)
    ips = sorted(ip for ip, holders in held.items() if f"n{pnn}" in holders)
    if not ips:
        raise StepFailed(f"node {pnn} held none of {', '.join(wanted)} at {step.after}: "
                         "nothing to watch\n" + refs.tl.window(ref, before=1.0, after=0.5))
    return ips


def _moved(refs: References, step: ExpectStep, ref: Event, pnn: int, lo: float, hi: float,
           r: StepResult) -> Event:
    """`expect = "moved"`: every IP node pnn held is added elsewhere, not before lo."""
    ips = _held_at(refs, ref, pnn, step)
    flagged = refs.events[step.flagged] if step.flagged else ref
    takeover = refs.bounds.takeover if step.flagged else hi
    adds = expect_moved(refs.tl, ips, off=pnn, after=ref, within=hi, ref=flagged,
                        takeover=takeover)
    last = max(adds, key=lambda e: e.t)
    early = [a for a in adds if a.t - ref.t < lo]
    if early:
        raise StepFailed(f"{early[0].data['ip']} moved {early[0].t - ref.t:.3f} s after "
                         f"{step.after}, before the lower bound {lo:.2f} s\n"
                         + refs.tl.window(early[0], before=lo + 1, after=0.5, ref=ref))
    r.note = ", ".join(f"{a.data['ip']} -> {a.data['ns']}" for a in adds)
    if step.flagged:
        r.note += f"; {last.t - flagged.t:.3f} s after {step.flagged} (takeover " \
                  f"{takeover:.2f} s)"
    return last


def _reachable(refs: References, step: ExpectStep, ref: Event, pnn: int, lo: float,
               hi: float, r: StepResult) -> Event:
    """`expect = "reachable"`: the client's outage of every IP node pnn held ends."""
    ips = _held_at(refs, ref, pnn, step)

    def ended() -> dict[str, tuple[float, float]] | None:
        out = {}
        for ip in ips:
            seen = outages(refs.tl, ip, since=ref)
            last = seen[-1] if seen else None
            if last is None or last.end is None or last.duration is None:
                return None
            out[ip] = (last.end.t, last.duration)
        return out

    try:
        _, ends = wait_until(ended, max(0.0, ref.t + hi - time.monotonic()) + 0.3,
                             f"the client reaches {', '.join(ips)} again")
    except WaitTimeout as e:
        raise StepFailed(f"{e}\n" + refs.tl.window(time.monotonic(), before=hi + 0.5,
                                                   after=0.5, ref=ref,
                                                   kind=("probe.*", "addr.*", "fault.*",
                                                         "flags"))) from None
    assert ends is not None
    t_end = max(t for t, _ in ends.values())
    r.note = "outage " + ", ".join(f"{ip} {d:.2f} s" for ip, (_, d) in ends.items())
    found = refs.tl.mark("test", "note", pnn, t=t_end,
                         text=f"step {step.number}: the client reaches {', '.join(ips)}")
    if not lo <= t_end - ref.t <= hi:
        raise StepFailed(f"the client reached {', '.join(ips)} again {t_end - ref.t:.3f} s "
                         f"after {step.after}, outside [{lo:.2f}, {hi:.2f}] s\n"
                         + refs.tl.window(found, before=hi + 0.5, after=0.5, ref=ref))
    return found


def _converged(refs: References, step: ExpectStep, ref: Event, lo: float, hi: float) -> Event:
    """`expect = "converged"`: the implementation says the cluster converged."""
    backend = refs.lab.backend
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
                         + refs.tl.window(time.monotonic(), before=3.0, after=0.5,
                                          ref=ref)) from None
    found = refs.tl.mark("test", "note", None, t=seen, text=f"step {step.number}: converged")
    if not lo <= seen - ref.t <= hi:
        raise StepFailed(f"converged {seen - ref.t:.3f} s after {step.after}, outside "
                         f"[{lo:.2f}, {hi:.2f}] s\n"
                         + refs.tl.window(found, before=3.0, after=0.5, ref=ref))
    return found
