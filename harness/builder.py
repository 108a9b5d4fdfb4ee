"""Turns a Topology into namespaces: one switch, one per node, one client per
public network. Only pyroute2 and /proc/sys writes, no `ip` subprocesses.

Layout for run R:
  fth-R-sw      bridges br-<network> (STP off, forward delay 0); switch-side
                veth ends n<pnn>-<port> ("the cable": set it down to pull it)
  fth-R-n<pnn>  node: eth0 (private), bond0 over eth1 or eth1 (public), lo up
  fth-R-c-<net> client on each public network: eth0 with the last host address
  fth-R-lock    with cluster_lock = "etcd": the lock host, eth0 on the private
                network (third-last host address); its cable is switch port "lock"
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from harness import netns
from harness.links import BondDevice, Bridge, Veth
from harness.netns import NsRoute
from harness.runs import RunState, new_run_id
from harness.topology import Topology, TopologyError

# Sysctls CTDB relies on (promote_secondaries: deleting a primary address must
# not drop the secondaries; arp_filter: answer ARP only on the owning link),
# and IPv6 off so router solicitations and DAD add no noise to timelines.
NODE_SYSCTLS = (
    ("net.ipv4.conf.all.promote_secondaries", 1),
    ("net.ipv4.conf.default.promote_secondaries", 1),
    ("net.ipv4.conf.all.arp_filter", 1),
    ("net.ipv4.conf.default.arp_filter", 1),
    ("net.ipv6.conf.all.disable_ipv6", 1),
    ("net.ipv6.conf.default.disable_ipv6", 1),
)
QUIET_SYSCTLS = NODE_SYSCTLS[-2:]


def switch_port(pnn: int, port: str) -> str:
    return f"n{pnn}-{port}"


# The lock host's cable on the switch (its end on the private bridge).
LOCK_PORT = "lock"


def client_port(network: str) -> str:
    return f"c-{network}"[:15]


def bridge_name(network: str) -> str:
    return f"br-{network}"[:15]


@dataclass(frozen=True)
class BondingProbe:
    """What trying to create a bond showed: the answer, and one line saying why
    (printed by `python -m harness.vm probe-bonding`, shown when bond tests skip)."""

    ok: bool
    why: str


@functools.cache
def probe_bonding() -> BondingProbe:
    """Can this kernel create an active-backup bond?  Probed once per process.

    Tried for real, in a throwaway namespace of a run of its own (so `harness gc`
    finds it if we die), because /proc/net/bonding only exists once the driver
    is loaded and the module may still be loadable. Only the bond's creation is
    the kernel's answer: an OSError from claiming the run or making the
    namespace is raised, since it says nothing about bonding.
    """
    release = os.uname().release
    state = RunState(new_run_id()).claim()

    def probe(ipr: NsRoute) -> BondingProbe:
        try:
            ipr.link("add", ifname="bondprobe", kind="bond", bond_mode=1)
        except Exception as e:  # noqa: BLE001 - any refusal means "no bonding"
            return BondingProbe(False, f"kernel {release} cannot create a bond: "
                                       f"{str(e) or type(e).__name__}")
        return BondingProbe(True, f"kernel {release} can create bonds")

    try:
        return netns.create_netns(state.ns_name("bondprobe"), probe)
    finally:
        state.remove()


def kernel_has_bonding() -> bool:
    """probe_bonding's answer alone, for the callers that only branch on it."""
    return probe_bonding().ok


@dataclass(frozen=True)
class BuildPlan:
    """Names the builder will create, so teardown and audits agree with it."""

    topology: Topology
    state: RunState

    @property
    def switch(self) -> str:
        return self.state.ns_name("sw")

    def node(self, pnn: int) -> str:
        return self.state.ns_name(f"n{pnn}")

    def client(self, network: str) -> str:
        return self.state.ns_name(f"c-{network}")

    @property
    def lock(self) -> str | None:
        """The lock host's namespace, or None when the cluster lock is a host file."""
        return self.state.ns_name("lock") if self.topology.cluster_lock == "etcd" else None

    def check(self) -> None:
        top = self.topology
        for i in top.interfaces:
            for port in i.ports:
                if len(switch_port(top.nodes - 1, port)) > 15:
                    raise TopologyError(
                        f"{top.source}: interfaces.{i.name}: port {port!r} is too long for the "
                        f"switch-side name {switch_port(top.nodes - 1, port)!r}; use <= 9 chars"
                    )
        if top.has_bonds and not kernel_has_bonding():
            raise TopologyError(
                f"{top.source}: this kernel has no bonding driver; use Topology.plain() "
                "or run the bond tests in a VM (`make test-vm`)"
            )


def _quiet(ipr: NsRoute) -> None:
    for key, val in QUIET_SYSCTLS:
        netns.write_sysctl(key, val)
    ipr.link("set", ifname="lo", state="up")


def _build_switch(plan: BuildPlan) -> None:
    alias = f"fth run {plan.state.run_id} switch"

    def setup(ipr: NsRoute) -> None:
        _quiet(ipr)
        for net in plan.topology.networks:
            Bridge(bridge_name(net.name), alias).create(ipr)

    netns.create_netns(plan.switch, setup)


def _build_node(plan: BuildPlan, pnn: int, switch_fd: int) -> None:
    top = plan.topology
    alias = f"fth run {plan.state.run_id} node {pnn}"

    def setup(ipr: NsRoute) -> None:
        for key, val in NODE_SYSCTLS:
            netns.write_sysctl(key, val)
        ipr.link("set", ifname="lo", state="up")
        for iface in top.interfaces:
            for port in iface.ports:
                Veth(port, switch_port(pnn, port), switch_fd, up=not iface.bond).create(ipr)
            if iface.bond:
                BondDevice(iface.name, iface.bond, alias).create(ipr)
            addr = top.network(iface.network).node_address(pnn)
            ipr.addr("add", index=ipr.link_lookup(ifname=iface.name)[0], address=str(addr.ip),
                     prefixlen=addr.network.prefixlen,
                     broadcast=str(addr.network.broadcast_address))

    netns.create_netns(plan.node(pnn), setup)


def _build_client(plan: BuildPlan, network: str, switch_fd: int) -> None:
    addr = plan.topology.network(network).client_address()

    def setup(ipr: NsRoute) -> None:
        _quiet(ipr)
        netns.write_sysctl("net.ipv4.conf.all.arp_filter", 1)
        Veth("eth0", client_port(network), switch_fd, up=True).create(ipr)
        ipr.addr("add", index=ipr.link_lookup(ifname="eth0")[0], address=str(addr.ip),
                 prefixlen=addr.network.prefixlen, broadcast=str(addr.network.broadcast_address))

    netns.create_netns(plan.client(network), setup)


def _build_lock(plan: BuildPlan, switch_fd: int) -> None:
    """The lock host: one cable to the private bridge, nothing else (what runs
    in it is harness.lockservice's business)."""
    addr = plan.topology.lock_address()

    def setup(ipr: NsRoute) -> None:
        _quiet(ipr)
        Veth("eth0", LOCK_PORT, switch_fd, up=True).create(ipr)
        ipr.addr("add", index=ipr.link_lookup(ifname="eth0")[0], address=str(addr.ip),
                 prefixlen=addr.network.prefixlen, broadcast=str(addr.network.broadcast_address))

    assert plan.lock is not None
    netns.create_netns(plan.lock, setup)


def _wire_switch(plan: BuildPlan) -> None:
    """Attach every switch-side veth end to its network's bridge and bring it up."""
    top = plan.topology
    wanted: dict[str, str] = {}
    for pnn in range(top.nodes):
        for iface in top.interfaces:
            for port in iface.ports:
                wanted[switch_port(pnn, port)] = bridge_name(iface.network)
    for net in top.public_networks:
        wanted[client_port(net.name)] = bridge_name(net.name)
    if plan.lock is not None:
        wanted[LOCK_PORT] = bridge_name(top.private_network)

    _attach_ports(plan, wanted)


def _attach_ports(plan: BuildPlan, wanted: dict[str, str]) -> None:
    """Enslave each switch-side port to its bridge and bring it up."""

    def wire(ipr: NsRoute) -> None:
        index = {link.get("ifname"): link["index"] for link in ipr.link("dump")}
        for port, bridge in wanted.items():
            ipr.link("set", index=index[port], master=index[bridge], state="up")

    netns.in_netns(plan.switch, wire)


def add_client(plan: BuildPlan, network: str) -> None:
    """One more client namespace, on any network of a built cluster (the
    private one too: a rogue host for the tests that attack the mesh); it
    carries the run id, so teardown and the reaper remove it with the rest."""
    fd = os.open(netns.netns_path(plan.switch), os.O_RDONLY | os.O_CLOEXEC)
    try:
        _build_client(plan, network, fd)
    finally:
        os.close(fd)
    _attach_ports(plan, {client_port(network): bridge_name(network)})


PIN_NEIGHBOURS_ABOVE = 256
"""Private-network neighbour entries (nodes x (nodes - 1)) above which the
builder pins them (see _pin_private_neighbours): 17 nodes and more."""

NUD_PERMANENT = 0x80


def _pin_private_neighbours(plan: BuildPlan) -> None:
    """Permanent ARP entries for every peer on the private network, in every node.

    The kernel's ARP table is one for all namespaces, and its gc_thresh3
    (1024 by default, a setting of the host's own namespace, which the
    harness never changes) caps the dynamic entries of all of them together:
    a 64-node mesh alone needs 4,032, after which no namespace on the machine
    could resolve a new address ("neighbor table overflow", clients could
    not reach any public IP). Permanent entries are not counted against it.
    In a real cluster each node has a kernel of its own, so this is an
    artefact of one machine: pinning removes it without changing what a
    node sees (the peers' MACs do not change; a port that goes down
    forgets its entries and learns them again by ARP)."""
    top = plan.topology
    net, ifname = top.private, top.private_interface.name

    def mac(ipr: NsRoute) -> str:
        return str(ipr.link("get", index=ipr.link_lookup(ifname=ifname)[0])[0]
                   .get_attr("IFLA_ADDRESS"))

    macs = [netns.in_netns(plan.node(p), mac) for p in range(top.nodes)]
    for pnn in range(top.nodes):
        def pin(ipr: NsRoute, pnn: int = pnn) -> None:
            index = ipr.link_lookup(ifname=ifname)[0]
            for peer in range(top.nodes):
                if peer != pnn:
                    ipr.neigh("replace", dst=str(net.node_address(peer).ip),
                              lladdr=macs[peer], ifindex=index, state=NUD_PERMANENT)

        netns.in_netns(plan.node(pnn), pin)


def build(plan: BuildPlan) -> None:
    """Create all namespaces and links of the plan (caller tears down on error).

    Sequential: the kernel serialises link changes (rtnl lock), and a thread
    pool measured slower here (64 nodes: 0.82 s alone, 1.2 s with 4 threads).
    """
    plan.check()
    _build_switch(plan)
    fd = os.open(netns.netns_path(plan.switch), os.O_RDONLY | os.O_CLOEXEC)
    try:
        for pnn in range(plan.topology.nodes):
            _build_node(plan, pnn, fd)
        for net in plan.topology.public_networks:
            _build_client(plan, net.name, fd)
        if plan.lock is not None:
            _build_lock(plan, fd)
    finally:
        os.close(fd)
    _wire_switch(plan)
    if plan.topology.nodes * (plan.topology.nodes - 1) > PIN_NEIGHBOURS_ABOVE:
        _pin_private_neighbours(plan)


def teardown(plan: BuildPlan) -> None:
    """Remove the plan's namespaces (processes must be stopped first)."""
    for name in plan.state.namespaces():
        netns.remove_netns(name)
