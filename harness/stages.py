"""Where one failover's time goes, stage by stage, read off a run's timeline.

A pulled cable is failed over in five stages, each ending at a moment some
recorder saw:

1. carrier: fault applied -> the kernel reports the carrier loss in the
   node's namespace (netlink `link.carrier`);
2. daemon: -> the node's daemon turns UNHEALTHY (its own log line, dated by
   the daemon: "Node became UNHEALTHY" natively, "monitor event failed -
   disabling node" on ctdbd);
3. leader: -> the leader's takeover run starts ("Takeover run starting",
   both implementations, on the leader);
4. takeip: -> the first moved IP is in a healthy node's kernel (netlink
   `addr.add`);
5. client: -> the client's first answered ICMP echo to that IP (probe.icmp).

The daemons date their log lines with the wall clock and everything else on
the timeline is monotonic; a line's time is converted with the offset
between the two clocks read now (no step of the wall clock during a trial
is assumed: NTP slews, it does not step, on a running machine). Stages
before the daemon's are bounded by the recorders' own dating: a netlink
event is dated when the listener reads it, within a millisecond here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime

from harness.record import Event
from harness.record.events import Timeline

STAGES = ("carrier", "daemon", "leader", "takeip", "client")
"""Stage names, in order; each value is the time from the previous stage's end."""

_STAMP = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6}) ")
_UNHEALTHY = re.compile(r"Node became UNHEALTHY|monitor event failed - disabling node")
_RUN_START = re.compile(r"Takeover run starting")


def log_time(line: str, offset: float | None = None) -> float | None:
    """The monotonic time a daemon's log line was written (None: no timestamp).

    offset: time.time() - time.monotonic(), read once by the caller for many lines."""
    m = _STAMP.match(line)
    if m is None:
        return None
    wall = datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S.%f").timestamp()
    return wall - (time.time() - time.monotonic() if offset is None else offset)


@dataclass(frozen=True)
class Breakdown:
    """Seconds spent in each stage (None where the moment was not seen)."""

    carrier: float | None
    daemon: float | None
    leader: float | None
    takeip: float | None
    client: float | None

    @property
    def total(self) -> float | None:
        """Fault -> client reachable again, when the last stage was seen."""
        parts = [getattr(self, s) for s in STAGES]
        return None if any(p is None for p in parts) else sum(parts)


def _logged(tl: Timeline, pattern: re.Pattern[str], node: int | None, after: float,
            offset: float) -> float | None:
    """Daemon time of the first log line matching pattern at or after `after`."""
    for e in tl.events("log", ... if node is None else node, since=after - 1.0):
        line = e.get("line", "")
        if pattern.search(line):
            t = log_time(line, offset)
            if t is not None and t >= after - 0.005:  # a line is dated to the microsecond
                return t
    return None


def breakdown(tl: Timeline, fault_t: float, pnn: int, moved: Event) -> Breakdown:
    """The stages of the failover of node `pnn` whose fault was applied at
    fault_t and whose first moved IP arrived in `moved` (an addr.add event)."""
    offset = time.time() - time.monotonic()
    carrier = tl.first("link.carrier", node=pnn, since=fault_t, up=False)
    t_carrier = carrier.t if carrier else None
    t_daemon = _logged(tl, _UNHEALTHY, pnn, fault_t, offset)
    t_leader = _logged(tl, _RUN_START, None, t_daemon if t_daemon is not None else fault_t,
                       offset)
    ip = moved.get("ip")
    lost = tl.first("probe.icmp", since=fault_t, ip=ip, ok=False)
    back = tl.first("probe.icmp", after=lost, ip=ip, ok=True) if lost else None
    t_client = back.t if back else None
    points = [fault_t, t_carrier, t_daemon, t_leader, moved.t, t_client]
    spans: list[float | None] = []
    for a, b in zip(points, points[1:], strict=False):
        spans.append(None if a is None or b is None else b - a)
    return Breakdown(*spans)
