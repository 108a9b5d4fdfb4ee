"""What happened during a test, on one clock: the timeline and its recorders.

Every recorder and every fault writes `Event`s to one `Timeline` per test
(CLOCK_MONOTONIC), so "after the fault, node 2 was UNHEALTHY within X s" is a
query over one clock. The modules, one job each:

  events     Event, Timeline (the store, its queries and waits), address_holders
  component  RecorderThread (the thread every recorder runs in), RecorderStats
  netlink    NetlinkListener: links, addresses and bonds of one namespace
  status     StatusPoller: one node's `ctdb -X status` / `-X ip`, as changes
  logs       LogFollower: lines of a log file
  probe      ClientProber: ARP and ICMP probes of the public IPs from a client
  outages    Outage, outages(): unanswered stretches, read from probe events
  recorder   Recorder: all of the above for one cluster, started and stopped together

Event kinds (source in brackets; `node` is the pnn the event is about, None
for the client and switch namespaces; data keys after the colon):
  [netlink]  every event has ns ("n2", "c-public", "sw") and ifname
    link.admin: up   link.carrier: up   link.operstate: state, prev
    link.new: admin, carrier, operstate, link_kind   link.del   link.master: master
    bond.active: slave, prev   bond.slave: mii_up, bond
    addr.add / addr.del: ip, prefixlen (+ initial=True for the starting state)
  [status]   flags: flags (list, ["OK"] if none), prev, by (the polled node),
             latency_ms; holder: ip, pnn (None = unassigned), prev, by;
             ctl.error: cmd, error; ctl.ok: cmd   (initial=True on first sight);
             status.beat: polls, max_gap, bound, every (about once a second)
  [log]      log: line, path
  [probe]    probe.arp, probe.icmp, probe.neigh, probe.garp, probe.start,
             probe.stop, probe.error (see harness.record.probe)
  [fault]    fault.apply, fault.undo, fault.error, fault.arm, fault.disarm,
             fault.trigger (see harness.faults)
  [recorder] recorder.start, recorder.stop, recorder.overrun, recorder.error
  [test]     note: text
"""

from harness.record.component import RecorderStats, RecorderThread
from harness.record.events import (
    Event,
    KindSpec,
    Predicate,
    Timeline,
    TimelineTimeout,
    address_holders,
    kind_matcher,
)
from harness.record.logs import LogFollower, LogSpec
from harness.record.netlink import NetlinkListener
from harness.record.outages import Outage, outages
from harness.record.probe import ClientProber, arp_probe_frame, icmp_echo, mac_str
from harness.record.recorder import Recorder, RecorderError
from harness.record.status import CtlFn, StatusPoller, ip_holders, status_flags

__all__ = [
    "ClientProber",
    "CtlFn",
    "Event",
    "KindSpec",
    "LogFollower",
    "LogSpec",
    "NetlinkListener",
    "Outage",
    "Predicate",
    "Recorder",
    "RecorderError",
    "RecorderStats",
    "RecorderThread",
    "StatusPoller",
    "Timeline",
    "TimelineTimeout",
    "address_holders",
    "arp_probe_frame",
    "icmp_echo",
    "ip_holders",
    "kind_matcher",
    "mac_str",
    "outages",
    "status_flags",
]
