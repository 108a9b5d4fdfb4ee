"""failoverd's tasks survive their own bugs: a supervised loop is restarted
after an unexpected error (logged once with its traceback, counted), and a
leader whose takeover runs keep raising gives up the cluster lock."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path

import pytest

from harness.ctdb import NodeConfig, PublicAddress, TunableError, Tunables
from harness.failover import supervisor, takeover
from harness.failover.ipalloc import Algorithm
from harness.failover.leader import ClusterLock, Leadership
from harness.failover.membership import Membership
from harness.failover.state import NodeState
from harness.failover.supervisor import supervise
from harness.failover.takeover import Takeover


def _state(lock: Path | None = None) -> NodeState:
    return NodeState(NodeConfig(
        directory=Path("/nonexistent/node0"), pnn=0,
        nodes=(ipaddress.ip_address("198.18.0.1"), ipaddress.ip_address("198.18.0.2")),
        public_addresses=(PublicAddress(ipaddress.ip_interface("203.0.113.201/24"),
                                        ("eth1",)),),
        cluster_lock=lock))  # a file: ctdb_mutex_fcntl_helper locks it


def test_a_crashing_loop_is_logged_with_traceback_counted_and_restarted(caplog, monkeypatch):
    monkeypatch.setattr(supervisor, "RESTART_DELAY", 0.01)
    runs = []

    async def loop() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise KeyError("boom")
        await asyncio.sleep(3600)

    async def go() -> NodeState:
        st = _state()
        supervise(st, loop, "demo")
        for _ in range(200):
            if len(runs) >= 3:
                break
            await asyncio.sleep(0.01)
        for t in st.tasks:
            t.cancel()
        await asyncio.gather(*st.tasks, return_exceptions=True)
        return st

    with caplog.at_level(logging.ERROR):
        st = asyncio.run(go())
    assert len(runs) == 3 and st.crashes["demo"] == 2
    crashes = [r for r in caplog.records if "internal error in demo" in r.getMessage()]
    assert len(crashes) == 2 and all(r.exc_info for r in crashes)


def test_leader_whose_takeover_runs_raise_gives_up_the_lock(tmp_path, monkeypatch):
    lock = tmp_path / "cluster.lock"

    async def failing_run(self: Takeover) -> bool:
        raise ValueError("an allocator bug")

    monkeypatch.setattr(Takeover, "takeover_run", failing_run)
    monkeypatch.setattr(takeover.asyncio, "sleep", _fast_sleep)

    async def go() -> tuple[NodeState, Leadership]:
        st = _state(lock)
        mesh = Membership(st, b"", _NoEvents())
        leadership = Leadership(st, mesh)
        t = Takeover(st, mesh, leadership, ips=None,  # type: ignore[arg-type]
                     batched=False)  # runs at once: this test is about failing ones
        assert await leadership.step(0.0)  # takes the lock: leader, run needed
        assert st.is_leader() and leadership.lock.held
        task = asyncio.create_task(t.takeover_loop())
        for _ in range(500):
            if not st.is_leader():
                break
            await _REAL_SLEEP(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

        assert st.leader is None and not leadership.lock.held
        await leadership.lock.release()  # reaped (drop() only signalled it)
        other = ClusterLock(str(lock))  # another node can now take it
        assert await other.take() == "0"
        await other.release()
        # and this node does not grab it straight back
        assert not await leadership.step(leadership.resigned_until - 1)
        assert st.leader is None
        return st, leadership

    asyncio.run(go())


_REAL_SLEEP = asyncio.sleep


async def _fast_sleep(delay: float) -> None:
    await _REAL_SLEEP(min(delay, 0.01))


class _NoEvents:
    async def deliver(self, src: int, msg: dict) -> None:
        pass

    async def connected(self, pnn: int) -> None:
        pass

    def disconnected(self, pnn: int) -> None:
        pass


@pytest.mark.parametrize("value", ["3", "0x10", "4294967295"])
def test_setvar_refuses_an_ip_alloc_algorithm_that_names_none(value):
    with pytest.raises(TunableError, match="between 0 and 2"):
        Tunables().setvar("IPAllocAlgorithm", value)


@pytest.mark.parametrize("value,name", [(0, "DETERMINISTIC"), (1, "NONDETERMINISTIC"),
                                        (2, "LCP2"), (3, "LCP2"), (2**32 - 1, "LCP2")])
def test_algorithm_is_read_as_ctdbd_reads_it(value, name):
    assert Algorithm.from_tunable(value).name == name
