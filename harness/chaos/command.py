"""`harness chaos`: a chaos soak (a benchmark, not a test).

    harness chaos --nodes 5 --faults 50 --seed 7 [--backend native|ctdb] [--shrink]

Prints one line per round (its faults, the measured detection and takeover
next to their bounds); the first problem stops the run and prints the seed,
the fault sequence up to there and the command that replays it; --shrink then
reduces the sequence to a short one that still fails. Exit status: 0 clean,
1 a violation (or a daemon traceback), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from harness import hostcheck
from harness.assertions import Bounds
from harness.builder import kernel_has_bonding
from harness.chaos.plan import KINDS, Plan, Round, make_plan
from harness.chaos.runner import RoundResult, SoakResult, run_plan
from harness.chaos.shrink import ddmin, sub_plan
from harness.cmdline import positive_int, probability
from harness.ctdb import tunables
from harness.lab import running_cluster
from harness.topology import Topology, default_topology

# CTDB's names; a short keepalive (1 s x 3) so that a dead daemon is seen in
# seconds, not CTDB's default 30: a soak of hundreds of faults must fit a night.
# A short ban (5 s, not 300): some faults get a node banned as CTDB bans it (a
# deleted interface fails two takeips before the monitor sees it gone); the
# ban is reported, and the node is back before the round must converge.
TUNABLES = {"MonitorInterval": 3, "RerecoveryTimeout": 1, "KeepaliveInterval": 1,
            "KeepaliveLimit": 3, "RecoveryBanPeriod": 5}


def _topology(nodes: int) -> Topology:
    top = default_topology(nodes)
    return top if kernel_has_bonding() else top.plain()


OVERLAP = 0.2  # most rounds one fault, measured; some several at once

STOP = threading.Event()  # set by SIGTERM/SIGINT: finish the round, then report


def soak(plan: Plan, top: Topology, backend: str, quiet: bool = False,
         out_dir: Path | None = None) -> SoakResult:
    def report(r: RoundResult) -> None:
        if quiet:
            return
        ms = "; ".join(m.describe() for m in r.measures)
        verdict = "PROBLEM: " + " | ".join(r.problems) if r.problems else "ok"
        print(f"round {r.index:>4}/{len(plan.rounds)}: {r.round.describe()}"
              + (f"; {ms}" if ms else "")
              + (f"; banned: {', '.join(r.bans)}" if r.bans else "") + f"  {verdict}", flush=True)

    with running_cluster(top, backend, TUNABLES, name="chaos", probe=True,
                         probe_max_s=7 * 24 * 3600) as lab:
        return run_plan(lab, plan, report, out_dir, STOP.is_set)


def _longest() -> float:
    """Longest fault: past detection (the slower of monitor and keepalive) and
    takeover, so most faults are seen through, while the shortest (1 s) are
    gone before anyone looks."""
    def t(name: str) -> int:
        return TUNABLES.get(name, tunables.lookup(name).default)

    b = Bounds(t("MonitorInterval"), t("RecoverInterval"), t("KeepaliveInterval"),
               t("KeepaliveLimit"), t("TakeoverTimeout"))
    return round(max(b.detection(), b.keepalive) + b.takeover + 2, 1)


def summary(res: SoakResult) -> dict:
    det, tko = res.worst("detection"), res.worst("takeover")
    failed = res.failed
    return {"seed": res.plan.seed, "nodes": res.plan.nodes, "rounds_run": len(res.rounds),
            "faults_run": sum(len(r.round.steps) for r in res.rounds),
            "violations": failed.problems if failed else [], "daemon_crashes": res.crashes,
            "measured": sum(len(r.measures) for r in res.rounds),
            "max_detection": det.describe() if det else None,
            "max_takeover": tko.describe() if tko else None,
            "bans": [f"round {r.index}: {b} ({r.round.describe()})"
                     for r in res.rounds for b in r.bans]}


def cmd_chaos(args: argparse.Namespace) -> int:
    why = hostcheck.why_cannot_run()
    if why:
        print(f"harness chaos: {why}", file=sys.stderr)
        return 2
    only = None
    if args.kinds:
        only = [k.strip() for k in args.kinds.split(",") if k.strip()]
        bad = [k for k in only if k not in KINDS]
        if bad:
            print(f"harness chaos: --kinds: unknown kind {bad[0]!r}; one of: {', '.join(KINDS)}",
                  file=sys.stderr)
            return 2
    # a soak runs for hours and is stopped with kill or Ctrl-C: the round under
    # way ends, the summary so far is printed and teardown removes the cluster
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    top = _topology(args.nodes)
    plan = make_plan(args.seed, top, args.faults, longest=_longest(), overlap=args.overlap,
                     only=only)
    print(f"chaos: {args.backend}, {args.nodes} nodes, {plan.faults} faults in "
          f"{len(plan.rounds)} rounds, seed {args.seed}", flush=True)
    out_dir = Path(args.out) / f"{args.backend}-seed{args.seed}"
    res = soak(plan, top, args.backend, out_dir=out_dir)
    out = summary(res)
    out["stopped_by_signal"] = STOP.is_set()
    failed = res.failed
    if failed:
        print(f"\nVIOLATION in round {failed.index}: " + "\n  ".join(failed.problems))
        print(f"seed {args.seed}; fault sequence up to there:")
        print(sub_plan(plan, list(plan.rounds[:failed.index])).sequence())
        print(f"replay: harness chaos --nodes {args.nodes} --faults {args.faults} "
              f"--seed {args.seed} --backend {args.backend}"
              + (f" --kinds {args.kinds}" if args.kinds else "")
              + (f" --overlap {args.overlap}" if args.overlap != OVERLAP else ""))
        if args.shrink:
            out["shrunk"] = _shrink(plan, failed.index, top, args)
    if res.crashes:
        print("daemon tracebacks: " + "; ".join(res.crashes))
    if failed or res.crashes:
        print(f"timeline and daemon logs: {out_dir}/")
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 1 if failed or res.crashes else 0


def _stop(signum: int, frame: object) -> None:
    print(f"harness chaos: signal {signum}: stopping after this round", flush=True)
    STOP.set()


def _shrink(plan: Plan, upto: int, top: Topology, args: argparse.Namespace) -> list[str]:
    def fails(rounds: list[Round]) -> bool:
        for _ in range(args.shrink_tries):
            r = soak(sub_plan(plan, rounds), top, args.backend, quiet=True)
            if r.failed:
                return True
        return False

    print("shrinking (each candidate on a fresh cluster)...", flush=True)
    small = ddmin(list(plan.rounds[:upto]), fails, args.shrink_budget)
    print(f"shrunk to {len(small)} round(s) that still fail:")
    print(sub_plan(plan, small).sequence())
    return [r.describe() for r in small]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chaos", help="random faults with continuous invariant checks "
                       "(a benchmark, not a test)")
    p.add_argument("--nodes", type=positive_int, default=3)
    p.add_argument("--faults", type=positive_int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--backend", choices=["native", "ctdb"], default="native")
    p.add_argument("--kinds", help="only these kinds, comma-separated (default: all)")
    p.add_argument("--overlap", type=probability, default=OVERLAP,
                   help="the chance that a round gets one more fault at once, on another "
                   f"node (default {OVERLAP}; at most half the nodes are faulted at once)")
    p.add_argument("--shrink", action="store_true", help="on a violation, reduce the sequence")
    p.add_argument("--shrink-tries", type=positive_int, default=2,
                   help="runs per candidate (a failure may need luck to recur)")
    p.add_argument("--shrink-budget", type=positive_int, default=12, help="candidates at most")
    p.add_argument("--json", help="write the summary there too")
    p.add_argument("--out", default="artifacts/chaos",
                   help="where a failed run leaves its timeline and logs")
    p.set_defaults(fn=cmd_chaos)
