"""Every fault of the catalogue, applied on a real cluster, seen on the timeline,
and undone cleanly. Bond faults need the bonding driver (a VM here)."""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import pytest
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from harness import builder, netns
from harness.cluster import LinkState
from harness.faults import (
    AdminDown,
    DeleteInterface,
    FaultError,
    Faults,
    Flap,
    HangMonitor,
    Netem,
    OneWayLoss,
    PacketLoss,
    Partition,
    PullCable,
    Triggered,
    all_bond_slaves_lost,
    bond_slave_lost,
    hang_daemon,
    kill_daemon,
    netem_available,
    process_state,
)
from harness.record import Recorder
from harness.runs import proc_start_time
from harness.wait import time_scale

PUBLIC_PLAIN = "eth1"


def eventually(fn, timeout: float = 5.0):
    """Retry fn until it stops raising AssertionError (deadline, 20 ms steps)."""
    return retry(stop=stop_after_delay(timeout), wait=wait_fixed(0.02), reraise=True,
                 retry=retry_if_exception_type(AssertionError))(fn)()


def ping(host, ip, count: int = 1, wait: float = 1, interval: float = 0.2) -> bool:
    r = host.run(["ping", "-n", "-q", "-c", str(count), "-W", str(wait), "-i", str(interval),
                  str(ip)], check=False, timeout=30)
    return r.returncode == 0


def ping_received(host, ip, count: int, interval: float = 0.01) -> int:
    r = host.run(["ping", "-n", "-q", "-c", str(count), "-W", "1", "-i", str(interval),
                  str(ip)], check=False, timeout=60)
    for line in r.stdout.splitlines():
        if "received" in line:
            return int(line.split(",")[1].split()[0])
    raise AssertionError(r.stdout + r.stderr)


def private_ip(cluster, pnn):
    return cluster.nodes[pnn].address().ip


def rx_packets(node, ifname: str) -> int:
    def read(r):
        link = r.link("get", index=r.link_lookup(ifname=ifname)[0])[0]
        return link.get_attr("IFLA_STATS64")["rx_packets"]
    return node.netlink(read)


@pytest.fixture
def rec(cluster, timeline):
    with Recorder(cluster, timeline, switch=True) as r:
        yield r


# -- links --------------------------------------------------------------------------

def test_admin_down_plain_interface(cluster, timeline, rec):
    f = AdminDown(cluster, 1, PUBLIC_PLAIN, timeline)
    with f:
        ev = timeline.wait_for("link.admin", node=1, ifname="eth1", up=False, after=f.apply_event,
                               timeout=5)
        assert f.apply_event["t_after"] - f.apply_event.t < 0.05
        assert ev.t - f.apply_event.t < 0.1  # netlink delivers within ~ms
        timeline.wait_for("link.carrier", node=None, ns="sw", ifname="n1-eth1", up=False,
                          after=f.apply_event, timeout=5)
        assert not cluster.nodes[1].link("eth1").admin_up
    assert f.undo_event is not None and f.undo_event["id"] == f.id
    timeline.wait_for("link.carrier", node=1, ifname="eth1", up=True, after=f.undo_event,
                      timeout=5)
    assert ping(cluster.client(), cluster.nodes[1].address("public").ip)


def test_pulled_cable_is_carrier_loss(cluster, timeline, rec):
    f = PullCable(cluster, 2, PUBLIC_PLAIN, timeline)
    f.apply()
    ev = timeline.wait_for("link.carrier", node=2, ifname="eth1", up=False,
                           after=f.apply_event, timeout=5)
    # between the pull's syscall starting and 0.1 s after it returned (under
    # load the syscall itself was seen taking 138 ms)
    assert f.apply_event.t <= ev.t <= f.apply_event.data["t_after"] + 0.1
    link = cluster.nodes[2].link("eth1")
    assert link.admin_up and not link.carrier  # the node did nothing; its cable went
    assert not ping(cluster.client(), cluster.nodes[2].address("public").ip, wait=0.3)
    f.undo()
    timeline.wait_for("link.carrier", node=2, ifname="eth1", up=True, after=f.undo_event,
                      timeout=5)
    assert ping(cluster.client(), cluster.nodes[2].address("public").ip)
    # the marks pair up and are in order
    marks = timeline.events("fault.*", id=f.id)
    assert [m.kind for m in marks] == ["fault.apply", "fault.undo"]


def test_delete_and_recreate_a_plain_interface(cluster, timeline, rec):
    node = cluster.nodes[1]
    before = node.link("eth1")
    peer_mac = cluster.switch.link("n1-eth1").mac
    addr = node.address("public")
    f = DeleteInterface(cluster, 1, "eth1", timeline)
    with f:
        timeline.wait_for("link.del", node=1, ifname="eth1", after=f.apply_event, timeout=5)
        timeline.wait_for("addr.del", node=1, ip=str(addr.ip), after=f.apply_event, timeout=5)
        timeline.wait_for("link.del", node=None, ns="sw", ifname="n1-eth1",
                          after=f.apply_event, timeout=5)
        assert "eth1" not in node.links()
    timeline.wait_for("link.new", node=1, ifname="eth1", after=f.undo_event.t - 0.1, timeout=5)
    timeline.wait_for("addr.add", node=1, ip=str(addr.ip), after=f.undo_event.t - 0.1,
                      timeout=5)
    after = node.link("eth1")
    assert after.mac == before.mac and cluster.switch.link("n1-eth1").mac == peer_mac
    assert addr in node.addresses("eth1")
    eventually(lambda: node.link("eth1").carrier)
    assert ping(cluster.client(), addr.ip, wait=2)


def _without_index(link: LinkState) -> LinkState:
    """A link's state but its ifindex, which a recreated link gets anew."""
    return dataclasses.replace(link, index=0)


@pytest.mark.parametrize("port", [
    pytest.param("eth1", marks=pytest.mark.cluster(plain=True), id="plain"),
    pytest.param("eth2", marks=[pytest.mark.needs_bonding,
                                pytest.mark.cluster(bond="active-backup", slaves=2)],
                 id="bond-slave"),
])
def test_deleted_veth_port_comes_back_as_the_builder_made_it(cluster, timeline, port):
    """undo() recreates both ends of the veth: up, with their old MACs, the node
    end addressed (plain) or enslaved (bond slave), the switch end a port of its
    network's bridge - the same link states as the builder left."""
    node, sw = cluster.nodes[1], cluster.switch
    peer = builder.switch_port(1, port)
    bridge = sw.link(builder.bridge_name("public"))
    before_node, before_sw = node.link(port), sw.link(peer)
    before_addrs = node.addresses(port)
    assert before_node.admin_up and before_sw.admin_up and before_sw.master == bridge.index
    with DeleteInterface(cluster, 1, port, timeline):
        assert port not in node.links() and peer not in sw.links()
    eventually(lambda: _assert(_without_index(node.link(port)) == _without_index(before_node)))
    eventually(lambda: _assert(_without_index(sw.link(peer)) == _without_index(before_sw)))
    after_node, after_sw = node.link(port), sw.link(peer)
    assert after_node.kind == "veth" and after_node.admin_up and after_node.carrier
    assert after_node.mac == before_node.mac and after_sw.mac == before_sw.mac
    assert after_sw.master == bridge.index and after_sw.admin_up
    assert node.addresses(port) == before_addrs


@pytest.mark.parametrize("public", [
    pytest.param("eth1", marks=pytest.mark.cluster(plain=True), id="plain"),
    pytest.param("bond0", marks=pytest.mark.needs_bonding, id="seed-bond"),
])
def test_public_link_fault_takes_the_public_link_away(cluster, timeline, rec, public):
    """Plain eth1: its cable is pulled; the seed's bond0: its only slave is set
    down inside the node. Either way the public interface loses carrier."""
    f = Faults(cluster, timeline).public_link(2)
    assert isinstance(f, PullCable if public == "eth1" else AdminDown)
    ip = cluster.nodes[2].address("public").ip
    with f:
        timeline.wait_for("link.carrier", node=2, ifname=public, up=False,
                          after=f.apply_event, timeout=5 * SCALE)
        assert not ping(cluster.client(), ip, wait=0.3)
    timeline.wait_for("link.carrier", node=2, ifname=public, up=True, after=f.undo_event,
                      timeout=5 * SCALE)
    assert ping(cluster.client(), ip, wait=2)


# -- nftables in the switch -----------------------------------------------------------

def test_isolate_one_node(cluster, timeline):
    f = Partition.isolate(cluster, 2, timeline=timeline)
    assert f.table.startswith(f"fth_{cluster.run_id}_")
    with f:
        assert f.exists()
        assert not ping(cluster.nodes[0], private_ip(cluster, 2), wait=0.3)
        assert not ping(cluster.nodes[2], private_ip(cluster, 1), wait=0.3)
        assert ping(cluster.nodes[0], private_ip(cluster, 1))
        assert f.dropped() > 0
        # only the private network is cut
        assert ping(cluster.client(), cluster.nodes[2].address("public").ip)
    assert not f.exists()
    assert ping(cluster.nodes[0], private_ip(cluster, 2))
    ev = timeline.first("fault.apply", id=f.id)
    assert ev.node == 2 and ev["groups"] == [[2], [0, 1]]


@pytest.mark.cluster(nodes=4)
def test_split_into_two_groups(cluster, timeline):
    f = Partition(cluster, [[0, 1], [2, 3]], timeline=timeline)
    with f:
        assert ping(cluster.nodes[0], private_ip(cluster, 1))
        assert ping(cluster.nodes[2], private_ip(cluster, 3))
        assert not ping(cluster.nodes[1], private_ip(cluster, 2), wait=0.3)
        assert not ping(cluster.nodes[3], private_ip(cluster, 0), wait=0.3)
        assert all(c > 0 for c in f.counters()[:1])
    assert not f.exists()
    assert ping(cluster.nodes[1], private_ip(cluster, 2))


def test_one_way_loss(cluster, timeline):
    """Frames from node 2 to node 0 are dropped; node 0's frames still reach 2."""
    n0, n2 = cluster.nodes[0], cluster.nodes[2]
    f = OneWayLoss(cluster, src=[2], dst=[0], timeline=timeline)
    with f:
        rx2 = rx_packets(n2, "eth0")
        assert not ping(n0, private_ip(cluster, 2), count=3, wait=0.3, interval=0.1)
        assert rx_packets(n2, "eth0") >= rx2 + 1  # n0's ARP/ICMP arrived at n2
        assert f.dropped() > 0  # n2's answers did not come back
        assert ping(n2, private_ip(cluster, 1))  # n2 -> n1 untouched
    assert not f.exists()
    assert ping(n0, private_ip(cluster, 2))


def test_packet_loss_at_a_rate(cluster, timeline):
    ip = cluster.nodes[1].address("public").ip
    client = cluster.client()
    assert ping(client, ip)
    f = PacketLoss(cluster, 1, PUBLIC_PLAIN, 50, timeline=timeline)
    with f:
        got = ping_received(client, ip, 40)
        # 50% each way: a reply comes back 1 time in 4; none or all of 40 is ~1e-5 / ~1e-24
        assert 0 < got < 40
        assert all(c > 0 for c in f.counters())
    assert not f.exists()
    assert ping_received(client, ip, 10) == 10


@pytest.mark.needs_full_kernel
def test_netem_where_the_kernel_has_it(cluster, timeline):
    if not netem_available(cluster):
        pytest.skip("this kernel has no sch_netem (PacketLoss via nftables covers loss here); "
                    "run it in the VM with `make test-vm`")
    ip = cluster.nodes[1].address("public").ip
    with Netem(cluster, 1, PUBLIC_PLAIN, delay_ms=50, timeline=timeline):
        t0 = time.monotonic()
        assert ping(cluster.client(), ip, wait=2)
        assert time.monotonic() - t0 >= 0.05


def test_nft_tables_only_in_the_switch(cluster, timeline):
    f = Partition.isolate(cluster, 1, timeline=timeline)
    with f:
        for n in cluster.nodes:
            assert f.table not in n.run(["nft", "list", "tables"]).stdout
        assert f.table in cluster.switch.run(["nft", "list", "tables"]).stdout


# -- daemons --------------------------------------------------------------------------

def test_sigstop_hangs_the_daemon_and_sigcont_resumes_it(cluster, standin, timeline):
    pid = standin.daemon_pid(1)
    f = hang_daemon(standin, 1, timeline=timeline)
    with f:
        eventually(lambda: _assert(process_state(pid) == "T"))
        assert f.apply_event["pid"] == pid and f.apply_event["signal"] == "SIGSTOP"
    eventually(lambda: _assert(process_state(pid) == "S"))
    assert f.undo_event["signal"] == "SIGSTOP"  # params name the fault's signal


def _assert(cond: bool) -> None:
    assert cond


def test_sigkill_and_restart(cluster, standin, timeline):
    pid = standin.daemon_pid(0)
    start = proc_start_time(pid)
    f = kill_daemon(standin, 0, restart=True, timeline=timeline)
    f.apply()
    eventually(lambda: _assert(proc_start_time(pid) != start))
    f.undo()
    new = standin.daemon_pid(0)
    assert new != pid and process_state(new) in ("S", "R")
    assert [e.kind for e in timeline.events("fault.*", id=f.id)] == ["fault.apply",
                                                                     "fault.undo"]


def test_restart_and_stop_through_the_backend(cluster, standin, timeline):
    faults = Faults(cluster, timeline, standin)
    pid = standin.daemon_pid(2)
    r = faults.restart_daemon(2).apply()
    assert standin.daemon_pid(2) != pid
    assert r.apply_event.t <= r.t_stopped <= r.apply_event["t_after"]
    s = faults.stop_daemon(2)
    with s:
        assert 2 not in standin.procs
    assert process_state(standin.daemon_pid(2)) in ("S", "R")


def test_daemon_faults_refuse_pids_outside_the_node(cluster, standin, timeline):
    class Liar:
        """Claims node 0's daemon is node 1's process."""

        def __init__(self, real):
            self.cluster, self.real = real.cluster, real

        def daemon_pid(self, pnn):
            return self.real.daemon_pid(1)

    with pytest.raises(FaultError, match="not inside"):
        kill_daemon(Liar(standin), 0, timeline=timeline).apply()
    assert process_state(standin.daemon_pid(1)) in ("S", "R")
    assert timeline.first("fault.error")["phase"] == "apply"


def test_hung_monitor_script(cluster, standin, timeline):
    f = HangMonitor(standin, 1, seconds=300, timeline=timeline)
    node = cluster.nodes[1]
    with f:
        assert f.path.exists() and os.access(f.path, os.X_OK)
        assert f.path.name == "99.hang.script"
        # other events pass straight through
        assert node.run([str(f.path), "startup"], timeout=5).returncode == 0
        hung = node.spawn([str(f.path), "monitor"], "hung monitor run")
        eventually(lambda: _assert(len(f.invocations()) == 1))
        pid, _ = f.invocations()[0]
        assert pid == hung.pid and process_state(pid) == "S"
    assert not f.path.exists()
    assert hung.popen.wait(5) == -signal.SIGKILL


# -- time-shaped faults --------------------------------------------------------------------

def test_flapping_a_cable(cluster, timeline, rec):
    inner = PullCable(cluster, 1, PUBLIC_PLAIN)
    f = Flap(inner, period=0.1, count=4, timeline=timeline)
    f.apply()
    assert f.wait(5)
    f.undo()
    # the last plug's carrier event may still be on its way
    timeline.wait_for("link.carrier", node=1, ifname="eth1", up=True,
                      after=timeline.last("fault.undo", id=inner.id), timeout=5)
    downs = timeline.events("link.carrier", node=1, ifname="eth1", up=False)
    ups = timeline.events("link.carrier", node=1, ifname="eth1", up=True)
    assert len(downs) == 4 and len(ups) == 4
    applies = timeline.events("fault.apply", id=inner.id)
    assert len(applies) == 4
    # each cable pull lands on its cycle's grid point (never early; late only by load)
    t0 = f.t_applied[0]
    late = [a.t - (t0 + i * 0.1) for i, a in enumerate(applies)]
    assert all(0 <= x < 0.1 for x in late), late
    assert cluster.nodes[1].carrier("eth1")


def test_flapping_stops_early_and_leaves_the_link_up(cluster, timeline, rec):
    inner = AdminDown(cluster, 2, PUBLIC_PLAIN)
    f = Flap(inner, period=0.2, count=1000, timeline=timeline)
    with f:
        timeline.wait_for("link.admin", node=2, up=False, after=f.apply_event, timeout=5)
    assert not inner.applied and f.cycles < 1000
    assert cluster.nodes[2].link("eth1").admin_up


def test_triggered_fault_hits_its_offset(cluster, timeline, rec):
    """Pull node 2's cable 50 ms after node 1's carrier loss is seen."""
    trig = Triggered(PullCable(cluster, 2, PUBLIC_PLAIN), timeline, "link.carrier", node=1,
                     up=False, offset=0.05)
    first = PullCable(cluster, 1, PUBLIC_PLAIN, timeline)
    with trig, first:
        assert trig.wait_fired(5)
        ev = timeline.wait_for("fault.trigger", id=trig.id, after=first.apply_event,
                               timeout=5)
        seen = timeline.first("link.carrier", node=1, up=False, after=first.apply_event)
        assert ev["trigger_seq"] == seen.seq
        assert ev.t - seen.t >= 0.05 and ev["lag_ms"] < 50
        timeline.wait_for("link.carrier", node=2, up=False, after=ev, timeout=5)
    assert not trig.inner.applied
    eventually(lambda: _assert(cluster.nodes[2].carrier("eth1")))


@pytest.mark.parametrize("make", [
    lambda c, tl: AdminDown(c, 1, PUBLIC_PLAIN, tl),
    lambda c, tl: Partition.isolate(c, 1, timeline=tl),
], ids=["netlink", "nftables"])
def test_scheduled_apply_acts_on_time(cluster, timeline, make):
    """apply(at=T) prepares first (socket, nft process) and acts at T."""
    f = make(cluster, timeline)
    at = time.monotonic() + 0.3
    f.apply(at=at)
    try:
        assert at <= f.t_applied[0] < at + 0.03, f.t_applied[0] - at
    finally:
        f.undo()


def test_triggered_partition_cancelled_while_waiting_for_its_offset(cluster, timeline):
    inner = Partition.isolate(cluster, 1)
    trig = Triggered(inner, timeline, "note", offset=30)
    trig.apply()
    timeline.note("go")
    eventually(lambda: _assert(trig.trigger is not None))
    t0 = time.monotonic()
    trig.undo()
    assert time.monotonic() - t0 < 5 and not inner.applied and not inner.exists()
    assert timeline.first("fault.error") is None


def test_triggered_fault_disarmed_before_its_event(cluster, timeline):
    inner = AdminDown(cluster, 0, PUBLIC_PLAIN)
    trig = Triggered(inner, timeline, "never.happens", timeout=30)
    t0 = time.monotonic()
    trig.apply()
    trig.undo()
    assert time.monotonic() - t0 < 5 and not trig.fired.is_set() and not inner.applied
    assert [e.kind for e in timeline.events("fault.*")] == ["fault.arm", "fault.disarm"]


def test_catalogue_undo_all(cluster, timeline):
    faults = Faults(cluster, timeline)
    faults.pull_cable(0, PUBLIC_PLAIN).apply()
    faults.isolate(1).apply()
    faults.packet_loss(2, "eth0", 10).apply()
    assert faults.undo_all() == []
    assert all(not f.applied for f in faults.made)
    assert "fth_" not in cluster.switch.run(["nft", "list", "tables"]).stdout
    eventually(lambda: _assert(cluster.nodes[0].carrier(PUBLIC_PLAIN)))


def test_faults_never_touch_the_host(cluster, timeline):
    """All the link faults' netlink sockets are checked to be in the run's namespaces."""
    host = netns.host_netns_ino()
    for ns in [n.netns for n in cluster.nodes] + [cluster.plan.switch]:
        assert netns.netns_ino(ns) != host
    with pytest.raises(FaultError):
        AdminDown(cluster, 0, "no-such-if", timeline).apply()


# -- bonds (VM only here) ------------------------------------------------------------------
# In the emulated VM everything is slower; the runner exports the factor.
SCALE = time_scale()


@pytest.mark.needs_bonding
@pytest.mark.cluster(bond="active-backup", slaves=2)
def test_one_bond_slave_lost_switches_the_active_slave(cluster, timeline, rec):
    node = cluster.nodes[1]
    active = node.bond_state("bond0").active_slave
    f = bond_slave_lost(cluster, 1, "bond0", timeline=timeline)
    assert f.ports == (active,)
    with f:
        ev = timeline.wait_for("bond.active", node=1, ifname="bond0", after=f.apply_event,
                               timeout=5 * SCALE)
        assert ev["prev"] == active and ev["slave"] not in (None, active)
        assert node.bond_state("bond0").carrier
    eventually(lambda: _assert(all(node.bond_state("bond0").slaves.values())),
               5 * SCALE)


@pytest.mark.needs_bonding
@pytest.mark.cluster(bond="active-backup", slaves=2)
def test_all_bond_slaves_lost(cluster, timeline, rec):
    f = all_bond_slaves_lost(cluster, 2, "bond0", timeline=timeline)
    with f:
        timeline.wait_for("link.carrier", node=2, ifname="bond0", up=False,
                          after=f.apply_event, timeout=5 * SCALE)
        assert cluster.nodes[2].bond_state("bond0").active_slave is None
    timeline.wait_for("link.carrier", node=2, ifname="bond0", up=True, after=f.undo_event,
                      timeout=5 * SCALE)


@pytest.mark.needs_bonding
def test_admin_down_of_a_bond_slave(cluster, timeline, rec):
    """The seed's fault: `ip link set eth1 down` under bond0 (one slave)."""
    f = AdminDown(cluster, 2, "eth1", timeline)
    with f:
        timeline.wait_for("link.carrier", node=2, ifname="bond0", up=False,
                          after=f.apply_event, timeout=5 * SCALE)
    timeline.wait_for("link.carrier", node=2, ifname="bond0", up=True, after=f.undo_event,
                      timeout=5 * SCALE)


@pytest.mark.needs_bonding
@pytest.mark.parametrize("ifname", ["eth1", "bond0"])
def test_delete_a_bond_slave_or_the_bond(cluster, timeline, rec, ifname):
    node = cluster.nodes[0]
    with DeleteInterface(cluster, 0, ifname, timeline) as f:
        timeline.wait_for("link.del", node=0, ifname=ifname, after=f.apply_event, timeout=5 * SCALE)
    eventually(lambda: _assert(node.bond_state("bond0").active_slave == "eth1"),
               5 * SCALE)
    assert node.address("public") in node.addresses("bond0")
