"""failoverd: CTDB's public-IP failover, natively, one process per node.

What it does, in CTDB's terms:
- monitor: 10.interface's checks plus user event scripts, on CTDB's
  schedule (first run 2 s after startup, gaps doubling to MonitorInterval,
  5 s after a health change); a failure makes the node UNHEALTHY;
- membership: a TCP mesh on the private network with keepalives
  (KeepaliveInterval x KeepaliveLimit); EOF marks a node DISCONNECTED at once;
- leader ("recovery master"): whoever holds the cluster lock (an fcntl lock
  on a file all nodes share) broadcasts every second;
- takeover runs on the leader: collect every node's IPs, allocate (LCP2 by
  default), release on old holders, then take on new ones, then
  `ipreallocated` everywhere; every node checks each RecoverInterval that
  the kernel matches the assignment and asks for a run if not;
- event-driven mode (--event-mode, beyond CTDB): a netlink link event runs
  the monitor at once instead of waiting for the next scheduled run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import ipaddress
import itertools
import logging
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.ctdb.config import ConfigError, NodeConfig, load_node_config
from harness.ctdb.flags import NodeFlags
from harness.failover import wire
from harness.failover.eventscripts import EventStatus, run_event
from harness.failover.ifcheck import IfaceCheck, check_interfaces
from harness.failover.ipalloc import Algorithm, AllocRequest, NodeAlloc, allocate
from harness.failover.netops import KernelOps, LinkWatcher, refuse_host_namespace, send_garp
from harness.failover.schedule import MonitorSchedule, MonitorStatus

PORT = 4380
NOTICE = 25
LEVELS = {"ERROR": logging.ERROR, "WARNING": logging.WARNING, "NOTICE": NOTICE,
          "INFO": logging.INFO, "DEBUG": logging.DEBUG}
LEADER_SILENCE = 5.0
GARP_ROUNDS, GARP_GAP = 3, 1.1

log = logging.getLogger("failoverd")
IPv4 = ipaddress.IPv4Address


class CtdbFormatter(logging.Formatter):
    """`2017/06/22 14:27:17.465327 [261821]: message`, as ctdbd logs."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.localtime(record.created)
        usec = int((record.created % 1) * 1e6)
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", t)
        return f"{stamp}.{usec:06d} [{os.getpid():>6}]: {record.getMessage()}"


@dataclass
class Peer:
    """What this node knows about another node."""

    pnn: int
    address: str
    connected: bool = False
    flags: NodeFlags = NodeFlags.NONE
    partial: bool = False
    writer: asyncio.StreamWriter | None = None
    rx: int = 0
    missed: int = 0
    last_rx: float = 0.0  # monotonic time anything last arrived from this peer
    tasks: list[asyncio.Task] = field(default_factory=list)


class Daemon:
    def __init__(self, cfg: NodeConfig, event_mode: bool = False,
                 key: bytes | None = None) -> None:
        self.cfg = cfg
        self.tun = cfg.tunables
        self.pnn = cfg.pnn
        self.event_mode = event_mode
        self.key = key
        self.kernel = KernelOps()
        self.flags = NodeFlags.UNHEALTHY  # CTDB starts every node UNHEALTHY
        self.partial = False
        self.running = False  # runstate RUNNING
        self.peers = {p: Peer(p, str(a)) for p, a in enumerate(cfg.nodes) if p != self.pnn}
        self.leader: int | None = None
        self.leader_seen = 0.0
        self.generation = 1
        self.lock_fd: int | None = None
        self.assignment: dict[IPv4, int] = {a.address.ip: -1 for a in cfg.public_addresses}
        self.iface_link: dict[str, bool] = {}
        self.links_at_last_request: dict[str, bool] = {}
        self.schedule = MonitorSchedule(self.tun["MonitorInterval"],
                                        self.tun["MonitorTimeoutCount"])
        self.monitor_wake = asyncio.Event()
        self.takeover_needed = asyncio.Event()
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.conn_tasks: set[asyncio.Task] = set()
        self.watcher: LinkWatcher | None = None
        self.monitored = self._monitored_ifaces()
        self.monitor_gap, self.monitor_due = 0.0, 0.0

    # -- small helpers ---------------------------------------------------------
    def _monitored_ifaces(self) -> list[str]:
        seen: list[str] = []
        for pa in self.cfg.public_addresses:
            for i in pa.ifaces:
                if i not in seen:
                    seen.append(i)
        return seen

    def public(self, ip: IPv4) -> Any:
        return next(pa for pa in self.cfg.public_addresses if pa.address.ip == ip)

    def node_flags(self, pnn: int) -> NodeFlags:
        if pnn == self.pnn:
            return self.flags
        peer = self.peers[pnn]
        return peer.flags | (NodeFlags.NONE if peer.connected else NodeFlags.DISCONNECTED)

    def node_partial(self, pnn: int) -> bool:
        return self.partial if pnn == self.pnn else self.peers[pnn].partial

    def connected_pnns(self) -> list[int]:
        return sorted([self.pnn] + [p.pnn for p in self.peers.values() if p.connected])

    def spawn(self, coro: Any, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self.tasks.append(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("internal error in %s: %r", task.get_name(), task.exception())

    # -- messaging ---------------------------------------------------------------
    async def send(self, pnn: int, msg: dict[str, Any]) -> bool:
        if pnn == self.pnn:
            await self.handle(self.pnn, msg)
            return True
        peer = self.peers[pnn]
        if not peer.connected or peer.writer is None:
            return False
        try:
            peer.writer.write(wire.encode(msg, self.key))
            await peer.writer.drain()
            return True
        except (OSError, ConnectionError):
            self.mark_disconnected(peer, "send failed")
            return False

    async def broadcast(self, msg: dict[str, Any], include_self: bool = False) -> None:
        targets = [p for p in self.connected_pnns() if include_self or p != self.pnn]
        await asyncio.gather(*(self.send(p, msg) for p in targets))

    async def request(self, pnn: int, msg: dict[str, Any], timeout: float) -> dict | None:
        """Send a message with a fresh id and wait for the reply with that id."""
        rid = next(self.ids)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
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

    # -- the TCP mesh --------------------------------------------------------------
    async def serve_peers(self) -> None:
        server = await asyncio.start_server(
            self.accept, host=str(self.cfg.nodes[self.pnn]), port=PORT, reuse_address=True)
        async with server:
            await self.stopping.wait()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        task = asyncio.current_task()
        if task is not None:
            self.conn_tasks.add(task)
        try:
            hello = await asyncio.wait_for(wire.read_message(reader, self.key), 5)
            if hello["type"] != "hello" or hello["pnn"] not in self.peers:
                raise wire.BadMessage(f"expected hello from a known node, got {hello}")
            src = hello["pnn"]
            self.peers[src].last_rx = time.monotonic()
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
        peer = self.peers[src]
        while True:
            msg = await wire.read_message(reader, self.key)
            peer.rx += 1
            peer.last_rx = time.monotonic()
            await self.handle(src, msg)

    async def connect_loop(self, peer: Peer) -> None:
        """Keep an outgoing connection to peer; it is CONNECTED while that is up
        and the peer has spoken since we connected.

        The second condition matters for a hung (SIGSTOPped) peer: its kernel
        still completes our TCP handshake, which alone would flip it back to
        connected a moment after the keepalive timeout declared it gone.
        """
        while not self.stopping.is_set():
            if not peer.connected:
                t_connect = time.monotonic()
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(peer.address, PORT), 2)
                    writer.write(wire.encode({"type": "hello", "pnn": self.pnn}, self.key))
                    await writer.drain()
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.5)
                    continue
                if not await self.heard_since(peer, t_connect):
                    writer.close()
                    continue
                peer.writer, peer.connected, peer.missed = writer, True, 0
                log.log(NOTICE, "connected to node %d", peer.pnn)
                self.spawn(self.watch_eof(peer, reader), f"eof-{peer.pnn}")
                await self.send(peer.pnn, self.flags_msg())
                if self.leader == self.pnn:
                    await self.send(peer.pnn, self.leader_msg())
                    self.takeover_needed.set()
            await asyncio.sleep(0.2)

    async def heard_since(self, peer: Peer, t: float) -> bool:
        """Wait (up to the keepalive bound) for anything from peer after time t."""
        deadline = t + self.tun["KeepaliveInterval"] * self.tun["KeepaliveLimit"]
        while peer.last_rx <= t and time.monotonic() < deadline:
            if self.stopping.is_set():
                return False
            await asyncio.sleep(0.05)
        return peer.last_rx > t

    async def watch_eof(self, peer: Peer, reader: asyncio.StreamReader) -> None:
        """The peer never writes on our outgoing connection: any EOF means it died."""
        with contextlib.suppress(OSError, ConnectionError):
            await reader.read()
        if peer.connected and not self.stopping.is_set():
            self.mark_disconnected(peer, "connection closed")

    def mark_disconnected(self, peer: Peer, why: str) -> None:
        if not peer.connected:
            return
        peer.connected = False
        if peer.writer is not None:
            peer.writer.close()
            peer.writer = None
        log.log(NOTICE, "node %d is now DISCONNECTED (%s)", peer.pnn, why)
        if self.leader == peer.pnn:
            self.leader = None
        if self.leader == self.pnn:
            self.takeover_needed.set()

    async def keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tun["KeepaliveInterval"])
            for peer in list(self.peers.values()):
                if not peer.connected:
                    continue
                if peer.rx == 0:
                    peer.missed += 1
                    if peer.missed >= self.tun["KeepaliveLimit"]:
                        self.mark_disconnected(
                            peer, f"no keepalive for {peer.missed} x "
                                  f"{self.tun['KeepaliveInterval']} s")
                        continue
                else:
                    peer.missed = 0
                peer.rx = 0
                await self.send(peer.pnn, {"type": "keepalive"})

    # -- message handling ---------------------------------------------------------
    def flags_msg(self) -> dict[str, Any]:
        return {"type": "flags", "pnn": self.pnn, "flags": int(self.flags),
                "partial": self.partial}

    def leader_msg(self) -> dict[str, Any]:
        return {"type": "leader", "pnn": self.pnn, "generation": self.generation}

    async def handle(self, src: int, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "keepalive":
            return
        if kind == "flags":
            if src != self.pnn and msg["pnn"] == src:
                peer = self.peers[src]
                old = peer.flags
                peer.flags, peer.partial = NodeFlags(msg["flags"]), msg["partial"]
                if old != peer.flags:
                    log.log(NOTICE, "node %d flags changed 0x%x -> 0x%x", src, old, peer.flags)
                    if self.leader == self.pnn:
                        self.takeover_needed.set()
        elif kind == "leader":
            if msg["pnn"] == src and src != self.pnn:
                if self.leader != src:
                    log.log(NOTICE, "Leader is now node %d", src)
                self.leader, self.generation, self.leader_seen = src, msg["generation"], \
                    time.monotonic()
        elif kind == "takeover_request":
            if self.leader == self.pnn:
                log.info("takeover run requested by node %d: %s", msg["pnn"], msg["reason"])
                self.takeover_needed.set()
        elif kind == "get_ips":
            await self.send(src, await self.ips_msg(msg["id"]))
        elif kind == "release_ip":
            ok = await self.release_ip(IPv4(msg["ip"]))
            await self.send(src, {"type": "done", "id": msg["id"], "ok": ok})
        elif kind == "take_ip":
            ok = await self.take_ip(IPv4(msg["ip"]))
            await self.send(src, {"type": "done", "id": msg["id"], "ok": ok})
        elif kind == "ipreallocated":
            self.assignment = {IPv4(k): int(v) for k, v in msg["assignment"].items()}
            await self.run_event("ipreallocated", [])
            await self.send(src, {"type": "done", "id": msg["id"], "ok": True})
        elif kind in ("ips", "done"):
            fut = self.pending.get(msg["id"])
            if fut is not None and not fut.done():
                fut.set_result(msg)

    # -- IPs in the kernel -------------------------------------------------------
    async def held(self) -> dict[IPv4, str]:
        """Public IPs present in this node's kernel -> interface."""
        addrs = await self.kernel.call(self.kernel.addresses)
        return {ip: dev for ip, dev in addrs.items() if ip in self.assignment}

    def available(self) -> list[IPv4]:
        """Known IPs with at least one link-up interface (as the monitor recorded)."""
        return [pa.address.ip for pa in self.cfg.public_addresses
                if any(self.iface_link.get(i, False) for i in pa.ifaces)]

    async def ips_msg(self, rid: int) -> dict[str, Any]:
        return {"type": "ips", "id": rid,
                "known": [str(pa.address.ip) for pa in self.cfg.public_addresses],
                "available": [str(ip) for ip in self.available()],
                "held": [str(ip) for ip in await self.held()],
                "running": self.running}

    async def choose_iface(self, ip: IPv4) -> str | None:
        held = await self.held()
        ups = [i for i in self.public(ip).ifaces if self.iface_link.get(i, False)]
        if not ups:
            return None
        return min(ups, key=lambda i: sum(1 for dev in held.values() if dev == i))

    async def take_ip(self, ip: IPv4) -> bool:
        held = await self.held()
        if ip in held:
            return True
        iface = await self.choose_iface(ip)
        if iface is None:
            log.error("cannot take %s: no link-up interface among %s", ip,
                      ",".join(self.public(ip).ifaces))
            return False
        addr = self.public(ip).address
        log.log(NOTICE, "Takeover of IP %s on interface %s", addr.with_prefixlen, iface)
        try:
            await self.kernel.call(self.kernel.add_address, iface, addr)
        except Exception as e:  # noqa: BLE001 - the kernel's refusal is logged and reported
            log.error("failed to add %s on %s: %s", addr, iface, e)
            return False
        res = await self.run_event("takeip", [iface, str(ip), str(addr.network.prefixlen)])
        self.spawn(self.garp(iface, ip), f"garp-{ip}")
        return res

    async def garp(self, iface: str, ip: IPv4) -> None:
        """Gratuitous ARP request + unsolicited reply, 3 rounds 1.1 s apart."""
        links = await self.kernel.call(self.kernel.links)
        mac = links.get(iface, {}).get("mac")
        if not mac:
            return
        for k in range(GARP_ROUNDS):
            if k:
                await asyncio.sleep(GARP_GAP)
            if ip not in await self.held():
                return
            try:
                await self.kernel.call(send_garp, iface, mac, ip)
            except OSError as e:
                log.warning("gratuitous ARP for %s on %s failed: %s", ip, iface, e)
                return

    async def release_ip(self, ip: IPv4) -> bool:
        held = await self.held()
        if ip not in held:
            return True
        iface = held[ip]
        addr = self.public(ip).address
        log.log(NOTICE, "Release of IP %s on interface %s  node:%d", addr.with_prefixlen, iface,
                self.assignment.get(ip, -1))
        await self.run_event("releaseip", [iface, str(ip), str(addr.network.prefixlen)])
        try:
            await self.kernel.call(self.kernel.del_address, iface, addr)
        except Exception as e:  # noqa: BLE001
            log.error("failed to delete %s from %s: %s", addr, iface, e)
            return False
        return True

    async def release_all(self) -> None:
        for ip in list(await self.held()):
            await self.release_ip(ip)

    async def run_event(self, event: str, args: list[str]) -> bool:
        d = self.cfg.events_dir
        if d is None or not d.is_dir():
            return True
        res = await run_event(d, event, args, self.tun["EventScriptTimeout"])
        for line in res.log_lines():
            log.log(NOTICE, "%s", line)
        if not res.ok:
            log.error("%s event failed: %s", event, res.describe())
        return res.ok

    # -- monitor -------------------------------------------------------------------
    def interface_check(self) -> IfaceCheck:
        """Runs on the kernel worker thread."""
        return check_interfaces(
            self.monitored, self.kernel, bring_up=self.cfg.options_bool("CTDB_IFACE_BRING_UP",
                                                                        True),
            partially_online_allowed=self.cfg.options_bool("CTDB_PARTIALLY_ONLINE_INTERFACES",
                                                           False))

    async def run_monitor(self) -> MonitorStatus:
        chk = await self.kernel.call(self.interface_check)
        for line in chk.messages:
            log.error("10.interface: %s", line)
        for iface, up in chk.link.items():
            old = self.iface_link.get(iface)
            if old is not None and old != up:
                log.log(NOTICE, "iface[%s] has changed it's link status %s => %s", iface,
                        "up" if old else "down", "up" if up else "down")
            self.iface_link[iface] = up
        if chk.partially_online != self.partial:
            self.partial = chk.partially_online
            await self.broadcast(self.flags_msg())
        d = self.cfg.events_dir
        if d is not None and d.is_dir():
            res = await run_event(d, "monitor", [], self.tun["EventScriptTimeout"])
            for line in res.log_lines():
                log.log(NOTICE, "%s", line)
            if res.status is EventStatus.TIMEOUT:
                log.error("monitor event timed out (%s)", res.script)
                return MonitorStatus.TIMEOUT
            if not res.ok:
                return MonitorStatus.FAILED
        return MonitorStatus.OK if chk.ok else MonitorStatus.FAILED

    def monitor_skipped(self) -> bool:
        return not self.running or bool(self.flags & NodeFlags.INACTIVE)

    async def monitor_loop(self) -> None:
        delay = self.schedule.first_delay()
        while True:
            self.monitor_gap, self.monitor_due = delay, time.monotonic() + delay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.monitor_wake.wait(), delay)
            self.monitor_wake.clear()
            if self.monitor_skipped():
                delay = self.schedule.on_skipped()
                continue
            status = await self.run_monitor()
            dec = self.schedule.on_result(status)
            for line in dec.messages:
                if not line.startswith("Node became"):
                    log.log(NOTICE, "%s", line)
            delay = dec.next_delay
            log.debug("monitor event %s; next in %g s", status.name, delay)
            if dec.changed:
                await self.set_flag(NodeFlags.UNHEALTHY, not dec.healthy,
                                    "UNHEALTHY" if not dec.healthy else "HEALTHY")

    def link_event(self, ifname: str) -> None:
        """From the watcher thread: a link we monitor (or a port of it) changed."""
        self.loop.call_soon_threadsafe(self.monitor_wake.set)

    async def set_flag(self, flag: NodeFlags, on: bool, state: str | None = None) -> None:
        new = (self.flags | flag) if on else (self.flags & ~flag)
        if new == self.flags:
            return
        self.flags = NodeFlags(new)
        await self.broadcast(self.flags_msg())
        leader = self.leader if self.leader is not None else -1
        if state:
            log.log(NOTICE, "Node became %s. Ask recovery master %d to perform ip reallocation",
                    state, leader)
        await self.request_takeover(f"flags now 0x{int(self.flags):x}")

    async def request_takeover(self, reason: str) -> None:
        if self.leader is None:
            return
        await self.send(self.leader, {"type": "takeover_request", "pnn": self.pnn,
                                      "reason": reason})

    # -- leader and the recovery loop ------------------------------------------
    def try_lock(self) -> bool:
        path = self.cfg.cluster_lock
        if path is None:
            return False
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.lock_fd = fd
        return True

    def lock_still_ours(self) -> bool:
        """The lock file we hold must still be the one at the path."""
        path = self.cfg.cluster_lock
        if self.lock_fd is None or path is None:
            return False
        try:
            return os.fstat(self.lock_fd).st_ino == os.stat(path).st_ino
        except OSError:
            return False

    def drop_lock(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    async def recovery_loop(self) -> None:
        last_lock_check = time.monotonic()
        while True:
            await asyncio.sleep(self.tun["RecoverInterval"])
            now = time.monotonic()
            if self.leader == self.pnn:
                await self.broadcast(self.leader_msg())
                if now - last_lock_check >= 5:
                    last_lock_check = now
                    if not self.lock_still_ours():
                        log.error("cluster lock lost; giving up leadership")
                        self.drop_lock()
                        self.leader = None
                await self.verify_local_ips()  # the leader's own links and IPs too
                continue
            silent = now - self.leader_seen > LEADER_SILENCE
            if (self.leader is None or silent) and self.try_lock():
                self.leader = self.pnn
                self.generation = random.randint(1, 2**31 - 1)
                log.log(NOTICE, "Took the cluster lock: this node (%d) is the leader", self.pnn)
                await self.broadcast(self.leader_msg())
                self.takeover_needed.set()
                continue
            await self.verify_local_ips()

    async def verify_local_ips(self) -> None:
        """Ask for a takeover run if the kernel or links disagree with the assignment."""
        if self.leader is None or not self.running:
            return
        held = await self.held()
        reasons = []
        for ip, owner in self.assignment.items():
            if owner == self.pnn and ip not in held:
                reasons.append(f"{ip} assigned here but missing")
            if owner != self.pnn and ip in held:
                reasons.append(f"{ip} present here but assigned to {owner}")
        if self.iface_link != self.links_at_last_request:
            reasons.append("interface link states changed")
            self.links_at_last_request = dict(self.iface_link)
        if reasons:
            await self.request_takeover("; ".join(reasons))

    async def takeover_loop(self) -> None:
        while True:
            await self.takeover_needed.wait()
            self.takeover_needed.clear()
            if self.leader != self.pnn:
                continue
            try:
                ok = await asyncio.wait_for(self.takeover_run(),
                                            3 * self.tun["TakeoverTimeout"])
            except TimeoutError:
                ok = False
            if not ok:
                log.error("takeover run failed; retrying in 1 s")
                await asyncio.sleep(1)
                self.takeover_needed.set()

    async def takeover_run(self) -> bool:
        t0 = time.monotonic()
        timeout = float(self.tun["TakeoverTimeout"])
        pnns = self.connected_pnns()
        replies = await asyncio.gather(
            *(self.request(p, {"type": "get_ips"}, timeout) for p in pnns))
        info = {p: r for p, r in zip(pnns, replies, strict=True) if r is not None}
        current: dict[IPv4, int] = {ip: -1 for ip in self.assignment}
        holders: dict[IPv4, list[int]] = {ip: [] for ip in self.assignment}
        for p, r in info.items():
            for s in r["held"]:
                ip = IPv4(s)
                if ip in current:
                    holders[ip].append(p)
                    current[ip] = p  # as CTDB: the highest pnn's claim wins
        nodes = []
        for p in range(len(self.cfg.nodes)):
            r = info.get(p)
            flags = self.node_flags(p) | (NodeFlags.NONE if r else NodeFlags.DISCONNECTED)
            nodes.append(NodeAlloc(
                pnn=p, flags=NodeFlags(flags),
                known=frozenset(IPv4(s) for s in r["known"]) if r else frozenset(),
                available=frozenset(IPv4(s) for s in r["available"]) if r else frozenset(),
                running=bool(r and r["running"])))
        new = allocate(AllocRequest(
            nodes=tuple(nodes), current=current,
            algorithm=Algorithm(self.tun["IPAllocAlgorithm"]),
            no_ip_failback=bool(self.tun["NoIPFailback"]),
            no_ip_takeover=bool(self.tun["NoIPTakeover"])))
        releases = [(p, ip) for ip, hs in holders.items() for p in hs if p != new[ip]]
        res = await asyncio.gather(
            *(self.request(p, {"type": "release_ip", "ip": str(ip)}, timeout)
              for p, ip in releases))
        ok = all(r is not None and r["ok"] for r in res)
        takes = [(p, ip) for ip, p in new.items() if p >= 0 and p not in holders[ip]]
        res = await asyncio.gather(
            *(self.request(p, {"type": "take_ip", "ip": str(ip)}, timeout) for p, ip in takes))
        ok = ok and all(r is not None and r["ok"] for r in res)
        assignment = {str(ip): p for ip, p in new.items()}
        await asyncio.gather(*(self.request(p, {"type": "ipreallocated",
                                                "assignment": assignment}, timeout)
                               for p in self.connected_pnns()))
        log.info("takeover run finished in %.3f s (%d released, %d taken)",
                 time.monotonic() - t0, len(releases), len(takes))
        return ok

    # -- lifecycle -------------------------------------------------------------------
    async def startup(self) -> None:
        """CTDB's init: no public IP may survive from an earlier run."""
        held = await self.held()
        for ip, dev in held.items():
            log.log(NOTICE, "Removing public address %s from %s at startup", ip, dev)
            await self.kernel.call(self.kernel.del_address, dev, self.public(ip).address)
        await self.run_event("startup", [])
        self.running = True
        log.log(NOTICE, "Runstate RUNNING; node %d of %d, %s", self.pnn, len(self.cfg.nodes),
                "event-driven interface monitor" if self.event_mode
                else f"MonitorInterval {self.tun['MonitorInterval']} s")

    async def run(self, control_path: Path | None) -> int:
        from harness.failover.control import serve_control

        self.loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.stopping.set)
        await self.startup()
        if self.event_mode:
            self.watcher = LinkWatcher(self.link_event)
            self.watcher.start()
        self.spawn(self.serve_peers(), "serve")
        for peer in self.peers.values():
            self.spawn(self.connect_loop(peer), f"connect-{peer.pnn}")
        self.spawn(self.keepalive_loop(), "keepalive")
        self.spawn(self.monitor_loop(), "monitor")
        self.spawn(self.recovery_loop(), "recovery")
        self.spawn(self.takeover_loop(), "takeover")
        if control_path is not None:
            self.spawn(serve_control(self, control_path), "control")
        await self.stopping.wait()
        log.log(NOTICE, "Shutting down: releasing public IPs")
        await self.release_all()
        pending = [*self.tasks, *self.conn_tasks]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for peer in self.peers.values():
            if peer.writer is not None:
                peer.writer.close()
        if self.watcher:
            self.watcher.stop()
        self.drop_lock()
        self.kernel.close()
        log.log(NOTICE, "Shutdown complete")
        return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="failoverd", description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True, type=Path,
                   help="node directory with nodes, public_addresses, ctdb.tunables, "
                        "script.options, events/")
    p.add_argument("--pnn", type=int, default=None,
                   help="this node's number (default: the nodes line whose address is local)")
    p.add_argument("--cluster-lock", type=Path, default=None,
                   help="file on storage all nodes share; its fcntl lock elects the leader")
    p.add_argument("--socket", type=Path, default=None, help="control socket (mode 0600)")
    p.add_argument("--log", type=Path, default=None, help="log file (default: stderr)")
    p.add_argument("--log-level", default="NOTICE", choices=list(LEVELS))
    p.add_argument("--event-mode", action="store_true",
                   help="run the monitor at once on netlink link events (beyond CTDB)")
    p.add_argument("--key-file", type=Path, default=None,
                   help="cluster key: authenticate private-network messages with HMAC")
    return p.parse_args(argv)


def setup_logging(path: Path | None, level: str) -> None:
    logging.addLevelName(NOTICE, "NOTICE")
    handler: logging.Handler = (logging.FileHandler(path) if path
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(CtdbFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        refuse_host_namespace()
        cfg = load_node_config(args.dir, pnn=args.pnn, cluster_lock=args.cluster_lock)
        key = None
        if args.key_file is not None:
            try:
                key = args.key_file.read_bytes().strip()
            except OSError as e:
                raise ConfigError(f"{args.key_file}: cannot read cluster key ({e.strerror})"
                                  "; check --key-file") from None
            if len(key) < 16:
                raise ConfigError(f"{args.key_file}: cluster key shorter than 16 bytes; "
                                  "use a longer random key")
    except ConfigError as e:
        print(f"failoverd: {e}", file=sys.stderr)
        return 2
    setup_logging(args.log, args.log_level)
    daemon = Daemon(cfg, event_mode=args.event_mode, key=key)
    return asyncio.run(daemon.run(args.socket))


if __name__ == "__main__":
    sys.exit(main())
