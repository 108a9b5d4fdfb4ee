"""Partitions with the cluster lock on the network (topology cluster_lock =
"etcd", the lock host with the majority): who takes the lock, how fast the
isolated node's IPs move, and what the cut-off side does with its IPs, on
both implementations through the same helper (ctdb_etcd_lock).

Measured on ctdbd 4.17 (and matched by failoverd): a node keeps the public
IPs it holds when it loses the lock or cannot reach the leader; a leader that
is cut off still holds its lock until its helper's refresh fails, and in
that time it may take every IP itself. So a partition leaves duplicates on
the cut-off side. They are not excused: every node is under the split-brain
check, and each duplicate must be one the case predicts (an IP held on the
cut-off side and by the majority), must start after the cut and end within
the convergence bound after the heal; its length is reported.

Bounds: the majority elects after ctdbd's leader timeout (5 s, failoverd's
LEADER_SILENCE), may lose one round to the cut-off holder's key that lives
lock_ttl more, and pays the helper's start (a Python program, testparm,
`ctdb pnn`: HELPER_START); then a takeover run (the recovery before it, on
ctdbd, is inside Bounds.takeover's slack x2).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from collections.abc import Iterable

import pytest

from harness.assertions import Bounds, expect, expect_none, find_violations, has_flag
from harness.ctdb.cluster_lock import EtcdLockConfig
from harness.failover.leader import LEADER_SILENCE
from harness.lockservice import EtcdService
from harness.record import Timeline
from harness.topology import Topology
from harness.wait import time_scale, wait_until

pytestmark = pytest.mark.skipif(EtcdService.unavailable() is not None,
                                reason=str(EtcdService.unavailable()))

LOCK = EtcdLockConfig(host="")  # the settings both backends write (TTL, refresh, timeout)
# ctdb_etcd_lock's start to its status char (a Python program, testparm,
# `ctdb pnn`, HTTP): 0.8-2.1 s measured on an idle machine, ~4 s at a load of 26
HELPER_START = 4.0
KEEPALIVE = {"KeepaliveInterval": 1, "KeepaliveLimit": 3}


@pytest.fixture
def topology(topology: Topology) -> Topology:
    return dataclasses.replace(topology, cluster_lock="etcd").validated()


@pytest.fixture
def invariants(recorder):
    """Replaces the suite's check (the recorder still runs for every test):
    this module checks every node itself and names the duplicates a
    partition is expected to leave (check_split_brain)."""
    yield


def owned(backend, pnn: int) -> list[str]:
    return sorted(str(ip) for ip, p in backend.ips(0).items() if p == pnn)


def election_bound(b: Bounds) -> float:
    """Cut -> the majority's IPs in place: leader timeout, one lost round
    against the cut-off holder's key (lock_ttl), the helper's start, then a
    recovery and a takeover run (ctdbd) within twice the takeover bound."""
    return (LEADER_SILENCE + LOCK.lock_ttl + HELPER_START) * time_scale() + 2 * b.takeover


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """One public IP held by two or more nodes at once, from t0 to t1."""

    ip: str
    holders: frozenset[int]
    t0: float
    t1: float

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


def duplicates(tl: Timeline, ips: Iterable[str], end: float) -> list[Duplicate]:
    """Every span in which an IP sat on several node namespaces (netlink truth)."""
    out = []
    for ip in ips:
        held: set[int] = set()
        since: tuple[float, frozenset[int]] | None = None
        for e in tl.events(("addr.add", "addr.del"), source="netlink"):
            ns = e.data["ns"]
            if e.data["ip"] != ip or not (ns.startswith("n") and ns[1:].isdigit()):
                continue
            (held.add if e.kind == "addr.add" else held.discard)(int(ns[1:]))
            if len(held) > 1 and since is None:
                since = (e.t, frozenset(held))
            elif len(held) > 1 and since is not None:
                since = (since[0], since[1] | held)
            elif len(held) <= 1 and since is not None:
                out.append(Duplicate(ip, since[1], since[0], e.t))
                since = None
        if since is not None:
            out.append(Duplicate(ip, since[1], since[0], end))
    return out


def check_split_brain(tl: Timeline, backend, ips: list[str], cut_off: set[int], cut_t: float,
                      healed_t: float, settle: float, b: Bounds) -> list[Duplicate]:
    """The invariants on every node; the only duplicates allowed are the
    expected ones: an IP on a cut-off node and elsewhere, begun after the cut,
    over within `settle` s of the heal. Returns them (measured)."""
    end = time.monotonic()
    dups = duplicates(tl, ips, end)
    unexpected = [d for d in dups if not (d.holders & cut_off and d.t0 >= cut_t
                                          and d.t1 <= healed_t + settle)]
    assert not unexpected, (
        f"{backend.name}: split brain beyond the partition's expected duplicates "
        f"(cut-off nodes {sorted(cut_off)}, healed at +{healed_t - cut_t:.2f} s, "
        f"bound +{settle:.1f} s after): "
        + "; ".join(f"{d.ip} on {sorted(d.holders)} from +{d.t0 - cut_t:.2f} s "
                    f"for {d.seconds:.2f} s" for d in unexpected))
    spans = [(d.t0, d.t1) for d in dups]
    rest = [v for v in find_violations(tl, ips, takeover_bound=b.takeover, until=end)
            if not ("split brain" in v.what and any(a <= v.t <= z for a, z in spans))]
    assert not rest, "\n\n".join(v.render(tl) for v in rest[:3])
    return dups


def report(record_property, name: str, value: object) -> None:
    """A number the note quotes, in the JUnit record and on stdout (-s)."""
    record_property(name, value)
    print(f"{name}: {value}")


def heal_and_converge(backend, fault, b: Bounds) -> float:
    fault.undo()
    healed = time.monotonic()
    wait_until(lambda: backend.converged() is None,
               b.keepalive + b.takeover + backend.convergence_timeout(),
               "partition healed, converged")
    return healed


def loss_bound() -> float:
    """Cut -> the cut-off holder's helper exits: a refresh gap, then a request
    that times out four times (urllib3's three retries), each pass of the
    helper's Python loop lagging like its start under load (measured 8.4-8.6 s
    idle on both implementations, 14.1 s at a load of 26)."""
    return (LOCK.lock_refresh + 4 * LOCK.read_timeout + 2 * HELPER_START) * time_scale()


def partition_case(backend, faults, timeline, record_property, cut_off: list[int],
                   groups: list[list[int]] | None = None) -> None:
    """Cut `cut_off` away from the lock's side; the lock side takes over
    their IPs within the election bound; measure what the cut-off nodes did
    with theirs; heal; converge; the split-brain check on every node."""
    b = Bounds.of(backend)
    ips = [str(ip) for ip in backend.ips(0)]
    leader = backend.agreed_leader()
    moved = {ip: p for p in cut_off for ip in owned(backend, p)}
    if groups is None:
        fault = faults.isolate(cut_off[0], network="private").apply()
    else:
        fault = faults.partition(*groups, network="private").apply()
    lock_side = [p for p in range(len(backend.cluster.nodes)) if p not in cut_off]
    cut = fault.apply_event
    bound = election_bound(b)
    for ip, was in moved.items():
        add = expect(timeline, "addr.add", after=cut, within=(0, bound), ip=ip,
                     where=lambda e: e.data["ns"] in {f"n{p}" for p in lock_side})
        report(record_property, f"{backend.name}: {ip} (was on node {was}) up on the lock side "
                                f"after", f"{add.t - cut.t:.2f} s (bound {bound:.1f} s)")
    if leader in cut_off:
        # the cut-off leader keeps its lock until its helper's refresh fails
        # (lock_refresh, then python-etcd's request: read_timeout, retried)
        lost = expect(timeline, "log", node=leader, after=cut, within=(0, loss_bound()),
                      where=lambda e: "Cluster lock helper terminated" in e.data["line"])
        report(record_property, f"{backend.name}: cut-off leader's helper exit after",
               f"{lost.t - cut.t:.2f} s (bound {loss_bound():.1f} s)")
    # let the cut-off side finish what it does alone (its own takeover run
    # once it sees the others DISCONNECTED), then look at it
    wait_until(lambda: time.monotonic() >= cut.t + b.keepalive + b.takeover,
               b.keepalive + b.takeover + 1, "the cut-off side had its chance")
    took = {p: sorted({e.data["ip"] for e in timeline.events("addr.add", since=cut.t)
                       if e.data["ns"] == f"n{p}" and e.data["ip"] in ips})
            for p in cut_off}
    holders = backend.kernel_holders()
    kept = {p: [ip for ip, q in moved.items() if q == p
                and p in holders[ipaddress.ip_address(ip)]] for p in cut_off}
    report(record_property, f"{backend.name}: cut-off nodes kept their own IPs", kept)
    report(record_property, f"{backend.name}: cut-off nodes took IPs while cut off", took)
    healed = heal_and_converge(backend, fault, b)
    settle = b.keepalive + b.takeover + backend.convergence_timeout()
    dups = check_split_brain(timeline, backend, ips, set(cut_off), cut.t, healed, settle, b)
    report(record_property, f"{backend.name}: expected duplicates (cut-off side vs lock side)",
           [f"{d.ip} on {sorted(d.holders)} for {d.seconds:.2f} s" for d in dups])


@pytest.mark.tunables(**KEEPALIVE)
def test_leader_isolated(backend, faults, timeline, record_property):
    """The leader loses the private network (the lock host stays with the two
    others): they elect a leader, take the lock and the old leader's IPs
    within the election bound. The old leader holds its lock until its
    helper's refresh fails, meanwhile takes every IP it can (both
    implementations); those duplicates are named, measured and must end with
    the heal."""
    partition_case(backend, faults, timeline, record_property, [backend.agreed_leader()])


@pytest.mark.long
@pytest.mark.tunables(**KEEPALIVE)
def test_non_leader_isolated(backend, faults, timeline, record_property):
    """A node that is not the leader is cut off: the leader keeps the lock
    and takes the node's IPs; the node itself cannot reach the lock service,
    so it never leads and runs no takeover (it keeps only its own IPs)."""
    leader = backend.agreed_leader()
    victim = next(p for p in (2, 1, 0) if p != leader)
    partition_case(backend, faults, timeline, record_property, [victim])


@pytest.mark.long
@pytest.mark.tunables(**KEEPALIVE)
def test_three_way_partition(backend, faults, timeline, record_property):
    """Every node alone; the lock host is with node 0 (the first of equal
    groups): node 0 alone can lead and takes every IP; nodes 1 and 2 keep
    their own."""
    partition_case(backend, faults, timeline, record_property, [1, 2],
                   groups=[[0], [1], [2]])


@pytest.mark.long
@pytest.mark.tunables(**KEEPALIVE)
def test_lock_service_killed_and_restarted(backend, faults, timeline, record_property):
    """etcd dies: the leader's helper exits within its loss bound and nobody
    can take the lock, so no takeover runs: a pulled cable is NOT failed over
    (the node turns UNHEALTHY, its IPs stay). etcd back: a leader is elected
    and the node's IPs move within the election bound."""
    b = Bounds.of(backend)
    victim = next(p for p in (2, 1, 0) if p != backend.agreed_leader())
    ips = owned(backend, victim)
    kill = faults.kill_lock_service().apply()
    t_kill = kill.apply_event.t
    # ctdbd: "Cluster lock helper terminated"; failoverd logs the same words
    lost = expect(timeline, "log", after=t_kill,
                  within=(0, (LOCK.loss_bound + HELPER_START) * time_scale()),
                  where=lambda e: "Cluster lock helper terminated" in e.data["line"])
    report(record_property, f"{backend.name}: leader's helper exit after etcd died",
           f"{lost.t - t_kill:.2f} s")
    pull = faults.public_link(victim).apply()
    # no takeover for as long as a node would have been found UNHEALTHY and
    # failed over twice (ctdbd, in recovery mode without a leader, does not
    # even run the monitor event: the flag is reported, not asserted)
    quiet = b.detection() + 2 * b.takeover
    expect_none(timeline, "addr.add", after=pull.apply_event, for_s=quiet,
                where=lambda e: e.data["ip"] in ips and e.data["ns"] != f"n{victim}")
    assert set(ips) <= set(owned_in_kernel(backend, victim)), \
        f"{backend.name}: node {victim}'s IPs moved while no node could hold the lock"
    flagged = timeline.events("flags", node=victim, since=pull.apply_event.t,
                              where=has_flag("UNHEALTHY"))
    report(record_property, f"{backend.name}: pulled node seen UNHEALTHY without a lock",
           f"+{flagged[0].t - pull.apply_event.t:.2f} s" if flagged else "never")
    kill.undo()  # returns once etcd answers /health again
    restarted = kill.undo_event.data["t_after"]
    bound = election_bound(b)
    for ip in ips:
        add = expect(timeline, "addr.add", after=restarted, within=(0, bound), ip=ip,
                     where=lambda e: e.data["ns"] != f"n{victim}")
        report(record_property, f"{backend.name}: {ip} moved after etcd came back",
               f"{add.t - restarted:.2f} s (bound {bound:.1f} s)")
    pull.undo()
    wait_until(lambda: backend.converged() is None,
               b.recovery + b.takeover + backend.convergence_timeout(), "plugged, converged")
    # every node under the check; what the case predicts is the pulled node
    # keeping its IPs while UNHEALTHY without a leader, so only that is left out
    rest = [v for v in find_violations(timeline, [str(ip) for ip in backend.ips(0)],
                                       takeover_bound=b.takeover)
            if not (f"on node {victim}" in v.what and "UNHEALTHY" in v.what)
            and not v.what.endswith("after it became UNHEALTHY")]
    assert not rest, "\n\n".join(v.render(tl=timeline) for v in rest[:3])


def owned_in_kernel(backend, pnn: int) -> list[str]:
    return sorted(str(ip) for ip, ps in backend.kernel_holders().items() if pnn in ps)
