"""`ctdb status` and `ctdb nodestatus`, byte for byte as CTDB 4.17 prints them.

Formatted for the native implementation's CLI, parsed from either
implementation's (the plain and the -X form; see output for why one module
does both).  Facts that matter:

* node lines are ``pnn:%u %-16s %s%s``: the flag names joined with ``|`` in
  the order of flags.STATUS_ORDER, ``OK`` for none, ``PARTIALLYONLINE``
  instead when a node without flags has an interface down, and
  `` (THIS NODE)`` on the node that answered;
* deleted nodes are never listed; the header counts them:
  ``Number of nodes:3 (including 1 deleted nodes)``;
* ``Generation:INVALID`` when the generation is 1; ``Leader:UNKNOWN`` when
  the tool heard of no leader (4.16+; older CTDB printed ``Recovery
  master:N``, which parse_status also reads).

Older releases differ in two places only, both read by the parsers and
checked against Samba's own tool tests of 4.15-4.22
(tests/unit/data/ctdb_versions/): 4.15 prints ``Recovery master:N`` (and
`ctdb recmaster`) where 4.16+ print ``Leader:N`` (and `ctdb leader`), and
the -X status columns gained ``Unknown`` in 4.17.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.ctdb.flags import STATUS_ORDER, NodeFlags
from harness.ctdb.output import (
    IPAddress,
    OutputError,
    machine_sep,
    ntop,
    output_lines,
    parse_printed_address,
    x_fields,
    x_line,
)

INVALID_GENERATION = 1
"""CTDB's INVALID_GENERATION; `ctdb status` prints it as ``Generation:INVALID``."""

STATUS_X_COLUMNS = ("Node", "IP", "Disconnected", "Unknown", "Banned", "Disabled",
                    "Unhealthy", "Stopped", "Inactive", "PartiallyOnline", "ThisNode")
# Before 4.17 there was no Unknown column; parse_status reads that form too.
_STATUS_X_COLUMNS_OLD = tuple(c for c in STATUS_X_COLUMNS if c != "Unknown")
# Machine-readable columns that map to one flag bit each.
_X_FLAG_COLUMNS: dict[str, NodeFlags] = {
    "Disconnected": NodeFlags.DISCONNECTED,
    "Unknown": NodeFlags.UNKNOWN,
    "Banned": NodeFlags.BANNED,
    "Disabled": NodeFlags.PERMANENTLY_DISABLED,
    "Unhealthy": NodeFlags.UNHEALTHY,
    "Stopped": NodeFlags.STOPPED,
}


# -- flags -----------------------------------------------------------------------

def flags_text(flags: NodeFlags | int) -> str:
    """ctdb.c pretty_print_flags: names of the set flags joined by "|", else "OK"."""
    names = [name for name, bits in STATUS_ORDER if flags & bits]
    return "|".join(names) if names else "OK"


def parse_flags_text(text: str) -> NodeFlags:
    """The flags behind a pretty_print_flags string; refuses any other spelling or order."""
    if text == "OK":
        return NodeFlags.NONE
    by_name = dict(STATUS_ORDER)
    flags = NodeFlags.NONE
    for name in text.split("|"):
        if name not in by_name:
            raise ValueError(f"unknown node flag {name!r}")
        if name != "INACTIVE":  # derived from the other bits
            flags |= by_name[name]
    if flags_text(flags) != text:
        raise ValueError(f"flags {text!r} are not as CTDB prints them "
                         f"(expected {flags_text(flags)!r})")
    return flags


# -- data ----------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeStatus:
    """One node as `ctdb status` reports it.

    `partially_online` is CTDB's notion: some interface of the node is down
    while it has no flags at all; it is forced to False when flags are set,
    since CTDB never reports both.
    """

    pnn: int
    address: IPAddress
    flags: NodeFlags = NodeFlags.NONE
    partially_online: bool = False
    this_node: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.address, str):
            object.__setattr__(self, "address", ipaddress.ip_address(self.address))
        if not isinstance(self.flags, NodeFlags):
            object.__setattr__(self, "flags", NodeFlags(self.flags))
        if self.flags and self.partially_online:
            object.__setattr__(self, "partially_online", False)
        if self.pnn < 0:
            raise ValueError(f"pnn {self.pnn} is negative")

    @property
    def flags_text(self) -> str:
        """The status word(s) of this node's line: OK, PARTIALLYONLINE or flag names."""
        return "PARTIALLYONLINE" if self.partially_online else flags_text(self.flags)

    @property
    def ok(self) -> bool:
        """No flags: healthy and active (a PARTIALLYONLINE node is ok: it hosts IPs)."""
        return self.flags == NodeFlags.NONE

    @property
    def deleted(self) -> bool:
        return bool(self.flags & NodeFlags.DELETED)


@dataclass(frozen=True)
class ClusterStatus:
    """`ctdb status` as data.

    `nodes` are the listed nodes; `deleted` the pnns of deleted nodes, which
    CTDB only counts (a node given with the DELETED flag is treated as
    deleted too).  Parsed from -X output, only the nodes are known:
    `machine_readable` is True and the other fields are None/empty.
    """

    nodes: tuple[NodeStatus, ...]
    generation: int | None = None
    recovery_mode_normal: bool | None = None
    leader: int | None = None
    """None: no leader known (``Leader:UNKNOWN``) or not shown (-X)."""
    vnn_map: tuple[int, ...] = ()
    """lmaster of each hash bucket, as the ``hash:N lmaster:M`` lines."""
    deleted: tuple[int, ...] = ()
    machine_readable: bool = False

    def __post_init__(self) -> None:
        nodes = tuple(self.nodes)
        deleted = set(self.deleted) | {n.pnn for n in nodes if n.deleted}
        nodes = tuple(sorted((n for n in nodes if not n.deleted), key=lambda n: n.pnn))
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "deleted", tuple(sorted(deleted)))
        object.__setattr__(self, "vnn_map", tuple(self.vnn_map))
        pnns = [n.pnn for n in nodes]
        if len(set(pnns)) != len(pnns) or deleted & set(pnns):
            raise ValueError(f"pnns listed twice in {pnns} / deleted {sorted(deleted)}")
        if sum(n.this_node for n in nodes) > 1:
            raise ValueError("more than one node is marked this_node")

    @property
    def num_nodes(self) -> int:
        """``Number of nodes:`` -- listed plus deleted nodes."""
        return len(self.nodes) + len(self.deleted)

    @property
    def this_node(self) -> NodeStatus | None:
        return next((n for n in self.nodes if n.this_node), None)

    def node(self, pnn: int) -> NodeStatus:
        for n in self.nodes:
            if n.pnn == pnn:
                return n
        raise KeyError(pnn)

    @property
    def all_ok(self) -> bool:
        return all(n.ok for n in self.nodes)


# -- ctdb status -------------------------------------------------------------------

def format_node_line(node: NodeStatus) -> str:
    """``pnn:%u %-16s %s%s`` without the newline."""
    addr = ntop(node.address)
    mark = " (THIS NODE)" if node.this_node else ""
    return f"pnn:{node.pnn} {addr:<16} {node.flags_text}{mark}"


def format_status(status: ClusterStatus) -> str:
    """Plain `ctdb status` output, newline-terminated."""
    if status.generation is None or status.recovery_mode_normal is None:
        raise ValueError("plain `ctdb status` needs generation and recovery_mode_normal")
    if status.deleted:
        out = [f"Number of nodes:{status.num_nodes} "
               f"(including {len(status.deleted)} deleted nodes)"]
    else:
        out = [f"Number of nodes:{status.num_nodes}"]
    out.extend(format_node_line(n) for n in status.nodes)
    gen = status.generation
    out.append("Generation:INVALID" if gen == INVALID_GENERATION else f"Generation:{gen}")
    out.append(f"Size:{len(status.vnn_map)}")
    out.extend(f"hash:{i} lmaster:{m}" for i, m in enumerate(status.vnn_map))
    out.append("Recovery mode:NORMAL (0)" if status.recovery_mode_normal
               else "Recovery mode:RECOVERY (1)")
    out.append("Leader:UNKNOWN" if status.leader is None else f"Leader:{status.leader}")
    return "\n".join(out) + "\n"


def format_status_x(status: ClusterStatus | Iterable[NodeStatus], sep: str = "|") -> str:
    """`ctdb -X status` output (also what `ctdb -X nodestatus` prints for its nodes)."""
    nodes = status.nodes if isinstance(status, ClusterStatus) else tuple(
        n for n in status if not n.deleted)
    out = [x_line(STATUS_X_COLUMNS, sep)]
    for n in nodes:
        bits = [int(bool(n.flags & _X_FLAG_COLUMNS[c])) for c in STATUS_X_COLUMNS[2:8]]
        out.append(x_line(
            [n.pnn, ntop(n.address), *bits, int(bool(n.flags & NodeFlags.INACTIVE)),
             int(n.partially_online), "Y" if n.this_node else "N"], sep))
    return "\n".join(out) + "\n"


def format_nodestatus(nodes: Iterable[NodeStatus], *, all_nodes: bool = False) -> str:
    """`ctdb nodestatus [all|PNN,...]`: the node lines, with the count header for `all`."""
    given = list(nodes)
    listed = [n for n in given if not n.deleted]
    out = [format_node_line(n) for n in sorted(listed, key=lambda n: n.pnn)]
    if all_nodes:
        gone = len(given) - len(listed)
        out.insert(0, f"Number of nodes:{len(given)}" +
                   (f" (including {gone} deleted nodes)" if gone else ""))
    return "\n".join(out) + "\n"


_NODE_LINE = re.compile(r"pnn:(\d+) (\S+) +(\S+)( \(THIS NODE\))?")
_NUM_NODES = re.compile(r"Number of nodes:(\d+)(?: \(including (\d+) deleted nodes\))?")


def parse_status(text: str) -> ClusterStatus:
    """Read `ctdb status` or `ctdb -X status` output (the form is detected)."""
    what = "ctdb status"
    lines = output_lines(text, what)
    sep = machine_sep(lines[0], "Node")
    if sep is not None:
        return _parse_status_x(lines, sep, what)
    return _parse_status_plain(lines, what)


def parse_leader(text: str) -> int:
    """Read `ctdb leader` (4.16+) or `ctdb recmaster` (before): one pnn on one line."""
    lines = output_lines(text, "ctdb leader")
    if len(lines) != 1 or not lines[0].isdigit():
        raise OutputError("ctdb leader", 1, lines[0], "expected one pnn")
    return int(lines[0])


def parse_nodestatus(text: str) -> tuple[NodeStatus, ...]:
    """Read `ctdb nodestatus` output (plain, with or without the count, or -X)."""
    what = "ctdb nodestatus"
    lines = output_lines(text, what)
    sep = machine_sep(lines[0], "Node")
    if sep is not None:
        return _parse_status_x(lines, sep, what).nodes
    first = 1 if _NUM_NODES.fullmatch(lines[0]) else 0
    nodes = []
    for lineno, line in enumerate(lines[first:], first + 1):
        nodes.append(_parse_node_line(line, what, lineno))
    return tuple(nodes)


def _parse_node_line(line: str, what: str, lineno: int) -> NodeStatus:
    nm = _NODE_LINE.fullmatch(line)
    try:
        if not nm:
            raise ValueError("expected 'pnn:N ADDRESS STATUS[ (THIS NODE)]'")
        status = nm.group(3)
        partial = status == "PARTIALLYONLINE"
        flags = NodeFlags.NONE if partial else parse_flags_text(status)
        node = NodeStatus(int(nm.group(1)), parse_printed_address(nm.group(2)), flags, partial,
                          nm.group(4) is not None)
        if node.deleted:
            raise ValueError("CTDB never lists a DELETED node")
        if format_node_line(node) != line:
            raise ValueError(f"spacing differs from CTDB's {format_node_line(node)!r}")
    except ValueError as e:
        raise OutputError(what, lineno, line, str(e)) from None
    return node


def _parse_status_x(lines: list[str], sep: str, what: str) -> ClusterStatus:
    header = tuple(lines[0][1:-1].split(sep))
    if header not in (STATUS_X_COLUMNS, _STATUS_X_COLUMNS_OLD):
        raise OutputError(what, 1, lines[0], f"header is not {x_line(STATUS_X_COLUMNS, sep)!r}")
    nodes = []
    for lineno, line in enumerate(lines[1:], 2):
        row = dict(zip(header, x_fields(line, sep, len(header), what, lineno), strict=True))
        try:
            if not row["Node"].isdigit():
                raise ValueError(f"node number {row['Node']!r} is not a number")
            addr = parse_printed_address(row["IP"])
            flags = NodeFlags.NONE
            for col, bit in _X_FLAG_COLUMNS.items():
                if col in row:
                    flags |= bit if _bit(row[col], col) else NodeFlags.NONE
            inactive = _bit(row["Inactive"], "Inactive")
            if inactive != bool(flags & NodeFlags.INACTIVE):
                raise ValueError(f"Inactive={row['Inactive']} contradicts the other columns")
            partial = _bit(row["PartiallyOnline"], "PartiallyOnline")
            if partial and flags:
                raise ValueError("PartiallyOnline=1 on a node with flags")
            if row["ThisNode"] not in ("Y", "N"):
                raise ValueError(f"ThisNode is {row['ThisNode']!r}, not Y or N")
            node = NodeStatus(int(row["Node"]), addr, flags, partial, row["ThisNode"] == "Y")
        except ValueError as e:
            raise OutputError(what, lineno, line, str(e)) from None
        nodes.append(node)
    try:
        return ClusterStatus(tuple(nodes), machine_readable=True)
    except ValueError as e:
        raise OutputError(what, None, None, str(e)) from None


def _bit(value: str, column: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError(f"{column} is {value!r}, not 0 or 1")
    return value == "1"


def _parse_status_plain(lines: list[str], what: str) -> ClusterStatus:
    m = _NUM_NODES.fullmatch(lines[0])
    if not m:
        raise OutputError(what, 1, lines[0], "expected 'Number of nodes:N'")
    total = int(m.group(1))
    n_deleted = int(m.group(2) or 0)
    i = 1
    nodes: list[NodeStatus] = []
    while i < len(lines) and lines[i].startswith("pnn:"):
        nodes.append(_parse_node_line(lines[i], what, i + 1))
        i += 1
    listed = {n.pnn for n in nodes}
    missing = sorted(set(range(total)) - listed)
    if (len(nodes) + n_deleted != total or len(missing) != n_deleted
            or any(p >= total for p in listed)):
        raise OutputError(what, 1, lines[0],
                          f"does not match the {len(nodes)} listed nodes (pnns {sorted(listed)})")

    def take(prefix: str) -> str:
        nonlocal i
        if i >= len(lines):
            raise OutputError(what, None, None, f"output ends before the {prefix!r} line")
        line = lines[i]
        if not line.startswith(prefix):
            raise OutputError(what, i + 1, line, f"expected a {prefix!r} line")
        i += 1
        return line[len(prefix):]

    gen_text = take("Generation:")
    if gen_text == "INVALID":
        generation = INVALID_GENERATION
    elif gen_text.isdigit() and int(gen_text) != INVALID_GENERATION:
        generation = int(gen_text)
    else:
        raise OutputError(what, i, lines[i - 1], "generation is not a number or INVALID")
    size_text = take("Size:")
    if not size_text.isdigit():
        raise OutputError(what, i, lines[i - 1], "size is not a number")
    vnn: list[int] = []
    for h in range(int(size_text)):
        hm = re.fullmatch(r"(-?\d+)", take(f"hash:{h} lmaster:"))
        if not hm:
            raise OutputError(what, i, lines[i - 1], "lmaster is not a number")
        vnn.append(int(hm.group(1)))
    rec = take("Recovery mode:")
    if rec == "NORMAL (0)":
        normal = True
    elif re.fullmatch(r"RECOVERY \([1-9]\d*\)", rec):
        normal = False
    else:
        raise OutputError(what, i, lines[i - 1], "expected 'NORMAL (0)' or 'RECOVERY (1)'")
    if i < len(lines) and lines[i].startswith("Recovery master:"):
        leader_text = take("Recovery master:")  # CTDB before 4.16
    else:
        leader_text = take("Leader:")
    if leader_text == "UNKNOWN":
        leader = None
    elif leader_text.isdigit():
        leader = int(leader_text)
    else:
        raise OutputError(what, i, lines[i - 1], "leader is not a number or UNKNOWN")
    if i < len(lines):
        raise OutputError(what, i + 1, lines[i], "unexpected line after the leader")
    try:
        return ClusterStatus(tuple(nodes), generation, normal, leader, tuple(vnn),
                             tuple(missing))
    except ValueError as e:
        raise OutputError(what, None, None, str(e)) from None
