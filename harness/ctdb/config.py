"""CTDB's configuration files, read and written the way ctdbd 4.17 does.

The harness writes the same files for Samba's ctdbd and for the native
daemon, and the native daemon reads them back with these parsers, so both
implementations see one configuration.  The parsers follow CTDB where a file
is valid for it (comment rules, whitespace, number syntax) and are stricter
where CTDB would silently accept a probable mistake; each such place says so.
Every problem is a ConfigError whose text is one line:
``FILE:LINE: what is wrong; how to fix``.

What CTDB 4.17 does, checked against its sources and a running ctdbd:

* ``nodes`` (ctdb_read_nodes_file): blank lines are skipped and take no pnn;
  a line whose first non-blank character is ``#`` is a *deleted node*: it
  keeps its pnn (so later nodes keep theirs) and CTDB records 0.0.0.0 for it.
  There are no pure comment lines and no trailing comments.
* ``public_addresses`` (ctdb_set_public_addresses): ``IP/bits iface[,iface]``;
  ``#`` lines and blank lines are skipped; a repeated IP is refused; anything
  after the interface list is ignored.
* ``ctdb.tunables`` (tunable.c via lib/util/tini.c): ``Name=Value`` with any
  whitespace around the parts, names in any case, values decimal/0x/0 octal,
  ``#`` or ``;`` comment lines, ``\\`` continuation lines; unknown and
  obsolete names, empty or non-numeric values and sections are errors and
  ctdbd refuses to start.
* ``script.options``: sourced by the event scripts' shell, so plain shell
  assignments with optional quotes and ``#`` comments.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import shlex
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.ctdb.tunables import (
    UINT32_MAX,
    TunableError,
    Tunables,
    check_value,
    find,
    lookup,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

DELETED_ADDRESS = ipaddress.IPv4Address("0.0.0.0")
"""What ctdbd records as the address of a deleted (commented-out) node."""

IFNAMSIZ = 16
"""Linux interface names are at most IFNAMSIZ-1 characters."""


class ConfigError(ValueError):
    """A configuration file problem, rendered as one line ``FILE:LINE: what; fix``."""

    def __init__(self, source: str, line: int | None, problem: str, fix: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        self.fix = fix
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {problem}; {fix}")


# -- addresses -----------------------------------------------------------------

def parse_address(text: str) -> IPAddress:
    """An address as CTDB parses one (inet_pton); IPv4-mapped IPv6 becomes IPv4.

    Raises ValueError.  Scope ids (``fe80::1%eth0``) are refused like
    inet_pton refuses them.
    """
    if "%" in text or not text.isascii():
        raise ValueError(text)
    addr = ipaddress.ip_address(text)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _lines(text: str) -> list[str]:
    """Physical lines as file_lines_load gives them: split on \\n only."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# -- nodes ---------------------------------------------------------------------

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
    for lineno, raw in enumerate(_lines(text), 1):
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
    """
    out: list[str] = []
    for n in nodes:
        if n is None or (isinstance(n, NodeEntry) and n.deleted):
            out.append("#deleted\n")
            continue
        addr = n.address if isinstance(n, NodeEntry) else parse_address(str(n))
        out.append(f"{addr}\n")
    return "".join(out)


# -- public_addresses --------------------------------------------------------------

@dataclass(frozen=True)
class PublicAddress:
    """One line of public_addresses: an address with its netmask and interfaces."""

    address: IPInterface
    ifaces: tuple[str, ...]

    @property
    def ip(self) -> IPAddress:
        return self.address.ip

    def line(self) -> str:
        return f"{self.address.ip}/{self.address.network.prefixlen} {','.join(self.ifaces)}"


def _parse_ip_mask(text: str) -> IPInterface:
    """``IP/bits`` as ctdb_sock_addr_mask_from_string reads it (decimal bits)."""
    ip_text, slash, bits = text.rpartition("/")
    if not slash or not bits.isascii() or not bits.isdigit():
        raise ValueError("form")
    addr = parse_address(ip_text)
    prefix = int(bits)
    if prefix > addr.max_prefixlen:
        raise ValueError("range")
    return ipaddress.ip_interface(f"{addr}/{prefix}")


def check_iface_name(name: str) -> str:
    """Refuse names Linux cannot have (CTDB only checks the length)."""
    if len(name) >= IFNAMSIZ:
        raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ - 1} characters")
    if not name or any(c in name for c in "/ \t\n:") or name in (".", ".."):
        raise ValueError(f"{name!r} is not a valid interface name")
    return name


def parse_public_addresses(text: str, source: str = "public_addresses"
                           ) -> tuple[PublicAddress, ...]:
    """Parse public_addresses: ``IP/bits iface[,iface]`` per line.

    As CTDB: ``#`` lines and blank lines are skipped, an IPv4-mapped IPv6
    address means the IPv4 address, a repeated IP is an error, empty items in
    the interface list are skipped.  Stricter than CTDB, which would accept
    them: a netmask beyond /32 (/128), anything after the interface list other
    than a ``#`` comment (CTDB silently ignores it, so ``eth1, eth2`` would
    quietly mean only eth1), an interface named twice, and a name Linux cannot
    have.
    """
    out: list[PublicAddress] = []
    seen: dict[IPAddress, int] = {}
    for lineno, raw in enumerate(_lines(text), 1):
        line = raw.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if not words:
            continue
        if len(words) < 2 or words[1].startswith("#"):
            raise ConfigError(source, lineno, f"no interface given for {words[0]!r}",
                              "write 'IP/bits iface[,iface]', e.g. '203.0.113.10/24 eth1'")
        if len(words) > 2 and not words[2].startswith("#"):
            raise ConfigError(
                source, lineno, f"unexpected {' '.join(words[2:])!r} after the interface list",
                "separate interfaces with commas and no spaces, e.g. 'eth1,eth2'")
        try:
            addr = _parse_ip_mask(words[0])
        except ValueError as e:
            problem = (f"netmask of {words[0]!r} is out of range" if str(e) == "range"
                       else f"{words[0]!r} is not an IP address with /bits")
            raise ConfigError(source, lineno, problem,
                              "write e.g. 203.0.113.10/24 or 2001:db8::10/64") from None
        ifaces: list[str] = []
        for name in words[1].split(","):
            if not name:
                continue
            try:
                check_iface_name(name)
            except ValueError as e:
                raise ConfigError(source, lineno, str(e),
                                  "use the name of an existing network interface") from None
            if name in ifaces:
                raise ConfigError(source, lineno, f"interface {name} is listed twice",
                                  "list each interface once")
            ifaces.append(name)
        if not ifaces:
            raise ConfigError(source, lineno, f"no interface given for {words[0]!r}",
                              "write 'IP/bits iface[,iface]', e.g. '203.0.113.10/24 eth1'")
        if addr.ip in seen:
            raise ConfigError(source, lineno,
                              f"duplicate public IP address {addr.ip} (also line {seen[addr.ip]})",
                              "list each public address once")
        seen[addr.ip] = lineno
        out.append(PublicAddress(addr, tuple(ifaces)))
    return tuple(out)


def write_public_addresses(entries: Iterable[PublicAddress]) -> str:
    """public_addresses text; refuses what parse_public_addresses would refuse."""
    text = "".join(e.line() + "\n" for e in entries)
    parse_public_addresses(text, "<write_public_addresses>")
    return text


# -- ctdb.tunables -------------------------------------------------------------------

_TINI_SPACE = " \t\r\v\f"


def _tini_lines(text: str) -> Iterable[tuple[int, str]]:
    """Logical lines as lib/util/tini.c builds them, with their first line number.

    Leading whitespace is dropped, runs of whitespace become one space,
    ``#``/``;`` lines and blank lines vanish, a trailing backslash joins the
    next line.
    """
    buf: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.split("\n"), 1):
        if not buf:
            body = raw.lstrip(_TINI_SPACE)
            if not body:
                continue
            if body[0] in "#;":
                continue
            start = lineno
        else:
            body = raw
        for c in body:
            if c in _TINI_SPACE:
                if buf and buf[-1] == " ":
                    continue
                c = " "
            buf.append(c)
        if buf and buf[-1] == "\\":
            buf.pop()
            continue
        if len(buf) > 1 and buf[-2] == "\\" and buf[-1] == " ":
            del buf[-2:]
            continue
        yield start, "".join(buf)
        buf = []
    if buf:
        yield start, "".join(buf)


def parse_tunables(text: str, tunables: Tunables | None = None,
                   source: str = "ctdb.tunables") -> Tunables:
    """Apply a ctdb.tunables file onto `tunables` (default: CTDB's defaults).

    Accepts exactly what ctdbd 4.17 accepts.  ctdbd reports every bad line and
    then refuses to start; this raises on the first one.  Values above
    2**32-1 are refused here (ctdbd would truncate them).
    """
    tun = tunables if tunables is not None else Tunables()
    pending: dict[str, int] = {}
    for lineno, line in _tini_lines(text):
        if line.startswith("["):
            if "]" not in line:
                raise ConfigError(source, lineno, f"syntax error in {line!r}",
                                  "write Name=Value lines only")
            raise ConfigError(source, lineno,
                              f"section {line[:line.index(']') + 1]} is not supported",
                              "write Name=Value lines only, no [sections]")
        name, eq, value = line.partition("=")
        name = name.strip(" ")
        value = value.strip(" ")
        if eq and not name:
            raise ConfigError(source, lineno, f"syntax error: nothing before '=' in {line!r}",
                              "write Name=Value, e.g. MonitorInterval=15")
        if not eq or not value:
            raise ConfigError(source, lineno, f"line {name!r} has no value",
                              "write Name=Value, e.g. MonitorInterval=15")
        t = find(name)
        if t is None:
            raise ConfigError(source, lineno, f"unknown tunable {name!r}",
                              "`ctdb listvars` (harness.ctdb.tunables.NAMES) lists the "
                              "valid names")
        if t.obsolete:
            raise ConfigError(source, lineno,
                              f"obsolete tunable {t.name!r} (ctdbd 4.17 refuses to start)",
                              "remove the line")
        try:
            number = _strtoul(value)
        except ValueError:
            raise ConfigError(source, lineno, f"invalid value {value!r} for tunable {t.name}",
                              "write a non-negative integer (decimal, 0x hex or 0 octal) "
                              "and nothing after it") from None
        if number > UINT32_MAX:
            raise ConfigError(source, lineno, f"value {value} for {t.name} exceeds 2**32-1",
                              "use a smaller value")
        pending[t.name] = number
    for name, number in pending.items():
        tun.set(name, number)
    return tun


def _strtoul(text: str) -> int:
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return int(text[2:], 16)
    if re.fullmatch(r"0[0-7]*", text):
        return int(text, 8)
    if re.fullmatch(r"[1-9][0-9]*", text):
        return int(text)
    raise ValueError(text)


def write_tunables(values: Tunables | Mapping[str, int]) -> str:
    """ctdb.tunables text, canonical names in CTDB's order.

    From a Tunables only the values that differ from CTDB's defaults are
    written; from a mapping every given name (validated: unknown, obsolete
    or out-of-range values raise TunableError).
    """
    if isinstance(values, Tunables):
        chosen = values.changed()
    else:
        tun = Tunables()
        for name, value in values.items():
            tun.set(name, value)
        wanted = {lookup(n).name for n in values}
        chosen = {n: v for n, v in tun.as_dict().items() if n in wanted}
    return "".join(f"{n}={check_value(v, n)}\n" for n, v in chosen.items())


# -- script.options --------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHELL_SPECIAL = set("$`;&|<>()")


def _shell_word(s: str, pos: int, source: str, lineno: int) -> tuple[str, int]:
    """Read one shell word without expansions from s[pos:]; return it and the end."""
    out: list[str] = []
    n = len(s)
    while pos < n:
        c = s[pos]
        if c in " \t":
            break
        if c == "'":
            end = s.find("'", pos + 1)
            if end < 0:
                raise ConfigError(source, lineno, "unterminated ' quote",
                                  "close the quote on the same line")
            out.append(s[pos + 1:end])
            pos = end + 1
        elif c == '"':
            pos += 1
            while True:
                if pos >= n:
                    raise ConfigError(source, lineno, 'unterminated " quote',
                                      "close the quote on the same line")
                c = s[pos]
                if c == '"':
                    pos += 1
                    break
                if c == "\\" and pos + 1 < n and s[pos + 1] in '"\\$`':
                    out.append(s[pos + 1])
                    pos += 2
                    continue
                if c in "$`":
                    raise ConfigError(source, lineno, f"shell expansion {c!r} in a value",
                                      "write the literal value, or use single quotes")
                out.append(c)
                pos += 1
        elif c == "\\":
            if pos + 1 >= n:
                raise ConfigError(source, lineno, "line continuation is not supported",
                                  "put each assignment on one line")
            out.append(s[pos + 1])
            pos += 2
        elif c in _SHELL_SPECIAL:
            raise ConfigError(source, lineno, f"shell syntax {c!r} in a value",
                              "write the literal value, quoted if it has special characters")
        else:
            out.append(c)
            pos += 1
    return "".join(out), pos


def parse_script_options(text: str, source: str = "script.options") -> dict[str, str]:
    """Parse shell-style ``NAME=value`` lines, as the event scripts' shell would.

    Values may be quoted ('...', "...") or bare; ``#`` starts a comment at the
    start of a line or after whitespace; ``export`` is allowed; the last
    assignment of a name wins.  Anything needing a shell to evaluate
    (``$VAR``, backquotes, commands, several words) is refused rather than
    guessed.
    """
    out: dict[str, str] = {}
    for lineno, raw in enumerate(_lines(text), 1):
        line = raw.lstrip(" \t")
        if line.endswith("\r"):
            raise ConfigError(source, lineno, "the line ends in CR (a DOS line ending), which "
                              "the shell would keep in the value",
                              "save the file with Unix (LF) line endings")
        if not line.strip(" \t") or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export"):].lstrip(" \t")
        m = _NAME.match(line)
        if not m:
            raise ConfigError(source, lineno, f"{line!r} is not a NAME=value assignment",
                              "write e.g. CTDB_PARTIALLY_ONLINE_INTERFACES=yes")
        name = m.group()
        rest = line[m.end():]
        if not rest.startswith("="):
            if rest.lstrip(" \t").startswith("="):
                raise ConfigError(source, lineno, f"space before '=' after {name}",
                                  f"write {name}=value with no spaces around '='")
            raise ConfigError(source, lineno, f"{line!r} is not a NAME=value assignment",
                              "write e.g. CTDB_PARTIALLY_ONLINE_INTERFACES=yes")
        value, pos = _shell_word(line, m.end() + 1, source, lineno)
        tail = line[pos:].lstrip(" \t")
        if tail and not tail.startswith("#"):
            raise ConfigError(source, lineno, f"unexpected {tail!r} after {name}={value}",
                              "quote values that contain spaces")
        out[name] = value
    return out


def write_script_options(options: Mapping[str, str]) -> str:
    """script.options text: one NAME=value line each, quoted only when needed."""
    lines = []
    for name, value in options.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a shell variable name")
        if "\n" in value:
            raise ValueError(f"value of {name} has a newline")
        lines.append(f"{name}={shlex.quote(value) if value else ''}\n")
    return "".join(lines)


def truthy(value: str | None, default: bool) -> bool:
    """CTDB's scripts test options with ``= yes``: only "yes" is true, unset is the default."""
    if value is None or value == "":
        return default
    return value == "yes"


# -- a node's whole configuration ---------------------------------------------------

@dataclass(frozen=True)
class NodeConfig:
    """Everything one node's daemon reads at startup from its directory."""

    directory: Path
    pnn: int
    nodes: tuple[IPAddress, ...]
    """Address by pnn; a deleted node has 0.0.0.0, as in ctdbd."""
    deleted: frozenset[int] = frozenset()
    public_addresses: tuple[PublicAddress, ...] = ()
    tunables: Tunables = field(default_factory=Tunables)
    options: Mapping[str, str] = field(default_factory=dict)
    events_dir: Path | None = None
    cluster_lock: Path | None = None

    @property
    def address(self) -> IPAddress:
        return self.nodes[self.pnn]

    @property
    def live_pnns(self) -> tuple[int, ...]:
        return tuple(p for p in range(len(self.nodes)) if p not in self.deleted)

    def options_bool(self, name: str, default: bool = False) -> bool:
        return truthy(self.options.get(name), default)


def _read(path: Path, required: bool) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        if required:
            raise ConfigError(str(path), None, "missing",
                              "create it (one private node address per line)") from None
        return None
    except OSError as e:
        raise ConfigError(str(path), None, f"cannot read it ({e.strerror})",
                          "check the path and its permissions") from None


def _is_local(addr: IPAddress) -> bool:
    """Whether this network namespace has `addr`: bind to it, as ctdbd does."""
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((str(addr), 0))
        except OSError as e:
            if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL):
                return False
            raise
    return True


def load_node_config(directory: str | Path, pnn: int | None = None,
                     cluster_lock: str | Path | None = None) -> NodeConfig:
    """Read a node directory: nodes, public_addresses, ctdb.tunables, script.options, events/.

    Only ``nodes`` is required.  Script options are ``script.options`` then,
    overriding it, ``events/legacy/10.interface.options`` (the order CTDB's
    load_script_options sources them for 10.interface).  Without `pnn` the
    node is the first live nodes line whose address is local here.
    """
    d = Path(directory)
    nodes_path = d / "nodes"
    entries = parse_nodes(_read(nodes_path, True) or "", str(nodes_path))
    pa_path = d / "public_addresses"
    pa_text = _read(pa_path, False)
    public = parse_public_addresses(pa_text, str(pa_path)) if pa_text is not None else ()
    tun_path = d / "ctdb.tunables"
    tun_text = _read(tun_path, False)
    tunables = parse_tunables(tun_text, None, str(tun_path)) if tun_text else Tunables()
    options: dict[str, str] = {}
    for opt_path in (d / "script.options", d / "events" / "legacy" / "10.interface.options"):
        opt_text = _read(opt_path, False)
        if opt_text is not None:
            options.update(parse_script_options(opt_text, str(opt_path)))
    events_dir = next((p for p in (d / "events" / "legacy", d / "events") if p.is_dir()), None)
    deleted = frozenset(e.pnn for e in entries if e.deleted)
    if pnn is None:
        pnn = next((e.pnn for e in entries if not e.deleted and _is_local(e.address)), None)
        if pnn is None:
            raise ConfigError(str(nodes_path), None,
                              "none of its addresses is configured on this host",
                              "add this node's private address to the file or pass its pnn")
    elif not 0 <= pnn < len(entries):
        raise ConfigError(str(nodes_path), None, f"has no node {pnn} (it lists {len(entries)})",
                          f"use a pnn from 0 to {len(entries) - 1}")
    elif pnn in deleted:
        raise ConfigError(str(nodes_path), None, f"node {pnn} is deleted (a '#' line)",
                          "uncomment its line or use another pnn")
    return NodeConfig(
        directory=d, pnn=pnn, nodes=tuple(e.address for e in entries), deleted=deleted,
        public_addresses=public, tunables=tunables, options=options, events_dir=events_dir,
        cluster_lock=Path(cluster_lock) if cluster_lock is not None else None)


__all__ = [
    "DELETED_ADDRESS",
    "ConfigError",
    "NodeConfig",
    "NodeEntry",
    "PublicAddress",
    "TunableError",
    "load_node_config",
    "parse_address",
    "parse_nodes",
    "parse_public_addresses",
    "parse_script_options",
    "parse_tunables",
    "truthy",
    "write_nodes",
    "write_public_addresses",
    "write_script_options",
    "write_tunables",
]
