"""The leader's culprit counts and a node's own ban (harness.failover.banning),
against ctdbd 4.17's rules: a failed takeover run blames the node with most
failed steps by the number of nodes; twice the number of nodes bans it for
RecoveryBanPeriod; old credits are forgiven after RecoveryGracePeriod."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

from harness.ctdb import NodeConfig, NodeFlags, PublicAddress
from harness.failover import control
from harness.failover.banning import Banning
from harness.failover.ipowner import before_interface
from harness.failover.state import NodeState


def _state(**tunables: int) -> NodeState:
    st = NodeState(NodeConfig(
        directory=Path("/nonexistent/node0"), pnn=0,
        nodes=tuple(ipaddress.ip_address(f"198.18.0.{i}") for i in (1, 2, 3)),
        public_addresses=(PublicAddress(ipaddress.ip_interface("203.0.113.201/24"),
                                        ("eth1",)),)))
    for name, value in tunables.items():
        st.tun.setvar(name, str(value))
    st.flags = NodeFlags.NONE
    st.leader = 0
    return st


class Peers:
    """The mesh and IP owner as banning sees them: requests recorded, all answered ok."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, dict[str, Any]]] = []
        self.released = 0

    async def request(self, pnn: int, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.asked.append((pnn, msg))
        return {"type": "done", "ok": True}

    async def release_all(self) -> None:
        self.released += 1


class Lead:
    resigned_until = 0.0

    def __init__(self) -> None:
        self.resigned: list[str] = []

    def resign(self, why: str) -> None:
        self.resigned.append(why)


def _banning(st: NodeState) -> tuple[Banning, Peers, Lead]:
    peers, lead = Peers(), Lead()

    async def set_flag(flag: NodeFlags, on: bool) -> None:
        st.flags = NodeFlags(st.flags | flag) if on else NodeFlags(st.flags & ~flag)

    return Banning(st, peers, lead, peers, set_flag), peers, lead  # type: ignore[arg-type]


def test_two_failed_runs_blaming_one_node_ban_it_for_the_ban_period() -> None:
    st = _state(RecoveryBanPeriod=7)
    b, peers, _ = _banning(st)
    b.blame_run({2: 1})
    asyncio.run(b.ban_misbehaving())
    assert b.culprits[2].count == 3 and peers.asked == []  # 3 < 2 x 3 nodes
    b.blame_run({2: 1})
    asyncio.run(b.ban_misbehaving())
    assert peers.asked == [(2, {"type": "ban", "pnn": 2, "seconds": 7})]
    assert b.culprits == {}  # counted down and, as after ctdbd's recovery, forgiven


def test_the_node_with_most_failed_steps_is_blamed_lowest_pnn_on_a_tie() -> None:
    b, _, _ = _banning(_state())
    b.blame_run({1: 1, 2: 2})
    b.blame_run({2: 1, 1: 1})
    assert {p: c.count for p, c in b.culprits.items()} == {2: 3, 1: 3}


def test_credits_older_than_the_grace_period_are_forgiven() -> None:
    b, peers, _ = _banning(_state(RecoveryGracePeriod=60))
    b.blame_run({2: 1})
    b.culprits[2].last -= 61
    b.blame_run({2: 1})
    asyncio.run(b.ban_misbehaving())
    assert b.culprits[2].count == 3 and peers.asked == []


def test_no_blame_when_bans_are_disabled_or_this_node_is_inactive() -> None:
    b, _, _ = _banning(_state(EnableBans=0))
    b.blame_run({2: 1})
    assert b.culprits == {}
    st = _state()
    st.flags = NodeFlags.STOPPED
    b, _, _ = _banning(st)
    b.blame_run({2: 1})
    assert b.culprits == {}


def test_a_banned_leader_resigns_releases_its_ips_and_is_unbanned_when_the_period_ends(
        ) -> None:
    st = _state()
    b, peers, lead = _banning(st)

    async def go() -> tuple[NodeFlags, NodeFlags]:
        assert await b.set_ban(1)
        during = st.flags
        await asyncio.sleep(1.3)
        return during, st.flags

    during, after = asyncio.run(go())
    assert during & NodeFlags.BANNED and during & NodeFlags.INACTIVE
    assert peers.released == 1 and lead.resigned == ["this node is banned"]
    assert lead.resigned_until >= b.banned_until > 0
    assert not after & NodeFlags.BANNED


class Controlled:
    """A daemon as the control socket sees it, its ban done by a real Banning."""

    def __init__(self) -> None:
        self.state = _state(RecoveryBanPeriod=300)
        self.banning, _, _ = _banning(self.state)

    async def set_ban(self, seconds: int) -> bool:
        return await self.banning.set_ban(seconds)


def _ctl(node: Controlled, *argv: str) -> tuple[int, str, str]:
    async def go() -> tuple[int, str, str]:
        try:
            out = await control.dispatch(node, list(argv))  # type: ignore[arg-type]
        except control.CommandError as e:
            return e.rc, e.out, str(e)
        finally:
            node.banning.stop()
        return 0, out, ""
    return asyncio.run(go())


def test_ctdb_ban_unban_and_nodestatus_answer_as_ctdb_4_17() -> None:
    node = Controlled()
    assert _ctl(node, "ban", "0") == (22, "", "Ban time cannot be zero")
    assert _ctl(node, "unban") == (0, "", "Node 0 is not banned")
    assert _ctl(node, "nodestatus") == (0, "pnn:0 198.18.0.1       OK (THIS NODE)\n", "")
    assert _ctl(node, "ban", "300") == (0, "", "")
    assert node.state.flags & NodeFlags.BANNED
    assert _ctl(node, "ban", "5") == (0, "", "Node 0 is already banned")
    assert _ctl(node, "nodestatus") == (
        int(NodeFlags.BANNED), "pnn:0 198.18.0.1       BANNED|INACTIVE (THIS NODE)\n", "")
    status = _ctl(node, "status")[1]
    # the peers were never connected here: the vnn map holds this node alone
    assert "Generation:INVALID\nSize:1\nhash:0 lmaster:0\nRecovery mode:RECOVERY (1)\n" in status
    assert _ctl(node, "unban") == (0, "", "")
    assert not node.state.flags & NodeFlags.BANNED
    assert "Recovery mode:NORMAL (0)\n" in _ctl(node, "status")[1]


def test_bad_ban_input_is_one_line_and_status_2() -> None:
    node = Controlled()
    rc, _, err = _ctl(node, "ban", "soon")
    assert rc == 2 and err == ("ban: 'soon' is not a number of seconds; give a whole number, "
                               "e.g. ban 300")
    assert _ctl(node, "ban")[0] == 2 and _ctl(node, "unban", "now")[0] == 2


def test_takeip_scripts_split_where_ctdbd_adds_the_address() -> None:
    """Scripts before 10.interface (as the fail-event fault's 01.*) run before
    failoverd adds the address, so a failure there never puts it on the wire."""
    assert [n for n in ("00.ctdb", "01.fail-takeip", "10.interface", "11.routing", "99.hang")
            if before_interface(n)] == ["00.ctdb", "01.fail-takeip"]
