"""Link faults on the public interface: the seed's experiment, a pulled cable,
an admin-down healed by the monitor, bond slaves lost, a flapping link.

Each bound is derived from the tunables in force (see harness.assertions.Bounds):
detection = the node's next monitor run (when the implementation says when it
is due) or the longest monitor gap, plus slack; takeover = RecoverInterval
plus slack.
"""

import pytest

from harness.assertions import expect, expect_moved, expect_none, has_flag, is_ok
from harness.record import outages
from harness.seed import SEED_NODE
from harness.wait import wait_until

FAULTY = SEED_NODE  # the node the seed took down
SCENARIO_BOND = "tests/scenarios/files/scenario_bond.toml::bond"  # its first and second steps


def lost_ips(backend, pnn=FAULTY) -> list[str]:
    return sorted(str(ip) for ip, p in backend.ips(0).items() if p == pnn)


def expect_failover(timeline, backend, bounds, fault, due, ips, pnn=FAULTY):
    """UNHEALTHY within the detection bound; each IP added on another node within
    the takeover bound of it (polls lag: the add may even be seen first)."""
    bad = expect(timeline, "flags", node=pnn, after=fault.apply_event,
                 within=(0, bounds.detection(due)), where=has_flag("UNHEALTHY"))
    expect_moved(timeline, ips, off=pnn, after=fault.apply_event, ref=bad,
                 within=bounds.detection(due) + bounds.takeover, takeover=bounds.takeover)
    return bad


def test_pulled_cable_on_plain_interface(cluster, backend, faults, timeline, bounds):
    if cluster.topology.has_bonds:
        pytest.skip("plain-interface scenario")
    ips = lost_ips(backend)
    due = backend.monitor_due(FAULTY)
    fault = faults.pull_cable(FAULTY, "eth1").apply()
    expect(timeline, "link.carrier", node=FAULTY, after=fault.apply_event, within=(0, 0.5),
           up=False)
    bad = expect_failover(timeline, backend, bounds, fault, due, ips)
    # the client reaches each moved IP again: its outage ends within the same bounds
    for ip in ips:
        wait_until(lambda ip=ip: any(o.end for o in outages(timeline, ip, since=fault.apply_event)),
                   bounds.takeover + 2, f"client reaches {ip} again")
        worst = max(o.duration for o in outages(timeline, ip, since=fault.apply_event) if o.end)
        assert worst <= bounds.detection(due) + bounds.takeover + 2.0, f"{ip} outage {worst:.2f} s"
    fault.undo()
    expect(timeline, "flags", node=FAULTY, after=fault.undo_event, within=(0, bounds.recovery),
           where=is_ok)
    assert bad.t > fault.apply_event.t


def test_admin_down_plain_interface_is_healed_and_node_stays_ok(cluster, backend, faults,
                                                                 timeline, bounds):
    if cluster.topology.has_bonds:
        pytest.skip("plain-interface scenario")
    due = backend.monitor_due(FAULTY)
    fault = faults.admin_down(FAULTY, "eth1").apply()
    # 10.interface: no link -> `ip link set eth1 up` -> link detected -> OK
    up = expect(timeline, "link.admin", node=FAULTY, after=fault.apply_event,
                within=(0, bounds.detection(due)), up=True, ifname="eth1")
    # from the fault until one more full gap after the healing: never UNHEALTHY
    expect_none(timeline, "flags", node=FAULTY, after=fault.apply_event,
                for_s=up.t - fault.apply_event.t + bounds.monitor_gap + bounds.slack,
                where=has_flag("UNHEALTHY"))


# In the VM, on the native implementation, the seed test with CTDB's default
# tunables covers this (the same fault on the same bond): it runs there alone.
@pytest.mark.needs_bonding
@pytest.mark.vm_covered_by("tests/seed/test_seed.py::test_seed_bond_slave_down_default_tunables")
def test_seed_bond_slave_admin_down(cluster, backend, faults, timeline, bounds):
    """The seed: `ifconfig eth0 down` on bond0's only slave (here eth1)."""
    ips = lost_ips(backend)
    due = backend.monitor_due(FAULTY)
    fault = faults.admin_down(FAULTY, "eth1").apply()
    expect(timeline, "bond.active", node=FAULTY, after=fault.apply_event,
           within=(0, 1.0 * bounds.scale), slave=None)
    expect_failover(timeline, backend, bounds, fault, due, ips)
    log = backend.log_path(FAULTY).read_text()
    assert "No active slaves for bond device bond0" in log
    assert "monitor event failed - disabling node" in log


# In the VM neither implementation: the check below waits a whole scaled
# monitor gap for nothing to happen, which takes real ctdbd there ~3 min; on
# the native implementation scenario_bond's first step is this test, and its
# 10.interface path, a bond that has an active slave passes, is what every
# node of every ctdbd bond test in the VM shows while the cluster converges.
@pytest.mark.needs_bonding
@pytest.mark.vm_backends("native")
@pytest.mark.vm_covered_by(SCENARIO_BOND)
@pytest.mark.cluster(bond="active-backup", slaves=2)
def test_one_of_two_bond_slaves_lost_node_stays_ok(cluster, backend, faults, timeline, bounds):
    active = cluster.nodes[FAULTY].bond_state("bond0").active_slave
    due = backend.monitor_due(FAULTY)
    fault = faults.bond_slave_lost(FAULTY, "bond0", active).apply()
    switched = expect(timeline, "bond.active", node=FAULTY, after=fault.apply_event,
                      within=(0, 1.0 * bounds.scale),
                      where=lambda e: e.data.get("slave") not in (None, active))
    expect_none(timeline, "flags", node=FAULTY, after=switched,
                for_s=bounds.detection(due) + bounds.monitor_gap, where=has_flag("UNHEALTHY"))


# In the VM neither implementation (make test's time): scenario_bond[native]'s
# second slave lost is this path on the native implementation, and ctdbd's
# bond without an active slave runs there in test_seed_bond_slave_admin_down[ctdb];
# make test-slow's VM run and hosts that bond run it on both.
@pytest.mark.needs_bonding
@pytest.mark.vm_backends("native")
@pytest.mark.vm_covered_by(SCENARIO_BOND)
@pytest.mark.cluster(bond="active-backup", slaves=2)
def test_all_bond_slaves_lost_node_unhealthy(cluster, backend, faults, timeline, bounds):
    ips = lost_ips(backend)
    due = backend.monitor_due(FAULTY)
    fault = faults.all_bond_slaves_lost(FAULTY, "bond0").apply()
    expect_failover(timeline, backend, bounds, fault, due, ips)


@pytest.mark.needs_bonding
@pytest.mark.vm_backends("native")  # as above
@pytest.mark.cluster(bond="802.3ad", slaves=2)
def test_8023ad_all_slaves_down_bond_up_is_unhealthy(cluster, backend, faults, timeline, bounds):
    ips = lost_ips(backend)
    due = backend.monitor_due(FAULTY)
    fault = faults.all_bond_slaves_lost(FAULTY, "bond0").apply()
    expect_failover(timeline, backend, bounds, fault, due, ips)
    assert "No active slaves for 802.ad bond device bond0" in backend.log_path(FAULTY).read_text() \
        or "public network interface bond0 is down" in backend.log_path(FAULTY).read_text()


def test_flapping_link_settles_back_to_ok(cluster, backend, faults, timeline, bounds):
    """A cable flapping faster than the monitor may or may not be noticed; once it
    stops plugged in, the node is OK and the cluster converged within one gap."""
    port = "eth1"
    flap = faults.flap(faults.pull_cable(FAULTY, port), period=0.4, count=8, duty=0.5)
    flap.apply()
    flap.wait()
    ups = timeline.events("link.carrier", node=FAULTY, ifname=port, since=flap.apply_event.t)
    assert sum(1 for e in ups if not e.data["up"]) >= 4, "the flap reached the node"
    wait_until(lambda: backend.converged() is None,
               bounds.recovery + bounds.takeover + bounds.monitor_gap, "converged after flapping")
