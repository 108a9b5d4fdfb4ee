"""`harness report TIMELINE.jsonl`: the HTML page and Chrome trace of a saved
timeline (from --artifacts, `harness run`, `harness save`, the seed test).

The run's settings come from run.json beside the timeline when it is there
(written with every report), else from --topology / --tunable / the
timeline alone. `--check` also verifies the page is self-contained (no
external URL in any src/href/url()) and prints its size.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from harness.cmdline import UsageError
from harness.record import Timeline
from harness.report.model import RunInfo, build
from harness.report.runinfo import load_info
from harness.topology import load_topology

# what would make a browser fetch something: src/href attributes and CSS url()
EXTERNAL = re.compile(r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?)(?:https?:|//)""", re.I)


def external_refs(text: str) -> list[str]:
    """References in the page that a browser would fetch from the network."""
    return [text[max(0, m.start() - 20):m.end() + 40] for m in EXTERNAL.finditer(text)]


def _load_timeline(path: Path) -> Timeline:
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give a timeline.jsonl that a run saved")
    try:
        return Timeline.load(path)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise UsageError(f"{path}: not a saved timeline (one JSON event a line): "
                         f"{type(e).__name__}: {e}") from None


def _info(args: argparse.Namespace, path: Path) -> RunInfo:
    side = Path(args.info) if args.info else path.parent / "run.json"
    if side.is_file():
        try:
            info = load_info(side)
        except ValueError as e:
            raise UsageError(f"{e}; fix it or pass --info FILE") from None
    else:
        info = RunInfo(path.parent.name or path.stem)
    if args.topology:
        info.topology = load_topology(args.topology)
    for spec in args.tunable:
        name, _, value = spec.partition("=")
        if not value.strip().isdigit():
            raise UsageError(f"--tunable {spec!r}: write NAME=VALUE, e.g. MonitorInterval=3")
        info.tunables[name] = int(value)
    return info


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import page, trace  # matplotlib: imported only when drawing

    path = Path(args.timeline)
    tl = _load_timeline(path)
    info = _info(args, path)
    t = time.monotonic()
    data = build(tl, info)
    out = Path(args.out) if args.out else path.with_name("report.html")
    page.write(data, out)
    built = time.monotonic() - t
    tr = trace.write(data, Path(args.trace) if args.trace else
                     out.with_name(out.stem + ".trace.json"))
    size = out.stat().st_size
    print(f"{out}: {size / 1024:.0f} KiB, {len(data.lanes)} lanes, {len(data.rows)} events, "
          f"built in {built:.2f} s; trace {tr}")
    if args.check:
        refs = external_refs(out.read_text())
        if refs:
            print(f"{out}: NOT self-contained, {len(refs)} external references, first: "
                  f"{refs[0]!r}")
            return 1
        print(f"{out}: self-contained (no external references)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="HTML report and Chrome trace of a saved timeline")
    p.add_argument("timeline", help="timeline.jsonl written by a run")
    p.add_argument("--out", metavar="FILE", help="the HTML page (default: report.html beside "
                   "the timeline)")
    p.add_argument("--trace", metavar="FILE", help="the Chrome trace (default: beside --out)")
    p.add_argument("--info", metavar="FILE", help="run.json (default: beside the timeline)")
    p.add_argument("--topology", metavar="FILE", help="the cluster's topology TOML")
    p.add_argument("--tunable", action="append", default=[], metavar="NAME=VALUE",
                   help="a tunable in force (repeatable; overrides run.json)")
    p.add_argument("--check", action="store_true",
                   help="also check the page is self-contained; exit 1 if not")
    p.set_defaults(fn=cmd_report)
