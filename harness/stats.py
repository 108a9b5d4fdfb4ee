"""`harness stats`: repeat the pulled-cable scenario at random fault phases and
print the distributions of detection delay, takeover delay and client outage.

A benchmark, not a test: it checks the seed's claim that detection takes
about half the monitor interval on average and about the interval at worst.
Each trial waits until the monitor schedule is back to its steady gap
(5 s after a health change, then MonitorInterval), then a uniformly random
phase within one interval, then pulls node 2's public cable.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass

from harness import hostcheck, runs
from harness.backends import registry
from harness.cluster import Cluster
from harness.topology import default_topology

FAULTY = 2


@dataclass
class Trial:
    detection: float
    takeover: float
    outage: float


def _dist(name: str, xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return (f"{name:<16} {min(xs):8.3f} {statistics.median(xs):8.3f} "
            f"{statistics.mean(xs):8.3f} {p95:8.3f} {max(xs):8.3f}")


def run_trials(backend_name: str, trials: int, interval: int, event_mode: bool,
               seed: int) -> list[Trial]:
    from harness.assertions import has_flag
    from harness.faults import Faults
    from harness.probe import outages
    from harness.timeline import Recorder, Timeline

    rng = random.Random(seed)
    top = default_topology().plain()
    state = runs.RunState(runs.new_run_id()).claim()
    out: list[Trial] = []
    with Cluster.create(top, state) as cluster:
        kw = {"event_mode": True} if event_mode else {}
        backend = registry()[backend_name](cluster, {"MonitorInterval": interval,
                                                     "RerecoveryTimeout": 1}, **kw)
        tl = Timeline("stats")
        try:
            backend.start()
            backend.wait_converged(backend.convergence_timeout())
            with Recorder(cluster, tl, backend, poll_interval=0.05, probe=True,
                          probe_period=0.02, probe_max_s=24 * 3600):
                faults = Faults(cluster, tl, backend)
                for k in range(trials):
                    backend.wait_converged(backend.convergence_timeout())
                    ips = [str(ip) for ip, p in backend.ips(0).items() if p == FAULTY]
                    time.sleep(5 + rng.uniform(0, interval))  # steady gap, random phase
                    fault = faults.pull_cable(FAULTY, "eth1").apply()
                    t0 = fault.apply_event.t
                    bad = tl.wait_for("flags", node=FAULTY, after=fault.apply_event,
                                      where=has_flag("UNHEALTHY"), timeout=5 + interval + 5)
                    adds = [tl.wait_for("addr.add", after=fault.apply_event, ip=ip, timeout=10,
                                        where=lambda e: e.data["ns"] != f"n{FAULTY}")
                            for ip in ips]
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline and not all(
                            any(o.end for o in outages(tl, ip, since=t0)) for ip in ips):
                        time.sleep(0.05)
                    worst = max((o.duration for ip in ips for o in outages(tl, ip, since=t0)
                                 if o.end), default=float("nan"))
                    out.append(Trial(bad.t - t0, max(a.t for a in adds) - bad.t, worst))
                    print(f"trial {k + 1:>3}/{trials}: detection {out[-1].detection:.3f} s, "
                          f"takeover {out[-1].takeover:+.3f} s, client outage {worst:.3f} s",
                          flush=True)
                    fault.undo()
        finally:
            backend.stop()
    state.remove()
    return out


def cmd_stats(args: argparse.Namespace) -> int:
    why = hostcheck.why_cannot_run()
    if why:
        print(f"harness stats: {why}")
        return 2
    if args.event_mode and args.backend != "native":
        print("harness stats: --event-mode is the native implementation's; CTDB has none",
              file=sys.stderr)
        return 2
    res = run_trials(args.backend, args.trials, args.monitor_interval, args.event_mode,
                     args.seed)
    mode = "event-driven" if args.event_mode else "polling"
    print(f"\n{args.backend}, {mode} monitor, MonitorInterval {args.monitor_interval} s, "
          f"{len(res)} trials (seconds)")
    print(f"{'':<16} {'min':>8} {'median':>8} {'mean':>8} {'p95':>8} {'max':>8}")
    print(_dist("detection", [t.detection for t in res]))
    print(_dist("takeover", [t.takeover for t in res]))
    print(_dist("client outage", [t.outage for t in res if t.outage == t.outage]))
    if not args.event_mode:
        print(f"seed's claim: mean detection ~ {args.monitor_interval / 2:.1f} s, "
              f"max ~ {args.monitor_interval} s + run time")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="detection/takeover/outage distributions (a benchmark)")
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--monitor-interval", type=int, default=3)
    p.add_argument("--event-mode", action="store_true")
    p.add_argument("--backend", choices=["native", "ctdb"], default="native")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(fn=cmd_stats)
