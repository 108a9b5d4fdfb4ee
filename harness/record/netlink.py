"""Netlink listeners: link, IPv4 address and bond changes in one namespace.

Event kinds (source "netlink"; each has ns, the namespace's label, and ifname):
link.admin, link.carrier, link.operstate, link.new, link.del, link.master,
bond.active, bond.slave, addr.add, addr.del (listed with their data in
harness.record). Events are read from raw datagrams by harness.rtnl's fast
decoder, so a flapping link does not make the listener lag.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
import time
from typing import Any

from pyroute2 import IPRSocket
from pyroute2.netlink import rtnl as pyrtnl

from harness import netns
from harness.record.component import RecorderThread
from harness.record.events import Timeline
from harness.rtnl import LinkView, decode_events, link_view

SO_RCVBUFFORCE = 33
NETLINK_RCVBUF = 8 << 20
SELECT_TIMEOUT = 1.0  # a quiet namespace still beats once a second


class NetlinkListener(RecorderThread):
    """Link, IPv4 address and bond changes in one namespace, as netlink reports them.

    The thread enters the namespace (netns.in_netns), opens its event socket
    there, checks the socket's namespace, binds to the groups and only then
    dumps the current state, so nothing between dump and subscription is lost.
    """

    beat_bound = SELECT_TIMEOUT

    def __init__(self, netns_name: str, label: str, node: int | None, timeline: Timeline,
                 stop: threading.Event) -> None:
        super().__init__(f"netlink:{label}", timeline, stop, wake_pipe=True)
        self.netns = netns_name
        self.label = label
        self.node = node
        self.links: dict[int, LinkView] = {}
        self.addrs: dict[tuple[int, str], int] = {}

    def run(self) -> None:
        netns.in_netns(self.netns, self._body)

    def _open(self) -> IPRSocket:
        sock = IPRSocket()
        try:
            fd = sock.socket.fileno()
            got, want = netns.socket_netns_ino(fd), netns.netns_ino(self.netns)
            if got != want or got == netns.host_netns_ino():
                raise netns.NamespaceSafetyError(
                    f"listener socket for {self.netns} is in namespace inode {got}, not {want}")
            with contextlib.suppress(OSError):
                sock.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, NETLINK_RCVBUF)
            sock.bind(groups=pyrtnl.RTMGRP_LINK | pyrtnl.RTMGRP_IPV4_IFADDR)
        except BaseException:
            sock.close()
            raise
        return sock

    def _body(self, route: netns.NsRoute) -> None:
        with self.counting_cpu():
            self._listen(route)

    def _listen(self, route: netns.NsRoute) -> None:
        wake = self.wake_fd
        sock = self._open()
        try:
            self._resync(route, time.monotonic(), initial=True)
            self.ready.set()
            while not self.stop_flag.is_set():
                self.beat()
                rd, _, _ = select.select([sock.socket, wake], [], [], SELECT_TIMEOUT)
                if wake in rd:
                    os.read(wake, 64)
                if sock.socket not in rd:
                    continue
                while True:  # drain every queued datagram, each dated when read
                    t = time.monotonic()
                    try:
                        data = sock.socket.recv(1 << 16, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    except OSError as e:
                        if e.errno != errno.ENOBUFS:
                            raise
                        # the kernel dropped events: say so, start over from a dump
                        self.stats.overruns += 1
                        self.emit("recorder", "recorder.overrun", self.node, t, ns=self.label)
                        sock.close()
                        sock = self._open()
                        self._resync(route, time.monotonic(), initial=False)
                        break
                    try:
                        msgs = decode_events(data)
                        self.stats.messages += len(msgs)
                        for m in msgs:
                            self._handle(m, t)
                    except Exception as e:  # noqa: BLE001 - one bad message must not end it
                        self.stats.errors.append(f"{type(e).__name__}: {e}")
                        self.emit("recorder", "recorder.error", self.node, t, ns=self.label,
                                  error=f"{type(e).__name__}: {e}")
        finally:
            sock.close()

    def _resync(self, route: netns.NsRoute, t: float, initial: bool) -> None:
        """Diff the dumped state against ours (all of it is new at the start)."""
        seen = set()
        for m in route.link("dump"):
            view = link_view(m)
            seen.add(view.index)
            self._link(view.index, view, t, initial)
        for idx in set(self.links) - seen:
            self._dellink(idx, t)
        addrs = {}
        for a in route.addr("dump", family=socket.AF_INET):
            addrs[(a["index"], a.get_attr("IFA_ADDRESS"))] = a["prefixlen"]
        for key in set(self.addrs) - set(addrs):
            self._addr(False, key, self.addrs[key], t)
        for key, plen in addrs.items():
            if key not in self.addrs:
                self._addr(True, key, plen, t, initial=initial)

    def _handle(self, m: tuple[Any, ...], t: float) -> None:
        what = m[0]
        if what == "link":
            self._link(m[1], m[2], t, False)
        elif what == "dellink":
            self._dellink(m[1], t)
        else:
            key = (m[1], m[2])
            new = what == "addr"
            if new != (key in self.addrs):
                self._addr(new, key, m[3], t)

    def _ifname(self, index: int | None) -> str | None:
        v = self.links.get(index) if index is not None else None
        return v.ifname if v else None

    def _e(self, kind: str, t: float, **data: Any) -> None:
        self.emit("netlink", kind, self.node, t, ns=self.label, **data)

    def _link(self, idx: int, new: LinkView, t: float, initial: bool) -> None:
        old = self.links.get(idx)
        self.links[idx] = new
        name = new.ifname
        if old is None:
            if not initial:
                self._e("link.new", t, ifname=name, admin=new.admin, carrier=new.carrier,
                        operstate=new.operstate, link_kind=new.kind)
            return
        if old.admin != new.admin:
            self._e("link.admin", t, ifname=name, up=new.admin)
        if old.carrier != new.carrier:
            self._e("link.carrier", t, ifname=name, up=new.carrier)
        if old.operstate != new.operstate:
            self._e("link.operstate", t, ifname=name, state=new.operstate, prev=old.operstate)
        if old.master != new.master:
            self._e("link.master", t, ifname=name, master=self._ifname(new.master))
        if new.kind == "bond" and old.active_slave != new.active_slave:
            self._e("bond.active", t, ifname=name, slave=self._ifname(new.active_slave),
                    prev=self._ifname(old.active_slave))
        if new.mii_up is not None and old.mii_up != new.mii_up:
            self._e("bond.slave", t, ifname=name, mii_up=new.mii_up,
                    bond=self._ifname(new.master))

    def _dellink(self, idx: int, t: float) -> None:
        old = self.links.pop(idx, None)
        for key in [k for k in self.addrs if k[0] == idx]:
            self._addr(False, key, self.addrs[key], t)
        if old is not None:
            self._e("link.del", t, ifname=old.ifname)

    def _addr(self, add: bool, key: tuple[int, str], plen: int, t: float,
              initial: bool = False) -> None:
        idx, ip = key
        if ip.startswith("127."):
            return  # loopback is noise here
        if add:
            self.addrs[key] = plen
        else:
            self.addrs.pop(key, None)
        extra = {"initial": True} if initial else {}
        self._e("addr.add" if add else "addr.del", t, ip=ip, prefixlen=plen,
                ifname=self._ifname(idx), **extra)

