"""`harness` command: gc (the reaper), bench, topology checks, import of a field
cluster's /etc/ctdb, the demo, scenario files (`harness run`), run reports
(`harness report`), and labs that
stay up (up, ls, shell, ctdb, fault, watch, save, down: harness.labs).

Bad input gets one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness import bench, demo, runs, stats
from harness.backends import ctdb_install
from harness.chaos import command as chaos_command
from harness.cmdline import OneLineParser, UsageError, bonds_from_specs
from harness.ctdb_import import CtdbImportError, format_mapping, import_ctdb_dir
from harness.labs import commands as lab_commands
from harness.report import command as report_command
from harness.scenario import command as scenario_command
from harness.topology import Topology, TopologyError, load_topology


def cmd_gc(args: argparse.Namespace) -> int:
    only = tuple(args.runs) or None
    unknown = sorted(set(args.runs) - runs.known_run_ids())
    if unknown:
        print(f"harness gc: no run {', '.join(unknown)} here (`harness ls` lists labs with "
              f"their run ids; leave RUNID out to remove every dead run)", file=sys.stderr)
        return 2
    removed = runs.reap(force=tuple(args.force), kept=args.kept, only=only)
    for line in removed:
        print(f"removed {line}")
    if not removed:
        print("nothing to remove")
    left = [rid for rid in runs.kept_run_ids() if only is None or rid in only]
    if left:
        print(f"left kept run(s) {', '.join(left)} (--keep-on-failure); "
              f"`harness gc --force RUNID` or `harness gc --kept` removes them")
    return 0


def print_topology(label: str, top: Topology) -> None:
    """The summary `harness topology` and `harness import-ctdb` print."""
    print(f"{label}: OK, {top.nodes} nodes, networks "
          f"{', '.join(f'{n.name}={n.subnet}' for n in top.networks)}")
    for iface in top.interfaces:
        extra = f" bond {iface.bond.mode} over {','.join(iface.bond.slaves)}" if iface.bond else ""
        print(f"  {iface.name} on {iface.network}{extra}")
    print("  public_addresses:")
    for pa in top.public_addresses:
        print(f"    {pa.line()}")


def cmd_topology(args: argparse.Namespace) -> int:
    print_topology(args.file, load_topology(args.file))
    return 0



def cmd_import_ctdb(args: argparse.Namespace) -> int:
    imported = import_ctdb_dir(args.dir, bonds_from_specs(args.bond), args.private_iface)
    for w in imported.warnings:
        print(f"harness import-ctdb: warning: {w}", file=sys.stderr)
    print_topology(args.dir, imported.topology)
    print("tunables:" if imported.tunables else "tunables: none set (CTDB's defaults)")
    for name, value in imported.tunables.items():
        print(f"  {name}={value}")
    print("script options:" if imported.script_options else "script options: none")
    for name, text in imported.script_options.items():
        print(f"  {name}={text}")
    print(f"cluster lock: {imported.cluster_lock or 'none'} (informational)")
    print("mapping (field -> harness):")
    for line in format_mapping(imported.mapping).splitlines():
        print(f"  {line}")
    if args.save_topology:
        imported.save_topology(args.save_topology)
        print(f"topology written to {args.save_topology}")
    if args.save_mapping:
        imported.save_mapping(args.save_mapping)
        print(f"mapping written to {args.save_mapping}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="harness", description=__doc__)
    p.add_argument("--ctdb-prefix", metavar="DIR", default=None,
                   help="the ctdb backend runs the Samba installed under DIR instead of "
                        "Debian's ctdb (also: FTH_CTDB_PREFIX)")
    sub = p.add_subparsers(dest="cmd", required=True)
    gc = sub.add_parser("gc", help="remove what dead runs left behind")
    gc.add_argument("runs", nargs="*", metavar="RUNID",
                    help="only these runs (default: every dead run)")
    gc.add_argument("--force", nargs="*", default=[], metavar="RUNID",
                    help="also remove these kept runs (--keep-on-failure)")
    gc.add_argument("--kept", action="store_true", help="also remove every kept run")
    gc.set_defaults(fn=cmd_gc)
    top = sub.add_parser("topology", help="check a TOML topology file and print it")
    top.add_argument("file")
    top.set_defaults(fn=cmd_topology)
    imp = sub.add_parser("import-ctdb", help="turn a field cluster's /etc/ctdb into a topology")
    imp.add_argument("dir", help="a copy of the field's /etc/ctdb")
    imp.add_argument("--bond", action="append", default=[], metavar="SPEC",
                     help="a bond the field has, NAME=MODE:SLAVE[,SLAVE...][:miimon=N], "
                     "e.g. bond0=active-backup:eth1,eth2 (repeatable)")
    imp.add_argument("--private-iface", default="eth0", metavar="NAME",
                     help="the field's private interface (not in /etc/ctdb; default eth0)")
    imp.add_argument("--save-topology", metavar="FILE", help="write the topology as TOML")
    imp.add_argument("--save-mapping", metavar="FILE", help="write the mapping as JSON")
    imp.set_defaults(fn=cmd_import_ctdb)
    _add_late_commands(sub)
    return p


def _add_late_commands(sub: argparse._SubParsersAction) -> None:
    """Commands that live in their own modules (demo, stats, run, the lab commands)."""
    demo.add_parser(sub)
    bench.add_parser(sub)
    stats.add_parser(sub)
    chaos_command.add_parser(sub)
    scenario_command.add_parser(sub)
    report_command.add_parser(sub)
    lab_commands.add_parsers(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        ctdb_install.choose(args.ctdb_prefix)
    except ctdb_install.CtdbInstallError as e:
        print(f"harness: {e}", file=sys.stderr)
        return 2
    try:
        return int(args.fn(args) or 0)
    except (UsageError, TopologyError, CtdbImportError) as e:
        print(f"harness {args.cmd}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
