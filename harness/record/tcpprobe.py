"""TCP clients of the cluster's public IPs: what an SMB or NFS client lives through.

Runs in a client namespace (a thread that entered it; every socket's
namespace checked). Per public IP it keeps `per_ip` long-lived connections
to the node service (harness.services.smbd) that each send a small request
every `period` once the previous one was answered, plus `idle_per_ip`
connections that never send: they only notice a reset (a tickle's doing).

A connection that fails (reset, refused, timed out) is replaced at once by
a new one; a connect that takes longer than `connect_timeout` is abandoned
and tried again (as an SMB client's reconnect loop does, instead of waiting
out the kernel's SYN backoff of 1, 3, 7 s).

Events (source "probe", t = monotonic):
  probe.tcpconn {ip, conn, state, lport, error, idle}  per connection: "up" (connected),
                "stalled" (a request unanswered for `stall`), "answering" (after a
                stall), "reset", "timeout", "refused", "closed"
  probe.tcp     {ip, answered, last_prev_t}  per IP: answered=False once no request
                on any connection was answered for `stall`, or a busy connection
                was reset or closed (t = then), True at the
                first answer after; last_prev_t = the last answer before the outage
                (so harness.record.outages.outages(kind="probe.tcp") reads them too)
The TCP outage of an IP is from the last answered request before it to the
first answered one after, on any connection (harness.record.outages).
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from harness import netns
from harness.cluster import Client, Cluster
from harness.record.component import RecorderThread
from harness.record.events import Timeline
from harness.services.smbd import PORT

CONNECT_TIMEOUT = 0.25
STALL = 0.1


@dataclass
class _Conn:
    ip: str
    k: int
    idle: bool
    sock: socket.socket | None = None
    connecting_since: float | None = None
    sent_at: float | None = None  # request in flight since
    next_send: float = 0.0
    stalled: bool = False
    buf: bytes = b""
    lport: int = 0


@dataclass
class _Ip:
    ip: str
    last_ok: float | None = None
    down: bool = False
    conns: list[_Conn] = field(default_factory=list)


class TcpProber(RecorderThread):
    """Long-lived TCP connections to every public IP, from one client namespace."""

    def __init__(self, cluster: Cluster, timeline: Timeline, client: Client | None = None,
                 ips: Iterable[str | ipaddress.IPv4Address] | None = None, port: int = PORT,
                 per_ip: int = 2, idle_per_ip: int = 0, period: float = 0.02,
                 stall: float = STALL, connect_timeout: float = CONNECT_TIMEOUT,
                 duration: float = 900.0) -> None:
        client = client or next(iter(cluster.clients.values()))
        net = client.network
        assert net is not None
        if ips is None:
            ips = [str(p.address.ip) for p in cluster.topology.public_addresses
                   if isinstance(p.address.ip, ipaddress.IPv4Address)
                   and p.address.ip in net.subnet]
        super().__init__(f"tcp:{client.netns.rsplit('-', 1)[-1]}", timeline, wake_pipe=True)
        self.client = client
        self.port, self.period, self.stall = port, period, stall
        self.connect_timeout, self.duration = connect_timeout, duration
        self.ips = {str(ip): _Ip(str(ip)) for ip in ips}
        for s in self.ips.values():
            s.conns = [_Conn(s.ip, k, idle=k >= per_ip) for k in range(per_ip + idle_per_ip)]

    def __enter__(self) -> Self:
        self.start()
        if not self.wait_ready(10):
            self.stop()
            raise TimeoutError(f"tcp prober not ready: {self.error}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answering(self, ip: str) -> bool:
        """Whether ip answered a request within the stall threshold (busy
        connections only; with none, whether all its connections are up)."""
        s = self.ips[ip]
        if not any(not c.idle for c in s.conns):
            return all(c.sock is not None and c.connecting_since is None for c in s.conns)
        return s.last_ok is not None and not s.down \
            and time.monotonic() - s.last_ok < self.stall

    def up(self, ip: str) -> int:
        """How many of ip's connections are established right now."""
        return sum(1 for c in self.ips[ip].conns
                   if c.sock is not None and c.connecting_since is None)

    def connected(self) -> int:
        """How many connections are established right now."""
        return sum(self.up(ip) for ip in self.ips)

    # -- the thread ---------------------------------------------------------------
    def run(self) -> None:
        netns.in_netns(self.client.netns, lambda route: self._body())

    def report_error(self, e: BaseException) -> None:
        self.timeline.mark("probe", "probe.error", None, error=f"tcp: {type(e).__name__}: {e}")

    def _body(self) -> None:
        with self.counting_cpu():
            try:
                self._loop()
            finally:
                for s in self.ips.values():
                    for c in s.conns:
                        if c.sock is not None:
                            c.sock.close()

    def _emit_conn(self, c: _Conn, state: str, t: float, error: str | None = None) -> None:
        self.emit("probe", "probe.tcpconn", None, t, ip=c.ip, conn=c.k, state=state,
                  lport=c.lport, error=error, idle=c.idle)

    def _connect(self, c: _Conn, now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        got, want = netns.socket_netns_ino(sock.fileno()), netns.netns_ino(self.client.netns)
        if got != want or got == netns.host_netns_ino():
            sock.close()
            raise netns.NamespaceSafetyError(f"tcp prober socket in namespace {got}, not {want}")
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex((c.ip, self.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            c.next_send = now + self.period
            return
        c.sock, c.connecting_since, c.buf, c.sent_at, c.stalled = sock, now, b"", None, False
        c.lport = sock.getsockname()[1]

    def _drop(self, c: _Conn, state: str, t: float, error: str | None = None) -> None:
        if c.sock is not None:
            c.sock.close()
        c.sock, c.connecting_since, c.sent_at = None, None, None
        self._emit_conn(c, state, t, error)
        s = self.ips[c.ip]
        if state in ("reset", "closed") and not c.idle and not s.down and s.last_ok is not None:
            # a client's session broke: its outage starts now, even if the reconnect
            # is answered before `stall` (a takeover with tickles can be that quick)
            s.down = True
            self.emit("probe", "probe.tcp", None, t, ip=s.ip, answered=False,
                      last_prev_t=s.last_ok)

    def _answered(self, s: _Ip, t: float) -> None:
        if s.down:
            self.emit("probe", "probe.tcp", None, t, ip=s.ip, answered=True,
                      last_prev_t=s.last_ok)
            s.down = False
        s.last_ok = t

    def _loop(self) -> None:
        start = time.monotonic()
        for s in self.ips.values():
            for c in s.conns:
                self._connect(c, start)
        self.ready.set()
        while not self.stop_flag.is_set() and time.monotonic() - start < self.duration:
            now = time.monotonic()
            rlist: list[Any] = [self.wake_fd]
            wlist: list[Any] = []
            wait = self.period
            for s in self.ips.values():
                if not s.down and s.last_ok is not None and now - s.last_ok >= self.stall:
                    s.down = True
                    self.emit("probe", "probe.tcp", None, now, ip=s.ip, answered=False,
                              last_prev_t=s.last_ok)
                for c in s.conns:
                    self._tick(c, now)
                    if c.sock is None:
                        continue
                    if c.connecting_since is not None:
                        wlist.append(c.sock)
                    else:
                        rlist.append(c.sock)
            rd, wr, _ = select.select(rlist, wlist, [], wait)
            t = time.monotonic()
            by_sock = {c.sock: (s, c) for s in self.ips.values() for c in s.conns if c.sock}
            for sock in wr:
                s, c = by_sock[sock]
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._drop(c, "refused" if err == errno.ECONNREFUSED else "timeout", t,
                               errno.errorcode.get(err))
                    c.next_send = t + self.period
                else:
                    c.connecting_since = None
                    c.next_send = t
                    self._emit_conn(c, "up", t)
            for sock in rd:
                if sock == self.wake_fd or sock not in by_sock:
                    continue
                s, c = by_sock[sock]
                try:
                    data = sock.recv(4096)
                except OSError as e:
                    self._drop(c, "reset" if e.errno == errno.ECONNRESET else "timeout", t,
                               errno.errorcode.get(e.errno or 0))
                    continue
                if not data:
                    self._drop(c, "closed", t)
                    continue
                c.buf += data
                if b"\n" in c.buf:
                    c.buf = c.buf.rsplit(b"\n", 1)[1]
                    if c.stalled:
                        self._emit_conn(c, "answering", t)
                    c.sent_at, c.stalled, c.next_send = None, False, t + self.period
                    self._answered(s, t)

    def _tick(self, c: _Conn, now: float) -> None:
        """Reconnect, abandon a slow connect, send the next request, note a stall."""
        if c.sock is None:
            if now >= c.next_send:
                self._connect(c, now)
            return
        if c.connecting_since is not None:
            if now - c.connecting_since >= self.connect_timeout:
                c.sock.close()
                c.sock, c.connecting_since = None, None
                self._connect(c, now)
            return
        if c.idle:
            return
        if c.sent_at is None and now >= c.next_send:
            try:
                c.sock.send(b"req\n")
            except OSError as e:
                self._drop(c, "reset", now, errno.errorcode.get(e.errno or 0))
                return
            c.sent_at = now
        elif c.sent_at is not None and not c.stalled and now - c.sent_at >= self.stall:
            c.stalled = True
            self._emit_conn(c, "stalled", now)
