"""One merged, thread-safe timeline per test, on CLOCK_MONOTONIC.

Every recorder (netlink listeners, the status poller, log followers, the
client prober) and every fault writes `Event`s here, so "after the fault,
node 2 was UNHEALTHY within X s" is a query over one clock. Events are kept
sorted by time even when a recorder reports late (the prober decides a probe
failed only after its timeout, but dates the event at the send time).

Event kinds (source in brackets; `node` is the pnn the event is about, None
for the client and switch namespaces; data keys after the colon):
  [netlink]  every event has ns ("n2", "c-public", "sw") and ifname
    link.admin: up   link.carrier: up   link.operstate: state, prev
    link.new: admin, carrier, operstate, link_kind   link.del   link.master: master
    bond.active: slave, prev   bond.slave: mii_up, bond
    addr.add / addr.del: ip, prefixlen (+ initial=True for the starting state)
  [status]   flags: flags (list, ["OK"] if none), prev, by (the polled node),
             latency_ms; holder: ip, pnn (None = unassigned), prev, by;
             ctl.error: cmd, error; ctl.ok: cmd   (initial=True on first sight)
  [log]      log: line, path
  [probe]    probe.arp, probe.icmp, probe.neigh, probe.garp, probe.start,
             probe.stop, probe.error (see harness.probe)
  [fault]    fault.apply, fault.undo, fault.error, fault.arm, fault.disarm,
             fault.trigger (see harness.faults)
  [recorder] recorder.start, recorder.stop, recorder.overrun, recorder.error
  [test]     note: text
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import ipaddress
import json
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import netns
from harness.ctdb import output as ctdbout
from harness.rtnl import LinkView, decode_events, link_view

if TYPE_CHECKING:
    from harness.cluster import Cluster

KindSpec = str | Iterable[str] | None
Predicate = Callable[["Event"], bool]


class TimelineTimeout(AssertionError):
    """wait_for() gave up; the message shows the timeline around the wait."""


@dataclass(frozen=True, order=False)
class Event:
    """One thing that happened: when (monotonic s), who saw it, what, on which node."""

    t: float
    source: str
    kind: str
    node: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = -1  # arrival order, set by the Timeline

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "seq": self.seq, "source": self.source, "kind": self.kind,
                "node": self.node, "data": self.data}

    def describe(self) -> str:
        """The data as `k=v` pairs, for the readable table."""
        parts = []
        for k, v in self.data.items():
            if isinstance(v, float):
                v = f"{v:.4f}"
            elif isinstance(v, list | tuple):
                v = ",".join(str(x) for x in v) or "-"
            parts.append(f"{k}={v}")
        return " ".join(parts)


def _jsonable(v: Any) -> Any:
    """Make data JSON-safe at record time (addresses, sets, tuples, enums)."""
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        items = [_jsonable(x) for x in v]
        return sorted(items, key=str) if isinstance(v, set | frozenset) else items
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv4Interface | ipaddress.IPv4Network):
        return str(v)
    return str(v)


def kind_matcher(kind: KindSpec) -> Callable[[str], bool]:
    """None matches all; "a.*" matches a prefix; an iterable matches any of its kinds."""
    if kind is None:
        return lambda k: True
    kinds = [kind] if isinstance(kind, str) else list(kind)
    exact = {k for k in kinds if not k.endswith("*")}
    prefixes = tuple(k[:-1] for k in kinds if k.endswith("*"))
    return lambda k: k in exact or (bool(prefixes) and k.startswith(prefixes))


class Timeline:
    """Thread-safe, time-sorted event list with queries and waits."""

    def __init__(self, name: str = "timeline", t0: float | None = None) -> None:
        self.name = name
        self.t0 = time.monotonic() if t0 is None else t0
        self._cond = threading.Condition()
        self._sorted: list[Event] = []
        self._keys: list[tuple[float, int]] = []
        self._arrivals: list[Event] = []
        self._listeners: list[Callable[[Event], None]] = []

    # -- recording -------------------------------------------------------------
    def add(self, ev: Event) -> Event:
        with self._cond:
            ev = Event(ev.t, ev.source, ev.kind, ev.node, _jsonable(ev.data), len(self._arrivals))
            key = (ev.t, ev.seq)
            i = bisect.bisect_right(self._keys, key)
            self._keys.insert(i, key)
            self._sorted.insert(i, ev)
            self._arrivals.append(ev)
            listeners = list(self._listeners)
            self._cond.notify_all()
        for fn in listeners:
            fn(ev)
        return ev

    def mark(self, source: str, kind: str, node: int | None = None, t: float | None = None,
             **data: Any) -> Event:
        """Record an event now (or at monotonic time t)."""
        return self.add(Event(time.monotonic() if t is None else t, source, kind, node, data))

    def note(self, text: str, node: int | None = None, **data: Any) -> Event:
        """A free-form marker from the test itself (kind "note")."""
        return self.mark("test", "note", node, text=text, **data)

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """Call fn(event) for each new event (in the recorder's thread; keep it quick).

        Returns a function that unsubscribes.
        """
        with self._cond:
            self._listeners.append(fn)

        def unsubscribe() -> None:
            with self._cond:
                if fn in self._listeners:
                    self._listeners.remove(fn)
        return unsubscribe

    def wake(self) -> None:
        """Wake every wait_for() so it re-checks its cancel flag."""
        with self._cond:
            self._cond.notify_all()

    # -- queries -----------------------------------------------------------------
    def __len__(self) -> int:
        with self._cond:
            return len(self._sorted)

    def __bool__(self) -> bool:
        return True  # an empty timeline is still a timeline (`tl or default` must not skip it)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())

    def events(self, kind: KindSpec = None, node: Any = ...,
               since: float | Event | None = None, until: float | Event | None = None,
               source: str | None = None, where: Predicate | None = None, *,
               after: float | Event | None = None, before: float | Event | None = None,
               **data: Any) -> list[Event]:
        """Matching events in time order.

        kind: "link.carrier", a prefix "link.*", or several; node: a pnn, a list of
        pnns, or None for events about no node (omit for all); since/until:
        inclusive bounds (times or events); after/before: the same, but an Event
        given there is itself left out; where: a predicate; other keywords must
        equal the event's data values (ip="203.0.113.201", up=False).
        """
        lo = max((x for x in (_t(since), _t(after)) if x is not None), default=None)
        hi = min((x for x in (_t(until), _t(before)) if x is not None), default=None)
        skip = {x.seq for x in (after, before) if isinstance(x, Event)}
        match = kind_matcher(kind)
        with self._cond:
            evs = list(self._sorted)
        return [e for e in evs if e.seq not in skip
                and _matches(e, match, node, lo, hi, source, where, data)]

    def first(self, kind: KindSpec = None, after: float | Event | None = None,
              where: Predicate | None = None, node: Any = ...,
              before: float | Event | None = None, source: str | None = None, *,
              since: float | Event | None = None, until: float | Event | None = None,
              **data: Any) -> Event | None:
        """Earliest matching event (at or after `after`; strictly after, if an Event)."""
        evs = self.events(kind, node, since, until, source, where, after=after, before=before,
                          **data)
        return evs[0] if evs else None

    def last(self, kind: KindSpec = None, before: float | Event | None = None,
             where: Predicate | None = None, node: Any = ...,
             after: float | Event | None = None, source: str | None = None, *,
             since: float | Event | None = None, until: float | Event | None = None,
             **data: Any) -> Event | None:
        """Latest matching event (at or before `before`)."""
        evs = self.events(kind, node, since, until, source, where, after=after, before=before,
                          **data)
        return evs[-1] if evs else None

    def wait_for(self, kind: KindSpec = None, *, after: float | Event, node: Any = ...,
                 where: Predicate | None = None, timeout: float = 10.0,
                 cancel: threading.Event | None = None, source: str | None = None,
                 **data: Any) -> Event:
        """Block until a matching event at or after `after` exists; return the earliest.

        `after` is required: the reference the effect must follow (an Event such as
        the fault's mark, strictly after it, or a monotonic time; 0 for any). Events
        already recorded count, so `do X; wait_for(effect, after=mark_before_X)` never
        misses an effect that arrived before the call. Raises TimelineTimeout with
        the timeline around the wait; a set `cancel` ends the wait early.
        """
        start = time.monotonic()
        since = after
        deadline = start + timeout
        match = kind_matcher(kind)
        lo = _t(since)
        with self._cond:
            seen = 0
            while True:
                new = self._arrivals[seen:]
                seen = len(self._arrivals)
                hits = [e for e in new if _matches(e, match, node, lo, None, source, where, data)
                        and not (isinstance(since, Event) and e.seq == since.seq)]
                if hits:
                    return min(hits, key=lambda e: (e.t, e.seq))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (cancel is not None and cancel.is_set()):
                    break
                self._cond.wait(remaining)
        what = f"kind={kind!r} node={'any' if node is ... else node} data={data or {}}"
        why = "cancelled" if cancel is not None and cancel.is_set() else f"not seen in {timeout} s"
        raise TimelineTimeout(
            f"{what}: {why}\n" + self.window(start, before=max(2.0, timeout), after=0.5))

    # -- presentation -----------------------------------------------------------
    def table(self, events: Iterable[Event] | None = None, ref: float | Event | None = None,
              highlight: Event | None = None) -> str:
        """Readable table: time in ms relative to `ref` (default t0), one event a line."""
        evs = self.events() if events is None else list(events)
        r = self.t0 if ref is None else _t(ref)
        assert r is not None
        lines = [f"{'':2}{'ms':>10}  {'source':<8} {'kind':<16} {'node':>4}  data"]
        for e in evs:
            mark = ">>" if (highlight is not None and e.seq == highlight.seq) or (
                isinstance(ref, Event) and e.seq == ref.seq) else "  "
            node = "-" if e.node is None else str(e.node)
            lines.append(f"{mark}{(e.t - r) * 1000:>10.1f}  {e.source:<8} {e.kind:<16} "
                         f"{node:>4}  {e.describe()}")
        return "\n".join(lines)

    def window(self, t: float | Event, before: float = 2.0, after: float = 2.0,
               ref: float | Event | None = None, kind: KindSpec = None,
               max_lines: int = 400) -> str:
        """The events within [t-before, t+after] as a table relative to `ref` (default t)."""
        tt = _t(t)
        assert tt is not None
        evs = self.events(kind, since=tt - before, until=tt + after)
        cut = ""
        if len(evs) > max_lines:
            # keep the lines nearest t
            evs.sort(key=lambda e: abs(e.t - tt))
            evs = sorted(evs[:max_lines], key=lambda e: (e.t, e.seq))
            cut = f"\n  ({len(self.events(kind, since=tt - before, until=tt + after)) - max_lines}"
            cut += " events further from the reference left out)"
        header = f"timeline {self.name}: {before:g} s before to {after:g} s after the reference\n"
        return header + self.table(evs, ref=t if ref is None else ref,
                                   highlight=t if isinstance(t, Event) else None) + cut

    def save(self, directory: Path | str, name: str | None = None) -> tuple[Path, Path]:
        """Write NAME.jsonl (one event a line) and NAME.txt (the table); return both paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        base = name or self.name
        jl, txt = d / f"{base}.jsonl", d / f"{base}.txt"
        evs = self.events()
        with open(jl, "w") as f:
            f.write(json.dumps({"kind": "timeline.header", "name": self.name, "t0": self.t0,
                                "clock": "CLOCK_MONOTONIC"}) + "\n")
            for e in evs:
                f.write(json.dumps(e.to_json()) + "\n")
        txt.write_text(self.table(evs) + "\n")
        return jl, txt

    @classmethod
    def load(cls, path: Path | str) -> Timeline:
        """Read a timeline written by save()."""
        tl: Timeline | None = None
        events = []
        for line in Path(path).read_text().splitlines():
            d = json.loads(line)
            if d.get("kind") == "timeline.header":
                tl = cls(d["name"], t0=d["t0"])
                continue
            events.append(Event(d["t"], d["source"], d["kind"], d["node"], d["data"]))
        if tl is None:
            tl = cls(Path(path).stem, t0=events[0].t if events else None)
        for e in events:
            tl.add(e)
        return tl


def _t(x: float | Event | None) -> float | None:
    return x.t if isinstance(x, Event) else x


def _matches(e: Event, match: Callable[[str], bool], node: Any, since: float | None,
             until: float | None, source: str | None, where: Predicate | None,
             data: dict[str, Any]) -> bool:
    if not match(e.kind):
        return False
    if node is not ...:
        if node is None or isinstance(node, int):
            if e.node != node:
                return False
        elif e.node not in set(node):
            return False
    if since is not None and e.t < since:
        return False
    if until is not None and e.t > until:
        return False
    if source is not None and e.source != source:
        return False
    for k, v in data.items():
        if e.data.get(k) != _jsonable(v):
            return False
    return where is None or bool(where(e))


# -- derived views ---------------------------------------------------------------

def address_holders(timeline: Timeline, at: float | Event | None = None,
                    ips: Iterable[str] | None = None) -> dict[str, set[str]]:
    """Which namespaces (labels like "n2", "c-public") held each IPv4 address at
    time `at`, replayed from the netlink listeners' addr.add/addr.del events."""
    want = None if ips is None else {str(x) for x in ips}
    held: dict[str, set[str]] = {}
    for e in timeline.events(("addr.add", "addr.del"), until=at, source="netlink"):
        ip = e.data["ip"]
        if want is not None and ip not in want:
            continue
        s = held.setdefault(ip, set())
        (s.add if e.kind == "addr.add" else s.discard)(e.data["ns"])
    return held


# -- recorders ------------------------------------------------------------------------
#
# Each recorder is a thread that owns its sockets or files and stops when the
# Recorder's stop flag is set. They measure their own CPU (time.thread_time at
# the end of the thread), so the overhead of recording is known per test.

SO_RCVBUFFORCE = 33
NETLINK_RCVBUF = 8 << 20
AF_INET = 2


@dataclass
class RecorderStats:
    """What one recorder thread did: events emitted, CPU it used, overruns."""

    name: str
    events: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    messages: int = 0
    overruns: int = 0
    errors: list[str] = field(default_factory=list)


class _Component:
    """A stoppable recorder thread that counts its own events and CPU."""

    def __init__(self, name: str, timeline: Timeline, stop: threading.Event) -> None:
        self.name = name
        self.timeline = timeline
        self.stop_flag = stop
        self.stats = RecorderStats(name)
        self.ready = threading.Event()
        self.thread: threading.Thread | None = None

    def emit(self, source: str, kind: str, node: int | None, t: float, **data: Any) -> Event:
        self.stats.events += 1
        return self.timeline.add(Event(t, source, kind, node, data))

    def start(self) -> None:
        self.thread = threading.Thread(target=self._thread, name=f"rec-{self.name}", daemon=True)
        self.thread.start()

    def _thread(self) -> None:
        w0 = time.monotonic()
        try:
            self.run()
        except BaseException as e:  # noqa: BLE001 - recorded, the test goes on
            self.stats.errors.append(f"{type(e).__name__}: {e}")
            self.timeline.mark("recorder", "recorder.error", None, component=self.name,
                               error=f"{type(e).__name__}: {e}")
        finally:
            self.stats.wall_s = time.monotonic() - w0
            self.ready.set()

    def run(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        """Interrupt a blocking wait so the thread sees the stop flag."""

    def join(self, timeout: float = 5.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


class NetlinkListener(_Component):
    """Link, IPv4 address and bond changes in one namespace, as netlink reports them.

    The thread enters the namespace (netns.in_netns), opens its event socket
    there, checks the socket's namespace, binds to the groups and only then
    dumps the current state, so nothing between dump and subscription is lost.
    """

    def __init__(self, netns_name: str, label: str, node: int | None, timeline: Timeline,
                 stop: threading.Event) -> None:
        super().__init__(f"netlink:{label}", timeline, stop)
        self.netns = netns_name
        self.label = label
        self.node = node
        self.links: dict[int, LinkView] = {}
        self.addrs: dict[tuple[int, str], int] = {}
        self._wake_r, self._wake_w = os.pipe()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def run(self) -> None:
        try:
            netns.in_netns(self.netns, self._body)
        finally:
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _open(self) -> Any:
        from pyroute2 import IPRSocket
        from pyroute2.netlink import rtnl

        sock = IPRSocket()
        try:
            fd = sock.socket.fileno()
            got, want = netns.socket_netns_ino(fd), netns.netns_ino(self.netns)
            if got != want or got == netns.host_netns_ino():
                raise netns.NamespaceSafetyError(
                    f"listener socket for {self.netns} is in namespace inode {got}, not {want}")
            with contextlib.suppress(OSError):
                sock.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, NETLINK_RCVBUF)
            sock.bind(groups=rtnl.RTMGRP_LINK | rtnl.RTMGRP_IPV4_IFADDR)
        except BaseException:
            sock.close()
            raise
        return sock

    def _body(self, route: netns.NsRoute) -> None:
        t0 = time.thread_time()
        sock = self._open()
        try:
            self._resync(route, time.monotonic(), initial=True)
            self.ready.set()
            while not self.stop_flag.is_set():
                rd, _, _ = select.select([sock.socket, self._wake_r], [], [], 1.0)
                if self._wake_r in rd:
                    os.read(self._wake_r, 64)
                if sock.socket not in rd:
                    continue
                while True:  # drain every queued datagram, each dated when read
                    t = time.monotonic()
                    try:
                        data = sock.socket.recv(1 << 16, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    except OSError as e:
                        if e.errno != errno.ENOBUFS:
                            raise
                        # the kernel dropped events: say so, start over from a dump
                        self.stats.overruns += 1
                        self.emit("recorder", "recorder.overrun", self.node, t, ns=self.label)
                        sock.close()
                        sock = self._open()
                        self._resync(route, time.monotonic(), initial=False)
                        break
                    try:
                        msgs = decode_events(data)
                        self.stats.messages += len(msgs)
                        for m in msgs:
                            self._handle(m, t)
                    except Exception as e:  # noqa: BLE001 - one bad message must not end it
                        self.stats.errors.append(f"{type(e).__name__}: {e}")
                        self.emit("recorder", "recorder.error", self.node, t, ns=self.label,
                                  error=f"{type(e).__name__}: {e}")
        finally:
            sock.close()
            self.stats.cpu_s += time.thread_time() - t0

    def _resync(self, route: netns.NsRoute, t: float, initial: bool) -> None:
        """Diff the dumped state against ours (all of it is new at the start)."""
        seen = set()
        for m in route.link("dump"):
            view = link_view(m)
            seen.add(view.index)
            self._link(view.index, view, t, initial)
        for idx in set(self.links) - seen:
            self._dellink(idx, t)
        addrs = {}
        for a in route.addr("dump", family=AF_INET):
            addrs[(a["index"], a.get_attr("IFA_ADDRESS"))] = a["prefixlen"]
        for key in set(self.addrs) - set(addrs):
            self._addr(False, key, self.addrs[key], t)
        for key, plen in addrs.items():
            if key not in self.addrs:
                self._addr(True, key, plen, t, initial=initial)

    def _handle(self, m: tuple[Any, ...], t: float) -> None:
        what = m[0]
        if what == "link":
            self._link(m[1], m[2], t, False)
        elif what == "dellink":
            self._dellink(m[1], t)
        else:
            key = (m[1], m[2])
            new = what == "addr"
            if new != (key in self.addrs):
                self._addr(new, key, m[3], t)

    def _ifname(self, index: int | None) -> str | None:
        v = self.links.get(index) if index is not None else None
        return v.ifname if v else None

    def _e(self, kind: str, t: float, **data: Any) -> None:
        self.emit("netlink", kind, self.node, t, ns=self.label, **data)

    def _link(self, idx: int, new: LinkView, t: float, initial: bool) -> None:
        old = self.links.get(idx)
        self.links[idx] = new
        name = new.ifname
        if old is None:
            if not initial:
                self._e("link.new", t, ifname=name, admin=new.admin, carrier=new.carrier,
                        operstate=new.operstate, link_kind=new.kind)
            return
        if old.admin != new.admin:
            self._e("link.admin", t, ifname=name, up=new.admin)
        if old.carrier != new.carrier:
            self._e("link.carrier", t, ifname=name, up=new.carrier)
        if old.operstate != new.operstate:
            self._e("link.operstate", t, ifname=name, state=new.operstate, prev=old.operstate)
        if old.master != new.master:
            self._e("link.master", t, ifname=name, master=self._ifname(new.master))
        if new.kind == "bond" and old.active_slave != new.active_slave:
            self._e("bond.active", t, ifname=name, slave=self._ifname(new.active_slave),
                    prev=self._ifname(old.active_slave))
        if new.mii_up is not None and old.mii_up != new.mii_up:
            self._e("bond.slave", t, ifname=name, mii_up=new.mii_up,
                    bond=self._ifname(new.master))

    def _dellink(self, idx: int, t: float) -> None:
        old = self.links.pop(idx, None)
        for key in [k for k in self.addrs if k[0] == idx]:
            self._addr(False, key, self.addrs[key], t)
        if old is not None:
            self._e("link.del", t, ifname=old.ifname)

    def _addr(self, add: bool, key: tuple[int, str], plen: int, t: float,
              initial: bool = False) -> None:
        idx, ip = key
        if ip.startswith("127."):
            return  # loopback is noise here
        if add:
            self.addrs[key] = plen
        else:
            self.addrs.pop(key, None)
        extra = {"initial": True} if initial else {}
        self._e("addr.add" if add else "addr.del", t, ip=ip, prefixlen=plen,
                ifname=self._ifname(idx), **extra)


# -- status poller -------------------------------------------------------------------

CtlFn = Callable[..., str]


def status_flags(text: str) -> dict[int, tuple[str, ...]]:
    """`ctdb -X status` (either implementation) -> {pnn: flag names}, ("OK",) when none.

    Parsed by harness.ctdb.output, the one parser for both implementations' output.
    """
    return {n.pnn: tuple(n.flags_text.split("|")) for n in ctdbout.parse_status(text).nodes}


def ip_holders(text: str) -> dict[str, int | None]:
    """`ctdb -X ip` -> {ip: pnn or None when unassigned (-1)}."""
    return {str(ip): (None if p < 0 else p) for ip, p in ctdbout.parse_ip(text).items()}


class StatusPoller(_Component):
    """Polls one node's `-X status` and `-X ip`, emitting only changes.

    One poller per node, so a hung daemon (a ctl that blocks until its
    timeout) delays only its own node's view. `flags` events are about the
    subject node (`node`), seen `by` the polled node; `holder` events name the
    holder as `node`.
    """

    def __init__(self, pnn: int, ctl: CtlFn, timeline: Timeline, stop: threading.Event,
                 interval: float = 0.1, ips: bool = True) -> None:
        super().__init__(f"status:{pnn}", timeline, stop)
        self.pnn, self.ctl, self.interval, self.poll_ips = pnn, ctl, interval, ips
        self.flags: dict[int, tuple[str, ...]] = {}
        self.holders: dict[str, int | None] = {}
        self.failing: dict[str, str] = {}
        self.polls = 0

    def run(self) -> None:
        t0 = time.thread_time()
        try:
            nxt = time.monotonic()
            first = True
            while not self.stop_flag.is_set():
                self._poll("status", first)
                if self.poll_ips:
                    self._poll("ip", first)
                self.polls += 1
                if first:
                    self.ready.set()
                    first = False
                nxt += self.interval
                now = time.monotonic()
                if nxt < now:  # a slow ctl: skip the ticks it missed
                    nxt = now + self.interval
                self.stop_flag.wait(nxt - now if nxt > now else 0)
        finally:
            self.stats.cpu_s += time.thread_time() - t0

    def _poll(self, what: str, first: bool) -> None:
        t_sent = time.monotonic()
        try:
            out = self.ctl(self.pnn, "-X", what)
            t = time.monotonic()
            parsed = status_flags(out) if what == "status" else ip_holders(out)
        except Exception as e:  # noqa: BLE001 - a dead daemon is data, not an error
            t = time.monotonic()
            msg = f"{type(e).__name__}: {e}".strip()[:300]
            if what not in self.failing:
                self.failing[what] = msg
                self.emit("status", "ctl.error", self.pnn, t, cmd=what, error=msg)
            return
        if self.failing.pop(what, None) is not None:
            self.emit("status", "ctl.ok", self.pnn, t, cmd=what)
        lat = round((t - t_sent) * 1000, 2)
        if what == "status":
            for pnn, flags in sorted(parsed.items()):  # type: ignore[union-attr]
                prev = self.flags.get(pnn)
                if prev != flags:
                    self.flags[pnn] = flags
                    extra = {"initial": True} if prev is None else {}
                    self.emit("status", "flags", pnn, t, flags=list(flags),
                              prev=list(prev) if prev else None, by=self.pnn, latency_ms=lat,
                              **extra)
        else:
            for ip, holder in sorted(parsed.items()):  # type: ignore[union-attr]
                known = ip in self.holders
                prev = self.holders.get(ip)
                if not known or prev != holder:
                    self.holders[ip] = holder
                    extra = {"initial": True} if not known else {}
                    self.emit("status", "holder", holder, t, ip=ip, pnn=holder, prev=prev,
                              by=self.pnn, latency_ms=lat, **extra)


# -- log follower ----------------------------------------------------------------

@dataclass(frozen=True)
class LogSpec:
    """A log file to follow, the node it belongs to, and which lines to keep."""

    path: Path
    node: int | None = None
    pattern: str | None = None
    from_start: bool = False


class LogFollower(_Component):
    """Tails a file (it may appear later, be truncated or replaced) and emits
    matching lines as `log` events, dated when read (poll period 20 ms)."""

    def __init__(self, spec: LogSpec, timeline: Timeline, stop: threading.Event,
                 interval: float = 0.02) -> None:
        super().__init__(f"log:{spec.path.name}", timeline, stop)
        self.spec = spec
        self.regex = re.compile(spec.pattern) if spec.pattern else None
        self.interval = interval

    def run(self) -> None:
        t0 = time.thread_time()
        f = None
        ino = None
        buf = b""
        path = self.spec.path
        try:
            try:
                st = path.stat()
                f = open(path, "rb")  # noqa: SIM115 - kept open across iterations
                ino = st.st_ino
                if not self.spec.from_start:
                    f.seek(st.st_size)
            except FileNotFoundError:
                pass
            self.ready.set()
            while True:
                stopping = self.stop_flag.is_set()
                if f is None:
                    with contextlib.suppress(FileNotFoundError):
                        f = open(path, "rb")  # noqa: SIM115
                        ino = os.fstat(f.fileno()).st_ino
                if f is not None:
                    chunk = f.read()
                    t = time.monotonic()
                    if chunk:
                        buf += chunk
                        *lines, buf = buf.split(b"\n")
                        for raw in lines:
                            self._line(raw, t)
                    else:
                        try:
                            st = path.stat()
                        except FileNotFoundError:
                            st = None
                        if st is None or st.st_ino != ino or st.st_size < f.tell():
                            # rotated, replaced or truncated: start the new file from 0
                            f.close()
                            f, buf = None, b""
                            if st is not None:
                                f = open(path, "rb")  # noqa: SIM115
                                ino = st.st_ino
                            continue
                if stopping:
                    break
                self.stop_flag.wait(self.interval)
        finally:
            if f is not None:
                f.close()
            self.stats.cpu_s += time.thread_time() - t0

    def _line(self, raw: bytes, t: float) -> None:
        line = raw.decode(errors="replace").rstrip("\r")
        if not line or (self.regex is not None and not self.regex.search(line)):
            return
        self.emit("log", "log", self.spec.node, t, line=line, path=str(self.spec.path))


# -- the recorder ------------------------------------------------------------------

class Recorder:
    """All recorders of one test, started and stopped together.

        tl = Timeline("test_x")
        with Recorder(cluster, tl, backend, poll_interval=0.1, probe=True):
            ...

    `backend` is a Backend (its ctl, and its log files are followed) or a
    callable `ctl(pnn, *args) -> str`; None polls nothing. netlink listeners
    run in every node and client namespace (and the switch's with switch=True).

    Cost of polling: every node (or `poll_nodes`) is asked `-X status` and
    `-X ip` every poll_interval. With a CLI run as a subprocess that is
    2 x nodes x 10 processes a second at 100 ms: fine for a C binary
    (ctdb), far too much for a Python CLI (about 55 ms CPU per start here);
    give such a backend an in-process callable instead.
    """

    def __init__(self, cluster: Cluster, timeline: Timeline, backend: Any = None,
                 poll_interval: float = 0.1, *, netlink: bool = True, switch: bool = False,
                 poll_ips: bool = True, poll_nodes: Iterable[int] | None = None,
                 ctl_timeout: float = 3.0,
                 logs: Iterable[LogSpec] = (), log_pattern: str | None = None,
                 follow_backend_logs: bool = True, probe: bool = False,
                 probe_period: float = 0.03, probe_max_s: float = 900.0) -> None:
        self.cluster, self.timeline = cluster, timeline
        self.stop_flag = threading.Event()
        self.components: list[_Component] = []
        self.probers: list[Any] = []
        self._started = False
        stop = self.stop_flag
        if netlink:
            for n in cluster.nodes:
                self.components.append(NetlinkListener(n.netns, f"n{n.pnn}", n.pnn, timeline,
                                                       stop))
            for name, c in cluster.clients.items():
                self.components.append(NetlinkListener(c.netns, f"c-{name}", None, timeline,
                                                       stop))
            if switch:
                self.components.append(NetlinkListener(cluster.switch.netns, "sw", None,
                                                       timeline, stop))
        ctl: CtlFn | None = None
        if backend is not None:
            if hasattr(backend, "ctl"):
                def ctl(pnn: int, *args: str) -> str:
                    return backend.ctl(pnn, *args, timeout=ctl_timeout)
            elif callable(backend):
                ctl = backend
            else:
                raise TypeError(f"backend must be a Backend or a callable, not {backend!r}")
        if ctl is not None:
            pnns = [n.pnn for n in cluster.nodes] if poll_nodes is None else list(poll_nodes)
            for pnn in pnns:
                self.components.append(StatusPoller(pnn, ctl, timeline, stop, poll_interval,
                                                    ips=poll_ips))
        specs = list(logs)
        if backend is not None and hasattr(backend, "log_path") and follow_backend_logs:
            specs += [LogSpec(Path(backend.log_path(n.pnn)), n.pnn, log_pattern)
                      for n in cluster.nodes]
        for spec in specs:
            self.components.append(LogFollower(spec, timeline, stop))
        if probe:
            from harness.probe import ClientProber
            for c in cluster.clients.values():
                self.probers.append(ClientProber(cluster, timeline, client=c,
                                                 period=probe_period, duration=probe_max_s))
        self.t_start = self.t_stop = 0.0

    def start(self, timeout: float = 10.0) -> Recorder:
        """Start every recorder; return once each has its initial state."""
        self.t_start = time.monotonic()
        self.timeline.mark("recorder", "recorder.start", None,
                           components=[c.name for c in self.components])
        self._started = True
        for c in self.components:
            c.start()
        deadline = time.monotonic() + timeout
        for c in self.components:
            c.ready.wait(max(0.0, deadline - time.monotonic()))
        for p in self.probers:
            p.start()
        for p in self.probers:
            p.wait_ready(max(0.1, deadline - time.monotonic()))
        not_ready = [c.name for c in self.components if not c.ready.is_set()]
        if not_ready:
            self.stop()
            raise TimeoutError(f"recorders not ready after {timeout} s: {not_ready}")
        failed = [f"{s.name}: {s.errors[0]}" for s in self.stats() if s.errors]
        if failed:
            self.stop()
            raise RuntimeError(f"recorders failed to start: {failed}")
        return self

    def stop(self) -> None:
        """Stop and join every recorder (sockets closed, so namespaces can go)."""
        if not self._started:
            return
        self._started = False
        for p in self.probers:
            p.stop()
        self.stop_flag.set()
        for c in self.components:
            c.wake()
        for c in self.components:
            c.join(5.0)
        self.t_stop = time.monotonic()
        stuck = [c.name for c in self.components if c.thread is not None and c.thread.is_alive()]
        self.timeline.mark("recorder", "recorder.stop", None, events=len(self.timeline),
                           cpu_s=round(self.cpu_seconds(), 4), stuck=stuck)

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- overhead -----------------------------------------------------------------
    def stats(self) -> list[RecorderStats]:
        out = [c.stats for c in self.components]
        out += [p.stats for p in self.probers]
        return out

    def cpu_seconds(self) -> float:
        """CPU time all recorder threads used (complete once stopped)."""
        return sum(s.cpu_s for s in self.stats())

    def summary(self) -> str:
        wall = (self.t_stop or time.monotonic()) - self.t_start
        lines = [f"recorder: {wall:.2f} s, {self.cpu_seconds():.3f} s CPU "
                 f"({100 * self.cpu_seconds() / wall if wall else 0:.1f}% of one core)"]
        for s in self.stats():
            lines.append(f"  {s.name:<20} events={s.events:<6} msgs={s.messages:<6} "
                         f"cpu={s.cpu_s:.3f}s overruns={s.overruns}"
                         + (f" errors={s.errors}" if s.errors else ""))
        return "\n".join(lines)
