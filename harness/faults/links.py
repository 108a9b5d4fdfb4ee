"""Link faults: a node's interfaces set down, its cables pulled, its bond
slaves lost, its interfaces deleted and recreated.

These are the only way the harness changes a link once a cluster is built.
Every change goes through a netlink socket that netns.in_netns has checked to
be inside the run's namespace (a node's, or the switch's for cables).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness import builder, netns
from harness.faults.base import Fault, FaultError, Span
from harness.links import BondDevice, Veth
from harness.record import Timeline
from harness.topology import Interface

if TYPE_CHECKING:
    from harness.cluster import Cluster


def set_links(ns: str, names: Sequence[str], up: bool,
              wait: Callable[[], None] | None = None) -> Span:
    """Set links' admin state in namespace ns; time only the netlink requests.
    `wait` runs after the socket is open and the links are found, just before."""
    def body(r: netns.NsRoute) -> Span:
        idx = []
        for n in names:
            found = r.link_lookup(ifname=n)
            if not found:
                raise FaultError(f"{ns}: no link {n!r}")
            idx.append(found[0])
        if wait is not None:
            wait()
        t0 = time.monotonic()
        for i in idx:
            r.link("set", index=i, state="up" if up else "down")
        return t0, time.monotonic()
    return netns.in_netns(ns, body)


class AdminDown(Fault):
    """`ip link set IFACE down` inside a node (a bond slave or a plain interface).

    On a plain interface CTDB's 10.interface heals this (it sets the link up
    again); on a bond slave it is the seed's fault.
    """

    def __init__(self, cluster: Cluster, pnn: int, ifname: str,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.cluster, self.ifname = cluster, ifname
        self.ns = cluster.nodes[pnn].netns

    def describe(self) -> str:
        return f"node {self.node} {self.ifname} admin down"

    def params(self) -> dict[str, Any]:
        return {"ifname": self.ifname}

    def _apply(self) -> Span:
        return set_links(self.ns, [self.ifname], False, self._wait_at)

    def _undo(self) -> Span:
        return set_links(self.ns, [self.ifname], True, self._wait_at)


class PullCable(Fault):
    """The switch-side ends of one or more of a node's veths set down: the node
    sees carrier loss (operstate DOWN) while its own link stays admin-up."""

    def __init__(self, cluster: Cluster, pnn: int, ports: str | Sequence[str],
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.cluster = cluster
        self.ports = (ports,) if isinstance(ports, str) else tuple(ports)
        if not self.ports:
            raise FaultError("PullCable: no ports given")
        self.switch_ports = [builder.switch_port(pnn, p) for p in self.ports]

    def describe(self) -> str:
        return f"node {self.node} cable {','.join(self.ports)} pulled"

    def params(self) -> dict[str, Any]:
        return {"ports": list(self.ports)}

    def _apply(self) -> Span:
        return set_links(self.cluster.plan.switch, self.switch_ports, False, self._wait_at)

    def _undo(self) -> Span:
        return set_links(self.cluster.plan.switch, self.switch_ports, True, self._wait_at)


class PlugCable(PullCable):
    """The switch-side ends set up again: the cable of an earlier pull plugged
    back in (the lab's `plug` step). Its undo pulls the cable once more."""

    def describe(self) -> str:
        return f"node {self.node} cable {','.join(self.ports)} plugged"

    def _apply(self) -> Span:
        return super()._undo()

    def _undo(self) -> Span:
        return super()._apply()


# -- bonds ---------------------------------------------------------------------------

def bond_slaves(cluster: Cluster, bond: str) -> tuple[str, ...]:
    """The topology's slaves of `bond` (FaultError if it is not a bond)."""
    iface = cluster.topology.interface(bond)
    if iface.bond is None:
        raise FaultError(f"{bond} is not a bond in this topology")
    return iface.bond.slaves


def _active_slave(cluster: Cluster, pnn: int, bond: str) -> str:
    """The slave carrying the bond's traffic now: the only one, or the kernel's
    active slave (the first slave where the kernel names none, as in 802.3ad)."""
    slaves = bond_slaves(cluster, bond)
    if len(slaves) == 1:
        return slaves[0]
    return cluster.nodes[pnn].bond_state(bond).active_slave or slaves[0]


def bond_slave_lost(cluster: Cluster, pnn: int, bond: str = "bond0", slave: str | None = None,
                    timeline: Timeline | None = None) -> PullCable:
    """One bond slave's cable pulled: the active slave unless `slave` is named."""
    if slave is None:
        slave = _active_slave(cluster, pnn, bond)
    if slave not in bond_slaves(cluster, bond):
        raise FaultError(f"{slave} is not a slave of {bond}")
    return PullCable(cluster, pnn, slave, timeline)


def all_bond_slaves_lost(cluster: Cluster, pnn: int, bond: str = "bond0",
                         timeline: Timeline | None = None) -> PullCable:
    """Every slave's cable pulled at once (one netlink burst)."""
    return PullCable(cluster, pnn, bond_slaves(cluster, bond), timeline)


# -- the seed's experiment -------------------------------------------------------------

def public_interface(cluster: Cluster) -> Interface:
    """The node's one interface on a public network (FaultError if there are
    several: then "the public link" is ambiguous and the caller must name one)."""
    top = cluster.topology
    public = [i for i in top.interfaces if i.network != top.private_network]
    if len(public) != 1:
        names = ", ".join(i.name for i in public) or "none"
        raise FaultError(f"{top.source}: {len(public)} public interfaces ({names}); name the "
                         "link to fault (Faults.pull_cable / Faults.admin_down)")
    return public[0]


def public_link_fault(cluster: Cluster, pnn: int, timeline: Timeline | None = None) -> Fault:
    """The seed's experiment, "node pnn loses its public link", as the fault that
    does it on this cluster's topology.

    The seed runs `ifconfig eth0 down` inside the node, on the only slave of
    the public bond: the bond loses carrier and CTDB's 10.interface reports
    no link. So where the public interface is a bond this is AdminDown of
    the bond's slave inside the node (the only slave; with several, the
    active one, and the bond fails over instead of losing its link - use
    all_bond_slaves_lost for that).

    Where the public interface is a plain veth, the same admin-down would not
    be a lost link for long: 10.interface runs `ip link set IFACE up` when it
    finds an interface down, and the node stays healthy. The equivalent
    there is a pulled cable (PullCable: the switch end goes down, the node
    sees carrier loss that nothing inside it can heal).

    Decided when called: the active slave is read from the kernel then.
    """
    iface = public_interface(cluster)
    if iface.bond is not None:
        return AdminDown(cluster, pnn, _active_slave(cluster, pnn, iface.name), timeline)
    return PullCable(cluster, pnn, iface.name, timeline)


# -- deleting interfaces ---------------------------------------------------------------

class DeleteInterface(Fault):
    """An interface deleted inside a node: a veth port (plain or bond slave; its
    switch-side peer goes with it) or a bond device.

    undo() recreates it as the builder did: same names and MACs, bridge port
    up, re-enslaved to its bond, or the node's own address from the topology
    on a plain interface or bond. Addresses that a daemon had added (public
    IPs) are not restored: that is the daemon's job.
    """

    def __init__(self, cluster: Cluster, pnn: int, ifname: str,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.cluster, self.ifname = cluster, ifname
        self.iface: Interface | None = None    # set when ifname is a bond device
        self.port_of: Interface | None = None  # set when ifname is a veth port
        for i in cluster.topology.interfaces:
            if i.name == ifname and i.bond is not None:
                self.iface = i
            elif ifname in i.ports:
                self.port_of = i
        if self.iface is None and self.port_of is None:
            raise FaultError(f"{ifname} is neither a port nor a bond of the topology")
        self.ns = cluster.nodes[pnn].netns
        self.saved: dict[str, Any] = {}

    def describe(self) -> str:
        return f"node {self.node} {self.ifname} deleted"

    def params(self) -> dict[str, Any]:
        return {"ifname": self.ifname}

    def _apply(self) -> Span:
        ifname = self.ifname

        def body(r: netns.NsRoute) -> Span:
            found = r.link_lookup(ifname=ifname)
            if not found:
                raise FaultError(f"node {self.node}: no link {ifname}")
            link = r.link("get", index=found[0])[0]
            self.saved["mac"] = link.get_attr("IFLA_ADDRESS")
            self._wait_at()
            t0 = time.monotonic()
            r.link("del", index=found[0])
            return t0, time.monotonic()

        if self.port_of is not None:
            peer = builder.switch_port(self.node or 0, ifname)
            self.saved["peer_mac"] = self.cluster.switch.link(peer).mac
        return netns.in_netns(self.ns, body)

    def _node_address(self, r: netns.NsRoute, name: str, network: str) -> None:
        addr = self.cluster.topology.network(network).node_address(self.node or 0)
        idx = r.link_lookup(ifname=name)[0]
        r.addr("add", index=idx, address=str(addr.ip), prefixlen=addr.network.prefixlen,
               broadcast=str(addr.network.broadcast_address))

    def _undo(self) -> Span:
        if self.iface is not None:
            return self._undo_bond(self.iface)
        assert self.port_of is not None
        return self._undo_port(self.port_of)

    def _undo_bond(self, iface: Interface) -> Span:
        """The bond device again, over its (still existing) slaves, with its address."""
        bond = iface.bond
        assert bond is not None
        alias = f"fth run {self.cluster.run_id} node {self.node or 0}"

        def body(r: netns.NsRoute) -> Span:
            self._wait_at()
            t0 = time.monotonic()
            idx = BondDevice(iface.name, bond, alias).create(r)
            self._node_address(r, iface.name, iface.network)
            r.link("set", index=idx, state="up")
            return t0, time.monotonic()
        return netns.in_netns(self.ns, body)

    def _undo_port(self, owner: Interface) -> Span:
        """The veth pair again: the node end with its old MAC, enslaved or
        addressed, then up; the switch end with its old MAC on the bridge, up.
        The span runs from the veth's creation to the bridge port's coming up."""
        port, peer = self.ifname, builder.switch_port(self.node or 0, self.ifname)
        sw = self.cluster.plan.switch
        fd = os.open(netns.netns_path(sw), os.O_RDONLY | os.O_CLOEXEC)
        try:
            def node_body(r: netns.NsRoute) -> float:
                self._wait_at()
                t0 = time.monotonic()
                # created down: the MAC is set and a slave enslaved first (the
                # kernel refuses to enslave a link that is up)
                Veth(port, peer, fd, up=False).create(r)
                r.link("set", ifname=port, address=self.saved["mac"])
                if owner.bond is not None:
                    r.link("set", ifname=port, master=r.link_lookup(ifname=owner.name)[0])
                else:
                    self._node_address(r, port, owner.network)
                r.link("set", ifname=port, state="up")
                return t0
            t0 = netns.in_netns(self.ns, node_body)
        finally:
            os.close(fd)

        def switch_body(r: netns.NsRoute) -> float:
            br = r.link_lookup(ifname=builder.bridge_name(owner.network))[0]
            r.link("set", ifname=peer, address=self.saved["peer_mac"])
            r.link("set", ifname=peer, master=br, state="up")
            return time.monotonic()
        return t0, netns.in_netns(sw, switch_body)
