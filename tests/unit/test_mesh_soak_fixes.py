"""Regression tests for the native daemon's chaos-soak fixes (issue 14, item 5).

Each test reproduces what the soak found, at the mesh's own level and over
real loopback TCP, and fails on the code before its fix (commit named in
each docstring). Node 0 is failoverd's code - its Membership, its Daemon's
message routing, its leadership and takeover run; node 1 is played by the
test (`FakePeer`): it dials node 0 and accepts node 0's connection as a
daemon does, speaking the authenticated wire protocol, and it can fall
silent (a partition, as node 0 sees it) or leave what node 0 sends unread.

Loopback only: node 0 is 127.0.0.1, node 1 127.0.0.2 (both on lo's 127/8),
on an ephemeral port; nothing in the host's namespace is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from harness.ctdb import NodeConfig, NodeFlags, PublicAddress, Tunables
from harness.failover import membership, wire
from harness.failover.daemon import Daemon
from harness.failover.leader import Leadership
from harness.failover.membership import Membership
from harness.failover.state import IPv4, NodeState
from harness.failover.takeover import Takeover
from harness.wait import wait_until_async

Message = dict[str, Any]

NODE0, NODE1 = "127.0.0.1", "127.0.0.2"
KEY = b"soak-regression-key"  # authenticated, as failoverd runs by default
PUBLIC_IP = "203.0.113.201"
SLACK = 1.0  # scheduling and polling on a loaded 2-core machine
KI, KL = 1, 1  # KeepaliveInterval, KeepaliveLimit: the smallest, to keep the tests short
# a peer that falls silent is DISCONNECTED at the KeepaliveLimit-th tick of the
# keepalive loop that finds nothing from it; the first tick after the silence
# may still count a keepalive sent just before it
SILENCE_BOUND = KI * (KL + 1)


def config(lock: Path | None = None, **tunables: int) -> NodeConfig:
    return NodeConfig(
        directory=Path("/nonexistent/node0"), pnn=0,
        nodes=(ipaddress.ip_address(NODE0), ipaddress.ip_address(NODE1)),
        public_addresses=(PublicAddress(ipaddress.ip_interface(f"{PUBLIC_IP}/24"),
                                        ("eth1",)),),
        tunables=Tunables({"KeepaliveInterval": KI, "KeepaliveLimit": KL, **tunables}),
        cluster_lock=lock)


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> int:
    """A free port, the mesh's PORT for this test (failoverd's 4380 may be in use)."""
    with socket.socket() as s:
        s.bind((NODE0, 0))
        free = int(s.getsockname()[1])
    monkeypatch.setattr(membership, "PORT", free)
    return free


class Seen:
    """MeshEvents that only record: what node 0's mesh delivered, and who left."""

    def __init__(self) -> None:
        self.delivered: list[tuple[int, Message]] = []
        self.gone: list[int] = []

    async def deliver(self, src: int, msg: Message) -> None:
        self.delivered.append((src, msg))

    async def connected(self, pnn: int) -> None:
        pass

    def disconnected(self, pnn: int) -> None:
        self.gone.append(pnn)

    def messages(self, kind: str) -> list[Message]:
        return [m for _, m in self.delivered if m["type"] == kind]


class FakePeer:
    """Node 1, played by the test over real TCP.

    It keeps node 0 believing it is alive with a keepalive every KI seconds
    until `fall_silent`; what node 0 sends it lands in `got`, read only once
    `reading` is set (a peer cut off by a partition reads nothing).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.got: list[Message] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.read_ended = asyncio.Event()  # node 0's connection to us is over
        self.server: asyncio.Server | None = None
        self.writer: asyncio.StreamWriter | None = None  # our connection to node 0
        self.tx: wire.Sender | None = None
        self.eof: asyncio.Task[None] | None = None  # done: node 0 closed our connection
        self.accepted: list[asyncio.StreamWriter] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    async def listen(self) -> None:
        """Accept node 0's connection, as a daemon's serve_peers does."""
        self.server = await asyncio.start_server(self._accept, NODE1, self.port,
                                                 reuse_address=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.append(writer)
        challenge = wire.new_challenge()
        writer.write(challenge)
        await writer.drain()
        rx = wire.Receiver(KEY, challenge)
        try:
            await rx.read_body(reader)  # its hello
            # heard from since it connected: node 0 marks us CONNECTED
            await self.send({"type": "keepalive"})
            await self.reading.wait()
            while True:
                self.got.append(json.loads(await rx.read_body(reader)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.read_ended.set()
            writer.close()

    async def dial(self) -> None:
        """Open our connection to node 0 (from our own address) and say hello;
        a refused connection is retried, as failoverd's connect loop does (node
        0 may not be listening yet)."""
        async for attempt in AsyncRetrying(stop=stop_after_delay(2 + SLACK), wait=wait_fixed(0.02),
                                           retry=retry_if_exception_type(ConnectionRefusedError),
                                           reraise=True):
            with attempt:
                reader, self.writer = await asyncio.open_connection(NODE0, self.port,
                                                                    local_addr=(NODE1, 0))
        self.tx = wire.Sender(KEY, await reader.readexactly(wire.CHALLENGE_LEN))
        self.eof = asyncio.create_task(self._until_closed(reader))
        await self.send({"type": "hello", "pnn": 1})

    @staticmethod
    async def _until_closed(reader: asyncio.StreamReader) -> None:
        """Node 0 writes nothing after its challenge: this ends when it closes."""
        with contextlib.suppress(ConnectionError):
            await reader.read()

    async def send(self, msg: Message) -> None:
        assert self.writer is not None and self.tx is not None
        self.writer.write(self.tx.encode(msg))
        await self.writer.drain()

    async def join(self, mesh: Membership) -> None:
        """Both connections up, keepalives going, and node 0 counting us CONNECTED."""
        await self.listen()
        await self.dial()
        self.tasks.add(asyncio.create_task(self._keepalives()))
        await wait_until_async(lambda: mesh.state.peers[1].connected, 2 + SLACK,
                               "node 0 connected to node 1")

    async def _keepalives(self) -> None:
        while True:
            await self.send({"type": "keepalive"})
            await asyncio.sleep(KI)

    def fall_silent(self) -> None:
        for t in self.tasks:
            t.cancel()

    async def aclose(self) -> None:
        self.fall_silent()
        if self.eof is not None:
            self.eof.cancel()
        if self.writer is not None:
            self.writer.transport.abort()
        # node 0's connections end by being closed, not by cancelling their
        # handlers (Python 3.11's streams log a cancelled one as an error)
        self.reading.set()
        for w in self.accepted:
            w.transport.abort()
        if self.server is not None:
            self.server.close()


@contextlib.asynccontextmanager
async def node0(mesh: Membership, keepalives: bool = True) -> AsyncIterator[None]:
    """Node 0's mesh as failoverd runs it: serving, connecting to node 1, keepalives."""
    st = mesh.state
    st.spawn(mesh.serve_peers(), "serve")
    st.spawn(mesh.connect_loop(st.peers[1]), "connect-1")
    if keepalives:
        st.spawn(mesh.keepalive_loop(), "keepalive")
    try:
        yield
    finally:
        st.stopping.set()
        tasks = [*st.tasks, *mesh.conn_tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        mesh.close()


@contextlib.asynccontextmanager
async def node0_and_1(port: int, st: NodeState | None = None,
                      reading: bool = True) -> AsyncIterator[tuple[Seen, Membership, FakePeer]]:
    """Node 0's mesh (state st) running, node 1 played by a FakePeer (reading
    what node 0 sends unless `reading` is False), closed in that order."""
    seen = Seen()
    mesh = Membership(st or NodeState(config()), KEY, seen)
    peer = FakePeer(port)
    if not reading:
        peer.reading.clear()
    async with node0(mesh):
        try:
            yield seen, mesh, peer
        finally:
            await peer.aclose()


def flags_msg(pnn: int, flags: NodeFlags) -> Message:
    return {"type": "flags", "pnn": pnn, "flags": int(flags), "partial": False}


def test_unanswered_request_ends_when_its_node_is_disconnected_not_at_its_timeout(port):
    """851479a: a takeover run waited TakeoverTimeout (9 s) on a partitioned
    node before moving that node's IPs; its requests end with the node."""
    st = NodeState(config())
    timeout = float(st.tun["TakeoverTimeout"])  # 9 s, CTDB's default
    assert timeout > SILENCE_BOUND + SLACK

    async def go() -> tuple[float, float]:
        async with node0_and_1(port, st) as (seen, mesh, peer):
            await peer.join(mesh)
            peer.fall_silent()  # the partition: nothing from node 1 any more
            t0 = time.monotonic()
            asked = asyncio.create_task(mesh.request(1, {"type": "get_ips"}, timeout))
            t_end, _ = await wait_until_async(
                asked.done, SILENCE_BOUND + SLACK,
                f"get_ips to a silent node over before its timeout ({timeout:.0f} s)")
            assert asked.result() is None
            assert seen.gone == [1]
            # it was asked (node 1 has it), and never answered
            await wait_until_async(lambda: any(m["type"] == "get_ips" for m in peer.got),
                                   SLACK, "node 1 received get_ips")
            return t0, t_end

    t0, t_end = asyncio.run(go())
    assert t_end - t0 <= SILENCE_BOUND + SLACK


def test_late_frames_on_a_disconnected_nodes_old_connection_are_not_acted_on(port):
    """8c07178 (its incoming half): after a partition healed, TCP delivered a
    `flags` message sent before it, and a healthy node was UNHEALTHY for good.
    The connections a node had open to us end when it is declared gone."""
    stale = flags_msg(1, NodeFlags.UNHEALTHY)
    fresh = flags_msg(1, NodeFlags.NONE)

    async def go() -> Seen:
        async with node0_and_1(port) as (seen, mesh, peer):
            await peer.join(mesh)
            peer.fall_silent()
            await wait_until_async(lambda: seen.gone == [1], SILENCE_BOUND + SLACK,
                                   "node 1 DISCONNECTED")
            # the partition heals: what it held back arrives now, on the
            # connection from before (TCP retransmits it)
            with contextlib.suppress(ConnectionError):
                await peer.send(stale)
            old = peer.eof
            assert old is not None
            # node 1 reconnects, as its connect loop does, and says how it is
            await peer.dial()
            await peer.send(fresh)
            await wait_until_async(lambda: fresh in seen.messages("flags"), SLACK,
                                   "node 1's new connection read")
            await wait_until_async(old.done, SLACK,
                                   "node 0 closed node 1's connection from before")
            return seen

    seen = asyncio.run(go())
    assert stale not in seen.messages("flags"), "a frame from before the disconnect was read"


def test_a_node_that_closed_our_connection_keeps_its_new_one_to_us(port):
    """The incoming half of 8c07178 applies to a node that fell silent only.
    A node that closed our connection itself is reachable, and it resets its
    own old connections to us; dropping the one it has up now made two healed
    nodes drop each other's fresh connections in turn, for good
    (scenario_partition once never converged after the heal)."""
    fresh = flags_msg(1, NodeFlags.NONE)

    async def go() -> tuple[Seen, bool]:
        async with node0_and_1(port) as (seen, mesh, peer):
            await peer.join(mesh)
            first = peer.writer  # kept open (a dropped writer is closed when collected)
            await peer.dial()  # node 1's connection to us, made anew
            new = peer.eof
            assert new is not None
            await wait_until_async(lambda: len(mesh.incoming.get(1, ())) == 2, SLACK,
                                   "node 0 reading both of node 1's connections")
            for w in peer.accepted:  # node 1 closes node 0's connection to it
                w.transport.abort()
            await wait_until_async(lambda: seen.gone == [1], SLACK,
                                   "node 1 DISCONNECTED (connection closed)")
            await peer.send(fresh)
            await wait_until_async(lambda: fresh in seen.messages("flags"), SLACK,
                                   "node 1's new connection still read")
            assert first is not None
            return seen, new.done()

    _, closed = asyncio.run(go())
    assert not closed, "node 0 dropped the connection node 1 had just made"


def test_nothing_queued_for_a_node_before_it_was_disconnected_reaches_it_later(port):
    """8c07178 (its outgoing half): our connection to a node declared gone is
    aborted, not closed - a close goes on sending what is queued, and once
    the partition heals the peer reads that old news."""

    async def go() -> tuple[list[Message], Message]:
        st = NodeState(config())
        async with node0_and_1(port, st, reading=False) as (seen, mesh, peer):
            await peer.join(mesh)
            writer = st.peers[1].writer
            assert writer is not None
            # node 0 goes on sending until its own buffers hold what the
            # kernel cannot pass on (the peer's window is closed)
            filler = {"type": "keepalive", "pad": "x" * 1000}
            for _ in range(100_000):
                if writer.transport.get_write_buffer_size() > 0:
                    break
                await mesh.send(1, filler)
            assert writer.transport.get_write_buffer_size() > 0, "node 0's sends never queued"
            stale = flags_msg(0, NodeFlags.UNHEALTHY)
            assert await mesh.send(1, stale)
            peer.fall_silent()
            await wait_until_async(lambda: seen.gone == [1], SILENCE_BOUND + SLACK,
                                   "node 1 DISCONNECTED")
            peer.reading.set()  # the partition heals: node 1 reads what reaches it
            await wait_until_async(peer.read_ended.is_set, 2 * SLACK,
                                   "node 0's old connection to node 1 over")
            return peer.got, stale

    got, stale = asyncio.run(go())
    assert any(m["type"] == "keepalive" for m in got)  # it did read what had gone out
    assert stale not in got, "node 1 read a frame queued before it was declared gone"


def test_reply_asked_before_our_connection_is_up_is_sent_once_it_is(port):
    """060eb0c: a node that has just (re)started asks on its new connection
    before ours to it is up; the reply waits for ours instead of being lost
    (the asker would have waited its whole timeout, 9 s in a takeover run)."""
    kl = 3  # send_when_connected's bound is KI x KL: room for the connect below
    daemon = Daemon(config(KeepaliveLimit=kl), key=KEY)
    st = daemon.state
    asked = {"type": "ipreallocated", "id": 7, "assignment": {PUBLIC_IP: 1}}

    async def go() -> tuple[float, float, float]:
        peer = FakePeer(port)
        async with node0(daemon.mesh, keepalives=False):
            try:
                await peer.dial()  # node 1 is not listening yet: node 0 cannot connect
                await peer.send(asked)
                t_asked, _ = await wait_until_async(
                    lambda: st.assignment == {IPv4(PUBLIC_IP): 1}, SLACK,
                    "node 0 handled ipreallocated")
                assert not st.peers[1].connected  # so its `done` cannot go out yet
                await peer.listen()
                t_conn, _ = await wait_until_async(
                    lambda: st.peers[1].connected, daemon.mesh.connect_retry + SLACK,
                    "node 0 connected to node 1")
                t_reply, _ = await wait_until_async(
                    lambda: any(m == {"type": "done", "id": 7, "ok": True} for m in peer.got),
                    KI * kl, "node 0's reply to ipreallocated")
                return t_asked, t_conn, t_reply
            finally:
                await peer.aclose()

    try:
        t_asked, t_conn, t_reply = asyncio.run(go())
    finally:
        daemon.kernel.close()
    assert t_reply - t_asked <= KI * kl
    assert t_reply - t_conn <= SLACK  # sent once connected (polled every 50 ms)


def test_leader_that_stood_still_steps_down_instead_of_taking_over(tmp_path, caplog):
    """50de89e: a leader SIGSTOPped past the keepalive bound woke to every
    peer gone at once and took every IP while the others still held theirs.
    It now gives up the lock instead of running a takeover on that view."""
    st = NodeState(config(lock=tmp_path / "cluster.lock", TakeoverTimeout=1))
    # the keepalive loop counts a gap longer than this as standing still
    stall = 2 * st.tun["KeepaliveInterval"] + 1 + 0.5

    async def go() -> tuple[bool, bool, list[Message]]:
        seen = Seen()
        mesh = Membership(st, b"", seen)
        leadership = Leadership(st, mesh)
        takeover = Takeover(st, mesh, leadership, ips=None)  # type: ignore[arg-type]
        assert await leadership.step(time.monotonic())  # takes the lock: the leader
        st.takeover_needed.clear()
        tasks = [st.spawn(mesh.keepalive_loop(), "keepalive"),
                 st.spawn(takeover.takeover_loop(), "takeover")]
        try:
            await asyncio.sleep(0)  # the loops are under way
            # SIGSTOP, as the event loop sees it: nothing here runs for a while
            time.sleep(stall)
            # woken, it finds its peers gone (their connections reset meanwhile)
            leadership.peer_lost(1)
            # poll mode: the recovery loop's pass end hands the request to a run
            takeover.serve_pending()
            await wait_until_async(lambda: not st.is_leader(), SLACK, "the leader stepped down")
            return st.is_leader(), leadership.lock.held, seen.messages("get_ips")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            leadership.lock.drop()
            await leadership.lock.release()

    with caplog.at_level(logging.ERROR):
        leader, held, asked = asyncio.run(go())
    assert not leader and not held
    assert asked == [], "a takeover run started on the stale view"
    assert any("stood still" in r.getMessage() for r in caplog.records)
