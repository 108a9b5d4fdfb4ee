"""Leadership: the cluster lock and the leader's broadcast, as ctdb_recoverd's
election and cluster lock decide the recovery master (measured on ctdbd 4.17).

Whoever holds the cluster lock is the leader; it says so to every node each
RecoverInterval. The lock is taken through a cluster mutex helper, the same
program ctdbd runs (harness.failover.mutex_helper): `--cluster-lock FILE`
runs ctdb_mutex_fcntl_helper FILE (which itself rechecks every 5 s that the
file is still the one it locked, and exits if not), `--cluster-lock '!CMD'`
runs CMD (ctdb_etcd_lock for a lock service on the network).

A node without leader capability (ctdb.conf `leader capability = false`,
failoverd --no-leader-capability) never tries the lock, so never leads.

As in ctdbd: a node that hears no leader for LEADER_SILENCE seconds (ctdbd's
"leader timeout"), or knows of none, starts an election and tries the lock;
a failed attempt ("Unable to take cluster lock - contention") is retried
only at the next leader timeout, so a helper that leaves state behind (as
ctdb_etcd_lock's keys) is not hammered. When the holder's helper exits
("Cluster lock helper terminated") the leader stops being leader at once
and starts an election; it keeps the public IPs it holds (ctdbd releases
none on losing the lock) but runs no takeover until it leads again.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from harness.ctdb.cluster_lock import with_helper_path
from harness.failover.log import NOTICE, log
from harness.failover.membership import Membership, Message
from harness.failover.mutex_helper import CONTENTION, TAKEN, TIMEOUT, MutexHelper
from harness.failover.state import NodeState

LEADER_SILENCE = 5.0
# ctdbd's words for a helper's status characters
_WHY = {CONTENTION: "contention", TIMEOUT: "timeout"}

# The one lock class: the cluster lock through a mutex helper.
ClusterLock = MutexHelper


def helper_env(node_dir: Path) -> dict[str, str]:
    """The helper's environment, as a ctdbd node's: CTDB_BASE is the node's
    directory (ctdb_etcd_lock reads its `etcd` file there), and PATH finds
    the node's bin/ first (a `ctdb` that answers `ctdb pnn`, which the etcd
    helper asks), then the system's programs (its `env python3` must be the
    Python with python3-etcd)."""
    return {**os.environ, "CTDB_BASE": str(node_dir),
            "PATH": f"{node_dir / 'bin'}:{with_helper_path(os.environ.get('PATH'))}"}


class Leadership:
    """Who leads: take the lock when the leader falls silent, announce, hand over."""

    def __init__(self, state: NodeState, mesh: Membership) -> None:
        self.state = state
        self.mesh = mesh
        setting = state.cfg.cluster_lock
        self.lock = ClusterLock(str(setting) if setting is not None else None,
                                env=helper_env(state.cfg.directory), on_lost=self._lock_lost)
        self.resigned_until = 0.0  # monotonic; no lock attempt before this
        self.next_attempt = 0.0  # monotonic; after a failed attempt, the next leader timeout

    def leader_msg(self) -> Message:
        return {"type": "leader", "pnn": self.state.pnn, "generation": self.state.generation}

    def start(self) -> None:
        """The recovery loop begins (nothing to start: the helper watches the lock)."""

    def _lock_lost(self) -> None:
        """The helper holding our lock exited: no longer leader; elect at once."""
        log.error("Cluster lock helper terminated")
        if self.state.is_leader():
            self.state.leader = None
        self.next_attempt = 0.0

    async def step(self, now: float) -> bool:
        """One recovery-loop tick of the election; True when this node has just
        become leader (the caller then skips this tick's IP check, as before).

        A leader announces itself; a node without a live leader tries the lock.
        """
        st = self.state
        if st.is_leader():
            await self.mesh.broadcast(self.leader_msg())
            return False
        silent = now - st.leader_seen > LEADER_SILENCE
        if not ((st.leader is None or silent) and now >= self.resigned_until
                and now >= self.next_attempt and self.lock.argv is not None
                and st.cfg.leader_capable):
            return False
        log.log(NOTICE, "Attempting to take cluster lock")
        status = await self.lock.take()
        if status != TAKEN:
            log.log(NOTICE, "Unable to take cluster lock - %s", _WHY.get(status, "unknown error"))
            self.next_attempt = time.monotonic() + LEADER_SILENCE
            return False
        st.leader = st.pnn
        st.generation = random.randint(1, 2**31 - 1)
        log.log(NOTICE, "Took the cluster lock: this node (%d) is the leader", st.pnn)
        await self.mesh.broadcast(self.leader_msg())
        st.takeover_needed.set()
        return True

    def resign(self, why: str) -> None:
        """Give up the lock and stay away from it for a while, so that a node
        whose takeover machinery works takes it (after LEADER_SILENCE)."""
        log.error("giving up leadership and the cluster lock: %s", why)
        self.lock.drop()
        self.state.leader = None
        self.resigned_until = time.monotonic() + 3 * LEADER_SILENCE

    async def on_leader(self, src: int, msg: Message) -> Message | None:
        """`leader`: another node holds the lock; remember it and when we heard."""
        st = self.state
        if msg["pnn"] == src and src != st.pnn:
            if st.leader != src:
                log.log(NOTICE, "Leader is now node %d", src)
            st.leader, st.generation, st.leader_seen = src, msg["generation"], time.monotonic()
        return None

    async def greet(self, pnn: int) -> None:
        """A peer just connected: if we lead, tell it, and place it with a takeover run."""
        if self.state.is_leader():
            await self.mesh.send(pnn, self.leader_msg())
            self.state.takeover_needed.set()

    def peer_lost(self, pnn: int) -> None:
        """A peer disconnected: forget it as leader; as leader, move its IPs."""
        st = self.state
        if st.leader == pnn:
            st.leader = None
        if st.is_leader():
            st.takeover_needed.set()

    async def request_takeover(self, reason: str) -> None:
        """Ask the leader (if any) for a takeover run."""
        st = self.state
        if st.leader is None:
            return
        await self.mesh.send(st.leader, {"type": "takeover_request", "pnn": st.pnn,
                                         "reason": reason})
