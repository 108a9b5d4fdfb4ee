"""`harness up`, `down` and `ls`: a lab's life. `up` starts a supervisor
(harness.labs.supervisor) and returns once it reports the cluster ready;
`down` asks it to stop, or removes what a dead one left; `ls` lists the labs
with a one-word health per node.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from harness import hostcheck, runs
from harness.cmdline import UsageError, bonds_from_specs
from harness.ctdb import TunableError, parse_value
from harness.ctdb.tunables import current
from harness.ctdb_import import format_mapping, import_ctdb_dir
from harness.lab import backend_class
from harness.labs import access, supervisor
from harness.labs.control import LabUnreachable, call
from harness.labs.journal import status_flags
from harness.labs.lookup import lab_by_name
from harness.labs.state import (
    LabError,
    LabFiles,
    LabSpec,
    LabUnavailable,
    NodeAccess,
    all_labs,
    check_new_name,
    create_lab,
)
from harness.seed import seed_topology
from harness.topology import Topology, load_topology, topology_to_dict

OPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEALTH_WORDS = ("DISCONNECTED", "BANNED", "STOPPED", "DISABLED", "UNHEALTHY",
                "PARTIALLYONLINE", "OK")
HEALTH_TIMEOUT = 3.0  # a daemon that does not answer `status` within this is `?`


# -- up ------------------------------------------------------------------------------

@dataclass
class Build:
    """What `up` builds: the topology, and the settings it runs with."""

    topology: Topology
    tunables: dict[str, int] = field(default_factory=dict)
    script_options: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)  # field -> lab (--from-ctdb)
    warnings: list[str] = field(default_factory=list)  # what the import does not reproduce


def parse_tunable(text: str) -> tuple[str, int]:
    """`--tunable NAME=VALUE`, checked against CTDB 4.17's table (its spelling)."""
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise UsageError(f"--tunable {text!r}: write NAME=VALUE, e.g. MonitorInterval=3")
    try:
        entry = current(name.strip())
        return entry.name, parse_value(value, entry.name)
    except TunableError as e:
        raise UsageError(f"--tunable {text!r}: {e}") from None


def parse_script_option(text: str) -> tuple[str, str]:
    """`--script-option NAME=VALUE` (a shell variable of script.options)."""
    name, eq, value = text.partition("=")
    if not eq or not OPTION_NAME.fullmatch(name):
        raise UsageError(f"--script-option {text!r}: write NAME=VALUE with a shell variable "
                         "name, e.g. CTDB_PARTIALLY_ONLINE_INTERFACES=yes")
    return name, value


def what_to_build(args: argparse.Namespace) -> Build:
    """The cluster `up` was asked for; bad input is a UsageError."""
    if args.from_ctdb is not None:
        if args.topology:
            raise UsageError("--from-ctdb DIR and --topology FILE both say what to build; "
                             "give one")
        imported = import_ctdb_dir(args.from_ctdb, bonds_from_specs(args.bond))
        build = Build(imported.topology, dict(imported.tunables),
                      dict(imported.script_options), dict(imported.mapping),
                      list(imported.warnings))
    elif args.bond:
        raise UsageError("--bond SPEC only goes with --from-ctdb DIR")
    else:
        build = Build(load_topology(args.topology) if args.topology else seed_topology())
    # given on the command line, they override what the field's files set
    build.tunables.update(parse_tunable(t) for t in args.tunable)
    build.script_options.update(parse_script_option(o) for o in args.script_option)
    return build


def how_to_use(spec: LabSpec) -> str:
    """The lab commands with the lab's real name, for `up` and a kept test."""
    n = spec.name
    top = spec.build_topology()
    node = min(2, top.nodes - 1)
    public = next((i for i in top.interfaces
                   if i.network != top.private_network), top.interfaces[0])
    lines = [
        ("harness ls", "every lab, its nodes' health"),
        (f"harness ctdb {n} status", f"node 0's view; `harness ctdb {n} {node} ip`"),
        (f"harness shell {n} {node}", "or client, switch; `harness exec` runs one command"),
        (f"harness onnode {n} all -- ip -br addr", "as CTDB's onnode"),
        (f"harness fault {n} pull-cable {node} {public.ports[0]} --for 10",
         "`harness fault --list`; `harness undo`"),
        (f"harness watch {n}", "the timeline as it happens; Ctrl-C ends it"),
        (f"harness save {n} DIR", "timeline, logs, configs, summary.json"),
        (f"harness down {n}", "stop it, remove everything"),
    ]
    width = max(len(cmd) for cmd, _ in lines)
    return "\n".join(f"  {cmd:<{width}}  # {why}" for cmd, why in lines)


def cmd_up(args: argparse.Namespace) -> int:
    why = hostcheck.why_cannot_run()
    if why:
        raise UsageError(why)
    build = what_to_build(args)
    try:
        cls = backend_class(args.backend)
    except ValueError as e:
        raise UsageError(str(e)) from None
    unavailable = cls.unavailable()
    if unavailable:
        raise UsageError(f"--backend {args.backend}: {unavailable}")
    if args.event_mode and cls.name != "native":
        raise UsageError(f"--event-mode: {cls.name} has no event-driven monitor; it is the "
                         "native implementation's (--backend native)")
    if args.name is not None:
        try:
            check_new_name(args.name)
        except LabError as e:
            raise UsageError(str(e)) from None
    state = runs.RunState(runs.new_run_id()).claim()
    for warning in build.warnings:
        print(f"harness up: warning: {warning}", file=sys.stderr)
    spec = LabSpec(name=args.name or "", run_id=state.run_id, implementation=cls.name,
                   topology=topology_to_dict(build.topology), tunables=build.tunables,
                   script_options=build.script_options, event_mode=args.event_mode,
                   origin=f"harness up --from-ctdb {args.from_ctdb}" if args.from_ctdb
                   else "harness up", mapping=build.mapping)
    try:
        files = create_lab(spec)
    except LabError as e:
        state.remove()
        raise UsageError(str(e)) from None
    except BaseException:
        state.remove()
        raise
    try:
        took = supervisor.start(files)
    except supervisor.SupervisorFailed as e:
        print(f"harness up: {spec.name}: {e}", file=sys.stderr)
        return 1
    top = build.topology
    bonds = ", ".join(f"{i.name} over {','.join(i.bond.slaves)}" for i in top.interfaces
                      if i.bond) or "no bonds"
    print(f"{spec.name} is up: {cls.name}, {top.nodes} nodes ({bonds}), run {spec.run_id}, "
          f"ready in {took:.1f} s")
    print(how_to_use(spec))
    if build.mapping:
        print("field -> lab (kept in the lab's lab.json, which `harness save` copies):")
        for line in format_mapping(build.mapping).splitlines():
            print(f"  {line}")
    return 0


# -- down ----------------------------------------------------------------------------

def down(files: LabFiles) -> list[str]:
    """Stop the lab's supervisor (it removes everything) and wait for it to go;
    if it is dead or will not go, remove what is left through the reaper."""
    sup = files.supervisor()
    if sup is not None and files.alive():
        pid, start = sup
        try:
            call(files.socket_path, "stop", timeout=10)
        except LabUnreachable:
            if runs.alive(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + supervisor.STOP_TIMEOUT
        while runs.alive(pid, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        if runs.alive(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while runs.alive(pid, start):
                time.sleep(0.05)
    return runs.reap(only=(files.run_id,))


def cmd_down(args: argparse.Namespace) -> int:
    if args.all == (args.lab is not None):
        raise UsageError("name one lab or give --all (`harness ls` lists them)")
    targets = all_labs() if args.all else [lab_by_name(args.lab)]
    for files in targets:
        name = files.name
        removed = down(files)
        extra = f" (removed what it left: {len(removed)} objects)" if removed else ""
        print(f"{name} is down{extra}")
    if args.all and not targets:
        print("no labs")
    return 0


# -- ls ------------------------------------------------------------------------------

def _word(flags: Sequence[str]) -> str:
    """One word per node, the most telling of its flags."""
    return next((w for w in HEALTH_WORDS if w in flags), flags[0] if flags else "?")


def _status(node: NodeAccess, lab: str) -> dict[int, tuple[str, ...]] | None:
    try:
        argv = access.cli(node, lab) + ["-X", "status"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=HEALTH_TIMEOUT,
                           stdin=subprocess.DEVNULL)
        return status_flags(r.stdout) if r.returncode == 0 else None
    except (LabUnavailable, subprocess.TimeoutExpired, OSError, ValueError):
        return None


def health(files: LabFiles) -> list[str]:
    """Per node: its flags as the lowest-numbered answering node reports them,
    `?` for a node whose own daemon does not answer."""
    nodes = files.access().nodes
    with ThreadPoolExecutor(len(nodes)) as pool:
        views = list(pool.map(lambda n: _status(n, files.name), nodes))
    seen = next((v for v in views if v), None)
    return ["?" if views[n.pnn] is None or seen is None else _word(seen.get(n.pnn, ()))
            for n in nodes]


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def cmd_ls(args: argparse.Namespace) -> int:
    labs = all_labs()
    _print_labs(labs)
    # a test's cluster kept by --keep-on-failure is a lab once its supervisor
    # took it over; one kept before it was up (setup failed) is only a run
    bare = [rid for rid in runs.kept_run_ids() if rid not in {f.run_id for f in labs}]
    for rid in bare:
        spaces = runs.RunState(rid).namespaces()
        print(f"kept run {rid} (--keep-on-failure, no lab): {len(spaces)} namespace(s) "
              f"{' '.join(spaces)}; `harness gc --force {rid}` removes it")
    return 0


def _print_labs(labs: list[LabFiles]) -> None:
    if not labs:
        print("no labs (`harness up` starts one)")
        return
    rows = [("NAME", "IMPL", "NODES", "AGE", "RUN", "HEALTH")]
    for files in labs:
        spec = files.spec()
        if not files.alive():
            state = "dead"
        else:
            try:
                state = " ".join(f"{p}:{w}" for p, w in enumerate(health(files)))
            except LabUnavailable:
                state = "starting"
        rows.append((spec.name, spec.implementation, str(spec.topology["nodes"]),
                     _age(time.time() - spec.created), spec.run_id, state))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])


