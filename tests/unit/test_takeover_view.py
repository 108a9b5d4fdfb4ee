"""A leader puts its takeover run off while a node it is not connected to is
still heard by a node that answered (a healed partition reaches the leader
one node at a time): a run on that partial view handed node 0's IP to node 1
while node 0 still held it (chaos seed 901, rounds 48 and 103: a leader
isolated with its fcntl lock). It waits at most the keepalive bound per node,
and never for a node its peers stopped hearing (hung, cut off)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from pathlib import Path

import pytest

from harness.ctdb import NodeConfig, PublicAddress
from harness.failover.leader import Leadership
from harness.failover.membership import Membership, Message
from harness.failover.state import NodeState
from harness.failover.takeover import Deferred, Takeover


def _leader(batched: bool = True) -> Takeover:
    st = NodeState(NodeConfig(
        directory=Path("/nonexistent/node0"), pnn=0,
        nodes=tuple(ipaddress.ip_address(f"198.18.0.{k}") for k in (1, 2, 3)),
        public_addresses=(PublicAddress(ipaddress.ip_interface("203.0.113.201/24"),
                                        ("eth1",)),)))
    st.leader = 0
    st.peers[1].connected = True
    mesh = Membership(st, b"", None)  # type: ignore[arg-type]  # no peer connects here
    return Takeover(st, mesh, Leadership(st, mesh), ips=None, batched=batched)  # type: ignore[arg-type]


def _bound(t: Takeover) -> float:
    return float(t.state.tun["KeepaliveInterval"] * t.state.tun["KeepaliveLimit"])


def _info(node1_hears: list[int]) -> dict[int, Message]:
    """The `ips` replies of nodes 0 and 1 (only `hears` matters here)."""
    return {0: {"hears": [0, 1]}, 1: {"hears": node1_hears}}


def test_a_node_heard_by_another_but_not_connected_here_puts_the_run_off():
    t = _leader()
    with pytest.raises(Deferred, match=r"node\(s\) 2 alive to node\(s\) 1 but not connected here"):
        t.check_view(_info([0, 1, 2]))


def test_the_wait_for_a_node_ends_after_the_keepalive_bound_and_is_not_repeated():
    t = _leader()
    t.waited_for[2] = time.monotonic() - _bound(t) - 0.1  # first put off one bound ago
    t.check_view(_info([0, 1, 2]))  # a lasting one-way loss: the run goes ahead
    t.check_view(_info([0, 1, 2]))  # and later runs are not put off again
    assert 2 in t.waited_for


def test_a_node_nobody_hears_is_not_waited_for():
    t = _leader()  # node 2 hung or cut off: node 1 stopped hearing it too
    t.check_view(_info([0, 1]))
    assert t.waited_for == {}


def test_once_nobody_hears_the_node_its_wait_is_forgotten():
    t = _leader()
    with pytest.raises(Deferred):
        t.check_view(_info([0, 1, 2]))
    t.check_view(_info([0, 1]))
    assert t.waited_for == {}


def test_a_node_hears_only_peers_that_spoke_within_one_and_a_half_intervals():
    st = _leader().state
    interval = float(st.tun["KeepaliveInterval"])
    st.peers[1].last_rx = time.monotonic() - 0.5 * interval
    assert st.hears() == [0, 1]
    st.peers[1].last_rx = time.monotonic() - 2 * interval  # missed two keepalives
    assert st.hears() == [0]
    st.peers[2].last_rx = time.monotonic()  # heard, but not connected: not counted
    assert st.hears() == [0]


class _PutOff(Takeover):
    async def takeover_run(self) -> bool:
        raise Deferred("node(s) 2 alive to node(s) 1 but not connected here")


@pytest.mark.parametrize("batched", [True, False], ids=["poll", "event"])
def test_a_put_off_run_is_asked_again_and_is_not_a_failure(batched: bool):
    async def go() -> tuple[bool, int]:
        t = _leader(batched)
        t.__class__ = _PutOff
        t.state.takeover_needed.clear()
        await t.one_run()
        return t.state.takeover_needed.is_set(), t.internal_failures
    assert asyncio.run(go()) == (True, 0)
