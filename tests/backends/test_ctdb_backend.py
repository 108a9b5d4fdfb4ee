"""Samba's real ctdbd 4.17 in every node namespace, in production mode.

What this shows on the real daemon, with bounds derived from the tunables in
force (read back from the running daemon) plus named slacks:
- 3 nodes reach all-OK with every public IP held once in the kernel;
- the `-X` CLI output goes through the shared parser;
- a pulled cable (switch side, so the node loses carrier) makes the node
  UNHEALTHY at its next monitor run, its IP moves, and plugging the cable
  back returns it to OK;
- `ip link set eth1 down` inside a node is healed by 10.interface (it runs
  `ip link set up` when ethtool sees no link) and the node stays OK;
- each daemon runs in its node's network namespace and a private mount
  namespace; the host gets no mounts, and teardown leaves nothing (the
  plugin's leak audit).
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import pytest
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from harness import netns, runs
from harness.backends.ctdb import CtdbBackend
from harness.cluster import Cluster
from harness.ctdb import parse_ifaces
from harness.faults import AdminDown, PullCable
from harness.pytest_plugin import artifacts_dir

pytestmark = [
    pytest.mark.skipif(CtdbBackend.unavailable() is not None,
                       reason=CtdbBackend.unavailable() or ""),
    pytest.mark.cluster(plain=True),
]

T = TypeVar("T")
MONITOR_INTERVAL = 3
# The startup event waits until no recovery happened for RerecoveryTimeout
# + 3 s (4.17 default 10). Only the test marked `ctdb_default_startup` needs
# that default start-up; the others look at the running cluster and start
# with RerecoveryTimeout 1, ~9 s sooner (ready_bound follows the tunable).
FAST_START = {"RerecoveryTimeout": 1}
POLL = 0.1
# After a health change (every node just turned OK when the fixture returns;
# UNHEALTHY <-> OK in the tests) ctdb_monitor.c restarts the monitor gap at
# 5 s, not capped by a smaller MonitorInterval (seen here: 5, 3, 3, ... with
# MonitorInterval=3). So the gap in force is at most max(5, MonitorInterval).
HEALTH_CHANGE_GAP = 5
# The monitor run itself (00.ctdb, 10.interface: ethtool, ip and ctdb CLI
# calls; 0.05-0.15 s here; the timer is re-armed only after it), the CLI
# poll that observes the result, and scheduling noise on 2 cores.
SLACK = 2.0
# ctdb.conf `[cluster] leader timeout` (default 5 s; not set by the backend):
# followers start an election after this long without a leader broadcast.
LEADER_TIMEOUT = 5


class NotYet(AssertionError):
    """The condition waited for does not hold yet."""


def wait_for(check: Callable[[], T], timeout: float, what: str) -> tuple[T, float]:
    """Poll check() every POLL s until it returns without NotYet; (result, seconds)."""
    t0 = time.monotonic()

    @retry(stop=stop_after_delay(timeout), wait=wait_fixed(POLL), reraise=True,
           retry=retry_if_exception_type(NotYet))
    def once() -> T:
        return check()
    try:
        result = once()
    except NotYet as e:
        raise AssertionError(f"{what}: not within {timeout:.1f} s: {e}") from None
    return result, time.monotonic() - t0


def ready_bound(b: CtdbBackend) -> float:
    """Start -> converged, from CTDB's own start-up sequence.

    Election: no leader broadcast for `leader timeout` (5 s, ctdb.conf), then
    ElectionTimeout; first recovery; the startup event waits until no
    recovery happened for RerecoveryTimeout + 3 s (ctdb_wait_until_recovered);
    then the first monitor 2 s later, and a takeover run per node turning OK.
    """
    return (LEADER_TIMEOUT + b.tunable("ElectionTimeout") + b.tunable("RerecoveryTimeout") + 3
            + 2 + b.tunable("MonitorInterval") + b.tunable("TakeoverTimeout") + SLACK)


@pytest.fixture
def ctdb(cluster: Cluster, request: pytest.FixtureRequest, timing) -> Iterator[CtdbBackend]:
    """A converged 3-node real-CTDB cluster (MonitorInterval=3, and FAST_START
    unless the test is marked `ctdb_default_startup`); stopped afterwards."""
    tunables = {"MonitorInterval": MONITOR_INTERVAL}
    if request.node.get_closest_marker("ctdb_default_startup") is None:
        tunables.update(FAST_START)
    b = CtdbBackend(cluster, tunables=tunables)
    t0 = time.monotonic()
    try:
        b.start()
        timing("launch (3 ctdbd forked, pids known)", time.monotonic() - t0)
        b.wait_converged(ready_bound(b))
        timing("ready (start -> all OK, every IP once in the kernel)", time.monotonic() - t0)
        # converged() can hold mid-failback (the last node to turn OK has no
        # IP yet); the tests start from the settled one-IP-per-node layout.
        wait_for(lambda: balanced(b), b.tunable("RecoverInterval") + b.tunable("TakeoverTimeout")
                 + SLACK, "one IP per node")
        timing("ready and balanced (one IP per node)", time.monotonic() - t0)
        yield b
    finally:
        t1 = time.monotonic()
        b.stop()
        timing("teardown (ctdb shutdown x3 -> daemons gone)", time.monotonic() - t1)
        dest = artifacts_dir(request)
        if dest is not None:
            b.collect(dest)
        # stop() alone, before the cluster's own teardown, leaves nothing:
        # no ctdbd, eventd, recoverd or lock helper, no lock on the reclock
        left = netns.pids_in_netns([n.netns for n in cluster.nodes])
        assert not left, f"processes left in the node namespaces after stop(): {left}"
        reclock = b.lock_dir / "reclock"
        if reclock.exists():
            ino = reclock.stat().st_ino
            held = [ln for ln in Path("/proc/locks").read_text().splitlines()
                    if re.search(rf"\S+:\S+:{ino}\s", ln + " ")]
            assert not held, f"cluster lock still held after stop(): {held}"


def balanced(b: CtdbBackend) -> None:
    """Every node holds exactly one public IP in the kernel (3 IPs, 3 healthy nodes)."""
    held = b.kernel_holders()
    per_node = sorted(p for pnns in held.values() for p in pnns)
    if per_node != list(range(len(b.cluster.nodes))):
        raise NotYet(f"layout {held}")


def node_flags(b: CtdbBackend, pnn: int, via: int = 0) -> str:
    st = b.status(via)
    return next(n.flags_text for n in st.nodes if n.pnn == pnn)


def log_time(line: str) -> float:
    """Wall-clock time of one ctdbd log line (`2026-...T13:16:20.137594+00:00 host ...`)."""
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def log_lines(b: CtdbBackend, pnn: int, pattern: str, since: float) -> list[tuple[float, str]]:
    out = []
    for line in b.log_path(pnn).read_text(errors="replace").splitlines():
        if re.search(pattern, line):
            t = log_time(line)
            if t >= since:
                out.append((t, line))
    return out


# -- tests -------------------------------------------------------------------


@pytest.mark.ctdb_default_startup
def test_three_nodes_converge_and_cli_parses(ctdb: CtdbBackend, cluster: Cluster) -> None:
    st = ctdb.status(0)
    assert [n.pnn for n in st.nodes] == [0, 1, 2]
    assert all(n.ok for n in st.nodes), [(n.pnn, n.flags_text) for n in st.nodes]
    said = ctdb.ips(1)
    public = {p.address.ip for p in cluster.topology.public_addresses}
    assert set(said) == public
    held = ctdb.kernel_holders()
    assert {ip: [pnn] for ip, pnn in said.items()} == held
    # every node gets one IP with 3 IPs on 3 healthy nodes (LCP2 balance)
    assert sorted(said.values()) == [0, 1, 2]
    ifaces = parse_ifaces(ctdb.ctl(2, "-X", "ifaces"))
    assert [(i.name, i.link_up) for i in ifaces] == [("eth1", True)]
    # tunables from ctdb.tunables are in force; the rest are 4.17 defaults
    assert ctdb.getvar("MonitorInterval", 2) == MONITOR_INTERVAL
    assert ctdb.getvar("TakeoverTimeout", 1) == ctdb.tunable("TakeoverTimeout")


def test_daemons_run_in_production_mode_in_their_own_namespaces(
        ctdb: CtdbBackend, cluster: Cluster) -> None:
    host_mnt = os.stat("/proc/self/ns/mnt").st_ino
    mnts = set()
    for node in cluster.nodes:
        pid = ctdb.daemon_pid(node.pnn)
        assert os.readlink(f"/proc/{pid}/exe") == "/usr/sbin/ctdbd"
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == netns.netns_ino(node.netns)
        mnt = os.stat(f"/proc/{pid}/ns/mnt").st_ino
        assert mnt != host_mnt
        mnts.add(mnt)
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert not any(e.startswith(b"CTDB_TEST_MODE=") for e in env)
        # the node's own files sit at the production paths
        mountinfo = Path(f"/proc/{pid}/mountinfo").read_text()
        for path in ("/etc/ctdb", "/var/lib/ctdb", "/var/log/ctdb", "/run/ctdb", "/run/cluster"):
            assert f" {path} " in mountinfo, path
        assert ctdb.ctl(node.pnn, "pnn").strip() == str(node.pnn)
        assert "CTDB starting on node" in ctdb.log_path(node.pnn).read_text()
    assert len(mnts) == 3, "each daemon has a mount namespace of its own"
    # one leader holds the cluster lock on the file the nodes share
    leaders = {ctdb.ctl(p, "leader").strip() for p in range(3)}
    assert len(leaders) == 1
    # nothing of CTDB is mounted in the host's mount namespace
    host = Path("/proc/self/mountinfo").read_text()
    assert "ctdb" not in host and str(cluster.workdir) not in host
    assert not os.path.exists("/run/ctdb") or not os.listdir("/run/ctdb")


def test_pulled_cable_unhealthy_then_ip_moves_then_back_ok(
        ctdb: CtdbBackend, cluster: Cluster, timing) -> None:
    victim = 1
    mon = ctdb.getvar("MonitorInterval", victim)
    recover = ctdb.getvar("RecoverInterval", 0)
    takeover = ctdb.getvar("TakeoverTimeout", 0)
    ips_before = ctdb.ips(0)
    moved = [ip for ip, pnn in ips_before.items() if pnn == victim]
    assert moved, f"node {victim} holds no IP before the fault: {ips_before}"

    wall0 = time.time()
    cable = PullCable(cluster, victim, "eth1").apply()

    # Detection waits for the node's next monitor run: at most the gap in force.
    gap = max(HEALTH_CHANGE_GAP, mon)

    def unhealthy() -> None:
        flags = node_flags(ctdb, victim)
        if "UNHEALTHY" not in flags:
            raise NotYet(f"node {victim} is {flags}")
    _, detect = wait_for(unhealthy, gap + SLACK, "UNHEALTHY after pull")
    timing("pulled cable -> UNHEALTHY (ctdb status, 0.1 s polls)", detect)

    # Takeover: the leader's recovery daemon acts within RecoverInterval; the
    # run (release everywhere, then take) is bounded by TakeoverTimeout.
    t_unhealthy = time.monotonic()

    def ips_moved() -> dict[ipaddress.IPv4Address, list[int]]:
        held = ctdb.kernel_holders()
        for ip in moved:
            if len(held[ip]) != 1 or held[ip][0] == victim:
                raise NotYet(f"{ip} held by {held[ip]}")
        return held
    held, move = wait_for(ips_moved, recover + takeover + SLACK, "IP moved off the node")
    timing("UNHEALTHY -> IP on another node in the kernel", move)
    timing("pulled cable -> IP moved (end to end)", time.monotonic() - t_unhealthy + detect)
    assert all(len(p) == 1 for p in held.values()), held
    assert all(victim not in p for p in held.values()), "an UNHEALTHY node gives up all IPs"

    # 10.interface recorded the link as down (`ctdb setifacelink eth1 down`)
    ifaces = parse_ifaces(ctdb.ctl(victim, "-X", "ifaces"))
    assert [(i.name, i.link_up) for i in ifaces] == [("eth1", False)]

    # CTDB's own account, in the victim's and the new owner's logs
    fails = log_lines(ctdb, victim, r"monitor event failed", wall0)
    assert fails, "no 'monitor event failed' in the victim's log"
    timing("pulled cable -> 'monitor event failed' (victim's log)", fails[0][0] - wall0)
    assert log_lines(ctdb, victim, r"10\.interface: ERROR: No link on the public network "
                                   r"interface eth1", wall0)
    assert log_lines(ctdb, victim, r"Node became UNHEALTHY", wall0)
    new_owner = held[moved[0]][0]
    takes = log_lines(ctdb, new_owner, rf"Takeover of IP {re.escape(str(moved[0]))}/24 "
                                       r"on interface eth1", wall0)
    assert takes, f"no takeover of {moved[0]} in node {new_owner}'s log"
    timing("'monitor event failed' -> 'Takeover of IP' (logs)", takes[0][0] - fails[0][0])

    # Plug back: OK at the next monitor run (the gap restarted at 5 s when
    # the node turned UNHEALTHY), then the leader moves an IP back (failback).
    cable.undo()

    def ok_again() -> None:
        flags = node_flags(ctdb, victim)
        if flags != "OK":
            raise NotYet(f"node {victim} is {flags}")
    _, back = wait_for(ok_again, gap + SLACK, "OK after plug")
    timing("plugged cable -> OK", back)
    ctdb.wait_converged(recover + takeover + SLACK)


def test_admin_down_is_healed_by_10_interface(
        ctdb: CtdbBackend, cluster: Cluster, timing) -> None:
    victim = 2
    node = cluster.nodes[victim]
    mon = ctdb.getvar("MonitorInterval", victim)
    AdminDown(cluster, victim, "eth1").apply()
    t0 = time.monotonic()
    assert not node.link("eth1").admin_up

    seen: list[str] = []

    def healed() -> None:
        seen.append(node_flags(ctdb, victim))
        if not node.link("eth1").admin_up:
            raise NotYet("eth1 is still admin-down")
    _, heal = wait_for(healed, max(HEALTH_CHANGE_GAP, mon) + SLACK, "eth1 brought back up")
    timing("ip link set eth1 down -> 10.interface set it up", heal)
    # and the node stays OK through the next monitor run too
    deadline = t0 + heal + mon + SLACK
    while time.monotonic() < deadline:
        seen.append(node_flags(ctdb, victim))
        time.sleep(POLL)
    assert set(seen) == {"OK"}, f"node {victim} left OK: {sorted(set(seen))}"
    assert node.carrier("eth1")
    ctdb.wait_converged(SLACK)


def test_stop_node_releases_its_ips(ctdb: CtdbBackend, cluster: Cluster, timing) -> None:
    victim = 2
    pid = ctdb.daemon_pid(victim)
    was_leader = int(ctdb.ctl(0, "leader")) == victim
    t0 = time.monotonic()
    ctdb.stop_node(victim)
    timing("stop_node (ctdb shutdown -> daemon gone)", time.monotonic() - t0)
    assert not ctdb.running(victim)
    assert runs.proc_start_time(pid) is None, f"ctdbd pid {pid} still runs"
    # the shutdown event released its addresses; the others take them over
    # (after electing a new leader first if the stopped node was the leader)
    recover = ctdb.getvar("RecoverInterval", 0)
    takeover = ctdb.getvar("TakeoverTimeout", 0)
    bound = recover + takeover + SLACK
    if was_leader:
        bound += LEADER_TIMEOUT + ctdb.getvar("ElectionTimeout", 0)

    def taken_over() -> None:
        held = ctdb.kernel_holders()
        if any(victim in p or len(p) != 1 for p in held.values()):
            raise NotYet(str(held))
    _, t = wait_for(taken_over, bound, "IPs of the stopped node taken over")
    timing(f"stop_node -> its IP held elsewhere (stopped the leader: {was_leader})", t)
    flags = node_flags(ctdb, victim)
    assert "DISCONNECTED" in flags or "STOPPED" in flags, flags


def test_extra_event_script_takes_part_in_monitor(ctdb: CtdbBackend, timing) -> None:
    """event_script_dir(): a script dropped there runs in the next monitor event."""
    victim = 0
    gap = max(HEALTH_CHANGE_GAP, ctdb.getvar("MonitorInterval", victim))
    script = ctdb.event_script_dir(victim) / "99.inject.script"
    script.write_text('#!/bin/sh\n[ "$1" = monitor ] || exit 0\necho "injected failure"\nexit 1\n')
    script.chmod(0o755)
    wall0 = time.time()

    def flags_are(want: str) -> Callable[[], None]:
        def check() -> None:
            flags = node_flags(ctdb, victim, via=1)
            if want not in flags:
                raise NotYet(f"node {victim} is {flags}")
        return check
    _, t = wait_for(flags_are("UNHEALTHY"), gap + SLACK, "UNHEALTHY from the injected script")
    timing("failing 99.inject.script -> UNHEALTHY", t)
    assert log_lines(ctdb, victim, r"99\.inject: injected failure", wall0)
    script.unlink()
    wait_for(flags_are("OK"), gap + SLACK, "OK once the script is gone")
    ctdb.wait_converged(ctdb.tunable("RecoverInterval") + ctdb.tunable("TakeoverTimeout") + SLACK)
