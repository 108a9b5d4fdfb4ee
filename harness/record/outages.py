"""Outages: the intervals in which a client's probes of an IP went unanswered,
read back from the prober's events (harness.record.probe)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from harness.record.events import Event, Timeline


@dataclass(frozen=True)
class Outage:
    """An interval in which probes of `ip` went unanswered.

    start: the first failed probe's event; end: the first answered one after
    it (None if the outage lasted to the end). The true outage lies between
    `lo` (first to last failed probe) and `hi` (last good probe before to
    first good probe after); `duration` is from the first failed to the
    first good probe.
    """

    ip: str
    start: Event
    end: Event | None

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end.t - self.start.t

    @property
    def lo(self) -> float | None:
        if self.end is None or self.end.get("last_prev_t") is None:
            return None
        return self.end["last_prev_t"] - self.start.t

    @property
    def hi(self) -> float | None:
        if self.end is None:
            return None
        before = self.start.get("last_prev_t")
        return self.end.t - (before if before is not None else self.start.t)


def outages(timeline: Timeline, ip: str | ipaddress.IPv4Address, kind: str = "probe.icmp",
            since: float | Event | None = None, until: float | Event | None = None
            ) -> list[Outage]:
    """Outages of `ip` seen by ICMP ("probe.icmp", what a client experiences) or by
    ARP ("probe.arp", whether anyone claims the IP). The first probe's state
    counts too: an IP that never answered from the start is one open outage."""
    key = "ok" if kind == "probe.icmp" else "answered"
    out: list[Outage] = []
    start: Event | None = None
    for e in timeline.events(kind, since=since, until=until, ip=str(ip)):
        if not e[key] and start is None:
            start = e
        elif e[key] and start is not None:
            out.append(Outage(str(ip), start, e))
            start = None
    if start is not None:
        out.append(Outage(str(ip), start, None))
    return out


@dataclass(frozen=True)
class TcpOutage:
    """An interval in which no TCP request to `ip` was answered on any of the
    client's connections: from the last answer before (`last_ok_t`) to the
    first answer after (`end`, None if it lasted to the end)."""

    ip: str
    last_ok_t: float
    end: Event | None

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end.t - self.last_ok_t


def tcp_outages(timeline: Timeline, ip: str | ipaddress.IPv4Address,
                since: float | Event | None = None, until: float | Event | None = None
                ) -> list[TcpOutage]:
    """TCP outages of `ip` from the TCP prober's probe.tcp events
    (harness.record.tcpprobe)."""
    out: list[TcpOutage] = []
    last_ok: float | None = None
    for e in timeline.events("probe.tcp", since=since, until=until, ip=str(ip)):
        if not e["answered"]:
            last_ok = e["last_prev_t"]
        elif last_ok is not None:
            out.append(TcpOutage(str(ip), last_ok, e))
            last_ok = None
    if last_ok is not None:
        out.append(TcpOutage(str(ip), last_ok, None))
    return out


def tcp_outage_across(timeline: Timeline, ip: str | ipaddress.IPv4Address, fault: Event,
                      takeover: Event, lead: float = 1.0) -> TcpOutage | None:
    """The ended TCP outage of ip that spans `takeover` (the IP's addr.add on
    its new node): its last answer before the takeover, no earlier than `lead`
    s before the fault, and its first answer after; None until there is one.
    Stalls of the prober's own scheduling, before or after, are not it."""
    for o in tcp_outages(timeline, ip, since=fault.t - lead):
        if fault.t - lead <= o.last_ok_t < takeover.t and o.end is not None \
                and o.end.t > takeover.t:
            return o
    return None
