"""`harness stats`: repeat the pulled-cable scenario at random fault phases and
print the distributions of detection delay, takeover delay and client outage.

A benchmark, not a test: it checks the seed's claim that detection takes
about half the monitor interval on average and about the interval at worst.
Each trial waits until the monitor schedule is back to its steady gap
(5 s after a health change, then MonitorInterval), then a uniformly random
phase within one interval, then runs the seed's experiment (harness.seed):
node 2's public cable pulled, UNHEALTHY and the takeover checked against
bounds from the tunables.

`--compare` runs the trials on the native implementation (poll mode) and on
real ctdbd, and tests the two detection distributions against each other and
against the seed's model (harness.detection_compare).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass

from harness import hostcheck
from harness.assertions import Bounds
from harness.lab import running_cluster
from harness.seed import run_seed
from harness.topology import default_topology


@dataclass
class Trial:
    detection: float
    takeover: float
    outage: float


def _dist(name: str, xs: list[float]) -> str:
    if not xs:
        return f"{name:<16} (no data)"
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return (f"{name:<16} {min(xs):8.3f} {statistics.median(xs):8.3f} "
            f"{statistics.mean(xs):8.3f} {p95:8.3f} {max(xs):8.3f}")


def run_trials(backend_name: str, trials: int, interval: int, event_mode: bool,
               seed: int) -> tuple[list[Trial], list[str]]:
    """The trials' measurements, and the bound violations seen (one line each)."""
    rng = random.Random(seed)
    out: list[Trial] = []
    violations: list[str] = []
    tunables = {"MonitorInterval": interval, "RerecoveryTimeout": 1}
    with running_cluster(default_topology().plain(), backend_name, tunables,
                         event_mode=event_mode, name="stats", poll_interval=0.05, probe=True,
                         probe_period=0.02, probe_max_s=24 * 3600) as lab:
        bounds = Bounds.of(lab.backend)
        for k in range(trials):
            lab.backend.wait_converged(lab.backend.convergence_timeout())
            time.sleep(5 + rng.uniform(0, interval))  # steady gap, then a random phase
            try:
                r = run_seed(lab, bounds)
            except AssertionError as e:
                violations.append(f"trial {k + 1}: {str(e).splitlines()[0]}")
                print(f"trial {k + 1:>3}/{trials}: BOUND VIOLATED: {violations[-1]}", flush=True)
            else:
                out.append(Trial(r.detection, r.takeover, r.worst_outage))
                print(f"trial {k + 1:>3}/{trials}: detection {r.detection:.3f} s, "
                      f"takeover {r.takeover:+.3f} s, client outage {r.worst_outage:.3f} s",
                      flush=True)
            lab.faults.undo_all()
    return out, violations


def cmd_stats(args: argparse.Namespace) -> int:
    why = hostcheck.why_cannot_run()
    if why:
        print(f"harness stats: {why}")
        return 2
    if args.event_mode and args.backend != "native":
        print("harness stats: --event-mode is the native implementation's; CTDB has none",
              file=sys.stderr)
        return 2
    if args.compare:
        if args.event_mode:
            print("harness stats: --compare compares CTDB's polling monitor; "
                  "leave out --event-mode", file=sys.stderr)
            return 2
        return _compare(args)
    res, violations = run_trials(args.backend, args.trials, args.monitor_interval,
                                 args.event_mode, args.seed)
    return _report(args.backend, args.event_mode, args.monitor_interval, args.trials,
                   res, violations)


def _report(backend: str, event_mode: bool, interval: int, trials: int, res: list[Trial],
            violations: list[str]) -> int:
    """Print one implementation's distributions; 1 if a trial broke a bound."""
    mode = "event-driven" if event_mode else "polling"
    print(f"\n{backend}, {mode} monitor, MonitorInterval {interval} s, "
          f"{len(res)} trials (seconds)")
    print(f"{'':<16} {'min':>8} {'median':>8} {'mean':>8} {'p95':>8} {'max':>8}")
    print(_dist("detection", [t.detection for t in res]))
    print(_dist("takeover", [t.takeover for t in res]))
    print(_dist("client outage", [t.outage for t in res]))
    if not event_mode:
        print(f"seed's claim: mean detection ~ {interval / 2:.1f} s, "
              f"max ~ {interval} s + run time")
    if violations:
        print(f"{len(violations)} of {trials} trials broke a bound:")
        for line in violations:
            print(f"  {line}")
        return 1
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Both implementations' trials (same seed: the same fault phases), then the tests.

    Exit 1 if a trial broke a bound or the native is distinguishable from ctdbd."""
    # imported here: scipy costs every other `harness` command a third of a second
    from harness import detection_compare
    samples: dict[str, list[float]] = {}
    rc = 0
    for name in ("native", "ctdb"):
        res, violations = run_trials(name, args.trials, args.monitor_interval, False,
                                     args.seed)
        rc |= _report(name, False, args.monitor_interval, args.trials, res, violations)
        samples[name] = [t.detection for t in res]
    try:
        c = detection_compare.compare(samples["native"], samples["ctdb"],
                                      gap=args.monitor_interval)
    except ValueError as e:
        print(f"harness stats: no comparison: {e}", file=sys.stderr)
        return 1
    print()
    for line in c.lines():
        print(line)
    return 1 if rc or c.distinguishable else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="detection/takeover/outage distributions (a benchmark)")
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--monitor-interval", type=int, default=3)
    p.add_argument("--event-mode", action="store_true")
    p.add_argument("--backend", choices=["native", "ctdb"], default="native")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--compare", action="store_true",
                   help="trials on native (poll mode) and ctdbd, then a two-sample KS test "
                        "of the detection delays and each against uniform(0, gap)")
    p.set_defaults(fn=cmd_stats)
