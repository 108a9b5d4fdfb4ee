"""The cluster lock's service dies: etcd in the lock namespace SIGKILLed
(apply), started again on its data (undo, which returns once /health says
true: the mark's t_after is when the service answers again).

Only for topology cluster_lock = "etcd"; with the host-file lock there is
no service to kill, and the fault says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.faults.base import Fault, FaultError, Span
from harness.record import Timeline

if TYPE_CHECKING:
    from harness.cluster import Cluster


class KillLockService(Fault):
    """etcd SIGKILLed; undo restarts it and waits for it to be healthy."""

    def __init__(self, cluster: Cluster, timeline: Timeline | None = None) -> None:
        super().__init__(timeline, None)
        if cluster.lock_service is None:
            raise FaultError("the cluster lock is a host file (cluster_lock = \"fcntl\"); "
                             "use a topology with cluster_lock = \"etcd\"")
        self.service = cluster.lock_service

    def describe(self) -> str:
        return f"lock service (etcd at {self.service.endpoint}) killed"

    def _apply(self) -> Span:
        self._wait_at()
        return self.service.kill()

    def _undo(self) -> Span:
        return self._timed(self.service.start)
