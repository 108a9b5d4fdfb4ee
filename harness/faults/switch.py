"""Faults in the switch: frames dropped by nftables rules on the bridges
(partitions, one-way loss, random loss) and netem on a cable's switch end.

The nodes see only missing (or late) frames; nothing in a node changes.
Tables are named fth_<runid>_<name><n> and live only in the run's switch
namespace. The batch tools (`nft -f -`, `tc -batch -`) are started before
the fault's time and fed at it; the commit lands between the write and the
tool's exit (5-25 ms here), which is the span the marks record.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from harness import builder
from harness.faults.base import Fault, FaultError, Span
from harness.record import Timeline

if TYPE_CHECKING:
    from harness.cluster import Cluster

_nft_ids = itertools.count(1)

# A drop rule: (from switch ports, to switch ports, percent); None = any port.
DropRule = tuple[Sequence[str] | None, Sequence[str] | None, int]


def _quote(names: Iterable[str]) -> str:
    """One name or an anonymous set of names, in nft syntax (JSON-quoted)."""
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

    def __init__(self, cluster: Cluster, rules: Sequence[DropRule],
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
        """Is the table in the switch (applied and not yet undone)?"""
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
        """Packets dropped so far by all rules together."""
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
    """The switch ports of nodes `pnns` on `network` (default: the private one)."""
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
        self.network = network or cluster.topology.private_network
        ports = [_ports(cluster, g, network) for g in self.groups]
        # The lock host (cluster_lock = "etcd") is on the private network: it
        # stays with the largest group (the first of equals), as a real lock
        # service sits with the cluster's majority; a lock host in no group
        # would keep talking to everyone, the split it is there to arbitrate.
        self.lock_group: int | None = None
        if (cluster.plan.lock is not None
                and self.network == cluster.topology.private_network):
            self.lock_group = max(range(len(self.groups)), key=lambda i: len(self.groups[i]))
            ports[self.lock_group].append(builder.LOCK_PORT)
        rules = []
        for a, b in itertools.permutations(range(len(self.groups)), 2):
            rules.append((ports[a], ports[b], 100))
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
        groups = [str(g) + (" +lock" if i == self.lock_group else "")
                  for i, g in enumerate(self.groups)]
        return f"{self.network} partitioned {' | '.join(groups)} ({self.table})"

    def params(self) -> dict[str, Any]:
        return {**super().params(), "groups": self.groups, "network": self.network,
                "lock_group": self.lock_group}


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
        rules: list[DropRule] = []
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

