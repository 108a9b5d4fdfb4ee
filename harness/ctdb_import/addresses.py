"""The harness's address plan, and the field's public_addresses placed in it.

Which harness range each public network gets and which address each public
address becomes is chosen to keep what CTDB's allocation depends on (see the
package docstring); the field -> harness mapping records the choice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from harness.ctdb import PublicAddress, parse_public_addresses
from harness.ctdb_import.files import entry_lines, parsed, read_file
from harness.ctdb_import.model import CtdbImportError
from harness.topology import Network

PRIVATE_NETWORK = Network("private", ipaddress.IPv4Network("198.18.0.0/24"))
PUBLIC_RANGES: tuple[ipaddress.IPv4Network, ...] = (
    ipaddress.IPv4Network("203.0.113.0/24"),
    ipaddress.IPv4Network("198.51.100.0/24"),
)
"""The harness's public ranges; with two networks, which takes which keeps the order."""
CLIENT_HOST = 254
"""Network.client_address() is the last host of a /24."""


@dataclass
class _Group:
    """Public interfaces that form one network, and its entries (indexes)."""

    ifaces: list[str]
    entries: list[int]
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network]

    def ips(self, pubs: Sequence[PublicAddress]) -> list[int]:
        return [int(pubs[i].address.ip) for i in self.entries]


def _group_networks(pubs: Sequence[PublicAddress]) -> list[_Group]:
    """Interfaces sharing an address or an overlapping subnet are one network."""
    groups: list[_Group] = []
    for idx, pa in enumerate(pubs):
        net = pa.address.network
        touching = [g for g in groups if set(g.ifaces) & set(pa.ifaces)
                    or any(n.overlaps(net) for n in g.nets)]
        merged = _Group([], [], [])
        for g in touching:
            merged.ifaces += g.ifaces
            merged.entries += g.entries
            merged.nets += g.nets
            groups.remove(g)
        merged.ifaces += [x for x in pa.ifaces if x not in merged.ifaces]
        merged.entries.append(idx)
        merged.nets.append(net)
        merged.entries.sort()
        groups.append(merged)
    groups.sort(key=lambda g: g.entries[0])
    for g in groups:
        g.ifaces.sort(key=lambda x: next(i for i, p in enumerate(pubs) if x in p.ifaces))
    return groups


def _assign_ranges(groups: list[_Group], pubs: Sequence[PublicAddress],
                   src: str, lines: list[int], warnings: list[str]
                   ) -> list[ipaddress.IPv4Network]:
    """The harness range of each group, keeping the numeric order across groups."""
    if len(groups) > len(PUBLIC_RANGES):
        g = groups[len(PUBLIC_RANGES)]
        first = pubs[g.entries[0]]
        raise CtdbImportError(
            src, lines[g.entries[0]],
            f"public network number {len(PUBLIC_RANGES) + 1} ({','.join(first.ifaces)}, "
            f"{first.address.network}); the harness has only {len(PUBLIC_RANGES)} public "
            f"ranges ({', '.join(map(str, PUBLIC_RANGES))})",
            f"import a copy of public_addresses with at most {len(PUBLIC_RANGES)} networks")
    by_value = sorted(range(len(groups)), key=lambda k: min(groups[k].ips(pubs)))
    ordered = all(max(groups[a].ips(pubs)) < min(groups[b].ips(pubs))
                  for a, b in pairwise(by_value))
    ranges = sorted(PUBLIC_RANGES[:len(groups)])
    if ordered:
        out: list[ipaddress.IPv4Network] = [PUBLIC_RANGES[0]] * len(groups)
        for k, r in zip(by_value, ranges, strict=True):
            out[k] = r
        return out
    warnings.append(f"{src}: the public networks' addresses interleave; their numeric order "
                    "across networks is not kept")
    return list(PUBLIC_RANGES[:len(groups)])


def _place(group: _Group, rng: ipaddress.IPv4Network, pubs: Sequence[PublicAddress],
           nodes: int, src: str, lines: list[int], warnings: list[str]
           ) -> dict[int, ipaddress.IPv4Interface]:
    """Harness address of each of the group's entries (see the package docstring)."""
    ips = group.ips(pubs)
    names = ",".join(group.ifaces)
    count = len(ips)
    if count > CLIENT_HOST - 1 - nodes:
        raise CtdbImportError(
            src, lines[group.entries[0]],
            f"{count} public addresses on {names} and {nodes} nodes do not fit in {rng} "
            f"(nodes take hosts 1-{nodes}, the client {CLIENT_HOST})",
            "import a copy with fewer public addresses")
    reserved = {0, 255, CLIENT_HOST, *range(1, nodes + 1)}
    one_24 = len({ip >> 8 for ip in ips}) == 1
    if one_24 and not {ip & 0xFF for ip in ips} & reserved:
        host = {ip: ip & 0xFF for ip in ips}
    else:
        why = ("they span several /24s" if not one_24 else
               f"their last octets collide with the harness's node hosts 1-{nodes} or "
               f"client {CLIENT_HOST}")
        start = CLIENT_HOST - count
        host = {ip: start + k for k, ip in enumerate(sorted(ips))}
        warnings.append(f"{src}:{lines[group.entries[0]]}: public addresses on {names} "
                        f"renumbered to {rng[start]}-{rng[CLIENT_HOST - 1]}: {why}")
    out: dict[int, ipaddress.IPv4Interface] = {}
    clamped = False
    for idx in group.entries:
        field_addr = pubs[idx].address
        prefix = field_addr.network.prefixlen
        if prefix < rng.prefixlen:
            prefix, clamped = rng.prefixlen, True
        out[idx] = ipaddress.IPv4Interface(f"{rng[host[int(field_addr.ip)]]}/{prefix}")
    if clamped:
        warnings.append(f"{src}:{lines[group.entries[0]]}: public addresses on {names} "
                        f"shorter than /{rng.prefixlen} become /{rng.prefixlen}, the size of "
                        "the harness's ranges")
    return out


@dataclass
class Publics:
    """The public side of the topology, and the mapping of its addresses."""

    networks: list[Network]
    interfaces: list[tuple[str, str, int]]  # name, network, line of first use
    addresses: list[PublicAddress]
    mapping: dict[str, str]


def read_publics(path: Path, nodes: int, node_ips: Mapping[str, int],
                 private_iface: str, warnings: list[str]) -> Publics:
    """The public_addresses file placed in the harness's ranges; refuses what it cannot build.

    `node_ips` (field private address -> pnn) is there to refuse a public
    address that is also a node's.
    """
    text = read_file(path)
    src = str(path)
    if text is None:
        warnings.append(f"{src}: missing; the cluster has no public addresses")
        return Publics([], [], [], {})
    pubs: tuple[PublicAddress, ...] = parsed(parse_public_addresses, text, src)
    lines = entry_lines(text, public=True)
    for k, pa in enumerate(pubs):
        if pa.address.version != 4:
            raise CtdbImportError(src, lines[k],
                                  f"{pa.address} is IPv6, and the harness builds IPv4 only",
                                  "import a copy without the IPv6 public addresses")
        if private_iface in pa.ifaces:
            raise CtdbImportError(src, lines[k],
                                  f"{pa.address} is on {private_iface}, the private interface",
                                  "name the field's private interface with --private-iface "
                                  "(the harness keeps public and private networks apart)")
        if str(pa.address.ip) in node_ips:
            raise CtdbImportError(src, lines[k],
                                  f"{pa.address.ip} is also node {node_ips[str(pa.address.ip)]}'s "
                                  "private address", "give public and node addresses apart")
    if not pubs:
        warnings.append(f"{src}: no public addresses")
    groups = _group_networks(pubs)
    ranges = _assign_ranges(groups, pubs, src, lines, warnings)
    harness: dict[int, ipaddress.IPv4Interface] = {}
    networks: list[Network] = []
    interfaces: list[tuple[str, str, int]] = []
    for k, (g, rng) in enumerate(zip(groups, ranges, strict=True)):
        name = "public" if k == 0 else f"public{k + 1}"
        networks.append(Network(name, rng))
        for x in g.ifaces:
            first = next(i for i, p in enumerate(pubs) if x in p.ifaces)
            interfaces.append((x, name, lines[first]))
        harness.update(_place(g, rng, pubs, nodes, src, lines, warnings))
    mapping = {str(pa.address.ip): str(harness[k].ip) for k, pa in enumerate(pubs)}
    for k, pa in enumerate(pubs):
        mapping.setdefault(str(pa.address.network), str(harness[k].network))
    addresses = [PublicAddress(harness[k], pa.ifaces) for k, pa in enumerate(pubs)]
    interfaces.sort(key=lambda t: t[2])
    return Publics(networks, interfaces, addresses, mapping)
