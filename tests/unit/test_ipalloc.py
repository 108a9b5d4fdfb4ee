"""CTDB IP allocation: CTDB's own expected layouts, then the rules one by one.

The data files under data/takeover/ are CTDB's takeover unit tests transcribed;
_ctdb_request() builds the request the way CTDB's ctdb_takeover_tests driver
builds its ipalloc state, so a mismatch means the allocator, not the harness,
disagrees with CTDB.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.ctdb import NodeFlags
from harness.failover.ipalloc import (
    NOTICE,
    UNASSIGNED,
    Algorithm,
    AllocRequest,
    IPAddress,
    NodeAlloc,
    allocate,
    allocation_order,
    ip_distance,
    lcp2_imbalance,
    node_can_host,
)

DATA = Path(__file__).parent / "data" / "takeover"
LOGGER = "harness.failover.ipalloc"
STAMP = "${TEST_DATE_STAMP}"
RUNSTATE_RUNNING = 5
ALGORITHMS = {
    "lcp2": Algorithm.LCP2,
    "nondet": Algorithm.NONDETERMINISTIC,
    "det": Algorithm.DETERMINISTIC,
}
LEVELS = {
    "ERR": logging.ERROR,
    "WARNING": logging.WARNING,
    "NOTICE": NOTICE,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}
KEYWORDS = ("nodestates", "runstate", "noiptakeover", "multi", "input", "expected", "log")


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


# --- reading CTDB's cases ----------------------------------------------------


@dataclass
class Step:
    nodestates: str
    runstate: str | None = None
    noiptakeover: bool = False
    multi: bool = False
    input: list[str] | None = None
    expected: list[str] = field(default_factory=list)
    log_level: int | None = None
    log: list[str] = field(default_factory=list)


def read_case(path: Path) -> list[Step]:
    """Parse one data/takeover file (shape described in its README)."""
    steps: list[Step] = []
    block: list[str] | None = None
    for raw in path.read_text().splitlines():
        if raw.startswith("#"):
            continue
        word, _, rest = raw.partition(" ")
        if word not in KEYWORDS:
            if block is None:
                assert not raw.strip(), f"{path.name}: stray line {raw!r}"
            else:
                block.append(raw)
            continue
        block = None
        if word == "nodestates":
            steps.append(Step(nodestates=rest.strip()))
            continue
        step = steps[-1]
        if word == "runstate":
            step.runstate = rest.strip()
        elif word == "noiptakeover":
            step.noiptakeover = int(rest, 0) != 0
        elif word == "multi":
            step.multi = True
        elif word == "input":
            step.input = block = []
        elif word == "expected":
            block = step.expected
        else:
            step.log_level = LEVELS[rest.strip()]
            block = step.log
    for step in steps:
        # Trailing blank lines belong to no list.
        for lines in (step.input, step.expected, step.log):
            while lines and not lines[-1].strip():
                lines.pop()
    return steps


def _parse_line(line: str) -> tuple[IPAddress, int, list[int] | None]:
    fields = line.replace("#", " ").split()
    pnn = int(fields[1]) if len(fields) > 1 else UNASSIGNED
    allowed = [int(n) for n in fields[2].split(",")] if len(fields) > 2 else None
    return ip(fields[0]), pnn, allowed


def _ctdb_request(algorithm: Algorithm, step: Step, lines: list[str]) -> AllocRequest:
    """The request CTDB's test driver would run: each node reports its known
    addresses with its idea of their holders; only self-claims count."""
    flags = [int(tok, 0) for tok in step.nodestates.split(",")]
    count = len(flags)
    reports: list[list[tuple[IPAddress, int]]] = [[] for _ in range(count)]
    if step.multi:
        node = 0
        for line in lines:
            if not line.strip():
                node += 1
                continue
            addr, pnn, allowed = _parse_line(line)
            assert allowed is None
            reports[node].append((addr, pnn))
    else:
        for line in lines:
            addr, pnn, allowed = _parse_line(line)
            for node in range(count) if allowed is None else allowed:
                reports[node].append((addr, pnn))
    current: dict[IPAddress, int] = {}
    for node, report in enumerate(reports):
        for addr, pnn in report:
            if pnn == node:
                current[addr] = node
            else:
                current.setdefault(addr, UNASSIGNED)
    runstate = (
        [int(tok) for tok in step.runstate.split(",")]
        if step.runstate
        else [RUNSTATE_RUNNING] * count
    )
    nodes = []
    for pnn in range(count):
        known = frozenset(addr for addr, _ in reports[pnn])
        nodes.append(
            NodeAlloc(
                pnn=pnn,
                flags=NodeFlags(flags[pnn]),
                known=known,
                available=known,
                running=runstate[pnn] == RUNSTATE_RUNNING,
            )
        )
    return AllocRequest(
        nodes=tuple(nodes),
        current=current,
        algorithm=algorithm,
        no_ip_takeover=step.noiptakeover,
    )


def _layout_lines(result: dict[IPAddress, int]) -> list[str]:
    return [f"{addr} {result[addr]}" for addr in allocation_order(result)]


CASES = sorted(p.stem for p in DATA.glob("*.txt"))


def test_enough_ctdb_cases_are_transcribed():
    assert len(CASES) >= 15
    assert {name.split(".")[0] for name in CASES} == set(ALGORITHMS)


@pytest.mark.parametrize("name", CASES)
def test_ctdb_case(name: str, caplog: pytest.LogCaptureFixture):
    algorithm = ALGORITHMS[name.split(".")[0]]
    steps = read_case(DATA / f"{name}.txt")
    assert steps, name
    previous: list[str] | None = None
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    for number, step in enumerate(steps, 1):
        lines = step.input if step.input is not None else previous
        assert lines is not None, f"{name} step {number} has no input"
        caplog.clear()
        result = allocate(_ctdb_request(algorithm, step, lines))
        got = _layout_lines(result)
        assert got == step.expected, f"{name} step {number} ({step.nodestates})"
        if step.log_level is not None:
            logged = [
                r.getMessage()
                for r in caplog.records
                if r.name == LOGGER and r.levelno >= step.log_level
            ]
            assert logged == [line.removeprefix(STAMP) for line in step.log], name
        previous = got


def test_reader_sees_each_step_of_a_multi_step_case():
    steps = read_case(DATA / "lcp2.032.txt")
    assert len(steps) == 17
    assert steps[1].nodestates == "0x20,0,0,0" and steps[1].input is None
    assert all(len(step.expected) == 16 for step in steps)


def test_reader_splits_multi_input_per_node():
    (step,) = read_case(DATA / "lcp2.029.txt")
    assert step.multi and step.input is not None
    assert sum(1 for line in step.input if not line.strip()) == 3
    request = _ctdb_request(Algorithm.LCP2, step, step.input)
    # Node 0 says .173 is on node 2 and node 2 says it is on node 0: nobody
    # claims it.  Node 2's own claim to .179 stands.
    assert request.current[ip("130.216.30.173")] == UNASSIGNED
    assert request.current[ip("130.216.30.179")] == 2


# --- LCP2 cost ---------------------------------------------------------------

NINE = [f"192.168.20.{h}" for h in range(249, 255)] + [f"192.168.21.{h}" for h in (252, 253, 254)]


def test_ip_distance_counts_common_leading_bits_of_the_key():
    assert ip_distance(ip("192.168.20.253"), ip("192.168.20.252")) == 127
    assert ip_distance(ip("192.168.20.253"), ip("192.168.20.253")) == 128
    assert ip_distance(ip("10.0.0.1"), ip("138.0.0.1")) == 96
    assert ip_distance(ip("fd00::1"), ip("7d00::1")) == 96


def test_ip_distance_keeps_counting_after_the_first_differing_word():
    # CTDB sums per 32-bit word, so equal words after a difference still add 32.
    assert ip_distance(ip("2001:db8:0:1::5"), ip("2001:db8:0:2::5")) == 32 + 30 + 32 + 32


def test_lcp2_imbalance_matches_ctdb_debug_output():
    # lcp2.005: node 1 holding all nine addresses.
    assert lcp2_imbalance(ip(a) for a in NINE) == 539166
    # lcp2.031: the three loaded nodes before node 0 returns.
    node1 = ["10.19.99.250", "10.19.99.253"] + [f"130.216.30.{h}" for h in (171, 175, 176, 178)]
    node2 = ["10.19.99.251"] + [f"130.216.30.{h}" for h in (170, 172, 179, 181)]
    node3 = ["10.19.99.252"] + [f"130.216.30.{h}" for h in (173, 174, 177, 180)]
    assert lcp2_imbalance(map(ip, node1)) == 181370
    assert lcp2_imbalance(map(ip, node2)) == 128630
    assert lcp2_imbalance(map(ip, node3)) == 128881
    assert lcp2_imbalance([ip("10.0.0.1")]) == 0


def test_allocation_order_is_descending_key_with_ipv6_first():
    ips = [ip("10.0.0.2"), ip("fd00::1"), ip("192.168.1.1"), ip("10.0.0.10"), ip("2001:db8::1")]
    assert [str(a) for a in allocation_order(ips)] == [
        "fd00::1", "2001:db8::1", "192.168.1.1", "10.0.0.10", "10.0.0.2"]


# --- eligibility -------------------------------------------------------------


def _node(pnn: int, ips: list[IPAddress], flags: NodeFlags = NodeFlags.NONE,
          running: bool = True, available: list[IPAddress] | None = None) -> NodeAlloc:
    known = frozenset(ips)
    return NodeAlloc(pnn=pnn, flags=flags, known=known,
                     available=known if available is None else frozenset(available),
                     running=running)


def _request(nodes: list[NodeAlloc], current: dict[IPAddress, int], **kw) -> AllocRequest:
    return AllocRequest(nodes=tuple(nodes), current=current, **kw)


TWO = [ip("10.0.0.1"), ip("10.0.0.2")]


@pytest.mark.parametrize("algorithm", list(Algorithm))
@pytest.mark.parametrize(
    "flag",
    [NodeFlags.DISCONNECTED, NodeFlags.UNHEALTHY, NodeFlags.PERMANENTLY_DISABLED,
     NodeFlags.BANNED, NodeFlags.DELETED, NodeFlags.STOPPED],
)
def test_node_with_blocking_flag_loses_and_gets_nothing(flag: NodeFlags, algorithm: Algorithm):
    nodes = [_node(0, TWO, flags=flag), _node(1, TWO)]
    result = allocate(_request(nodes, {TWO[0]: 0, TWO[1]: UNASSIGNED}, algorithm=algorithm))
    assert result == {TWO[0]: 1, TWO[1]: 1}
    assert not node_can_host(nodes[0]) and node_can_host(nodes[1])


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_node_not_running_gets_nothing(algorithm: Algorithm):
    nodes = [_node(0, TWO, running=False), _node(1, TWO)]
    result = allocate(_request(nodes, {TWO[0]: 0, TWO[1]: 0}, algorithm=algorithm))
    assert result == {TWO[0]: 1, TWO[1]: 1}


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_address_with_link_down_moves_to_a_node_with_link_up(algorithm: Algorithm):
    nodes = [_node(0, TWO, available=[TWO[1]]), _node(1, TWO)]
    result = allocate(_request(nodes, {TWO[0]: 0, TWO[1]: 1}, algorithm=algorithm))
    assert result[TWO[0]] == 1


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_all_nodes_unhealthy_hosts_nothing(algorithm: Algorithm):
    # 4.17 has no NoIPHostOnAllDisabled: unhealthy nodes never host.
    nodes = [_node(p, TWO, flags=NodeFlags.UNHEALTHY) for p in range(2)]
    result = allocate(_request(nodes, {TWO[0]: 0, TWO[1]: 1}, algorithm=algorithm))
    assert result == {TWO[0]: UNASSIGNED, TWO[1]: UNASSIGNED}


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_address_no_node_can_host_is_unassigned(algorithm: Algorithm):
    only_on_0 = ip("10.0.0.9")
    orphan = ip("10.0.0.99")  # in the layout but configured nowhere
    nodes = [_node(0, [*TWO, only_on_0], flags=NodeFlags.BANNED), _node(1, TWO)]
    current = {TWO[0]: 0, TWO[1]: 1, only_on_0: 0, orphan: 1}
    result = allocate(_request(nodes, current, algorithm=algorithm))
    assert result == {TWO[0]: 1, TWO[1]: 1, only_on_0: UNASSIGNED, orphan: UNASSIGNED}


def test_no_nodes_at_all_leaves_everything_unassigned():
    assert allocate(_request([], {TWO[0]: 0})) == {TWO[0]: UNASSIGNED}


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_holder_outside_the_node_list_counts_as_unassigned(algorithm: Algorithm):
    nodes = [_node(0, TWO), _node(1, TWO)]
    result = allocate(_request(nodes, {TWO[0]: 7, TWO[1]: -5}, algorithm=algorithm))
    assert sorted(result.values()) == [0, 1]


def test_request_must_be_indexed_by_pnn_and_available_must_be_known():
    with pytest.raises(ValueError, match="indexed by pnn"):
        allocate(_request([_node(1, TWO)], {}))
    with pytest.raises(ValueError, match="not known"):
        allocate(_request([_node(0, [TWO[0]], available=TWO)], {}))


def test_unknown_algorithm_value_means_lcp2():
    nodes = [_node(p, [ip(a) for a in NINE]) for p in range(3)]
    current = {ip(a): 1 for a in NINE}
    lcp2 = allocate(_request(nodes, current))
    assert allocate(_request(nodes, current, algorithm=7)) == lcp2  # type: ignore[arg-type]


def test_lcp2_refuses_a_move_that_costs_the_target_more_than_it_saves():
    # Node 0 keeps .1.226/.1.215 and gains 128.14; node 1 gets 128.224/.1.192.
    # Moving 128.14 to node 1 would leave node 1 below node 0's old imbalance
    # (39488 < 39972) but costs node 1 26944 where it saved node 0 only 25088,
    # so CTDB does not make it.
    addrs = [ip(a) for a in ("10.0.128.224", "10.0.128.14", "10.0.1.226", "10.0.1.215",
                             "10.0.1.192")]
    nodes = [_node(0, addrs), _node(1, addrs)]
    current = dict.fromkeys(addrs, UNASSIGNED) | {addrs[2]: 0, addrs[3]: 0}
    assert allocate(_request(nodes, current)) == {
        addrs[0]: 1, addrs[1]: 0, addrs[2]: 0, addrs[3]: 0, addrs[4]: 1}


def test_lcp2_refuses_a_move_that_leaves_the_target_worse_than_the_source_was():
    # Node 0 (newly healthy) takes both unassigned 128.x addresses, imbalance
    # 15376.  Moving 1.154 off node 1 (39249) would cut the total but leave
    # node 0 at 40464, above node 1's 39249, so CTDB keeps the layout.
    addrs = [ip(a) for a in ("10.0.128.220", "10.0.128.214", "10.0.128.31", "10.0.1.154",
                             "10.0.0.61")]
    nodes = [_node(0, addrs), _node(1, addrs)]
    current = {addrs[0]: UNASSIGNED, addrs[1]: UNASSIGNED, addrs[2]: 1, addrs[3]: 1,
               addrs[4]: 1}
    assert allocate(_request(nodes, current)) == {
        addrs[0]: 0, addrs[1]: 0, addrs[2]: 1, addrs[3]: 1, addrs[4]: 1}


def test_nondeterministic_gives_up_when_the_busiest_nodes_first_address_is_stuck():
    # basic_failback always re-homes the *first* address of the busiest node.
    # Here that one can only live on node 0, so each retry changes nothing and
    # after num_ips + 5 retries the empty node 1 is left empty.
    stuck, free = ip("10.0.0.3"), [ip("10.0.0.2"), ip("10.0.0.1")]
    nodes = [_node(0, [stuck, *free]), _node(1, free)]
    current = {stuck: 0, free[0]: 0, free[1]: 0}
    assert allocate(_request(nodes, current, algorithm=Algorithm.NONDETERMINISTIC)) == current
    lcp2 = allocate(_request(nodes, current))
    assert 1 in lcp2.values()


# --- NoIPFailback / NoIPTakeover ---------------------------------------------

ALL_ON_1 = {ip(a): 1 for a in NINE}


def _three(flags: tuple[NodeFlags, NodeFlags, NodeFlags] = (NodeFlags.NONE,) * 3):
    return [_node(p, [ip(a) for a in NINE], flags=flags[p]) for p in range(3)]


@pytest.mark.parametrize("algorithm", [Algorithm.LCP2, Algorithm.NONDETERMINISTIC])
def test_no_ip_failback_keeps_addresses_off_a_returning_node(algorithm: Algorithm):
    moved = allocate(_request(_three(), ALL_ON_1, algorithm=algorithm))
    assert set(moved.values()) == {0, 1, 2}  # without the tunable they spread
    kept = allocate(_request(_three(), ALL_ON_1, algorithm=algorithm, no_ip_failback=True))
    assert kept == ALL_ON_1


@pytest.mark.parametrize("algorithm", [Algorithm.LCP2, Algorithm.NONDETERMINISTIC])
def test_no_ip_failback_still_fails_over(algorithm: Algorithm):
    flags = (NodeFlags.NONE, NodeFlags.UNHEALTHY, NodeFlags.NONE)
    result = allocate(_request(_three(flags), ALL_ON_1, algorithm=algorithm,
                               no_ip_failback=True))
    assert 1 not in result.values() and UNASSIGNED not in result.values()


def test_deterministic_ignores_no_ip_failback(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    plain = allocate(_request(_three(), ALL_ON_1, algorithm=Algorithm.DETERMINISTIC))
    ignored = allocate(_request(_three(), ALL_ON_1, algorithm=Algorithm.DETERMINISTIC,
                                no_ip_failback=True))
    assert ignored == plain and set(plain.values()) == {0, 1, 2}
    assert any("'NoIPFailback' set but ignored" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("algorithm", [Algorithm.LCP2, Algorithm.NONDETERMINISTIC])
def test_no_ip_takeover_keeps_layout_and_leaves_gaps(algorithm: Algorithm):
    # Node 0 holds nothing and node 1 is unhealthy: nothing may be taken over,
    # so node 1's addresses become unassigned rather than moving.
    layout = {ip(a): (1 if i % 2 else 2) for i, a in enumerate(NINE)}
    flags = (NodeFlags.NONE, NodeFlags.UNHEALTHY, NodeFlags.NONE)
    result = allocate(_request(_three(flags), layout, algorithm=algorithm,
                               no_ip_takeover=True))
    assert result == {a: (UNASSIGNED if p == 1 else p) for a, p in layout.items()}
    healthy = allocate(_request(_three(), layout, algorithm=algorithm, no_ip_takeover=True))
    assert healthy == layout


def test_no_ip_takeover_leaves_unassigned_addresses_unassigned():
    # CTDB's takeover_helper test: 10.0.0.34 stays -1 under NoIPTakeover.
    ips = [ip(f"10.0.0.{h}") for h in (31, 32, 33, 34)]
    nodes = [_node(p, ips) for p in range(3)]
    current = {ips[0]: 0, ips[1]: 1, ips[2]: 2, ips[3]: UNASSIGNED}
    result = allocate(_request(nodes, current, no_ip_takeover=True))
    assert result == current
    assert allocate(_request(nodes, current))[ips[3]] != UNASSIGNED


def test_deterministic_still_homes_addresses_under_no_ip_takeover():
    # The modulo step is not a takeover, so addresses still go "home".
    result = allocate(_request(_three(), ALL_ON_1, algorithm=Algorithm.DETERMINISTIC,
                               no_ip_takeover=True))
    order = allocation_order(ALL_ON_1)
    assert [result[a] for a in order] == [i % 3 for i in range(len(order))]


def test_force_rebalance_lets_lcp2_move_onto_a_loaded_node():
    # Node 2 already holds one address, so it is no rebalance target...
    layout = {ip(a): 1 for a in NINE}
    layout[ip(NINE[0])] = 2
    layout[ip(NINE[1])] = 0
    assert allocate(_request(_three(), layout)) == layout
    # ...unless it is forced (CTDB does so for nodes given new addresses).
    forced = allocate(_request(_three(), layout, force_rebalance=frozenset({2})))
    assert sum(1 for p in forced.values() if p == 2) > 1
    assert sum(1 for p in forced.values() if p == 0) == 1


# --- IPv6 --------------------------------------------------------------------


def test_ipv6_addresses_are_allocated_with_ctdbs_distance():
    six = [ip(a) for a in ("fd00:0:0:1::1", "fd00:0:0:1::2", "fd00:0:0:2::1", "fd00:0:0:2::2")]
    nodes = [_node(p, six) for p in range(2)]
    result = allocate(_request(nodes, dict.fromkeys(six, UNASSIGNED)))
    # Worked through by hand with CTDB's per-word distance: each node ends up
    # with one address from each /64.
    assert result == {six[3]: 0, six[2]: 1, six[1]: 1, six[0]: 0}


def test_mixed_families_follow_failover():
    addrs = [ip("2001:db8::10"), ip("2001:db8::11"), ip("192.0.2.10"), ip("192.0.2.11")]
    nodes = [_node(0, addrs, flags=NodeFlags.STOPPED), _node(1, addrs), _node(2, addrs)]
    current = {addrs[0]: 0, addrs[1]: 1, addrs[2]: 0, addrs[3]: 2}
    result = allocate(_request(nodes, current))
    assert result[addrs[1]] == 1 and result[addrs[3]] == 2
    assert {result[addrs[0]], result[addrs[2]]} <= {1, 2}
    assert list(result) == allocation_order(addrs)
