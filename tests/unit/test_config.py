"""CTDB configuration files: nodes, public_addresses, ctdb.tunables, script.options."""

from __future__ import annotations

import ipaddress
import shlex

import pytest

from harness.ctdb import (
    DEFAULTS,
    DELETED_ADDRESS,
    ConfigError,
    NodeEntry,
    PublicAddress,
    TunableError,
    Tunables,
    load_node_config,
    parse_nodes,
    parse_public_addresses,
    parse_script_options,
    parse_tunables,
    truthy,
    write_nodes,
    write_public_addresses,
    write_script_options,
    write_tunables,
)

ip = ipaddress.ip_address


def one_line(e: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


# -- nodes ---------------------------------------------------------------------

def test_nodes_pnn_is_index_of_non_blank_lines():
    text = "\n10.0.0.1\n\n  10.0.0.2\t\n\t10.0.0.3 \n\n\n"
    got = parse_nodes(text)
    assert [(e.pnn, str(e.address), e.deleted) for e in got] == [
        (0, "10.0.0.1", False), (1, "10.0.0.2", False), (2, "10.0.0.3", False)]


def test_nodes_commented_line_is_a_deleted_node():
    # Checked with ctdbd 4.17.12: nodes "127.0.0.4 / #127.0.0.9 / 127.0.0.5" gave
    # "Number of nodes:3 (including 1 deleted nodes)" and pnn 2 for 127.0.0.5.
    got = parse_nodes("127.0.0.4\n#127.0.0.9\n 127.0.0.5 \n\n\n")
    assert got == (NodeEntry(0, ip("127.0.0.4")), NodeEntry(1, DELETED_ADDRESS, True),
                   NodeEntry(2, ip("127.0.0.5")))
    # Any '#' line counts, even one meant as a comment.
    assert parse_nodes("# my cluster\n10.0.0.1\n")[1].pnn == 1


def test_nodes_ipv6_and_v4_mapped():
    got = parse_nodes("2001:db8::1\n::ffff:10.0.0.2\n")
    assert [e.address for e in got] == [ip("2001:db8::1"), ip("10.0.0.2")]


def test_nodes_error_is_one_line_with_file_and_line():
    with pytest.raises(ConfigError) as e:
        parse_nodes("10.0.0.1\n10.0.0.2\n10.0.0.x\n")
    assert one_line(e) == ("nodes:3: '10.0.0.x' is not an IP address; "
                           "write one IPv4/IPv6 address per line")
    assert (e.value.source, e.value.line) == ("nodes", 3)


@pytest.mark.parametrize("text,line,words", [
    ("10.0.0.1 # me\n", 1, "trailing comment"),       # ctdbd 4.17: "Invalid IP address"
    ("10.0.0.1\n10.0.0.1\n", 2, "already node 0"),
    ("010.0.0.1\n", 1, "not an IP address"),          # inet_pton refuses leading zeros
    ("fe80::1%eth0\n", 1, "not an IP address"),
    ("10.0.0.1\r\n", 1, "not an IP address"),         # ctdbd splits on \n only
    ("10.0.0.1 10.0.0.2\n", 1, "not an IP address"),
])
def test_nodes_errors(text, line, words):
    with pytest.raises(ConfigError) as e:
        parse_nodes(text, "etc/nodes")
    assert one_line(e).startswith(f"etc/nodes:{line}: ")
    assert words in str(e.value)


@pytest.mark.parametrize("text", ["", "\n\n", "#10.0.0.1\n"])
def test_nodes_without_live_node(text):
    with pytest.raises(ConfigError) as e:
        parse_nodes(text)
    assert one_line(e).startswith("nodes: no node addresses; ")


def test_write_nodes_round_trip_keeps_deleted_pnns():
    text = write_nodes(["10.0.0.1", None, ip("10.0.0.3"), NodeEntry(3, ip("10.0.0.4"))])
    assert text == "10.0.0.1\n#deleted\n10.0.0.3\n10.0.0.4\n"
    got = parse_nodes(text)
    assert [e.pnn for e in got if not e.deleted] == [0, 2, 3]
    assert write_nodes(got) == text


# -- public_addresses -------------------------------------------------------------------

def test_public_addresses_parse():
    text = ("# public addresses\n"
            "203.0.113.31/24 eth2\n"
            "\n"
            "  \t203.0.113.41/24\teth1,eth2   # trailing comment is ignored by CTDB\n"
            "2001:db8::11/64 eth3\n"
            "   \n")
    got = parse_public_addresses(text)
    assert got == (
        PublicAddress(ipaddress.ip_interface("203.0.113.31/24"), ("eth2",)),
        PublicAddress(ipaddress.ip_interface("203.0.113.41/24"), ("eth1", "eth2")),
        PublicAddress(ipaddress.ip_interface("2001:db8::11/64"), ("eth3",)),
    )
    assert got[1].ip == ip("203.0.113.41")
    assert got[1].line() == "203.0.113.41/24 eth1,eth2"


def test_public_addresses_like_ctdbd_4_17():
    # Each accepted by ctdbd 4.17.12 (`ctdb ip` then listed the address).
    assert parse_public_addresses("::ffff:203.0.113.51/24 eth1\n")[0].address == \
        ipaddress.ip_interface("203.0.113.51/24")
    assert parse_public_addresses("203.0.113.50/24 eth1,,eth2\n")[0].ifaces == ("eth1", "eth2")
    assert parse_public_addresses("203.0.113.50/24 ,eth1\n")[0].ifaces == ("eth1",)
    assert parse_public_addresses("203.0.113.50/32 eth1 \n")[0].address.network.prefixlen == 32


@pytest.mark.parametrize("text,line,words", [
    # refused by ctdbd 4.17.12 too:
    ("203.0.113.50 eth1\n", 1, "not an IP address with /bits"),
    ("203.0.113.50/ eth1\n", 1, "not an IP address with /bits"),
    ("203.0.113.50/0x18 eth1\n", 1, "not an IP address with /bits"),
    ("203.0.113.050/24 eth1\n", 1, "not an IP address with /bits"),
    ("203.0.113.50/24\n", 1, "no interface given"),
    ("# c\n203.0.113.50/24 eth1\n203.0.113.50/16 eth2\n", 3, "duplicate public IP address"),
    # accepted by ctdbd but refused here (see the parser's docstring):
    ("203.0.113.50/33 eth1\n", 1, "out of range"),
    ("2001:db8::1/129 eth1\n", 1, "out of range"),
    ("203.0.113.50/24 eth1, eth2\n", 1, "unexpected 'eth2'"),
    ("203.0.113.50/24 eth1 extra\n", 1, "unexpected 'extra'"),
    ("203.0.113.50/24 eth1,eth1\n", 1, "listed twice"),
    ("203.0.113.50/24 averyveryverylongname\n", 1, "longer than 15"),
    ("203.0.113.50/24 ,\n", 1, "no interface given"),
    ("203.0.113.50/24 # eth1\n", 1, "no interface given"),
])
def test_public_addresses_errors(text, line, words):
    with pytest.raises(ConfigError) as e:
        parse_public_addresses(text)
    assert one_line(e).startswith(f"public_addresses:{line}: ")
    assert words in str(e.value)


def test_public_addresses_error_text():
    with pytest.raises(ConfigError) as e:
        parse_public_addresses("203.0.113.50/24\n")
    assert str(e.value) == ("public_addresses:1: no interface given for '203.0.113.50/24'; "
                            "write 'IP/bits iface[,iface]', e.g. '203.0.113.10/24 eth1'")


def test_write_public_addresses_round_trip():
    entries = (PublicAddress(ipaddress.ip_interface("203.0.113.7/24"), ("bond0",)),
               PublicAddress(ipaddress.ip_interface("2001:db8::7/64"), ("eth1", "eth2")))
    text = write_public_addresses(entries)
    assert text == "203.0.113.7/24 bond0\n2001:db8::7/64 eth1,eth2\n"
    assert parse_public_addresses(text) == entries
    bad = (entries[0], entries[0])
    with pytest.raises(ConfigError):
        write_public_addresses(bad)


# -- ctdb.tunables -----------------------------------------------------------------------

# Cases from Samba's ctdb/tests/UNIT/cunit/tunable_test_001.sh (files ctdbd accepts).
ACCEPTED = {
    "OK, empty file": ("", {}),
    "OK, comments and blanks only": (
        "# This is a comment\n\n# There are also some blank lines\n\n\n", {}),
    "OK, 1 tunable": ("EnableBans=0\n", {"EnableBans": 0}),
    "OK, 1 tunable, hex": ("EnableBans=0xf\n", {"EnableBans": 15}),
    "OK, 1 tunable, octal": ("EnableBans=072\n", {"EnableBans": 58}),
    "OK, 1 tunable, tab before =": ("EnableBans\t=0\n", {"EnableBans": 0}),
    "OK, 1 tunable, space after =": ("EnableBans= 0\n", {"EnableBans": 0}),
    "OK, 2 tunables, multiple spaces around =": (
        "EnableBans      =  0\nRecoverInterval = 10\n",
        {"EnableBans": 0, "RecoverInterval": 10}),
    "OK, 2 tunables, whitespace everywhere": (
        "\tEnableBans      = 0  \n\tRecoverInterval = 10 \n",
        {"EnableBans": 0, "RecoverInterval": 10}),
    "OK, several tunables, varying case": (
        "enablebans=0\nReCoVerInTeRvAl=10\nELECTIONTIMEOUT=5\n",
        {"EnableBans": 0, "RecoverInterval": 10, "ElectionTimeout": 5}),
    "OK, miscellaneous...": (
        "# Leading comment\nenablebans=0\nReCoVerInTeRvAl\t =    10\n\n"
        "# Intermediate comment after a blank line\n  ELECTIONTIMEOUT=25   \n\n\n"
        "# Final comment among blanks lines\n\n\n\n\n",
        {"EnableBans": 0, "RecoverInterval": 10, "ElectionTimeout": 25}),
    # tini.c extras: ';' comments, continuation lines, CRLF
    "semicolon comment": ("; comment\nMonitorInterval=5\n", {"MonitorInterval": 5}),
    "continuation": ("MonitorInterval=\\\n7\n", {"MonitorInterval": 7}),
    "continuation after space": ("MonitorInterval= \\ \n 8\n", {"MonitorInterval": 8}),
    "CRLF": ("MonitorInterval=9\r\nNoIPFailback=1\r\n",
             {"MonitorInterval": 9, "NoIPFailback": 1}),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_tunables_file_accepted(case):
    text, changed = ACCEPTED[case]
    assert parse_tunables(text).changed() == {
        k: v for k, v in changed.items() if v != DEFAULTS[k]}
    for name, value in changed.items():
        assert parse_tunables(text)[name] == value


# Same source: files ctdbd refuses (it logs e.g. 'Invalid line containing "Hello"').
REFUSED = [
    ("Hello\n", 1, "line 'Hello' has no value"),
    ("Hello world!\n", 1, "line 'Hello world!' has no value"),
    ("EnableBans=\n", 1, "line 'EnableBans' has no value"),
    ("EnableBans=value\n", 1, "invalid value 'value' for tunable EnableBans"),
    ("=123\n", 1, "syntax error"),
    (" =0\n", 1, "syntax error"),
    ("HelloWorld=123\n", 1, "unknown tunable 'HelloWorld'"),
    ("MaxRedirectCount=123\n", 1, "obsolete tunable 'MaxRedirectCount'"),
    ("EnableBans=0xgg\n", 1, "invalid value '0xgg'"),
    ("# c\n\nHelloWorld=123\nEnableBans=value\nEnableBans=0\n", 3, "unknown tunable"),
    # beyond the Samba test
    ("MonitorInterval=5 # five\n", 1, "invalid value '5 # five'"),
    ("MonitorInterval=-1\n", 1, "invalid value '-1'"),
    ("MonitorInterval=4294967296\n", 1, "exceeds 4294967295"),
    ("IPAllocAlgorithm=3\n", 1, "exceeds 2"),
    ("[tunables]\nMonitorInterval=5\n", 1, "section [tunables] is not supported"),
    ("[tunables\n", 1, "syntax error"),
    ("NoIPHostOnAllDisabled=0\n", 1, "obsolete"),
    ("MonitorInterval=\\\n\\\nx\n", 1, "invalid value 'x'"),
]


@pytest.mark.parametrize("text,line,words", REFUSED)
def test_tunables_file_refused(text, line, words):
    tun = Tunables()
    with pytest.raises(ConfigError) as e:
        parse_tunables(text, tun)
    assert one_line(e).startswith(f"ctdb.tunables:{line}: ")
    assert words in str(e.value)
    assert tun == Tunables()  # nothing applied from a refused file


def test_tunables_file_error_text():
    with pytest.raises(ConfigError) as e:
        parse_tunables("MonitorInterval=5\nMonitorIntervall=5\n", source="etc/ctdb.tunables")
    assert str(e.value) == ("etc/ctdb.tunables:2: unknown tunable 'MonitorIntervall'; "
                            "`ctdb listvars` (harness.ctdb.tunables.NAMES) lists the "
                            "valid names")


def test_tunables_file_applies_onto_given_tunables():
    tun = Tunables({"NoIPFailback": 1})
    assert parse_tunables("MonitorInterval=3\n", tun) is tun
    assert tun.changed() == {"MonitorInterval": 3, "NoIPFailback": 1}


def test_write_tunables():
    assert write_tunables({"monitorinterval": 5, "KeepaliveLimit": 5}) == \
        "KeepaliveLimit=5\nMonitorInterval=5\n"
    tun = Tunables({"MonitorInterval": 5, "NoIPTakeover": 1})
    text = write_tunables(tun)
    assert text == "MonitorInterval=5\nNoIPTakeover=1\n"
    assert parse_tunables(text) == tun
    with pytest.raises(TunableError):
        write_tunables({"NoIPHostOnAllDisabled": 1})
    with pytest.raises(TunableError):
        write_tunables({"MonitorInterval": -1})


# -- script.options --------------------------------------------------------------------

def test_script_options_parse():
    text = ("# 10.interface\n"
            "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n"
            "\n"
            "  export CTDB_A='two words'   # a comment\n"
            'CTDB_B="say \\"hi\\" \\$x"\n'
            "CTDB_C=\n"
            "CTDB_D=a#b\n"
            "CTDB_E='it'\"'\"'s'\n"
            "CTDB_PARTIALLY_ONLINE_INTERFACES=no\n")
    assert parse_script_options(text) == {
        "CTDB_PARTIALLY_ONLINE_INTERFACES": "no",
        "CTDB_A": "two words",
        "CTDB_B": 'say "hi" $x',
        "CTDB_C": "",
        "CTDB_D": "a#b",
        "CTDB_E": "it's",
    }


@pytest.mark.parametrize("text,words", [
    ("CTDB_X = yes\n", "space before '='"),
    ("CTDB_X=two words\n", "unexpected 'words'"),
    ("CTDB_X=$HOME\n", "shell syntax '$'"),
    ('CTDB_X="$HOME"\n', "shell expansion '$'"),
    ("CTDB_X=`id`\n", "shell syntax '`'"),
    ("CTDB_X='open\n", "unterminated ' quote"),
    ('CTDB_X="open\n', 'unterminated " quote'),
    ("CTDB_X=yes; rm -rf x\n", "shell syntax ';'"),
    ("9X=1\n", "not a NAME=value assignment"),
    ("echo hi\n", "not a NAME=value assignment"),
    ("CTDB_X=yes\r\n", "CR"),
    ("CTDB_X=a\\\n", "continuation"),
])
def test_script_options_errors(text, words):
    with pytest.raises(ConfigError) as e:
        parse_script_options("# first\n" + text)
    assert one_line(e).startswith("script.options:2: ")
    assert words in str(e.value)


def test_script_options_round_trip_with_shlex_quoting():
    opts = {"A": "yes", "B": "two words", "C": "it's", "D": "", "E": "$x`y`"}
    assert parse_script_options(write_script_options(opts)) == opts
    # Every value shlex-quoted, as a person might write the file, reads back the same.
    text = "".join(f"{k}={shlex.quote(v)}\n" for k, v in opts.items())
    assert parse_script_options(text) == opts
    with pytest.raises(ValueError):
        write_script_options({"BAD NAME": "x"})


def test_truthy_matches_ctdb_scripts():
    assert truthy("yes", False) is True
    assert truthy("no", True) is False
    assert truthy("YES", False) is False  # 10.interface tests `= "yes"`
    assert truthy(None, True) is True and truthy("", False) is False


# -- a node directory -------------------------------------------------------------------

def make_node_dir(tmp_path, nodes="198.51.100.77\n#gone\n127.0.0.1\n"):
    (tmp_path / "nodes").write_text(nodes)
    (tmp_path / "public_addresses").write_text("203.0.113.5/24 eth1\n")
    (tmp_path / "ctdb.tunables").write_text("MonitorInterval=4\n")
    (tmp_path / "script.options").write_text(
        "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\nCTDB_X=global\n")
    legacy = tmp_path / "events" / "legacy"
    legacy.mkdir(parents=True)
    (legacy / "10.interface.options").write_text("CTDB_X=script\n")
    return tmp_path


def test_load_node_config(tmp_path):
    cfg = load_node_config(make_node_dir(tmp_path), pnn=0, cluster_lock=tmp_path / "lock")
    assert cfg.pnn == 0 and cfg.address == ip("198.51.100.77")
    assert cfg.nodes == (ip("198.51.100.77"), DELETED_ADDRESS, ip("127.0.0.1"))
    assert cfg.deleted == {1} and cfg.live_pnns == (0, 2)
    assert [str(p.ip) for p in cfg.public_addresses] == ["203.0.113.5"]
    assert cfg.tunables["MonitorInterval"] == 4
    assert cfg.tunables["KeepaliveInterval"] == 5
    assert cfg.options["CTDB_X"] == "script"
    assert cfg.options_bool("CTDB_PARTIALLY_ONLINE_INTERFACES", False) is True
    assert cfg.options_bool("CTDB_UNSET", True) is True
    assert cfg.events_dir == tmp_path / "events" / "legacy"
    assert cfg.cluster_lock == tmp_path / "lock"


def test_load_node_config_finds_local_address(tmp_path):
    # 198.51.100.77 is not on this host, the deleted line is skipped, 127.0.0.1 is.
    cfg = load_node_config(make_node_dir(tmp_path))
    assert cfg.pnn == 2


def test_load_node_config_minimal(tmp_path):
    (tmp_path / "nodes").write_text("10.0.0.1\n")
    cfg = load_node_config(tmp_path, pnn=0)
    assert cfg.public_addresses == () and cfg.options == {}
    assert cfg.events_dir is None and cfg.cluster_lock is None
    assert cfg.tunables == Tunables()


def test_load_node_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="missing; create it"):
        load_node_config(tmp_path, pnn=0)
    make_node_dir(tmp_path)
    with pytest.raises(ConfigError, match="node 1 is deleted"):
        load_node_config(tmp_path, pnn=1)
    with pytest.raises(ConfigError, match="has no node 3"):
        load_node_config(tmp_path, pnn=3)
    (tmp_path / "nodes").write_text("198.51.100.77\n")
    with pytest.raises(ConfigError, match="none of its addresses"):
        load_node_config(tmp_path)
    (tmp_path / "ctdb.tunables").write_text("Bogus=1\n")
    with pytest.raises(ConfigError) as e:
        load_node_config(tmp_path, pnn=0)
    assert str(e.value).startswith(f"{tmp_path / 'ctdb.tunables'}:1: unknown tunable")
