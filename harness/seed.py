"""The seed's experiment, written once: node 2 of a 3-node cluster loses its
public link; it must turn UNHEALTHY at its next monitor run and its public
IPs must answer from a healthy node shortly after, as a client sees it.

`harness demo`, `harness stats` and the seed test all run `run_seed`; the
choice of fault for the machine (the seed's bond slave going down where the
kernel has bonding, a pulled cable on the plain variant) is made by
`Faults.public_link`, and the choice of topology by `seed_topology`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from harness import builder
from harness.assertions import Bounds, expect, expect_moved, has_flag
from harness.faults import Fault
from harness.lab import Lab
from harness.record import Event, outages
from harness.record.outages import tcp_outage_across
from harness.record.tcpprobe import TcpProber
from harness.topology import Topology, default_topology
from harness.wait import wait_until

SEED_NODE = 2  # the node whose link the seed took down ("node 2" of 0, 1, 2)


def seed_topology(nodes: int = 3) -> Topology:
    """The seed's cluster: bond0 over eth1 where the kernel has bonding, else
    its plain variant (eth1 itself public)."""
    top = default_topology(nodes)
    return top if builder.kernel_has_bonding() else top.plain()


@dataclass
class SeedResult:
    """What one run of the experiment measured (times are monotonic seconds)."""

    implementation: str
    monitor_interval: int
    fault: Fault
    due: float | None  # node's next monitor run, seconds after the fault (native only)
    ips: list[str]  # the public IPs the node held before the fault
    unhealthy: Event
    moved: list[Event]  # per IP, its addr.add on a healthy node
    outage: dict[str, float]  # per IP, the client's ICMP outage (s)
    # per IP, the TCP outage (last answered request -> first after), when TCP clients ran
    tcp_outage: dict[str, float] = field(default_factory=dict)

    @property
    def t0(self) -> float:
        assert self.fault.apply_event is not None
        return self.fault.apply_event.t

    @property
    def detection(self) -> float:
        """Fault -> UNHEALTHY."""
        return self.unhealthy.t - self.t0

    @property
    def takeover(self) -> float:
        """UNHEALTHY -> last IP in the kernel of a healthy node (negative when the
        status poll saw the flag after the IP had moved)."""
        return max(m.t for m in self.moved) - self.unhealthy.t

    @property
    def end_to_end(self) -> float:
        return max(m.t for m in self.moved) - self.t0

    @property
    def worst_outage(self) -> float:
        return max(self.outage.values())

    def summary(self) -> dict[str, Any]:
        return {
            "implementation": self.implementation, "fault": self.fault.describe(),
            "MonitorInterval": self.monitor_interval,
            "next_monitor_due_s": self.due,
            "detection_delay_s": round(self.detection, 3),
            "takeover_delay_s": round(self.takeover, 3),
            "end_to_end_s": round(self.end_to_end, 3),
            "client_outage_s": {ip: round(s, 3) for ip, s in self.outage.items()},
            **({"client_tcp_outage_s": {ip: round(s, 3) for ip, s in self.tcp_outage.items()}}
               if self.tcp_outage else {}),
        }


def run_seed(lab: Lab, bounds: Bounds, pnn: int = SEED_NODE, tcp: TcpProber | None = None,
             tcp_wait: float = 30.0) -> SeedResult:
    """Apply the seed's fault to node `pnn` and assert, on the lab's timeline:
    UNHEALTHY within the detection bound (from the node's next monitor run
    when the implementation says when that is, else the longest gap), each of
    its IPs in a healthy node's kernel within the takeover bound after that,
    and the client reaching each IP again (and with `tcp`, a TcpProber running,
    its connections getting answers again within tcp_wait s: measured, the
    bound is the caller's; the takeover bound then allows for the
    implementation's killtcp on the unplugged node, Backend.killtcp_release_delay).
    Raises AssertionError (with the
    timeline around the moment) when a bound is broken. The fault stays
    applied: the caller undoes it (or the lab does at the end)."""
    backend, tl = lab.backend, lab.timeline
    ips = sorted(str(ip) for ip, p in backend.ips(0).items() if p == pnn)
    due = backend.monitor_due(pnn)
    fault = lab.faults.public_link(pnn).apply()
    assert fault.apply_event is not None
    bad = expect(tl, "flags", node=pnn, after=fault.apply_event,
                 within=(0, bounds.detection(due)), where=has_flag("UNHEALTHY"))
    takeover = bounds.takeover
    if tcp is not None:
        takeover += backend.killtcp_release_delay * bounds.scale
    moved = expect_moved(tl, ips, off=pnn, after=fault.apply_event, ref=bad,
                         within=bounds.detection(due) + takeover, takeover=takeover)
    # the client reaches every moved IP again (the gratuitous ARP updated its cache)
    def ended(ip: str) -> list[float]:
        """Lengths of ip's outages since the fault that are over (the client got through)."""
        return [o.duration for o in outages(tl, ip, since=fault.apply_event)
                if o.duration is not None]

    outage: dict[str, float] = {}
    for ip in ips:
        _, durations = wait_until(functools.partial(ended, ip), bounds.takeover + 3,
                                  f"client reaches {ip} again")
        outage[ip] = max(durations)
    tcp_outage: dict[str, float] = {}
    for ip, add in zip(ips, moved, strict=True):
        if tcp is None:
            break
        try:
            _, o = wait_until(functools.partial(tcp_outage_across, tl, ip, fault.apply_event,
                                                add), tcp_wait, f"TCP clients of {ip} answered")
        except AssertionError as e:
            seen = [(round(x.t - add.t, 3), x.kind, x.get("state", x.get("answered")))
                    for x in tl.events(("probe.tcpconn", "probe.tcp"), ip=ip,
                                       since=fault.apply_event.t - 1)]
            raise AssertionError(f"{e}; TCP events of {ip} (s from its takeover): "
                                 f"{seen[:40]}") from None
        assert o is not None and o.duration is not None  # wait_until returns an ended one
        tcp_outage[ip] = o.duration
    return SeedResult(backend.name, backend.tunable("MonitorInterval"), fault, due, ips, bad,
                      moved, outage, tcp_outage)
