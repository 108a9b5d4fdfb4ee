"""The lab subcommands of `harness`: up, down, ls, exec, shell, onnode, ctdb,
fault, undo, watch, save.

Bad input (an unknown lab or node, a bad NAME=VALUE, an unknown fault kind
or argument) is one line on stderr and exit 2 (harness.cli.UsageError); a
lab that cannot do what is asked right now (its supervisor died, a daemon
is down) is one line and exit 1. Never a traceback.

exec, shell, onnode and ctdb go straight to the nodes (from access.json),
so they also work while the supervisor is busy, or after it died, until the
lab is removed; fault and undo need the supervisor.
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import hostcheck, runs
from harness.cli import UsageError, bonds_from_specs
from harness.ctdb import TunableError, parse_value
from harness.ctdb.tunables import current
from harness.ctdb_import import format_mapping, import_ctdb_dir
from harness.faults import FaultSpecError, describe_kinds
from harness.lab import backend_class
from harness.labs import access, report, supervisor, watch
from harness.labs.control import LabUnreachable, call
from harness.labs.journal import status_flags
from harness.labs.state import (
    LabError,
    LabFiles,
    LabSpec,
    LabUnavailable,
    NodeAccess,
    all_labs,
    check_new_name,
    create_lab,
    find_lab,
)
from harness.seed import seed_topology
from harness.topology import Topology, load_topology, topology_to_dict

OPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEALTH_WORDS = ("DISCONNECTED", "BANNED", "STOPPED", "DISABLED", "UNHEALTHY",
                "PARTIALLYONLINE", "OK")
HEALTH_TIMEOUT = 3.0  # a daemon that does not answer `status` within this is `?`


def _lab(name: str) -> LabFiles:
    try:
        return find_lab(name)
    except LabError as e:
        raise UsageError(str(e)) from None


def _live(files: LabFiles) -> LabFiles:
    if not files.alive():
        raise LabUnavailable(f"lab {files.name} is dead (its supervisor is gone); "
                             f"`harness save {files.name} DIR` keeps its evidence, "
                             f"`harness down {files.name}` removes it")
    return files


def _seconds(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{option} {text!r}: give a number of seconds above 0, e.g. "
                         f"{option} 10")
    return value


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
    targets = all_labs() if args.all else [_lab(args.lab)]
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
    if not labs:
        print("no labs (`harness up` starts one)")
        return 0
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
    return 0


# -- exec, shell, onnode, ctdb -------------------------------------------------------

def _exec(argv: list[str]) -> int:
    """Become argv (its exit status, tty and signals are the command's own)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        print(f"harness: cannot run {argv[0]}: {e.strerror}", file=sys.stderr)
        return 127


def _target(lab: str, node: str) -> access.Target:
    files = _lab(lab)
    try:
        return access.target(files.access(), node, files.name)
    except LabError as e:
        raise UsageError(str(e)) from None


def _command(words: Sequence[str]) -> list[str]:
    cmd = list(words)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("no command given; write e.g. `harness exec lab1 0 -- ip -br addr`")
    return cmd


def cmd_exec(args: argparse.Namespace) -> int:
    cmd = _command(args.command)
    t = _target(args.lab, args.node)
    if t.note:
        print(f"harness exec: {t.note}", file=sys.stderr)
    return _exec(t.prefix + cmd)


def cmd_shell(args: argparse.Namespace) -> int:
    t = _target(args.lab, args.node)
    if t.note:
        print(f"harness shell: {t.note}", file=sys.stderr)
    print(f"{t.label}: `exit` leaves", file=sys.stderr)
    return _exec(t.prefix + access.shell())


def cmd_onnode(args: argparse.Namespace) -> int:
    """As CTDB's onnode: the command through a shell on each node in turn; with
    several nodes each output follows `>> NODE: <address> <<` (on stderr, after
    a blank line); the status is the last non-zero one."""
    command = " ".join(_command(args.command))
    files = _lab(args.lab)
    acc = files.access()
    try:
        nodes = access.nodes_spec(acc, args.nodes, files.name)
    except LabError as e:
        raise UsageError(str(e)) from None
    rc = 0
    for node in nodes:
        t = access.enter_node(node, files.name)
        if len(nodes) > 1:
            sys.stdout.flush()
            print(f"\n>> NODE: {node.address} <<", file=sys.stderr, flush=True)
        if t.note:
            print(f"harness onnode: {t.note}", file=sys.stderr, flush=True)
        code = subprocess.run([*t.prefix, "sh", "-c", command]).returncode
        rc = code if code != 0 else rc
    return rc


def cmd_ctdb(args: argparse.Namespace) -> int:
    """The implementation's own CLI on a node: `ctdb ARGS` for ctdbd, failoverctl
    for the native one, output and exit status untouched."""
    rest = list(args.rest)
    files = _lab(args.lab)
    acc = files.access()
    node = "0"
    if rest and rest[0].isdigit():
        node = rest.pop(0)
    try:
        n = access.node_of(acc, node, files.name)
    except LabError as e:
        raise UsageError(str(e)) from None
    return _exec(access.cli(n, files.name) + rest)


# -- fault, undo ---------------------------------------------------------------------

def _ask(files: LabFiles, op: str, **kw: Any) -> dict[str, Any]:
    try:
        reply = call(_live(files).socket_path, op, **kw)
    except LabUnreachable as e:
        raise LabUnavailable(f"lab {files.name}: {e}") from None
    if reply.usage:
        raise UsageError(reply.error)
    if not reply.ok:
        raise LabUnavailable(reply.error)
    return reply.data


def cmd_fault(args: argparse.Namespace) -> int:
    if args.list:
        print(describe_kinds())
        return 0
    if args.lab is None or args.kind is None:
        raise UsageError("write `harness fault LAB KIND [ARGS...] [--for S] [--in S]`; "
                         "`harness fault --list` shows the kinds")
    for_s, in_s = _seconds(args.for_s, "--for"), _seconds(args.in_s, "--in")
    files = _lab(args.lab)
    try:
        supervisor.check_fault(args.kind, args.params, int(files.spec().topology["nodes"]))
    except FaultSpecError as e:
        raise UsageError(str(e)) from None
    data = _ask(files, "fault", kind=args.kind, params=list(args.params), for_s=for_s,
                in_s=in_s)
    when = [f"in {in_s:g} s" if in_s else "applied", f"undone after {for_s:g} s" if for_s else ""]
    print(f"{data['id']}  {data['desc']}  ({', '.join(w for w in when if w)})")
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    data = _ask(_lab(args.lab), "undo", target=args.target)
    print("undone: " + (" ".join(data["undone"]) or "nothing was applied"))
    return 0


# -- watch, save ---------------------------------------------------------------------

def cmd_watch(args: argparse.Namespace) -> int:
    files = _lab(args.lab)
    since = _seconds(args.since, "--since")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how watching ends
        watch.follow(files, since=since, from_start=args.from_start, kinds=kinds)
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    files = _lab(args.lab)
    out = Path(args.dir)
    result = report.save(files, out)
    print(f"{files.name}: saved to {out} ({result['events']} events, "
          f"{len(result['faults'])} faults; see summary.json)")
    return 0


# -- the parsers ---------------------------------------------------------------------

Command = Callable[[argparse.Namespace], int]


def _run(fn: Command) -> Command:
    """Wrap a command: LabUnavailable -> one line, exit 1 (bad input is the
    caller's UsageError, exit 2)."""
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except LabUnavailable as e:
            print(f"harness {args.cmd}: {e}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            # the reader went away (`| head`): not an error; keep the exit quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    return wrapped


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start a lab that stays up (a supervisor owns it)")
    p.add_argument("--name", help="the lab's name (default: lab1, lab2, ...)")
    p.add_argument("--topology", metavar="FILE", help="a TOML topology (default: the seed's)")
    p.add_argument("--backend", default="native", help="native (default) or ctdb")
    p.add_argument("--tunable", action="append", default=[], metavar="NAME=VALUE",
                   help="a CTDB tunable, e.g. MonitorInterval=3 (repeatable)")
    p.add_argument("--script-option", action="append", default=[], metavar="NAME=VALUE",
                   help="an event-script option, e.g. CTDB_PARTIALLY_ONLINE_INTERFACES=yes")
    p.add_argument("--event-mode", action="store_true",
                   help="the native implementation's event-driven monitor")
    p.add_argument("--from-ctdb", metavar="DIR", default=None,
                   help="build from a field cluster's /etc/ctdb (with --bond SPEC)")
    p.add_argument("--bond", action="append", default=[], metavar="SPEC",
                   help="with --from-ctdb: e.g. bond0=active-backup:eth1,eth2")
    p.set_defaults(fn=_run(cmd_up))

    p = sub.add_parser("down", help="stop a lab and remove everything it has")
    p.add_argument("lab", nargs="?")
    p.add_argument("--all", action="store_true", help="every lab")
    p.set_defaults(fn=_run(cmd_down))

    p = sub.add_parser("ls", help="the labs: implementation, nodes, age, health per node")
    p.set_defaults(fn=_run(cmd_ls))

    p = sub.add_parser("exec", help="run a command in a node (as its daemon sees it), "
                                    "the client or the switch")
    p.add_argument("lab")
    p.add_argument("node", help="a pnn, client, client:NETWORK or switch")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD...")
    p.set_defaults(fn=_run(cmd_exec))

    p = sub.add_parser("shell", help="a shell in a node, the client or the switch")
    p.add_argument("lab")
    p.add_argument("node", help="a pnn, client, client:NETWORK or switch")
    p.set_defaults(fn=_run(cmd_shell))

    p = sub.add_parser("onnode", help="a command on nodes, as CTDB's onnode")
    p.add_argument("lab")
    p.add_argument("nodes", help="all, N, N,M or N-M")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD...")
    p.set_defaults(fn=_run(cmd_onnode))

    p = sub.add_parser("ctdb", help="the implementation's CLI on a node: "
                                    "harness ctdb LAB [NODE] ARGS...")
    p.add_argument("lab")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="[NODE] status | ip | -X ...")
    p.set_defaults(fn=_run(cmd_ctdb))

    p = sub.add_parser("fault", help="apply a fault from the catalogue (--list)",
                       epilog="kinds:\n" + describe_kinds(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lab", nargs="?")
    p.add_argument("kind", nargs="?")
    p.add_argument("params", nargs="*")
    p.add_argument("--for", dest="for_s", metavar="SECONDS", help="undo it after this long")
    p.add_argument("--in", dest="in_s", metavar="SECONDS", help="apply it after this long")
    p.add_argument("--list", action="store_true", help="the fault kinds and their arguments")
    p.set_defaults(fn=_run(cmd_fault))

    p = sub.add_parser("undo", help="undo a fault (its id, or all)")
    p.add_argument("lab")
    p.add_argument("target", metavar="ID|all")
    p.set_defaults(fn=_run(cmd_undo))

    p = sub.add_parser("watch", help="follow the lab's timeline, one line per event")
    p.add_argument("lab")
    p.add_argument("--since", metavar="SECONDS", help="start with the last SECONDS")
    p.add_argument("--kinds", metavar="K,K...", help="only these kinds (prefix.* works; "
                                                     "outage for client outages)")
    p.add_argument("--from-start", action="store_true", help="everything since the start")
    p.set_defaults(fn=_run(cmd_watch))

    p = sub.add_parser("save", help="timeline, logs, configs and summary.json into DIR")
    p.add_argument("lab")
    p.add_argument("dir")
    p.set_defaults(fn=_run(cmd_save))
