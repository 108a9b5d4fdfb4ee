"""What a link looks like to the harness, read from rtnetlink in one place.

Two readers produce the same `LinkView`:

* `link_view(msg)` from a message pyroute2 already decoded (dumps: the
  cluster's link and bond queries, a netlink listener's starting state);
* `decode_events(datagram)` from the raw bytes of a multicast datagram, for
  the netlink listeners' event stream. pyroute2 decodes every attribute of a
  message (about 0.35 ms per RTM_NEWLINK here); this reads only the few the
  view needs (about 20x faster), so fast link flapping does not make a
  recorder lag behind.

Both must agree field for field (a test compares them on live messages).
This module sits at the bottom: it imports nothing from the harness, so the
failover daemon can share `IFF_UP` without pulling anything else in.
Layouts: linux/rtnetlink.h, if_link.h, if_addr.h.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Any

IFF_UP = 0x1

RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR = 16, 17, 20, 21
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_CARRIER = \
    1, 3, 10, 16, 18, 33
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
IFLA_BOND_ACTIVE_SLAVE = 2
IFLA_BOND_SLAVE_MII_STATUS = 2
IFA_ADDRESS = 1
BOND_LINK_UP = 0  # IFLA_BOND_SLAVE_MII_STATUS of a slave whose MII reports link

_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTA = struct.Struct("=HH")


@dataclass(slots=True)
class LinkView:
    """One interface as netlink last reported it.

    active_slave is the index of a bond's active slave (bonds only); mii_up
    is a bond slave's MII status (None for a link that is not a bond slave).
    A listener keeps the last one per index and diffs the next against it.
    Not frozen only because building it is on the listener's fast path (a
    frozen dataclass sets each field through object.__setattr__); treat it
    as read-only.
    """

    index: int
    ifname: str
    admin: bool
    carrier: bool
    operstate: str
    master: int | None
    kind: str | None
    active_slave: int | None
    mii_up: bool | None
    mac: str | None


def _linkinfo(msg: Any, key: str) -> Any:
    info = msg.get_attr("IFLA_LINKINFO")
    return info.get_attr(key) if info is not None else None


def link_view(msg: Any) -> LinkView:
    """The view of an RTM_NEWLINK message decoded by pyroute2 (e.g. from a dump)."""
    kind = _linkinfo(msg, "IFLA_INFO_KIND")
    active = None
    if kind == "bond":
        data = _linkinfo(msg, "IFLA_INFO_DATA")
        active = data.get_attr("IFLA_BOND_ACTIVE_SLAVE") if data is not None else None
    mii = None
    sdata = _linkinfo(msg, "IFLA_INFO_SLAVE_DATA")
    if sdata is not None and _linkinfo(msg, "IFLA_INFO_SLAVE_KIND") == "bond":
        status = sdata.get_attr("IFLA_BOND_SLAVE_MII_STATUS")
        mii = None if status is None else status == BOND_LINK_UP
    return LinkView(
        index=msg["index"],
        ifname=msg.get_attr("IFLA_IFNAME"),
        admin=bool(msg["flags"] & IFF_UP),
        carrier=bool(msg.get_attr("IFLA_CARRIER")),
        operstate=msg.get_attr("IFLA_OPERSTATE") or "UNKNOWN",
        master=msg.get_attr("IFLA_MASTER"),
        kind=kind,
        active_slave=active,
        mii_up=mii,
        mac=msg.get_attr("IFLA_ADDRESS"),
    )


# -- the raw decoder ---------------------------------------------------------------

def _attrs(data: bytes | memoryview, off: int, end: int) -> dict[int, memoryview]:
    out = {}
    mv = memoryview(data)
    while off + 4 <= end:
        ln, typ = _RTA.unpack_from(data, off)
        if ln < 4:
            break
        out[typ & 0x3FFF] = mv[off + 4:off + ln]
        off += (ln + 3) & ~3
    return out


def _u32(b: memoryview | None) -> int | None:
    return None if b is None or len(b) < 4 else int.from_bytes(b[:4], sys.byteorder)


def _str(b: memoryview | None) -> str | None:
    return None if b is None else bytes(b).split(b"\0", 1)[0].decode()


def _mac(b: memoryview | None) -> str | None:
    # pyroute2 reads IFLA_ADDRESS as exactly six bytes, so only those count here too
    return None if b is None or len(b) < 6 else b[:6].hex(":")


def _newlink(data: bytes, body: int, end: int, index: int, flags: int) -> LinkView:
    a = _attrs(data, body + _IFINFO.size, end)
    kind = slave_kind = None
    active = mii = None
    li = a.get(IFLA_LINKINFO)
    if li is not None:
        info = _attrs(li, 0, len(li))
        kind = _str(info.get(IFLA_INFO_KIND))
        slave_kind = _str(info.get(IFLA_INFO_SLAVE_KIND))
        if kind == "bond" and IFLA_INFO_DATA in info:
            d = info[IFLA_INFO_DATA]
            active = _u32(_attrs(d, 0, len(d)).get(IFLA_BOND_ACTIVE_SLAVE))
        if slave_kind == "bond" and IFLA_INFO_SLAVE_DATA in info:
            d = info[IFLA_INFO_SLAVE_DATA]
            st = _attrs(d, 0, len(d)).get(IFLA_BOND_SLAVE_MII_STATUS)
            mii = None if st is None else st[0] == BOND_LINK_UP
    op = a.get(IFLA_OPERSTATE)
    car = a.get(IFLA_CARRIER)
    return LinkView(
        index=index,
        ifname=_str(a.get(IFLA_IFNAME)) or f"if{index}",
        admin=bool(flags & IFF_UP),
        carrier=bool(car[0]) if car is not None else False,
        operstate=OPERSTATES[op[0]] if op is not None and op[0] < len(OPERSTATES) else "UNKNOWN",
        master=_u32(a.get(IFLA_MASTER)),
        kind=kind, active_slave=active, mii_up=mii, mac=_mac(a.get(IFLA_ADDRESS)))


def decode_events(data: bytes) -> list[tuple[Any, ...]]:
    """One multicast datagram -> its link and IPv4 address events, in order:
    ("link", index, LinkView) | ("dellink", index) |
    ("addr", index, ip, prefixlen) | ("deladdr", index, ip, prefixlen).

    Tuples rather than objects: this runs once per kernel message, and a
    listener flooded by a flapping link must keep up.
    """
    out: list[tuple[Any, ...]] = []
    off = 0
    while off + 16 <= len(data):
        ln, typ = _NLMSG.unpack_from(data, off)[:2]
        if ln < 16 or off + ln > len(data):
            break
        body = off + 16
        if typ == RTM_NEWLINK:
            index, flags = _IFINFO.unpack_from(data, body)[2:4]
            out.append(("link", index, _newlink(data, body, off + ln, index, flags)))
        elif typ == RTM_DELLINK:
            out.append(("dellink", _IFINFO.unpack_from(data, body)[2]))
        elif typ in (RTM_NEWADDR, RTM_DELADDR):
            fam, plen, _fl, _scope, index = _IFADDR.unpack_from(data, body)
            if fam == socket.AF_INET:
                raw = _attrs(data, body + _IFADDR.size, off + ln).get(IFA_ADDRESS)
                if raw is not None and len(raw) == 4:
                    out.append(("addr" if typ == RTM_NEWADDR else "deladdr", index,
                                socket.inet_ntoa(bytes(raw)), plen))
        off += (ln + 3) & ~3
    return out


# -- requests on a raw socket ----------------------------------------------------------

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_GETLINK, RTM_GETADDR = 18, 22
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
IFA_LOCAL, IFA_BROADCAST = 2, 4
_ERRNO = struct.Struct("=i")


def _rta(typ: int, data: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    return _RTA.pack(4 + len(data), typ) + data + b"\0" * (-len(data) % 4)


class RawRtnl:
    """The failover daemon's rtnetlink: dumps of links and IPv4 addresses, adding
    and removing an IPv4 address, setting a link up - in the calling process's
    namespace, on one raw socket, replies read with `decode_events`.

    Why not pyroute2 (which the harness uses everywhere else): the daemon reads
    its links and addresses on every takeover request, monitor run and status
    poll, and pyroute2 decodes every attribute of every message - 10 to 40 ms a
    dump of a node's few links on a loaded machine, most of an event-mode
    takeover; importing it was also 40 % of the daemon's start-up CPU, which a
    64-node cluster pays 64 times. The requests here are five fixed layouts
    (linux/rtnetlink.h, if_addr.h); a test compares every reply with
    pyroute2's reading of the same kernel state.

    One thread only (the daemon's kernel worker): requests and replies are
    matched by sequence number on a socket that joins no multicast group.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _request(self, typ: int, flags: int, body: bytes) -> list[tuple[Any, ...]]:
        """Send one request; its replies' decoded events (a dump), or [] after
        the kernel's acknowledgement. A kernel error raises OSError(errno)."""
        self.seq += 1
        seq = self.seq
        self.sock.send(_NLMSG.pack(16 + len(body), typ, NLM_F_REQUEST | flags, seq, 0) + body)
        out: list[tuple[Any, ...]] = []
        while True:
            data = self.sock.recv(1 << 20)
            off, done = 0, False
            while off + 16 <= len(data):
                ln, mtyp, _flags, mseq = _NLMSG.unpack_from(data, off)[:4]
                if ln < 16:
                    break
                if mseq == seq and mtyp == NLMSG_DONE:
                    done = True
                elif mseq == seq and mtyp == NLMSG_ERROR:
                    err = -_ERRNO.unpack_from(data, off + 16)[0]
                    if err:
                        raise OSError(err, f"rtnetlink request {typ}: {os.strerror(err)}")
                    done = True  # the acknowledgement
                off += (ln + 3) & ~3
            out += decode_events(data)
            if done:
                return out

    # -- reads -----------------------------------------------------------------------
    def links(self) -> dict[int, LinkView]:
        """Every link, by index."""
        return {e[1]: e[2] for e in self._request(RTM_GETLINK, NLM_F_DUMP,
                                                  _IFINFO.pack(0, 0, 0, 0, 0))
                if e[0] == "link"}

    def ipv4(self) -> list[tuple[int, str, int]]:
        """Every IPv4 address as (link index, address, prefix length)."""
        body = _IFADDR.pack(socket.AF_INET, 0, 0, 0, 0)
        return [(e[1], e[2], e[3]) for e in self._request(RTM_GETADDR, NLM_F_DUMP, body)
                if e[0] == "addr"]

    # -- changes -----------------------------------------------------------------------
    def add_ipv4(self, index: int, ip: str, prefixlen: int, broadcast: str) -> None:
        """`ip addr add IP/PREFIXLEN broadcast B dev INDEX` (EEXIST if it is there)."""
        body = (_IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index)
                + _rta(IFA_LOCAL, socket.inet_aton(ip)) + _rta(IFA_ADDRESS, socket.inet_aton(ip))
                + _rta(IFA_BROADCAST, socket.inet_aton(broadcast)))
        self._request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)

    def del_ipv4(self, index: int, ip: str, prefixlen: int) -> None:
        """`ip addr del IP/PREFIXLEN dev INDEX` (EADDRNOTAVAIL if it is not there)."""
        body = (_IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index)
                + _rta(IFA_LOCAL, socket.inet_aton(ip)) + _rta(IFA_ADDRESS, socket.inet_aton(ip)))
        self._request(RTM_DELADDR, NLM_F_ACK, body)

    def set_up(self, index: int) -> None:
        """`ip link set INDEX up`."""
        self._request(RTM_NEWLINK, NLM_F_ACK, _IFINFO.pack(0, 0, index, IFF_UP, IFF_UP))


def link_events_socket() -> socket.socket:
    """A raw rtnetlink socket of the calling thread's namespace subscribed to link
    changes (read its datagrams with decode_events)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    s.bind((0, RTMGRP_LINK))
    return s
