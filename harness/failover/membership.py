"""Membership: the TCP mesh on the private network, as ctdbd's transport and
keepalive code (ctdb_tcp, ctdb_keepalive.c) keep it.

Every node listens on PORT and keeps one outgoing connection to each peer;
it reads peers' messages on the connections they opened to it, and writes
only on its own outgoing ones. A peer is CONNECTED while our connection to
it is up and it has spoken since we connected; an EOF on that connection
marks it DISCONNECTED at once, and so does KeepaliveLimit keepalive
intervals of silence (KeepaliveInterval x KeepaliveLimit).

What a message means is not this module's business: each one read, and each
one a node sends to itself, goes to `MeshEvents.deliver`, which the daemon
routes to the part that owns the message type. Only the replies to our own
requests (`ips`, `done`) and keepalives end here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import time
from collections import Counter
from typing import Any, Protocol

from harness.ctdb.flags import NodeFlags
from harness.failover import schema, wire
from harness.failover.log import NOTICE, log
from harness.failover.state import NodeState, Peer

PORT = 4380

Message = dict[str, Any]


class MeshEvents(Protocol):
    """What the mesh tells the rest of the daemon."""

    async def deliver(self, src: int, msg: Message) -> None:
        """A message from node src (possibly this node) to act on."""

    async def connected(self, pnn: int) -> None:
        """Peer pnn has just become CONNECTED: greet it."""

    def disconnected(self, pnn: int) -> None:
        """Peer pnn has just become DISCONNECTED."""


class Membership:
    """The mesh's connections, keepalives and request/reply matching."""

    def __init__(self, state: NodeState, key: bytes, events: MeshEvents) -> None:
        self.state = state
        self.key = key  # b"": unauthenticated (failoverd --no-auth)
        self.events = events
        self.ctx = schema.Context(frozenset(state.cfg.live_pnns),
                                  frozenset(str(ip) for ip in state.publics))
        self.rejected: Counter[str] = Counter()  # "<peer> <field>" -> messages dropped
        self.ids = itertools.count(1)
        self.pending: dict[int, tuple[int, asyncio.Future[Message]]] = {}  # id -> asked
        self.conn_tasks: set[asyncio.Task] = set()  # incoming connections, for shutdown
        self.incoming: dict[int, set[asyncio.Task]] = {}  # pnn -> its incoming connections
        self.last_tick = time.monotonic()  # the keepalive loop's last wake-up
        self.frozen_until, self.frozen_for = 0.0, 0.0  # set after this process stood still
        # a refused connection is retried after this long: 0.5 s, but 50 ms in event
        # mode, where a cluster starting together is to converge within a second
        self.connect_retry = 0.5

    # -- messaging ---------------------------------------------------------------
    async def send(self, pnn: int, msg: Message) -> bool:
        st = self.state
        if pnn == st.pnn:
            await self.events.deliver(st.pnn, msg)
            return True
        peer = st.peers[pnn]
        if not peer.connected or peer.writer is None or peer.sender is None:
            return False
        try:
            peer.writer.write(peer.sender.encode(msg))
            await peer.writer.drain()
            return True
        except (OSError, ConnectionError):
            self.mark_disconnected(peer, "send failed")
            return False

    async def send_when_connected(self, pnn: int, msg: Message) -> None:
        """send(), once pnn is connected again - for at most the keepalive bound."""
        tun = self.state.tun
        deadline = time.monotonic() + tun["KeepaliveInterval"] * tun["KeepaliveLimit"]
        while time.monotonic() < deadline and not self.state.stopping.is_set():
            if self.state.peers[pnn].connected and await self.send(pnn, msg):
                return
            await asyncio.sleep(0.05)
        log.warning("reply %s to node %d dropped: not connected", msg.get("type"), pnn)

    async def broadcast(self, msg: Message, include_self: bool = False) -> None:
        targets = [p for p in self.state.connected_pnns() if include_self or p != self.state.pnn]
        await asyncio.gather(*(self.send(p, msg) for p in targets))

    async def request(self, pnn: int, msg: Message, timeout: float) -> Message | None:
        """Send a message with a fresh id and wait for the reply with that id."""
        rid = next(self.ids)
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.pending[rid] = (pnn, fut)
        try:
            if not await self.send(pnn, {**msg, "id": rid}):
                return None
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            log.error("no reply from node %d to %s within %.1f s", pnn, msg["type"], timeout)
            return None
        except ConnectionResetError as e:
            log.error("no reply from node %d to %s: %s", pnn, msg["type"], e)
            return None
        finally:
            self.pending.pop(rid, None)

    async def on_reply(self, src: int, msg: Message) -> Message | None:
        """`ips` / `done`: wake whoever is waiting in request() for this id -
        if it comes from the node that was asked."""
        asked, fut = self.pending.get(msg["id"], (None, None))
        if fut is not None and asked == src and not fut.done():
            fut.set_result(msg)
        return None

    async def on_keepalive(self, src: int, msg: Message) -> Message | None:
        """Its arrival already counted in read_loop; nothing more to do."""
        return None

    # -- the TCP mesh --------------------------------------------------------------
    async def serve_peers(self) -> None:
        st = self.state
        server = await asyncio.start_server(
            self.accept, host=str(st.cfg.nodes[st.pnn]), port=PORT, reuse_address=True)
        async with server:
            await st.stopping.wait()

    def reject(self, who: str, field: str, why: object) -> None:
        """One log line and one count per refused message or connection."""
        self.rejected[f"{who} {field}"] += 1
        log.warning("dropped from %s: %s", who, why)

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        who = str(peername[0]) if isinstance(peername, tuple) else str(peername)
        task = asyncio.current_task()
        if task is not None:
            self.conn_tasks.add(task)
        try:
            challenge = wire.new_challenge()
            writer.write(challenge)
            await writer.drain()
            rx = wire.Receiver(self.key, challenge)
            hello = wire.decode(await asyncio.wait_for(rx.read_body(reader), 5), self.ctx)
            if hello["type"] != "hello" or hello["pnn"] not in self.state.peers:
                raise schema.BadMessage("type", f"expected hello from another node, "
                                                f"got {hello['type']}")
            src = hello["pnn"]
            if who != self.state.peers[src].address:
                raise schema.BadMessage("pnn", f"claims node {src}, whose address is "
                                               f"{self.state.peers[src].address}")
            self.state.peers[src].last_rx = time.monotonic()
            if task is not None:  # ended when src is declared DISCONNECTED
                self.incoming.setdefault(src, set()).add(task)
            await self.read_loop(src, who, rx, reader)
        except wire.BadFrame as e:
            self.reject(who, "frame", f"connection dropped: {e}")
        except schema.BadMessage as e:
            self.reject(who, e.field, f"connection dropped: bad hello: {e}")
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, OSError,
                asyncio.CancelledError):
            pass
        finally:
            writer.close()
            if task is not None:
                self.conn_tasks.discard(task)
                for tasks in self.incoming.values():
                    tasks.discard(task)

    def drop_incoming(self, pnn: int) -> None:
        """End every incoming connection from pnn (but the caller's own)."""
        me = asyncio.current_task()
        for t in list(self.incoming.pop(pnn, ())):
            if t is not me:
                t.cancel()

    async def read_loop(self, src: int, who: str, rx: wire.Receiver,
                        reader: asyncio.StreamReader) -> None:
        """Deliver each valid message; drop (log, count) each invalid one.

        A bad frame raises out of here and ends the connection; a frame that
        authenticates but holds a bad message costs only that message.
        """
        peer = self.state.peers[src]
        name = f"node {src} ({who})"
        while True:
            body = await rx.read_body(reader)
            peer.rx += 1
            peer.last_rx = time.monotonic()
            try:
                msg = wire.decode(body, self.ctx)
            except schema.BadMessage as e:
                self.reject(name, e.field, e)
                continue
            await self.events.deliver(src, msg)

    async def connect_loop(self, peer: Peer) -> None:
        """Keep an outgoing connection to peer; it is CONNECTED while that is up
        and the peer has spoken since we connected.

        The second condition matters for a hung (SIGSTOPped) peer: its kernel
        still completes our TCP handshake, which alone would flip it back to
        connected a moment after the keepalive timeout declared it gone.
        """
        st = self.state
        while not st.stopping.is_set():
            if not peer.connected:
                t_connect = time.monotonic()
                link = await self.open_link(peer)
                if link is None:
                    await asyncio.sleep(self.connect_retry)
                    continue
                reader, writer, sender = link
                if not await self.heard_since(peer, t_connect):
                    writer.close()
                    continue
                peer.writer, peer.sender, peer.connected, peer.missed = writer, sender, True, 0
                log.log(NOTICE, "connected to node %d", peer.pnn)
                st.spawn(self.watch_eof(peer, reader), f"eof-{peer.pnn}")
                await self.events.connected(peer.pnn)
            await asyncio.sleep(0.2)

    async def open_link(self, peer: Peer) -> tuple[
            asyncio.StreamReader, asyncio.StreamWriter, wire.Sender] | None:
        """Connect to peer, take its challenge and say hello; None if that fails."""
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(peer.address, PORT), 2)
            challenge = await asyncio.wait_for(reader.readexactly(wire.CHALLENGE_LEN), 2)
            sender = wire.Sender(self.key, challenge)
            writer.write(sender.encode({"type": "hello", "pnn": self.state.pnn}))
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            if writer is not None:
                writer.close()
            return None
        return reader, writer, sender

    async def heard_since(self, peer: Peer, t: float) -> bool:
        """Wait (up to the keepalive bound) for anything from peer after time t."""
        tun = self.state.tun
        deadline = t + tun["KeepaliveInterval"] * tun["KeepaliveLimit"]
        while peer.last_rx <= t and time.monotonic() < deadline:
            if self.state.stopping.is_set():
                return False
            await asyncio.sleep(0.05)
        return peer.last_rx > t

    async def watch_eof(self, peer: Peer, reader: asyncio.StreamReader) -> None:
        """The peer never writes on our outgoing connection: any EOF means it died."""
        with contextlib.suppress(OSError, ConnectionError):
            await reader.read()
        if peer.connected and not self.state.stopping.is_set():
            self.mark_disconnected(peer, "connection closed")

    def mark_disconnected(self, peer: Peer, why: str, silent: bool = False) -> None:
        """Peer pnn is gone: for `silent` (no keepalive for the whole bound,
        a partition as seen from here) also from its connections to us."""
        if not peer.connected:
            return
        peer.connected = False
        # as ctdbd's ctdb_node_dead (flags |= DISCONNECTED | UNHEALTHY): a lost
        # node shows DISCONNECTED|UNHEALTHY|INACTIVE until, reconnected, it
        # sends its own flags again (Daemon.connected)
        peer.flags |= NodeFlags.UNHEALTHY
        if peer.writer is not None:
            # abort with a zero linger, not close: a close lets the kernel
            # retransmit what is still queued, and once a partition heals the
            # peer would read those frames (a flags change from before it) as
            # news. abort() alone only drops what asyncio had not yet handed
            # to the kernel; SO_LINGER 0 makes the close a reset that drops
            # the kernel's send queue too.
            sock = peer.writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            peer.writer.transport.abort()
            peer.writer = None
            peer.sender = None
        # and, if it fell silent, what it sent us on its connections before
        # it was declared gone is stale too: seen late (TCP retransmits after
        # a partition), an old `flags` message marked a healthy node UNHEALTHY
        # again. Not when it closed our connection itself: it is reachable
        # and resets its own connections to us when it declares us gone, so
        # the one it has up now is new - dropping it made two healed nodes
        # drop each other's fresh connections in turn, for good.
        if silent:
            self.drop_incoming(peer.pnn)
        log.log(NOTICE, "node %d is now DISCONNECTED (%s)", peer.pnn, why)
        # its unanswered requests end now, not at their timeout: a takeover run
        # waiting TakeoverTimeout (9 s) for a node that is gone holds up the
        # takeover of that very node's IPs
        for asked, fut in self.pending.values():
            if asked == peer.pnn and not fut.done():
                fut.set_exception(ConnectionResetError(f"node {peer.pnn} disconnected"))
        self.events.disconnected(peer.pnn)

    def stalled(self) -> float | None:
        """Seconds this process stood still (SIGSTOP, a frozen VM) if that was
        recent - its view of the cluster is older than the keepalive bound -
        else None. Seen from the keepalive loop's wake-ups, late or missing."""
        tun = self.state.tun
        now = time.monotonic()
        if now - self.last_tick > 2 * tun["KeepaliveInterval"] + 1:
            return now - self.last_tick
        return self.frozen_for if now < self.frozen_until else None

    async def keepalive_loop(self) -> None:
        tun = self.state.tun
        while True:
            await asyncio.sleep(tun["KeepaliveInterval"])
            now = time.monotonic()
            if now - self.last_tick > 2 * tun["KeepaliveInterval"] + 1:
                self.frozen_for = now - self.last_tick
                self.frozen_until = now + tun["KeepaliveInterval"] * tun["KeepaliveLimit"]
            self.last_tick = now
            for peer in list(self.state.peers.values()):
                if not peer.connected:
                    continue
                if peer.rx == 0:
                    peer.missed += 1
                    if peer.missed >= tun["KeepaliveLimit"]:
                        self.mark_disconnected(
                            peer, f"no keepalive for {peer.missed} x "
                                  f"{tun['KeepaliveInterval']} s", silent=True)
                        continue
                else:
                    peer.missed = 0
                peer.rx = 0
                await self.send(peer.pnn, {"type": "keepalive"})

    def close(self) -> None:
        """At shutdown: close every outgoing connection still open."""
        for peer in self.state.peers.values():
            if peer.writer is not None:
                peer.writer.close()
