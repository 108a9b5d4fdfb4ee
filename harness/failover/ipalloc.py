"""CTDB's public-IP allocation (ipalloc) as a pure function.

The native daemon must move addresses exactly where CTDB 4.17 would, so that
a scenario gives the same layout whichever implementation runs it.  This module
re-implements CTDB's three algorithms (deterministic, non-deterministic, LCP2)
from their described behaviour, including the tie-breaks and quirks that decide
the final layout:

* Addresses are processed in descending order of CTDB's 128-bit key (an IPv4
  address is the low 32 bits, so IPv6 addresses come first).
* A node may host an address only if it is RUNNING, neither INACTIVE nor
  DISABLED, and has the address in its available (link-up) set.  This is 4.17
  behaviour: NoIPHostOnAllDisabled no longer exists, so when every node is
  unhealthy nothing is hosted.
* The LCP2 "distance" is CTDB's per-32-bit-word sum (not a true common-prefix
  length once an IPv6 word differs); costs are sums of its squares.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from harness.ctdb import NodeFlags

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNASSIGNED = -1
"""Holder value for an address that no node hosts."""

NOTICE = 25
"""CTDB's NOTICE level sits between Python's INFO and WARNING."""

_CANNOT_HOST = NodeFlags.INACTIVE | NodeFlags.DISABLED
_WORD = 0xFFFFFFFF

log = logging.getLogger(__name__)


class Algorithm(IntEnum):
    """Values of CTDB's IPAllocAlgorithm tunable."""

    DETERMINISTIC = 0
    NONDETERMINISTIC = 1
    LCP2 = 2

    @classmethod
    def from_tunable(cls, value: int) -> Algorithm:
        """As ctdb_takeover.c's determine_algorithm: any other value is LCP2."""
        return cls(value) if value in (0, 1, 2) else cls.LCP2


@dataclass(frozen=True)
class NodeAlloc:
    """What the allocator needs to know about one node."""

    pnn: int
    flags: NodeFlags = NodeFlags.NONE
    known: frozenset[IPAddress] = frozenset()
    """Public addresses configured on this node."""
    available: frozenset[IPAddress] = frozenset()
    """Known addresses whose interface(s) are link-up on this node."""
    running: bool = True
    """True when the node's runstate is RUNNING."""


@dataclass(frozen=True)
class AllocRequest:
    """One takeover run's input: node states, current layout and tunables."""

    nodes: tuple[NodeAlloc, ...]
    """Indexed by pnn."""
    current: Mapping[IPAddress, int]
    """Every public address -> current holder pnn, or -1 when unassigned."""
    algorithm: Algorithm = Algorithm.LCP2
    no_ip_failback: bool = False
    no_ip_takeover: bool = False
    force_rebalance: frozenset[int] = frozenset()
    """Nodes LCP2 may move addresses onto even though they already hold some
    (CTDB does this for nodes that just had addresses added)."""


def node_can_host(node: NodeAlloc) -> bool:
    """Whether CTDB 4.17 lets this node host any public address at all."""
    return node.running and not (node.flags & _CANNOT_HOST)


def ip_key(ip: IPAddress) -> int:
    """CTDB's 128-bit key: IPv4 fills the lowest 32 bits, IPv6 all 128."""
    return int(ip)


def allocation_order(ips: Iterable[IPAddress]) -> list[IPAddress]:
    """Addresses in the order CTDB walks (and prints) them: descending key."""
    return sorted(ips, key=lambda ip: (ip_key(ip), ip.version), reverse=True)


def _key_distance(a: int, b: int) -> int:
    x = a ^ b
    if x >> 32 == 0:
        # Upper three words equal: 32 each, plus leading zeros of the last.
        return 128 - x.bit_length()
    return sum(32 - ((x >> shift) & _WORD).bit_length() for shift in (96, 64, 32, 0))


def ip_distance(a: IPAddress, b: IPAddress) -> int:
    """CTDB's LCP2 distance: per 32-bit word of the key, 32 if the words are
    equal, else the leading zeros of their XOR; summed over all four words."""
    return _key_distance(ip_key(a), ip_key(b))


def lcp2_imbalance(ips: Iterable[IPAddress]) -> int:
    """LCP2 cost of one node holding these addresses: the sum, over each
    pair, of the squared distance."""
    keys = [ip_key(ip) for ip in ips]
    return sum(
        _key_distance(keys[i], keys[j]) ** 2
        for i in range(len(keys))
        for j in range(i + 1, len(keys))
    )


def allocate(req: AllocRequest) -> dict[IPAddress, int]:
    """New holder for every public IP (-1 when no node can host it)."""
    state = _State.build(req)
    if state.num_nodes == 0:
        return {ip: UNASSIGNED for ip in state.ips}
    if req.algorithm == Algorithm.DETERMINISTIC:
        _deterministic(state, req.no_ip_failback)
    elif req.algorithm == Algorithm.NONDETERMINISTIC:
        _nondeterministic(state, req.no_ip_failback)
    else:
        # Any other value selects LCP2, as CTDB does.
        _Lcp2(state).run(req.no_ip_failback, req.force_rebalance)
    return dict(zip(state.ips, state.owner, strict=True))


class _State:
    """Mutable working layout shared by the three algorithms."""

    def __init__(
        self,
        ips: list[IPAddress],
        owner: list[int],
        takers: list[tuple[int, ...]],
        hosts: list[frozenset[int]],
        num_nodes: int,
    ) -> None:
        self.ips = ips
        self.owner = owner
        self.takers = takers
        """Per address, nodes that may take it over (empty under NoIPTakeover)."""
        self.hosts = hosts
        """Per address, nodes that may keep hosting it."""
        self.num_nodes = num_nodes
        self.counts = [0] * num_nodes
        for pnn in owner:
            if pnn != UNASSIGNED:
                self.counts[pnn] += 1

    @classmethod
    def build(cls, req: AllocRequest) -> _State:
        nodes = req.nodes
        for index, node in enumerate(nodes):
            if node.pnn != index:
                raise ValueError(f"nodes[{index}] has pnn {node.pnn}; nodes must be indexed by pnn")
            stray = node.available - node.known
            if stray:
                raise ValueError(
                    f"node {node.pnn}: available addresses not known: "
                    + ", ".join(str(ip) for ip in allocation_order(stray))
                )
        universe: set[IPAddress] = set(req.current)
        for node in nodes:
            universe |= node.known
        ips = allocation_order(universe)
        eligible = [node for node in nodes if node_can_host(node)]
        hosts = [frozenset(n.pnn for n in eligible if ip in n.available) for ip in ips]
        takers = [() if req.no_ip_takeover else tuple(sorted(h)) for h in hosts]
        owner = []
        for ip in ips:
            holder = req.current.get(ip, UNASSIGNED)
            # A holder that cannot host the address loses it at once anyway.
            owner.append(holder if 0 <= holder < len(nodes) else UNASSIGNED)
        return cls(ips, owner, takers, hosts, len(nodes))

    def set_owner(self, index: int, pnn: int) -> None:
        old = self.owner[index]
        if old != UNASSIGNED:
            self.counts[old] -= 1
        if pnn != UNASSIGNED:
            self.counts[pnn] += 1
        self.owner[index] = pnn

    def unassign_unsuitable(self) -> None:
        """Drop addresses from holders that may no longer host them."""
        for index, pnn in enumerate(self.owner):
            if pnn != UNASSIGNED and pnn not in self.hosts[index]:
                log.debug("Unassign IP: %s from %d", self.ips[index], pnn)
                self.set_owner(index, UNASSIGNED)

    def least_loaded_taker(self, index: int) -> int:
        """Node with the fewest addresses that may take this one; lowest pnn
        wins a tie.  -1 (with CTDB's warning) when there is none."""
        best = UNASSIGNED
        for pnn in self.takers[index]:
            if best == UNASSIGNED or self.counts[pnn] < self.counts[best]:
                best = pnn
        if best == UNASSIGNED:
            log.warning("Could not find node to take over public address '%s'", self.ips[index])
        return best

    def basic_allocate_unassigned(self) -> None:
        for index, pnn in enumerate(self.owner):
            if pnn != UNASSIGNED:
                continue
            target = self.least_loaded_taker(index)
            if target == UNASSIGNED:
                log.warning("Failed to find node to cover ip %s", self.ips[index])
            else:
                self.set_owner(index, target)


def _deterministic(state: _State, no_ip_failback: bool) -> None:
    """Home every address on node (position mod node count), then re-home
    what cannot stay there on the least-loaded node."""
    log.log(NOTICE, "Deterministic IPs enabled. Resetting all ip allocations")
    for index in range(len(state.ips)):
        state.set_owner(index, index % state.num_nodes)
    if no_ip_failback:
        log.warning(
            "WARNING: 'NoIPFailback' set but ignored - incompatible with 'Deterministic IPs"
        )
    state.unassign_unsuitable()
    state.basic_allocate_unassigned()


def _nondeterministic(state: _State, no_ip_failback: bool) -> None:
    """Fill gaps on the least-loaded nodes, then even out address counts."""
    state.unassign_unsuitable()
    state.basic_allocate_unassigned()
    if not no_ip_failback:
        _basic_failback(state, len(state.ips))


def _basic_failback(state: _State, num_ips: int) -> None:
    """Whenever the nodes able to take some address differ in load by more
    than one, re-home the first address of the busiest; restart each time,
    giving up after num_ips + 5 re-homings."""
    retries = 0
    restart = True
    while restart:
        restart = False
        for index, pnn in enumerate(state.owner):
            if pnn == UNASSIGNED:
                continue
            maxnode = minnode = UNASSIGNED
            maxnum = minnum = 0
            for node in state.takers[index]:
                num = state.counts[node]
                if maxnode == UNASSIGNED or num > maxnum:
                    maxnode, maxnum = node, num
                if minnode == UNASSIGNED or num < minnum:
                    minnode, minnum = node, num
            if maxnode == UNASSIGNED:
                log.warning(
                    "Could not find maxnode. May not be able to serve ip '%s'", state.ips[index]
                )
                continue
            if maxnum <= minnum + 1 or retries >= num_ips + 5:
                continue
            for victim, holder in enumerate(state.owner):
                if holder == maxnode:
                    target = state.least_loaded_taker(victim)
                    if target != UNASSIGNED:
                        state.set_owner(victim, target)
                    retries += 1
                    restart = True
                    break
            if restart:
                break


class _Lcp2:
    """LCP2: keep addresses that share prefixes on different nodes.

    dsum[n][i] is the sum of squared distances from address i to the other
    addresses currently on node n, kept up to date on every move so that each
    candidate costs O(1) to evaluate.
    """

    def __init__(self, state: _State) -> None:
        self.state = state
        keys = [ip_key(ip) for ip in state.ips]
        count = len(keys)
        # Squared distances; the diagonal is 0 because CTDB never compares
        # an address with itself.
        d2 = [[0] * count for _ in range(count)]
        for i in range(count):
            row = d2[i]
            ki = keys[i]
            for j in range(i + 1, count):
                row[j] = d2[j][i] = _key_distance(ki, keys[j]) ** 2
        self.d2 = d2
        self.dsum = [[0] * count for _ in range(state.num_nodes)]
        self.imbalance = [0] * state.num_nodes

    def _move(self, index: int, pnn: int) -> None:
        row = self.d2[index]
        old = self.state.owner[index]
        if old != UNASSIGNED:
            self.dsum[old] = [a - b for a, b in zip(self.dsum[old], row, strict=True)]
        if pnn != UNASSIGNED:
            self.dsum[pnn] = [a + b for a, b in zip(self.dsum[pnn], row, strict=True)]
        self.state.set_owner(index, pnn)

    def run(self, no_ip_failback: bool, force_rebalance: Iterable[int]) -> None:
        state = self.state
        state.unassign_unsuitable()
        for index, pnn in enumerate(state.owner):
            if pnn != UNASSIGNED:
                row = self.d2[index]
                self.dsum[pnn] = [a + b for a, b in zip(self.dsum[pnn], row, strict=True)]
        for pnn in range(state.num_nodes):
            mine = [i for i, holder in enumerate(state.owner) if holder == pnn]
            # Each pair appears twice in the per-address sums.
            self.imbalance[pnn] = sum(self.dsum[pnn][i] for i in mine) // 2
        # Nodes already holding addresses were healthy before: only the others
        # ("newly healthy") may receive addresses during rebalancing.
        candidates = [True] * state.num_nodes
        for pnn in state.owner:
            if pnn != UNASSIGNED:
                candidates[pnn] = False
        for pnn in sorted(force_rebalance):
            if 0 <= pnn < state.num_nodes:
                log.log(NOTICE, "Forcing rebalancing of IPs to node %u", pnn)
                candidates[pnn] = True
            else:
                log.error("unknown node %u", pnn)
        self._allocate_unassigned()
        if no_ip_failback or not any(candidates):
            return
        self._failback(candidates)

    def _allocate_unassigned(self) -> None:
        """Repeatedly place the unassigned address/node pair that adds the
        least cost; the first pair found wins a tie."""
        state = self.state
        while UNASSIGNED in state.owner:
            best: tuple[int, int, int] | None = None
            for index, pnn in enumerate(state.owner):
                if pnn != UNASSIGNED:
                    continue
                for node in state.takers[index]:
                    dsum = self.dsum[node][index]
                    if best is None or dsum < best[2]:
                        best = (index, node, dsum)
            if best is None:
                break
            index, node, dsum = best
            self.imbalance[node] += dsum
            self._move(index, node)
            log.info(" %s -> %d [+%d]", state.ips[index], node, dsum)
        for index, pnn in enumerate(state.owner):
            if pnn == UNASSIGNED:
                log.warning("Failed to find node to cover ip %s", state.ips[index])

    def _failback(self, candidates: list[bool]) -> None:
        """Move one address at a time off the most imbalanced node that has
        a move improving things, until no node has one."""
        nodes = range(self.state.num_nodes)
        while True:
            # Stable sort: equal imbalances keep pnn order, as CTDB's does.
            order = sorted(nodes, key=lambda pnn: self.imbalance[pnn], reverse=True)
            for pnn in order:
                if self.imbalance[pnn] == 0:
                    return
                if self._failback_candidate(pnn, candidates):
                    break
            else:
                return

    def _failback_candidate(self, src: int, candidates: list[bool]) -> bool:
        state = self.state
        imbalance = self.imbalance
        src_total = imbalance[src]
        best: tuple[int, int, int, int] | None = None  # index, dst, src imbl, dst imbl
        for index, pnn in enumerate(state.owner):
            if pnn != src:
                continue
            srcdsum = self.dsum[src][index]
            srcimbl = src_total - srcdsum
            for dst in state.takers[index]:
                if not candidates[dst]:
                    continue
                dstdsum = self.dsum[dst][index]
                dstimbl = imbalance[dst] + dstdsum
                if (
                    dstimbl < src_total
                    and dstdsum < srcdsum
                    and (best is None or srcimbl + dstimbl < best[2] + best[3])
                ):
                    best = (index, dst, srcimbl, dstimbl)
        if best is None:
            return False
        index, dst, srcimbl, dstimbl = best
        log.info(
            "%d [%d] -> %s -> %d [+%d]",
            src,
            srcimbl - imbalance[src],
            state.ips[index],
            dst,
            dstimbl - imbalance[dst],
        )
        imbalance[src] = srcimbl
        imbalance[dst] = dstimbl
        self._move(index, dst)
        return True
