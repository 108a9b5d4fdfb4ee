"""`harness watch`: a lab's timeline as one readable line per event, followed
as the supervisor appends to its journal.

    +41.207s  f1+0.000s   node 2   FAULT f1: node 2 cable eth1 pulled
    +41.209s  f1+0.002s   node 2   eth1 carrier down
    +41.260s  f1+0.053s   client   outage 203.0.113.203 begins
    +43.911s  f1+2.704s   node 2   flags OK -> UNHEALTHY (seen by node 0)
    +44.038s  f1+2.831s   node 0   + 203.0.113.203 on eth1
    +44.102s  f1+2.895s   client   outage 203.0.113.203 over after 2.842 s (node 0 answers)

Columns: time since the lab's start (its timeline's zero), time since the
latest fault applied before the event, who (node, client, switch), what.

By default it shows faults, flag changes (once per change of a node's flags,
whoever saw it first), public IPs added/removed per node, link carrier,
admin state and bond changes, the CLI of a node failing or answering again,
notes, and client outages: derived from the prober's ICMP results (an
outage opens at the first unanswered probe of an IP and closes at the first
answered one). `--kinds` picks any timeline kinds instead (`log`,
`probe.arp`, `holder`, prefixes like `link.*`, and `outage`).
"""

from __future__ import annotations

import bisect
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from harness.labs.journal import Event, kind_matcher, parse_line, read_lines
from harness.labs.state import LabFiles, LabUnavailable

DEFAULT_KINDS = ("fault.*", "flags", "addr.add", "addr.del", "link.carrier", "link.admin",
                 "link.new", "link.del", "bond.*", "outage", "ctl.error", "ctl.ok", "note")
IDLE = 0.2  # seconds between looks at a journal with nothing new (as tail -f does)


@dataclass(frozen=True)
class Item:
    """One line to show: when, of which kind (for --kinds), about whom, what."""

    t: float
    kind: str
    who: str
    text: str


def _who(e: Event) -> str:
    if e.node is not None:
        return f"node {e.node}"
    ns = str(e.data.get("ns", ""))
    if ns.startswith("c-"):
        return "client"
    if ns == "sw":
        return "switch"
    return "client" if e.source == "probe" else ""


def _updown(v: object) -> str:
    return "up" if v else "down"


class Lines:
    """Turns journal events into Items, keeping the state a line needs: the
    last flags shown per node, the outages open per IP, the faults so far."""

    def __init__(self, t0: float, public_ips: Iterable[str]) -> None:
        self.t0 = t0
        self.public = set(public_ips)
        self.flags: dict[int, tuple[str, ...]] = {}
        self.open: dict[str, Event] = {}
        self.fault_times: list[tuple[float, str]] = []  # fault.apply (t, id), by time

    def last_fault(self, t: float) -> tuple[float, str] | None:
        i = bisect.bisect_right(self.fault_times, (t, "\uffff"))
        return self.fault_times[i - 1] if i else None

    def format(self, item: Item) -> str:
        ref = self.last_fault(item.t)
        since = f"{ref[1]}+{item.t - ref[0]:.3f}s" if ref else "-"
        return f"{item.t - self.t0:>+10.3f}s  {since:<12} {item.who:<8} {item.text}"

    def feed(self, e: Event) -> list[Item]:
        """The lines event `e` makes (none for most), after updating the state."""
        d = e.data
        k = e.kind
        if k == "fault.apply":
            bisect.insort(self.fault_times, (e.t, str(d.get("id"))))
            return [Item(e.t, k, _who(e), f"FAULT {d.get('id')}: {d.get('desc')}")]
        if k == "fault.undo":
            return [Item(e.t, k, _who(e), f"UNDO {d.get('id')}: {d.get('desc')}")]
        if k == "fault.error":
            return [Item(e.t, k, _who(e), f"fault {d.get('id')} failed to {d.get('phase')}: "
                                          f"{d.get('error')}")]
        if k == "flags":
            return self._flags(e)
        if k == "probe.icmp":
            return self._icmp(e)
        if k in ("addr.add", "addr.del"):
            if e.node is None or d.get("ip") not in self.public:
                return []
            sign, where = ("+", "on") if k == "addr.add" else ("-", "from")
            initial = " (initial)" if d.get("initial") else ""
            return [Item(e.t, k, _who(e), f"{sign} {d['ip']} {where} {d.get('ifname')}{initial}")]
        text = self._link(e) if k.startswith(("link.", "bond.")) else self._other(e)
        return [Item(e.t, k, _who(e), text)] if text else []

    def _flags(self, e: Event) -> list[Item]:
        if e.node is None:
            return []
        flags = tuple(e.data.get("flags") or ("?",))
        prev = self.flags.get(e.node)
        if prev == flags:
            return []
        self.flags[e.node] = flags
        seen = f"seen by node {e.data.get('by')}"
        text = (f"flags {'|'.join(flags)} ({seen}, initial)" if prev is None
                else f"flags {'|'.join(prev)} -> {'|'.join(flags)} ({seen})")
        return [Item(e.t, "flags", _who(e), text)]

    def _icmp(self, e: Event) -> list[Item]:
        ip = str(e.data.get("ip"))
        if not e.data.get("ok"):
            if ip in self.open:
                return []
            self.open[ip] = e
            return [Item(e.t, "outage", "client", f"outage {ip} begins")]
        start = self.open.pop(ip, None)
        if start is None:
            return []
        by = f" (node {e.node} answers)" if e.node is not None else ""
        return [Item(e.t, "outage", "client",
                     f"outage {ip} over after {e.t - start.t:.3f} s{by}")]

    def _link(self, e: Event) -> str:
        d, k = e.data, e.kind
        name = d.get("ifname")
        if k == "link.carrier":
            return f"{name} carrier {_updown(d.get('up'))}"
        if k == "link.admin":
            return f"{name} admin {_updown(d.get('up'))}"
        if k == "link.new":
            return f"{name} created"
        if k == "link.del":
            return f"{name} deleted"
        if k == "bond.active":
            return f"{name} active slave {d.get('prev') or '-'} -> {d.get('slave') or '-'}"
        if k == "bond.slave":
            return f"{name} MII {_updown(d.get('mii_up'))} (bond {d.get('bond')})"
        return f"{k} {e.describe()}"

    def _other(self, e: Event) -> str:
        d, k = e.data, e.kind
        if k == "ctl.error":
            return f"CLI `{d.get('cmd')}` fails: {d.get('error')}"
        if k == "ctl.ok":
            return f"CLI `{d.get('cmd')}` answers again"
        if k == "note":
            return str(d.get("text"))
        if k == "log":
            return str(d.get("line"))
        return f"{k} {e.describe()}"


def follow(files: LabFiles, *, since: float | None = None, from_start: bool = False,
           kinds: Iterable[str] | None = None, out: TextIO = sys.stdout,
           idle: Callable[[float], None] = time.sleep) -> None:
    """Print the lab's events (all with from_start, those of the last `since`
    seconds, else only new ones) and follow until the lab is gone."""
    spec = files.spec()
    want = kind_matcher(list(kinds) if kinds else DEFAULT_KINDS)
    cutoff = float("-inf") if from_start else time.monotonic() - (since or 0.0)
    try:
        f = open(files.journal_path)  # noqa: SIM115 - followed until the lab goes
    except OSError:
        raise LabUnavailable(f"lab {spec.name} has no timeline yet ({files.journal_path}); "
                             "is it still starting?") from None
    with f:
        lines: Lines | None = None
        pending = ""
        while True:
            new, pending = read_lines(f, pending)
            batch: list[Item] = []
            for raw in new:
                item = parse_line(raw)
                if not isinstance(item, Event):
                    lines = Lines(float(item["t0"]), spec.public_ips())
                elif lines is not None:
                    batch.extend(it for it in lines.feed(item) if it.t >= cutoff and want(it.kind))
            # what arrived together is shown in time order (the prober dates its
            # events at the send time, a little after the fact)
            for it in sorted(batch, key=lambda i: i.t):
                assert lines is not None
                out.write(lines.format(it) + "\n")
            if new:
                out.flush()
                continue
            if not files.alive():
                print(f"harness watch: lab {spec.name} is gone", file=sys.stderr)
                return
            idle(IDLE)
