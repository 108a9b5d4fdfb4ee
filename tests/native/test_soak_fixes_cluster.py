"""The native daemon's chaos-soak fixes (issue 14, item 5) on a real cluster,
where the bug needs the kernel: three failoverd in namespaces, the recorder
and the invariant check on one timeline.

The cheap variant of each fix's test runs in make test
(tests/unit/test_mesh_soak_fixes.py, over loopback TCP); these replay the
soak's own situation and are marked long.
"""

import time

import pytest

from harness.assertions import Bounds, assert_invariants, expect, expect_none, has_flag
from harness.backends.base import NotConverged
from harness.failover.leader import LEADER_SILENCE
from harness.wait import wait_until

pytestmark = [pytest.mark.backends("native"), pytest.mark.cluster(plain=True)]


def leader_other_than(backend, old: int) -> list[int]:
    """[the leader every node names] if they agree on one that is not `old`,
    else [] (a list: node 0 is a leader too, and wait_until wants truth)."""
    try:
        new = backend.agreed_leader(timeout=0.3)
    except NotConverged:
        return []
    return [new] if new != old else []


@pytest.mark.long
@pytest.mark.tunables(MonitorInterval=3, KeepaliveInterval=1, KeepaliveLimit=3)
def test_leader_woken_from_sigstop_steps_down_without_split_brain(cluster, backend, faults,
                                                                  timeline, recorder,
                                                                  record_property):
    """50de89e: a leader SIGSTOPped past the keepalive bound woke to every peer
    gone at once, ran a takeover on that view and took every IP while the
    others still held theirs. It now gives up the lock; a node that kept
    running leads, and no IP is ever on two nodes."""
    b = Bounds.of(backend)
    public = [str(p.address.ip) for p in cluster.topology.public_addresses]
    old = backend.agreed_leader()
    stall = 2 * b.keepalive_interval + 1  # a gap the daemon counts as standing still
    hung = faults.hang_daemon(old).apply()
    expect(timeline, "flags", node=old, after=hung.apply_event, within=(0, b.keepalive),
           where=has_flag("DISCONNECTED"))
    # its lock helper still holds the cluster lock: no node can lead, so no IP
    # moves (ctdbd behaves the same); held past the stall bound
    expect_none(timeline, "addr.add", after=hung.apply_event, for_s=stall + b.slack)
    hung.undo()
    try:
        # it resigns at once; the others try the lock every LEADER_SILENCE
        # after a failed attempt, then the new leader's first tick
        t_new, (new,) = wait_until(lambda: leader_other_than(backend, old),
                                   LEADER_SILENCE + b.recover_interval + b.slack,
                                   "a node that kept running leads")
        took = f"{t_new - hung.undo_event.t:.2f} s"
        record_property("new leader after SIGCONT", took)
        print(f"node {new} leads {took} after node {old} was woken")
        wait_until(lambda: backend.converged() is None, b.takeover, "converged")
    finally:
        # a split brain is the failure to report first
        recorder.stop()
        assert_invariants(timeline, public, takeover_bound=b.takeover)
    assert "stood still" in backend.log_path(old).read_text()
    assert new != old


def flags_seen_by(backend, observer: int, pnn: int) -> str:
    return backend.status(observer).nodes[pnn].flags_text


@pytest.mark.long
@pytest.mark.tunables(MonitorInterval=3, KeepaliveInterval=1, KeepaliveLimit=2)
def test_flags_sent_into_a_partition_are_not_read_after_it_heals(cluster, backend, faults,
                                                                 timeline, recorder):
    """8c07178: after a partition healed, TCP delivered a `flags` message sent
    into it, and the others took a healthy node's old flags as news - for good,
    since nothing changed after. A node declared DISCONNECTED loses the
    connections it had open to us, so what it sent on them is never read."""
    b = Bounds.of(backend)
    public = [str(p.address.ip) for p in cluster.topology.public_addresses]
    victim = next(p for p in (2, 1, 0) if p != backend.agreed_leader())
    others = [p for p in range(len(cluster.nodes)) if p != victim]
    cut = faults.isolate(victim, network="private").apply()
    backend.ctl(victim, "disable")  # its flags go out into the partition: TCP retransmits them
    t_sent = time.monotonic()
    for p in others:
        expect(timeline, "flags", node=victim, after=cut.apply_event, within=(0, b.keepalive),
               where=lambda e, p=p: has_flag("DISCONNECTED")(e) and e.data["by"] == p)
    wait_until(lambda: all("DISCONNECTED" in flags_seen_by(backend, victim, p) for p in others),
               b.keepalive, f"node {victim} sees the others DISCONNECTED")
    backend.ctl(victim, "enable")  # told to nobody: no peer is connected
    cut.undo()
    t_healed = time.monotonic()
    # it reconnects and greets the others with its flags as they are now
    for p in others:
        expect(timeline, "flags", node=victim, after=cut.undo_event, within=(0, b.keepalive),
               where=lambda e, p=p: e.data["by"] == p and e.data["flags"] == ["OK"])
    # and stays OK past the next retransmission of what the partition held
    # back: TCP's backoff doubles, so it comes within the time already waited
    # (plus the first 200 ms timeout) after the heal
    window = (t_healed - t_sent) + 0.2 + b.slack
    expect_none(timeline, "flags", node=victim, after=cut.undo_event, for_s=window,
                where=lambda e: e.data["by"] != victim and "DISABLED" in e.data["flags"])
    recorder.stop()
    # the isolated node keeps its IPs while the others take them over (ctdbd
    # the same): duplicates there are the partition's, not this test's subject
    assert_invariants(timeline, public, takeover_bound=b.takeover, allow_duplicates_on=[victim])
