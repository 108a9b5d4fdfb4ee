"""`ctdb ip` and `ctdb ifaces`, byte for byte as CTDB 4.17 prints them.

Formatted for the native implementation's CLI, parsed from either
implementation's (the plain and the -X form; see output for why one module
does both).  Facts that matter:

* ``ctdb ip`` sorts addresses: IPv4 before IPv6, then numerically; an
  unassigned address shows pnn -1;
* ``ctdb ifaces`` lists interfaces in the daemon's own order, and prints
  ``No interfaces configured on node N`` (even with -X) when there are none.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from harness.ctdb.output import (
    IPAddress,
    OutputError,
    ip_sort_key,
    machine_sep,
    ntop,
    output_lines,
    parse_printed_address,
    x_fields,
    x_line,
)

UNASSIGNED = -1
"""The pnn `ctdb ip` prints for an address no node hosts."""

IPKey = TypeVar("IPKey", bound=IPAddress | str)
"""A formatter's key type: generic so a mapping keyed by one kind (the native
daemon's IPv4-only assignment) is accepted as it is (Mapping keys are invariant)."""

IP_X_COLUMNS = ("Public IP", "Node")
IP_X_VERBOSE_COLUMNS = IP_X_COLUMNS + ("ActiveInterfaces", "AvailableInterfaces",
                                       "ConfiguredInterfaces")
IFACES_X_COLUMNS = ("Name", "LinkStatus", "References")


@dataclass(frozen=True)
class IfaceInfo:
    """One line of `ctdb ifaces`: a public interface, its link state and use count."""

    name: str
    link_up: bool
    references: int = 0


# -- ctdb ip -----------------------------------------------------------------------

def _ip_rows(mapping: Mapping[IPKey, int | None]) -> list[tuple[IPAddress, int]]:
    rows: dict[IPAddress, int] = {}
    for key, pnn in mapping.items():
        addr = ipaddress.ip_address(key) if isinstance(key, str) else key
        value = UNASSIGNED if pnn is None else pnn
        if value < UNASSIGNED:
            raise ValueError(f"pnn {value} for {addr} (use -1 or None for unassigned)")
        if addr in rows:
            raise ValueError(f"{addr} is given twice")
        rows[addr] = value
    return sorted(rows.items(), key=lambda kv: ip_sort_key(kv[0]))


def format_ip(pnn: int | None, mapping: Mapping[IPKey, int | None]) -> str:
    """`ctdb ip` as node `pnn` answers it (None: `ctdb ip all`); -1/None is unassigned."""
    head = "Public IPs on ALL nodes" if pnn is None else f"Public IPs on node {pnn}"
    return "".join([head + "\n"] + [f"{ntop(a)} {p}\n" for a, p in _ip_rows(mapping)])


def format_ip_x(mapping: Mapping[IPKey, int | None], sep: str = "|") -> str:
    """`ctdb -X ip` output."""
    out = [x_line(IP_X_COLUMNS, sep)] + [x_line((ntop(a), p), sep)
                                          for a, p in _ip_rows(mapping)]
    return "\n".join(out) + "\n"


_IP_HEAD = re.compile(r"Public IPs on (?:node (\d+)|ALL nodes)")
_IP_ROW = re.compile(r"(\S+) (-?\d+)")
_IP_ROW_VERBOSE = re.compile(
    r"(\S+) node\[(-?\d+)\] active\[[^\]]*\] available\[[^\]]*\] configured\[[^\]]*\]")


def parse_ip(text: str) -> dict[IPAddress, int]:
    """Read `ctdb ip` / `ctdb -X ip` (also `all` and `-v` forms) -> address: pnn (-1 unassigned)."""
    what = "ctdb ip"
    lines = output_lines(text, what)
    sep = machine_sep(lines[0], "Public IP")
    out: dict[IPAddress, int] = {}
    if sep is not None:
        header = tuple(lines[0][1:-1].split(sep))
        if header not in (IP_X_COLUMNS, IP_X_VERBOSE_COLUMNS):
            raise OutputError(what, 1, lines[0], f"header is not {x_line(IP_X_COLUMNS, sep)!r}")
        rows = [(n, line, x_fields(line, sep, len(header), what, n)[:2])
                for n, line in enumerate(lines[1:], 2)]
    else:
        if not _IP_HEAD.fullmatch(lines[0]):
            raise OutputError(what, 1, lines[0],
                              "expected 'Public IPs on node N' or 'Public IPs on ALL nodes'")
        rows = []
        for n, line in enumerate(lines[1:], 2):
            m = _IP_ROW.fullmatch(line) or _IP_ROW_VERBOSE.fullmatch(line)
            if not m:
                raise OutputError(what, n, line, "expected 'ADDRESS PNN'")
            rows.append((n, line, [m.group(1), m.group(2)]))
    for n, line, (addr_text, pnn_text) in rows:
        try:
            addr = parse_printed_address(addr_text)
        except ValueError as e:
            raise OutputError(what, n, line, str(e)) from None
        if not re.fullmatch(r"-1|\d+", pnn_text):
            raise OutputError(what, n, line, f"node {pnn_text!r} is not a pnn or -1")
        if addr in out:
            raise OutputError(what, n, line, f"{addr} is listed twice")
        out[addr] = int(pnn_text)
    return out


# -- ctdb ifaces ----------------------------------------------------------------------

def _no_ifaces(pnn: int) -> str:
    return f"No interfaces configured on node {pnn}\n"


def format_ifaces(pnn: int, ifaces: Sequence[IfaceInfo]) -> str:
    """`ctdb ifaces` as node `pnn` answers it, interfaces in the given (daemon's) order."""
    if not ifaces:
        return _no_ifaces(pnn)
    return "".join([f"Interfaces on node {pnn}\n"] + [
        f"name:{i.name} link:{'up' if i.link_up else 'down'} references:{i.references}\n"
        for i in ifaces])


def format_ifaces_x(ifaces: Sequence[IfaceInfo], *, pnn: int | None = None,
                    sep: str = "|") -> str:
    """`ctdb -X ifaces`; with no interfaces CTDB prints the plain message, so pass `pnn`."""
    if not ifaces:
        if pnn is None:
            raise ValueError("no interfaces: CTDB then prints 'No interfaces configured on "
                             "node N', so give pnn")
        return _no_ifaces(pnn)
    out = [x_line(IFACES_X_COLUMNS, sep)] + [
        x_line((i.name, int(i.link_up), i.references), sep) for i in ifaces]
    return "\n".join(out) + "\n"


_IFACE_ROW = re.compile(r"name:(\S+) link:(up|down) references:(\d+)")


def parse_ifaces(text: str) -> list[IfaceInfo]:
    """Read `ctdb ifaces` / `ctdb -X ifaces` output, in the listed order."""
    what = "ctdb ifaces"
    lines = output_lines(text, what)
    if len(lines) == 1 and re.fullmatch(r"No interfaces configured on node \d+", lines[0]):
        return []
    sep = machine_sep(lines[0], "Name")
    out: list[IfaceInfo] = []
    if sep is not None:
        if tuple(lines[0][1:-1].split(sep)) != IFACES_X_COLUMNS:
            raise OutputError(what, 1, lines[0],
                              f"header is not {x_line(IFACES_X_COLUMNS, sep)!r}")
        for n, line in enumerate(lines[1:], 2):
            name, link, refs = x_fields(line, sep, 3, what, n)
            if not name or not link.isdigit() or not refs.isdigit():
                raise OutputError(what, n, line, "expected NAME, link state and references")
            out.append(IfaceInfo(name, int(link) != 0, int(refs)))
    else:
        if not re.fullmatch(r"Interfaces on node \d+", lines[0]):
            raise OutputError(what, 1, lines[0], "expected 'Interfaces on node N'")
        for n, line in enumerate(lines[1:], 2):
            m = _IFACE_ROW.fullmatch(line)
            if not m:
                raise OutputError(what, n, line,
                                  "expected 'name:IFACE link:up|down references:N'")
            out.append(IfaceInfo(m.group(1), m.group(2) == "up", int(m.group(3))))
    names = [i.name for i in out]
    if len(set(names)) != len(names):
        raise OutputError(what, None, None, f"an interface is listed twice in {names}")
    return out
