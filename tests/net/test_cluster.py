"""Building clusters in namespaces: reachability, cables, node handles, cleanup."""

import pytest
from tenacity import retry, stop_after_delay, wait_fixed

from harness import netns, runs
from harness.cluster import Cluster
from harness.faults import AdminDown, PullCable
from harness.netns import NamespaceSafetyError, NsRoute
from harness.topology import default_topology
from harness.wait import time_scale, wait_until


@pytest.mark.parametrize("nodes", [3, 16])
def test_build_and_teardown_leaves_nothing(nodes):
    state = runs.RunState(runs.new_run_id()).claim()
    top = default_topology().plain().resized(nodes)
    with Cluster.create(top, state) as c:
        assert len(state.namespaces()) == nodes + 2  # nodes, switch, one client
        assert c.nodes[-1].addresses("eth0")[0] == top.private.node_address(nodes - 1)
    assert c.leftovers() == []
    state.remove()
    assert not state.dir.exists()


def test_ping_private_and_public(cluster):
    n0 = cluster.nodes[0]
    for peer in cluster.nodes[1:]:
        n0.run(["ping", "-c1", "-W2", str(peer.address().ip)])
        n0.run(["ping", "-c1", "-W2", str(peer.address("public").ip)])
    client = cluster.client("public")
    client.run(["ping", "-c1", "-W2", str(n0.address("public").ip)])


def test_private_and_public_are_separate_segments(cluster):
    client = cluster.client("public")
    r = client.run(["ping", "-c1", "-W1", str(cluster.nodes[0].address().ip)], check=False)
    assert r.returncode != 0, "the client must not reach the private network"


@retry(stop=stop_after_delay(2), wait=wait_fixed(0.01), reraise=True)
def _wait_carrier(node, ifname, want):
    """The kernel reports carrier at once, operstate a little later (linkwatch
    runs it from a work queue, seen late under load): wait for both."""
    state = "UP" if want else "DOWN"
    wait_until(lambda: node.carrier(ifname) is want and node.link(ifname).operstate == state,
               2 * time_scale(), f"{ifname} carrier {want}, operstate {state}")


@pytest.mark.cluster(plain=True)
def test_pulled_cable_is_carrier_loss_inside_the_node(cluster):
    node = cluster.nodes[1]
    assert node.carrier("eth1")
    cable = PullCable(cluster, 1, "eth1").apply()
    _wait_carrier(node, "eth1", False)
    assert node.link("eth1").admin_up
    assert "Link detected: no" in node.run(["ethtool", "eth1"]).stdout
    cable.undo()
    _wait_carrier(node, "eth1", True)
    assert "Link detected: yes" in node.run(["ethtool", "eth1"]).stdout


@pytest.mark.cluster(plain=True)
def test_admin_down_inside_node(cluster):
    node = cluster.nodes[2]
    AdminDown(cluster, 2, "eth1").apply()
    assert not node.link("eth1").admin_up
    node.run(["ip", "link", "set", "eth1", "up"])
    _wait_carrier(node, "eth1", True)


def test_ctdb_sysctls_are_set_in_nodes(cluster):
    out = cluster.nodes[0].run(["sysctl", "-n", "net.ipv4.conf.all.promote_secondaries",
                                "net.ipv4.conf.all.arp_filter"]).stdout.split()
    assert out == ["1", "1"]


def test_node_namespaces_are_enterable_with_ip_netns(cluster):
    names = netns.list_netns(f"fth-{cluster.run_id}-")
    assert cluster.nodes[0].netns in names
    r = cluster.nodes[0].run(["cat", "/sys/class/net/eth0/operstate"])
    assert r.stdout.strip() == "up"  # the namespace's own /sys, not the host's


def test_changes_from_a_socket_in_the_wrong_namespace_are_refused(cluster):
    from pyroute2 import IPRoute
    node_ns = cluster.nodes[0].netns
    with IPRoute() as host_socket, pytest.raises(NamespaceSafetyError, match="refusing"):
        NsRoute(node_ns, host_socket, netns.netns_ino(node_ns))  # a host socket


@pytest.mark.needs_bonding
@pytest.mark.cluster(bond="active-backup", slaves=2, miimon=50)
def test_bond_active_backup_fails_over_between_slaves(cluster):
    node = cluster.nodes[0]
    st = node.bond_state("bond0")
    assert st.active_slave in ("eth1", "eth2") and all(st.slaves.values())
    first = st.active_slave
    AdminDown(cluster, 0, first).apply()

    @retry(stop=stop_after_delay(3), wait=wait_fixed(0.05), reraise=True)
    def switched():
        s = node.bond_state("bond0")
        assert s.active_slave not in (None, first)
    switched()
    text = node.run(["cat", "/proc/net/bonding/bond0"]).stdout
    assert "Bonding Mode: fault-tolerance (active-backup)" in text


def test_large_cluster_pins_private_neighbours_and_every_node_is_reachable():
    """17 nodes and more: the private mesh's ARP entries are permanent (the
    kernel's one ARP table would otherwise overflow its gc_thresh3 for every
    namespace on the machine: harness.builder._pin_private_neighbours); the
    client still resolves and reaches every node's public address."""
    state = runs.RunState(runs.new_run_id()).claim()
    with Cluster.create(default_topology(18).plain(), state) as c:
        out = c.nodes[0].run(["ip", "neigh", "show", "nud", "permanent", "dev", "eth0"]).stdout
        assert len(out.splitlines()) == 17
        assert "198.18.0.18 " in out and "198.18.0.1 " not in out
        client = next(iter(c.clients.values()))
        for pnn in (0, 17):
            ip = f"203.0.113.{pnn + 1}"
            assert client.run(["ping", "-c1", "-W2", ip], check=False).returncode == 0, ip
    assert c.leftovers() == []
    state.remove()
