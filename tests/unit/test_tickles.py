"""Tickle lists without a cluster: connection parsing, the hand-made TCP
segment, the mesh message's schema, and `gettickles`/`addtickle`/`deltickle`
answered by the control layer in ctdb 4.17's exact output."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct

import pytest

from harness.failover import control, schema
from harness.failover.tcppackets import TH_ACK, Connection, Endpoint, segment
from harness.failover.tickles import Tickles  # noqa: F401 - registers the "tickles" message

IP = ipaddress.IPv4Address
CONN = Connection(Endpoint(IP("203.0.113.254"), 40000), Endpoint(IP("203.0.113.201"), 445))


def test_connection_round_trips_and_bad_text_is_one_clear_error():
    assert Connection.parse(str(CONN)) == CONN
    assert str(CONN) == "203.0.113.254:40000 203.0.113.201:445"
    for bad in ("203.0.113.254", "203.0.113.254:0", "203.0.113.254:70000", "host:445",
                "203.0.113.254:x"):
        with pytest.raises(ValueError):
            Endpoint.parse(bad)


def _sum16(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_tickle_segment_is_a_valid_tcp_ack_with_seq_and_ack_zero():
    pkt = segment(CONN.dst, CONN.src, 0, 0, TH_ACK)
    assert len(pkt) == 40 and pkt[0] == 0x45 and pkt[9] == socket.IPPROTO_TCP
    assert pkt[12:16] == CONN.dst.ip.packed and pkt[16:20] == CONN.src.ip.packed
    sport, dport, seq, ack, off, flags = struct.unpack_from("!HHIIBB", pkt, 20)
    assert (sport, dport, seq, ack, off >> 4, flags) == (445, 40000, 0, 0, 5, TH_ACK)
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_TCP, 20)
    assert _sum16(pseudo + pkt[20:]) == 0xFFFF  # the checksum verifies


def test_tickles_message_is_checked_field_by_field():
    ctx = schema.Context(frozenset({0, 1}), frozenset({"203.0.113.201"}))
    ok = {"type": "tickles", "ip": "203.0.113.201", "conns": [str(CONN)]}
    assert schema.validate(ok, ctx) is ok
    for field, value in (("ip", "203.0.113.9"), ("conns", ["nonsense"]),
                         ("conns", [str(CONN), str(CONN)])):
        with pytest.raises(schema.BadMessage) as e:
            schema.validate({**ok, field: value}, ctx)
        assert e.value.field == field
    one = {"type": "tickle", "ip": "203.0.113.201", "conn": str(CONN), "add": True}
    assert schema.validate(one, ctx) is one
    for field, value in (("conn", "203.0.113.254 203.0.113.201:445"), ("add", 1)):
        with pytest.raises(schema.BadMessage) as e:
            schema.validate({**one, field: value}, ctx)
        assert e.value.field == field


class Node:
    """Just what the control layer reads for tickles (the daemon's own
    Tickles is exercised by the scenario tests on a running cluster)."""

    state = None  # dispatch reads it, the tickle commands do not

    def __init__(self) -> None:
        self.conns: set[Connection] = set()

    def tickle_list(self, ip: ipaddress.IPv4Address) -> list[Connection]:
        return sorted(c for c in self.conns if c.dst.ip == ip)

    async def add_tickle(self, conn: Connection) -> None:
        if str(conn.dst.ip) != "203.0.113.201":
            raise ValueError(f"{conn.dst.ip} is not a public IP of this node")
        self.conns.add(conn)

    async def del_tickle(self, conn: Connection) -> None:
        self.conns.discard(conn)




def run(node: Node, *argv: str) -> str:
    return asyncio.run(control.dispatch(node, list(argv)))  # type: ignore[arg-type]


def test_gettickles_addtickle_deltickle_in_417_format():
    node = Node()
    assert run(node, "addtickle", "203.0.113.254:40000", "203.0.113.201:445") == ""
    run(node, "addtickle", "203.0.113.253:40001", "203.0.113.201:139")
    assert run(node, "gettickles", "203.0.113.201") == (
        "Connections for IP: 203.0.113.201\n"
        "Num connections: 2\n"
        "SRC: 203.0.113.253:40001   DST: 203.0.113.201:139\n"
        "SRC: 203.0.113.254:40000   DST: 203.0.113.201:445\n")
    assert run(node, "-X", "gettickles", "203.0.113.201", "445") == (
        "|Source IP|Port|Destiation IP|Port|\n"
        "|203.0.113.254|40000|203.0.113.201|445|\n")
    run(node, "deltickle", "203.0.113.254:40000", "203.0.113.201:445")
    assert "Num connections: 1\n" in run(node, "gettickles", "203.0.113.201")


@pytest.mark.parametrize("argv, rc, says", [
    (("gettickles",), 2, "usage: gettickles IP [PORT]"),
    (("gettickles", "nowhere"), 1, "Invalid IP address nowhere"),
    (("addtickle", "203.0.113.254:1"), 2, "usage: addtickle SRC-IP:PORT DST-IP:PORT"),
    (("addtickle", "x:1", "203.0.113.201:445"), 1, "Invalid IP address"),
    (("addtickle", "203.0.113.254:1", "203.0.113.9:445"), 1, "Failed to register connection"),
])
def test_bad_tickle_commands_are_one_line(argv, rc, says):
    with pytest.raises(control.CommandError) as e:
        run(Node(), *argv)
    assert e.value.rc == rc and says in str(e.value) and "\n" not in str(e.value)
