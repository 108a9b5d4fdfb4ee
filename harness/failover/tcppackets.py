"""Hand-made TCP segments: CTDB's tickle ACK and killtcp (ctdb_sys_send_tcp,
ctdb_killtcp), sent through raw IPv4 sockets in the node's namespace.

Why raw sockets and not a packet library (scapy): a tickle is one fixed
40-byte segment; stdlib `struct` builds it and an IPPROTO_RAW socket lets
the kernel route it (and resolve the next hop's MAC), at a few microseconds
a packet against scapy's milliseconds, and without a 20 MB dependency whose
import alone costs the daemon about a second of CPU.

- A tickle ACK is an ACK with seq 0 / ack 0 "from" the server to the client.
  The client answers it with an ACK that carries its real sequence numbers;
  if the server address now lives on a node without that connection, that
  node's kernel answers the client with a RST and the client's connection
  ends at once instead of waiting out retransmission backoff.
- killtcp (on releasing an IP, while it is still local): send a tickle to
  the client, capture its ACK on a raw IPPROTO_TCP socket (which sees a copy
  of every incoming TCP segment), and reset both ends with the exact
  sequence numbers that ACK reveals: seq=ack to the client, seq=its seq to
  the local socket.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from dataclasses import dataclass

from harness import inet

TH_RST, TH_ACK = 0x04, 0x10
TICKLE_WINDOW = 1234  # as ctdb_sys_send_tcp sets it


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: ipaddress.IPv4Address
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """`A.B.C.D:PORT`, as `ctdb addtickle` takes it; ValueError if not."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r} is not IPv4-ADDRESS:PORT")
        return cls(ipaddress.IPv4Address(host), int(port))

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True, order=True)
class Connection:
    """One TCP connection as CTDB's tickle list holds it: src is the client,
    dst the server's (public) address."""

    src: Endpoint
    dst: Endpoint

    def __str__(self) -> str:
        return f"{self.src} {self.dst}"

    @classmethod
    def parse(cls, text: str) -> Connection:
        a, _, b = text.partition(" ")
        return cls(Endpoint.parse(a), Endpoint.parse(b))



def segment(src: Endpoint, dst: Endpoint, seq: int, ack: int, flags: int) -> bytes:
    """An IPv4 packet holding one TCP segment without payload or options."""
    tcp = struct.pack("!HHIIBBHHH", src.port, dst.port, seq, ack, 5 << 4, flags,
                      TICKLE_WINDOW, 0, 0)
    pseudo = src.ip.packed + dst.ip.packed + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", inet.checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64,
                     socket.IPPROTO_TCP, 0, src.ip.packed, dst.ip.packed)
    return ip + tcp  # the kernel fills in the IP checksum (and id) for IP_HDRINCL


class RawSender:
    """An IPPROTO_RAW socket (IP_HDRINCL implied): segments with any source."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def send(self, src: Endpoint, dst: Endpoint, seq: int, ack: int, flags: int) -> None:
        self.sock.sendto(segment(src, dst, seq, ack, flags), (str(dst.ip), 0))

    def tickle(self, conn: Connection) -> None:
        """Tickle ACK from the server to the client (ctdb_sys_send_tcp(dst, src, 0, 0, 0))."""
        self.send(conn.dst, conn.src, 0, 0, TH_ACK)

    def close(self) -> None:
        self.sock.close()


def _client_acks(sock: socket.socket, want: set[Connection], deadline: float
                 ) -> dict[Connection, tuple[int, int]]:
    """(seq, ack) of the first ACK each wanted connection's client sends its
    server before the deadline (from the capture socket's copies)."""
    got: dict[Connection, tuple[int, int]] = {}
    while len(got) < len(want) and (left := deadline - time.monotonic()) > 0:
        rd, _, _ = select.select([sock], [], [], left)
        if not rd:
            break
        data = sock.recv(2048)
        ihl = (data[0] & 0x0F) * 4
        if len(data) < ihl + 20:
            continue
        sport, dport, seq, ack, _off, flags = struct.unpack_from("!HHIIBB", data, ihl)
        c = Connection(Endpoint(ipaddress.IPv4Address(data[12:16]), sport),
                       Endpoint(ipaddress.IPv4Address(data[16:20]), dport))
        if c in want and c not in got and flags & TH_ACK and not flags & TH_RST:
            got[c] = (seq, ack)
    return got


def killtcp(conns: list[Connection], timeout: float = 0.5, attempts: int = 5) -> list[Connection]:
    """Reset both ends of each connection (the server end must be local);
    returns the ones whose client never answered a tickle within timeout.

    Blocking: the daemon runs it in a worker thread.
    """
    if not conns:
        return []
    cap = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    raw = RawSender()
    left = list(conns)
    try:
        gap = timeout / attempts
        for _ in range(attempts):
            for c in left:
                raw.tickle(c)
            got = _client_acks(cap, set(left), time.monotonic() + gap)
            for c, (seq, ack) in got.items():
                raw.send(c.dst, c.src, ack, 0, TH_RST)  # the client's end
                raw.send(c.src, c.dst, seq, 0, TH_RST)  # our own (the server's) end
            left = [c for c in left if c not in got]
            if not left:
                break
    finally:
        cap.close()
        raw.close()
    return left
