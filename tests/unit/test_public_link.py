"""public_link_fault picks the seed's "node loses its public link" fault for a
topology without touching the kernel (single-slave bonds and plain links need
no lookup): AdminDown of the bond's slave, or a pulled plain cable."""

from __future__ import annotations

import ipaddress

import pytest

from harness.cluster import Cluster
from harness.faults import AdminDown, FaultError, Faults, PullCable, public_link_fault
from harness.runs import RunState
from harness.topology import Interface, Network, PublicAddress, Topology, default_topology


def unbuilt(top: Topology) -> Cluster:
    """Handles for a topology that is never built (nothing is claimed or created)."""
    return Cluster(top, RunState("unit00"))


def test_seed_bond_is_its_only_slave_admin_down():
    f = public_link_fault(unbuilt(default_topology()), 2)
    assert isinstance(f, AdminDown) and f.ifname == "eth1" and f.node == 2


def test_plain_public_interface_is_a_pulled_cable():
    f = public_link_fault(unbuilt(default_topology().plain()), 2)
    assert isinstance(f, PullCable) and f.ports == ("eth1",) and f.switch_ports == ["n2-eth1"]


def test_several_public_interfaces_are_ambiguous():
    top = Topology(
        networks=(Network("private", ipaddress.IPv4Network("198.18.0.0/24")),
                  Network("public", ipaddress.IPv4Network("203.0.113.0/24")),
                  Network("public2", ipaddress.IPv4Network("198.51.100.0/24"))),
        interfaces=(Interface("eth0", "private"), Interface("eth1", "public"),
                    Interface("eth2", "public2")),
        public_addresses=(
            PublicAddress(ipaddress.IPv4Interface("203.0.113.201/24"), ("eth1",)),
            PublicAddress(ipaddress.IPv4Interface("198.51.100.201/24"), ("eth2",)),
        ),
        source="two-public",
    ).validated()
    with pytest.raises(FaultError, match=r"2 public interfaces \(eth1, eth2\)"):
        public_link_fault(unbuilt(top), 1)


def test_catalogue_keeps_it_for_undo_all():
    faults = Faults(unbuilt(default_topology().plain()))
    f = faults.public_link(1)
    assert faults.made == [f] and f.timeline is None
