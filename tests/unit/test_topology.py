"""Topology model and TOML loading: defaults, variants, one-line errors."""

import dataclasses
import ipaddress
import subprocess
import sys

import pytest

from harness.ctdb import write_public_addresses
from harness.topology import (
    TopologyError,
    default_topology,
    load_topology,
    save_topology,
    topology_to_dict,
)


def test_default_is_the_seed_cluster():
    t = default_topology()
    assert t.nodes == 3
    assert t.private_interface.name == "eth0"
    bond = t.interface("bond0").bond
    assert bond and bond.mode == "active-backup" and bond.miimon == 100
    assert bond.slaves == ("eth1",)
    assert write_public_addresses(t.public_addresses).splitlines() == [
        "203.0.113.201/24 bond0", "203.0.113.202/24 bond0", "203.0.113.203/24 bond0"]
    assert t.node_addresses() == [ipaddress.ip_address(f"198.18.0.{i}") for i in (1, 2, 3)]
    assert not any(n.subnet.overlaps(ipaddress.ip_network("192.0.2.0/24")) for n in t.networks)


def test_plain_variant_replaces_bond_by_its_slave():
    t = default_topology().plain()
    assert [i.name for i in t.interfaces] == ["eth0", "eth1"]
    assert not t.has_bonds
    assert {p.ifaces for p in t.public_addresses} == {("eth1",)}


def test_with_bond_builds_802_3ad_with_two_slaves():
    t = default_topology().plain().with_bond("802.3ad", 2)
    b = t.interface("bond0").bond
    assert b.mode == "802.3ad" and b.slaves == ("eth1", "eth2")
    assert {p.ifaces for p in t.public_addresses} == {("bond0",)}


def test_toml_round_trip(tmp_path):
    f = tmp_path / "t.toml"
    f.write_text("""
nodes = 5
public_addresses = ["198.51.100.50/24 eth1", "198.51.100.51/24 eth1"]
[networks.private]
subnet = "198.18.4.0/24"
[networks.public]
subnet = "198.51.100.0/24"
[interfaces.eth0]
network = "private"
[interfaces.eth1]
network = "public"
""")
    t = load_topology(f)
    assert t.nodes == 5 and t.network("public").subnet == ipaddress.ip_network("198.51.100.0/24")
    assert t.public_addresses[1].line() == "198.51.100.51/24 eth1"


def test_saved_topology_loads_back_equal(tmp_path):
    bonded = default_topology(4).plain().with_bond("802.3ad", 2, miimon=50, downdelay=200)
    for t in (default_topology(), bonded, bonded.plain()):
        save_topology(t, tmp_path / "t.toml", "a comment")
        assert (tmp_path / "t.toml").read_text().startswith("# a comment\nnodes = ")
        assert load_topology(tmp_path / "t.toml") == t
    led = dataclasses.replace(default_topology(), leader_nodes=(0, 2)).validated()
    save_topology(led, tmp_path / "t.toml")
    assert load_topology(tmp_path / "t.toml") == led
    assert [led.leader_capable(p) for p in range(3)] == [True, False, True]
    assert "leader_nodes" not in topology_to_dict(default_topology())  # every node
    assert topology_to_dict(bonded)["interfaces"]["bond0"]["bond"] == {
        "mode": "802.3ad", "miimon": 50, "updelay": 0, "downdelay": 200,
        "slaves": ["eth1", "eth2"]}


@pytest.mark.parametrize("body,expect", [
    ("nodes = 'x'", "nodes: 'x' is not a whole number"),
    ("nodes = 0", "nodes = 0; use 1..200"),
    ("colour = 1", "unknown key 'colour'"),
    ("[networks.private]\nsubnet = '192.0.2.0/25'", "overlaps 192.0.2.0/24"),
    ("[networks.private]\nsubnet = '10.0.0.300/24'", "networks.private.subnet"),
    ("[interfaces.bond0]\nnetwork='public'\nbond={mode='xor'}", "bond.mode 'xor' is not one of"),
    ("public_addresses = ['203.0.113.9 bond0']", "lacks /bits"),
    ("public_addresses = ['203.0.113.9/24 eth7']", "interface 'eth7' is not one of"),
    ("public_addresses = ['203.0.113.2/24 bond0']", "collides with a node or client"),
    ("nodes = [", "not valid TOML"),
    ("leader_nodes = [3]", "leader_nodes = [3]; use distinct pnns in 0..2"),
    ("leader_nodes = [1, 1]", "leader_nodes = [1, 1]; use distinct"),
    ("leader_nodes = 1", "leader_nodes: 1 is not a list of node numbers"),
])
def test_toml_errors_name_file_and_key(tmp_path, body, expect):
    f = tmp_path / "bad.toml"
    f.write_text(body + "\n")
    with pytest.raises(TopologyError) as e:
        load_topology(f)
    msg = str(e.value)
    assert msg.startswith(str(f)) and expect in msg and "\n" not in msg


def test_cli_reports_bad_topology_in_one_line(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("nodes = -1\n")
    r = subprocess.run([sys.executable, "-m", "harness", "topology", str(f)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "nodes = -1" in r.stderr and "Traceback" not in r.stderr
