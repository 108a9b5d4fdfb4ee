"""The fault catalogue: `Faults` makes faults bound to one cluster, timeline
and backend, and remembers them so a test's teardown can undo what is left.

    faults = Faults(cluster, timeline, backend)
    with faults.pull_cable(1, "eth1"):
        ...
    fault = faults.public_link(2).apply()   # the seed's experiment, any topology
    faults.undo_all()   # in teardown: whatever is still applied

The pytest plugin's `faults` fixture is one of these. Tests and tools change
links only through it (or the fault classes directly); the cluster handles
only read link state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from harness.faults.base import DaemonControl, Fault, FaultError
from harness.faults.daemons import (
    FailEvent,
    HangMonitor,
    RestartDaemon,
    SignalDaemon,
    StopDaemon,
    hang_daemon,
    kill_daemon,
)
from harness.faults.links import (
    AdminDown,
    DeleteInterface,
    PlugCable,
    PullCable,
    all_bond_slaves_lost,
    bond_slave_lost,
    public_link_fault,
)
from harness.faults.lockservice import KillLockService
from harness.faults.switch import Netem, OneWayLoss, PacketLoss, Partition
from harness.faults.timing import Flap, Triggered
from harness.record import Predicate, Timeline

if TYPE_CHECKING:
    from harness.cluster import Cluster

F = TypeVar("F", bound=Fault)

class Faults:
    """Makes faults bound to one cluster, timeline and backend, and remembers
    them so undo_all() can clean up whatever a test left applied."""

    def __init__(self, cluster: Cluster, timeline: Timeline | None = None,
                 backend: DaemonControl | None = None) -> None:
        self.cluster, self.timeline, self.backend = cluster, timeline, backend
        self.made: list[Fault] = []

    def _keep(self, f: F) -> F:
        """Remember f for undo_all()."""
        self.made.append(f)
        return f

    def _backend(self) -> DaemonControl:
        if self.backend is None:
            raise FaultError("daemon faults need a backend")
        return self.backend

    # links
    def admin_down(self, pnn: int, ifname: str) -> AdminDown:
        return self._keep(AdminDown(self.cluster, pnn, ifname, self.timeline))

    def pull_cable(self, pnn: int, port: str | Sequence[str]) -> PullCable:
        return self._keep(PullCable(self.cluster, pnn, port, self.timeline))

    def plug_cable(self, pnn: int, port: str | Sequence[str]) -> PlugCable:
        return self._keep(PlugCable(self.cluster, pnn, port, self.timeline))

    def bond_slave_lost(self, pnn: int, bond: str = "bond0",
                        slave: str | None = None) -> PullCable:
        return self._keep(bond_slave_lost(self.cluster, pnn, bond, slave, self.timeline))

    def all_bond_slaves_lost(self, pnn: int, bond: str = "bond0") -> PullCable:
        return self._keep(all_bond_slaves_lost(self.cluster, pnn, bond, self.timeline))

    def delete_interface(self, pnn: int, ifname: str) -> DeleteInterface:
        return self._keep(DeleteInterface(self.cluster, pnn, ifname, self.timeline))

    def public_link(self, pnn: int) -> Fault:
        """Node pnn loses its public link, the seed's experiment in the form that
        works on this topology: AdminDown of the public bond's (only or active)
        slave, or PullCable of a plain public interface, whose admin-down
        CTDB's 10.interface would heal. See links.public_link_fault."""
        return self._keep(public_link_fault(self.cluster, pnn, self.timeline))

    # networks
    def isolate(self, pnn: int, network: str | None = None) -> Partition:
        return self._keep(Partition.isolate(self.cluster, pnn, network, self.timeline))

    def partition(self, *groups: Iterable[int], network: str | None = None) -> Partition:
        return self._keep(Partition(self.cluster, groups, network, self.timeline))

    def one_way_loss(self, src: Iterable[int], dst: Iterable[int],
                     network: str | None = None) -> OneWayLoss:
        return self._keep(OneWayLoss(self.cluster, src, dst, network, self.timeline))

    def packet_loss(self, pnn: int, port: str, percent: int,
                    direction: str = "both") -> PacketLoss:
        return self._keep(PacketLoss(self.cluster, pnn, port, percent, direction,
                                     self.timeline))

    def netem(self, pnn: int, port: str, loss: float | None = None,
              delay_ms: float | None = None) -> Netem:
        return self._keep(Netem(self.cluster, pnn, port, loss, delay_ms, self.timeline))

    def kill_lock_service(self) -> KillLockService:
        """etcd (cluster_lock = "etcd") SIGKILLed; undo restarts it."""
        return self._keep(KillLockService(self.cluster, self.timeline))

    # daemons
    def kill_daemon(self, pnn: int, restart: bool = True) -> SignalDaemon:
        return self._keep(kill_daemon(self._backend(), pnn, restart, self.timeline))

    def hang_daemon(self, pnn: int, group: bool = False) -> SignalDaemon:
        return self._keep(hang_daemon(self._backend(), pnn, group, self.timeline))

    def stop_daemon(self, pnn: int) -> StopDaemon:
        return self._keep(StopDaemon(self._backend(), pnn, self.timeline))

    def restart_daemon(self, pnn: int) -> RestartDaemon:
        return self._keep(RestartDaemon(self._backend(), pnn, self.timeline))

    def hang_monitor(self, pnn: int, seconds: int = 3600,
                     name: str = "99.hang.script") -> HangMonitor:
        return self._keep(HangMonitor(self._backend(), pnn, seconds, name, self.timeline))

    def fail_event(self, pnn: int, event: str = "takeip") -> FailEvent:
        return self._keep(FailEvent(self._backend(), pnn, event, self.timeline))

    # time
    def flap(self, inner: Fault, period: float, count: int, duty: float = 0.5) -> Flap:
        return self._keep(Flap(inner, period, count, duty, self.timeline))

    def on(self, kind: str | Iterable[str], inner: Fault, where: Predicate | None = None,
           node: Any = ..., offset: float = 0.0, timeout: float = 120.0,
           **data: Any) -> Triggered:
        """`inner` applied `offset` s after the next event matching kind/node/where/data."""
        if self.timeline is None:
            raise FaultError("triggered faults need a timeline")
        return self._keep(Triggered(inner, self.timeline, kind, where, node, offset,
                                    timeout=timeout, **data))

    def undo_all(self) -> list[str]:
        """Undo every fault still applied, newest first; returns the errors."""
        errors = []
        for f in reversed(self.made):
            try:
                f.undo()
            except Exception as e:  # noqa: BLE001 - collect, go on cleaning
                errors.append(f"{f.describe()}: {e}")
        return errors

