"""Banning: culprit credits on the leader and a node's own ban, as ctdbd 4.17
does it (ctdb_recoverd.c ctdb_set_culprit_count / ban_misbehaving_nodes,
ctdb_takeover_helper.c takeover_failed, ctdb_banning.c).

Why a node is banned: a node whose takeip or releaseip keeps failing makes
every takeover run fail, so no IP moves anywhere while it is in the
cluster. CTDB's answer is to take it out for RecoveryBanPeriod:

- a failed takeover run counts one credit per failed step per node; the node
  with the most (the lowest pnn on a tie) is blamed, and the leader adds the
  number of nodes to its culprit count (credits older than
  RecoveryGracePeriod are forgiven first);
- at the start of each recovery-loop pass (every RecoverInterval) the leader
  bans each node whose count reached twice the number of nodes, and sets
  that count to 0. With a takeip that always
  fails, that is the second failed run in a row;
- a banned node sets BANNED (INACTIVE), releases all its public IPs, runs no
  monitor, cannot lead, and clears BANNED itself when the period ends (or
  on `unban`); the leader's next takeover run places its IPs elsewhere and,
  after the ban, gives it IPs again.

Nothing here runs takeover runs; harness.failover.takeover tells `blame_run`
which nodes failed a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from harness.ctdb import NodeFlags
from harness.failover import schema
from harness.failover.ipowner import IpOwner
from harness.failover.leader import Leadership
from harness.failover.log import NOTICE, log
from harness.failover.membership import Membership, Message
from harness.failover.state import NodeState

SetFlag = Callable[[NodeFlags, bool], Awaitable[None]]
"""Sets or clears one of this node's flags and tells the cluster (the monitor's)."""

schema.register("ban", {"id": schema.REQUEST_ID, "pnn": schema.pnn,
                        "seconds": schema.integer(0, schema.UINT32_MAX)})


@dataclass
class Culprit:
    """One node's banning credits on the leader (ctdb_banning_state)."""

    count: int = 0
    last: float = 0.0  # monotonic time of the last blame


class Banning:
    """The leader's culprit counts, and this node's own ban."""

    def __init__(self, state: NodeState, mesh: Membership, leadership: Leadership,
                 ips: IpOwner, set_flag: SetFlag) -> None:
        self.state = state
        self.mesh = mesh
        self.leadership = leadership
        self.ips = ips
        self.set_flag = set_flag
        self.culprits: dict[int, Culprit] = {}
        self.expiry: asyncio.TimerHandle | None = None
        self.banned_until = 0.0  # monotonic; meaningful while BANNED

    # -- the leader's side -----------------------------------------------------------
    def blame(self, pnn: int, count: int) -> None:
        """ctdb_set_culprit_count: add count credits to pnn."""
        st = self.state
        if st.flags & NodeFlags.INACTIVE:
            log.warning("This node is INACTIVE, cannot set culprit node %d", pnn)
            return
        now = time.monotonic()
        c = self.culprits.setdefault(pnn, Culprit())
        if c.count and now - c.last > st.tun["RecoveryGracePeriod"]:
            c.count = 0  # old transgressions are forgiven
        c.count += count
        c.last = now

    def blame_run(self, credits: Mapping[int, int]) -> None:
        """takeover_failed: a run failed with these credits per node; blame the
        node with the most (lowest pnn on a tie) by the number of nodes."""
        if not self.state.tun["EnableBans"]:
            return
        worst = max(sorted(credits), key=lambda p: credits[p], default=None)
        if worst is None or credits[worst] <= 0:
            return
        log.warning("Assigning banning credits to node %d", worst)
        self.blame(worst, len(self.state.cfg.nodes))

    def reset(self) -> None:
        """Forgive everyone (ctdbd does after a full recovery)."""
        if self.culprits:
            log.log(NOTICE, "Resetting ban count to 0 for all nodes")
        self.culprits.clear()

    async def ban_misbehaving(self) -> None:
        """ban_misbehaving_nodes: ban every node at 2 x nodes credits or more."""
        limit = 2 * len(self.state.cfg.nodes)
        banned = False
        for pnn, c in list(self.culprits.items()):
            if c.count < limit:
                continue
            log.log(NOTICE, "Node %d reached %d banning credits", pnn, c.count)
            c.count = 0
            await self.ban_node(pnn)
            banned = True
        if banned:
            self.reset()  # ctdbd forgives after the recovery the ban causes

    async def ban_node(self, pnn: int) -> None:
        """ctdb_ban_node: ban pnn for RecoveryBanPeriod (a request to that node)."""
        seconds = int(self.state.tun["RecoveryBanPeriod"])
        log.log(NOTICE, "Banning node %d for %d seconds", pnn, seconds)
        if pnn == self.state.pnn:
            await self.set_ban(seconds)
            return
        reply = await self.mesh.request(pnn, {"type": "ban", "pnn": pnn, "seconds": seconds},
                                        float(self.state.tun["TakeoverTimeout"]))
        if reply is None or not reply["ok"]:
            log.error("Failed to ban node %d", pnn)

    # -- this node's ban (ctdb_control_set_ban_state) ------------------------------------
    @property
    def banned(self) -> bool:
        return bool(self.state.flags & NodeFlags.BANNED)

    async def set_ban(self, seconds: int) -> bool:
        """Ban this node for seconds (0: unban). False when bans are disabled."""
        st = self.state
        if seconds == 0:
            await self.unban()
            return True
        if not st.tun["EnableBans"]:
            log.error("Bans are disabled - ignoring ban of node %d", st.pnn)
            return False
        already = self.banned
        self._cancel_expiry()
        self.banned_until = time.monotonic() + seconds
        self.expiry = asyncio.get_running_loop().call_later(
            seconds, lambda: st.spawn(self._expired(), "ban-expiry"))
        log.error("Banning this node for %d seconds", seconds)
        await self.set_flag(NodeFlags.BANNED, True)
        if not already:
            await self._got_banned()
        return True

    async def _got_banned(self) -> None:
        """ctdb_local_node_got_banned: no IPs, and no leadership while banned."""
        log.log(NOTICE, "This node has been banned - releasing all public IPs")
        if self.state.is_leader():
            self.leadership.resign("this node is banned")
        # resign() keeps it away from the lock for a while; a ban for longer
        self.leadership.resigned_until = max(self.leadership.resigned_until,
                                             self.banned_until)
        await self.ips.release_all()

    async def unban(self) -> None:
        self._cancel_expiry()
        if self.banned:
            log.error("Unbanning this node")
            await self.set_flag(NodeFlags.BANNED, False)

    async def _expired(self) -> None:
        self.expiry = None
        if self.banned:
            log.error("Banning timedout")
            await self.set_flag(NodeFlags.BANNED, False)

    def _cancel_expiry(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._cancel_expiry()

    async def on_ban(self, src: int, msg: Message) -> Message | None:
        """`ban`: the leader bans this node (or lifts a ban with seconds 0)."""
        st = self.state
        ok = False
        if msg["pnn"] == st.pnn and src == st.leader:
            ok = await self.set_ban(msg["seconds"])
        return {"type": "done", "id": msg["id"], "ok": ok}
