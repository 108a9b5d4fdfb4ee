"""Importing a field cluster's /etc/ctdb: topology, tunables, options, mapping, errors."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.ctdb import write_public_addresses
from harness.ctdb_import import (
    CtdbImportError,
    bonds_from_table,
    format_mapping,
    import_ctdb_dir,
    parse_bond_spec,
)
from harness.topology import MAX_NODES, Bond, Interface, Network, load_topology

DATA = Path(__file__).parent / "data" / "etc-ctdb"
FOUR = DATA / "four-nodes"


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def etc(tmp_path: Path, **files: str | bytes) -> Path:
    """A /etc/ctdb copy under tmp_path; keyword = file name ('__' for '/')."""
    d = tmp_path / "etc-ctdb"
    d.mkdir(exist_ok=True)
    for name, body in files.items():
        p = d / name.replace("__", "/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            p.write_bytes(body)
        else:
            p.write_text(body)
    return d


def failure(path: Path, **kw: object) -> str:
    with pytest.raises(CtdbImportError) as e:
        import_ctdb_dir(path, **kw)  # type: ignore[arg-type]
    text = str(e.value)
    assert "\n" not in text
    return text


NODES4 = "10.10.1.11\n10.10.1.12\n10.10.1.13\n10.10.1.14\n"


# -- the samples -----------------------------------------------------------------

def test_four_node_sample():
    got = import_ctdb_dir(FOUR)
    top = got.topology
    assert top.nodes == 4
    assert top.networks == (Network("private", net("198.18.0.0/24")),
                            Network("public", net("198.51.100.0/24")),
                            Network("public2", net("203.0.113.0/24")))
    assert top.interfaces == (Interface("eth0", "private"), Interface("eth1", "public"),
                              Interface("eth2", "public2"))
    # last octets kept; eth2's field addresses are the higher, so it gets the higher range
    assert write_public_addresses(top.public_addresses).splitlines() == [
        "198.51.100.101/24 eth1", "198.51.100.102/24 eth1", "198.51.100.103/24 eth1",
        "203.0.113.101/24 eth2", "203.0.113.102/24 eth2", "203.0.113.103/24 eth2"]
    assert top.source == str(FOUR)
    assert got.tunables == {"KeepaliveInterval": 2, "KeepaliveLimit": 4, "TakeoverTimeout": 5,
                            "MonitorInterval": 10}
    assert got.script_options == {"CTDB_PARTIALLY_ONLINE_INTERFACES": "yes"}
    assert got.cluster_lock == "/clusterfs/.ctdb/reclock"
    assert got.mapping == {
        "10.10.1.11": "198.18.0.1", "10.10.1.12": "198.18.0.2",
        "10.10.1.13": "198.18.0.3", "10.10.1.14": "198.18.0.4",
        "10.20.1.101": "198.51.100.101", "10.20.1.102": "198.51.100.102",
        "10.20.1.103": "198.51.100.103", "10.20.2.101": "203.0.113.101",
        "10.20.2.102": "203.0.113.102", "10.20.2.103": "203.0.113.103",
        "10.20.1.0/24": "198.51.100.0/24", "10.20.2.0/24": "203.0.113.0/24"}
    assert got.warnings == []
    assert got.deleted_nodes == ()


def test_minimal_sample_nodes_only():
    got = import_ctdb_dir(DATA / "minimal")
    assert got.topology.nodes == 2
    assert got.topology.networks == (Network("private", net("198.18.0.0/24")),)
    assert got.topology.interfaces == (Interface("eth0", "private"),)
    assert got.topology.public_addresses == ()
    assert (got.tunables, got.script_options, got.cluster_lock) == ({}, {}, None)
    assert got.mapping == {"10.10.1.11": "198.18.0.1", "10.10.1.12": "198.18.0.2"}
    assert got.warnings == [
        f"{DATA}/minimal/public_addresses: missing; the cluster has no public addresses"]


@pytest.mark.parametrize("sample, message", [
    ("bad-nodes-address",
     "nodes:3: '10.10.1.300' is not an IP address; write one IPv4/IPv6 address per line"),
    ("public-without-mask",
     "public_addresses:2: '10.20.1.102' is not an IP address with /bits; "
     "write e.g. 203.0.113.10/24 or 2001:db8::10/64"),
    ("unknown-tunable",
     "ctdb.tunables:3: unknown tunable 'MonitorIntervall'; `ctdb listvars` "
     "(harness.ctdb.tunables.NAMES) lists the valid names"),
    ("not-utf8",
     "public_addresses:1: not UTF-8 (byte 0xfc); save the file as UTF-8 (or plain ASCII)"),
    ("ipv6-public",
     "public_addresses:2: 2001:db8:20::101/64 is IPv6, and the harness builds IPv4 only; "
     "import a copy without the IPv6 public addresses"),
])
def test_broken_samples_name_file_and_line(sample, message):
    assert failure(DATA / sample) == f"{DATA / sample}/{message}"


# -- nodes -----------------------------------------------------------------------------

def test_deleted_node_in_the_middle_is_kept_and_trailing_one_dropped(tmp_path):
    d = etc(tmp_path, nodes="10.10.1.11\n#10.10.1.12\n\n10.10.1.13\n# gone\n")
    got = import_ctdb_dir(d)
    assert got.topology.nodes == 3
    assert got.deleted_nodes == (1,)
    # pnn 2 keeps its number, so its harness address is host 3
    assert got.mapping == {"10.10.1.11": "198.18.0.1", "10.10.1.13": "198.18.0.3"}
    assert got.warnings == [
        f"{d}/nodes:2: node 1 is deleted; the harness builds it as a live node to keep the "
        "later nodes' pnns (stop its daemon to mimic the field)",
        f"{d}/nodes:5: node 3 is deleted and last; dropped (it shifts no pnn)",
        f"{d}/public_addresses: missing; the cluster has no public addresses",
    ]


def test_ipv6_node_is_refused_at_its_line(tmp_path):
    d = etc(tmp_path, nodes="10.10.1.11\n\n2001:db8::12\n")
    assert failure(d) == (f"{d}/nodes:3: 2001:db8::12 is IPv6, and the harness builds IPv4 "
                          "only; import a copy with the nodes' IPv4 addresses")


def test_more_nodes_than_the_harness_builds(tmp_path):
    d = etc(tmp_path, nodes="".join(f"10.10.{k // 200}.{k % 200 + 1}\n"
                                    for k in range(MAX_NODES + 1)))
    assert failure(d) == (f"{d}/nodes:{MAX_NODES + 1}: {MAX_NODES + 1} nodes, more than the "
                          f"harness's {MAX_NODES}; import a copy that lists at most "
                          f"{MAX_NODES} (pnns are line positions: cut from the end)")


def test_missing_nodes_and_missing_directory(tmp_path):
    d = etc(tmp_path, public_addresses="10.20.1.101/24 eth1\n")
    assert failure(d) == (f"{d}/nodes: missing; copy the field's nodes file (one private "
                          "address a line) into the directory")
    assert failure(tmp_path / "nope") == (
        f"{tmp_path}/nope: not a directory; give the path of a copy of the field's /etc/ctdb")


def test_non_utf8_nodes_names_the_line(tmp_path):
    d = etc(tmp_path, nodes=b"10.10.1.11\n10.10.1.12 \xa0\n")
    assert failure(d) == (f"{d}/nodes:2: not UTF-8 (byte 0xa0); save the file as UTF-8 "
                          "(or plain ASCII)")


# -- public addresses and networks ---------------------------------------------------------

def test_address_on_two_interfaces_keeps_both_and_joins_their_networks(tmp_path):
    d = etc(tmp_path, nodes=NODES4, public_addresses=(
        "10.20.1.101/24 eth1\n10.20.2.101/24 eth2,eth3\n10.20.2.102/24 eth3\n"))
    top = import_ctdb_dir(d).topology
    assert [(i.name, i.network) for i in top.interfaces] == [
        ("eth0", "private"), ("eth1", "public"), ("eth2", "public2"), ("eth3", "public2")]
    assert write_public_addresses(top.public_addresses).splitlines() == [
        "198.51.100.101/24 eth1", "203.0.113.101/24 eth2,eth3", "203.0.113.102/24 eth3"]


def test_interfaces_in_one_subnet_are_one_network(tmp_path):
    d = etc(tmp_path, nodes=NODES4,
            public_addresses="10.20.1.101/24 eth1\n10.20.1.102/24 eth2\n")
    top = import_ctdb_dir(d).topology
    assert [(i.name, i.network) for i in top.interfaces] == [
        ("eth0", "private"), ("eth1", "public"), ("eth2", "public")]
    assert [n.name for n in top.public_networks] == ["public"]
    assert top.public_networks[0].subnet == net("203.0.113.0/24")


def test_a_third_public_network_is_refused(tmp_path):
    d = etc(tmp_path, nodes=NODES4, public_addresses=(
        "10.20.1.101/24 eth1\n10.20.2.101/24 eth2\n# third\n10.20.3.101/24 eth3\n"))
    assert failure(d) == (
        f"{d}/public_addresses:4: public network number 3 (eth3, 10.20.3.0/24); the harness "
        "has only 2 public ranges (203.0.113.0/24, 198.51.100.0/24); import a copy of "
        "public_addresses with at most 2 networks")


def test_colliding_last_octets_are_renumbered_in_order(tmp_path):
    d = etc(tmp_path, nodes=NODES4,
            public_addresses="10.20.1.3/24 eth1\n10.20.1.1/24 eth1\n10.20.1.2/24 eth1\n")
    got = import_ctdb_dir(d)
    assert write_public_addresses(got.topology.public_addresses).splitlines() == [
        "203.0.113.253/24 eth1", "203.0.113.251/24 eth1", "203.0.113.252/24 eth1"]
    assert got.warnings == [
        f"{d}/public_addresses:1: public addresses on eth1 renumbered to "
        "203.0.113.251-203.0.113.253: their last octets collide with the harness's node "
        "hosts 1-4 or client 254"]


def test_short_prefix_becomes_24_and_long_prefix_is_kept(tmp_path):
    d = etc(tmp_path, nodes=NODES4, public_addresses=(
        "10.20.7.9/16 eth1\n10.20.8.9/16 eth1\n10.30.1.100/27 eth2\n10.30.1.101/27 eth2\n"))
    got = import_ctdb_dir(d)
    assert write_public_addresses(got.topology.public_addresses).splitlines() == [
        "198.51.100.252/24 eth1", "198.51.100.253/24 eth1",
        "203.0.113.100/27 eth2", "203.0.113.101/27 eth2"]
    assert got.warnings == [
        f"{d}/public_addresses:1: public addresses on eth1 renumbered to "
        "198.51.100.252-198.51.100.253: they span several /24s",
        f"{d}/public_addresses:1: public addresses on eth1 shorter than /24 become /24, "
        "the size of the harness's ranges"]
    assert got.mapping["10.20.0.0/16"] == "198.51.100.0/24"
    assert got.mapping["10.30.1.96/27"] == "203.0.113.96/27"


def test_interleaved_networks_take_the_ranges_in_file_order(tmp_path):
    d = etc(tmp_path, nodes=NODES4, public_addresses=(
        "10.20.1.101/32 eth1\n10.20.2.101/32 eth2\n10.20.3.101/32 eth1\n"))
    got = import_ctdb_dir(d)
    assert [(n.name, str(n.subnet)) for n in got.topology.public_networks] == [
        ("public", "203.0.113.0/24"), ("public2", "198.51.100.0/24")]
    assert got.warnings == [
        f"{d}/public_addresses: the public networks' addresses interleave; their numeric "
        "order across networks is not kept",
        f"{d}/public_addresses:1: public addresses on eth1 renumbered to "
        "203.0.113.252-203.0.113.253: they span several /24s"]


def test_too_many_public_addresses_for_the_range(tmp_path):
    nodes = "".join(f"10.10.0.{k + 1}\n" for k in range(200))
    pubs = "".join(f"10.20.{k // 100}.{k % 100 + 1}/16 eth1\n" for k in range(60))
    d = etc(tmp_path, nodes=nodes, public_addresses=pubs)
    assert failure(d) == (f"{d}/public_addresses:1: 60 public addresses on eth1 and 200 nodes "
                          "do not fit in 203.0.113.0/24 (nodes take hosts 1-200, the client "
                          "254); import a copy with fewer public addresses")


def test_public_address_on_the_private_interface(tmp_path):
    d = etc(tmp_path, nodes=NODES4, public_addresses="10.20.1.101/24 eth1\n10.10.1.100/24 eth0\n")
    assert failure(d) == (
        f"{d}/public_addresses:2: 10.10.1.100/24 is on eth0, the private interface; name the "
        "field's private interface with --private-iface (the harness keeps public and private "
        "networks apart)")
    top = import_ctdb_dir(d, private_iface="eth9").topology
    assert top.private_interface.name == "eth9"
    assert [i.name for i in top.interfaces] == ["eth9", "eth1", "eth0"]


def test_public_address_that_is_a_node_address(tmp_path):
    d = etc(tmp_path, nodes=NODES4, public_addresses="10.10.1.12/24 eth1\n")
    assert failure(d) == (f"{d}/public_addresses:1: 10.10.1.12 is also node 1's private "
                          "address; give public and node addresses apart")


def test_interface_name_too_long_for_the_switch(tmp_path):
    d = etc(tmp_path, nodes=NODES4, public_addresses="10.20.1.101/24 enp129s0f1np1\n")
    assert failure(d) == (
        f"{d}/public_addresses:1: interface name 'enp129s0f1np1' is too long for the harness "
        "(its switch port 'n3-enp129s0f1np1' is over 15 characters); rename it in a copy of "
        "the files (or in --bond or --private-iface)")


def test_bond_and_vlan_names_without_bonds_are_warned_about(tmp_path):
    d = etc(tmp_path, nodes=NODES4, public_addresses="10.20.1.101/24 bond0\n"
                                                     "10.20.1.102/24 eth1.100\n")
    got = import_ctdb_dir(d)
    assert got.warnings == [
        f"{d}/public_addresses:1: bond0 is built as a plain interface (bonds are not in "
        "/etc/ctdb); pass --bond bond0=MODE:SLAVES to make it a bond",
        f"{d}/public_addresses:2: eth1.100 looks like a VLAN; the harness builds it as a "
        "plain interface"]


# -- bonds ------------------------------------------------------------------------------------

def test_parse_bond_spec():
    assert parse_bond_spec("bond0=active-backup:eth1,eth2") == (
        "bond0", Bond(mode="active-backup", slaves=("eth1", "eth2")))
    assert parse_bond_spec("bond1=802.3ad:eth3,eth4:miimon=200") == (
        "bond1", Bond(mode="802.3ad", miimon=200, slaves=("eth3", "eth4")))
    assert parse_bond_spec("b=balance-rr:e1") == ("b", Bond(mode="balance-rr", slaves=("e1",)))


EXAMPLE = "write e.g. bond0=active-backup:eth1,eth2 or bond0=802.3ad:eth1,eth2:miimon=100"


@pytest.mark.parametrize("spec, message", [
    ("bond0", f"'bond0': no '=' after the bond's name; {EXAMPLE}"),
    ("bond0=active-backup", f"'bond0=active-backup': needs MODE:SLAVES; {EXAMPLE}"),
    ("bond0=lacp:eth1", "'bond0=lacp:eth1': mode 'lacp' is not one of active-backup, "
     f"802.3ad, balance-rr; {EXAMPLE}"),
    ("bond0=802.3ad:eth1,,eth2", "'bond0=802.3ad:eth1,,eth2': slave: '' is not a valid "
     "interface name; separate slave names with commas, no spaces"),
    ("bond0=802.3ad:eth1,eth1", "'bond0=802.3ad:eth1,eth1': a slave is listed twice; "
     "list each slave once"),
    ("bond0=802.3ad:bond0", "'bond0=802.3ad:bond0': bond0 is its own slave; "
     "give the bond a name of its own"),
    ("bond0=802.3ad:eth1:updelay=5", "'bond0=802.3ad:eth1:updelay=5': unknown option "
     "'updelay=5'; the only option is miimon=N"),
    ("bond0=802.3ad:eth1:miimon=-1", "'bond0=802.3ad:eth1:miimon=-1': miimon '-1' is not a "
     "whole number of ms; write e.g. miimon=100"),
    ("bond-with-a-long-name=802.3ad:eth1", "'bond-with-a-long-name=802.3ad:eth1': interface "
     "name 'bond-with-a-long-name' is longer than 15 characters; name the bond as the "
     "public_addresses file does"),
])
def test_parse_bond_spec_errors(spec, message):
    with pytest.raises(CtdbImportError) as e:
        parse_bond_spec(spec)
    assert str(e.value) == f"--bond: {message}"


def test_bonds_table_uses_the_same_strings():
    assert bonds_from_table({"bond0": "active-backup:eth1,eth2:miimon=50"}, "s.toml") == {
        "bond0": Bond(mode="active-backup", miimon=50, slaves=("eth1", "eth2"))}
    with pytest.raises(CtdbImportError) as e:
        bonds_from_table({"bond0": "lacp:eth1"}, "s.toml")
    assert str(e.value).startswith("s.toml: bonds.bond0: 'bond0=lacp:eth1': mode 'lacp'")
    with pytest.raises(CtdbImportError) as e:
        bonds_from_table({"bond0": 3}, "s.toml")
    assert str(e.value) == ('s.toml: bonds.bond0 = 3 is not a string; '
                            'write e.g. bond0 = "active-backup:eth1,eth2"')


def test_bonds_are_applied_to_their_interfaces(tmp_path):
    d = etc(tmp_path, nodes=NODES4,
            public_addresses="10.20.1.101/24 bond0\n10.20.1.102/24 bond0\n")
    bonds = dict([parse_bond_spec("bond0=802.3ad:eth1,eth2"),
                  parse_bond_spec("bond1=active-backup:eth3,eth4")])
    got = import_ctdb_dir(d, bonds, private_iface="bond1")
    assert got.topology.interfaces == (
        Interface("bond1", "private", Bond(mode="active-backup", slaves=("eth3", "eth4"))),
        Interface("bond0", "public", Bond(mode="802.3ad", slaves=("eth1", "eth2"))))
    assert got.warnings == []


@pytest.mark.parametrize("specs, message", [
    (["bond5=802.3ad:eth1"], "--bond bond5: no interface bond5 in {d}/public_addresses and "
     "it is not the private interface eth0; bond an interface the cluster uses"),
    (["bond0=802.3ad:eth1,eth0"], "--bond bond0: slave eth0 is also an interface of the "
     "cluster; give the bond slaves names of their own"),
    (["bond0=802.3ad:eth1", "eth0=802.3ad:eth1"], "--bond eth0: slave eth1 is also a slave "
     "of bond0; give each bond its own slaves"),
    (["bond0=802.3ad:eth-number-10"], "--bond bond0: interface name 'eth-number-10' is too "
     "long for the harness (its switch port 'n3-eth-number-10' is over 15 characters); "
     "rename it in a copy of the files (or in --bond or --private-iface)"),
])
def test_bond_errors(tmp_path, specs, message):
    d = etc(tmp_path, nodes=NODES4, public_addresses="10.20.1.101/24 bond0\n")
    bonds = dict(parse_bond_spec(s) for s in specs)
    assert failure(d, bonds=bonds) == message.format(d=d)


# -- tunables, script options, ctdb.conf -------------------------------------------------------

def test_tunables_from_every_file_most_current_wins(tmp_path):
    d = etc(tmp_path, nodes=NODES4, **{
        "ctdbd.conf": ("CTDB_RECOVERY_LOCK=/gpfs/.ctdb/lock\nCTDB_SET_MonitorInterval=20\n"
                       "CTDB_SET_NoIPFailback=1\nCTDB_MANAGES_SAMBA=yes\n"
                       "CTDB_PARTIALLY_ONLINE_INTERFACES=no\n"),
        "script.options": ("CTDB_SET_monitorinterval=12\n"
                           "export CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n"),
        "ctdb.tunables": "MonitorInterval=15\n"})
    got = import_ctdb_dir(d)
    # explicitly set to CTDB's default (15) still counts as set
    assert got.tunables == {"MonitorInterval": 15, "NoIPFailback": 1}
    assert got.script_options == {"CTDB_MANAGES_SAMBA": "yes",
                                  "CTDB_PARTIALLY_ONLINE_INTERFACES": "yes"}
    assert got.cluster_lock == "/gpfs/.ctdb/lock"
    assert got.warnings == [
        f"{d}/public_addresses: missing; the cluster has no public addresses",
        f"{d}/script.options: MonitorInterval=12 overrides 20 from {d}/ctdbd.conf",
        f"{d}/ctdb.tunables: MonitorInterval=15 overrides 12 from {d}/script.options"]


def test_interface_options_file_overrides_script_options(tmp_path):
    d = etc(tmp_path, nodes=NODES4, **{
        "script.options": "CTDB_PARTIALLY_ONLINE_INTERFACES=no\n",
        "events__legacy__10.interface.options": "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n"})
    assert import_ctdb_dir(d).script_options == {"CTDB_PARTIALLY_ONLINE_INTERFACES": "yes"}


@pytest.mark.parametrize("body, message", [
    ("# x\nCTDB_SET_MonitorIntervall=3\n", "script.options:2: CTDB_SET_MonitorIntervall: "
     "unknown tunable 'MonitorIntervall'; `ctdb listvars` (harness.ctdb.tunables.NAMES) "
     "lists the valid names"),
    ("CTDB_SET_DeterministicIPs=1\n", "script.options:1: CTDB_SET_DeterministicIPs: obsolete "
     "tunable 'DeterministicIPs' (ctdbd 4.17 refuses it); remove the line"),
    ("CTDB_SET_MonitorInterval=3s\n", "script.options:1: CTDB_SET_MonitorInterval: invalid "
     "value '3s'; write an integer from 0 to 4294967295 (decimal, 0x hex or 0 octal)"),
    ("CTDB_FOO=$BAR\n", "script.options:1: shell syntax '$' in a value; write the literal "
     "value, quoted if it has special characters"),
])
def test_script_options_errors(tmp_path, body, message):
    d = etc(tmp_path, nodes=NODES4, **{"script.options": body})
    assert failure(d) == f"{d}/{message}"


def test_legacy_ctdbd_conf_pointing_elsewhere_is_warned_about(tmp_path):
    d = etc(tmp_path, nodes=NODES4, **{
        "ctdbd.conf": "CTDB_NODES=/etc/ctdb/nodes\n"
                      "CTDB_PUBLIC_ADDRESSES=/etc/ctdb/public_addresses.smb\n"})
    assert import_ctdb_dir(d).warnings[-1] == (
        f"{d}/ctdbd.conf:2: CTDB_PUBLIC_ADDRESSES=/etc/ctdb/public_addresses.smb; this import "
        f"reads {d}/public_addresses - copy that file there")


def test_ctdb_conf_sections_and_options(tmp_path):
    conf = ("# site config\n[logging]\n  location = syslog\n[cluster]\n"
            "  recovery lock = /old/lock\n  Cluster  Lock = !/usr/bin/lock-helper arg\n"
            "  leader timeout = 5\n  transport = ib\n[failover]\n  disabled = true\n"
            "[legacy]\n  start as disabled = false\n  start as stopped = TRUE\n"
            "  bogus = 1\n[nfs]\n  anything = goes\n")
    d = etc(tmp_path, nodes=NODES4, **{"ctdb.conf": conf})
    got = import_ctdb_dir(d)
    assert got.cluster_lock == "!/usr/bin/lock-helper arg"
    c = f"{d}/ctdb.conf"
    assert got.warnings[1:] == [
        f"{c}:8: [cluster] transport = ib is not reproduced; the harness runs with tcp",
        f"{c}:10: [failover] disabled = true is not reproduced; the harness runs with false",
        f"{c}:13: [legacy] start as stopped = TRUE is not reproduced; the harness runs with "
        "false",
        f"{c}:14: unknown option [legacy] bogus ignored",
        f"{c}:15: unknown section [nfs] ignored"]


@pytest.mark.parametrize("conf, message", [
    ("[cluster\n", "ctdb.conf:1: '[cluster' is not a [section] line; write e.g. [cluster]"),
    ("[cluster]\ncluster lock\n", "ctdb.conf:2: 'cluster lock' is not 'key = value'; write e.g. "
     "'cluster lock = /clusterfs/.ctdb/reclock'"),
    ("\ncluster lock = /x\n", "ctdb.conf:2: 'cluster lock' is outside any [section]; put it "
     "under its section, e.g. [cluster]"),
])
def test_ctdb_conf_errors(tmp_path, conf, message):
    d = etc(tmp_path, nodes=NODES4, **{"ctdb.conf": conf})
    assert failure(d) == f"{d}/{message}"


# -- output ---------------------------------------------------------------------------------

def test_format_and_save_mapping(tmp_path):
    got = import_ctdb_dir(FOUR)
    lines = format_mapping(got.mapping).splitlines()
    assert len(lines) == len(got.mapping)
    assert lines[0] == "10.10.1.11   -> 198.18.0.1"
    assert lines[-1] == "10.20.2.0/24 -> 203.0.113.0/24"
    got.save_mapping(tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == got.mapping
    with pytest.raises(CtdbImportError) as e:
        got.save_mapping(tmp_path / "no" / "m.json")
    assert str(e.value) == (f"{tmp_path}/no/m.json: cannot write it (No such file or "
                            "directory); check the path and its permissions")


def test_saved_topology_loads_back_equal(tmp_path):
    bonds = dict([parse_bond_spec("eth2=active-backup:eth5,eth6:miimon=250")])
    got = import_ctdb_dir(FOUR, bonds)
    got.save_topology(tmp_path / "t.toml")
    assert load_topology(tmp_path / "t.toml") == got.topology


# -- the command ------------------------------------------------------------------------------

def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=60)


def test_cli_prints_topology_tunables_options_and_mapping(tmp_path):
    r = harness("import-ctdb", str(FOUR), "--save-topology", str(tmp_path / "t.toml"),
                "--save-mapping", str(tmp_path / "m.json"))
    assert (r.returncode, r.stderr) == (0, "")
    out = r.stdout.splitlines()
    assert out[0] == (f"{FOUR}: OK, 4 nodes, networks private=198.18.0.0/24, "
                      "public=198.51.100.0/24, public2=203.0.113.0/24")
    for line in ("  eth2 on public2", "    203.0.113.101/24 eth2", "  TakeoverTimeout=5",
                 "  CTDB_PARTIALLY_ONLINE_INTERFACES=yes",
                 "cluster lock: /clusterfs/.ctdb/reclock (informational)",
                 "  10.20.2.103  -> 203.0.113.103"):
        assert line in out
    assert json.loads((tmp_path / "m.json").read_text())["10.10.1.14"] == "198.18.0.4"
    r = harness("topology", str(tmp_path / "t.toml"))
    assert r.returncode == 0 and r.stdout.splitlines()[1:] == out[1:11]


@pytest.mark.parametrize("args, expect", [
    ([str(DATA / "bad-nodes-address")], f"{DATA}/bad-nodes-address/nodes:3: "),
    ([str(DATA / "not-utf8")], f"{DATA}/not-utf8/public_addresses:1: not UTF-8"),
    ([str(FOUR), "--bond", "bond0=lacp:eth1"], "--bond: 'bond0=lacp:eth1': mode 'lacp'"),
    ([str(FOUR), "--bond", "eth1=802.3ad:eth5", "--bond", "eth1=802.3ad:eth6"],
     "--bond eth1 is given twice"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, expect):
    r = harness("import-ctdb", *args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith(f"harness import-ctdb: {expect}")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_cli_warnings_go_to_stderr():
    r = harness("import-ctdb", str(DATA / "minimal"))
    assert r.returncode == 0
    assert r.stderr == (f"harness import-ctdb: warning: {DATA}/minimal/public_addresses: "
                        "missing; the cluster has no public addresses\n")
