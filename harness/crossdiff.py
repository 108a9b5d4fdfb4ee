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

Steps: `disable`/`enable` (the CLI; a takeover run at once) and `pull`/`plug`
of a node's public cable (UNHEALTHY/healthy at its next monitor run). At
least one node can always host IPs. A walk is replayable from its seed alone
(`walk(seed, steps)`); `run_walk` records every comparison as JSON.
"""

from __future__ import annotations

import ipaddress
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.failover.ipalloc import IPAddress
from harness.faults import Fault
from harness.lab import Lab, running_cluster
from harness.topology import PublicAddress, Topology, default_topology
from harness.wait import wait_until

NODES = 5
IPS = 10
TUNABLES = {"MonitorInterval": 3, "RerecoveryTimeout": 1}
SETTLE = 2.0
"""A layout counts as settled once unchanged for this long: a RecoverInterval
(the pass a queued takeover request waits for) plus a second of slack."""


def topology() -> Topology:
    """5 nodes, 10 public IPs on plain eth1 (the kernel here has no bonding)."""
    t = default_topology(NODES).plain()
    return type(t)(
        nodes=NODES, networks=t.networks, interfaces=t.interfaces,
        public_addresses=tuple(
            PublicAddress(ipaddress.IPv4Interface(f"203.0.113.{201 + k}/24"), ("eth1",))
            for k in range(IPS)),
        source="crossdiff").validated()


Step = tuple[str, int]
COMMON_START: tuple[Step, ...] = tuple(("disable", p) for p in range(1, NODES))
"""Every node but 0 disabled: all IPs on node 0, whatever layout the start gave."""


@dataclass
class WalkNode:
    """What the walk has done to one node so far."""

    disabled: bool = False
    pulled: bool = False

    def hosts(self) -> bool:
        return not (self.disabled or self.pulled)


def expected_flags(states: Sequence[WalkNode]) -> dict[int, str]:
    """The flags `ctdb status` must show for each node (as sorted flag names)."""
    out = {}
    for p, s in enumerate(states):
        names = (["DISABLED"] if s.disabled else []) + (["UNHEALTHY"] if s.pulled else [])
        out[p] = "|".join(sorted(names)) or "OK"
    return out


def apply_step(states: list[WalkNode], step: Step) -> None:
    action, p = step
    if action in ("disable", "enable"):
        states[p].disabled = action == "disable"
    else:
        states[p].pulled = action == "pull"


def walk(seed: int, steps: int) -> list[Step]:
    """The seeded random walk after COMMON_START: each step flips one node's
    disabled or pulled state, never leaving no node able to host IPs. A step
    that changes which nodes can host (and so should move IPs) is three times
    as likely as one that does not (a pull of a disabled node)."""
    rng = random.Random(seed)
    states = [WalkNode() for _ in range(NODES)]
    for s in COMMON_START:
        apply_step(states, s)
    out: list[Step] = []
    while len(out) < steps:
        options: list[tuple[Step, list[WalkNode]]] = []
        weights: list[int] = []
        for p, node in enumerate(states):
            for action in ("enable" if node.disabled else "disable",
                           "plug" if node.pulled else "pull"):
                trial = [WalkNode(x.disabled, x.pulled) for x in states]
                apply_step(trial, (action, p))
                if any(x.hosts() for x in trial):
                    options.append(((action, p), trial))
                    weights.append(3 if trial[p].hosts() != node.hosts() else 1)
        step, states = rng.choices(options, weights)[0]
        out.append(step)
    return out


@dataclass
class Observation:
    """One implementation after one step: flags as each node reports them
    (observer pnn -> pnn -> sorted flag names) and the settled layout."""

    flags: dict[int, dict[int, str]]
    layout: dict[str, int]
    seconds: float  # from the step's action to the settled layout


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
    def agree(self) -> bool:
        return (self.native.flags == self.ctdb.flags
                and self.native.layout == self.ctdb.layout)


@dataclass
class WalkResult:
    """A walk on both implementations, compared step by step."""

    seed: int
    steps: list[Step]
    comparisons: list[Comparison] = field(default_factory=list)

    def disagreements(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.agree]

    def moved(self) -> int:
        return sum(c.moved for c in self.comparisons)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "seed": self.seed, "steps": self.steps, "moved": self.moved(),
            "agreed": len(self.comparisons) - len(self.disagreements()),
            "comparisons": [{**asdict(c), "agree": c.agree} for c in self.comparisons]}
        path.write_text(json.dumps(data, indent=1, sort_keys=True))


def sorted_flags(text: str) -> str:
    return "|".join(sorted(text.split("|")))


def flags_seen(backend: Any) -> dict[int, dict[int, str]]:  # noqa: ANN401 - any Backend
    """Every node's `status` view of every node's flags."""
    return {o: {n.pnn: sorted_flags(n.flags_text) for n in backend.status(o).nodes}
            for o in range(NODES)}


def settled_layout(backend: Any, settle: float = SETTLE,  # noqa: ANN401 - any Backend
                   timeout: float = 30.0) -> dict[IPAddress, int]:
    """The layout (`ip` on node 0) once unchanged for `settle` s, with every IP
    held once in the kernel, by the node `ip` names."""
    last: list[Any] = [None, 0.0]

    def stable() -> dict[IPAddress, int] | None:
        held = backend.kernel_holders()
        cur = backend.ips(0)
        if any(len(v) > 1 for v in held.values()) or \
                any((held.get(ip) or [-1])[0] != p for ip, p in cur.items()):
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


def wait_flags(backend: Any, want: dict[int, str], what: str  # noqa: ANN401
               ) -> dict[int, dict[int, str]]:
    """Every node reports the wanted flags for every node: a monitor gap (5 s
    after a change), a run, plus slack."""
    def seen() -> dict[int, dict[int, str]] | None:
        got = flags_seen(backend)
        return got if all(v == want for v in got.values()) else None
    _, got = wait_until(seen, 5 + 5 + 3, f"{what}: flags {want} on every node")
    assert got is not None  # wait_until returns only a truthy value
    return got


class StepDriver:
    """Carries out walk steps on a lab: disable/enable through the
    implementation's CLI, pull/plug of the node's public cable (eth1)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.pulled: dict[int, Fault] = {}

    def do(self, step: Step) -> None:
        action, p = step
        if action in ("disable", "enable"):
            self.lab.backend.ctl(p, action)
        elif action == "pull":
            self.pulled[p] = self.lab.faults.pull_cable(p, "eth1").apply()
        elif action == "plug":
            self.pulled.pop(p).undo()
        else:
            raise ValueError(f"unknown walk step {step}")


Progress = Callable[[str], None]


def run_on(name: str, steps: Sequence[Step], progress: Progress = lambda s: None
           ) -> list[Observation]:
    """The common start then `steps` on a fresh cluster of implementation `name`."""
    out: list[Observation] = []
    with running_cluster(topology(), name, TUNABLES, record=False, settle=SETTLE) as lab:
        backend = lab.backend
        states = [WalkNode() for _ in range(NODES)]
        driver = StepDriver(lab)

        def do(step: Step) -> None:
            driver.do(step)
            apply_step(states, step)

        for s in COMMON_START:
            do(s)
        wait_flags(backend, expected_flags(states), f"{name}: common start")
        start = settled_layout(backend)
        progress(f"{name}: common start {start}")
        for k, step in enumerate(steps):
            t0 = time.monotonic()
            do(step)
            flags = wait_flags(backend, expected_flags(states), f"{name}: step {k + 1} {step}")
            layout = {str(ip): p for ip, p in sorted(settled_layout(backend).items())}
            out.append(Observation(flags, layout, round(time.monotonic() - t0, 3)))
            progress(f"{name}: step {k + 1} {step} -> {layout}")
    return out


def run_walk(seed: int, steps: int, progress: Progress = lambda s: None) -> WalkResult:
    """Walk `seed` on native, then on ctdbd; compare after every step."""
    plan = walk(seed, steps)
    native = run_on("native", plan, progress)
    ctdb = run_on("ctdb", plan, progress)
    res = WalkResult(seed, plan)
    states = [WalkNode() for _ in range(NODES)]
    for s in COMMON_START:
        apply_step(states, s)
    prev = {str(ipaddress.IPv4Address(f"203.0.113.{201 + k}")): 0 for k in range(IPS)}
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
    if c.native.layout != c.ctdb.layout:
        diff = {ip: (c.native.layout.get(ip), c.ctdb.layout.get(ip))
                for ip in sorted(set(c.native.layout) | set(c.ctdb.layout))
                if c.native.layout.get(ip) != c.ctdb.layout.get(ip)}
        parts.append(f"layout differs at {diff} (native, ctdb)")
    return " ".join(parts)
