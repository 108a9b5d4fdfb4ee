"""Cross-implementation differential: the native daemon and real ctdbd go
through the same seeded random fault walk and are compared directly with
each other after every step (node flags as every node sees them, and the
public-IP layout).

Why from a common layout and not from a fresh start: ctdbd's own start-up
layout is not reproducible. Its nodes leave FIRST_RECOVERY and turn HEALTHY
at times set by their own 1 s timers (ctdb_wait_until_recovered, the first
monitor 2 s after RUNNING) and by recoveries that a peer turning healthy
forces on nodes still starting; the leader serves the takeover requests once
per recovery-loop pass, so which nodes share a takeover run - and so the
layout LCP2 builds - changes from start to start (4 starts, 4 layouts; see
the report of branch h12layout). So each walk begins by disabling every node
but node 0: whatever the start, every IP is then on node 0, and from there
each step is one flag change and the allocator's answer is determined.

Steps (each flips one node's state; at least one node can always host IPs):
- `disable`/`enable` (the CLI; a takeover run at once) and `pull`/`plug` of a
  node's public cable (UNHEALTHY/healthy at its next monitor run);
- `isolate`/`heal`: the node cut off the private network (the partition
  fault; the lock host stays with the majority) and joined again. Only a
  node that holds IPs and is not the leader is isolated, one at a time:
  node 0 is the only node with leader capability (topology leader_nodes), so
  the lock holder is known on both implementations. Isolating the leader is
  not deterministic: the cut-off leader keeps its lock until its helper's
  refresh fails and meanwhile may take every IP itself (native always,
  ctdbd sometimes - h12lock report), and what the heal then makes of IPs
  held twice depends on that race. With a non-leader cut off, both
  implementations keep its IPs on it (measured in h12lock) while the
  majority takes them over, so until the heal each of them is held twice.
  Compared meanwhile: the majority's layout (`ip` on node 0) and the
  majority nodes' views of every node's flags (the isolated node's own view
  changes by its timing alone); checked: the isolated node still holds
  exactly what it held at the cut, and no other IP is held twice. Walks with
  an isolation run with the etcd lock (cluster_lock = "etcd"), so that the
  lock is on the network the partition cuts, as in a real cluster.
- `failtakeip`: a disabled, healthy non-leader gets a takeip event that
  fails (the fail-event fault) and is enabled: every takeover run that
  gives it an IP fails, the leader blames it, and past the culprit threshold
  (two failed runs) it is BANNED for RecoveryBanPeriod (300 s, far beyond a
  walk), so the outcome is one state, not a race against the ban's end:
  BANNED|INACTIVE on every node, its IPs elsewhere. The fault is removed
  once every node sees the ban. `unban` (the CLI) ends it later; the node
  then takes IPs again. A banned node takes no other step.

A walk is replayable from its seed alone (`walk(seed, steps)`); `run_walk`
records every comparison as JSON, with the kind of each step.
"""

from __future__ import annotations

import ipaddress
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.failover.ipalloc import IPAddress
from harness.faults import Fault, FaultError
from harness.faults.daemons import FailEvent
from harness.lab import Lab, running_cluster
from harness.topology import PublicAddress, Topology, default_topology
from harness.wait import wait_until

NODES = 5
IPS = 10
TUNABLES = {"MonitorInterval": 3, "RerecoveryTimeout": 1,
            # a cut-off node is DISCONNECTED after 3 s, not 25 (as test_cluster_lock)
            "KeepaliveInterval": 1, "KeepaliveLimit": 3}
LEADER = 0
"""The only node with leader capability: the lock holder is known in advance."""
STEP_TIMEOUT = 30.0
"""Deadline for a step's flags on every node: a monitor gap (5 s after a
change), a run, plus slack; for an isolation ctdbd's dead count (about 7.4 s
with the keepalives above, h12lock) and a recovery before its run."""
SETTLE = 2.0
"""A layout counts as settled once unchanged for this long: a RecoverInterval
(the pass a queued takeover request waits for) plus a second of slack."""


def topology(cluster_lock: str = "fcntl") -> Topology:
    """5 nodes, 10 public IPs on plain eth1 (the kernel here has no bonding),
    node 0 the only one that may lead."""
    t = default_topology(NODES).plain()
    return type(t)(
        nodes=NODES, networks=t.networks, interfaces=t.interfaces,
        public_addresses=tuple(
            PublicAddress(ipaddress.IPv4Interface(f"203.0.113.{201 + k}/24"), ("eth1",))
            for k in range(IPS)),
        cluster_lock=cluster_lock, leader_nodes=(LEADER,),
        source="crossdiff").validated()


Step = tuple[str, int]
COMMON_START: tuple[Step, ...] = tuple(("disable", p) for p in range(1, NODES))
"""Every node but 0 disabled: all IPs on node 0, whatever layout the start gave."""


@dataclass
class WalkNode:
    """What the walk has done to one node so far."""

    disabled: bool = False
    pulled: bool = False
    isolated: bool = False
    banned: bool = False

    def hosts(self) -> bool:
        return not (self.disabled or self.pulled or self.isolated or self.banned)


ISOLATED = "DISCONNECTED|*"
"""The expected flags of an isolated node: DISCONNECTED plus whatever else
the implementation marks a lost node with (compared between the two)."""


def expected_flags(states: Sequence[WalkNode]) -> dict[int, str]:
    """The flags `ctdb status` must show for each node (as sorted flag names)."""
    out = {}
    for p, s in enumerate(states):
        if s.isolated:
            out[p] = ISOLATED
            continue
        names = ((["DISABLED"] if s.disabled else []) + (["UNHEALTHY"] if s.pulled else [])
                 + (["BANNED", "INACTIVE"] if s.banned else []))
        out[p] = "|".join(sorted(names)) or "OK"
    return out


def flags_match(want: str, got: str) -> bool:
    if want == ISOLATED:
        return "DISCONNECTED" in got.split("|")
    return want == got


def apply_step(states: list[WalkNode], step: Step) -> None:
    action, p = step
    node = states[p]
    if action in ("disable", "enable"):
        node.disabled = action == "disable"
    elif action in ("pull", "plug"):
        node.pulled = action == "pull"
    elif action in ("isolate", "heal"):
        node.isolated = action == "isolate"
    elif action == "failtakeip":  # enabled with a failing takeip: banned
        node.disabled, node.banned = False, True
    elif action == "unban":
        node.banned = False
    else:
        raise ValueError(f"unknown walk step {step}")


def step_options(states: Sequence[WalkNode]) -> list[Step]:
    """The steps the walk may take next (before the "someone hosts" check).

    A banned node is only unbanned and an isolated one only healed (their
    CLI would act on a node the others cannot hear, or that runs no
    takeover). Only a non-leader that holds IPs is isolated, one at a time
    and not while a node is banned; only a disabled, healthy non-leader gets
    a failing takeip, and not while a node is isolated (the ban's credits
    count the nodes; keep that to one case)."""
    isolated = any(x.isolated for x in states)
    banned = any(x.banned for x in states)
    out: list[Step] = []
    for p, node in enumerate(states):
        if node.banned:
            out.append(("unban", p))
        elif node.isolated:
            out.append(("heal", p))
        else:
            out += [("enable" if node.disabled else "disable", p),
                    ("plug" if node.pulled else "pull", p)]
            if p != LEADER and node.hosts() and not isolated and not banned:
                out.append(("isolate", p))
            if p != LEADER and node.disabled and not node.pulled and not isolated:
                out.append(("failtakeip", p))
    return out


def step_weight(step: Step, before: Sequence[WalkNode], after: Sequence[WalkNode]) -> int:
    """How likely a step is, relative to one that changes nothing about who
    hosts (a pull of a disabled node: 1). A step that changes which nodes
    can host (and so should move IPs) weighs 3, an isolate 4 (it has the
    fewest candidates: a hosting non-leader, one at a time); a failtakeip 1,
    as it has many (every disabled node) and moves IPs only sometimes."""
    action, p = step
    if action == "isolate":
        return 4
    if action == "failtakeip":
        return 1
    return 3 if after[p].hosts() != before[p].hosts() else 1


def walk(seed: int, steps: int) -> list[Step]:
    """The seeded random walk after COMMON_START: each step changes one
    node's state, never leaving no node able to host IPs (weights:
    step_weight)."""
    rng = random.Random(seed)
    states = [WalkNode() for _ in range(NODES)]
    for s in COMMON_START:
        apply_step(states, s)
    out: list[Step] = []
    while len(out) < steps:
        options: list[tuple[Step, list[WalkNode]]] = []
        weights: list[int] = []
        for step in step_options(states):
            trial = [replace(x) for x in states]
            apply_step(trial, step)
            if any(x.hosts() for x in trial):
                options.append((step, trial))
                weights.append(step_weight(step, states, trial))
        step, states = rng.choices(options, weights)[0]
        out.append(step)
    return out


@dataclass
class Observation:
    """One implementation after one step: flags as each node reports them
    (observer pnn -> pnn -> sorted flag names; an isolated node is no
    observer) and the settled layout (`ip` on node 0, the leader's side)."""

    flags: dict[int, dict[int, str]]
    layout: dict[str, int]
    seconds: float  # from the step's action to the settled layout
    isolated_holds: list[str] = field(default_factory=list)  # the cut-off node's IPs
    failed_takeips: int = 0  # failtakeip: takeip events that failed before the ban


@dataclass
class Comparison:
    """One step of a walk on both implementations."""

    index: int
    step: Step
    expected_flags: dict[int, str]
    native: Observation
    ctdb: Observation
    moved: bool = False  # the layout differs from the previous step's (on native)

    @property
    def kind(self) -> str:
        return self.step[0]

    @property
    def agree(self) -> bool:
        """Flags from every observer, the layout, and what the cut-off node
        holds; how many takeips failed before the ban is a race (the ban
        check's pass), so only its being at least one is required."""
        return (self.native.flags == self.ctdb.flags
                and self.native.layout == self.ctdb.layout
                and self.native.isolated_holds == self.ctdb.isolated_holds
                and (self.kind != "failtakeip"
                     or min(self.native.failed_takeips, self.ctdb.failed_takeips) > 0))


@dataclass
class WalkResult:
    """A walk on both implementations, compared step by step."""

    seed: int
    steps: list[Step]
    cluster_lock: str = "fcntl"
    comparisons: list[Comparison] = field(default_factory=list)

    def kinds(self) -> dict[str, int]:
        """How many steps of each kind were compared."""
        return dict(Counter(c.kind for c in self.comparisons))

    def disagreements(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.agree]

    def moved(self) -> int:
        return sum(c.moved for c in self.comparisons)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "seed": self.seed, "steps": self.steps, "moved": self.moved(),
            "cluster_lock": self.cluster_lock, "kinds": self.kinds(),
            "agreed": len(self.comparisons) - len(self.disagreements()),
            "comparisons": [{**asdict(c), "kind": c.kind, "agree": c.agree}
                            for c in self.comparisons]}
        path.write_text(json.dumps(data, indent=1, sort_keys=True))


def sorted_flags(text: str) -> str:
    return "|".join(sorted(text.split("|")))


def flags_seen(backend: Any, observers: Sequence[int] = range(NODES)  # noqa: ANN401
               ) -> dict[int, dict[int, str]]:
    """Each observer's `status` view of every node's flags."""
    return {o: {n.pnn: sorted_flags(n.flags_text) for n in backend.status(o).nodes}
            for o in observers}


def settled_layout(backend: Any, settle: float = SETTLE,  # noqa: ANN401 - any Backend
                   timeout: float = 30.0, cut_off: int | None = None,
                   kept: frozenset[IPAddress] = frozenset()) -> dict[IPAddress, int]:
    """The layout (`ip` on node 0) once unchanged for `settle` s, with every IP
    held in the kernel by the node `ip` names and by no other - except that
    node `cut_off` (isolated) still holds the IPs `kept` it had at the cut,
    which `ip` must assign elsewhere."""
    last: list[Any] = [None, 0.0]

    def right(ip: IPAddress, p: int, held: dict[IPAddress, list[int]]) -> bool:
        want = ({p} if p >= 0 else set()) | ({cut_off} if ip in kept else set())
        return p != cut_off and set(held.get(ip) or ()) == want \
            and len(held.get(ip) or ()) == len(want)

    def stable() -> dict[IPAddress, int] | None:
        held = backend.kernel_holders()
        cur = backend.ips(0)
        if not all(right(ip, p, held) for ip, p in cur.items()):
            last[:] = [None, 0.0]
            return None
        now = time.monotonic()
        if cur != last[0]:
            last[:] = [cur, now]
            return None
        return cur if now - last[1] >= settle else None
    _, layout = wait_until(stable, timeout, "layout settled")
    assert layout is not None  # wait_until returns only a truthy value
    return layout


def wait_flags(backend: Any, want: dict[int, str], what: str,  # noqa: ANN401
               observers: Sequence[int] = range(NODES),
               timeout: float = STEP_TIMEOUT) -> dict[int, dict[int, str]]:
    """Every observer reports the wanted flags for every node."""
    def seen() -> dict[int, dict[int, str]] | None:
        got = flags_seen(backend, observers)
        ok = all(set(v) == set(want) and all(flags_match(want[p], f) for p, f in v.items())
                 for v in got.values())
        return got if ok else None
    _, got = wait_until(seen, timeout, f"{what}: flags {want} on nodes {list(observers)}")
    assert got is not None  # wait_until returns only a truthy value
    return got


class StepDriver:
    """Carries out walk steps on a lab: disable/enable/unban through the
    implementation's CLI, pull/plug of the node's public cable (eth1),
    isolate/heal as a partition of the private network, failtakeip as the
    fail-event fault plus `enable` (removed by `settle_step` once banned)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.pulled: dict[int, Fault] = {}
        self.isolated: dict[int, Fault] = {}
        self.kept: frozenset[IPAddress] = frozenset()  # the isolated node's IPs at the cut
        self.failing: dict[int, FailEvent] = {}

    def do(self, step: Step) -> None:
        action, p = step
        backend = self.lab.backend
        if action in ("disable", "enable", "unban"):
            backend.ctl(p, action, timeout=STEP_TIMEOUT)
        elif action == "pull":
            self.pulled[p] = self.lab.faults.pull_cable(p, "eth1").apply()
        elif action == "plug":
            self.pulled.pop(p).undo()
        elif action == "isolate":
            self.kept = frozenset(ip for ip, ps in backend.kernel_holders().items() if p in ps)
            self.isolated[p] = self.lab.faults.isolate(p, network="private").apply()
        elif action == "heal":
            self.isolated.pop(p).undo()
            self.kept = frozenset()
        elif action == "failtakeip":
            self.failing[p] = self.lab.faults.fail_event(p, "takeip")
            self.failing[p].apply()
            # ctdb's enable ends with an ipreallocate, which this very failure fails
            backend.ctl(p, "enable", check=False, timeout=STEP_TIMEOUT)
        else:
            raise FaultError(f"unknown walk step {step}")

    def cut_off(self) -> int | None:
        return next(iter(self.isolated), None)

    def settle_step(self, step: Step) -> int:
        """After the step's flags are seen: a failtakeip's fault is removed
        (the node is banned, no run gives it IPs); returns how many takeips
        failed (0 for other steps)."""
        fault = self.failing.pop(step[1], None) if step[0] == "failtakeip" else None
        if fault is None:
            return 0
        failed = len(fault.failures())
        fault.undo()
        return failed


Progress = Callable[[str], None]


def run_on(name: str, steps: Sequence[Step], progress: Progress = lambda s: None,
           cluster_lock: str = "fcntl") -> list[Observation]:
    """The common start then `steps` on a fresh cluster of implementation `name`."""
    out: list[Observation] = []
    with running_cluster(topology(cluster_lock), name, TUNABLES, record=False,
                         settle=SETTLE) as lab:
        backend = lab.backend
        states = [WalkNode() for _ in range(NODES)]
        driver = StepDriver(lab)

        def do(step: Step) -> None:
            driver.do(step)
            apply_step(states, step)

        for s in COMMON_START:
            do(s)
        wait_flags(backend, expected_flags(states), f"{name}: common start")
        leader = backend.agreed_leader()
        if leader != LEADER:  # leader_nodes (ctdb.conf leader capability) not honoured
            raise FaultError(f"{name}: node {leader} leads, but only node {LEADER} "
                             "has leader capability")
        start = settled_layout(backend)
        progress(f"{name}: common start {start}")
        for k, step in enumerate(steps):
            t0 = time.monotonic()
            do(step)
            cut = driver.cut_off()
            observers = [p for p in range(NODES) if p != cut]
            flags = wait_flags(backend, expected_flags(states),
                               f"{name}: step {k + 1} {step}", observers)
            failed = driver.settle_step(step)
            got = settled_layout(backend, cut_off=cut, kept=driver.kept)
            layout = {str(ip): p for ip, p in sorted(got.items())}
            out.append(Observation(flags, layout, round(time.monotonic() - t0, 3),
                                   sorted(map(str, driver.kept)), failed))
            progress(f"{name}: step {k + 1} {step} -> {layout}"
                     + (f" (node {cut} cut off, holding {len(driver.kept)})"
                        if cut is not None else "")
                     + (f" ({failed} takeips failed)" if step[0] == "failtakeip" else ""))
    return out


def lock_for(plan: Sequence[Step]) -> str:
    """etcd when the walk isolates a node (the lock on the network the cut
    splits, as in a real cluster), else the faster host-file lock."""
    return "etcd" if any(a == "isolate" for a, _ in plan) else "fcntl"


def run_walk(seed: int, steps: int, progress: Progress = lambda s: None) -> WalkResult:
    """Walk `seed` on native, then on ctdbd; compare after every step."""
    plan = walk(seed, steps)
    lock = lock_for(plan)
    native = run_on("native", plan, progress, lock)
    ctdb = run_on("ctdb", plan, progress, lock)
    res = WalkResult(seed, plan, lock)
    prev = {str(ipaddress.IPv4Address(f"203.0.113.{201 + k}")): 0 for k in range(IPS)}
    states = [WalkNode() for _ in range(NODES)]
    for s in COMMON_START:
        apply_step(states, s)
    for k, (step, a, b) in enumerate(zip(plan, native, ctdb, strict=True)):
        apply_step(states, step)
        res.comparisons.append(Comparison(k + 1, step, expected_flags(states), a, b,
                                          moved=a.layout != prev))
        prev = a.layout
    return res


def describe(c: Comparison) -> str:
    """One disagreement, in a line or two."""
    parts = [f"step {c.index} {c.step[0]} {c.step[1]}:"]
    if c.native.flags != c.ctdb.flags:
        parts.append(f"flags native {c.native.flags} != ctdb {c.ctdb.flags}")
    if c.native.isolated_holds != c.ctdb.isolated_holds:
        parts.append(f"cut-off node holds native {c.native.isolated_holds} "
                     f"!= ctdb {c.ctdb.isolated_holds}")
    if c.kind == "failtakeip":
        parts.append(f"failed takeips native {c.native.failed_takeips}, "
                     f"ctdb {c.ctdb.failed_takeips}")
    if c.native.layout != c.ctdb.layout:
        diff = {ip: (c.native.layout.get(ip), c.ctdb.layout.get(ip))
                for ip in sorted(set(c.native.layout) | set(c.ctdb.layout))
                if c.native.layout.get(ip) != c.ctdb.layout.get(ip)}
        parts.append(f"layout differs at {diff} (native, ctdb)")
    return " ".join(parts)
