"""Property tests (hypothesis): every parser of outside input either parses
or raises the error it declares, nothing else - the wire decoder, the
control protocol, the CTDB configuration files and the CTDB CLI outputs.

Inputs are random text biased towards each grammar (its tokens, separators
and line ends, so most examples get past the first line) and mutations of
valid documents; the round-trip properties check that what our formatters
write, our parsers read back unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness import ctdb
from harness.ctdb import ConfigError, NodeFlags, NodeStatus, OutputError
from harness.ctdb.configfile import decode_utf8
from harness.ctdb.tunables import TunableError, parse_listvars
from harness.ctdb.tunables_file import parse_tunables
from harness.failover import control, schema, wire

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
CTX = schema.Context(pnns=frozenset({0, 1, 2}),
                     ips=frozenset({"203.0.113.201", "203.0.113.202", "203.0.113.203"}))
KEY = b"k" * 32


def grammar_text(tokens: list[str]) -> st.SearchStrategy[str]:
    """Lines made of the grammar's tokens, random words and separators."""
    piece = st.one_of(st.sampled_from(tokens), st.text(max_size=8),
                      st.sampled_from([" ", "\t", "=", "#", "/", ":", "|", "\r", "\\", "'", '"']))
    line = st.lists(piece, max_size=8).map("".join)
    return st.lists(line, max_size=8).map("\n".join)


def mutated(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A valid document with one character deleted, replaced or inserted."""
    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        text = draw(valid)
        i = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["del", "sub", "ins"]))
        c = draw(st.characters(codec="utf-8"))
        if op == "del":
            return text[:i] + text[i + 1:]
        return text[:i] + c + text[i + (op == "sub"):]
    return mutate()


# -- the wire ------------------------------------------------------------------------------
FIELD_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats(allow_nan=True)
    | st.text(max_size=20) | st.sampled_from(sorted(CTX.ips) + ["203.0.113.9", "1.2.3", "::1"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                   max_size=4),
    max_leaves=10)


@st.composite
def messages(draw: st.DrawFn) -> dict:
    """Objects shaped like messages: a known type, its fields or others, any values."""
    kind = draw(st.sampled_from([*schema.SCHEMA, "nope"]))
    names = list(schema.SCHEMA.get(kind, {})) + ["extra"]
    chosen = draw(st.lists(st.sampled_from(names), unique=True))
    return {"type": kind, **{n: draw(FIELD_VALUES) for n in chosen}}


@SETTINGS
@given(st.one_of(messages(), FIELD_VALUES))
def test_decode_of_any_authenticated_json_validates_or_raises_bad_message(msg):
    body = json.dumps(msg).encode()
    try:
        got = wire.decode(body, CTX)
    except schema.BadMessage as e:
        assert e.field
        return
    # accepted: then every field of its type is present and checks out
    fields = schema.SCHEMA[got["type"]]
    assert set(got) == {"type", *fields}
    assert all(check(got[n], CTX) is None for n, check in fields.items())


@SETTINGS
@given(st.binary(max_size=200))
def test_decode_of_any_bytes_raises_only_bad_message(body):
    with contextlib.suppress(schema.BadMessage):
        wire.decode(body, CTX)


@SETTINGS
@given(st.binary(max_size=300))
def test_receiver_refuses_any_frame_not_made_with_the_key(frame):
    with pytest.raises(wire.BadFrame):
        wire.Receiver(KEY, b"c" * wire.CHALLENGE_LEN).open(frame)


VALID = st.sampled_from([
    {"type": "keepalive"},
    {"type": "hello", "pnn": 1},
    {"type": "flags", "pnn": 2, "flags": 2, "partial": False},
    {"type": "leader", "pnn": 0, "generation": 12345},
    {"type": "take_ip", "id": 7, "ip": "203.0.113.202"},
    {"type": "ips", "id": 3, "known": ["203.0.113.201"], "available": [], "held": [],
     "running": True, "hears": [0, 1]},
    {"type": "ipreallocated", "id": 9, "assignment": {"203.0.113.201": -1}},
])


@SETTINGS
@given(st.lists(VALID, min_size=1, max_size=5), st.data())
def test_frames_round_trip_and_any_change_replay_or_reorder_is_refused(msgs, data):
    challenge = wire.new_challenge()
    tx = wire.Sender(KEY, challenge)
    frames = [tx.encode(m)[4:] for m in msgs]
    rx = wire.Receiver(KEY, challenge)
    assert [wire.decode(rx.open(f), CTX) for f in frames] == msgs
    # replay of any frame already seen, on this connection or a fresh one
    i = data.draw(st.integers(0, len(frames) - 1))
    with pytest.raises(wire.BadFrame, match="sequence"):
        rx.open(frames[i])
    fresh = wire.Receiver(KEY, wire.new_challenge())
    with pytest.raises(wire.BadFrame, match="MAC"):
        fresh.open(frames[0])
    # one flipped bit anywhere
    f = bytearray(frames[i])
    pos = data.draw(st.integers(0, len(f) * 8 - 1))
    f[pos // 8] ^= 1 << (pos % 8)
    with pytest.raises(wire.BadFrame):
        wire.Receiver(KEY, challenge).open(bytes(f))


def test_oversized_length_is_refused_before_reading_the_body():
    async def go() -> None:
        r = asyncio.StreamReader()
        r.feed_data(struct.pack("!I", wire.MAX_FRAME + 1))
        with pytest.raises(wire.BadFrame, match="exceeds"):
            await wire.Receiver(KEY, b"c" * 16).read_body(r)
    asyncio.run(go())


# -- the control protocol ------------------------------------------------------------------
@SETTINGS
@given(st.one_of(st.binary(max_size=200),
                 st.builds(lambda v: json.dumps(v).encode(), FIELD_VALUES),
                 st.builds(lambda v: json.dumps({"argv": v}).encode(), FIELD_VALUES)))
def test_control_request_parses_or_raises_bad_request(line):
    try:
        argv = control.parse_request(line)
    except control.BadRequest:
        return
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)


# -- configuration files -------------------------------------------------------------------
def _config(parse, text: str) -> None:
    try:
        parse(text)
    except ConfigError as e:
        assert "\n" not in str(e)


ADDR_TOKENS = ["198.18.0.1", "203.0.113.201/24", "::1", "fe80::1%eth0", "2001:db8::1/64",
               "256.1.1.1", "eth1", "bond0", ",", "eth1,eth2", "#"]


@SETTINGS
@given(grammar_text(ADDR_TOKENS) | mutated(st.just("198.18.0.1\n#198.18.0.2\n198.18.0.3\n")))
def test_nodes_file_parses_or_raises_config_error(text):
    _config(ctdb.parse_nodes, text)


@SETTINGS
@given(grammar_text(ADDR_TOKENS)
       | mutated(st.just("203.0.113.201/24 eth1\n203.0.113.202/24 eth1,eth2\n")))
def test_public_addresses_parse_or_raise_config_error(text):
    _config(ctdb.parse_public_addresses, text)


@SETTINGS
@given(grammar_text(["CTDB_X", "=", "yes", "'a b'", '"$x"', "`", ";", "export "])
       | mutated(st.just("CTDB_PARTIALLY_ONLINE_INTERFACES=yes\nX='a b'\n")))
def test_script_options_parse_or_raise_config_error(text):
    _config(ctdb.parse_script_options, text)


@SETTINGS
@given(grammar_text(["MonitorInterval", "IPAllocAlgorithm", "=", "0x1f", "010", "3",
                     "4294967296", "[section]", "MaxRedirectCount"])
       | mutated(st.just("MonitorInterval=3\nIPAllocAlgorithm=2\n")))
def test_tunables_file_parses_or_raises_config_error(text):
    with contextlib.suppress(TunableError):  # declared for a value CTDB would refuse
        _config(parse_tunables, text)


@SETTINGS
@given(st.binary(max_size=120))
def test_any_bytes_decode_or_raise_config_error_at_a_line(data):
    try:
        text = decode_utf8(data, "f")
    except ConfigError as e:
        assert e.line is not None and 1 <= e.line <= data.count(b"\n") + 1
        return
    assert text.encode() == data


# -- CTDB CLI output -----------------------------------------------------------------------
@st.composite
def statuses(draw: st.DrawFn) -> ctdb.ClusterStatus:
    n = draw(st.integers(1, 5))
    flags = [NodeFlags(draw(st.integers(0, 0x3F))) for _ in range(n)]
    this = draw(st.integers(0, n - 1))
    nodes = tuple(NodeStatus(pnn=p, address=ipaddress.ip_address(f"198.18.0.{p + 1}"),
                             flags=flags[p], this_node=p == this) for p in range(n))
    active = tuple(nd.pnn for nd in nodes if not nd.flags & NodeFlags.INACTIVE)
    return ctdb.ClusterStatus(nodes=nodes, generation=draw(st.integers(1, 2**31 - 1)),
                              recovery_mode_normal=True,
                              leader=draw(st.none() | st.integers(0, n - 1)), vnn_map=active)


def _output(parse, text: str) -> None:
    with contextlib.suppress(OutputError):
        parse(text)


@SETTINGS
@given(statuses())
def test_status_round_trips(status):
    assume(not any(nd.flags & NodeFlags.DELETED for nd in status.nodes))
    x = ctdb.parse_status(ctdb.format_status_x(status))
    assert [(nd.pnn, nd.flags) for nd in x.nodes] == [(nd.pnn, nd.flags) for nd in status.nodes]


@SETTINGS
@given(mutated(statuses().map(ctdb.format_status))
       | mutated(statuses().map(ctdb.format_status_x))
       | grammar_text(["pnn:0", "198.18.0.1", "OK", "UNHEALTHY", "(THIS NODE)", "|Node|",
                       "Number of nodes:3", "Generation:1", "Recovery mode:NORMAL (0)"]))
def test_status_and_nodestatus_parse_or_raise_output_error(text):
    _output(ctdb.parse_status, text)
    _output(ctdb.parse_nodestatus, text)


@SETTINGS
@given(mutated(st.just(ctdb.format_ip(None, {ipaddress.ip_address("203.0.113.201"): 0,
                                              ipaddress.ip_address("203.0.113.202"): -1})))
       | mutated(st.just(ctdb.format_ip_x({ipaddress.ip_address("203.0.113.201"): 1})))
       | grammar_text(["Public IPs on ALL nodes", "203.0.113.201", "-1", "|Public IP|Node|"]))
def test_ip_output_parses_or_raises_output_error(text):
    _output(ctdb.parse_ip, text)


@SETTINGS
@given(mutated(st.just(ctdb.format_ifaces(0, [ctdb.IfaceInfo("eth1", True, 1)])))
       | grammar_text(["Interfaces on node 0", "name:eth1", "link:up", "references:1"]))
def test_ifaces_output_parses_or_raises_output_error(text):
    _output(ctdb.parse_ifaces, text)


@SETTINGS
@given(mutated(st.just("MonitorInterval            = 15\nKeepaliveLimit = 5\n"))
       | grammar_text(["MonitorInterval", " = ", "15", "Nope"]))
def test_listvars_parses_or_raises_value_error(text):
    with contextlib.suppress(ValueError):  # declared (an unknown name: TunableError, one)
        parse_listvars(text)
