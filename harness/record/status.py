"""Status pollers: what each node's daemon says about the cluster, as changes.

Event kinds (source "status"): flags (a node's flags as one node sees them),
holder (who holds a public IP), ctl.error / ctl.ok (the ctl stopped or
started answering), status.beat (about once a second: the poller is polling,
and the longest gap between its polls since the last beat; the invariant
check refuses a timeline whose polls have gaps over `bound`); their data is
listed in harness.record. Both
implementations' `ctdb -X` output is read by harness.ctdb.output.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from harness.ctdb import parse_ip, parse_status
from harness.record.component import HEARTBEAT_SLACK, RecorderThread
from harness.record.events import Timeline
from harness.wait import time_scale

CtlFn = Callable[..., str]
BEAT_EVENT_EVERY = 1.0  # seconds between status.beat events
P = TypeVar("P")


@dataclass(frozen=True)
class Answer(Generic[P]):
    """One ctl command's parsed output, when it arrived and how long it took;
    generic so each kind of output (status, ip) keeps its own type."""

    t: float
    latency_ms: float
    parsed: P


def status_flags(text: str) -> dict[int, tuple[str, ...]]:
    """`ctdb -X status` (either implementation) -> {pnn: flag names}, ("OK",) when none.

    Parsed by harness.ctdb.output, the one parser for both implementations' output.
    """
    return {n.pnn: tuple(n.flags_text.split("|")) for n in parse_status(text).nodes}


def ip_holders(text: str) -> dict[str, int | None]:
    """`ctdb -X ip` -> {ip: pnn or None when unassigned (-1)}."""
    return {str(ip): (None if p < 0 else p) for ip, p in parse_ip(text).items()}


class StatusPoller(RecorderThread):
    """Polls one node's `-X status` and `-X ip`, emitting only changes.

    One poller per node, so a hung daemon (a ctl that blocks until its
    timeout) delays only its own node's view. `flags` events are about the
    subject node (`node`), seen `by` the polled node; `holder` events name the
    holder as `node`.
    """

    def __init__(self, pnn: int, ctl: CtlFn, timeline: Timeline, stop: threading.Event,
                 interval: float = 0.1, ips: bool = True, ctl_timeout: float = 3.0) -> None:
        super().__init__(f"status:{pnn}", timeline, stop)
        self.pnn, self.ctl, self.interval, self.poll_ips = pnn, ctl, interval, ips
        # a pass: the interval, then `status` and `ip`, each of which a hung
        # daemon holds until the ctl's timeout
        self.beat_bound = interval + (2 if ips else 1) * ctl_timeout
        self._beat_event_at = 0.0
        self._poll_gap = 0.0  # longest gap between polls since the last status.beat
        self.flags: dict[int, tuple[str, ...]] = {}
        self.holders: dict[str, int | None] = {}
        self.failing: dict[str, str] = {}
        self.polls = 0

    def run(self) -> None:
        with self.counting_cpu():
            nxt = time.monotonic()
            first = True
            while not self.stop_flag.is_set():
                self._poll_status()
                if self.poll_ips:
                    self._poll_ips()
                self.polls += 1
                self._beat_and_mark()
                if first:
                    self.ready.set()
                    first = False
                nxt += self.interval
                now = time.monotonic()
                if nxt < now:  # a slow ctl: skip the ticks it missed
                    nxt = now + self.interval
                self.stop_flag.wait(nxt - now if nxt > now else 0)

    def _beat_and_mark(self) -> None:
        """Beat; about once a second, put the polls' health on the timeline too."""
        prev = self.last_beat
        self.beat()
        now = self.last_beat or time.monotonic()
        if prev is not None:
            self._poll_gap = max(self._poll_gap, now - prev)
        if now - self._beat_event_at >= BEAT_EVENT_EVERY:
            self.emit("status", "status.beat", self.pnn, now, polls=self.polls,
                      max_gap=round(self._poll_gap, 3),
                      bound=round(self.beat_bound + HEARTBEAT_SLACK * time_scale(), 3),
                      every=BEAT_EVENT_EVERY)
            self._beat_event_at, self._poll_gap = now, 0.0

    def _ask(self, what: str, parse: Callable[[str], P]) -> Answer[P] | None:
        """Run `ctl -X what` and parse it; None (after a ctl.error event the
        first time) when the ctl fails, a ctl.ok event when it recovers."""
        t_sent = time.monotonic()
        try:
            out = self.ctl(self.pnn, "-X", what)
            t = time.monotonic()
            parsed = parse(out)
        except Exception as e:  # noqa: BLE001 - a dead daemon is data, not an error
            t = time.monotonic()
            msg = f"{type(e).__name__}: {e}".strip()[:300]
            if what not in self.failing:
                self.failing[what] = msg
                self.emit("status", "ctl.error", self.pnn, t, cmd=what, error=msg)
            return None
        if self.failing.pop(what, None) is not None:
            self.emit("status", "ctl.ok", self.pnn, t, cmd=what)
        return Answer(t, round((t - t_sent) * 1000, 2), parsed)

    def _poll_status(self) -> None:
        """`-X status`: a flags event per node whose flags changed."""
        got = self._ask("status", status_flags)
        if got is None:
            return
        for pnn, flags in sorted(got.parsed.items()):
            prev = self.flags.get(pnn)
            if prev != flags:
                self.flags[pnn] = flags
                extra = {"initial": True} if prev is None else {}
                self.emit("status", "flags", pnn, got.t, flags=list(flags),
                          prev=list(prev) if prev else None, by=self.pnn,
                          latency_ms=got.latency_ms, **extra)

    def _poll_ips(self) -> None:
        """`-X ip`: a holder event per public IP whose holder changed."""
        got = self._ask("ip", ip_holders)
        if got is None:
            return
        for ip, holder in sorted(got.parsed.items()):
            known = ip in self.holders
            prev = self.holders.get(ip)
            if not known or prev != holder:
                self.holders[ip] = holder
                extra = {"initial": True} if not known else {}
                self.emit("status", "holder", holder, got.t, ip=ip, pnn=holder, prev=prev,
                          by=self.pnn, latency_ms=got.latency_ms, **extra)
