"""CTDB's ``nodes`` file: the private address of every node, by pnn.

As ctdbd 4.17 reads it (ctdb_read_nodes_file): blank lines are skipped and
take no pnn; a line whose first non-blank character is ``#`` is a *deleted
node*: it keeps its pnn (so later nodes keep theirs) and CTDB records 0.0.0.0
for it.  There are no pure comment lines and no trailing comments.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from harness.ctdb.configfile import ConfigError, IPAddress, parse_address, physical_lines

DELETED_ADDRESS = ipaddress.IPv4Address("0.0.0.0")
"""What ctdbd records as the address of a deleted (commented-out) node."""


@dataclass(frozen=True)
class NodeEntry:
    """One node of the nodes file: its pnn, address, and whether it is deleted."""

    pnn: int
    address: IPAddress
    deleted: bool = False


def parse_nodes(text: str, source: str = "nodes") -> tuple[NodeEntry, ...]:
    """Parse a CTDB nodes file; the pnn of a node is its index among non-blank lines.

    A ``#`` line is a deleted node (address 0.0.0.0), exactly as ctdbd reads
    it.  Stricter than CTDB: the same address twice is refused, and so is a
    file without any live node.
    """
    entries: list[NodeEntry] = []
    seen: dict[IPAddress, int] = {}
    for lineno, raw in enumerate(physical_lines(text), 1):
        line = raw.strip(" \t")
        if not line:
            continue
        pnn = len(entries)
        if line.startswith("#"):
            entries.append(NodeEntry(pnn, DELETED_ADDRESS, deleted=True))
            continue
        if "#" in line:
            raise ConfigError(
                source, lineno, f"{line!r} has a trailing comment, which CTDB does not allow",
                "put only the address on the line (a line starting with '#' is a deleted node)")
        try:
            addr = parse_address(line)
        except ValueError:
            raise ConfigError(source, lineno, f"{line!r} is not an IP address",
                              "write one IPv4/IPv6 address per line") from None
        if addr in seen:
            raise ConfigError(source, lineno,
                              f"{addr} is already node {seen[addr]} (line listed twice)",
                              "give every node its own private address")
        seen[addr] = pnn
        entries.append(NodeEntry(pnn, addr))
    if not any(not e.deleted for e in entries):
        raise ConfigError(source, None, "no node addresses",
                          "write one private IPv4/IPv6 address per line, pnn 0 first")
    return tuple(entries)


def write_nodes(nodes: Iterable[IPAddress | str | NodeEntry | None]) -> str:
    """The nodes file text; None or a deleted entry writes a deleted-node line.

    A deleted node must keep its line (``#``) so later nodes keep their pnn.
    The text is read back before it is returned, so what parse_nodes would
    refuse (an address twice, no live node) fails here, not in a daemon.
    """
    out: list[str] = []
    for n in nodes:
        if n is None or (isinstance(n, NodeEntry) and n.deleted):
            out.append("#deleted\n")
            continue
        addr = n.address if isinstance(n, NodeEntry) else parse_address(str(n))
        out.append(f"{addr}\n")
    text = "".join(out)
    parse_nodes(text, "<write_nodes>")
    return text
