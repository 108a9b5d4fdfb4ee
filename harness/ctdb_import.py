"""A field cluster's /etc/ctdb turned into what the harness needs to rebuild it.

Developers holding a failover bug from the field usually have the customer's
/etc/ctdb and nothing else.  `import_ctdb_dir` reads it and returns an
ImportedCluster: a validated Topology, the tunables, the script options, the
field -> harness address mapping (to translate the customer's logs), the
cluster lock (informational) and one-line warnings about what the harness
does not reproduce.  Every problem is a CtdbImportError whose text is one
line, ``FILE:LINE: what; how to fix``.

What is read, and the choices made where the harness differs from the field:

* ``nodes`` (required).  Node pnn k becomes harness node k with private
  address 198.18.0.(k+1)/24.  A Topology has no deleted nodes, so a deleted
  node (a ``#`` line) in the middle is *built as an ordinary live node*: that
  keeps every later node's pnn (and so CTDB's IP allocation, which works by
  pnn) the same as in the field; a warning names it, and stopping its daemon
  (``lab.faults.stop_daemon(pnn)``) comes closest to the field.  Deleted
  nodes at the end shift nothing and are dropped.
* ``public_addresses``.  Interfaces keep their names.  Interfaces that share
  an address (``eth2,eth3``) or whose addresses' subnets overlap are one
  network (one switch bridge and one client namespace in the harness); each
  network gets its own harness range, 203.0.113.0/24 then 198.51.100.0/24,
  and a third network is an error.  Addresses keep their order: within a
  network an address keeps its last octet when all of the network's
  addresses share one /24 and no last octet collides with the harness's node
  hosts (1..nodes) or client (254); otherwise they are renumbered, in
  ascending order, to the top of the range just below the client.  Across
  two networks, the one with the higher field addresses gets the higher
  range (203.0.113.0/24), so that the numeric order of all public IPs - the
  order CTDB's allocation algorithms walk them in and ``ctdb ip`` prints them
  in - is the field's.  A prefix of /24 or longer is kept; a shorter one
  becomes /24, the size of the harness ranges.  What cannot be kept: the
  common-prefix distances between addresses of *different* networks, which
  LCP2 uses as costs.  The file is one node's: nodes whose
  public_addresses differ in the field all get this one.
* ``ctdb.tunables``, and ``CTDB_SET_Name=Value`` in ``script.options`` or a
  legacy ``ctdbd.conf``; a name set in several files takes the value of the
  most current one (ctdb.tunables, then script.options, then ctdbd.conf), with
  a warning when they disagree.
* ``script.options`` then ``events/legacy/10.interface.options`` (the order
  10.interface sources them): every other setting is kept as a script option,
  e.g. CTDB_PARTIALLY_ONLINE_INTERFACES.  A legacy ``ctdbd.conf`` was sourced
  by the event scripts too, so its settings are script options of the lowest
  precedence, except CTDB_RECOVERY_LOCK (the cluster lock) and CTDB_NODES /
  CTDB_PUBLIC_ADDRESSES (which name the files read here).
* ``ctdb.conf`` (INI): ``[cluster] cluster lock`` (or the older ``recovery
  lock``) is the cluster lock; options that change failover behaviour and
  that the harness does not reproduce (``[failover] disabled``, ``[legacy]
  start as stopped``, ...) are warnings, and so are unknown sections and keys.

Bonds are not in /etc/ctdb: they are given as ``--bond`` strings (see
`parse_bond_spec`) and applied to the interface of that name.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.builder import switch_port
from harness.ctdb import (
    DEFAULTS,
    NAMES,
    ConfigError,
    NodeEntry,
    PublicAddress,
    TunableError,
    Tunables,
    check_iface_name,
    parse_nodes,
    parse_public_addresses,
    parse_script_options,
    parse_tunables,
    parse_value,
)
from harness.ctdb.tunables import find
from harness.topology import (
    BOND_MODES,
    MAX_NODES,
    Bond,
    Interface,
    Network,
    Topology,
    TopologyError,
    save_topology,
)

PRIVATE_NETWORK = Network("private", ipaddress.IPv4Network("198.18.0.0/24"))
PUBLIC_RANGES: tuple[ipaddress.IPv4Network, ...] = (
    ipaddress.IPv4Network("203.0.113.0/24"),
    ipaddress.IPv4Network("198.51.100.0/24"),
)
"""The harness's public ranges; with two networks, which takes which keeps the order."""
CLIENT_HOST = 254
"""Network.client_address() is the last host of a /24."""

_NO_BONDS: Mapping[str, Bond] = MappingProxyType({})
_SET_PREFIX = "CTDB_SET_"


class CtdbImportError(ValueError):
    """Bad input for the import, rendered as one line ``FILE:LINE: what; how to fix``."""

    def __init__(self, source: str, line: int | None, problem: str, fix: str) -> None:
        self.source = source
        self.line = line
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {problem}; {fix}")

    @classmethod
    def from_config(cls, e: ConfigError) -> CtdbImportError:
        """The same line, as ours, so callers catch one exception type."""
        return cls(e.source, e.line, e.problem, e.fix)


@dataclass(frozen=True)
class ImportedCluster:
    """What the harness needs to rebuild a field cluster (see the module docstring)."""

    topology: Topology
    tunables: dict[str, int]
    """Canonical tunable name -> value, only those the field's files set."""
    script_options: dict[str, str]
    mapping: dict[str, str]
    """Field -> harness: node addresses, public addresses, then public networks."""
    cluster_lock: str | None = None
    """What ctdb.conf (or a legacy ctdbd.conf) names; the harness uses its own."""
    warnings: list[str] = field(default_factory=list)
    deleted_nodes: tuple[int, ...] = ()
    """Field pnns of deleted nodes that the topology builds as live nodes."""

    def save_mapping(self, path: str | Path) -> None:
        """The mapping as a JSON object, to translate the customer's logs later."""
        p = Path(path)
        with _writing(p):
            p.write_text(json.dumps(self.mapping, indent=2) + "\n")

    def save_topology(self, path: str | Path) -> None:
        """The topology as TOML that `load_topology` reads back to an equal Topology."""
        p = Path(path)
        with _writing(p):
            save_topology(self.topology, p,
                          f"imported from {self.topology.source} by `harness import-ctdb`")


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OSError while writing `path` becomes the import's one-line error."""
    try:
        yield
    except OSError as e:
        raise CtdbImportError(str(path), None, f"cannot write it ({e.strerror})",
                              "check the path and its permissions") from None


def format_mapping(mapping: Mapping[str, str]) -> str:
    """One ``field -> harness`` pair a line, the arrows aligned."""
    width = max((len(k) for k in mapping), default=0)
    return "".join(f"{k:<{width}} -> {v}\n" for k, v in mapping.items())


# -- bonds -------------------------------------------------------------------------

def parse_bond_spec(text: str, where: str = "--bond") -> tuple[str, Bond]:
    """``NAME=MODE:SLAVE[,SLAVE...][:miimon=N]`` -> (NAME, Bond).

    E.g. ``bond0=active-backup:eth1,eth2`` or ``bond1=802.3ad:eth3,eth4:miimon=200``;
    modes are topology.BOND_MODES.  Scenario files' ``[bonds]`` tables hold the
    part after ``NAME=`` (see `bonds_from_table`), so there is one syntax.
    """
    example = "write e.g. bond0=active-backup:eth1,eth2 or bond0=802.3ad:eth1,eth2:miimon=100"

    def bad(problem: str, fix: str = example) -> CtdbImportError:
        return CtdbImportError(where, None, f"{text!r}: {problem}", fix)

    name, eq, rest = text.partition("=")
    if not eq:
        raise bad("no '=' after the bond's name")
    try:
        check_iface_name(name)
    except ValueError as e:
        raise bad(str(e), "name the bond as the public_addresses file does") from None
    fields = rest.split(":")
    if len(fields) < 2:
        raise bad("needs MODE:SLAVES")
    mode, slave_text, options = fields[0], fields[1], fields[2:]
    if mode not in BOND_MODES:
        raise bad(f"mode {mode!r} is not one of {', '.join(BOND_MODES)}")
    slaves = tuple(slave_text.split(","))
    for s in slaves:
        try:
            check_iface_name(s)
        except ValueError as e:
            raise bad(f"slave: {e}", "separate slave names with commas, no spaces") from None
    if len(set(slaves)) != len(slaves):
        raise bad("a slave is listed twice", "list each slave once")
    if name in slaves:
        raise bad(f"{name} is its own slave", "give the bond a name of its own")
    miimon = Bond().miimon
    for opt in options:
        key, eq, value = opt.partition("=")
        if key != "miimon" or not eq:
            raise bad(f"unknown option {opt!r}", "the only option is miimon=N")
        if not value.isascii() or not value.isdigit():
            raise bad(f"miimon {value!r} is not a whole number of ms", "write e.g. miimon=100")
        miimon = int(value)
    return name, Bond(mode=mode, miimon=miimon, slaves=slaves)


def bonds_from_table(table: Mapping[str, Any], where: str) -> dict[str, Bond]:
    """A scenario file's ``[bonds]`` table: ``bond0 = "active-backup:eth1,eth2"``."""
    out: dict[str, Bond] = {}
    for name, spec in table.items():
        if not isinstance(spec, str):
            raise CtdbImportError(where, None, f"bonds.{name} = {spec!r} is not a string",
                                  'write e.g. bond0 = "active-backup:eth1,eth2"')
        bond_name, bond = parse_bond_spec(f"{name}={spec}", f"{where}: bonds.{name}")
        out[bond_name] = bond
    return out


# -- reading files -------------------------------------------------------------------

def _read(path: Path, required: bool = False) -> str | None:
    """A file's text; None if it is absent and optional.  Not UTF-8 is an error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise CtdbImportError(str(path), None, "missing",
                                  "copy the field's nodes file (one private address a line) "
                                  "into the directory") from None
        return None
    except OSError as e:
        raise CtdbImportError(str(path), None, f"cannot read it ({e.strerror})",
                              "check the path and its permissions") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise CtdbImportError(str(path), line, f"not UTF-8 (byte 0x{raw[e.start]:02x})",
                              "save the file as UTF-8 (or plain ASCII)") from None


def _config(fn: Any, *args: Any) -> Any:
    """Call one of harness.ctdb's parsers, its ConfigError becoming ours."""
    try:
        return fn(*args)
    except ConfigError as e:
        raise CtdbImportError.from_config(e) from None


def _assignment_lines(text: str) -> dict[str, int]:
    """Shell file: name -> line of its last assignment (the one that counts)."""
    out: dict[str, int] = {}
    for lineno, raw in enumerate(text.split("\n"), 1):
        m = re.match(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=", raw)
        if m:
            out[m.group(1)] = lineno
    return out


@dataclass
class _ShellFile:
    """A shell-style options file: its settings and where each is set."""

    path: str
    values: dict[str, str]
    lines: dict[str, int]


def _shell_file(path: Path) -> _ShellFile | None:
    text = _read(path)
    if text is None:
        return None
    values = _config(parse_script_options, text, str(path))
    return _ShellFile(str(path), values, _assignment_lines(text))


def _set_tunables(f: _ShellFile) -> dict[str, int]:
    """The ``CTDB_SET_Name=Value`` settings of a shell file, checked as ctdb would."""
    out: dict[str, int] = {}
    for key, value in f.values.items():
        if not key.startswith(_SET_PREFIX):
            continue
        name, line = key[len(_SET_PREFIX):], f.lines.get(key)
        t = find(name)
        if t is None:
            raise CtdbImportError(f.path, line, f"{key}: unknown tunable {name!r}",
                                  "`ctdb listvars` (harness.ctdb.tunables.NAMES) lists the "
                                  "valid names")
        if t.obsolete:
            raise CtdbImportError(f.path, line,
                                  f"{key}: obsolete tunable {t.name!r} (ctdbd 4.17 refuses it)",
                                  "remove the line")
        try:
            out[t.name] = parse_value(value, t.name)
        except TunableError:
            raise CtdbImportError(f.path, line, f"{key}: invalid value {value!r}",
                                  "write an integer from 0 to 4294967295 (decimal, 0x hex "
                                  "or 0 octal)") from None
    return out


def _tunables_file(path: Path) -> dict[str, int]:
    """The tunables a ctdb.tunables file sets, explicit defaults included.

    parse_tunables applies the file onto a base; applied onto two bases that
    differ everywhere, exactly the names the file sets come out equal.
    """
    text = _read(path)
    if text is None:
        return {}
    low = _config(parse_tunables, text, Tunables(), str(path))
    high = _config(parse_tunables, text, Tunables({n: DEFAULTS[n] ^ 1 for n in NAMES}),
                   str(path))
    return {n: low[n] for n in NAMES if low[n] == high[n]}


# -- ctdb.conf -----------------------------------------------------------------------

_CONF_USED = {("cluster", "cluster lock"), ("cluster", "recovery lock")}
_CONF_IGNORED = {
    ("cluster", "node address"),
    ("database", "volatile database directory"),
    ("database", "persistent database directory"),
    ("database", "state database directory"),
    ("database", "tdb mutexes"),
    ("database", "lock debug script"),
    ("event", "debug script"),
    ("legacy", "realtime scheduling"),
    ("legacy", "lmaster capability"),
    ("legacy", "script log level"),
    ("logging", "location"),
    ("logging", "log level"),
}
"""Options with no bearing on public-IP failover: read and left alone."""
_CONF_NOT_REPRODUCED = {
    ("cluster", "transport"): "tcp",
    ("cluster", "leader capability"): "true",
    ("cluster", "leader timeout"): "5",
    ("failover", "disabled"): "false",
    ("legacy", "recmaster capability"): "true",
    ("legacy", "start as stopped"): "false",
    ("legacy", "start as disabled"): "false",
}
"""Options that change failover behaviour, with the value the harness runs with."""
_CONF_SECTIONS = {s for s, _ in _CONF_USED | _CONF_IGNORED | set(_CONF_NOT_REPRODUCED)}


def _read_ctdb_conf(path: Path, warnings: list[str]) -> str | None:
    """ctdb.conf's cluster lock; warnings for what the harness leaves out."""
    text = _read(path)
    if text is None:
        return None
    src = str(path)
    section: str | None = None
    lock: str | None = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = " ".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise CtdbImportError(src, lineno, f"{line!r} is not a [section] line",
                                      "write e.g. [cluster]")
            section = " ".join(line[1:-1].lower().split())
            if section not in _CONF_SECTIONS:
                warnings.append(f"{src}:{lineno}: unknown section [{section}] ignored")
            continue
        key, eq, value = line.partition("=")
        key, value = " ".join(key.lower().split()), value.strip()
        if not eq or not key:
            raise CtdbImportError(src, lineno, f"{line!r} is not 'key = value'",
                                  "write e.g. 'cluster lock = /clusterfs/.ctdb/reclock'")
        if section is None:
            raise CtdbImportError(src, lineno, f"{key!r} is outside any [section]",
                                  "put it under its section, e.g. [cluster]")
        if section not in _CONF_SECTIONS or (section, key) in _CONF_IGNORED:
            continue
        if (section, key) in _CONF_USED:
            lock = value or None
        elif (section, key) in _CONF_NOT_REPRODUCED:
            runs_with = _CONF_NOT_REPRODUCED[(section, key)]
            if value.lower() != runs_with:
                warnings.append(f"{src}:{lineno}: [{section}] {key} = {value} is not "
                                f"reproduced; the harness runs with {runs_with}")
        else:
            warnings.append(f"{src}:{lineno}: unknown option [{section}] {key} ignored")
    return lock


# -- nodes and public addresses ------------------------------------------------------

def _content_lines(text: str, public: bool) -> list[int]:
    """Line numbers of the entries config's parsers return, in their order.

    nodes: every non-blank line is an entry (a '#' line a deleted node);
    public_addresses: blank and '#' lines are skipped.
    """
    out = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        body = raw.lstrip(" \t") if public else raw.strip(" \t")
        if not body or (public and (body.startswith("#") or not body.split())):
            continue
        out.append(lineno)
    return out


def _read_nodes(path: Path, warnings: list[str]) -> list[NodeEntry]:
    """The nodes to build: trailing deleted ones dropped, inner ones kept."""
    text = _read(path, required=True) or ""
    src = str(path)
    entries = list(_config(parse_nodes, text, src))
    lines = _content_lines(text, public=False)
    for e in entries:
        if not e.deleted and e.address.version != 4:
            raise CtdbImportError(src, lines[e.pnn],
                                  f"{e.address} is IPv6, and the harness builds IPv4 only",
                                  "import a copy with the nodes' IPv4 addresses")
    keep = len(entries)
    while entries[keep - 1].deleted:  # parse_nodes refuses a file without a live node
        keep -= 1
    if keep > MAX_NODES:
        raise CtdbImportError(src, lines[MAX_NODES],
                              f"{keep} nodes, more than the harness's {MAX_NODES}",
                              f"import a copy that lists at most {MAX_NODES} (pnns are line "
                              "positions: cut from the end)")
    for e in entries:
        if e.deleted and e.pnn < keep:
            warnings.append(
                f"{src}:{lines[e.pnn]}: node {e.pnn} is deleted; the harness builds it as a "
                "live node to keep the later nodes' pnns (stop its daemon to mimic the field)")
        elif e.deleted:
            warnings.append(f"{src}:{lines[e.pnn]}: node {e.pnn} is deleted and last; "
                            "dropped (it shifts no pnn)")
    return entries[:keep]


@dataclass
class _Group:
    """Public interfaces that form one network, and its entries (indexes)."""

    ifaces: list[str]
    entries: list[int]
    nets: list[ipaddress.IPv4Network]

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
    """Harness address of each of the group's entries (see the module docstring)."""
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
class _Publics:
    """The public side of the topology, and the mapping of its addresses."""

    networks: list[Network]
    interfaces: list[tuple[str, str, int]]  # name, network, line of first use
    addresses: list[PublicAddress]
    mapping: dict[str, str]


def _read_publics(path: Path, nodes: int, node_ips: Mapping[str, int],
                  private_iface: str, warnings: list[str]) -> _Publics:
    text = _read(path)
    src = str(path)
    if text is None:
        warnings.append(f"{src}: missing; the cluster has no public addresses")
        return _Publics([], [], [], {})
    pubs: tuple[PublicAddress, ...] = _config(parse_public_addresses, text, src)
    lines = _content_lines(text, public=True)
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
    return _Publics(networks, interfaces, addresses, mapping)


# -- interfaces ------------------------------------------------------------------------

def _interfaces(private_iface: str, publics: _Publics, bonds: Mapping[str, Bond], nodes: int,
                pa_src: str, warnings: list[str]) -> tuple[Interface, ...]:
    """The private interface and the public ones, bonded where --bond says so."""
    try:
        check_iface_name(private_iface)
    except ValueError as e:
        raise CtdbImportError("private_iface", None, str(e),
                              "name the field's private interface, e.g. eth0") from None
    # name, network, and where the name comes from (file, line) for messages
    named: list[tuple[str, str, str, int | None]] = [
        (private_iface, PRIVATE_NETWORK.name, "private_iface", None)]
    named += [(n, net, pa_src, line) for n, net, line in publics.interfaces]
    names = {n for n, _, _, _ in named}
    owner: dict[str, str] = {}
    for bond_name, bond in bonds.items():
        if bond_name not in names:
            raise CtdbImportError(f"--bond {bond_name}", None,
                                  f"no interface {bond_name} in {pa_src} and it is not the "
                                  f"private interface {private_iface}",
                                  "bond an interface the cluster uses")
        for s in bond.slaves:
            if s in names:
                raise CtdbImportError(f"--bond {bond_name}", None,
                                      f"slave {s} is also an interface of the cluster",
                                      "give the bond slaves names of their own")
            if s in owner:
                raise CtdbImportError(f"--bond {bond_name}", None,
                                      f"slave {s} is also a slave of {owner[s]}",
                                      "give each bond its own slaves")
            owner[s] = bond_name
    out = []
    for name, net, src, line in named:
        where = src if line is None else f"{src}:{line}"
        bond = bonds.get(name)
        if bond is None and name.startswith("bond"):
            warnings.append(f"{where}: {name} is built as a plain interface (bonds are not in "
                            f"/etc/ctdb); pass --bond {name}=MODE:SLAVES to make it a bond")
        if "." in name or "@" in name:
            warnings.append(f"{where}: {name} looks like a VLAN; the harness builds it as a "
                            "plain interface")
        if bond is not None:
            src, line = f"--bond {name}", None
        for port in bond.slaves if bond else (name,):
            sw = switch_port(nodes - 1, port)
            if len(sw) > 15:
                raise CtdbImportError(src, line,
                                      f"interface name {port!r} is too long for the harness "
                                      f"(its switch port {sw!r} is over 15 characters)",
                                      "rename it in a copy of the files (or in --bond or "
                                      "--private-iface)")
        out.append(Interface(name, net, bond))
    return tuple(out)


_LEGACY_NOT_OPTIONS = ("CTDB_RECOVERY_LOCK", "CTDB_NODES", "CTDB_PUBLIC_ADDRESSES")
"""Legacy ctdbd.conf settings that are the daemon's, not the event scripts'."""


def _read_settings(d: Path, warnings: list[str]
                   ) -> tuple[dict[str, int], dict[str, str], str | None]:
    """Tunables, script options and cluster lock from every file that holds them."""
    legacy = _shell_file(d / "ctdbd.conf")
    options_files = [f for f in (_shell_file(d / "script.options"),
                                 _shell_file(d / "events" / "legacy" / "10.interface.options"))
                     if f is not None]
    tunable_sources: list[tuple[str, dict[str, int]]] = []
    script_options: dict[str, str] = {}
    cluster_lock: str | None = None
    if legacy is not None:
        tunable_sources.append((legacy.path, _set_tunables(legacy)))
        cluster_lock = legacy.values.get("CTDB_RECOVERY_LOCK") or None
        for key, base in (("CTDB_NODES", "nodes"), ("CTDB_PUBLIC_ADDRESSES", "public_addresses")):
            value = legacy.values.get(key)
            if value and Path(value).name != base:
                warnings.append(f"{legacy.path}:{legacy.lines[key]}: {key}={value}; this "
                                f"import reads {d / base} - copy that file there")
        script_options.update({k: v for k, v in legacy.values.items()
                               if not k.startswith(_SET_PREFIX) and k not in _LEGACY_NOT_OPTIONS})
    for f in options_files:
        tunable_sources.append((f.path, _set_tunables(f)))
        script_options.update({k: v for k, v in f.values.items()
                               if not k.startswith(_SET_PREFIX)})
    tunable_sources.append((str(d / "ctdb.tunables"), _tunables_file(d / "ctdb.tunables")))
    tunables: dict[str, int] = {}
    set_in: dict[str, str] = {}
    for src, values in tunable_sources:
        for name, value in values.items():
            if name in tunables and tunables[name] != value:
                warnings.append(f"{src}: {name}={value} overrides {tunables[name]} "
                                f"from {set_in[name]}")
            tunables[name], set_in[name] = value, src
    conf_lock = _read_ctdb_conf(d / "ctdb.conf", warnings)
    return ({n: tunables[n] for n in NAMES if n in tunables}, script_options,
            conf_lock if conf_lock is not None else cluster_lock)


# -- the whole directory -----------------------------------------------------------------

def import_ctdb_dir(path: str | Path, bonds: Mapping[str, Bond] = _NO_BONDS,
                    private_iface: str = "eth0") -> ImportedCluster:
    """Read a copy of a field cluster's /etc/ctdb; raise CtdbImportError on bad input.

    `bonds` maps interface names to the bonds they are in the field (see
    `parse_bond_spec`); `private_iface` is the field's private interface,
    which /etc/ctdb does not name.
    """
    d = Path(path)
    if not d.is_dir():
        raise CtdbImportError(str(d), None, "not a directory",
                              "give the path of a copy of the field's /etc/ctdb")
    warnings: list[str] = []

    entries = _read_nodes(d / "nodes", warnings)
    nodes = len(entries)
    mapping: dict[str, str] = {}
    node_ips: dict[str, int] = {}
    for e in entries:
        if not e.deleted:
            mapping[str(e.address)] = str(PRIVATE_NETWORK.node_address(e.pnn).ip)
            node_ips[str(e.address)] = e.pnn
    publics = _read_publics(d / "public_addresses", nodes, node_ips, private_iface, warnings)
    mapping.update(publics.mapping)
    interfaces = _interfaces(private_iface, publics, bonds, nodes, str(d / "public_addresses"),
                             warnings)

    tunables, script_options, cluster_lock = _read_settings(d, warnings)

    top = Topology(
        nodes=nodes,
        networks=(PRIVATE_NETWORK, *publics.networks),
        interfaces=interfaces,
        public_addresses=tuple(publics.addresses),
        private_network=PRIVATE_NETWORK.name,
        source=str(d),
    )
    try:
        top = top.validated()
    except TopologyError as e:
        raise CtdbImportError(str(d), None, f"the imported topology is invalid ({e})",
                              "report this: the import should have refused the input") from None
    return ImportedCluster(
        topology=top, tunables=tunables, script_options=script_options, mapping=mapping,
        cluster_lock=cluster_lock, warnings=warnings,
        deleted_nodes=tuple(e.pnn for e in entries if e.deleted))
