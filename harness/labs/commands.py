"""The lab subcommands of `harness`: exec, shell, onnode, ctdb, fault, undo,
watch, save, and the parsers of all of them (up, down and ls are in
harness.labs.lifecycle).

Bad input (an unknown lab or node, a bad NAME=VALUE, an unknown fault kind
or argument) is one line on stderr and exit 2 (harness.cmdline.UsageError);
a lab that cannot do what is asked right now (its supervisor died, a daemon
is down) is one line and exit 1. Never a traceback.

exec, shell, onnode and ctdb go straight to the nodes (from access.json),
so they also work while the supervisor is busy, or after it died, until the
lab is removed; fault and undo need the supervisor.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.cmdline import UsageError, seconds_option
from harness.faults import FaultSpecError, describe_kinds
from harness.labs import access, report, supervisor, watch
from harness.labs.control import LabUnreachable, call
from harness.labs.lifecycle import cmd_down, cmd_ls, cmd_up
from harness.labs.lookup import lab_by_name, live, run_command
from harness.labs.state import (
    LabError,
    LabFiles,
    LabUnavailable,
)

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
    files = lab_by_name(lab)
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
    files = lab_by_name(args.lab)
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
    files = lab_by_name(args.lab)
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
        reply = call(live(files).socket_path, op, **kw)
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
    for_s, in_s = seconds_option(args.for_s, "--for"), seconds_option(args.in_s, "--in")
    files = lab_by_name(args.lab)
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
    data = _ask(lab_by_name(args.lab), "undo", target=args.target)
    print("undone: " + (" ".join(data["undone"]) or "nothing was applied"))
    return 0


# -- watch, save ---------------------------------------------------------------------

def cmd_watch(args: argparse.Namespace) -> int:
    files = lab_by_name(args.lab)
    since = seconds_option(args.since, "--since")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how watching ends
        watch.follow(files, since=since, from_start=args.from_start, kinds=kinds)
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    files = lab_by_name(args.lab)
    out = Path(args.dir)
    result = report.save(files, out)
    print(f"{files.name}: saved to {out} ({result['events']} events, "
          f"{len(result['faults'])} faults; see summary.json)")
    return 0


# -- the parsers ---------------------------------------------------------------------

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
    p.set_defaults(fn=run_command(cmd_up))

    p = sub.add_parser("down", help="stop a lab and remove everything it has")
    p.add_argument("lab", nargs="?")
    p.add_argument("--all", action="store_true", help="every lab")
    p.set_defaults(fn=run_command(cmd_down))

    p = sub.add_parser("ls", help="the labs: implementation, nodes, age, health per node")
    p.set_defaults(fn=run_command(cmd_ls))

    p = sub.add_parser("exec", help="run a command in a node (as its daemon sees it), "
                                    "the client or the switch")
    p.add_argument("lab")
    p.add_argument("node", help="a pnn, client, client:NETWORK or switch")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD...")
    p.set_defaults(fn=run_command(cmd_exec))

    p = sub.add_parser("shell", help="a shell in a node, the client or the switch")
    p.add_argument("lab")
    p.add_argument("node", help="a pnn, client, client:NETWORK or switch")
    p.set_defaults(fn=run_command(cmd_shell))

    p = sub.add_parser("onnode", help="a command on nodes, as CTDB's onnode")
    p.add_argument("lab")
    p.add_argument("nodes", help="all, N, N,M or N-M")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD...")
    p.set_defaults(fn=run_command(cmd_onnode))

    p = sub.add_parser("ctdb", help="the implementation's CLI on a node: "
                                    "harness ctdb LAB [NODE] ARGS...")
    p.add_argument("lab")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="[NODE] status | ip | -X ...")
    p.set_defaults(fn=run_command(cmd_ctdb))

    p = sub.add_parser("fault", help="apply a fault from the catalogue (--list)",
                       epilog="kinds:\n" + describe_kinds(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lab", nargs="?")
    p.add_argument("kind", nargs="?")
    p.add_argument("params", nargs="*")
    p.add_argument("--for", dest="for_s", metavar="SECONDS", help="undo it after this long")
    p.add_argument("--in", dest="in_s", metavar="SECONDS", help="apply it after this long")
    p.add_argument("--list", action="store_true", help="the fault kinds and their arguments")
    p.set_defaults(fn=run_command(cmd_fault))

    p = sub.add_parser("undo", help="undo a fault (its id, or all)")
    p.add_argument("lab")
    p.add_argument("target", metavar="ID|all")
    p.set_defaults(fn=run_command(cmd_undo))

    p = sub.add_parser("watch", help="follow the lab's timeline, one line per event")
    p.add_argument("lab")
    p.add_argument("--since", metavar="SECONDS", help="start with the last SECONDS")
    p.add_argument("--kinds", metavar="K,K...", help="only these kinds (prefix.* works; "
                                                     "outage for client outages)")
    p.add_argument("--from-start", action="store_true", help="everything since the start")
    p.set_defaults(fn=run_command(cmd_watch))

    p = sub.add_parser("save", help="timeline, logs, configs and summary.json into DIR")
    p.add_argument("lab")
    p.add_argument("dir")
    p.set_defaults(fn=run_command(cmd_save))
