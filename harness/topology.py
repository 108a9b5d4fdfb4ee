"""What a cluster looks like, as plain data: nodes, networks, interfaces, bonds
and public addresses. Nothing here touches the kernel; the builder turns a
Topology into namespaces.

The default reproduces the seed's cluster: 3 nodes, private network on eth0,
public bond0 (active-backup, miimon 100, one slave eth1) carrying 3 public IPs.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from harness.ctdb import ConfigError, PublicAddress, parse_address, parse_public_addresses

BOND_MODES = ("active-backup", "802.3ad", "balance-rr")
# Where the cluster lock lives: "fcntl" is a file on the host that all nodes
# share (fast, but a partition of the private network does not cut it);
# "etcd" is an etcd server in a `lock` namespace on the private switch, which
# a partition does cut (harness.lockservice).
CLUSTER_LOCKS = ("fcntl", "etcd")
# Never used inside the project: the host's own network.
FORBIDDEN = ipaddress.ip_network("192.0.2.0/24")
MAX_NODES = 200


class TopologyError(ValueError):
    """Bad topology input; str() is one line: where, what, how to fix."""


@dataclass(frozen=True)
class Bond:
    """A Linux bonding device on a node; its slaves are veths to the switch."""

    mode: str = "active-backup"
    miimon: int = 100
    updelay: int = 0
    downdelay: int = 0
    slaves: tuple[str, ...] = ("eth1",)
    primary: str | None = None


@dataclass(frozen=True)
class Interface:
    """A node's attachment to one network: a plain veth, or a bond of veths."""

    name: str
    network: str
    bond: Bond | None = None

    @property
    def ports(self) -> tuple[str, ...]:
        """Node-side veth names that get a cable to the switch."""
        return self.bond.slaves if self.bond else (self.name,)


@dataclass(frozen=True)
class Network:
    """One bridge in the switch namespace; nodes get host number pnn+1."""

    name: str
    subnet: ipaddress.IPv4Network

    def node_address(self, pnn: int) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.subnet[pnn + 1]}/{self.subnet.prefixlen}")

    def client_address(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.subnet[-2]}/{self.subnet.prefixlen}")


def _public_address(text: str, where: str) -> PublicAddress:
    """One TOML public_addresses entry, read by CTDB's own public_addresses parser.

    An address without /bits gets the hint to add one (CTDB's parser only
    says it is not an address with /bits), and the topology's networks are
    IPv4, so an IPv6 address is refused here.
    """
    try:
        entries = parse_public_addresses(text, where)
    except ConfigError as e:
        first = text.split()[0] if text.split() else ""
        if "/" not in first and _is_address(first):
            raise TopologyError(f"{where}: {first!r} lacks /bits; write e.g. {first}/24") from None
        raise TopologyError(f"{where}: {e.problem}; {e.fix}") from None
    if len(entries) != 1:
        raise TopologyError(f"{where}: {text!r} is not 'IP/bits iface[,iface]'")
    if entries[0].address.version != 4:
        raise TopologyError(f"{where}: {entries[0].line()!r} is not an IPv4 address; "
                            "write e.g. 203.0.113.201/24")
    return entries[0]


def _is_address(text: str) -> bool:
    try:
        parse_address(text)
    except ValueError:
        return False
    return True


def _net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


@dataclass(frozen=True)
class Topology:
    """A whole cluster; every node has the same interfaces (the usual CTDB case)."""

    nodes: int = 3
    networks: tuple[Network, ...] = (
        Network("private", _net("198.18.0.0/24")),
        Network("public", _net("203.0.113.0/24")),
    )
    interfaces: tuple[Interface, ...] = (
        Interface("eth0", "private"),
        Interface("bond0", "public", Bond()),
    )
    public_addresses: tuple[PublicAddress, ...] = tuple(
        PublicAddress(ipaddress.IPv4Interface(f"203.0.113.{201 + i}/24"), ("bond0",))
        for i in range(3)
    )
    private_network: str = "private"
    cluster_lock: str = "fcntl"
    leader_nodes: tuple[int, ...] = ()
    """ctdb.conf's `leader capability`: the nodes that may become leader (take
    the cluster lock); empty means every node, ctdbd's default. Naming one node
    makes the lock holder known in advance, which a test that must not cut off
    the leader needs (ctdbd's own election otherwise picks any node)."""
    source: str = field(default="<default>", compare=False)

    # -- derived views -------------------------------------------------
    def network(self, name: str) -> Network:
        for net in self.networks:
            if net.name == name:
                return net
        raise TopologyError(f"{self.source}: no network named {name!r}")

    def interface(self, name: str) -> Interface:
        for iface in self.interfaces:
            if iface.name == name:
                return iface
        raise TopologyError(f"{self.source}: no interface named {name!r}")

    @property
    def private(self) -> Network:
        return self.network(self.private_network)

    @property
    def public_networks(self) -> tuple[Network, ...]:
        return tuple(n for n in self.networks if n.name != self.private_network)

    @property
    def private_interface(self) -> Interface:
        return next(i for i in self.interfaces if i.network == self.private_network)

    def lock_address(self) -> ipaddress.IPv4Interface:
        """The lock host's address on the private network: the third-last host
        (the last is a private-network client's, as for every network)."""
        net = self.private.subnet
        return ipaddress.IPv4Interface(f"{net[-3]}/{net.prefixlen}")

    def leader_capable(self, pnn: int) -> bool:
        """May node `pnn` become leader (ctdb.conf `leader capability`)?"""
        return not self.leader_nodes or pnn in self.leader_nodes

    def node_addresses(self) -> list[ipaddress.IPv4Address]:
        """The CTDB `nodes` file contents: private address per pnn."""
        return [self.private.node_address(p).ip for p in range(self.nodes)]

    @property
    def has_bonds(self) -> bool:
        return any(i.bond for i in self.interfaces)

    # -- variants ------------------------------------------------------
    def plain(self) -> Topology:
        """The same cluster without bonds: each bond becomes its first slave.

        For kernels without the bonding driver; public addresses follow.
        """
        rename = {i.name: i.bond.slaves[0] for i in self.interfaces if i.bond}
        ifaces = tuple(
            Interface(rename.get(i.name, i.name), i.network) for i in self.interfaces
        )
        pubs = tuple(
            PublicAddress(p.address, tuple(rename.get(x, x) for x in p.ifaces))
            for p in self.public_addresses
        )
        return replace(self, interfaces=ifaces, public_addresses=pubs).validated()

    def with_bond(self, mode: str, slaves: int = 1, **kw: Any) -> Topology:
        """Every public interface becomes a bond of `slaves` veths in `mode`.

        Bonds are named bond0, bond1, ...; their slaves eth1, eth2, ... in order.
        """
        out: list[Interface] = []
        rename: dict[str, str] = {}
        next_port = 1
        for i in self.interfaces:
            if i.network == self.private_network:
                out.append(i)
                continue
            name = f"bond{len(rename)}"
            ports = tuple(f"eth{next_port + k}" for k in range(slaves))
            next_port += slaves
            bond = replace(i.bond or Bond(), mode=mode, slaves=ports, primary=None, **kw)
            rename[i.name] = name
            out.append(Interface(name, i.network, bond))
        pubs = tuple(
            PublicAddress(p.address, tuple(rename.get(x, x) for x in p.ifaces))
            for p in self.public_addresses
        )
        return replace(self, interfaces=tuple(out), public_addresses=pubs).validated()

    def resized(self, nodes: int) -> Topology:
        return replace(self, nodes=nodes).validated()

    # -- checks --------------------------------------------------------
    def validated(self) -> Topology:
        """Return self, or raise TopologyError naming the first problem."""
        src = self.source
        if self.cluster_lock not in CLUSTER_LOCKS:
            raise TopologyError(f"{src}: cluster_lock = {self.cluster_lock!r}; use one of "
                                f"{', '.join(repr(c) for c in CLUSTER_LOCKS)}")
        if not 1 <= self.nodes <= MAX_NODES:
            raise TopologyError(f"{src}: nodes = {self.nodes}; use 1..{MAX_NODES}")
        bad = [p for p in self.leader_nodes if not 0 <= p < self.nodes]
        if bad or len(set(self.leader_nodes)) != len(self.leader_nodes):
            raise TopologyError(f"{src}: leader_nodes = {list(self.leader_nodes)}; use distinct "
                                f"pnns in 0..{self.nodes - 1} (or leave it out: every node)")
        names = [n.name for n in self.networks]
        if len(set(names)) != len(names):
            raise TopologyError(f"{src}: network names repeat: {names}")
        if self.private_network not in names:
            raise TopologyError(
                f"{src}: private_network {self.private_network!r} is not one of {names}"
            )
        for n in self.networks:
            if n.subnet.overlaps(FORBIDDEN):
                raise TopologyError(
                    f"{src}: networks.{n.name}.subnet {n.subnet} overlaps {FORBIDDEN}, the host's "
                    "own network; use 198.18.0.0/15, 203.0.113.0/24 or 198.51.100.0/24"
                )
            if n.subnet.num_addresses - 3 < self.nodes:
                raise TopologyError(
                    f"{src}: networks.{n.name}.subnet {n.subnet} is too small for "
                    f"{self.nodes} nodes and a client; use a shorter prefix"
                )
            if (self.cluster_lock == "etcd" and n.name == self.private_network
                    and n.subnet.num_addresses - 4 < self.nodes):
                raise TopologyError(
                    f"{src}: networks.{n.name}.subnet {n.subnet} is too small for "
                    f"{self.nodes} nodes, a client and the lock host; use a shorter prefix"
                )
        seen_ports: set[str] = set()
        for i in self.interfaces:
            where = f"{src}: interfaces.{i.name}"
            if i.network not in names:
                raise TopologyError(f"{where}.network {i.network!r} is not one of {names}")
            if not 1 <= len(i.name) <= 15 or "/" in i.name or " " in i.name:
                raise TopologyError(f"{where}: interface names are 1-15 chars, no '/' or space")
            if i.bond:
                b = i.bond
                if b.mode not in BOND_MODES:
                    raise TopologyError(
                        f"{where}.bond.mode {b.mode!r} is not one of {', '.join(BOND_MODES)}"
                    )
                if not b.slaves:
                    raise TopologyError(f"{where}.bond.slaves is empty; give at least one")
                if b.primary is not None and b.primary not in b.slaves:
                    raise TopologyError(f"{where}.bond.primary {b.primary!r} is not a slave")
                for v, what in ((b.miimon, "miimon"), (b.updelay, "updelay"),
                                (b.downdelay, "downdelay")):
                    if v < 0:
                        raise TopologyError(f"{where}.bond.{what} = {v}; must be >= 0")
            for port in i.ports:
                if port in seen_ports:
                    raise TopologyError(f"{where}: port {port!r} is used twice")
                seen_ports.add(port)
        if sum(1 for i in self.interfaces if i.network == self.private_network) != 1:
            raise TopologyError(
                f"{src}: exactly one interface must be on the private network "
                f"{self.private_network!r}"
            )
        ifnames = {i.name for i in self.interfaces}
        seen_ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        for p in self.public_addresses:
            where = f"{src}: public_addresses {p.line()!r}"
            for x in p.ifaces:
                if x not in ifnames:
                    raise TopologyError(f"{where}: interface {x!r} is not one of {sorted(ifnames)}")
                if self.interface(x).network == self.private_network:
                    raise TopologyError(f"{where}: {x!r} is on the private network")
            if p.address.ip in FORBIDDEN:
                raise TopologyError(f"{where}: {FORBIDDEN} is the host's network")
            if p.address.ip in seen_ips:
                raise TopologyError(f"{where}: address listed twice")
            seen_ips.add(p.address.ip)
            nets = [self.interface(x).network for x in p.ifaces]
            net = self.network(nets[0])
            if p.address.ip not in net.subnet:
                raise TopologyError(f"{where}: address is outside {net.name} {net.subnet}")
            hosts = {net.node_address(k).ip for k in range(self.nodes)} | {
                net.client_address().ip
            }
            if p.address.ip in hosts:
                raise TopologyError(
                    f"{where}: address collides with a node or client address; node k has "
                    f"host number k+1, the client the last host of the subnet"
                )
        return self


def default_topology(nodes: int = 3) -> Topology:
    """The seed's cluster (bond0 over eth1), with `nodes` nodes."""
    return Topology(nodes=nodes).validated()


# -- TOML --------------------------------------------------------------

_TOP_KEYS = {"nodes", "networks", "interfaces", "public_addresses", "private_network",
             "cluster_lock", "leader_nodes"}
_BOND_KEYS = {"mode", "miimon", "updelay", "downdelay", "slaves", "primary"}


def _want(value: Any, typ: type | tuple[type, ...], where: str, hint: str) -> Any:
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise TopologyError(f"{where}: {value!r} is not {hint}")
    return value


def topology_from_dict(data: dict[str, Any], source: str = "<dict>") -> Topology:
    """Build a Topology from parsed TOML; errors name `source` and the key."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise TopologyError(
            f"{source}: unknown key {sorted(unknown)[0]!r}; "
            f"known keys: {', '.join(sorted(_TOP_KEYS))}"
        )
    base = Topology()
    kw: dict[str, Any] = {"source": source}
    if "nodes" in data:
        kw["nodes"] = _want(data["nodes"], int, f"{source}: nodes", "a whole number")
    if "networks" in data:
        nets = []
        for name, spec in _want(data["networks"], dict, f"{source}: networks", "a table").items():
            where = f"{source}: networks.{name}"
            _want(spec, dict, where, "a table with subnet = '...'")
            if set(spec) - {"subnet"}:
                raise TopologyError(f"{where}: unknown key {sorted(set(spec) - {'subnet'})[0]!r}")
            sub = _want(spec.get("subnet"), str, f"{where}.subnet", "a subnet like '198.18.0.0/24'")
            try:
                nets.append(Network(name, ipaddress.IPv4Network(sub)))
            except ValueError as e:
                raise TopologyError(f"{where}.subnet: {e}; write e.g. '198.18.0.0/24'") from None
        kw["networks"] = tuple(nets)
    if "private_network" in data:
        kw["private_network"] = _want(
            data["private_network"], str, f"{source}: private_network", "a network name"
        )
    if "cluster_lock" in data:
        kw["cluster_lock"] = _want(data["cluster_lock"], str, f"{source}: cluster_lock",
                                   f"one of {', '.join(repr(c) for c in CLUSTER_LOCKS)}")
    if "leader_nodes" in data:
        where = f"{source}: leader_nodes"
        kw["leader_nodes"] = tuple(
            _want(p, int, where, "a list of node numbers")
            for p in _want(data["leader_nodes"], list, where, "a list of node numbers"))
    if "interfaces" in data:
        ifs = []
        table = _want(data["interfaces"], dict, f"{source}: interfaces", "a table")
        for name, spec in table.items():
            where = f"{source}: interfaces.{name}"
            _want(spec, dict, where, "a table with network = '...'")
            extra = set(spec) - {"network", "bond"}
            if extra:
                raise TopologyError(f"{where}: unknown key {sorted(extra)[0]!r}")
            net = _want(spec.get("network"), str, f"{where}.network", "a network name")
            bond = None
            if "bond" in spec:
                b = _want(spec["bond"], dict, f"{where}.bond", "a table")
                extra = set(b) - _BOND_KEYS
                if extra:
                    raise TopologyError(
                        f"{where}.bond: unknown key {sorted(extra)[0]!r}; known: "
                        f"{', '.join(sorted(_BOND_KEYS))}"
                    )
                bkw: dict[str, Any] = {}
                for k in ("miimon", "updelay", "downdelay"):
                    if k in b:
                        bkw[k] = _want(b[k], int, f"{where}.bond.{k}", "a whole number of ms")
                if "mode" in b:
                    bkw["mode"] = _want(b["mode"], str, f"{where}.bond.mode", "a string")
                if "primary" in b:
                    bkw["primary"] = _want(b["primary"], str, f"{where}.bond.primary", "a string")
                if "slaves" in b:
                    sl = _want(b["slaves"], list, f"{where}.bond.slaves", "a list of names")
                    bkw["slaves"] = tuple(
                        _want(s, str, f"{where}.bond.slaves", "a list of names") for s in sl
                    )
                bond = Bond(**bkw)
            ifs.append(Interface(name, net, bond))
        kw["interfaces"] = tuple(ifs)
    if "public_addresses" in data:
        lines = _want(
            data["public_addresses"], list, f"{source}: public_addresses",
            "a list of 'IP/bits iface[,iface]' strings",
        )
        kw["public_addresses"] = tuple(
            _public_address(
                _want(s, str, f"{source}: public_addresses[{k}]", "a string"),
                f"{source}: public_addresses[{k}]",
            )
            for k, s in enumerate(lines)
        )
    return replace(base, **kw).validated()


def load_topology(path: str | Path) -> Topology:
    """Read a TOML topology file; any problem is one TopologyError line."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise TopologyError(f"{p}: cannot read ({e.strerror}); check the path") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise TopologyError(f"{p}: not valid TOML ({e}); fix the syntax") from None
    return topology_from_dict(data, str(p))


def topology_to_dict(top: Topology) -> dict[str, Any]:
    """`top` as the tables `topology_from_dict` reads: its inverse, for writing TOML.

    Every bond setting is written, defaults included, so that a later change
    of a default cannot change what a saved topology builds.
    """
    interfaces: dict[str, Any] = {}
    for i in top.interfaces:
        spec: dict[str, Any] = {"network": i.network}
        if i.bond:
            b = i.bond
            spec["bond"] = {"mode": b.mode, "miimon": b.miimon, "updelay": b.updelay,
                            "downdelay": b.downdelay, "slaves": list(b.slaves)}
            if b.primary is not None:
                spec["bond"]["primary"] = b.primary
        interfaces[i.name] = spec
    out: dict[str, Any] = {
        "nodes": top.nodes,
        "private_network": top.private_network,
        "networks": {n.name: {"subnet": str(n.subnet)} for n in top.networks},
        "interfaces": interfaces,
        "public_addresses": [p.line() for p in top.public_addresses],
    }
    if top.cluster_lock != "fcntl":  # the default is left out: older files stay equal
        out["cluster_lock"] = top.cluster_lock
    if top.leader_nodes:  # likewise: empty is every node, ctdbd's default
        out["leader_nodes"] = list(top.leader_nodes)
    return out


def save_topology(top: Topology, path: str | Path, comment: str | None = None) -> None:
    """Write `top` as a TOML file that `load_topology` reads back to an equal Topology.

    `comment` (one line, without the ``#``) heads the file, to say where the
    topology came from.  An OSError from writing is raised as it is: what
    to call the failure (and which error type) is the caller's business.
    """
    header = "" if comment is None else f"# {comment}\n"
    Path(path).write_text(header + tomli_w.dumps(topology_to_dict(top)))
