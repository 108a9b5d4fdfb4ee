"""The fault catalogue: things that go wrong, applied and undone on purpose.

Every fault is an object with apply()/undo() and context-manager use, and
marks the timeline when it acts: `fault.apply` / `fault.undo` events dated
time.monotonic() just before the syscall (netlink request, nft commit,
kill(), rename()), with `t_after` just after it, so the moment of the fault
is known to within the syscall's duration: microseconds for netlink and
signals; for nftables/tc, from writing the batch to an `nft -f -` / `tc -batch -`
started beforehand until it exits (it commits in between; 5-25 ms here).
apply(at=T) acts at monotonic time T, prepared beforehand (Flap, Triggered).

Data of the marks: fault (class name), id (pairs apply with undo), desc,
t_after, dur_ms, and the fault's parameters. `node` is the target pnn (None
for faults on several nodes; then data["nodes"]).

    faults = Faults(cluster, timeline, backend)
    with faults.pull_cable(1, "eth1"):
        ...
    faults.undo_all()   # in teardown: whatever is still applied

Safety: link changes happen only in the run's namespaces (verified netlink
sockets, via netns.in_netns); nftables tables live in the run's switch
namespace and are named fth_<runid>_...; signals go only to pids that are
inside the node's namespace, and are re-checked by start time before undo.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shlex
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness import builder, netns
from harness.links import BondDevice, Veth
from harness.record import Event, Predicate, Timeline
from harness.runs import proc_start_time

if TYPE_CHECKING:
    from harness.cluster import Cluster

_ids = itertools.count(1)
_nft_ids = itertools.count(1)


class FaultError(RuntimeError):
    """A fault could not be applied or undone as asked."""


class FaultCancelled(FaultError):
    """A scheduled apply was called off (a triggered fault disarmed) before acting."""


class DaemonControl(Protocol):
    """What daemon faults need of a backend (harness.backends.base.Backend has it)."""

    cluster: Cluster

    def daemon_pid(self, pnn: int) -> int: ...
    def start_node(self, pnn: int) -> None: ...
    def stop_node(self, pnn: int) -> None: ...
    def event_script_dir(self, pnn: int) -> Path: ...


Span = tuple[float, float]


class Fault:
    """Base: apply()/undo() with timeline marks; subclasses implement _apply/_undo,
    each returning the (before, after) monotonic times of the acting syscall.

    apply(at=T) / undo(at=T) prepare first (open sockets, start `nft`, look up
    pids) and act at monotonic time T, so a scheduled fault (Triggered, Flap)
    lands on time instead of after its setup. Subclasses call self._wait_at()
    (or self._timed(fn)) just before they act.
    """

    def __init__(self, timeline: Timeline | None = None, node: int | None = None) -> None:
        self.timeline = timeline
        self.node = node
        self.id = f"f{next(_ids)}"
        self.applied = False
        self.apply_event: Event | None = None
        self.undo_event: Event | None = None
        self.t_applied: Span | None = None
        self.t_undone: Span | None = None
        self._lock = threading.RLock()
        self._at: float | None = None
        self.abort = threading.Event()  # set: a pending scheduled apply gives up

    # -- what subclasses provide ------------------------------------------------------
    def describe(self) -> str:
        return type(self).__name__

    def params(self) -> dict[str, Any]:
        return {}

    def _apply(self) -> Span:
        raise NotImplementedError

    def _undo(self) -> Span:
        raise NotImplementedError

    def _wait_at(self) -> None:
        """Wait until the scheduled time, if any (interruptible through `abort`)."""
        if self._at is not None:
            delay = self._at - time.monotonic()
            if (delay > 0 and self.abort.wait(delay)) or self.abort.is_set():
                raise FaultCancelled(f"{self.describe()}: cancelled before acting")

    def _timed(self, fn: Callable[[], Any]) -> Span:
        self._wait_at()
        t0 = time.monotonic()
        fn()
        return t0, time.monotonic()

    # -- the public protocol ---------------------------------------------------------
    def apply(self, at: float | None = None) -> Fault:
        """Apply now, or at monotonic time `at` (prepared beforehand); mark it."""
        with self._lock:
            if self.applied:
                raise FaultError(f"{self.describe()}: already applied")
            self._at = at
            try:
                span = self._apply()
            except FaultCancelled:
                raise
            except BaseException as e:
                self._mark("fault.error", None, phase="apply", error=f"{type(e).__name__}: {e}")
                raise
            finally:
                self._at = None
            self.applied = True
            self.t_applied = span
            self.apply_event = self._mark("fault.apply", span)
            return self

    def undo(self, at: float | None = None) -> None:
        """Undo if applied (a no-op otherwise, so teardown can always call it)."""
        with self._lock:
            if not self.applied:
                return
            self._at = at
            try:
                span = self._undo()
            except FaultCancelled:
                raise
            except BaseException as e:
                self._mark("fault.error", None, phase="undo", error=f"{type(e).__name__}: {e}")
                raise
            finally:
                self._at = None
            self.applied = False
            self.t_undone = span
            self.undo_event = self._mark("fault.undo", span)

    def __enter__(self) -> Fault:
        return self.apply()

    def __exit__(self, *exc: object) -> None:
        self.undo()

    def _mark(self, kind: str, span: Span | None, **extra: Any) -> Event | None:
        if self.timeline is None:
            return None
        t = time.monotonic() if span is None else span[0]
        data: dict[str, Any] = {"fault": type(self).__name__, "id": self.id,
                                "desc": self.describe()}
        if span is not None:
            data["t_after"] = span[1]
            data["dur_ms"] = round((span[1] - span[0]) * 1000, 3)
        data.update(self.params())
        data.update(extra)
        return self.timeline.mark("fault", kind, self.node, t=t, **data)

    def __repr__(self) -> str:
        return f"<{self.describe()} {self.id}{' applied' if self.applied else ''}>"


# -- links ---------------------------------------------------------------------------

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


def bond_slaves(cluster: Cluster, bond: str) -> tuple[str, ...]:
    iface = cluster.topology.interface(bond)
    if iface.bond is None:
        raise FaultError(f"{bond} is not a bond in this topology")
    return iface.bond.slaves


def bond_slave_lost(cluster: Cluster, pnn: int, bond: str = "bond0", slave: str | None = None,
                    timeline: Timeline | None = None) -> PullCable:
    """One bond slave's cable pulled: the active slave unless `slave` is named."""
    if slave is None:
        active = cluster.nodes[pnn].bond_state(bond).active_slave
        slave = active or bond_slaves(cluster, bond)[0]
    if slave not in bond_slaves(cluster, bond):
        raise FaultError(f"{slave} is not a slave of {bond}")
    return PullCable(cluster, pnn, slave, timeline)


def all_bond_slaves_lost(cluster: Cluster, pnn: int, bond: str = "bond0",
                         timeline: Timeline | None = None) -> PullCable:
    """Every slave's cable pulled at once (one netlink burst)."""
    return PullCable(cluster, pnn, bond_slaves(cluster, bond), timeline)


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
        top = cluster.topology
        self.iface = None
        self.port_of = None
        for i in top.interfaces:
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
        pnn = self.node or 0
        alias = f"fth run {self.cluster.run_id} node {pnn}"
        if self.iface is not None:  # a bond device
            iface = self.iface
            assert iface.bond is not None

            def bond_body(r: netns.NsRoute) -> Span:
                self._wait_at()
                t0 = time.monotonic()
                idx = BondDevice(iface.name, iface.bond, alias).create(r)
                self._node_address(r, iface.name, iface.network)
                r.link("set", index=idx, state="up")
                return t0, time.monotonic()
            return netns.in_netns(self.ns, bond_body)

        owner = self.port_of
        assert owner is not None
        port, peer = self.ifname, builder.switch_port(pnn, self.ifname)
        sw = self.cluster.plan.switch
        fd = os.open(netns.netns_path(sw), os.O_RDONLY | os.O_CLOEXEC)
        try:
            def node_body(r: netns.NsRoute) -> float:
                self._wait_at()
                t0 = time.monotonic()
                Veth(port, peer, fd, alias).create(r)
                r.link("set", ifname=port, address=self.saved["mac"])
                if owner.bond is not None:
                    r.link("set", ifname=port, state="down")
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


# -- nftables in the switch ----------------------------------------------------------

def _quote(names: Iterable[str]) -> str:
    items = [json.dumps(n) for n in names]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


class NftDrop(Fault):
    """Frames dropped by nftables rules in the switch's bridge (family bridge,
    forward hook): the nodes see nothing but missing frames.

    Each rule is (from ports, to ports, percent); a port set of None means any
    port; percent < 100 drops at random (`numgen random mod 100 < N`). The
    table is fth_<runid>_<name><n>, lives only in the switch namespace and
    undo() deletes it. counters() reads each rule's drop counter.
    """

    def __init__(self, cluster: Cluster, rules: Sequence[tuple[Sequence[str] | None,
                                                                Sequence[str] | None, int]],
                 name: str = "drop", timeline: Timeline | None = None,
                 node: int | None = None, nodes: Sequence[int] = ()) -> None:
        super().__init__(timeline, node)
        self.cluster = cluster
        self.rules = [(tuple(a) if a else None, tuple(b) if b else None, int(p))
                      for a, b, p in rules]
        for a, b, p in self.rules:
            if not 0 < p <= 100:
                raise FaultError(f"drop percentage {p} is not in 1..100")
            if a is None and b is None:
                raise FaultError("a drop rule needs from or to ports")
        self.nodes = list(nodes)
        self.table = f"fth_{cluster.run_id}_{name}{next(_nft_ids)}"
        self.host = cluster.switch

    def describe(self) -> str:
        return f"nft {self.table}: " + "; ".join(
            f"{','.join(a or ['*'])} -> {','.join(b or ['*'])}"
            + (f" {p}%" if p < 100 else "") for a, b, p in self.rules)

    def params(self) -> dict[str, Any]:
        return {"table": self.table, "nodes": self.nodes}

    def script(self) -> str:
        lines = [f"table bridge {self.table} {{", "  chain drops {",
                 "    type filter hook forward priority -10; policy accept;"]
        for i, (a, b, p) in enumerate(self.rules):
            m = []
            if a:
                m.append(f"iifname {_quote(a)}")
            if b:
                m.append(f"oifname {_quote(b)}")
            if p < 100:
                m.append(f"numgen random mod 100 < {p}")
            lines.append(f"    {' '.join(m)} counter drop comment \"r{i}\"")
        lines += ["  }", "}", ""]
        return "\n".join(lines)

    def _nft(self, script: str) -> Span:
        """`nft -f -` in the switch, started first and fed at the scheduled time."""
        return _batch(self, self.host.argv(["nft", "-f", "-"]), script, "nft")

    def _apply(self) -> Span:
        return self._nft(self.script())

    def _undo(self) -> Span:
        return self._nft(f"delete table bridge {self.table}\n")

    def exists(self) -> bool:
        r = self.host.run(["nft", "list", "table", "bridge", self.table], check=False)
        return r.returncode == 0

    def counters(self) -> list[int]:
        """Packets dropped so far by each rule, in rule order."""
        r = self.host.run(["nft", "-j", "list", "table", "bridge", self.table])
        out: dict[int, int] = {}
        for item in json.loads(r.stdout)["nftables"]:
            rule = item.get("rule")
            if not rule:
                continue
            pk = next((e["counter"]["packets"] for e in rule["expr"] if "counter" in e), 0)
            out[int(rule.get("comment", "r0")[1:])] = pk
        return [out.get(i, 0) for i in range(len(self.rules))]

    def dropped(self) -> int:
        return sum(self.counters())


def _batch(fault: Fault, argv: list[str], script: str, what: str) -> Span:
    """Start a batch tool reading stdin, wait for the fault's time, feed it; the
    span runs from the write to the tool's exit (it commits in between)."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        fault._wait_at()
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    t0 = time.monotonic()
    _out, err = proc.communicate(script, timeout=10)
    t1 = time.monotonic()
    if proc.returncode != 0:
        raise FaultError(f"{what} failed ({script.strip()[:200]!r}): {err.strip()}")
    return t0, t1


def _ports(cluster: Cluster, pnns: Iterable[int], network: str | None) -> list[str]:
    top = cluster.topology
    net = network or top.private_network
    ifaces = [i for i in top.interfaces if i.network == net]
    return [builder.switch_port(p, port) for p in pnns for i in ifaces for port in i.ports]


class Partition(NftDrop):
    """A network split into groups that cannot reach each other (default: the
    private network). Nodes in no group keep talking to everyone."""

    def __init__(self, cluster: Cluster, groups: Sequence[Iterable[int]],
                 network: str | None = None, timeline: Timeline | None = None) -> None:
        self.groups = [sorted(set(g)) for g in groups]
        if len(self.groups) < 2:
            raise FaultError("a partition needs at least two groups")
        flat = [p for g in self.groups for p in g]
        if len(flat) != len(set(flat)):
            raise FaultError(f"groups overlap: {self.groups}")
        rules = []
        for a, b in itertools.permutations(range(len(self.groups)), 2):
            rules.append((_ports(cluster, self.groups[a], network),
                          _ports(cluster, self.groups[b], network), 100))
        self.network = network or cluster.topology.private_network
        super().__init__(cluster, rules, "part", timeline, nodes=sorted(flat))

    @classmethod
    def isolate(cls, cluster: Cluster, pnn: int, network: str | None = None,
                timeline: Timeline | None = None) -> Partition:
        """One node cut off from all the others."""
        others = [p for p in range(cluster.topology.nodes) if p != pnn]
        p = cls(cluster, [[pnn], others], network, timeline)
        p.node = pnn
        return p

    def describe(self) -> str:
        return f"{self.network} partitioned {' | '.join(map(str, self.groups))} ({self.table})"

    def params(self) -> dict[str, Any]:
        return {**super().params(), "groups": self.groups, "network": self.network}


class OneWayLoss(NftDrop):
    """Frames from `src` nodes to `dst` nodes dropped; the other way still works."""

    def __init__(self, cluster: Cluster, src: Iterable[int], dst: Iterable[int],
                 network: str | None = None, timeline: Timeline | None = None) -> None:
        self.src, self.dst = sorted(set(src)), sorted(set(dst))
        self.network = network or cluster.topology.private_network
        super().__init__(cluster, [(_ports(cluster, self.src, network),
                                    _ports(cluster, self.dst, network), 100)], "oneway",
                         timeline, nodes=sorted(set(self.src) | set(self.dst)))
        if len(self.src) == 1:
            self.node = self.src[0]

    def describe(self) -> str:
        return f"{self.network} one-way loss {self.src} -> {self.dst} ({self.table})"

    def params(self) -> dict[str, Any]:
        return {**super().params(), "src": self.src, "dst": self.dst}


class PacketLoss(NftDrop):
    """Random loss of `percent`% of the frames on one node's cable, to the node
    ("in"), from it ("out") or both ("both")."""

    def __init__(self, cluster: Cluster, pnn: int, port: str, percent: int,
                 direction: str = "both", timeline: Timeline | None = None) -> None:
        if direction not in ("in", "out", "both"):
            raise FaultError(f"direction {direction!r} is not in, out or both")
        sp = [builder.switch_port(pnn, port)]
        rules: list[tuple[Sequence[str] | None, Sequence[str] | None, int]] = []
        if direction in ("out", "both"):
            rules.append((sp, None, percent))
        if direction in ("in", "both"):
            rules.append((None, sp, percent))
        self.port, self.percent, self.direction = port, percent, direction
        super().__init__(cluster, rules, "loss", timeline, node=pnn, nodes=[pnn])

    def describe(self) -> str:
        return (f"node {self.node} {self.port}: {self.percent}% loss {self.direction} "
                f"({self.table})")

    def params(self) -> dict[str, Any]:
        return {**super().params(), "port": self.port, "percent": self.percent,
                "direction": self.direction}


def netem_available(cluster: Cluster) -> bool:
    """Does this kernel have sch_netem? (Tried on the switch's loopback.)"""
    sw = cluster.switch
    r = sw.run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], check=False)
    if r.returncode != 0:
        return False
    sw.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
    return True


class Netem(Fault):
    """netem on the switch-side end of a node's cable: loss/delay of the frames
    going to the node (kernels with sch_netem only; see netem_available)."""

    def __init__(self, cluster: Cluster, pnn: int, port: str, loss: float | None = None,
                 delay_ms: float | None = None, timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.cluster, self.port = cluster, port
        self.dev = builder.switch_port(pnn, port)
        self.opts: list[str] = []
        if delay_ms is not None:
            self.opts += ["delay", f"{delay_ms}ms"]
        if loss is not None:
            self.opts += ["loss", f"{loss}%"]
        if not self.opts:
            raise FaultError("Netem needs loss or delay_ms")

    def describe(self) -> str:
        return f"node {self.node} {self.port}: netem {' '.join(self.opts)} towards the node"

    def params(self) -> dict[str, Any]:
        return {"port": self.port, "netem": " ".join(self.opts)}

    def _tc(self, argv: list[str]) -> Span:
        return _batch(self, self.cluster.switch.argv(["tc", "-batch", "-"]),
                      "qdisc " + " ".join(argv) + "\n", "tc")

    def _apply(self) -> Span:
        return self._tc(["add", "dev", self.dev, "root", "netem", *self.opts])

    def _undo(self) -> Span:
        return self._tc(["del", "dev", self.dev, "root"])


# -- daemons ---------------------------------------------------------------------------

def _checked_pid(backend: DaemonControl, pnn: int) -> tuple[int, int]:
    """The daemon's pid and start time, after checking it runs inside node pnn."""
    pid = int(backend.daemon_pid(pnn))
    if pid <= 1 or pid == os.getpid():
        raise FaultError(f"refusing to signal pid {pid}")
    ns = backend.cluster.nodes[pnn].netns
    try:
        ino = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError as e:
        raise FaultError(f"node {pnn}: daemon pid {pid} is not running ({e})") from None
    if ino != netns.netns_ino(ns) or ino == netns.host_netns_ino():
        raise FaultError(f"pid {pid} is not inside {ns}; refusing to signal it")
    start = proc_start_time(pid)
    if start is None:
        raise FaultError(f"node {pnn}: daemon pid {pid} has exited")
    return pid, start


def process_state(pid: int) -> str | None:
    """One-letter state from /proc/PID/stat (R, S, T, Z...), None if gone."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()[0]


class SignalDaemon(Fault):
    """A signal to node pnn's daemon (by pid, checked to be inside the node).

    undo sends `undo_signal` to the same process (checked by start time), or
    restarts the node through the backend when `restart` is set.
    """

    def __init__(self, backend: DaemonControl, pnn: int, sig: int,
                 undo_signal: int | None = None, restart: bool = False, group: bool = False,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.backend, self.sig, self.undo_signal = backend, sig, undo_signal
        self.restart, self.group = restart, group
        self.pid: int | None = None
        self.start: int | None = None

    def describe(self) -> str:
        return f"node {self.node} daemon {signal.Signals(self.sig).name}"

    def params(self) -> dict[str, Any]:
        return {"pid": self.pid, "signal": signal.Signals(self.sig).name, "group": self.group}

    def _send(self, pid: int, sig: int) -> Span:
        if self.group:
            if os.getpgid(pid) != pid:
                raise FaultError(f"pid {pid} does not lead its process group; not signalling it")
            return self._timed(lambda: os.killpg(pid, sig))
        return self._timed(lambda: os.kill(pid, sig))

    def _apply(self) -> Span:
        assert self.node is not None
        self.pid, self.start = _checked_pid(self.backend, self.node)
        return self._send(self.pid, self.sig)

    def _undo(self) -> Span:
        assert self.node is not None and self.pid is not None
        if self.restart:
            return self._timed(lambda: self.backend.start_node(self.node or 0))
        if self.undo_signal is None:
            return self._timed(lambda: None)
        if proc_start_time(self.pid) != self.start:
            raise FaultError(f"daemon pid {self.pid} is gone; cannot send "
                             f"{signal.Signals(self.undo_signal).name}")
        return self._send(self.pid, self.undo_signal)


def kill_daemon(backend: DaemonControl, pnn: int, restart: bool = True,
                timeline: Timeline | None = None) -> SignalDaemon:
    """SIGKILL; undo restarts the node's daemon (restart=False: undo does nothing)."""
    return SignalDaemon(backend, pnn, signal.SIGKILL, restart=restart, timeline=timeline)


def hang_daemon(backend: DaemonControl, pnn: int, group: bool = False,
                timeline: Timeline | None = None) -> SignalDaemon:
    """SIGSTOP (a hung daemon, state T); undo is SIGCONT to the same process."""
    return SignalDaemon(backend, pnn, signal.SIGSTOP, undo_signal=signal.SIGCONT, group=group,
                        timeline=timeline)


class StopDaemon(Fault):
    """A graceful stop through the backend; undo starts it again."""

    def __init__(self, backend: DaemonControl, pnn: int,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.backend = backend

    def describe(self) -> str:
        return f"node {self.node} daemon stopped"

    def _apply(self) -> Span:
        return self._timed(lambda: self.backend.stop_node(self.node or 0))

    def _undo(self) -> Span:
        return self._timed(lambda: self.backend.start_node(self.node or 0))


class RestartDaemon(Fault):
    """Stop and start a node's daemon in one go (apply); undo has nothing to do.
    The mark's t is before the stop, t_after after the start; t_stopped between."""

    def __init__(self, backend: DaemonControl, pnn: int,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.backend = backend
        self.t_stopped: float | None = None

    def describe(self) -> str:
        return f"node {self.node} daemon restarted"

    def params(self) -> dict[str, Any]:
        return {"t_stopped": self.t_stopped}

    def _apply(self) -> Span:
        self._wait_at()
        t0 = time.monotonic()
        self.backend.stop_node(self.node or 0)
        self.t_stopped = time.monotonic()
        self.backend.start_node(self.node or 0)
        return t0, time.monotonic()

    def _undo(self) -> Span:
        return self._timed(lambda: None)


HANG_SCRIPT = """#!/bin/sh
# Written by the failover harness (run {run}): the monitor event hangs.
if [ "$1" = "monitor" ]; then
    echo "hang-monitor pid=$$ start=$(cut -d' ' -f22 /proc/$$/stat)" >> {trace}
    exec sleep {seconds}
fi
exit 0
"""


class HangMonitor(Fault):
    """An executable event script that sleeps on `monitor` (a hung monitor check),
    placed in backend.event_script_dir(pnn). Appearing is one rename().

    Each invocation appends `hang-monitor pid=N start=S` to `trace_path` (follow
    it with a LogSpec to see invocations on the timeline). undo removes the
    script and kills the sleeps still running, by those pids.
    """

    def __init__(self, backend: DaemonControl, pnn: int, seconds: int = 3600,
                 name: str = "99.hang.script", timeline: Timeline | None = None) -> None:
        super().__init__(timeline, pnn)
        self.backend, self.seconds, self.name = backend, seconds, name
        self.dir = Path(backend.event_script_dir(pnn))
        self.path = self.dir / name
        self.trace_path = backend.cluster.workdir / f"hang-monitor-n{pnn}-{self.id}.trace"

    def describe(self) -> str:
        return f"node {self.node} monitor hangs ({self.path.name})"

    def params(self) -> dict[str, Any]:
        return {"script": str(self.path), "seconds": self.seconds}

    def _apply(self) -> Span:
        if self.path.exists():
            raise FaultError(f"{self.path} exists already")
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{self.name}.tmp"
        tmp.write_text(HANG_SCRIPT.format(run=self.backend.cluster.run_id, seconds=self.seconds,
                                          trace=shlex.quote(str(self.trace_path))))
        tmp.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        try:
            return self._timed(lambda: os.rename(tmp, self.path))
        except FaultCancelled:
            tmp.unlink(missing_ok=True)
            raise

    def invocations(self) -> list[tuple[int, int]]:
        """(pid, start time) of every monitor run that hung so far."""
        out = []
        with contextlib.suppress(FileNotFoundError):
            for line in self.trace_path.read_text().splitlines():
                kv = dict(x.split("=", 1) for x in line.split()[1:])
                with contextlib.suppress(KeyError, ValueError):
                    out.append((int(kv["pid"]), int(kv["start"])))
        return out

    def _undo(self) -> Span:
        span = self._timed(lambda: self.path.unlink(missing_ok=True))
        for pid, start in self.invocations():
            if proc_start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return span


# -- time-shaped faults --------------------------------------------------------------

class Flap(Fault):
    """Apply and undo an inner fault `count` times, one cycle every `period` s
    (applied for duty*period of it), in a background thread. Each cycle's
    apply/undo is marked by the inner fault; this one marks start and end.
    undo()/stop() ends it early and leaves the inner fault undone.
    """

    def __init__(self, inner: Fault, period: float, count: int, duty: float = 0.5,
                 timeline: Timeline | None = None) -> None:
        super().__init__(timeline if timeline is not None else inner.timeline, inner.node)
        if inner.timeline is None:
            inner.timeline = self.timeline
        if not 0 < duty < 1 or period <= 0 or count < 1:
            raise FaultError("Flap needs period > 0, count >= 1 and 0 < duty < 1")
        self.inner, self.period, self.count, self.duty = inner, period, count, duty
        self.cycles = 0
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def describe(self) -> str:
        return f"flap [{self.inner.describe()}] x{self.count} every {self.period:g} s"

    def params(self) -> dict[str, Any]:
        return {"inner": self.inner.id, "period": self.period, "count": self.count,
                "duty": self.duty}

    def _run(self, t0: float) -> None:
        """Each apply/undo is scheduled (apply(at=...)) on the cycle's grid, so
        setup time does not accumulate into the period."""
        try:
            for i in range(self.count):
                start = t0 + i * self.period
                if self._stop.is_set():
                    break
                self.inner.apply(at=start)
                self.inner.undo(at=start + self.duty * self.period)
                self.cycles += 1
        except FaultCancelled:
            pass
        except BaseException as e:  # noqa: BLE001 - kept for wait()/undo()
            self.error = e
        finally:
            self.inner.abort.clear()
            with contextlib.suppress(Exception):
                self.inner.undo()
            self._done.set()

    def _apply(self) -> Span:
        self._stop.clear()
        self._done.clear()
        self.inner.abort.clear()
        t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(t0,), name="flap", daemon=True)
        self._thread.start()
        return t0, time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every cycle ran (True) or the timeout passed (False)."""
        if timeout is None:
            timeout = self.count * self.period + 10
        done = self._done.wait(timeout)
        if self.error is not None:
            raise FaultError(f"flapping failed: {self.error}") from self.error
        return done

    def _undo(self) -> Span:
        t0 = time.monotonic()
        self._stop.set()
        self.inner.abort.set()
        if self._thread is not None:
            self._thread.join(10)
        return t0, time.monotonic()

    stop = Fault.undo


class Triggered(Fault):
    """Apply `inner` when an event matching (kind, node, where, data) appears on
    the timeline, `offset` seconds after that event's time, to hit race
    windows reproducibly. apply() arms it (marks `fault.arm`); the inner fault
    marks its own apply, and `fault.trigger` records the triggering event and
    how late the apply was versus the target time (lag_ms).
    undo() disarms it and undoes the inner fault if it fired.
    """

    def __init__(self, inner: Fault, timeline: Timeline, kind: str | Iterable[str],
                 where: Predicate | None = None, node: Any = ..., offset: float = 0.0,
                 after: float | Event | None = None, timeout: float = 120.0,
                 **data: Any) -> None:
        super().__init__(timeline, inner.node)
        if inner.timeline is None:
            inner.timeline = timeline
        self.inner, self.kind_spec, self.where, self.match_node = inner, kind, where, node
        self.offset, self.after, self.timeout, self.data = offset, after, timeout, data
        self.trigger: Event | None = None
        self.fired = threading.Event()
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        return f"on {self.kind_spec}{'+' if self.offset >= 0 else ''}{self.offset:g}s: " \
               f"{self.inner.describe()}"

    def params(self) -> dict[str, Any]:
        return {"inner": self.inner.id, "on": self.kind_spec, "offset": self.offset}

    def apply(self, at: float | None = None) -> Fault:
        """Arm (now; `at` is accepted for the Fault protocol and ignored)."""
        with self._lock:
            if self.applied:
                raise FaultError(f"{self.describe()}: already armed")
            self._cancel.clear()
            self.inner.abort.clear()
            after = self.after if self.after is not None else time.monotonic()
            self.applied = True
            self.apply_event = self._mark("fault.arm", None)
            self._thread = threading.Thread(target=self._run, args=(after,), daemon=True,
                                            name="trigger")
            self._thread.start()
            return self

    def _run(self, after: float | Event) -> None:
        assert self.timeline is not None
        try:
            ev = self.timeline.wait_for(self.kind_spec, node=self.match_node, after=after,
                                        where=self.where, timeout=self.timeout,
                                        cancel=self._cancel, **self.data)
        except AssertionError:
            return  # cancelled or timed out: nothing happened
        self.trigger = ev
        target = ev.t + self.offset
        try:
            self.inner.apply(at=target)  # prepared now, acting at the target time
        except FaultCancelled:
            return
        except BaseException as e:  # noqa: BLE001 - kept for wait_fired()
            self.error = e
            self.fired.set()
            return
        assert self.inner.t_applied is not None
        lag = (self.inner.t_applied[0] - target) * 1000
        self.timeline.mark("fault", "fault.trigger", self.node, t=self.inner.t_applied[0],
                           fault=type(self.inner).__name__, id=self.id, inner=self.inner.id,
                           trigger_seq=ev.seq, trigger_kind=ev.kind, trigger_t=ev.t,
                           offset=self.offset, lag_ms=round(lag, 3))
        self.fired.set()

    def wait_fired(self, timeout: float = 10.0) -> bool:
        ok = self.fired.wait(timeout)
        if self.error is not None:
            raise FaultError(f"triggered fault failed: {self.error}") from self.error
        return ok

    def undo(self, at: float | None = None) -> None:
        """Disarm, and undo the inner fault if it fired."""
        with self._lock:
            if not self.applied:
                return
            self._cancel.set()
            self.inner.abort.set()
            if self.timeline is not None:
                self.timeline.wake()
            if self._thread is not None:
                self._thread.join(10)
            self.inner.abort.clear()
            self.inner.undo()
            self.applied = False
            self.undo_event = self._mark("fault.disarm", None)


# -- the catalogue ---------------------------------------------------------------------

class Faults:
    """Makes faults bound to one cluster, timeline and backend, and remembers
    them so undo_all() can clean up whatever a test left applied."""

    def __init__(self, cluster: Cluster, timeline: Timeline | None = None,
                 backend: DaemonControl | None = None) -> None:
        self.cluster, self.timeline, self.backend = cluster, timeline, backend
        self.made: list[Fault] = []

    def _keep(self, f: Fault) -> Any:
        self.made.append(f)
        return f

    def _backend(self) -> DaemonControl:
        if self.backend is None:
            raise FaultError("daemon faults need a backend")
        return self.backend

    # links
    def admin_down(self, pnn: int, ifname: str) -> AdminDown:
        return self._keep(AdminDown(self.cluster, pnn, ifname, self.timeline))

    def pull_cable(self, pnn: int, port: str | Sequence[str]) -> PullCable:
        return self._keep(PullCable(self.cluster, pnn, port, self.timeline))

    def bond_slave_lost(self, pnn: int, bond: str = "bond0",
                        slave: str | None = None) -> PullCable:
        return self._keep(bond_slave_lost(self.cluster, pnn, bond, slave, self.timeline))

    def all_bond_slaves_lost(self, pnn: int, bond: str = "bond0") -> PullCable:
        return self._keep(all_bond_slaves_lost(self.cluster, pnn, bond, self.timeline))

    def delete_interface(self, pnn: int, ifname: str) -> DeleteInterface:
        return self._keep(DeleteInterface(self.cluster, pnn, ifname, self.timeline))

    # networks
    def isolate(self, pnn: int, network: str | None = None) -> Partition:
        return self._keep(Partition.isolate(self.cluster, pnn, network, self.timeline))

    def partition(self, *groups: Iterable[int], network: str | None = None) -> Partition:
        return self._keep(Partition(self.cluster, groups, network, self.timeline))

    def one_way_loss(self, src: Iterable[int], dst: Iterable[int],
                     network: str | None = None) -> OneWayLoss:
        return self._keep(OneWayLoss(self.cluster, src, dst, network, self.timeline))

    def packet_loss(self, pnn: int, port: str, percent: int,
                    direction: str = "both") -> PacketLoss:
        return self._keep(PacketLoss(self.cluster, pnn, port, percent, direction,
                                     self.timeline))

    def netem(self, pnn: int, port: str, loss: float | None = None,
              delay_ms: float | None = None) -> Netem:
        return self._keep(Netem(self.cluster, pnn, port, loss, delay_ms, self.timeline))

    # daemons
    def kill_daemon(self, pnn: int, restart: bool = True) -> SignalDaemon:
        return self._keep(kill_daemon(self._backend(), pnn, restart, self.timeline))

    def hang_daemon(self, pnn: int, group: bool = False) -> SignalDaemon:
        return self._keep(hang_daemon(self._backend(), pnn, group, self.timeline))

    def stop_daemon(self, pnn: int) -> StopDaemon:
        return self._keep(StopDaemon(self._backend(), pnn, self.timeline))

    def restart_daemon(self, pnn: int) -> RestartDaemon:
        return self._keep(RestartDaemon(self._backend(), pnn, self.timeline))

    def hang_monitor(self, pnn: int, seconds: int = 3600,
                     name: str = "99.hang.script") -> HangMonitor:
        return self._keep(HangMonitor(self._backend(), pnn, seconds, name, self.timeline))

    # time
    def flap(self, inner: Fault, period: float, count: int, duty: float = 0.5) -> Flap:
        return self._keep(Flap(inner, period, count, duty, self.timeline))

    def on(self, kind: str | Iterable[str], inner: Fault, where: Predicate | None = None,
           node: Any = ..., offset: float = 0.0, timeout: float = 120.0,
           **data: Any) -> Triggered:
        """`inner` applied `offset` s after the next event matching kind/node/where/data."""
        if self.timeline is None:
            raise FaultError("triggered faults need a timeline")
        return self._keep(Triggered(inner, self.timeline, kind, where, node, offset,
                                    timeout=timeout, **data))

    def undo_all(self) -> list[str]:
        """Undo every fault still applied, newest first; returns the errors."""
        errors = []
        for f in reversed(self.made):
            try:
                f.undo()
            except Exception as e:  # noqa: BLE001 - collect, go on cleaning
                errors.append(f"{f.describe()}: {e}")
        return errors


__all__ = [
    "AdminDown", "DaemonControl", "DeleteInterface", "Fault", "FaultCancelled", "FaultError",
    "Faults", "Flap", "HangMonitor", "Netem", "NftDrop", "OneWayLoss", "PacketLoss",
    "Partition", "PullCable", "RestartDaemon", "SignalDaemon", "StopDaemon", "Triggered",
    "all_bond_slaves_lost", "bond_slave_lost", "hang_daemon", "kill_daemon",
    "netem_available", "process_state", "set_links",
]
