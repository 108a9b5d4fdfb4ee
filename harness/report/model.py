"""The page's data, read from one merged timeline: what each lane of the
swimlane chart shows, the measured delays and the rows of the event table.

Everything here is plain data derived from `Timeline` events (times in
seconds since the run's first event), so the chart, the HTML page and the
Chrome trace all draw the same facts and none of them queries the timeline
again. Nothing here draws.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.assertions import Bounds
from harness.ctdb.tunables import DEFAULTS
from harness.record import Event, Timeline, outages
from harness.topology import Topology

# node flags in the order the chart stacks them (worst first wins the colour)
FLAGS = ("BANNED", "STOPPED", "DISCONNECTED", "DISABLED", "UNHEALTHY", "PARTIALLYONLINE",
         "INACTIVE", "OK")
MONITOR_RUN = re.compile(r"monitor event (\w+; next in|failed)")
# probe kinds whose failures are client outages, with the data key that says "answered"
OUTAGE_KINDS = {"probe.icmp": "ICMP", "probe.arp": "ARP", "probe.tcp": "TCP"}


@dataclass(frozen=True)
class Span:
    """[start, end) in seconds since the run's start, with what held during it."""

    start: float
    end: float
    label: str

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Lane:
    """One row of the chart: a group (node, ip, link, bond, client), its name,
    its spans and its instant ticks (monitor runs)."""

    group: str
    name: str
    spans: list[Span] = field(default_factory=list)
    ticks: list[float] = field(default_factory=list)
    marks: list[Span] = field(default_factory=list)  # disagreements, drawn hatched


@dataclass(frozen=True)
class Delay:
    """One measured delay next to the bound the tunables give it (None: no bound)."""

    fault: str
    what: str
    seconds: float | None
    bound: float | None
    at: float | None = None  # where to annotate it on the chart (s)
    asserted: bool = False  # bound is the one a test asserted (else from the tunables)

    @property
    def within(self) -> bool | None:
        if self.seconds is None or self.bound is None:
            return None
        return self.seconds <= self.bound


@dataclass
class RunInfo:
    """What the timeline alone does not say: whose run, under which settings."""

    title: str
    implementation: str = "?"
    tunables: dict[str, int] = field(default_factory=dict)
    topology: Topology | None = None
    verdict: str = ""  # "passed", "failed: ...", or empty when unknown
    slack: float = 1.0

    def tunable(self, name: str) -> int:
        return self.tunables.get(name, DEFAULTS[name])

    def bounds(self) -> Bounds:
        t = self.tunable
        return Bounds(t("MonitorInterval"), t("RecoverInterval"), t("KeepaliveInterval"),
                      t("KeepaliveLimit"), t("TakeoverTimeout"), self.slack)


@dataclass
class Row:
    """One line of the event table."""

    t: float
    node: str
    kind: str
    source: str
    text: str


@dataclass
class ReportData:
    info: RunInfo
    duration: float
    lanes: list[Lane]
    faults: list[Span]
    delays: list[Delay]
    rows: list[Row]
    t0: float  # monotonic time of the run's start (the zero of every span)


def _node_label(node: int | None) -> str:
    return "-" if node is None else f"n{node}"


def _steps(changes: Iterable[tuple[float, str]], end: float,
           start_label: str | None = None, start: float = 0.0) -> list[Span]:
    """Turn (time, state) changes into spans; consecutive equal states merge."""
    spans: list[Span] = []
    cur_t, cur = start, start_label
    for t, label in changes:
        if label == cur:
            continue
        if cur is not None and t > cur_t:
            spans.append(Span(cur_t, t, cur))
        cur_t, cur = t, label
    if cur is not None and end > cur_t:
        spans.append(Span(cur_t, end, cur))
    return spans


def _grouped(evs: Iterable[Event], key: Callable[[Event], Any]) -> dict[Any, list[Event]]:
    """Events by key in one pass (a long run has many lanes: one scan each
    would cost lanes x events)."""
    out: dict[Any, list[Event]] = {}
    for e in evs:
        k = key(e)
        if k is not None:
            out.setdefault(k, []).append(e)
    return out


def _flag_lane(flags: list[Event], pnn: int, rel: float, end: float) -> Lane:
    """Node flags as all observers saw them: each observer's latest view,
    merged; the worst flag names the span ("OK" when none has a flag)."""
    views: dict[Any, set[str]] = {}
    changes: list[tuple[float, str]] = []
    for e in flags:
        views[e.get("by")] = {f for f in e.get("flags", ()) if f != "OK"}
        seen = set().union(*views.values())
        label = next((f for f in FLAGS if f in seen), "OK")
        label = "+".join([label] + sorted(seen - {label})) if len(seen) > 1 else label
        changes.append((e.t - rel, label))
    return Lane("node", f"n{pnn} flags", _steps(changes, end))


def _kernel_holders(tl: Timeline, ip: str, rel: float) -> list[tuple[float, frozenset[str]]]:
    held: set[str] = set()
    out = []
    for e in tl.events(("addr.add", "addr.del"), source="netlink", ip=ip):
        ns = e["ns"]
        if not ns.startswith("n"):
            continue
        (held.add if e.kind == "addr.add" else held.discard)(ns)
        out.append((e.t - rel, frozenset(held)))
    return out


def _ip_lane(tl: Timeline, ip: str, rel: float, end: float) -> Lane:
    """Who holds the IP in the kernel; spans where `ctdb ip` (any observer)
    names another holder are marks."""
    kernel = _kernel_holders(tl, ip, rel)
    spans = _steps(((t, "+".join(sorted(h)) or "none") for t, h in kernel), end)
    # ctdb view per observer, and the disagreement intervals with the kernel view
    ctdb: dict[Any, str] = {}
    points = sorted([(t, "k", h) for t, h in kernel]
                    + [(e.t - rel, "c", e) for e in tl.events("holder", ip=ip)],
                    key=lambda x: x[0])
    held: frozenset[str] = frozenset()
    changes: list[tuple[float, str]] = []
    for t, what, x in points:
        if what == "k":
            held = x  # type: ignore[assignment]
        else:
            ev: Event = x  # type: ignore[assignment]
            pnn = ev.get("pnn")
            ctdb[ev.get("by")] = "none" if pnn is None or pnn < 0 else f"n{pnn}"
        kernel_name = "+".join(sorted(held)) or "none"
        bad = sorted({v for v in ctdb.values() if v != kernel_name})
        changes.append((t, f"ctdb says {','.join(bad)}" if bad else ""))
    marks = [s for s in _steps(changes, end) if s.label]
    return Lane("ip", ip, spans, marks=marks)


def _link_lanes(tl: Timeline, topology: Topology | None, rel: float, end: float
                ) -> list[Lane]:
    """Carrier and admin state per node interface; a bond's active slave."""
    keys: set[tuple[str, str]] = set()
    if topology is not None:
        for pnn in range(topology.nodes):
            for iface in topology.interfaces:
                keys.add((f"n{pnn}", iface.name))
                for port in iface.ports:
                    keys.add((f"n{pnn}", port))
    link_kinds = ("link.carrier", "link.admin", "link.new", "link.del")
    by_link = _grouped(tl.events(link_kinds + ("bond.active",), source="netlink"),
                       lambda e: (e.get("ns"), e.get("ifname")))
    keys |= {(ns, ifname) for ns, ifname in by_link
             if str(ns).startswith("n") and ifname not in (None, "lo")}
    lanes = []
    for ns, ifname in sorted(keys, key=lambda k: (int(k[0][1:]) if k[0][1:].isdigit() else 0,
                                                  k[1])):
        changes: list[tuple[float, str]] = []
        first: str | None = None
        carrier, admin = True, True
        evs = by_link.get((ns, ifname), [])
        for e in (x for x in evs if x.kind in link_kinds):
            if e.kind == "link.carrier":
                if first is None and e.get("up") is False:
                    first = "up"
                carrier = bool(e["up"])
            elif e.kind == "link.admin":
                if first is None and e.get("up") is False:
                    first = "up"
                admin = bool(e["up"])
            elif e.kind == "link.new":
                admin = e.get("admin", "up") in (True, "up")
                carrier = e.get("carrier", 1) in (True, 1, "up")
            else:
                admin = carrier = False
            label = "up" if carrier and admin else ("admin down" if not admin else "no carrier")
            changes.append((e.t - rel, label))
        lane = Lane("link", f"{ns} {ifname}", _steps(changes, end, first or "up"))
        bond = [(e.t - rel, e.get("slave") or "none") for e in evs if e.kind == "bond.active"]
        lanes.append(lane)
        if bond:
            lanes.append(Lane("bond", f"{ns} {ifname} active", _steps(bond, end)))
    return lanes


def _outage_lanes(tl: Timeline, ips: list[str], rel: float, end: float) -> list[Lane]:
    lanes = []
    for ip in ips:
        for kind, name in OUTAGE_KINDS.items():
            if not tl.first(kind, ip=ip):
                continue
            spans = [Span(o.start.t - rel, (o.end.t if o.end else rel + end) - rel,
                          f"{name} outage {o.duration:.3f} s" if o.duration is not None
                          else f"{name} outage (open)")
                     for o in outages(tl, ip, kind=kind)]
            lanes.append(Lane("client", f"{ip} {name}", spans))
    return lanes


def _fault_spans(tl: Timeline, rel: float, end: float) -> list[Span]:
    spans = []
    for a in tl.events("fault.apply"):
        u = tl.first("fault.undo", after=a, id=a.get("id"))
        spans.append(Span(a.t - rel, (u.t if u else rel + end) - rel,
                          f"{a.get('id', '')}: {a.get('desc', a.kind)}"))
    return spans


def _delays(tl: Timeline, info: RunInfo, ips: list[str], rel: float) -> list[Delay]:
    """Per fault on a node: fault -> UNHEALTHY, UNHEALTHY -> its IPs in another
    node's kernel, and the client's worst ICMP outage of those IPs after it."""
    b = info.bounds()
    out: list[Delay] = []
    for a in tl.events("fault.apply"):
        if a.node is None:
            continue
        name = f"{a.get('id', '')} {a.get('desc', '')}".strip()
        undo = tl.first("fault.undo", after=a, id=a.get("id"))
        bad = tl.first("flags", after=a, node=a.node, before=undo,
                       where=lambda e: any(f != "OK" for f in e.get("flags", ())))
        det = _asserted(tl, "flags", a.node, a.t, a.t)
        out.append(Delay(name, "fault -> UNHEALTHY", None if bad is None else bad.t - a.t,
                         b.detection() if det is None else det,
                         None if bad is None else bad.t - rel, asserted=det is not None))
        held = sorted(ip for ip, ns in _holders_at(tl, a.t).items()
                      if f"n{a.node}" in ns and ip in ips)
        elsewhere = _not_on(f"n{a.node}")
        moved = [tl.first("addr.add", after=a, ip=ip, where=elsewhere) for ip in held]
        if held and bad is not None and all(m is not None for m in moved):
            last = max(m.t for m in moved if m is not None)
            tko = _asserted(tl, "takeover", a.node, a.t, undo.t if undo else None)
            out.append(Delay(name, "UNHEALTHY -> IP moved", last - bad.t,
                             b.takeover if tko is None else tko, last - rel,
                             asserted=tko is not None))
        ended = [o for ip in held for o in outages(tl, ip, since=a) if o.duration is not None]
        if ended:
            worst = max(ended, key=lambda o: o.duration or 0.0)
            out.append(Delay(name, f"client outage {worst.ip}", worst.duration,
                             b.detection() + b.takeover, worst.start.t - rel))
    return out


def _asserted(tl: Timeline, what: str, node: int | None, lo: float,
              hi: float | None) -> float | None:
    """The upper bound a test asserted for `what` on `node`, measured from a
    reference in [lo, hi] (harness.assertions records each as "assert.bound");
    None when no test asserted one there."""
    for e in tl.events("assert.bound", node=node):
        ref = float(e.get("ref", -1.0))
        if e.get("what") == what and ref >= lo - 1e-9 and (hi is None or ref <= hi):
            return float(e["hi"])
    return None


def _not_on(ns: str) -> Callable[[Event], bool]:
    return lambda e: e["ns"] != ns


def _holders_at(tl: Timeline, t: float) -> dict[str, set[str]]:
    held: dict[str, set[str]] = {}
    for e in tl.events(("addr.add", "addr.del"), source="netlink", until=t):
        s = held.setdefault(e["ip"], set())
        (s.add if e.kind == "addr.add" else s.discard)(e["ns"])
    return held


def _rows(tl: Timeline, rel: float) -> list[Row]:
    """Every event, as the table shows it (the prober records changes only)."""
    rows = []
    for e in tl.events():
        text = str(e.get("line", "")) if e.kind == "log" else e.describe()
        rows.append(Row(e.t - rel, _node_label(e.node), e.kind, e.source, text))
    return rows


def _public_ips(tl: Timeline, topology: Topology | None) -> list[str]:
    if topology is not None:
        return [str(p.address.ip) for p in topology.public_addresses]
    ips = {e["ip"] for e in tl.events("holder")}
    return sorted(ips, key=lambda s: tuple(int(x) for x in s.split(".")))


def _monitor_runs(tl: Timeline) -> dict[Any, list[Event]]:
    """Monitor runs per node, from the native daemon's log ("monitor event OK;
    next in 3 s"); ctdbd logs a run only when it fails, so its lanes show those."""
    return _grouped((e for e in tl.events("log")
                     if MONITOR_RUN.search(str(e.get("line", "")))), lambda e: e.node)


def build(tl: Timeline, info: RunInfo) -> ReportData:
    """Everything the page shows, from the timeline and the run's settings."""
    evs = tl.events()
    rel = evs[0].t if evs else tl.t0
    end = max((evs[-1].t - rel) if evs else 0.0, 0.001)
    nodes = sorted({e.node for e in evs if e.node is not None}
                   | set(range(info.topology.nodes if info.topology else 0)))
    lanes: list[Lane] = []
    flags = _grouped(tl.events("flags"), lambda e: e.node)
    runs = _monitor_runs(tl)
    for pnn in nodes:
        lane = _flag_lane(flags.get(pnn, []), pnn, rel, end)
        lane.ticks = sorted({e.t - rel for e in runs.get(pnn, [])})
        lanes.append(lane)
    ips = _public_ips(tl, info.topology)
    lanes += [_ip_lane(tl, ip, rel, end) for ip in ips]
    lanes += _link_lanes(tl, info.topology, rel, end)
    lanes += _outage_lanes(tl, ips, rel, end)
    return ReportData(info, end, lanes, _fault_spans(tl, rel, end), _delays(tl, info, ips, rel),
                      _rows(tl, rel), rel)
