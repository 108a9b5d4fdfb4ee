"""The event store: one merged, thread-safe timeline per test, on CLOCK_MONOTONIC.

Every recorder and every fault writes `Event`s here, so "after the fault,
node 2 was UNHEALTHY within X s" is a query over one clock. Events are kept
sorted by time even when a recorder reports late (the prober decides a probe
failed only after its timeout, but dates the event at the send time). The
kinds of events each source writes are listed in harness.record.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

