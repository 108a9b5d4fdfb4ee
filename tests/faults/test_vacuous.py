"""Checks that cannot pass vacuously: a recorder that died or fell silent
fails the test (RecorderError at the end), its timeline fails the invariant
check, and a fault that could not be undone fails the test too."""

from __future__ import annotations

import threading

import pytest
from tenacity import retry, stop_after_delay, wait_fixed

from harness import lab
from harness.assertions import find_violations
from harness.faults import FaultError
from harness.record import Recorder, RecorderError, Timeline
from harness.record.component import HEARTBEAT_SLACK

IP1 = "203.0.113.201"


class Boom(BaseException):
    """Not an Exception: nothing in the poller catches it, so its thread dies."""


def _dead(rec: Recorder, name: str) -> None:
    @retry(stop=stop_after_delay(5), wait=wait_fixed(0.02), reraise=True)
    def gone() -> None:
        assert not next(c for c in rec.components if c.name == name).running()
    gone()


def test_a_recorder_that_dies_mid_test_fails_it(cluster, standin, timeline):
    calls = {"n": 0}

    def ctl(pnn: int, *args: str) -> str:
        if pnn == 1:
            calls["n"] += 1
            if calls["n"] > 4:  # answers at first (so it starts), then dies
                raise Boom("poller thread killed")
        return standin.ctl(pnn, *args)

    with (pytest.raises(RecorderError, match=r"status:1 died: Boom"),
          Recorder(cluster, timeline, ctl, poll_interval=0.05, netlink=False) as rec):
        _dead(rec, "status:1")
    found = [v.what for v in find_violations(timeline, [IP1], takeover_bound=5.0)]
    assert any("recorder status:1 failed: Boom" in w for w in found), found


def test_a_recorder_that_stalls_mid_test_fails_it(cluster, standin, timeline):
    ctl_timeout = 0.2
    stall = 0.05 + 2 * ctl_timeout + HEARTBEAT_SLACK + 1.0  # its bound + 1 s
    stalled, release = threading.Event(), threading.Event()
    calls = {"n": 0}

    def ctl(pnn: int, *args: str) -> str:
        if pnn == 0:
            calls["n"] += 1
            if calls["n"] == 6:  # a ctl that hangs far past its own timeout
                stalled.set()
                release.wait(stall)
        return standin.ctl(pnn, *args)

    with (pytest.raises(RecorderError, match=r"status:0 missed its heartbeat"),
          Recorder(cluster, timeline, ctl, poll_interval=0.05, netlink=False,
                   ctl_timeout=ctl_timeout)):
        assert stalled.wait(10)

        @retry(stop=stop_after_delay(stall + 5), wait=wait_fixed(0.1), reraise=True)
        def polling_again() -> None:
            assert calls["n"] > 8
        polling_again()
    found = [v.what for v in find_violations(timeline, [IP1], takeover_bound=5.0)]
    assert any("status:0's polls stopped" in w for w in found), found


def test_healthy_recorders_pass_the_heartbeat_check(cluster, standin, timeline):
    with Recorder(cluster, timeline, standin, poll_interval=0.05) as rec:
        @retry(stop=stop_after_delay(5), wait=wait_fixed(0.05), reraise=True)
        def beating() -> None:
            assert len(timeline.events("status.beat")) >= 2 * len(cluster.nodes)
        beating()
    assert rec.problems == []
    assert all(s.beats > 0 for s in rec.stats())
    assert find_violations(timeline, [IP1], takeover_bound=5.0) == []


def test_an_undo_that_fails_fails_the_test(cluster):
    tl = Timeline("undo")
    with (pytest.raises(FaultError, match="could not undo: node 0 cable eth1 pulled"),
          lab.fault_catalogue(cluster, tl, None) as faults):
        cut = faults.pull_cable(0, "eth1").apply()
        # the cable's switch end is gone: plugging it back in cannot work
        cluster.switch.run(["ip", "link", "del", cut.switch_ports[0]])
