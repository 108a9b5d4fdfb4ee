"""A lab's files, and finding a lab by name.

A lab is a run (harness.runs) whose state directory has a `lab/` inside:

    /run/fth/<run>/lab/lab.json        LabSpec: what to build (written by `up`
                                       or a hand-over, before the supervisor)
    /run/fth/<run>/lab/access.json     LabAccess: how to enter each node and run
                                       its CLI (the supervisor, whenever a
                                       daemon changes)
    /run/fth/<run>/lab/timeline.jsonl  every timeline event (the journal)
    /run/fth/<run>/lab/supervisor.log  the supervisor's output
    /run/fth/<run>/lab/control.sock    the supervisor's socket

Living inside the run's directory, everything a lab leaves carries its run
id, and the reaper removes a lab whose supervisor died together with the
rest of its run. The supervisor is the run's owner (owner.json), so a lab
is alive exactly while its supervisor is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import runs
from harness.topology import Topology, topology_from_dict

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


class LabError(Exception):
    """Bad input about labs (no such lab or node, a taken name); str() is one
    line saying how to fix it. The command exits 2."""


class LabUnavailable(Exception):
    """The lab exists but cannot do this now (its supervisor died, a daemon is
    down, it is still starting). The command exits 1."""


@dataclass
class LabSpec:
    """What a lab is: everything its supervisor needs to build (or adopt) it."""

    name: str
    run_id: str
    implementation: str
    topology: dict[str, Any]  # topology_to_dict: the keys of a TOML topology file
    tunables: dict[str, int] = field(default_factory=dict)
    script_options: dict[str, str] = field(default_factory=dict)
    event_mode: bool = False
    adopt: bool = False  # the cluster runs already (a failed test's): take it over
    origin: str = "harness up"
    created: float = field(default_factory=time.time)  # wall clock, for `ls`
    mapping: dict[str, str] = field(default_factory=dict)  # field -> lab, from --from-ctdb

    def build_topology(self) -> Topology:
        return topology_from_dict(self.topology, f"lab {self.name}")

    def public_ips(self) -> list[str]:
        return [line.split()[0].split("/")[0] for line in self.topology["public_addresses"]]


@dataclass
class NodeAccess:
    """How the CLI reaches one node without going through the supervisor.

    `enter` and `cli` work while the daemon (daemon_pid, daemon_start) runs:
    they may name it (ctdbd's namespaces are entered through its pid), so
    they are used only after checking that this very process still lives.
    """

    pnn: int
    address: str  # the private address (onnode's header)
    netns: str
    daemon_pid: int | None
    daemon_start: int | None
    enter: list[str] | None  # argv prefix: a command inside the node as its daemon sees it
    cli: list[str] | None  # argv prefix: the implementation's CLI on this node
    log: str
    config: list[str]


@dataclass
class LabAccess:
    """What the supervisor publishes once the lab runs (and after every fault)."""

    nodes: list[NodeAccess]
    clients: dict[str, str]  # public network -> client namespace
    switch: str
    t0: float  # monotonic: the timeline's zero, when the supervisor started
    ready_at: float  # monotonic: when the lab was first seen converged (or adopted)
    poll_interval: float  # s between status polls of a node: the flags' time resolution


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Readers never see half a file: write aside, then rename over."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


class LabFiles:
    """The files of one lab, by run id."""

    def __init__(self, run_id: str, root: Path | None = None) -> None:
        self.run = runs.RunState(run_id, runs.STATE_ROOT if root is None else root)
        self.dir = self.run.dir / "lab"
        self.spec_path = self.dir / "lab.json"
        self.access_path = self.dir / "access.json"
        self.journal_path = self.dir / "timeline.jsonl"
        self.log_path = self.dir / "supervisor.log"
        self.socket_path = self.dir / "control.sock"
        self._spec: LabSpec | None = None

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def spec(self) -> LabSpec:
        if self._spec is None:
            try:
                self._spec = LabSpec(**json.loads(self.spec_path.read_text()))
            except (OSError, ValueError, TypeError) as e:
                raise LabError(f"run {self.run_id}: no readable {self.spec_path} ({e})") from None
        return self._spec

    @property
    def name(self) -> str:
        return self.spec().name

    def write_spec(self, spec: LabSpec) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_json(self.spec_path, dataclasses.asdict(spec))
        self._spec = spec

    def access(self) -> LabAccess:
        try:
            data = json.loads(self.access_path.read_text())
        except (OSError, ValueError) as e:
            raise LabUnavailable(f"lab {self.name} is not ready (no {self.access_path.name}: "
                                 f"{e.__class__.__name__}); try again once `harness up` has "
                                 "returned") from None
        nodes = [NodeAccess(**n) for n in data.pop("nodes")]
        return LabAccess(nodes=nodes, **data)

    def write_access(self, access: LabAccess) -> None:
        _write_json(self.access_path, dataclasses.asdict(access))

    # -- the supervisor ----------------------------------------------------------
    def supervisor(self) -> tuple[int, int | None] | None:
        """The owner's (pid, start time), as the run records it."""
        o = self.run.owner()
        return (int(o["pid"]), o.get("start")) if o else None

    def alive(self) -> bool:
        """The supervisor lives (a lab is alive exactly while it does)."""
        return self.run.is_alive()


def all_labs(root: Path | None = None) -> list[LabFiles]:
    """Every lab with a readable spec, by name."""
    base = runs.STATE_ROOT if root is None else root
    out = []
    with contextlib.suppress(OSError):
        for d in base.iterdir():
            files = LabFiles(d.name, base)
            with contextlib.suppress(LabError):
                files.spec()
                out.append(files)
    return sorted(out, key=lambda f: f.name)


def find_lab(name: str, root: Path | None = None) -> LabFiles:
    for files in all_labs(root):
        if files.name == name:
            return files
    known = ", ".join(f.name for f in all_labs(root)) or "none"
    raise LabError(f"no lab named {name!r} (labs: {known}); `harness ls` lists them, "
                   "`harness up` starts one")


def check_new_name(name: str, root: Path | None = None) -> str:
    """A name a new lab may take: well formed and not taken."""
    if not NAME.fullmatch(name):
        raise LabError(f"--name {name!r}: use letters, digits, '_', '.' or '-' (up to 40, "
                       "starting with a letter or digit)")
    if any(f.name == name for f in all_labs(root)):
        raise LabError(f"--name {name}: a lab of that name exists; choose another or "
                       f"`harness down {name}` first")
    return name


@contextlib.contextmanager
def _names_locked(root: Path) -> Iterator[None]:
    """One `up` at a time picks a name (flock on the state root directory itself,
    so the lock leaves no file behind)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def create_lab(spec: LabSpec, root: Path | None = None) -> LabFiles:
    """Name the lab (spec.name, or the first free lab1, lab2, ...) and write its
    spec into its run's directory, which must exist (a claimed run)."""
    base = runs.STATE_ROOT if root is None else root
    with _names_locked(base):
        if spec.name:
            check_new_name(spec.name, base)
        else:
            taken = {f.name for f in all_labs(base)}
            spec.name = next(f"lab{i}" for i in range(1, len(taken) + 2)
                             if f"lab{i}" not in taken)
        files = LabFiles(spec.run_id, base)
        if not files.run.dir.is_dir():
            raise LabError(f"run {spec.run_id} has no state directory {files.run.dir}")
        files.write_spec(spec)
    return files
