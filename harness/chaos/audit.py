"""Judging one chaos round on the timeline: the invariants over its window,
and for a round of one fault, its detection and takeover against the bounds.

Detection: the fault's apply -> the node UNHEALTHY (or BANNED) by its own
account (a link fault; bound: detection) or DISCONNECTED in another node's view (a
dead, hung or cut-off daemon; bound: keepalive). Takeover: that flag -> the
last of the IPs the node held added on another node (bound: takeover); 0 s
when they were all elsewhere before the flag (a deleted interface takes
its addresses with it, and the recovery check moves them at once). A
fault undone before its detection bound is not measured: nobody had to notice.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.assertions import Bounds, find_violations, has_flag
from harness.chaos.plan import DISCONNECTED, UNHEALTHY, Step
from harness.record import Event, Timeline
from harness.record.events import address_holders


@dataclass(frozen=True)
class Measure:
    """One measured delay next to its bound (seconds)."""

    what: str
    took: float
    bound: float

    @property
    def ok(self) -> bool:
        return self.took <= self.bound

    def describe(self) -> str:
        return f"{self.what} {self.took:.2f} s {'<=' if self.ok else '>'} {self.bound:.2f} s"


def detection_bound(step: Step, b: Bounds) -> float:
    return b.detection() if step.effect == UNHEALTHY else b.keepalive


LOCK_KEEPING = frozenset({"hang", "isolate"})
"""Faults after which the node's daemon still holds the cluster lock: on the
leader, nobody else can lead, so its IPs stay until it wakes or rejoins (as
with ctdbd, whose lock helper keeps the lock); takeover is not measured."""


def measure(tl: Timeline, step: Step, applied: Event, undone: float, b: Bounds,
            ips: list[str], leader: int | None = None) -> tuple[list[Measure], list[str]]:
    """(measures, problems) of one lone fault; `leader` as it was before it."""
    pnn = step.node
    if pnn is None or step.effect not in (UNHEALTHY, DISCONNECTED):
        return [], []
    bound = detection_bound(step, b)
    if undone - applied.t < bound:
        return [], []
    if step.effect == UNHEALTHY:
        # or BANNED first: a deleted interface fails the takeips the leader
        # sends back before the monitor sees it, and two failed runs ban the
        # node (as ctdbd does); banned, it runs no monitor, but it is out and
        # has released its IPs all the same
        flag = tl.first("flags", after=applied, node=pnn,
                        where=lambda e: e.data.get("by") == pnn
                        and (has_flag("UNHEALTHY")(e) or has_flag("BANNED")(e)))
    else:
        flag = tl.first("flags", after=applied, node=pnn,
                        where=lambda e: e.data.get("by") != pnn and has_flag("DISCONNECTED")(e))
    if flag is None or flag.t > undone:
        return [], [f"node {pnn} never {step.effect.upper()} within {bound:.2f} s of "
                    f"{step.describe()}"]
    how = "banned" if has_flag("BANNED")(flag) else step.effect
    out = [Measure(f"detection({how})", flag.t - applied.t, bound)]
    held = [ip for ip, hs in address_holders(tl, at=applied, ips=ips).items()
            if f"n{pnn}" in hs]
    if not held or undone - flag.t < b.takeover or (pnn == leader
                                                       and step.kind in LOCK_KEEPING):
        return out, []
    last = flag.t  # an IP already elsewhere before the flag (its interface gone) took 0 s
    for ip in held:
        add = tl.first("addr.add", after=applied, source="netlink", ip=ip,
                       where=lambda e: e.data.get("ns", "").startswith("n")
                       and e.data["ns"] != f"n{pnn}")
        if add is None or add.t > undone:
            return out, [f"{ip} of node {pnn} not taken over within {b.takeover:.2f} s of "
                         f"its {step.effect.upper()} flag ({step.describe()})"]
        last = max(last, add.t)
    out.append(Measure("takeover", last - flag.t, b.takeover))
    return out, []


SILENT_PEER = frozenset({"hang", "one-way-loss", "isolate", "partition"})
"""Faults that leave a node connected but silent until the keepalive declares
it gone: a takeover run cannot read its IPs meanwhile and fails (as CTDB's),
so any other node's takeover in that round may wait up to the keepalive bound.
A cut private network is one of them: its packets are dropped, no connection
is reset (seed 901, round 183: node 2 isolated and node 3's cable pulled at
once; the leader's run waited for node 2's `ips` until the keepalive gave it
up, and node 3's IP moved 2.76 s after its UNHEALTHY flag)."""


def invariant_problems(tl: Timeline, ips: list[str], b: Bounds, since: float, until: float,
                       excused: set[int], kinds: frozenset[str] = frozenset()) -> list[str]:
    """The invariants' violations that began in [since, until], as lines;
    `kinds`: the round's fault kinds."""
    bound = b.takeover + (b.keepalive if kinds & SILENT_PEER else 0.0)
    found = find_violations(tl, ips, takeover_bound=bound, allow_duplicates_on=excused,
                            until=until)
    return [f"{v.what} (at {v.t - tl.t0:.2f} s)" for v in found if since <= v.t <= until]
