"""What every `ctdb` CLI output format shares, byte for byte as CTDB 4.17 prints it.

The formats live in one place for both directions: the native
implementation's CLI prints with the format_* functions and the harness
parses either implementation's CLI with the parse_* functions
(status_output: `ctdb status`/`nodestatus`; ip_output: `ctdb ip`/`ifaces`),
so a scenario test asserts the same thing of both and any drift of the
native output from CTDB's shows up as a parse error.  The formats are
ctdb/tools/ctdb.c's (print_nodemap, print_status, print_nodemap_machine,
print_ip, control_ifaces), checked against the output of Debian's ctdb
4.17.12 and CTDB's own tool tests.

This module holds the common ground: the error, addresses as CTDB prints and
sorts them, and machine-readable (-X) rows, which start and end every line
with the separator (``|``, or whatever ``-x`` chose); the parsers detect it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutputError(ValueError):
    """CTDB CLI output that is not in CTDB 4.17's format; names the offending line."""

    def __init__(self, what: str, lineno: int | None, line: str | None, problem: str) -> None:
        where = what if lineno is None else f"{what} line {lineno}"
        shown = "" if line is None else f" {line!r}"
        super().__init__(f"{where}{shown}: {problem}")
        self.lineno = lineno
        self.line = line


# -- addresses ---------------------------------------------------------------------

def ntop(addr: IPAddress | str) -> str:
    """An address as glibc's inet_ntop writes it (what CTDB prints).

    Same as Python's str() except for IPv6 addresses with an embedded IPv4
    tail (``::ffff:1.2.3.4``, ``::1.2.3.4``), which glibc prints dotted.
    """
    a = ipaddress.ip_address(addr) if isinstance(addr, str) else addr
    if a.version == 4:
        return str(a)
    raw = a.packed
    words = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, 16, 2)]
    best_base, best_len, cur_base, cur_len = -1, 0, -1, 0
    for i, w in enumerate(words + [1]):  # sentinel closes a trailing run
        if w == 0 and i < 8:
            if cur_base < 0:
                cur_base, cur_len = i, 0
            cur_len += 1
        elif cur_base >= 0:
            if cur_len > best_len:
                best_base, best_len = cur_base, cur_len
            cur_base = -1
    if best_len < 2:
        best_base = -1
    out: list[str] = []
    i = 0
    while i < 8:
        if best_base >= 0 and best_base <= i < best_base + best_len:
            if i == best_base:
                out.append(":")
            i += 1
            continue
        if i:
            out.append(":")
        if i == 6 and best_base == 0 and (best_len == 6 or
                                          (best_len == 5 and words[5] == 0xFFFF)):
            out.append(".".join(str(b) for b in raw[12:]))
            break
        out.append(f"{words[i]:x}")
        i += 1
    if best_base >= 0 and best_base + best_len == 8:
        out.append(":")
    return "".join(out)


def ip_sort_key(addr: IPAddress) -> tuple[int, int]:
    """CTDB's ctdb_sock_addr_cmp order: AF_INET before AF_INET6, then the bytes."""
    return (addr.version, int(addr))


def parse_printed_address(text: str) -> IPAddress:
    """An address as CTDB printed it; ValueError names it.

    Unlike the config files' parse_address, an IPv4-mapped IPv6 address stays
    IPv6: the CLI prints what the daemon holds.
    """
    try:
        if "%" in text or not text.isascii():
            raise ValueError(text)
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


# -- machine-readable (-X) rows and plain lines -------------------------------------

def x_line(values: Iterable[object], sep: str) -> str:
    """One -X row (header or data): every value followed by the separator, one before all."""
    return sep + "".join(f"{v}{sep}" for v in values)


def output_lines(text: str, what: str) -> list[str]:
    """The lines of `what`'s output without trailing empty ones; empty output is an error."""
    lines = text.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise OutputError(what, None, None, "empty output")
    return lines


def machine_sep(first: str, first_column: str) -> str | None:
    """The -X/-x separator if `first` is a machine-readable header, else None."""
    if len(first) < 2:
        return None
    sep = first[0]
    if sep.isalnum() or sep.isspace() or not first.endswith(sep):
        return None
    return sep if first[1:].startswith(first_column + sep) else None


def x_fields(line: str, sep: str, n: int, what: str, lineno: int) -> list[str]:
    """The `n` fields of a -X row, or an OutputError naming the line."""
    if not (line.startswith(sep) and line.endswith(sep)) or len(line) < 2:
        raise OutputError(what, lineno, line, f"a row must start and end with {sep!r}")
    fields = line[1:-1].split(sep)
    if len(fields) != n:
        raise OutputError(what, lineno, line, f"{len(fields)} fields, expected {n}")
    return fields
