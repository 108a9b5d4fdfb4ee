"""Cluster-level scenarios: PARTIALLY_ONLINE with two public interfaces,
recovery and failback with NoIPFailback 0 and 1, a private-network partition."""

import ipaddress

import pytest

from harness.assertions import expect, expect_moved, expect_none, has_flag, is_ok
from harness.ctdb import PublicAddress
from harness.seed import SEED_NODE
from harness.topology import Interface, Network, Topology
from harness.wait import wait_until

FAULTY = SEED_NODE  # the node the seed took down


def two_public_interfaces() -> Topology:
    """eth1 on `public` (2 IPs), eth2 on `public2` (1 IP): an interface can fail alone."""
    return Topology(
        networks=(Network("private", ipaddress.IPv4Network("198.18.0.0/24")),
                  Network("public", ipaddress.IPv4Network("203.0.113.0/24")),
                  Network("public2", ipaddress.IPv4Network("198.51.100.0/24"))),
        interfaces=(Interface("eth0", "private"), Interface("eth1", "public"),
                    Interface("eth2", "public2")),
        public_addresses=(
            PublicAddress(ipaddress.IPv4Interface("203.0.113.201/24"), ("eth1",)),
            PublicAddress(ipaddress.IPv4Interface("203.0.113.202/24"), ("eth1",)),
            PublicAddress(ipaddress.IPv4Interface("198.51.100.201/24"), ("eth2",)),
        ),
        source="two_public_interfaces",
    ).validated()


class TestPartiallyOnline:
    @pytest.fixture
    def topology(self):
        return two_public_interfaces()

    @pytest.mark.script_options(CTDB_PARTIALLY_ONLINE_INTERFACES="yes")
    def test_one_interface_down_node_partially_online(self, cluster, backend, faults, timeline,
                                                      bounds):
        due = backend.monitor_due(FAULTY)
        fault = faults.pull_cable(FAULTY, "eth2").apply()
        expect(timeline, "flags", node=FAULTY, after=fault.apply_event,
               within=(0, bounds.detection(due)), where=has_flag("PARTIALLYONLINE"))
        # IPs of eth2 leave the node (no link-up interface for them); it stays healthy
        wait_until(lambda: backend.kernel_holders()[ipaddress.ip_address("198.51.100.201")]
                   not in ([], [FAULTY]), bounds.takeover + bounds.recover_interval,
                   "eth2's IP held by another node")
        expect_none(timeline, "flags", node=FAULTY, after=fault.apply_event,
                    for_s=bounds.detection(due) + bounds.monitor_gap, where=has_flag("UNHEALTHY"))

    def test_one_interface_down_without_option_is_unhealthy(self, cluster, backend, faults,
                                                             timeline, bounds):
        due = backend.monitor_due(FAULTY)
        fault = faults.pull_cable(FAULTY, "eth2").apply()
        expect(timeline, "flags", node=FAULTY, after=fault.apply_event,
               within=(0, bounds.detection(due)), where=has_flag("UNHEALTHY"))
        fault.undo()
        expect(timeline, "flags", node=FAULTY, after=fault.undo_event,
               within=(0, bounds.recovery), where=is_ok)


def owned(backend, pnn):
    return sorted(str(ip) for ip, p in backend.ips(0).items() if p == pnn)


@pytest.mark.parametrize("failback", [0, 1], ids=["NoIPFailback=0", "NoIPFailback=1"])
def test_recovery_and_failback(cluster, backend, faults, timeline, bounds, failback):
    backend.setvar("NoIPFailback", failback)  # on every node, as `onnode all ctdb setvar`
    port = "bond0" if cluster.topology.has_bonds else "eth1"
    ports = cluster.topology.interface(port).ports
    fault = faults.pull_cable(FAULTY, list(ports)).apply()
    expect(timeline, "flags", node=FAULTY, after=fault.apply_event,
           within=(0, bounds.detection()), where=has_flag("UNHEALTHY"))
    wait_until(lambda: not owned(backend, FAULTY), bounds.takeover, "node 2 emptied")
    layout = backend.ips(0)
    fault.undo()
    ok = expect(timeline, "flags", node=FAULTY, after=fault.undo_event,
                within=(0, bounds.recovery), where=is_ok)
    if failback == 0:
        # LCP2 moves an IP onto the node that has none, right after it turns OK
        add = expect(timeline, "addr.add", node=FAULTY, after=fault.undo_event,
                     within=(0, bounds.recovery + bounds.takeover))
        assert add.t - ok.t <= bounds.takeover
    else:
        expect_none(timeline, "addr.add", node=FAULTY, after=ok,
                    for_s=2 * bounds.recover_interval + bounds.slack)
        assert backend.ips(0) == layout and not owned(backend, FAULTY)


@pytest.mark.tunables(KeepaliveInterval=1, KeepaliveLimit=3)
def test_private_network_partition_isolated_node(cluster, backend, faults, timeline, bounds,
                                                 duplicates_allowed_on):
    """Node 2 cut off on the private network. The others see it DISCONNECTED
    within the keepalive bound and take its IPs. The isolated node cannot
    know; what it does with its own IPs is implementation behaviour, so it is
    excused from the split-brain check (a real site needs fencing)."""
    leader = backend.agreed_leader()
    victim = next(p for p in (2, 1, 0) if p != leader)
    duplicates_allowed_on.add(victim)
    ips = owned(backend, victim)
    fault = faults.isolate(victim, network="private").apply()
    others = [p for p in range(len(cluster.nodes)) if p != victim]
    gone = expect(timeline, "flags", node=victim, after=fault.apply_event,
                  within=(0, bounds.keepalive), where=has_flag("DISCONNECTED"))
    assert timeline.events("flags", node=victim, since=fault.apply_event.t,
                           where=lambda e: e.data["by"] in others and "DISCONNECTED" in e["flags"])
    expect_moved(timeline, ips, off=victim, after=fault.apply_event, ref=gone,
                 within=bounds.keepalive + bounds.takeover, takeover=bounds.takeover)
    fault.undo()
    wait_until(lambda: backend.converged() is None,
               bounds.keepalive + bounds.takeover + backend.convergence_timeout(),
               "partition healed, converged")
