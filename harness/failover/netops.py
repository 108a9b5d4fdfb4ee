"""The daemon's hands in the kernel: addresses, link state, gratuitous ARP,
and a netlink watcher for the event-driven mode.

Netlink requests block, so every call goes through one dedicated worker
thread that owns one rtnetlink socket (harness.rtnl.RawRtnl) for the
daemon's lifetime. The daemon runs inside its node namespace, so that socket
is the node's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import select
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from harness.rtnl import LinkView, RawRtnl, decode_events, link_events_socket

T = TypeVar("T")
ETH_P_ARP = 0x0806


def refuse_host_namespace() -> None:
    """Exit unless running in a named network namespace (one in /run/netns).

    The daemon adds and removes addresses; in the machine's own namespace that
    would change its network. `ip netns exec NAME` always satisfies this; pid
    1's namespace cannot always be read (it is not, in some containers), so
    it is not what is compared.
    """
    if os.environ.get("FAILOVERD_ALLOW_ANY_NETNS") == "1":
        return
    mine = os.stat("/proc/self/ns/net").st_ino
    named = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir("/run/netns"):
            with contextlib.suppress(OSError):
                named.add(os.stat(entry.path).st_ino)
    if mine not in named:
        raise SystemExit(
            "failoverd: refusing to run in the host's network namespace (not a named "
            "namespace); start it with `ip netns exec NODE failoverd ...`"
        )


class KernelOps:
    """Blocking netlink work, serialised on one thread with one socket."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="netops")
        self._local = threading.local()

    def _rtnl(self) -> RawRtnl:
        """The worker thread's socket, opened on first use."""
        r = getattr(self._local, "rtnl", None)
        if r is None:
            r = self._local.rtnl = RawRtnl()
        return r

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        def shut() -> None:
            r = getattr(self._local, "rtnl", None)
            if r is not None:
                r.close()
            for _, s in getattr(self._local, "arp", {}).values():
                s.close()
        self._pool.submit(shut).result()
        self._pool.shutdown()

    # -- reads (run on the worker) ----------------------------------------------
    def links(self) -> dict[str, dict[str, Any]]:
        return {v.ifname: {"index": v.index, "up": v.admin, "carrier": v.carrier,
                           "mac": v.mac, "master": v.master}
                for v in self._rtnl().links().values()}

    def addresses(self) -> dict[ipaddress.IPv4Address, str]:
        """Every IPv4 address here -> interface name."""
        r = self._rtnl()
        names = {i: v.ifname for i, v in r.links().items()}
        return {ipaddress.IPv4Address(ip): names.get(index, "?") for index, ip, _ in r.ipv4()}

    def _link(self, iface: str) -> LinkView | None:
        return next((v for v in self._rtnl().links().values() if v.ifname == iface), None)

    def _index(self, iface: str) -> int:
        v = self._link(iface)
        if v is None:
            raise OSError(f"no such interface: {iface}")
        return v.index

    # -- LinkProbe for ifcheck (run on the worker) ------------------------------
    def exists(self, iface: str) -> bool:
        return self._link(iface) is not None

    def bonding_text(self, iface: str) -> str | None:
        # /proc/net follows the reading process's network namespace
        try:
            return Path(f"/proc/net/bonding/{iface}").read_text()
        except OSError:
            return None

    def link_detected(self, iface: str) -> bool:
        v = self._link(iface)
        return v is not None and v.carrier

    def set_up(self, iface: str) -> None:
        self._rtnl().set_up(self._index(iface))

    # -- changes (run on the worker) ---------------------------------------------
    def add_address(self, iface: str, addr: ipaddress.IPv4Interface) -> None:
        self._rtnl().add_ipv4(self._index(iface), str(addr.ip), addr.network.prefixlen,
                              str(addr.network.broadcast_address))

    def announce(self, iface: str, ip: ipaddress.IPv4Address) -> bool:
        """One round of gratuitous ARP for ip from iface's MAC (request, then
        reply, broadcast); False if iface has none. The socket is kept per
        interface and reopened when the interface was replaced."""
        v = self._link(iface)
        if v is None or not v.mac:
            return False
        senders: dict[str, tuple[int, socket.socket]] = self._local.__dict__.setdefault(
            "arp", {})
        index, s = senders.get(iface, (-1, None))
        if s is None or index != v.index:
            if s is not None:
                s.close()
            s = arp_sender(iface)
            senders[iface] = (v.index, s)
        request, reply = arp_frames(v.mac, ip)
        s.send(request)
        s.send(reply)
        return True

    def del_address(self, iface: str, addr: ipaddress.IPv4Interface) -> None:
        self._rtnl().del_ipv4(self._index(iface), str(addr.ip), addr.network.prefixlen)


def arp_frames(mac: str, ip: ipaddress.IPv4Address) -> tuple[bytes, bytes]:
    """A gratuitous ARP request and an unsolicited ARP reply for ip at mac."""
    hw = bytes.fromhex(mac.replace(":", ""))
    bcast = b"\xff" * 6
    ipb = ip.packed
    eth = bcast + hw + struct.pack("!H", ETH_P_ARP)
    hdr = struct.pack("!HHBB", 1, 0x0800, 6, 4)
    request = eth + hdr + struct.pack("!H", 1) + hw + ipb + b"\x00" * 6 + ipb
    reply = eth + hdr + struct.pack("!H", 2) + hw + ipb + bcast + ipb
    return request, reply


def arp_sender(iface: str) -> socket.socket:
    """A packet socket that sends whole Ethernet frames on iface and receives nothing.

    Protocol 0: no receive hook is registered, so binding does not wait for an
    RCU grace period (a socket opened for ETH_P_ARP did, in bind and again in
    close: 10-30 ms before and after the first gratuitous ARP of a takeover).
    """
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    try:
        s.bind((iface, 0))
    except OSError:
        s.close()
        raise
    return s


class LinkWatcher:
    """Calls `notify(ifname)` from a thread on every link change (event mode)."""

    def __init__(self, notify: Callable[[str], None]) -> None:
        self._notify = notify
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="linkwatch", daemon=True)

    def start(self, timeout: float = 5.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("netlink link watcher did not start")

    def _run(self) -> None:
        with link_events_socket() as s:
            self._ready.set()
            while not self._stop.is_set():
                if not select.select([s], [], [], 0.5)[0]:
                    continue
                try:
                    events = decode_events(s.recv(1 << 16))
                except OSError as e:
                    if e.errno != errno.ENOBUFS:
                        raise
                    self._notify("")  # events were lost: something changed, look
                    continue
                for ev in events:
                    if ev[0] == "link":
                        self._notify(ev[2].ifname)
                    elif ev[0] == "dellink":
                        self._notify("")

    def stop(self) -> None:
        self._stop.set()
