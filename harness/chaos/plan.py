"""A seed -> a sequence of fault rounds, without touching any cluster.

A round is one fault, or now and then several that overlap (on different
nodes, each starting a little later and lasting its own time). Kinds are
drawn from the catalogue (harness.faults.kinds) by weight; each kind says
what a node under it should go through (`effect`), which decides what the
audit measures and which nodes may keep IPs they cannot release.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.topology import Topology

UNHEALTHY, DISCONNECTED, NONE = "unhealthy", "disconnected", "none"


@dataclass(frozen=True)
class Step:
    """One fault of a round: kind and parameters by name (as a scenario file
    gives them), when it starts after the round's start and how long it stays."""

    kind: str
    args: dict[str, Any]
    offset: float
    duration: float
    effect: str
    excuse: tuple[int, ...]  # nodes that may keep IPs they cannot release meanwhile

    @property
    def node(self) -> int | None:
        return self.args.get("node")

    def describe(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.kind} {args} at +{self.offset:.1f} s for {self.duration:.1f} s"


@dataclass(frozen=True)
class Round:
    steps: tuple[Step, ...]

    def describe(self) -> str:
        return " + ".join(s.describe() for s in self.steps)


@dataclass(frozen=True)
class Plan:
    seed: int
    nodes: int
    rounds: tuple[Round, ...]
    faults: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "faults", sum(len(r.steps) for r in self.rounds))

    def sequence(self) -> str:
        return "\n".join(f"  round {k}: {r.describe()}" for k, r in enumerate(self.rounds, 1))


Maker = Callable[[random.Random, Topology, int], tuple[dict[str, Any], str, tuple[int, ...]]]


def _public_ifaces(top: Topology) -> list[str]:
    return [i.name for i in top.interfaces if i.network != top.private_network]


def _public_ports(top: Topology) -> list[str]:
    return [p for i in top.interfaces if i.network != top.private_network for p in i.ports]


def _others(rng: random.Random, nodes: int, pnn: int) -> list[int]:
    rest = [p for p in range(nodes) if p != pnn]
    return sorted(rng.sample(rest, rng.randint(1, len(rest))))


def _split(rng: random.Random, nodes: int, pnn: int,
           ) -> tuple[dict[str, Any], str, tuple[int, ...]]:
    """Node pnn and a random minority on one side of a private-network partition."""
    rest = [p for p in range(nodes) if p != pnn]
    side = sorted([pnn, *rng.sample(rest, rng.randint(0, max(0, (nodes - 1) // 2 - 1)))])
    other = [p for p in range(nodes) if p not in side]
    return {"groups": (tuple(side), tuple(other))}, NONE, tuple(range(nodes))


def _one_way(rng: random.Random, nodes: int, pnn: int,
             ) -> tuple[dict[str, Any], str, tuple[int, ...]]:
    dst = tuple(_others(rng, nodes, pnn))
    return {"src": (pnn,), "dst": dst}, NONE, (pnn, *dst)


def _fail_event(rng: random.Random, pnn: int,
                ) -> tuple[dict[str, Any], str, tuple[int, ...]]:
    event = rng.choice(("takeip", "releaseip"))
    return {"node": pnn, "event": event}, NONE, (pnn,) if event == "releaseip" else ()


# kind -> (weight, maker(rng, topology, node) -> (args, effect, excused nodes)).
# Weights favour the faults CTDB exists for (links, dead daemons) over rarer ones.
KINDS: dict[str, tuple[int, Maker]] = {
    "public-link": (4, lambda r, t, n: ({"node": n}, UNHEALTHY, ())),
    "pull-cable": (3, lambda r, t, n: (
        {"node": n, "port": r.choice(_public_ports(t))}, UNHEALTHY, ())),
    # 10.interface brings an admin-down interface up again: nothing to detect
    "admin-down": (2, lambda r, t, n: (
        {"node": n, "iface": r.choice(_public_ifaces(t))}, NONE, ())),
    "delete-interface": (1, lambda r, t, n: (
        {"node": n, "iface": r.choice(_public_ifaces(t))}, UNHEALTHY, ())),
    "isolate": (2, lambda r, t, n: ({"node": n}, DISCONNECTED, (n,))),
    "kill": (2, lambda r, t, n: ({"node": n}, DISCONNECTED, (n,))),
    "hang": (1, lambda r, t, n: ({"node": n}, DISCONNECTED, (n,))),
    "stop": (1, lambda r, t, n: ({"node": n}, DISCONNECTED, (n,))),
    "restart": (1, lambda r, t, n: ({"node": n}, NONE, (n,))),
    "hang-monitor": (1, lambda r, t, n: ({"node": n, "seconds": 3600}, NONE, ())),
    # acts only when a takeover run moves an IP to (takeip) or from (releaseip)
    # the node, so a round of it alone gets a partner from MOVERS on another
    # node (the IPs it takes away go to the others); the failed runs get it banned.
    # Banned with a releaseip that fails, it keeps its IPs while the leader
    # places them elsewhere (ctdbd too): it is excused
    "fail-event": (1, lambda r, t, n: _fail_event(r, n)),
    "packet-loss": (1, lambda r, t, n: (
        {"node": n, "port": r.choice(_public_ports(t)), "percent": r.choice((10, 30, 60))},
        NONE, ())),
    # a partition's sides may each elect a leader and hold IPs (CTDB without a
    # cluster lock does too): every node of it is excused
    "partition": (1, lambda r, t, n: _split(r, t.nodes, n)),
    # TCP needs both ways: src and dst lose each other, a partition between
    # them. A leader on either side (its lock is not cut) moves the other
    # side's IPs while they are still held there, as ctdbd does: all excused
    "one-way-loss": (1, lambda r, t, n: _one_way(r, t.nodes, n)),
    "flap": (1, lambda r, t, n: (
        {"node": n, "port": r.choice(_public_ports(t)), "period": r.choice((0.5, 1.0, 2.0)),
         "count": r.randint(2, 5)}, NONE, ())),
    "bond-slave-lost": (2, lambda r, t, n: ({"node": n}, NONE, ())),
    "all-slaves-lost": (1, lambda r, t, n: ({"node": n}, UNHEALTHY, ())),
}
BOND_ONLY = {"bond-slave-lost", "all-slaves-lost"}
MOVERS = ("public-link", "kill", "stop")  # faults that move the node's IPs to the others
STEADY_KINDS = ("flap", "restart")  # undo themselves; their duration is only a wait


def kinds_for(top: Topology, only: Sequence[str] | None = None) -> list[str]:
    """The catalogue's kinds that make sense on this topology."""
    names = [k for k in KINDS if top.has_bonds or k not in BOND_ONLY]
    return [k for k in names if only is None or k in only]


def make_plan(seed: int, top: Topology, faults: int, *, longest: float,
              overlap: float = 0.2, only: Sequence[str] | None = None) -> Plan:
    """`faults` faults in rounds; `longest` caps a fault's duration (seconds),
    chosen by the caller from the bounds so that most faults outlast detection
    and takeover and some are gone before anyone notices."""
    rng = random.Random(seed)
    nodes = top.nodes
    names = kinds_for(top, only)
    weights = [KINDS[k][0] for k in names]
    at_once = max(1, nodes // 2)  # at least half the nodes stay free to take IPs
    rounds: list[Round] = []
    left = faults
    while left > 0:
        width = 1
        while width < min(at_once, left) and rng.random() < overlap:
            width += 1
        free = list(range(nodes))
        rng.shuffle(free)
        kinds = [rng.choices(names, weights)[0] for _ in range(width)]
        movers = [k for k in MOVERS if k in names]
        cap = min(at_once, left)
        if "fail-event" in kinds and not set(kinds) & set(MOVERS) and movers and cap > 1:
            # alone it would wait for nothing: first the failing event, then a mover
            rest = [k for k in kinds if k != "fail-event"]
            kinds = ["fail-event", rng.choice(movers), *rest][:cap]
        failing = "fail-event" in kinds
        steps = []
        for k, kind in enumerate(kinds):
            args, effect, excuse = KINDS[kind][1](rng, top, free[k])
            # beside a failing event, it and its mover last the longest: the
            # takeover run they must meet comes after the mover's detection
            duration = (longest if failing and (kind == "fail-event" or kind in MOVERS)
                        else round(rng.uniform(1.0, longest), 2))
            steps.append(Step(kind, args, 0.0 if k == 0 else round(rng.uniform(0, 3), 2),
                              duration, effect, excuse))
        rounds.append(Round(tuple(steps)))
        left -= len(steps)
    return Plan(seed, nodes, tuple(rounds))
