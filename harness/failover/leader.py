"""Leadership: the cluster lock and the leader's broadcast, as ctdb_recoverd's
election and cluster lock decide the recovery master.

Whoever holds the cluster lock (an fcntl lock on a file all nodes share) is
the leader; it says so to every node each RecoverInterval. A node that hears
no leader for LEADER_SILENCE seconds (or knows of none) tries the lock; the
leader checks every LOCK_CHECK_GAP seconds that the file it locked is still
the one at the path, and gives up leadership if not.
"""

from __future__ import annotations

import fcntl
import os
import random
import time
from pathlib import Path

from harness.failover.log import NOTICE, log
from harness.failover.membership import Membership, Message
from harness.failover.state import NodeState

LEADER_SILENCE = 5.0
LOCK_CHECK_GAP = 5.0


class ClusterLock:
    """An exclusive fcntl lock on the shared file at path (None: never ours)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fd: int | None = None

    def try_lock(self) -> bool:
        if self.path is None:
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def still_ours(self) -> bool:
        """The lock file we hold must still be the one at the path."""
        if self.fd is None or self.path is None:
            return False
        try:
            return os.fstat(self.fd).st_ino == os.stat(self.path).st_ino
        except OSError:
            return False

    def drop(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Leadership:
    """Who leads: take the lock when the leader falls silent, announce, hand over."""

    def __init__(self, state: NodeState, mesh: Membership) -> None:
        self.state = state
        self.mesh = mesh
        self.lock = ClusterLock(state.cfg.cluster_lock)
        self.last_lock_check = 0.0
        self.resigned_until = 0.0  # monotonic; no lock attempt before this

    def leader_msg(self) -> Message:
        return {"type": "leader", "pnn": self.state.pnn, "generation": self.state.generation}

    def start(self) -> None:
        """The recovery loop begins: the lock-check clock starts now."""
        self.last_lock_check = time.monotonic()

    async def step(self, now: float) -> bool:
        """One recovery-loop tick of the election; True when this node has just
        become leader (the caller then skips this tick's IP check, as before).

        A leader announces itself and, every LOCK_CHECK_GAP, confirms the lock.
        """
        st = self.state
        if st.is_leader():
            await self.mesh.broadcast(self.leader_msg())
            if now - self.last_lock_check >= LOCK_CHECK_GAP:
                self.last_lock_check = now
                if not self.lock.still_ours():
                    log.error("cluster lock lost; giving up leadership")
                    self.lock.drop()
                    st.leader = None
            return False
        silent = now - st.leader_seen > LEADER_SILENCE
        if (st.leader is None or silent) and now >= self.resigned_until \
                and self.lock.try_lock():
            st.leader = st.pnn
            st.generation = random.randint(1, 2**31 - 1)
            log.log(NOTICE, "Took the cluster lock: this node (%d) is the leader", st.pnn)
            await self.mesh.broadcast(self.leader_msg())
            st.takeover_needed.set()
            return True
        return False

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
