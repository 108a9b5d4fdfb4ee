"""`ctdb status/ip/ifaces` text: CTDB 4.17's exact output, formatted and parsed."""

from __future__ import annotations

import ipaddress
import itertools
import random
import socket

import pytest

from harness import ctdb
from harness.ctdb import STATUS_ORDER, ClusterStatus, IfaceInfo, NodeFlags, NodeStatus, OutputError

ip = ipaddress.ip_address
F = NodeFlags

# -- expected outputs from Samba's own tool tests (ctdb/tests/UNIT/tool/) ----------------

# ctdb.status.001.sh "all, 3 nodes, all ok"
SAMBA_STATUS_001 = """\
Number of nodes:3
pnn:0 192.168.20.41    OK (THIS NODE)
pnn:1 192.168.20.42    OK
pnn:2 192.168.20.43    OK
Generation:654321
Size:3
hash:0 lmaster:0
hash:1 lmaster:1
hash:2 lmaster:2
Recovery mode:NORMAL (0)
Leader:0
"""
SAMBA_STATUS_001_X = """\
|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|
|0|192.168.20.41|0|0|0|0|0|0|0|0|Y|
|1|192.168.20.42|0|0|0|0|0|0|0|0|N|
|2|192.168.20.43|0|0|0|0|0|0|0|0|N|
"""
# ctdb.status.003.sh "all, 3 nodes, 1 unhealthy" in runstate FIRST_RECOVERY:
# the tool shows the other nodes as UNKNOWN.
SAMBA_STATUS_003 = """\
Number of nodes:3
pnn:0 192.168.20.41    UNKNOWN
pnn:1 192.168.20.42    OK (THIS NODE)
pnn:2 192.168.20.43    UNKNOWN
Generation:654321
Size:3
hash:0 lmaster:0
hash:1 lmaster:1
hash:2 lmaster:2
Recovery mode:NORMAL (0)
Leader:1
"""
SAMBA_STATUS_003_X = """\
|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|
|0|192.168.20.41|0|1|0|0|0|0|0|0|N|
|1|192.168.20.42|0|0|0|0|0|0|0|0|Y|
|2|192.168.20.43|0|1|0|0|0|0|0|0|N|
"""
# ctdb.nodestatus.002.sh "all, 3 nodes, 1 disconnected" (`ctdb nodestatus all`)
SAMBA_NODESTATUS_002 = """\
Number of nodes:3
pnn:0 192.168.20.41    OK
pnn:1 192.168.20.42    DISCONNECTED|INACTIVE
pnn:2 192.168.20.43    OK (THIS NODE)
"""
SAMBA_NODESTATUS_002_X = """\
|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|
|0|192.168.20.41|0|0|0|0|0|0|0|0|N|
|1|192.168.20.42|1|0|0|0|0|0|1|0|N|
|2|192.168.20.43|0|0|0|0|0|0|0|0|Y|
"""
# ctdb.nodestatus.006.sh "node 0 disabled+stopped" (flags 0x24)
SAMBA_NODESTATUS_006 = "pnn:0 192.168.20.41    DISABLED|STOPPED|INACTIVE\n"
SAMBA_NODESTATUS_006_X = """\
|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|
|0|192.168.20.41|0|0|0|1|0|1|1|0|N|
"""
SAMBA_IP_001 = "Public IPs on node 0\n"            # ctdb.ip.001.sh, no ips
SAMBA_IP_002 = "Public IPs on ALL nodes\n"         # ctdb.ip.002.sh, no ips, `all`
SAMBA_IP_003 = """\
Public IPs on node 0
10.0.0.31 0
10.0.0.32 1
10.0.0.33 2
"""                                                # ctdb.ip.003.sh
SAMBA_IP_006_V = """\
Public IPs on ALL nodes
10.0.0.31 node[0] active[eth2] available[eth2,eth1] configured[eth2,eth1]
10.0.0.32 node[-1] active[] available[] configured[]
10.0.0.33 node[2] active[eth2] available[eth2,eth1] configured[eth2,eth1]
"""                                                # ctdb.ip.006.sh, `-v all`
SAMBA_IFACES_001 = """\
Interfaces on node 0
name:eth2 link:up references:2
name:eth1 link:up references:4
"""                                                # ctdb.ifaces.001.sh

# -- captured from Debian's ctdb 4.17.12 (3 ctdbd in CTDB_TEST_MODE, public
# addresses on veth interfaces eth1..eth3, one netns) ----------------------------------

REAL_STATUS_OK = """\
Number of nodes:3
pnn:0 127.0.0.1        OK (THIS NODE)
pnn:1 127.0.0.2        OK
pnn:2 127.0.0.3        OK
Generation:6490146
Size:3
hash:0 lmaster:0
hash:1 lmaster:1
hash:2 lmaster:2
Recovery mode:NORMAL (0)
Leader:0
"""
# after `setifacelink eth1 down`, `disable -n 1`, `stop -n 2`
REAL_STATUS_MIXED = """\
Number of nodes:3
pnn:0 127.0.0.1        PARTIALLYONLINE (THIS NODE)
pnn:1 127.0.0.2        DISABLED
pnn:2 127.0.0.3        STOPPED|INACTIVE
Generation:260163820
Size:2
hash:0 lmaster:0
hash:1 lmaster:1
Recovery mode:NORMAL (0)
Leader:0
"""
REAL_STATUS_MIXED_X = """\
|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|
|0|127.0.0.1|0|0|0|0|0|0|0|1|Y|
|1|127.0.0.2|0|0|0|1|0|0|0|0|N|
|2|127.0.0.3|0|0|0|0|0|1|1|0|N|
"""
# `ban 300 -n 1`
REAL_STATUS_BANNED_X = """\
|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|
|0|127.0.0.1|0|0|0|0|0|0|0|0|Y|
|1|127.0.0.2|0|0|1|0|0|0|1|0|N|
|2|127.0.0.3|0|0|0|0|0|0|0|0|N|
"""
# node 2's ctdbd shut down
REAL_STATUS_DISCONNECTED = """\
Number of nodes:3
pnn:0 127.0.0.1        OK (THIS NODE)
pnn:1 127.0.0.2        OK
pnn:2 127.0.0.3        DISCONNECTED|UNHEALTHY|INACTIVE
Generation:491666081
Size:2
hash:0 lmaster:0
hash:1 lmaster:1
Recovery mode:NORMAL (0)
Leader:0
"""
# nodes file "127.0.0.4 / #127.0.0.9 / 127.0.0.5", node 2 never started; the
# vnn map is not initialised yet during the first recovery (hence the lmaster).
REAL_STATUS_DELETED = """\
Number of nodes:3 (including 1 deleted nodes)
pnn:0 127.0.0.4        UNHEALTHY (THIS NODE)
pnn:2 127.0.0.5        DISCONNECTED|UNHEALTHY|INACTIVE
Generation:INVALID
Size:2
hash:0 lmaster:0
hash:1 lmaster:825306672
Recovery mode:RECOVERY (1)
Leader:0
"""
REAL_STATUS_DELETED_X = """\
|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|
|0|127.0.0.4|0|0|0|0|1|0|0|0|Y|
|2|127.0.0.5|1|0|0|0|1|0|1|0|N|
"""
# single node whose cluster lock can never be taken: no leader is elected
REAL_STATUS_NO_LEADER = """\
Number of nodes:1
pnn:0 127.0.0.4        UNHEALTHY (THIS NODE)
Generation:INVALID
Size:1
hash:0 lmaster:0
Recovery mode:RECOVERY (1)
Leader:UNKNOWN
"""
REAL_STATUS_COLON_X = """\
:Node:IP:Disconnected:Unknown:Banned:Disabled:Unhealthy:Stopped:Inactive:PartiallyOnline:ThisNode:
:0:127.0.0.1:0:0:0:0:0:0:0:0:Y:
:1:127.0.0.2:0:0:0:0:0:0:0:0:N:
:2:127.0.0.3:0:0:0:0:0:0:0:0:N:
"""                                                # `ctdb -X -x : status`
REAL_IP = """\
Public IPs on node 0
203.0.113.31 1
203.0.113.32 0
203.0.113.33 2
203.0.113.41 1
2001:db8::11 0
"""
REAL_IP_X = """\
|Public IP|Node|
|203.0.113.31|1|
|203.0.113.32|0|
|203.0.113.33|2|
|203.0.113.41|1|
|2001:db8::11|0|
"""
REAL_IP_HASH_X = """\
#Public IP#Node#
#203.0.113.31#1#
#203.0.113.32#0#
#203.0.113.33#2#
#203.0.113.41#1#
#2001:db8::11#0#
"""                                                # `ctdb -x '#' -X ip`
REAL_IP_ALL = REAL_IP.replace("on node 0", "on ALL nodes")
# public_addresses listed 203.0.113.60, .50, 2001:db8::2, ::1, 10.0.0.1 in
# that order; the single node was UNHEALTHY, so nothing is assigned.
REAL_IP_SORTED = """\
Public IPs on node 0
10.0.0.1 -1
203.0.113.50 -1
203.0.113.60 -1
2001:db8::1 -1
2001:db8::2 -1
"""
REAL_IP_X_VERBOSE = """\
|Public IP|Node|ActiveInterfaces|AvailableInterfaces|ConfiguredInterfaces|
|203.0.113.31|1|||eth2|
|203.0.113.32|1|||eth2|
|203.0.113.33|1|||eth2|
|203.0.113.41|1||eth1|eth1,eth2|
|2001:db8::11|0|eth3|eth3|eth3|
"""
REAL_IFACES = """\
Interfaces on node 0
name:eth3 link:up references:1
name:eth1 link:up references:0
name:eth2 link:down references:0
"""
REAL_IFACES_X = """\
|Name|LinkStatus|References|
|eth3|1|1|
|eth1|1|0|
|eth2|0|0|
"""
REAL_NO_IFACES = "No interfaces configured on node 0\n"   # plain and -X alike


# -- ctdb status --------------------------------------------------------------------------

@pytest.mark.parametrize("text", [SAMBA_STATUS_001, SAMBA_STATUS_003, REAL_STATUS_OK,
                                  REAL_STATUS_MIXED, REAL_STATUS_DISCONNECTED,
                                  REAL_STATUS_DELETED, REAL_STATUS_NO_LEADER])
def test_plain_status_round_trips_byte_exact(text):
    assert ctdb.format_status(ctdb.parse_status(text)) == text


@pytest.mark.parametrize("text", [SAMBA_STATUS_001_X, SAMBA_STATUS_003_X, REAL_STATUS_MIXED_X,
                                  REAL_STATUS_BANNED_X, REAL_STATUS_DELETED_X,
                                  SAMBA_NODESTATUS_002_X, SAMBA_NODESTATUS_006_X])
def test_machine_status_round_trips_byte_exact(text):
    st = ctdb.parse_status(text)
    assert st.machine_readable and st.generation is None and st.leader is None
    assert ctdb.format_status_x(st) == text


def test_status_values_samba_001():
    st = ctdb.parse_status(SAMBA_STATUS_001)
    assert st.generation == 654321 and st.vnn_map == (0, 1, 2)
    assert st.recovery_mode_normal is True and st.leader == 0
    assert [str(n.address) for n in st.nodes] == ["192.168.20.41", "192.168.20.42",
                                                  "192.168.20.43"]
    assert st.this_node == st.node(0) and st.all_ok and st.num_nodes == 3
    assert ctdb.parse_status(SAMBA_STATUS_001_X).nodes == st.nodes


def test_status_unknown_flag_samba_003():
    st = ctdb.parse_status(SAMBA_STATUS_003)
    assert [n.flags for n in st.nodes] == [F.UNKNOWN, F.NONE, F.UNKNOWN]
    assert st.leader == 1 and st.this_node is not None and st.this_node.pnn == 1
    assert ctdb.parse_status(SAMBA_STATUS_003_X).nodes == st.nodes
    assert not st.node(0).ok and st.node(0).flags_text == "UNKNOWN"


def test_status_mixed_flags_real():
    st = ctdb.parse_status(REAL_STATUS_MIXED)
    n0, n1, n2 = st.nodes
    assert n0.partially_online and n0.flags == F.NONE and n0.ok
    assert n0.flags_text == "PARTIALLYONLINE"
    assert n1.flags == F.PERMANENTLY_DISABLED and not n1.ok
    assert n2.flags == F.STOPPED and n2.flags_text == "STOPPED|INACTIVE"
    assert ctdb.parse_status(REAL_STATUS_MIXED_X).nodes == st.nodes
    assert ctdb.parse_status(REAL_STATUS_BANNED_X).node(1).flags == F.BANNED


def test_status_deleted_node_real():
    st = ctdb.parse_status(REAL_STATUS_DELETED)
    assert [n.pnn for n in st.nodes] == [0, 2] and st.deleted == (1,)
    assert st.num_nodes == 3 and st.generation == ctdb.INVALID_GENERATION
    assert st.recovery_mode_normal is False and st.vnn_map == (0, 825306672)
    assert st.node(2).flags == F.DISCONNECTED | F.UNHEALTHY
    assert ctdb.parse_status(REAL_STATUS_DELETED_X).nodes == st.nodes


def test_status_no_leader_real():
    st = ctdb.parse_status(REAL_STATUS_NO_LEADER)
    assert st.leader is None and st.generation == ctdb.INVALID_GENERATION


def test_status_custom_separator_detected():
    st = ctdb.parse_status(REAL_STATUS_COLON_X)
    assert st.nodes == ctdb.parse_status(REAL_STATUS_OK).nodes
    assert ctdb.format_status_x(st, sep=":") == REAL_STATUS_COLON_X


def test_status_from_pre_4_16_ctdb():
    # ctdb.status.002.sh as it was before 4.16 (no Unknown column, "Recovery master").
    old_x = ("|Node|IP|Disconnected|Banned|Disabled|Unhealthy|Stopped|Inactive|"
             "PartiallyOnline|ThisNode|\n"
             "|0|192.168.20.41|0|0|0|1|0|0|0|N|\n"
             "|1|192.168.20.42|0|0|0|0|0|0|0|Y|\n")
    st = ctdb.parse_status(old_x)
    assert st.node(0).flags == F.UNHEALTHY and st.node(1).this_node
    old = SAMBA_STATUS_001.replace("Leader:0", "Recovery master:2")
    assert ctdb.parse_status(old).leader == 2


def test_nodestatus_forms():
    nodes = ctdb.parse_nodestatus(SAMBA_NODESTATUS_002)
    assert [n.flags for n in nodes] == [F.NONE, F.DISCONNECTED, F.NONE]
    assert ctdb.format_nodestatus(nodes, all_nodes=True) == SAMBA_NODESTATUS_002
    assert ctdb.parse_nodestatus(SAMBA_NODESTATUS_002_X) == nodes
    (n,) = ctdb.parse_nodestatus(SAMBA_NODESTATUS_006)
    assert n.flags == F.PERMANENTLY_DISABLED | F.STOPPED
    assert ctdb.format_nodestatus([n]) == SAMBA_NODESTATUS_006
    assert ctdb.parse_nodestatus(SAMBA_NODESTATUS_006_X) == (n,)


def sample_status(**kw) -> ClusterStatus:
    nodes = (
        NodeStatus(0, ip("198.18.0.1"), this_node=True),
        NodeStatus(1, ip("198.18.0.2"), F.UNHEALTHY),
        NodeStatus(3, ip("2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
                   F.DISCONNECTED | F.UNHEALTHY | F.BANNED),
        NodeStatus(4, ip("198.18.0.5"), partially_online=True),
        NodeStatus(2, DELETED, F.DELETED),
    )
    base = dict(nodes=nodes, generation=42, recovery_mode_normal=True, leader=0,
                vnn_map=(0, 4))
    base.update(kw)
    return ClusterStatus(**base)


DELETED = ip("0.0.0.0")


def test_status_format_parse_round_trip_from_data():
    st = sample_status()
    text = ctdb.format_status(st)
    assert text.splitlines()[0] == "Number of nodes:5 (including 1 deleted nodes)"
    assert "pnn:3 2001:db8:aaaa:bbbb:cccc:dddd:eeee:1 DISCONNECTED|BANNED|UNHEALTHY|INACTIVE" \
        in text
    assert "pnn:4 198.18.0.5       PARTIALLYONLINE\n" in text
    assert ctdb.parse_status(text) == st
    for variant in (sample_status(leader=None), sample_status(recovery_mode_normal=False),
                    sample_status(generation=ctdb.INVALID_GENERATION), sample_status(vnn_map=())):
        assert ctdb.parse_status(ctdb.format_status(variant)) == variant
    x = ctdb.parse_status(ctdb.format_status_x(st))
    assert x.nodes == st.nodes and x.machine_readable


def test_status_dataclass_rules():
    # CTDB never shows PARTIALLYONLINE for a node with flags: normalised away.
    n = NodeStatus(0, "10.0.0.1", F.UNHEALTHY, partially_online=True)
    assert n.partially_online is False and n.flags_text == "UNHEALTHY"
    assert NodeStatus(1, "10.0.0.2", 2).flags is F.UNHEALTHY
    with pytest.raises(ValueError):
        ClusterStatus((NodeStatus(0, "10.0.0.1"), NodeStatus(0, "10.0.0.2")))
    with pytest.raises(ValueError):
        ClusterStatus((NodeStatus(0, "10.0.0.1", this_node=True),
                       NodeStatus(1, "10.0.0.2", this_node=True)))
    with pytest.raises(ValueError, match="generation"):
        ctdb.format_status(ClusterStatus((NodeStatus(0, "10.0.0.1"),)))
    with pytest.raises(KeyError):
        sample_status().node(2)


def test_every_flag_combination_prints_in_ctdb_order():
    bits = [F.DISCONNECTED, F.UNHEALTHY, F.PERMANENTLY_DISABLED, F.BANNED, F.DELETED,
            F.STOPPED, F.UNKNOWN]
    assert [name for name, _ in STATUS_ORDER] == [
        "DISCONNECTED", "UNKNOWN", "DISABLED", "BANNED", "UNHEALTHY", "DELETED", "STOPPED",
        "INACTIVE"]
    for r in range(len(bits) + 1):
        for combo in itertools.combinations(bits, r):
            flags = F.NONE
            for b in combo:
                flags |= b
            text = ctdb.flags_text(flags)
            assert ("INACTIVE" in text) == bool(flags & F.INACTIVE)
            assert ctdb.parse_flags_text(text) == flags
    assert ctdb.flags_text(F.NONE) == "OK"
    assert ctdb.flags_text(F.UNKNOWN | F.DISCONNECTED) == "DISCONNECTED|UNKNOWN|INACTIVE"


@pytest.mark.parametrize("text", ["UNHEALTHY|DISCONNECTED", "DISCONNECTED", "INACTIVE",
                                  "BANNED|INACTIVE|INACTIVE", "ok", "HEALTHY", ""])
def test_parse_flags_text_refuses_non_ctdb_spelling(text):
    with pytest.raises(ValueError):
        ctdb.parse_flags_text(text)


@pytest.mark.parametrize("text,lineno,words", [
    ("", None, "empty output"),
    ("Nodes:3\n", 1, "Number of nodes"),
    (SAMBA_STATUS_001.replace("192.168.20.42    OK", "192.168.20.42 OK"), 3, "spacing"),
    (SAMBA_STATUS_001.replace("42    OK", "42    HEALTHY"), 3, "unknown node flag"),
    (SAMBA_STATUS_001.replace("42    OK", "42    UNHEALTHY|DISCONNECTED"), 3, "not as CTDB"),
    (SAMBA_STATUS_001.replace("192.168.20.43", "192.168.20.x"), 4, "not an IP address"),
    (SAMBA_STATUS_001.replace("Number of nodes:3", "Number of nodes:4"), 1, "does not match"),
    (SAMBA_STATUS_001.replace("Size:3", "Size:4"), 10, "expected a 'hash:3 lmaster:'"),
    (SAMBA_STATUS_001.replace("Leader:0\n", ""), None, "ends before the 'Leader:'"),
    (SAMBA_STATUS_001.replace("hash:1 lmaster:1", "hash:1 lmaster:x"), 8, "not a number"),
    (SAMBA_STATUS_001.replace("hash:1 lmaster", "hash:2 lmaster"), 8, "'hash:1 lmaster:'"),
    (SAMBA_STATUS_001.replace("NORMAL (0)", "NORMAL (1)"), 10, "NORMAL (0)"),
    (SAMBA_STATUS_001.replace("Leader:0", "Leader:x"), 11, "leader"),
    (SAMBA_STATUS_001 + "extra\n", 12, "unexpected line"),
    (SAMBA_STATUS_001.replace("Generation:654321", "Generation:1"), 5, "generation"),
    (SAMBA_STATUS_001_X.replace("|Y|", "|y|"), 2, "ThisNode"),
    (SAMBA_STATUS_001_X.replace("|0|0|Y|", "|0|0|"), 2, "10 fields, expected 11"),
    (SAMBA_STATUS_001_X.replace("ThisNode", "Self"), 1, "header"),
    (SAMBA_NODESTATUS_002_X.replace("|1|0|0|0|0|0|1|0|N|", "|1|0|0|0|0|0|0|0|N|"), 3,
     "Inactive"),
    (SAMBA_STATUS_001_X.replace("|0|0|0|0|0|0|0|0|N|\n|2", "|0|0|0|0|1|0|0|1|N|\n|2"), 3,
     "PartiallyOnline=1 on a node with flags"),
])
def test_status_errors_name_the_line(text, lineno, words):
    with pytest.raises(OutputError) as e:
        ctdb.parse_status(text)
    assert e.value.lineno == lineno
    if lineno is not None:
        assert f"ctdb status line {lineno} " in str(e.value)
    assert words in str(e.value)


# -- ctdb ip -----------------------------------------------------------------------------

@pytest.mark.parametrize("text,pnn", [(SAMBA_IP_001, 0), (SAMBA_IP_002, None),
                                      (SAMBA_IP_003, 0), (REAL_IP, 0), (REAL_IP_ALL, None),
                                      (REAL_IP_SORTED, 0)])
def test_plain_ip_round_trips_byte_exact(text, pnn):
    assert ctdb.format_ip(pnn, ctdb.parse_ip(text)) == text


def test_ip_values():
    m = ctdb.parse_ip(REAL_IP)
    assert m == {ip("203.0.113.31"): 1, ip("203.0.113.32"): 0, ip("203.0.113.33"): 2,
                 ip("203.0.113.41"): 1, ip("2001:db8::11"): 0}
    assert ctdb.parse_ip(REAL_IP_X) == m == ctdb.parse_ip(REAL_IP_HASH_X)
    assert ctdb.format_ip_x(m) == REAL_IP_X
    assert ctdb.format_ip_x(m, sep="#") == REAL_IP_HASH_X
    assert ctdb.parse_ip(SAMBA_IP_001) == {} == ctdb.parse_ip("|Public IP|Node|\n")
    assert ctdb.format_ip_x({}) == "|Public IP|Node|\n"


def test_ip_verbose_forms():
    assert ctdb.parse_ip(SAMBA_IP_006_V) == {ip("10.0.0.31"): 0, ip("10.0.0.32"): -1,
                                           ip("10.0.0.33"): 2}
    assert ctdb.parse_ip(REAL_IP_X_VERBOSE)[ip("203.0.113.41")] == 1


def test_ip_sorted_like_ctdb():
    # ctdbd 4.17.12 printed REAL_IP_SORTED for a file in another order.
    given = {"2001:db8::2": None, "203.0.113.60": -1, "203.0.113.50": None,
             "2001:db8::1": -1, "10.0.0.1": -1}
    assert ctdb.format_ip(0, given) == REAL_IP_SORTED
    many = [ip("10.0.0.2"), ip("9.255.255.255"), ip("::1"), ip("10.0.0.10"), ip("::")]
    assert sorted(many, key=ctdb.ip_sort_key) == [
        ip("9.255.255.255"), ip("10.0.0.2"), ip("10.0.0.10"), ip("::"), ip("::1")]


def test_ip_format_checks():
    with pytest.raises(ValueError):
        ctdb.format_ip(0, {"10.0.0.1": -2})
    with pytest.raises(ValueError):
        ctdb.format_ip(0, {"10.0.0.1": 1, ip("10.0.0.1"): 2})


@pytest.mark.parametrize("text,lineno,words", [
    ("IPs on node 0\n", 1, "Public IPs on node N"),
    ("Public IPs on node 0\n10.0.0.1\n", 2, "ADDRESS PNN"),
    ("Public IPs on node 0\n10.0.0.x 1\n", 2, "not an IP address"),
    ("Public IPs on node 0\n10.0.0.1 1\n10.0.0.1 2\n", 3, "listed twice"),
    ("Public IPs on node 0\n10.0.0.1 -2\n", 2, "not a pnn"),
    ("|Public IP|Node|\n|10.0.0.1|x|\n", 2, "not a pnn"),
    ("|Public IP|Node|\n|10.0.0.1|1\n", 2, "start and end"),
    ("|Public IP|Holder|\n", 1, "header"),
])
def test_ip_errors_name_the_line(text, lineno, words):
    with pytest.raises(OutputError) as e:
        ctdb.parse_ip(text)
    assert e.value.lineno == lineno and f"ctdb ip line {lineno} " in str(e.value)
    assert words in str(e.value)


# -- ctdb ifaces -------------------------------------------------------------------------

def test_ifaces_round_trips_byte_exact():
    ifaces = ctdb.parse_ifaces(REAL_IFACES)
    assert ifaces == [IfaceInfo("eth3", True, 1), IfaceInfo("eth1", True, 0),
                      IfaceInfo("eth2", False, 0)]
    assert ctdb.parse_ifaces(REAL_IFACES_X) == ifaces
    assert ctdb.format_ifaces(0, ifaces) == REAL_IFACES
    assert ctdb.format_ifaces_x(ifaces) == REAL_IFACES_X
    samba = ctdb.parse_ifaces(SAMBA_IFACES_001)
    assert samba == [IfaceInfo("eth2", True, 2), IfaceInfo("eth1", True, 4)]
    assert ctdb.format_ifaces(0, samba) == SAMBA_IFACES_001


def test_no_ifaces_message_plain_and_machine():
    assert ctdb.parse_ifaces(REAL_NO_IFACES) == []
    assert ctdb.format_ifaces(0, []) == REAL_NO_IFACES
    assert ctdb.format_ifaces_x([], pnn=0) == REAL_NO_IFACES
    with pytest.raises(ValueError, match="give pnn"):
        ctdb.format_ifaces_x([])


@pytest.mark.parametrize("text,lineno,words", [
    ("Interfaces on node 0\nname:eth1 link:UP references:1\n", 2, "link:up|down"),
    ("Interfaces on node 0\nname:eth1 link:up\n", 2, "references"),
    ("Ifaces\n", 1, "Interfaces on node N"),
    ("|Name|LinkStatus|References|\n|eth1|up|1|\n", 2, "link state"),
    ("|Name|LinkStatus|\n", 1, "header"),
])
def test_ifaces_errors_name_the_line(text, lineno, words):
    with pytest.raises(OutputError) as e:
        ctdb.parse_ifaces(text)
    assert e.value.lineno == lineno and words in str(e.value)


def test_ifaces_listed_twice():
    with pytest.raises(OutputError, match="twice"):
        ctdb.parse_ifaces("|Name|LinkStatus|References|\n|eth1|1|0|\n|eth1|0|0|\n")


# -- addresses ------------------------------------------------------------------------------

def test_ntop_matches_glibc():
    rnd = random.Random(4)
    for _ in range(20000):
        words = [rnd.choice((0, 0, 0, 1, 0xFFFF, rnd.randrange(65536))) for _ in range(8)]
        raw = b"".join(w.to_bytes(2, "big") for w in words)
        assert ctdb.ntop(ipaddress.IPv6Address(raw)) == socket.inet_ntop(socket.AF_INET6, raw)
    assert ctdb.ntop("::ffff:192.0.2.1") == "::ffff:192.0.2.1"
    assert ctdb.ntop(ip("203.0.113.9")) == "203.0.113.9"


def test_status_prints_mapped_ipv6_like_glibc():
    n = NodeStatus(0, "::ffff:198.18.0.1")
    assert ctdb.format_node_line(n) == "pnn:0 ::ffff:198.18.0.1 OK"
