"""Poll mode serves takeover requests as ctdb_recoverd does: queued, and all
those pending answered by one run at the end of the recovery loop's pass
(main_loop -> process_ipreallocate_requests); a request that arrives while a
run is under way waits for the next pass. Event mode runs at once."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

from harness.ctdb import NodeConfig, PublicAddress
from harness.failover.leader import Leadership
from harness.failover.membership import Membership
from harness.failover.state import NodeState
from harness.failover.takeover import Takeover


class _Counting(Takeover):
    """A takeover run that only counts, and can be held open."""

    def __init__(self, *a, **kw) -> None:  # noqa: ANN002, ANN003 - Takeover's
        super().__init__(*a, **kw)
        self.runs = 0
        self.hold = asyncio.Event()
        self.hold.set()

    async def takeover_run(self) -> bool:
        self.runs += 1
        await self.hold.wait()
        return True

    async def verify_local_ips(self) -> None:
        pass


def _leader(batched: bool) -> tuple[NodeState, _Counting]:
    st = NodeState(NodeConfig(
        directory=Path("/nonexistent/node0"), pnn=0,
        nodes=(ipaddress.ip_address("198.18.0.1"), ipaddress.ip_address("198.18.0.2")),
        public_addresses=(PublicAddress(ipaddress.ip_interface("203.0.113.201/24"),
                                        ("eth1",)),)))
    st.leader = 0  # leads without a lock file: step() only broadcasts
    mesh = Membership(st, b"", None)  # type: ignore[arg-type] - no peer ever connects here
    t = _Counting(st, mesh, Leadership(st, mesh), ips=None, batched=batched)  # type: ignore[arg-type]
    return st, t


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_requests_during_a_pass_are_served_by_one_run_at_its_end():
    async def go() -> list[int]:
        st, t = _leader(batched=True)
        loop = asyncio.create_task(t.takeover_loop())
        seen = []
        for _ in range(3):  # three requests within one pass
            st.takeover_needed.set()
            await _settle()
        seen.append(t.runs)  # none yet: the pass has not ended
        await t.recovery_pass(0.0)
        await _settle()
        seen.append(t.runs)  # one run for the three
        await t.recovery_pass(1.0)
        await _settle()
        seen.append(t.runs)  # nothing pending: no run
        loop.cancel()
        return seen
    assert asyncio.run(go()) == [0, 1, 1]


def test_a_request_during_a_run_waits_for_the_next_pass():
    async def go() -> list[int]:
        st, t = _leader(batched=True)
        loop = asyncio.create_task(t.takeover_loop())
        st.takeover_needed.set()
        t.hold.clear()
        await t.recovery_pass(0.0)
        await _settle()  # the run is under way and held
        st.takeover_needed.set()  # arrives during it
        await t.recovery_pass(1.0)  # a pass ends during the run: not served yet
        t.hold.set()
        await _settle()
        seen = [t.runs]  # still the first: the new one waits for a pass end after it
        await t.recovery_pass(2.0)
        await _settle()
        seen.append(t.runs)
        loop.cancel()
        return seen
    assert asyncio.run(go()) == [1, 2]


def test_event_mode_runs_at_once():
    async def go() -> int:
        st, t = _leader(batched=False)
        loop = asyncio.create_task(t.takeover_loop())
        st.takeover_needed.set()
        await _settle()
        loop.cancel()
        return t.runs
    assert asyncio.run(go()) == 1
