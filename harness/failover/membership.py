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
import time
from typing import Any, Protocol

from harness.failover import wire
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

    def __init__(self, state: NodeState, key: bytes | None, events: MeshEvents) -> None:
        self.state = state
        self.key = key
        self.events = events
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Message]] = {}
        self.conn_tasks: set[asyncio.Task] = set()  # incoming connections, for shutdown

    # -- messaging ---------------------------------------------------------------
    async def send(self, pnn: int, msg: Message) -> bool:
        st = self.state
        if pnn == st.pnn:
            await self.events.deliver(st.pnn, msg)
            return True
        peer = st.peers[pnn]
        if not peer.connected or peer.writer is None:
            return False
        try:
            peer.writer.write(wire.encode(msg, self.key))
            await peer.writer.drain()
            return True
        except (OSError, ConnectionError):
            self.mark_disconnected(peer, "send failed")
            return False

    async def broadcast(self, msg: Message, include_self: bool = False) -> None:
        targets = [p for p in self.state.connected_pnns() if include_self or p != self.state.pnn]
        await asyncio.gather(*(self.send(p, msg) for p in targets))

    async def request(self, pnn: int, msg: Message, timeout: float) -> Message | None:
        """Send a message with a fresh id and wait for the reply with that id."""
        rid = next(self.ids)
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        try:
            if not await self.send(pnn, {**msg, "id": rid}):
                return None
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            log.error("no reply from node %d to %s within %.1f s", pnn, msg["type"], timeout)
            return None
        finally:
            self.pending.pop(rid, None)

    async def on_reply(self, src: int, msg: Message) -> Message | None:
        """`ips` / `done`: wake whoever is waiting in request() for this id."""
        fut = self.pending.get(msg["id"])
        if fut is not None and not fut.done():
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

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        task = asyncio.current_task()
        if task is not None:
            self.conn_tasks.add(task)
        try:
            hello = await asyncio.wait_for(wire.read_message(reader, self.key), 5)
            if hello["type"] != "hello" or hello["pnn"] not in self.state.peers:
                raise wire.BadMessage(f"expected hello from a known node, got {hello}")
            src = hello["pnn"]
            self.state.peers[src].last_rx = time.monotonic()
            await self.read_loop(src, reader)
        except wire.BadMessage as e:
            log.warning("dropping connection from %s: bad message: %s", peername, e)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, OSError,
                asyncio.CancelledError):
            pass
        finally:
            writer.close()
            if task is not None:
                self.conn_tasks.discard(task)

    async def read_loop(self, src: int, reader: asyncio.StreamReader) -> None:
        peer = self.state.peers[src]
        while True:
            msg = await wire.read_message(reader, self.key)
            peer.rx += 1
            peer.last_rx = time.monotonic()
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
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(peer.address, PORT), 2)
                    writer.write(wire.encode({"type": "hello", "pnn": st.pnn}, self.key))
                    await writer.drain()
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.5)
                    continue
                if not await self.heard_since(peer, t_connect):
                    writer.close()
                    continue
                peer.writer, peer.connected, peer.missed = writer, True, 0
                log.log(NOTICE, "connected to node %d", peer.pnn)
                st.spawn(self.watch_eof(peer, reader), f"eof-{peer.pnn}")
                await self.events.connected(peer.pnn)
            await asyncio.sleep(0.2)

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

    def mark_disconnected(self, peer: Peer, why: str) -> None:
        if not peer.connected:
            return
        peer.connected = False
        if peer.writer is not None:
            peer.writer.close()
            peer.writer = None
        log.log(NOTICE, "node %d is now DISCONNECTED (%s)", peer.pnn, why)
        self.events.disconnected(peer.pnn)

    async def keepalive_loop(self) -> None:
        tun = self.state.tun
        while True:
            await asyncio.sleep(tun["KeepaliveInterval"])
            for peer in list(self.state.peers.values()):
                if not peer.connected:
                    continue
                if peer.rx == 0:
                    peer.missed += 1
                    if peer.missed >= tun["KeepaliveLimit"]:
                        self.mark_disconnected(
                            peer, f"no keepalive for {peer.missed} x "
                                  f"{tun['KeepaliveInterval']} s")
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
