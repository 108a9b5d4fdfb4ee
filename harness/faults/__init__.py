"""Faults: things that go wrong in a cluster, applied and undone on purpose, and
the one way a test or tool changes a built cluster's links.

Every fault is an object with apply()/undo() and context-manager use, and
marks the timeline when it acts (`fault.apply` / `fault.undo`, dated just
before the acting syscall; see base). apply(at=T) acts at monotonic time T,
prepared beforehand (Flap, Triggered).

    faults = Faults(cluster, timeline, backend)
    with faults.pull_cable(1, "eth1"):
        ...
    faults.undo_all()   # in teardown: whatever is still applied

Modules, one job each:
  base       Fault, its errors, Span, what daemon faults need of a backend
  links      admin-down, pulled cables, bond slaves, deleted interfaces,
             and public_link_fault (the seed's experiment on any topology)
  switch     nftables drops on the switch's bridges; netem on a cable
  daemons    signals, stop/restart through the backend, a hung monitor
  timing     Flap and Triggered around an inner fault
  lockservice  the cluster lock's etcd killed and restarted
  catalogue  Faults, the factory bound to a cluster, timeline and backend
  kinds      the catalogue by name (`pull-cable 2 eth1`) for the lab CLI and
             scenario files

Safety: link changes happen only in the run's namespaces (verified netlink
sockets, via netns.in_netns); nftables tables live in the run's switch
namespace and are named fth_<runid>_...; signals go only to pids that are
inside the node's namespace, and are re-checked by start time before undo.
"""

from harness.faults.base import DaemonControl, Fault, FaultCancelled, FaultError, Span
from harness.faults.catalogue import Faults
from harness.faults.daemons import (
    HANG_SCRIPT,
    HangMonitor,
    RestartDaemon,
    SignalDaemon,
    StopDaemon,
    hang_daemon,
    kill_daemon,
    process_state,
)
from harness.faults.kinds import KINDS, FaultKind, FaultSpecError, build_fault, describe_kinds
from harness.faults.links import (
    AdminDown,
    DeleteInterface,
    PlugCable,
    PullCable,
    all_bond_slaves_lost,
    bond_slave_lost,
    bond_slaves,
    public_interface,
    public_link_fault,
    set_links,
)
from harness.faults.switch import (
    Netem,
    NftDrop,
    OneWayLoss,
    PacketLoss,
    Partition,
    netem_available,
)
from harness.faults.timing import Flap, Triggered

__all__ = [
    "HANG_SCRIPT", "KINDS", "AdminDown", "DaemonControl", "DeleteInterface", "Fault",
    "FaultCancelled", "FaultError", "FaultKind", "FaultSpecError", "Faults", "Flap",
    "HangMonitor", "Netem", "NftDrop", "OneWayLoss", "PacketLoss", "Partition", "PlugCable",
    "PullCable", "RestartDaemon", "SignalDaemon", "Span", "StopDaemon", "Triggered",
    "all_bond_slaves_lost", "bond_slave_lost", "bond_slaves", "build_fault", "describe_kinds",
    "hang_daemon", "kill_daemon", "netem_available", "process_state", "public_interface",
    "public_link_fault", "set_links",
]
