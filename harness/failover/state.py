"""What one failoverd node knows, shared by the daemon's parts.

ctdbd keeps one `struct ctdb_context` that every part of the daemon reads
and updates (node map, flags, recovery master, IP assignment); `NodeState`
is that for failoverd. Membership, leadership, the monitor, the IP owner and
the takeover run each own their own machinery but read and write this one
record, so no part needs a reference to another just to learn a fact.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from harness.ctdb import ConfigError, NodeConfig, NodeFlags, PublicAddress, Tunables
from harness.failover.log import log
from harness.failover.wire import Sender

IPv4 = ipaddress.IPv4Address


@dataclass
class Peer:
    """What this node knows about another node."""

    pnn: int
    address: str
    connected: bool = False
    flags: NodeFlags = NodeFlags.NONE
    partial: bool = False
    writer: asyncio.StreamWriter | None = None
    sender: Sender | None = None  # numbers and signs frames on our connection to it
    rx: int = 0
    missed: int = 0
    last_rx: float = 0.0  # monotonic time anything last arrived from this peer
    tasks: list[asyncio.Task] = field(default_factory=list)


@dataclass
class NodeState:
    """This node's view of the cluster; every node starts UNHEALTHY, as in CTDB.

    failoverd's kernel side is IPv4 only (it lists AF_INET addresses and
    announces a move with ARP), so an IPv6 public address is refused here, at
    startup, with a ConfigError: it could be assigned but never seen held.
    """

    cfg: NodeConfig
    flags: NodeFlags = NodeFlags.UNHEALTHY
    partial: bool = False
    running: bool = False  # runstate RUNNING
    leader: int | None = None
    leader_seen: float = 0.0  # monotonic time the leader's broadcast last arrived
    generation: int = 1
    iface_link: dict[str, bool] = field(default_factory=dict)  # as the monitor last saw
    takeover_needed: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    crashes: Counter[str] = field(default_factory=Counter)  # task name -> restarts
    peers: dict[int, Peer] = field(init=False)
    publics: dict[IPv4, PublicAddress] = field(init=False)  # by IP, in file order
    assignment: dict[IPv4, int] = field(init=False)  # public IP -> pnn, -1 unassigned
    monitored: list[str] = field(init=False)  # public interfaces, first-seen order

    def __post_init__(self) -> None:
        self.peers = {p: Peer(p, str(a)) for p, a in enumerate(self.cfg.nodes)
                      if p != self.cfg.pnn}
        self.publics = {}
        for pa in self.cfg.public_addresses:
            if not isinstance(pa.address.ip, IPv4):
                raise ConfigError(str(self.cfg.directory / "public_addresses"), None,
                                  f"{pa.address} is IPv6, and failoverd handles IPv4 only",
                                  "use Samba's ctdbd for IPv6 public addresses")
            self.publics[pa.address.ip] = pa
        self.assignment = {ip: -1 for ip in self.publics}
        self.monitored = []
        for pa in self.cfg.public_addresses:
            for i in pa.ifaces:
                if i not in self.monitored:
                    self.monitored.append(i)

    @property
    def pnn(self) -> int:
        return self.cfg.pnn

    @property
    def tun(self) -> Tunables:
        return self.cfg.tunables

    def public(self, ip: IPv4) -> PublicAddress:
        return self.publics[ip]

    def node_flags(self, pnn: int) -> NodeFlags:
        if pnn == self.pnn:
            return self.flags
        peer = self.peers[pnn]
        return peer.flags | (NodeFlags.NONE if peer.connected else NodeFlags.DISCONNECTED)

    def node_partial(self, pnn: int) -> bool:
        return self.partial if pnn == self.pnn else self.peers[pnn].partial

    def connected_pnns(self) -> list[int]:
        return sorted([self.pnn] + [p.pnn for p in self.peers.values() if p.connected])

    def hears(self) -> list[int]:
        """This node and the peers it heard from within 1.5 keepalive intervals:
        alive now, as far as this node can tell (every node sends each peer a
        keepalive every interval). A hung or cut-off peer drops out of this
        list as soon as it misses two, long before it is declared gone."""
        now = time.monotonic()
        within = 1.5 * float(self.tun["KeepaliveInterval"])
        return sorted([self.pnn] + [p.pnn for p in self.peers.values()
                                    if p.connected and now - p.last_rx <= within])

    def is_leader(self) -> bool:
        return self.leader == self.pnn

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        """Run coro as a daemon task: cancelled at shutdown, its crash logged."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.append(task)
        task.add_done_callback(_task_done)
        return task


def _task_done(task: asyncio.Task) -> None:
    if not task.cancelled() and (e := task.exception()) is not None:
        log.error("internal error in %s: %r", task.get_name(), e, exc_info=e)
