"""Tickle lists: the clients' TCP connections to each public IP, as ctdbd
keeps them (ctdb_takeover.c's tcp_array per vnn), so that whichever node
takes an IP over can make those clients reset at once.

- smbd (here its stand-in) registers each accepted connection with its node
  (`addtickle CLIENT:PORT SERVER:PORT`) and unregisters it on close
  (`deltickle`); the node tells every peer of each change (`tickle`: one
  connection added or removed, so changes made on two nodes at once do not
  undo each other), and a node holding an IP sends its whole list
  (`tickles`) to a peer that (re)connects, so every node knows every list.
- takeip: with each gratuitous ARP round (CTDB_ARP_REPEAT 3 rounds,
  CTDB_ARP_INTERVAL apart) a tickle ACK goes to every known client of the
  IP; afterwards those entries are dropped (their clients have been reset,
  their new connections register afresh).
- releaseip: while the IP is still local, killtcp resets both ends of each
  of its connections (tcppackets.killtcp), bounded by KILLTCP_TIMEOUT, and
  skipped when the IP's interface has no link (nobody could answer).

With tickles disabled (failoverd --no-tickles) the lists are still kept
(gettickles shows them) but nothing is sent: the clients find out by TCP
retransmission backoff, as with a CTDB whose smbd never registered them.
"""

from __future__ import annotations

import asyncio
import time

from harness.failover import schema
from harness.failover.log import NOTICE, log
from harness.failover.membership import Membership, Message
from harness.failover.state import IPv4, NodeState
from harness.failover.tcppackets import Connection, RawSender, killtcp

KILLTCP_TIMEOUT = 0.5


def _connection(v: object, ctx: schema.Context) -> str | None:
    if not isinstance(v, str) or len(v) > 64:
        return "not a connection string"
    try:
        Connection.parse(v)
    except ValueError as e:
        return str(e)
    return None


schema.register("tickles", {"ip": schema.public_ip,
                            "conns": schema.list_of(_connection, max_len=4096)})
schema.register("tickle", {"ip": schema.public_ip, "conn": _connection, "add": schema.boolean})


class Tickles:
    """Every public IP's tickle list, kept in sync across the mesh."""

    def __init__(self, state: NodeState, mesh: Membership, enabled: bool = True) -> None:
        self.state = state
        self.mesh = mesh
        self.enabled = enabled
        self.lists: dict[IPv4, set[Connection]] = {ip: set() for ip in state.publics}
        self.sent = 0  # tickle ACKs sent (counters)
        self.killed = 0  # connections reset by killtcp

    def of(self, ip: IPv4) -> list[Connection]:
        return sorted(self.lists.get(ip, ()))

    def _ip(self, conn: Connection) -> IPv4:
        ip = IPv4(str(conn.dst.ip))
        if ip not in self.lists:
            raise ValueError(f"{conn.dst.ip} is not a public IP of this node")
        return ip

    def msg(self, ip: IPv4) -> Message:
        return {"type": "tickles", "ip": str(ip), "conns": [str(c) for c in self.of(ip)]}

    async def add(self, conn: Connection) -> None:
        ip = self._ip(conn)
        if conn not in self.lists[ip]:
            self.lists[ip].add(conn)
            await self.mesh.broadcast({"type": "tickle", "ip": str(ip), "conn": str(conn),
                                       "add": True})

    async def remove(self, conn: Connection) -> None:
        ip = self._ip(conn)
        if conn in self.lists[ip]:
            self.lists[ip].discard(conn)
            await self.mesh.broadcast({"type": "tickle", "ip": str(ip), "conn": str(conn),
                                       "add": False})

    async def on_tickle(self, src: int, msg: Message) -> Message | None:
        """A peer's smbd registered or unregistered one connection."""
        conns = self.lists[IPv4(msg["ip"])]
        conn = Connection.parse(msg["conn"])
        if msg["add"]:
            conns.add(conn)
        else:
            conns.discard(conn)
        return None

    async def on_tickles(self, src: int, msg: Message) -> Message | None:
        """The holder's whole list for one IP (we (re)connected): it is merged
        in, as what we know may be newer than the holder's word."""
        self.lists[IPv4(msg["ip"])] |= {Connection.parse(c) for c in msg["conns"]}
        return None

    async def greet(self, pnn: int) -> None:
        """A peer (re)connected: it gets our lists of the IPs we hold."""
        for ip, holder in self.state.assignment.items():
            if holder == self.state.pnn and self.lists.get(ip):
                await self.mesh.send(pnn, self.msg(ip))

    # -- takeover and release ---------------------------------------------------------
    def tickle(self, ip: IPv4, conns: list[Connection]) -> None:
        """One round of tickle ACKs to the given clients of ip (blocking, microseconds)."""
        if not self.enabled or not conns:
            return
        raw = RawSender()
        try:
            for c in conns:
                raw.tickle(c)
                self.sent += 1
        finally:
            raw.close()
        log.log(NOTICE, "Sent %d tickle ACKs for IP %s", len(conns), ip)

    async def taken_over(self, ip: IPv4, conns: list[Connection]) -> None:
        """After the last round: the tickled entries are gone for good."""
        for c in conns:
            await self.remove(c)

    async def releasing(self, ip: IPv4, link_up: bool = True) -> None:
        """killtcp on the IP's connections, while the IP is still ours. Not over
        a link the monitor found down: no client could answer the tickle, and
        waiting for them would only hold the takeover up (ctdbd waits there)."""
        conns = self.of(ip)
        if not self.enabled or not conns:
            return
        if not link_up:
            log.log(NOTICE, "killtcp %s: skipped, its interface has no link", ip)
            return
        t0 = time.monotonic()
        missed = await asyncio.get_running_loop().run_in_executor(
            None, killtcp, conns, KILLTCP_TIMEOUT)
        self.killed += len(conns) - len(missed)
        log.log(NOTICE, "killtcp %s: reset %d of %d connections in %.3f s", ip,
                len(conns) - len(missed), len(conns), time.monotonic() - t0)
