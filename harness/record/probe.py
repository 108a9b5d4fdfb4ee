"""A client that keeps probing every public IP, as a real client would.

Runs in a client namespace, in a thread that entered it, with sockets opened
there (their namespace checked before anything is sent). Per round and IP:

* an ARP probe (RFC 5227: sender IP 0.0.0.0) from a made-up sender MAC, so
  that the answers go to that MAC and the client's kernel drops them: probing
  never teaches the client's own ARP cache anything. It says which node(s)
  claim the IP right now (two answers = split brain);
* an ICMP echo through the kernel's stack, so it goes to whatever MAC the
  client's neighbour table holds: this is what a real client experiences
  (it keeps the old MAC until a gratuitous ARP or until the entry ages out);
* the client's neighbour entry for the IP, followed through netlink events.

Events (source "probe"; `node` is the node whose MAC it was, None if unknown
or several):
  probe.arp    {ip, answered, macs, nodes, prev_macs, last_prev_t}
  probe.icmp   {ip, ok, mac, rtt_ms, seq, last_prev_t}
  probe.neigh  {ip, mac, state, prev_mac}
  probe.garp   {ip, mac, op}  a gratuitous ARP seen on the client's wire
  probe.start / probe.stop
`t` of probe.arp/probe.icmp is the send time of the first probe that showed
the new state; `last_prev_t` the send time of the last one that showed the
old state, so the change happened in (last_prev_t, t].
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import random
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from pyroute2 import IPRSocket
from pyroute2.netlink import rtnl

from harness import inet, netns
from harness.cluster import Client, Cluster
from harness.record.component import RecorderThread
from harness.record.events import Event, Timeline
from harness.topology import FORBIDDEN

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
SOL_RAW = 255
ICMP_FILTER = 1
NUD_INCOMPLETE, NUD_FAILED = 0x01, 0x20
NUD_NAMES = {0x01: "INCOMPLETE", 0x02: "REACHABLE", 0x04: "STALE", 0x08: "DELAY",
             0x10: "PROBE", 0x20: "FAILED", 0x40: "NOARP", 0x80: "PERMANENT", 0x00: "NONE"}
BROADCAST = b"\xff" * 6


def mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)



def arp_probe_frame(src_mac: bytes, target: ipaddress.IPv4Address) -> bytes:
    """Broadcast ARP request with sender IP 0.0.0.0 (answers go to src_mac)."""
    eth = BROADCAST + src_mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, src_mac, b"\0" * 4, b"\0" * 6,
                      target.packed)
    return (eth + arp).ljust(60, b"\0")


def icmp_echo(ident: int, seq: int) -> bytes:
    payload = b"fth-probe"
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, inet.checksum(hdr + payload), ident, seq) + payload


@dataclass
class _IpState:
    ip: str
    # ARP: replies to the request of the current round, and the last decided set
    arp_round_t: float | None = None
    arp_round: set[str] = field(default_factory=set)
    arp_rtt: float | None = None
    arp_state: frozenset[str] | None = None
    arp_last_t: float | None = None
    # ICMP: outstanding echos (seq -> send time), in send order
    pending: collections.OrderedDict[int, float] = field(default_factory=collections.OrderedDict)
    replies: dict[int, tuple[float, str]] = field(default_factory=dict)
    icmp_state: tuple[bool, str | None] | None = None
    icmp_last_t: float | None = None
    neigh: tuple[str | None, str] | None = None
    sent: int = 0
    answered: int = 0


class ClientProber(RecorderThread):
    """Probes the cluster's public IPs from a client namespace, bounded in time.

    Use as a context manager, or start()/stop(). It stops by itself after
    `duration` seconds or `max_rounds` rounds; stop() returns once the
    outstanding echos are decided (as lost, if unanswered). It has its own
    stop flag: the Recorder stops probers before the other recorders.
    """

    def __init__(self, cluster: Cluster, timeline: Timeline, client: Client | str | None = None,
                 ips: Iterable[str | ipaddress.IPv4Address] | None = None,
                 period: float = 0.03, timeout: float | None = None, duration: float = 60.0,
                 max_rounds: int | None = None, iface: str = "eth0") -> None:
        if client is None:
            client = next(iter(cluster.clients.values()))
        elif isinstance(client, str):
            client = cluster.client(client)
        net = client.network
        assert net is not None
        if ips is None:
            # the client's network is IPv4: an IPv6 address is never in its subnet
            ips = [p.address.ip for p in cluster.topology.public_addresses
                   if isinstance(p.address.ip, ipaddress.IPv4Address)
                   and p.address.ip in net.subnet]
        targets = [ipaddress.IPv4Address(str(x)) for x in ips]
        for ip in targets:
            # only ever send to the cluster's own segment
            if ip not in net.subnet or ip in FORBIDDEN or ip == net.subnet.broadcast_address:
                raise ValueError(f"refusing to probe {ip}: not a host of the cluster's "
                                 f"{net.name} network {net.subnet}")
        super().__init__(f"probe:{client.netns.rsplit('-', 1)[-1]}", timeline, wake_pipe=True)
        self.cluster, self.client = cluster, client
        self.ips = targets
        self.period = period
        self.timeout = timeout if timeout is not None else max(period, 0.1)
        self.beat_bound = max(self.period, self.timeout)  # the longest select() of a pass
        self.duration = duration
        self.max_rounds = max_rounds
        self.iface = iface
        self.ident = random.randrange(1, 0xFFFF)
        self.fake_mac = bytes([0x02, 0x66, 0x74, 0x68, random.randrange(256),
                               random.randrange(256)])
        self.mac_to_node: dict[str, int] = {}
        self.rounds = 0
        self.state: dict[str, _IpState] = {str(ip): _IpState(str(ip)) for ip in self.ips}

    # -- control ---------------------------------------------------------------------
    def refresh_macs(self) -> None:
        """Map every node interface's MAC to its pnn (for `node` in events)."""
        m = {}
        for n in self.cluster.nodes:
            for link in n.links().values():
                if link.mac and link.name != "lo":
                    m[link.mac] = n.pnn
        self.mac_to_node = m

    def start(self) -> Self:
        self.refresh_macs()
        return super().start()

    def __enter__(self) -> Self:
        self.start()
        if not self.wait_ready():
            self.stop()
            raise TimeoutError(f"prober not ready: {self.error}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def view(self) -> dict[str, dict[str, Any]]:
        """Current per-IP view (last decided ARP answer, ICMP result, neighbour entry)."""
        return {ip: {"arp": sorted(s.arp_state or ()),
                     "icmp_ok": s.icmp_state[0] if s.icmp_state else None,
                     "icmp_mac": s.icmp_state[1] if s.icmp_state else None,
                     "neigh": s.neigh[0] if s.neigh else None,
                     "sent": s.sent, "answered": s.answered} for ip, s in self.state.items()}

    # -- the thread ------------------------------------------------------------------------
    def run(self) -> None:
        netns.in_netns(self.client.netns, self._body)

    def report_error(self, e: BaseException) -> None:
        """A prober's failure is a probe event: readers of probe.* see it there."""
        self.timeline.mark("probe", "probe.error", None, error=f"{type(e).__name__}: {e}")

    def _check_ns(self, sock: socket.socket | Any) -> None:
        got, want = netns.socket_netns_ino(sock.fileno()), netns.netns_ino(self.client.netns)
        if got != want or got == netns.host_netns_ino():
            raise netns.NamespaceSafetyError(
                f"prober socket is in namespace inode {got}, not the client's {want}")

    def _emit(self, kind: str, node: int | None, t: float, **data: Any) -> Event:
        return self.emit("probe", kind, node, t, **data)

    def _node(self, mac: str | None) -> int | None:
        return self.mac_to_node.get(mac) if mac else None

    def _body(self, route: netns.NsRoute) -> None:
        with self.counting_cpu():
            self._probe(route)

    def _probe(self, route: netns.NsRoute) -> None:
        ifindex = route.link_lookup(ifname=self.iface)[0]
        pkt = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        nl = IPRSocket()
        try:
            for s in (pkt, icmp, nl.socket):
                self._check_ns(s)
            pkt.bind((self.iface, 0))
            pkt.setblocking(False)
            # replies are read from the packet socket (it has the MAC); this one only sends
            icmp.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF))
            icmp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.iface.encode())
            nl.bind(groups=rtnl.RTMGRP_NEIGH)
            t = time.monotonic()
            for m in route.neigh("dump", family=socket.AF_INET, ifindex=ifindex):
                self._neigh(m, t, ifindex)
            self._emit("probe.start", None, t, client=self.client.netns,
                       ips=[str(i) for i in self.ips], period=self.period, timeout=self.timeout,
                       macs={m: n for m, n in self.mac_to_node.items()})
            self.ready.set()
            self._loop(pkt, icmp, nl, ifindex)
        finally:
            pkt.close()
            icmp.close()
            nl.close()

    def _loop(self, pkt: socket.socket, icmp: socket.socket, nl: Any, ifindex: int) -> None:
        t_start = time.monotonic()
        end = t_start + self.duration
        nxt = t_start
        seq = 0
        while True:
            self.beat()
            now = time.monotonic()
            done = (self.stop_flag.is_set() or now >= end
                    or (self.max_rounds is not None and self.rounds >= self.max_rounds))
            if done:
                break
            if now >= nxt:
                for s in self.state.values():
                    self._close_arp_round(s)
                for ip in self.ips:
                    s = self.state[str(ip)]
                    seq = (seq + 1) & 0xFFFF
                    t = time.monotonic()
                    s.arp_round_t, s.arp_round, s.arp_rtt = t, set(), None
                    pkt.send(arp_probe_frame(self.fake_mac, ip))
                    t = time.monotonic()
                    s.pending[seq] = t
                    s.sent += 1
                    with contextlib.suppress(OSError):  # e.g. EHOSTUNREACH after failed ARP
                        icmp.sendto(icmp_echo(self.ident, seq), (str(ip), 0))
                self.rounds += 1
                nxt += self.period
                if nxt <= now:
                    nxt = now + self.period
            self._expire(time.monotonic())
            wait = nxt - time.monotonic()
            for s in self.state.values():
                if s.pending:
                    wait = min(wait, next(iter(s.pending.values())) + self.timeout
                               - time.monotonic())
            rd, _, _ = select.select([pkt, nl.socket, self.wake_fd], [], [], max(0.0, wait))
            if pkt in rd:
                self._drain(pkt)
            if nl.socket in rd:
                t = time.monotonic()
                for m in nl.get():
                    self._neigh(m, t, ifindex)
        # wind down: close the last ARP round, give outstanding echos their timeout
        for s in self.state.values():
            self._close_arp_round(s)
        deadline = time.monotonic() + self.timeout
        while any(s.pending for s in self.state.values()) and time.monotonic() < deadline:
            rd, _, _ = select.select([pkt], [], [], max(0.0, deadline - time.monotonic()))
            if rd:
                self._drain(pkt)
            self._expire(time.monotonic())
        self._expire(float("inf"))
        self._emit("probe.stop", None, time.monotonic(), rounds=self.rounds,
                   sent=sum(s.sent for s in self.state.values()),
                   answered=sum(s.answered for s in self.state.values()))

    # -- results --------------------------------------------------------------------------
    def _close_arp_round(self, s: _IpState) -> None:
        if s.arp_round_t is None:
            return
        macs = frozenset(s.arp_round)
        if macs != s.arp_state:
            nodes = sorted({n for n in (self._node(m) for m in macs) if n is not None})
            self._emit("probe.arp", nodes[0] if len(nodes) == 1 and len(macs) == 1 else None,
                       s.arp_round_t, ip=s.ip, answered=bool(macs), macs=sorted(macs),
                       nodes=nodes, prev_macs=None if s.arp_state is None else sorted(s.arp_state),
                       last_prev_t=s.arp_last_t,
                       rtt_ms=None if s.arp_rtt is None else round(s.arp_rtt * 1000, 3))
            s.arp_state = macs
        s.arp_last_t = s.arp_round_t
        s.arp_round_t = None

    def _icmp_result(self, s: _IpState, t_sent: float, seq: int, ok: bool, mac: str | None,
                     rtt: float | None) -> None:
        if ok:
            s.answered += 1
        st = (ok, mac)
        if st != s.icmp_state:
            self._emit("probe.icmp", self._node(mac), t_sent, ip=s.ip, ok=ok, mac=mac,
                       rtt_ms=None if rtt is None else round(rtt * 1000, 3), seq=seq,
                       last_prev_t=s.icmp_last_t,
                       prev_ok=None if s.icmp_state is None else s.icmp_state[0])
            s.icmp_state = st
        s.icmp_last_t = t_sent

    def _expire(self, now: float) -> None:
        """Decide outstanding echos in send order: answered, or lost after the timeout."""
        for s in self.state.values():
            while s.pending:
                seq, t_sent = next(iter(s.pending.items()))
                if seq in s.replies:
                    t_rx, mac = s.replies.pop(seq)
                    del s.pending[seq]
                    self._icmp_result(s, t_sent, seq, True, mac, t_rx - t_sent)
                elif t_sent + self.timeout <= now:
                    del s.pending[seq]
                    self._icmp_result(s, t_sent, seq, False, None, None)
                else:
                    break

    def _drain(self, pkt: socket.socket) -> None:
        while True:
            try:
                data, addr = pkt.recvfrom(2048)
            except BlockingIOError:
                return
            t = time.monotonic()
            self.stats.messages += 1
            if addr[2] == PACKET_OUTGOING or len(data) < 42:
                continue
            etype = struct.unpack_from("!H", data, 12)[0]
            if etype == ETH_P_ARP:
                self._arp(data, t)
            elif etype == ETH_P_IP:
                self._ip(data, t)

    def _arp(self, data: bytes, t: float) -> None:
        op = struct.unpack_from("!H", data, 20)[0]
        sha, spa, tha, tpa = data[22:28], data[28:32], data[32:38], data[38:42]
        ip = str(ipaddress.IPv4Address(spa))
        s = self.state.get(ip)
        if s is None:
            return
        mac = mac_str(sha)
        if op == 2 and tha == self.fake_mac:
            if s.arp_round_t is not None:
                if not s.arp_round:
                    s.arp_rtt = t - s.arp_round_t
                s.arp_round.add(mac)
        elif spa == tpa:
            self._emit("probe.garp", self._node(mac), t, ip=ip, mac=mac,
                       op="reply" if op == 2 else "request")

    def _ip(self, data: bytes, t: float) -> None:
        ihl = (data[14] & 0x0F) * 4
        if data[23] != socket.IPPROTO_ICMP or len(data) < 14 + ihl + 8:
            return
        off = 14 + ihl
        typ, _code, _ck, ident, seq = struct.unpack_from("!BBHHH", data, off)
        if typ != 0 or ident != self.ident:
            return
        s = self.state.get(str(ipaddress.IPv4Address(data[26:30])))
        if s is not None and seq in s.pending:
            s.replies[seq] = (t, mac_str(data[6:12]))

    def _neigh(self, m: Any, t: float, ifindex: int) -> None:
        if m.get("event") not in ("RTM_NEWNEIGH", "RTM_DELNEIGH") or m["ifindex"] != ifindex:
            return
        s = self.state.get(str(m.get_attr("NDA_DST")))
        if s is None:
            return
        nud = m["state"]
        valid = m.get("event") == "RTM_NEWNEIGH" and not nud & (NUD_INCOMPLETE | NUD_FAILED)
        mac = m.get_attr("NDA_LLADDR") if valid else None
        state = "DELETED" if m.get("event") == "RTM_DELNEIGH" else NUD_NAMES.get(nud, hex(nud))
        prev = s.neigh[0] if s.neigh else None
        if s.neigh is None or prev != mac:
            self._emit("probe.neigh", self._node(mac), t, ip=s.ip, mac=mac, state=state,
                       prev_mac=prev)
        s.neigh = (mac, state)
