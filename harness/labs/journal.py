"""A lab's timeline on disk: every event appended as one JSON line the moment
it is recorded, so `watch` can follow it and `save` can read it from another
process, and nothing is lost if the supervisor dies.

The file has Timeline.save()'s shape (a header line, then one event a line),
so harness.record tools read it too. Events are in arrival order; the
prober dates some a little in the past (see harness.record).

This is the one module of harness.labs that imports the recorders' package:
the other modules get Event, Timeline and the derived views from here.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any

from harness.record import (
    Event,
    Outage,
    Timeline,
    address_holders,
    kind_matcher,
    outages,
    status_flags,
)

__all__ = ["Event", "Journal", "Outage", "Timeline", "address_holders", "kind_matcher",
           "load_timeline", "outages", "parse_line", "read_lines", "status_flags"]

HEADER = "timeline.header"


class Journal:
    """Appends every event of `timeline` to `path`, flushed per event.

    Subscribe before the recorders start (running_cluster(timeline=...)) and
    no event is missed; close() stops writing.
    """

    def __init__(self, path: Path, timeline: Timeline) -> None:
        self.path = path
        self.timeline = timeline
        self._lock = threading.Lock()
        self._file: IO[str] | None = open(path, "a")  # noqa: SIM115 - open until close()
        self._write({"kind": HEADER, "name": timeline.name, "t0": timeline.t0,
                     "clock": "CLOCK_MONOTONIC"})
        self._unsubscribe = timeline.subscribe(lambda e: self._write(e.to_json()))

    def _write(self, record: dict[str, Any]) -> None:
        with self._lock:
            if self._file is None:
                return
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._unsubscribe()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def parse_line(line: str) -> dict[str, Any] | Event:
    """One journal line: the header as a dict, anything else as an Event."""
    d = json.loads(line)
    if d.get("kind") == HEADER:
        return d
    return Event(d["t"], d["source"], d["kind"], d["node"], d["data"], d.get("seq", -1))


def read_lines(f: IO[str], pending: str = "") -> tuple[list[str], str]:
    """The complete lines readable from `f` now, and the unfinished rest (a line
    the supervisor is still writing is left for the next read)."""
    text = pending + f.read()
    *lines, rest = text.split("\n")
    return [x for x in lines if x.strip()], rest


def load_timeline(path: Path) -> Timeline:
    """The journal as a Timeline (complete lines only)."""
    header: dict[str, Any] = {}
    events: list[Event] = []
    with open(path) as f:
        lines, _ = read_lines(f)
    for line in lines:
        item = parse_line(line)
        if isinstance(item, Event):
            events.append(item)
        else:
            header = item
    tl = Timeline(header.get("name", path.stem), t0=header.get("t0"))
    for e in events:
        tl.add(e)
    return tl

