"""Timing bounds from the tunables in force, two-sided expectations on the
timeline, and the invariants every failover run must keep.

    b = Bounds.of(backend)
    fault = faults.pull_cable(2, "eth1").apply()
    bad = expect(timeline, "flags", node=2, after=fault.apply_event,
                 within=(0, b.detection(due)), where=has_flag("UNHEALTHY"))

A failed expectation or invariant raises AssertionError whose message shows
the timeline around the moment that broke it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.record import Event, Timeline, TimelineTimeout
from harness.wait import time_scale


@dataclass(frozen=True)
class Bounds:
    """Upper bounds (seconds) derived from one backend's tunables, plus slack.

    slack covers scheduling and polling on a loaded 2-core machine (the status
    poller runs every 100 ms); `scale` multiplies everything under emulation.
    """

    monitor_interval: float
    recover_interval: float
    keepalive_interval: float
    keepalive_limit: float
    takeover_timeout: float
    slack: float = 1.0
    scale: float = 1.0

    @classmethod
    def of(cls, backend, slack: float = 1.0) -> Bounds:  # noqa: ANN001 - any Backend
        t = backend.tunable
        return cls(t("MonitorInterval"), t("RecoverInterval"), t("KeepaliveInterval"),
                   t("KeepaliveLimit"), t("TakeoverTimeout"), slack, time_scale())

    @property
    def monitor_gap(self) -> float:
        """Longest gap between monitor runs: 5 s after a health change, else the cap."""
        return max(5.0, self.monitor_interval)

    def detection(self, due: float | None = None) -> float:
        """Fault -> UNHEALTHY: the next monitor run (due in `due` s if known) + slack."""
        return ((self.monitor_gap if due is None else due) + self.slack) * self.scale

    @property
    def recovery(self) -> float:
        """Fault removed -> OK again: the next run comes within one gap."""
        return (self.monitor_gap + self.slack) * self.scale

    @property
    def takeover(self) -> float:
        """UNHEALTHY/DISCONNECTED -> IPs in the kernel elsewhere: the leader serves the
        request at the end of its recovery-loop pass (ctdbd, and failoverd in poll
        mode: within a RecoverInterval; event mode at once); a missed request is
        caught by the next RecoverInterval check."""
        return (self.recover_interval + self.slack) * self.scale

    @property
    def keepalive(self) -> float:
        """Silent node -> DISCONNECTED: Limit missed intervals, plus one for the phase."""
        return (self.keepalive_interval * (self.keepalive_limit + 1) + self.slack) * self.scale

    @property
    def takeover_deadline(self) -> float:
        """CTDB gives a takeover run 3 x TakeoverTimeout before it fails."""
        return 3 * self.takeover_timeout * self.scale


def has_flag(name: str) -> Callable[[Event], bool]:
    return lambda e: name in e.data.get("flags", ())


def is_ok(e: Event) -> bool:
    return list(e.data.get("flags", ())) == ["OK"] or "PARTIALLYONLINE" in e.data.get("flags", ())


def expect(tl: Timeline, kind: str, *, after: Event | float, within: tuple[float, float],
           node: object = ..., where: Callable[[Event], bool] | None = None,
           **data: Any) -> Event:
    """The first matching event after `after` must come within [lo, hi] seconds of it."""
    lo, hi = within
    ref = after.t if isinstance(after, Event) else float(after)
    try:
        ev = tl.wait_for(kind, after=after, node=node, where=where, timeout=hi + 0.2, **data)
    except TimelineTimeout as e:
        _record_bound(tl, kind, node, ref, lo, hi, None)
        raise AssertionError(f"expected {kind} (node {node}) within {hi:.2f} s: {e}") from None
    dt = ev.t - ref
    _record_bound(tl, kind, node, ref, lo, hi, dt)
    if not lo <= dt <= hi:
        raise AssertionError(
            f"{kind} (node {node}) came {dt:.3f} s after the reference, outside "
            f"[{lo:.2f}, {hi:.2f}] s\n" + tl.window(ev, before=max(2.0, dt + 0.5), after=1.0,
                                                      ref=after))
    return ev


def _record_bound(tl: Timeline, what: str, node: object, ref: float, lo: float, hi: float,
                  seen: float | None, **data: Any) -> None:
    """Put the bound just asserted on the timeline (kind "assert.bound"), so a
    run report shows each delay next to the bound the test really used, not
    one recomputed from the tunables. `seen` is None when nothing came."""
    tl.mark("assert", "assert.bound", node if isinstance(node, int) else None,
            what=what, ref=ref, lo=lo, hi=hi, seen=seen, **data)


def expect_moved(tl: Timeline, ips: Iterable[str], *, off: int, after: Event,
                 within: float, ref: Event, takeover: float) -> list[Event]:
    """Each IP is added on a node other than `off` within `within` s of `after`
    (the fault), and at most `takeover` s after `ref` (the UNHEALTHY or
    DISCONNECTED event). The add is awaited from the fault: status polls lag,
    so a fast takeover can be seen before the flag that caused it."""
    adds = []
    for ip in ips:
        add = expect(tl, "addr.add", after=after, within=(0, within), ip=ip,
                     where=lambda e: e.data["ns"] != f"n{off}")
        _record_bound(tl, "takeover", off, ref.t, 0.0, takeover, add.t - ref.t, ip=ip)
        if add.t - ref.t > takeover:
            raise AssertionError(
                f"{ip} appeared elsewhere {add.t - ref.t:.3f} s after {ref.kind}, bound "
                f"{takeover:.2f} s\n" + tl.window(add, before=takeover + 1, after=0.5, ref=ref))
        adds.append(add)
    return adds


def expect_none(tl: Timeline, kind: str, *, after: Event | float, for_s: float,
                node: object = ..., where: Callable[[Event], bool] | None = None,
                **data: Any) -> None:
    """No matching event may appear within `for_s` seconds after `after`.

    Waits on the timeline until the window closes (a deadline, not a sleep) and
    fails as soon as a forbidden event arrives.
    """
    ref = after.t if isinstance(after, Event) else float(after)
    remaining = ref + for_s - time.monotonic()
    try:
        ev = tl.wait_for(kind, after=after, node=node, where=where, timeout=max(0.0, remaining),
                         **data)
    except TimelineTimeout:
        return
    if ev.t <= ref + for_s:
        raise AssertionError(
            f"{kind} (node {node}) must not happen within {for_s:.2f} s, but came after "
            f"{ev.t - ref:.3f} s\n" + tl.window(ev, before=2.0, after=1.0, ref=after))


# -- invariants ------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    what: str
    t: float

    def render(self, tl: Timeline) -> str:
        return f"INVARIANT BROKEN: {self.what}\n" + tl.window(self.t, before=2.0, after=1.0)


def _node_label(label: str) -> int | None:
    return int(label[1:]) if label.startswith("n") and label[1:].isdigit() else None


def _unhealthy_spans(tl: Timeline, pnn: int, end: float) -> list[tuple[float, float]]:
    """When node pnn, by its own account, was surely UNHEALTHY.

    Only the node's own view counts: CTDB shows a peer it lost as
    DISCONNECTED|UNHEALTHY|INACTIVE, which says nothing about that peer's monitor.

    The status poller puts a `flags` event on the timeline only when the
    flags change, so a span starts at the first poll that showed UNHEALTHY
    and is known to last until the last poll that still showed it. That poll
    is not on the timeline: it came at most one poll gap (the longest the
    poller's status.beat events report) before the first poll that showed
    the node recovered - or before the recording's end, or before another
    node's poll saw it recovered. A span ends there: a node that turned
    healthy and took an IP between two polls is not a violation, and an IP
    on a node whose polls kept saying UNHEALTHY is.
    """
    lag = max((float(b.data["max_gap"]) for b in tl.events("status.beat", node=pnn)
               if "max_gap" in b.data), default=0.0)
    spans: list[tuple[float, float]] = []
    start = None
    for e in tl.events("flags", node=pnn, source="status", where=lambda e: e.data.get("by") == pnn):
        if "UNHEALTHY" in e.data.get("flags", ()):
            start = e.t if start is None else start
        elif start is not None:
            spans.append((start, e.t - lag))
            start = None
    if start is not None:
        # still open when recording stopped, unless another node's poll
        # already saw it recovered (its own poll had not come yet)
        recovered = tl.events("flags", node=pnn, source="status", since=start,
                              where=lambda e: "UNHEALTHY" not in e.data.get("flags", ()))
        spans.append((start, (recovered[0].t if recovered else end) - lag))
    return [(a, b) for a, b in spans if b > a]


# Each node namespace has its own netlink listener thread, which dates an event
# when it reads it. Under load (the host suite beside the emulated VM) a
# listener was read up to 35 ms late: the releasing node's log said its delete
# came 35 ms before the new holder's add, the listeners dated them the other way
# round. An overlap of two holders shorter than this is the dating, not the
# cluster; the split brains this check exists for (an isolated node keeping its
# IPs, a takeover without release) last seconds.
DATING_GRACE = 0.1


RECORDER_START_S = 10.0
"""How long Recorder.start() waits for every recorder's first pass."""


def blind_spots(tl: Timeline, end: float) -> list[Violation]:
    """Where the recorders were not looking, so the invariants would pass vacuously:
    a recorder.error (a recorder died or dropped what it read), and a status
    poller whose status.beat events are missing or report a gap between polls
    over their bound. Only pollers the timeline's recorder.start names are
    checked: a timeline recorded without pollers promises nothing about them."""
    out = [Violation(f"recorder {e.data.get('component') or e.data.get('ns')} failed: "
                     f"{e.data.get('error')}", e.t) for e in tl.events("recorder.error")]
    for start in tl.events("recorder.start", source="recorder"):
        stop = tl.first("recorder.stop", after=start, source="recorder")
        until = min(end, stop.t) if stop is not None else end
        for name in start.data.get("components") or ():
            if not str(name).startswith("status:"):
                continue
            pnn = int(str(name).split(":", 1)[1])
            beats = tl.events("status.beat", node=pnn, source="status", since=start.t,
                              until=until)
            if not beats:
                if until - start.t > RECORDER_START_S * time_scale():
                    out.append(Violation(f"{name} never sent a heartbeat", start.t))
                continue
            # beats come about every `every` s; each says how long a pass may take
            last = beats[0].t
            for b in beats:
                bound = float(b.data["bound"])
                silence = max(float(b.data["max_gap"]), b.t - last - float(b.data["every"]))
                if silence > bound:
                    out.append(Violation(f"{name}'s polls stopped for {silence:.2f} s "
                                         f"(bound {bound:.2f} s): nobody looked meanwhile", b.t))
                last = b.t
            tail = until - last - float(beats[-1].data["every"])
            if tail > float(beats[-1].data["bound"]):
                out.append(Violation(f"{name} sent no heartbeat for the last {until - last:.2f} s "
                                     f"(bound {beats[-1].data['bound']} s + "
                                     f"{beats[-1].data['every']} s)", last))
    return out


def find_violations(tl: Timeline, ips: Iterable[str], *, takeover_bound: float,
                    allow_duplicates_on: Iterable[int] = (),
                    arp_grace: float = 0.25, dating_grace: float = DATING_GRACE,
                    until: float | None = None) -> list[Violation]:
    """Check the whole timeline:
    - the recorders were looking all along (blind_spots): otherwise every
      other check here could pass for want of events;
    - no public IP held by two node namespaces at once (split brain) for longer
      than dating_grace (times the VM's time scale), except on nodes named in
      allow_duplicates_on (a killed daemon cannot remove its IPs);
    - no IP on a node that has been UNHEALTHY for longer than the takeover bound;
    - every ARP answer the client saw came from a node holding that IP then
      (within arp_grace, the probe's own round trip).
    """
    want = [str(ip) for ip in ips]
    allowed = set(allow_duplicates_on)
    out: list[Violation] = []
    held: dict[str, set[str]] = {ip: set() for ip in want}
    # events come only on change: the observation lasts until now (or `until`)
    end = time.monotonic() if until is None else until
    out += blind_spots(tl, end)
    history: dict[str, list[tuple[float, frozenset[str]]]] = {ip: [(0.0, frozenset())]
                                                              for ip in want}
    # when the current overlap of two live holders began, per IP, and who held it
    overlap: dict[str, tuple[float, frozenset[str]]] = {}
    grace = dating_grace * time_scale()

    def overlap_ended(ip: str, t: float) -> None:
        began, who = overlap.pop(ip)
        if t - began > grace:
            out.append(Violation(f"{ip} held by {sorted(who)} at once for {t - began:.3f} s "
                                 f"(split brain; dating grace {grace:.3f} s)", began))

    for e in tl.events(("addr.add", "addr.del"), source="netlink"):
        ip = e.data["ip"]
        if ip not in held or _node_label(e.data["ns"]) is None:
            continue
        (held[ip].add if e.kind == "addr.add" else held[ip].discard)(e.data["ns"])
        history[ip].append((e.t, frozenset(held[ip])))
        live = frozenset(h for h in held[ip] if _node_label(h) not in allowed)
        if len(live) > 1 and ip not in overlap:
            overlap[ip] = (e.t, live)
        elif len(live) <= 1 and ip in overlap:
            overlap_ended(ip, e.t)
    for ip in list(overlap):
        overlap_ended(ip, max(end, overlap[ip][0]))

    def holders_at(ip: str, t: float) -> frozenset[str]:
        cur: frozenset[str] = frozenset()
        for tt, hs in history[ip]:
            if tt > t:
                break
            cur = hs
        return cur

    def held_within(ip: str, label: str, lo: float, hi: float) -> bool:
        """Whether label held ip at any moment of [lo, hi] (not only at its
        ends: a node may take an IP and release it again within the grace)."""
        return label in holders_at(ip, lo) or any(
            label in hs for tt, hs in history[ip] if lo < tt <= hi)

    pnns = sorted({n for ip in want for _, hs in history[ip] for h in hs
                   if (n := _node_label(h)) is not None})
    for pnn in pnns:
        for start, stop in _unhealthy_spans(tl, pnn, end):
            check_from = start + takeover_bound
            for ip in want:
                for tt, hs in history[ip]:
                    if check_from <= tt < stop and f"n{pnn}" in hs:
                        out.append(Violation(f"{ip} on node {pnn}, UNHEALTHY since "
                                             f"{tt - start:.2f} s (bound {takeover_bound:.2f} s)",
                                             tt))
                        break
                else:
                    if check_from < stop and f"n{pnn}" in holders_at(ip, check_from):
                        out.append(Violation(f"{ip} still on node {pnn} {takeover_bound:.2f} s "
                                             "after it became UNHEALTHY", check_from))
    for e in tl.events("probe.arp"):
        ip = str(e.data.get("ip"))
        if ip not in history:
            continue
        for n in e.data.get("nodes") or ():
            if n is None:
                continue
            label = f"n{n}"
            if not held_within(ip, label, e.t - arp_grace, e.t + arp_grace):
                out.append(Violation(f"node {n} answered ARP for {ip} without holding it", e.t))
    return out


def assert_invariants(tl: Timeline, ips: Iterable[str], *, takeover_bound: float,
                      allow_duplicates_on: Iterable[int] = (), arp_grace: float = 0.25,
                      dating_grace: float = DATING_GRACE, until: float | None = None) -> None:
    """find_violations, raised as one AssertionError showing the first three."""
    found = find_violations(tl, ips, takeover_bound=takeover_bound,
                            allow_duplicates_on=allow_duplicates_on, arp_grace=arp_grace,
                            dating_grace=dating_grace, until=until)
    if found:
        raise AssertionError("\n\n".join(v.render(tl) for v in found[:3]) +
                             (f"\n... and {len(found) - 3} more" if len(found) > 3 else ""))
