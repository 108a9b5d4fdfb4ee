"""A scenario as plain data: the cluster, the settings, and the steps in file
order. The loader builds it from TOML (and has already checked everything
that can be checked without a cluster); the runner reads it. Nothing here
reads files or touches a cluster.

The vocabulary a file may use is defined here once, so the loader's error
messages, the runner and the README name the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.ctdb.flags import STATUS_ORDER
from harness.topology import Topology

# A node is named by its pnn, or by a role resolved once the cluster has
# converged (before the first step), so a file can say "a node that is not
# the leader" or "the node holding 198.51.100.201" without knowing which one
# the election or the IP allocation picked (they differ between runs and
# implementations).
ROLES: dict[str, str] = {
    "leader": "the node every node names as leader",
    "non-leader": "the highest-numbered node that is not the leader",
}
HOLDER = "holder:"  # "holder:IP": the node holding public address IP at the start
NodeRef = int | str

# Named bounds, in seconds, from harness.assertions.Bounds of the tunables in
# force (times the emulation scale inside the test VM, except `gap`); a bound
# in a file is a sum of these and plain numbers, e.g. "detection+takeover+2".
BOUND_NAMES: dict[str, str] = {
    "detection": "fault -> UNHEALTHY: the node's next monitor run (when the implementation "
                 "says when it is due, else the longest monitor gap) plus slack",
    "takeover": "UNHEALTHY/DISCONNECTED -> IPs in a healthy node's kernel: RecoverInterval "
                "plus slack",
    "recovery": "fault undone -> OK again: one monitor gap plus slack",
    "keepalive": "silent node -> DISCONNECTED: KeepaliveInterval x (KeepaliveLimit + 1) "
                 "plus slack",
    "gap": "the longest gap between two monitor runs (5 s after a health change, else "
           "MonitorInterval); the daemon's own timer, so not scaled in the VM",
    "startup": "how long the implementation may take to converge (start-up, a node rejoining)",
}

# What an expectation can wait for (`expect = NAME`).
EXPECTATIONS: dict[str, str] = {
    "flag": "a flag appears on `node` (flag = UNHEALTHY, DISCONNECTED, BANNED, ...)",
    "ok": "`node` is back to OK (no flag at all; PARTIALLYONLINE is expect = \"flag\")",
    "moved": "every public IP `node` held at `after` is added on another node",
    "reachable": "the client reaches every public IP `node` held at `after` again "
                 "(its outage since `after` ended)",
    "converged": "every node OK and every public IP held by exactly one node",
    "event": "a timeline event of `kind` (with `node` and `match`) happens",
    "none": "no event of a kind (`flag` or `kind`) happens for a while (`for`)",
}

# Flag names as `ctdb status` prints them (both implementations).
FLAG_NAMES: tuple[str, ...] = (*(name for name, _ in STATUS_ORDER), "PARTIALLYONLINE")

# Timeline event kinds (as harness.record documents them) a trigger or an
# `event`/`none` expectation may name.
EVENT_KINDS: tuple[str, ...] = (
    "link.admin", "link.carrier", "link.operstate", "link.new", "link.del", "link.master",
    "bond.active", "bond.slave", "addr.add", "addr.del",
    "flags", "holder", "ctl.error", "ctl.ok", "log",
    "probe.arp", "probe.icmp", "probe.neigh", "probe.garp",
    "fault.apply", "fault.undo", "fault.error", "fault.arm", "fault.disarm", "fault.trigger",
    "note",
)

START = "start"  # the reference every `at` counts from: the scenario's start
UNDO_SUFFIX = ".undo"  # `after = "cut.undo"`: the moment fault "cut" was undone


@dataclass(frozen=True)
class Bound:
    """A bound in seconds: named bounds plus a constant, as written (`text`)."""

    names: tuple[str, ...]
    seconds: float
    text: str

    def value(self, named: Mapping[str, float]) -> float:
        return self.seconds + sum(named[n] for n in self.names)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Trigger:
    """`on = {...}`: apply the fault `offset` s after the next matching event."""

    kind: str
    node: NodeRef | None = None
    has: str | None = None  # a flag the `flags` event must carry
    offset: float = 0.0
    timeout: float = 60.0  # how long the armed trigger waits for its event
    match: dict[str, Any] = field(default_factory=dict)

    def describe(self, roles: Mapping[str, int] | None = None) -> str:
        parts = [self.kind]
        if self.node is not None:
            parts.append(f"node {node_text(self.node, roles)}")
        if self.has is not None:
            parts.append(f"has {self.has}")
        parts += [f"{k}={v}" for k, v in self.match.items()]
        return f"on {' '.join(parts)} +{self.offset:g} s"


@dataclass(frozen=True)
class FaultStep:
    """A fault from the catalogue (harness.faults.kinds), by name with its
    parameters as written (node roles unresolved)."""

    number: int
    id: str | None
    fault: str
    args: dict[str, Any]
    at: float | None = None
    on: Trigger | None = None
    for_s: float | None = None

    def describe(self, roles: Mapping[str, int] | None = None) -> str:
        args = " ".join(f"{k}={node_text(v, roles) if k == 'node' else _text(v)}"
                        for k, v in self.args.items())
        when = f" at +{self.at:g} s" if self.at is not None else ""
        when += f" {self.on.describe(roles)}" if self.on is not None else ""
        when += f" for {self.for_s:g} s" if self.for_s is not None else ""
        return f"fault {self.fault} {args}{when}".replace("  ", " ")


@dataclass(frozen=True)
class UndoStep:
    """Undo an earlier fault now."""

    number: int
    target: str
    id: None = None

    def describe(self, roles: Mapping[str, int] | None = None) -> str:
        return f"undo {self.target}"


@dataclass(frozen=True)
class WaitStep:
    """Let time pass before the next step (rarely needed: expectations wait on events)."""

    number: int
    seconds: Bound
    id: None = None

    def describe(self, roles: Mapping[str, int] | None = None) -> str:
        return f"wait {self.seconds} s"


@dataclass(frozen=True)
class ExpectStep:
    """An expectation on the timeline, measured from the `after` reference."""

    number: int
    id: str | None
    expect: str  # one of EXPECTATIONS
    after: str  # "start", a fault's id, "ID.undo", or an earlier expectation's id
    within: tuple[Bound, Bound] | None = None  # every kind but "none"
    for_: Bound | None = None  # "none" only
    node: NodeRef | None = None
    flag: str | None = None
    kind: str | None = None
    by: tuple[NodeRef, ...] | str | None = None  # observers: pnns/roles, or "others"
    match: dict[str, Any] = field(default_factory=dict)
    ips: tuple[str, ...] = ()
    flagged: str | None = None  # "moved": the flag expectation that caused the takeover

    def describe(self, roles: Mapping[str, int] | None = None) -> str:
        """One line; with `roles` (resolved at run time) a role shows its pnn."""
        node = f"node {node_text(self.node, roles)}"
        what = {
            "flag": f"{self.flag} on {node}",
            "ok": f"{node} OK",
            "moved": f"{node}'s IPs moved",
            "reachable": f"{node}'s IPs reachable again",
            "converged": "converged",
            "event": " ".join([str(self.kind), *([node] if self.node is not None else []),
                               *(f"{k}={_text(v)}" for k, v in self.match.items())]),
            "none": "no " + " ".join([str(self.flag or self.kind),
                                      *([f"on {node}"] if self.node is not None else []),
                                      *(f"{k}={_text(v)}" for k, v in self.match.items())]),
        }[self.expect]
        if self.ips:
            what += f" ({', '.join(self.ips)})"
        if isinstance(self.by, str):
            what += f" seen by {self.by}"
        elif self.by is not None:
            what += f" seen by {', '.join(node_text(b, roles) for b in self.by)}"
        if self.for_ is not None:
            what += f" for {self.for_}"
        return f"{what} after {self.after}"


Step = FaultStep | UndoStep | WaitStep | ExpectStep


@dataclass(frozen=True)
class Scenario:
    """One scenario file, checked. `implementations` None means every installed one."""

    name: str
    description: str
    path: Path
    topology: Topology
    topology_source: str  # "inline", "file ...", "ctdb ..." (for the report)
    steps: tuple[Step, ...]
    implementations: tuple[str, ...] | None = None
    event_mode: bool = False
    tunables: dict[str, int] = field(default_factory=dict)
    script_options: dict[str, str] = field(default_factory=dict)
    slack: float = 1.0
    invariants: bool = True
    invariants_reason: str = ""
    duplicates_allowed_on: tuple[NodeRef, ...] = ()
    duplicates_reason: str = ""

    def node_refs(self) -> list[NodeRef]:
        """Every node the file names (to know whether roles must be resolved)."""
        refs: list[NodeRef] = list(self.duplicates_allowed_on)
        for s in self.steps:
            if isinstance(s, FaultStep):
                refs += [v for k, v in s.args.items() if k == "node"]
                if s.on is not None and s.on.node is not None:
                    refs.append(s.on.node)
            elif isinstance(s, ExpectStep):
                refs += [s.node] if s.node is not None else []
                refs += list(s.by) if isinstance(s.by, tuple) else []
        return refs

    def uses_roles(self) -> bool:
        return any(isinstance(r, str) for r in self.node_refs())

    def public_ips(self) -> list[str]:
        return [str(p.address.ip) for p in self.topology.public_addresses]


def node_text(ref: NodeRef | None, roles: Mapping[str, int] | None = None) -> str:
    """A node as a file names it; a resolved role also shows its pnn: `2 (non-leader)`."""
    if isinstance(ref, str) and roles and ref in roles:
        return f"{roles[ref]} ({ref})"
    return str(ref)


def _text(value: Any) -> str:
    """A parameter value as a file would write it, for one-line descriptions."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)
